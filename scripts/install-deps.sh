#!/usr/bin/env bash
# Installs the system packages odirect needs to build and to run its loop-device tests/benchmarks.
# liburing is not one of them: it is vendored in deps/liburing and built by binding.gyp.
# Idempotent: prints one line and exits 0 when everything is already present.
# Not root (or no apt-get): prints what to install and exits 1.
set -euo pipefail

# Tools like mkfs.xfs and losetup live in sbin, which non-login shells often lack in PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing_pkgs=()
missing_what=()

need() { # need <package> <what is missing>
  local pkg="$1" what="$2" p
  missing_what+=("$what")
  for p in "${missing_pkgs[@]+"${missing_pkgs[@]}"}"; do
    [[ "$p" == "$pkg" ]] && return 0
  done
  missing_pkgs+=("$pkg")
}

have_cmd() { command -v "$1" >/dev/null 2>&1; }

have_cmd mkfs.xfs  || need xfsprogs   "mkfs.xfs"
have_cmd mkfs.ext4 || need e2fsprogs  "mkfs.ext4"
have_cmd losetup   || need mount      "losetup"
have_cmd mount     || need mount      "mount"
have_cmd umount    || need mount      "umount"
have_cmd fio       || need fio        "fio"
have_cmd g++       || need build-essential "g++"
have_cmd make      || need build-essential "make"
have_cmd python3   || need python3    "python3"

if [[ ${#missing_pkgs[@]} -eq 0 ]]; then
  echo "install-deps: all system dependencies present (xfsprogs, e2fsprogs, util-linux, fio, build tools)"
  exit 0
fi

echo "install-deps: missing: ${missing_what[*]}" >&2

if [[ "$(id -u)" -ne 0 ]] || ! have_cmd apt-get; then
  if ! have_cmd apt-get; then
    echo "install-deps: no apt-get here; install the equivalents of these Debian/Ubuntu packages: ${missing_pkgs[*]}" >&2
  else
    echo "install-deps: not root; run:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing_pkgs[*]}" >&2
  fi
  exit 1
fi

echo "install-deps: installing ${missing_pkgs[*]}" >&2
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing_pkgs[@]}"
echo "install-deps: installed ${missing_pkgs[*]}"
