#!/usr/bin/env bash
# Install the Debian packages named on the command line that are not installed yet.
#
#   perf/install.sh PKG...
#
# Runs apt-get update once, only when something is missing; uses sudo when not root.
# Waits for another apt/dpkg to finish (the dpkg lock) instead of failing.
set -uo pipefail

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "$@"; do have_pkg "$p" || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "install: missing ${missing[*]}, and not root: install them first" >&2
        exit 1
    fi
    sudo=(sudo)
fi
echo "install: apt-get install ${missing[*]}" >&2
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || exit 1
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
