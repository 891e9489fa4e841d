#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer in its own
# directory (build-asan/, never the normal build/) and runs the fuzz and engine
# tests against it. node itself is not instrumented, so libasan is preloaded;
# leak detection is off (node keeps memory until exit by design, and the leak
# test covers leaks). Any ASan or UBSan report aborts the process under test,
# so a green run means 0 reports.
#   usage: bash scripts/asan.sh [vitest test files…]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/build-asan"
mkdir -p "$out"
cp "$root/binding.gyp" "$out/binding.gyp"
ln -sfn "$root/native" "$out/native"
ln -sfn "$root/deps" "$out/deps"   # the vendored liburing that binding.gyp builds
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
# npm runs node-gyp (its own copy) for a package script, as for build:native.
echo '{ "name": "odirect-asan-build", "private": true, "scripts": { "build": "node-gyp rebuild" } }' > "$out/package.json"
(cd "$out" && CXXFLAGS="$sanitize" LDFLAGS="-fsanitize=address,undefined" npm run build --silent >/dev/null)
addon="$out/build/Release/odirect.node"
nm -D "$addon" | grep __asan_init >/dev/null || { echo "asan: $addon is not instrumented" >&2; exit 1; }

libasan="$(gcc -print-file-name=libasan.so)"
libubsan="$(gcc -print-file-name=libubsan.so)"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test/fuzz.test.ts test/uring.test.ts test/core.test.ts test/memory-safety.test.ts test/bad-input.test.ts)
cd "$root"
export ODIRECT_ADDON_PATH="$addon"
export LD_PRELOAD="$libasan:$libubsan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
exec "$root/node_modules/.bin/vitest" run "${files[@]}"
