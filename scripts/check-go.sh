#!/usr/bin/env bash
# aerofn needs Go 1.26 or newer with cgo (gcc); say so plainly when missing.
set -euo pipefail
if ! command -v go >/dev/null 2>&1; then
  echo "Go is not installed (or not on PATH). aerofn needs Go 1.26+: https://go.dev/doc/install" >&2
  echo "On this kind of machine it lives in /usr/local/go/bin: export PATH=\$PATH:/usr/local/go/bin" >&2
  exit 1
fi
if ! command -v gcc >/dev/null 2>&1; then
  echo "gcc is missing: wasmtime-go needs cgo. Install it with: apt-get install -y gcc" >&2
  exit 1
fi
