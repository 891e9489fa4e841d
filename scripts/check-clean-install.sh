#!/usr/bin/env bash
# Installs a clean clone of this checkout's HEAD with the system's liburing hidden, the way a
# service that depends on odirect would build it: `npm ci`, then probe() must find io_uring,
# and the clone must stay unchanged (nothing rewrites package-lock.json).
#   scripts/check-clean-install.sh            (root: needs unshare -m for a private mount namespace)
# The hiding happens only inside that namespace (empty tmpfs over /usr/include/liburing,
# /dev/null over liburing.h, .a and .so), so builds running elsewhere on the machine still
# see their liburing. The clone is removed at exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

if [[ "${1:-}" != "--inside" ]]; then
  work="$(mktemp -d /tmp/odirect-clean-install.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  git clone -q "$root" "$work/odirect"
  exec_status=0
  unshare -m --propagation private bash "$0" --inside "$work/odirect" || exec_status=$?
  exit "$exec_status"
fi

clone="$2"
hide() { # hide PATH: only in this mount namespace
  local p="$1"
  if [[ -d "$p" && ! -L "$p" ]]; then mount -t tmpfs -o ro,size=4k none "$p"
  elif [[ -e "$p" ]]; then mount --bind /dev/null "$(readlink -f "$p")"
  fi
}
shopt -s nullglob
for p in /usr/include/liburing /usr/include/liburing.h /usr/local/include/liburing /usr/local/include/liburing.h \
         /usr/lib/*/liburing* /usr/lib/liburing* /usr/lib64/liburing* /usr/local/lib*/liburing*; do
  hide "$p"
done
if printf '#include <liburing.h>\nint main(void){struct io_uring r; return io_uring_queue_init(1,&r,0);}\n' |
   cc -x c - -o /dev/null -luring 2>/dev/null; then
  echo "check-clean-install: the system liburing is still usable; cannot check" >&2
  exit 1
fi
echo "check-clean-install: system liburing hidden (a test program using it no longer builds)"

cd "$clone"
npm ci --no-audit --no-fund
node -e "
  require('./dist/index.js').probe(require('os').tmpdir()).then((c) => {
    console.log('check-clean-install: probe().ioUring =', JSON.stringify(c.ioUring));
    process.exit(c.ioUring.available ? 0 : 1);
  });"
dirty="$(git status --porcelain)"
if [[ -n "$dirty" ]]; then
  echo "check-clean-install: npm ci changed the clone:" >&2
  echo "$dirty" >&2
  exit 1
fi
echo "check-clean-install: ok (npm ci built the addon from vendored liburing, io_uring available, tree clean)"
