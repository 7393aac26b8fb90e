#!/usr/bin/env bash
# Builds aerofn's JavaScript runtime (internal/jsruntime/guest): QuickJS and
# the runtime's C glue compiled to one wasm32-wasi module, written to $1.
#
# QuickJS's C sources come from the npm package qjsc@0.3.0 (MIT), which
# carries QuickJS 2021-03-27 in deps/quickjs_2021_03_27; the package is
# fetched once with `npm pack` into the cache directory, checked against the
# registry's sha512 integrity below, and never kept in the repository.
# The compiler is Debian's clang 14 with wasi-libc; as root on a machine with
# apt-get they are installed when missing.
set -euo pipefail
out=${1:?usage: build-jsrt.sh OUTPUT.wasm}
here=$(cd "$(dirname "$0")/.." && pwd)
src=$here/internal/jsruntime/guest

QJS_PKG=qjsc@0.3.0
QJS_TGZ=qjsc-0.3.0.tgz
QJS_INTEGRITY='sha512-a7+cU6/IVcZbIejffdt/wZVMX6LL2MDL3HQ9Zb5Gm23G9DvBMS/z9GHFxz39bAvp2PvMOM+ypSOAyokt2DdZ2w=='
QJS_DIR=package/deps/quickjs_2021_03_27
QJS_VERSION=2021-03-27
# The shadow stack, which bounds JavaScript recursion (runtime.c).
STACK_SIZE=524288

CLANG=${CLANG:-clang-14}
WASI_INC=/usr/include/wasm32-wasi
WASI_LIB=/usr/lib/wasm32-wasi
RT_BUILTINS=/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a

have_tools() {
  command -v "$CLANG" >/dev/null && command -v wasm-ld-14 >/dev/null &&
    [ -f "$WASI_LIB/libc.a" ] && [ -f "$RT_BUILTINS" ]
}
if ! have_tools; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "build-jsrt: installing clang-14, lld-14, wasi-libc, libclang-rt-14-dev-wasm32" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 >/dev/null
  fi
  if ! have_tools; then
    echo "build-jsrt: the JavaScript runtime needs clang-14, lld-14, wasi-libc and libclang-rt-14-dev-wasm32" >&2
    echo "  (Debian/Ubuntu: apt-get install -y clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)" >&2
    exit 1
  fi
fi
command -v npm >/dev/null || { echo "build-jsrt: npm is needed to fetch $QJS_PKG (QuickJS's sources)" >&2; exit 1; }

cache=${AEROFN_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerofn}/quickjs
mkdir -p "$cache"
if [ ! -f "$cache/$QJS_DIR/quickjs.c" ]; then
  tmp=$(mktemp -d "$cache/fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "$QJS_PKG" --silent >/dev/null)
  got="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tmp/$QJS_TGZ")"
  if [ "$got" != "$QJS_INTEGRITY" ]; then
    echo "build-jsrt: $QJS_PKG has integrity $got, want $QJS_INTEGRITY" >&2
    exit 1
  fi
  tar -xzf "$tmp/$QJS_TGZ" -C "$tmp" "$QJS_DIR"
  rm -rf "$cache/package"
  mv "$tmp/package" "$cache/package"
  rm -rf "$tmp"
  trap - EXIT
fi
qjs=$cache/$QJS_DIR

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A sysroot of wasi-libc alone: clang's --sysroot=/usr would also search
# /usr/include, the host's glibc headers.
mkdir -p "$work/sysroot/include" "$work/sysroot/lib"
ln -s "$WASI_INC" "$work/sysroot/include/wasm32-wasi"
ln -s "$WASI_LIB" "$work/sysroot/lib/wasm32-wasi"
# prelude.js and runner.js as C arrays, NUL-terminated.
carray() {
  printf 'static const char %s[] = {\n' "$1"
  od -An -v -tx1 "$2" | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'
  printf '0};\n'
}
{ carray aerofn_prelude_js "$src/prelude.js"; carray aerofn_runner_js "$src/runner.js"; } >"$work/aerofn_js.h"

cflags=(--target=wasm32-wasi --sysroot="$work/sysroot" -O2 -D_GNU_SOURCE "-DCONFIG_VERSION=\"$QJS_VERSION\"" -DAEROFN_STACK_SIZE=$STACK_SIZE
  -I"$src/include" -I"$qjs" -I"$work" -w
  # The same bytes on every machine (assert messages name source files):
  # the runtime's hash, under which nodes share its compiled artifact,
  # must not depend on where the cache or the checkout is.
  -ffile-prefix-map="$qjs"=quickjs -ffile-prefix-map="$src"=guest -ffile-prefix-map="$work"=build)
pids=()
for f in libregexp libunicode cutils; do
  "$CLANG" "${cflags[@]}" -c -o "$work/$f.o" "$qjs/$f.c" & pids+=($!)
done
"$CLANG" "${cflags[@]}" -c -o "$work/runtime.o" "$src/runtime.c" & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
# A reactor (_initialize runs the constructors: the runtime's
# initialisation, which the engine snapshots); the shadow stack first, so
# that overflowing it traps instead of overwriting data.
"$CLANG" --target=wasm32-wasi --sysroot="$work/sysroot" -mexec-model=reactor -s \
  -Wl,--stack-first -Wl,-z,stack-size=$STACK_SIZE \
  -o "$work/out.wasm" "$work/runtime.o" "$work/libregexp.o" "$work/libunicode.o" "$work/cutils.o"
mkdir -p "$(dirname "$out")"
mv "$work/out.wasm" "$out"
