#!/usr/bin/env bash
# Install the Debian packages pyxray needs, only those missing.
set -euo pipefail
# debootstrap, its keyring and gpgv: the test bed root (scripts/mkroot.sh);
# clang, libFuzzer's runtime and llvm-symbolizer: the fuzz smoke run of
# scripts/test.sh; util-linux: unshare, flock; binutils: readelf;
# dpkg-dev, lintian, man-db, groff-base: the Debian package and its checks
# (scripts/package.sh); the portable binary's root uses debootstrap too.
pkgs=(gcc make cmake pkg-config libelf-dev libdw-dev check
      python3 python3-objgraph gdb util-linux procps binutils coreutils
      debootstrap debian-archive-keyring gpgv wget
      clang libclang-rt-dev llvm
      libzstd-dev liblz4-dev liblzma-dev zstd lz4 xz-utils
      dpkg-dev lintian man-db groff-base)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "pyxray: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
