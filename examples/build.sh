#!/usr/bin/env bash
# Builds every example function to $OUT_DIR/<name>.wasm (default
# bin/examples under the module root). A relative OUT_DIR is taken from the
# directory the script is run in.
#
# -trimpath keeps the module's bytes, and so its SHA-256 (the registry's
# wasm_hash), the same wherever it is built.
set -euo pipefail

out="${OUT_DIR:-}"
if [[ -n "$out" ]]; then
	mkdir -p "$out"
	out="$(cd "$out" && pwd)"
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -z "$out" ]]; then
	out="$PWD/bin/examples"
	mkdir -p "$out"
fi

for dir in examples/*/; do
	name="$(basename "$dir")"
	[[ -f "$dir/main.go" ]] || continue
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$out/$name.wasm" "./examples/$name"
	echo "$out/$name.wasm"
done
