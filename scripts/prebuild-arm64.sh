#!/usr/bin/env bash
# Cross-builds prebuilds/linux-arm64/odirect.glibc.node with Debian's cross toolchain
# (apt-get install g++-aarch64-linux-gnu). Builds in a copy of the checkout, so that this
# checkout's build/Release stays the x64 addon that node-gyp-build loads here.
# The result cannot be loaded on an x64 machine: it is checked with objdump only
# (glibc baseline, architecture) until it runs on arm64 hardware.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cross=aarch64-linux-gnu
command -v "$cross-g++" >/dev/null || { echo "prebuild-arm64: $cross-g++ missing (apt-get install g++-$cross)" >&2; exit 1; }

work="$(mktemp -d /tmp/odirect-prebuild-arm64.XXXXXX)"
trap 'rm -rf "$work"' EXIT
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work" 2>/dev/null || true)
ln -s "$root/node_modules" "$work/node_modules"
(cd "$work" && CC="$cross-gcc" CXX="$cross-g++" LINK="$cross-g++" AR="$cross-ar" PREBUILD_STRIP_BIN="$cross-strip" \
  "$root/node_modules/.bin/prebuildify" --napi --tag-libc --strip --arch arm64)
mkdir -p "$root/prebuilds/linux-arm64"
cp "$work"/prebuilds/linux-arm64/*.node "$root/prebuilds/linux-arm64/"
"$cross-objdump" -T "$root"/prebuilds/linux-arm64/*.node | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 |
  sed 's/^/prebuild-arm64: highest glibc symbol version: /'
ls -l "$root"/prebuilds/linux-arm64/
