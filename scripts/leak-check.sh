#!/usr/bin/env bash
# Leak check of the native addon under valgrind (issue 6).
#
#   scripts/leak-check.sh DIR [OPS]        run test/fixtures/leak-workload.cjs under valgrind
#   scripts/leak-check.sh --parse-only LOG  only read an existing valgrind log
#
# DIR is a directory on a scratch ext4 or XFS filesystem (the workload makes and removes its
# files in a fresh subdirectory); OPS defaults to 2000 (node under valgrind is slow: see the
# README). The workload opens, writes through both engines (ODIRECT_TEST_ENGINES), reads, takes
# error paths and closes; it needs the builds: build/Release/odirect.node and dist/.
#
# Node itself loses memory at exit that valgrind calls "definitely lost"; that is not ours. The
# verdict counts only the definite-loss records whose stack has a frame in the addon
# (odirect.node, an odirect:: function, native/*.cc, or node-addon-api compiled into it), and
# invalid reads/writes with such a frame. It prints
#   leak-check: definitely lost in odirect: N bytes in M blocks
#   leak-check: memory errors in odirect: K
# and exits 1 if N > 0 or K > 0 (2 if the check itself could not run).
# Env: NODE (node binary), ODIRECT_LEAK_LOG (keep the valgrind log at this path),
#      VALGRIND_EXTRA (more valgrind options).
set -euo pipefail

ODIRECT_FRAME_RE='odirect\.node|odirect::|native/[A-Za-z0-9_-]+\.(cc|h)|napi(-inl)?\.h'

die() {
  echo "leak-check: $*" >&2
  exit 2
}

# Reads a valgrind log; prints the offending records and the verdict; returns 1 on a finding.
parse_log() {
  local log="$1"
  [[ -r "$log" ]] || die "cannot read valgrind log $log"
  ODIRECT_FRAME_RE="$ODIRECT_FRAME_RE" awk '
    BEGIN { re = ENVIRON["ODIRECT_FRAME_RE"] }
    function strip(line) { sub(/^==[0-9]+== ?/, "", line); return line }
    function flush() {
      if (kind == "leak") {
        allBytes += bytes; allBlocks += blocks
        if (record ~ re) { ourBytes += bytes; ourBlocks += blocks; shown = shown record "\n" }
      } else if (kind == "error" && record ~ re) {
        ourErrors++; shown = shown record "\n"
      }
      kind = ""; record = ""
    }
    /^==[0-9]+==/ {
      line = strip($0)
      if (line ~ /^ *$/) { flush(); next }
      if (line ~ /are definitely lost in loss record/) {
        flush()
        # "1,234 bytes in 5 blocks ..." or "1,234 (100 direct, 1,134 indirect) bytes in 5 blocks ...":
        # the direct part is what valgrind calls definitely lost (the rest is indirectly lost).
        n = line; sub(/^ */, "", n)
        if (n ~ /^[0-9,]+ \([0-9,]+ direct/) { sub(/^[0-9,]+ \(/, "", n) }
        split(n, w, " "); gsub(",", "", w[1]); bytes = w[1] + 0
        m = line; sub(/.* bytes in /, "", m); split(m, v, " "); gsub(",", "", v[1]); blocks = v[1] + 0
        kind = "leak"; record = line; next
      }
      if (line ~ /^(Invalid (read|write|free)|Mismatched free|Source and destination overlap|Syscall param .* points to unaddressable)/) {
        flush(); kind = "error"; record = line; next
      }
      if (kind != "") record = record "\n" line
      next
    }
    END {
      flush()
      if (shown != "") printf "%s", shown
      printf "leak-check: definitely lost in total (node included): %d bytes in %d blocks\n", allBytes, allBlocks
      printf "leak-check: memory errors in odirect: %d\n", ourErrors
      printf "leak-check: definitely lost in odirect: %d bytes in %d blocks\n", ourBytes, ourBlocks
      exit (ourBytes > 0 || ourErrors > 0) ? 1 : 0
    }
  ' "$log"
}

if [[ "${1:-}" == "--parse-only" ]]; then
  [[ $# -eq 2 ]] || die "usage: $0 --parse-only LOG"
  parse_log "$2"
  exit $?
fi

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 DIR [OPS]  |  $0 --parse-only LOG"
DIR="$1"
OPS="${2:-2000}"
[[ -d "$DIR" ]] || die "$DIR is not a directory"
[[ "$OPS" =~ ^[1-9][0-9]*$ ]] || die "OPS must be a positive integer, got $OPS"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKLOAD="$ROOT/test/fixtures/leak-workload.cjs"
[[ -f "$ROOT/build/Release/odirect.node" ]] || die "no build/Release/odirect.node: run npm run build:native"
[[ -f "$ROOT/dist/index.js" ]] || die "no dist/index.js: run npm run build:ts"
NODE="${NODE:-$(command -v node || true)}"
[[ -x "$NODE" ]] || die "node not found (set NODE)"

if ! command -v valgrind >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "leak-check: installing valgrind" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq valgrind >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq valgrind >/dev/null; } ||
      die "apt-get could not install valgrind"
  else
    die "valgrind is not installed (and not root with apt-get to install it)"
  fi
fi

LOG="${ODIRECT_LEAK_LOG:-}"
CLEANUP_LOG=0
if [[ -z "$LOG" ]]; then
  LOG="$(mktemp /tmp/odirect-leak-check.XXXXXX.log)"
  CLEANUP_LOG=1
fi
OUT="$(mktemp /tmp/odirect-leak-workload.XXXXXX.json)"
cleanup() {
  rm -f "$OUT"
  if [[ $CLEANUP_LOG == 1 ]]; then rm -f "$LOG"; fi
}
trap cleanup EXIT

echo "leak-check: $(valgrind --version), $("$NODE" --version), $OPS operations in $DIR" >&2
START=$(date +%s)
set +e
# --undef-value-errors=no: V8's JIT makes that check noisy and slow; addressability errors
# (invalid read/write) and leaks are still found.
# shellcheck disable=SC2086
valgrind --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --undef-value-errors=no --num-callers=40 --log-file="$LOG" ${VALGRIND_EXTRA:-} \
  "$NODE" --expose-gc "$WORKLOAD" "$DIR" "$OPS" >"$OUT"
STATUS=$?
set -e
END=$(date +%s)
echo "leak-check: workload exit status $STATUS, $((END - START)) s under valgrind" >&2
if [[ -s "$OUT" ]]; then
  head -c 600 "$OUT" >&2
  echo >&2
fi
if [[ $STATUS -ne 0 ]]; then
  tail -n 30 "$LOG" >&2 || true
  die "the workload failed under valgrind (exit $STATUS)"
fi
grep -q '"fdsBefore"' "$OUT" || die "the workload printed no result"
grep -q 'LEAK SUMMARY\|All heap blocks were freed' "$LOG" || die "valgrind wrote no leak summary to $LOG"

set +e
parse_log "$LOG"
VERDICT=$?
set -e
echo "leak-check: duration $((END - START)) s" >&2
exit $VERDICT
