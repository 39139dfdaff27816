#!/usr/bin/env bash
# Installs the Debian packages weft needs to build and test, when they are missing.
#   tools/deps.sh [extra-package ...]
set -euo pipefail
packages=(gcc make cmake pkg-config libjemalloc-dev libhwloc-dev "$@")
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "weft: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
