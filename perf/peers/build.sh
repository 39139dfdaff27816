#!/usr/bin/env bash
# Build the benchmark peers from Debian packages, installing what is missing.
#
#   perf/peers/build.sh [--no-install] [go] [tokio] [python]      (no peer named: all three)
#
# go      golang-go            -> perf/peers/go/bin/bench_go
# tokio   cargo rustc librust-tokio-dev librust-async-channel-dev
#         -> perf/peers/tokio/target/release/bench_tokio
#         built offline from /usr/share/cargo/registry (perf/peers/tokio/.cargo/config.toml)
# python  python3 python3-uvloop (nothing to build; run with /usr/bin/python3)
#
# Missing packages are installed with perf/install.sh unless --no-install.
# Exits non-zero if a requested peer could not be built; prints which.
set -uo pipefail

PEERS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
install=1
if [ "${1:-}" = --no-install ]; then
    install=0
    shift
fi
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(go tokio python)

log() { printf 'peers: %s\n' "$*" >&2; }

# The Debian toolchains, never a rustup or pyenv shim that happens to come first in PATH.
DEB_CARGO=/usr/bin/cargo
DEB_RUSTC=/usr/bin/rustc
DEB_PYTHON=/usr/bin/python3

ensure() {
    [ $install -eq 1 ] || return 0
    "$PEERS/../install.sh" "$@"
}

build_go() {
    ensure golang-go || return 1
    local go=/usr/bin/go
    [ -x "$go" ] || go="$(command -v go)" || return 1
    (cd "$PEERS/go" && "$go" build -o bin/bench_go .)
}

build_tokio() {
    ensure cargo rustc librust-tokio-dev librust-async-channel-dev || return 1
    local cargo="$DEB_CARGO" rustc="$DEB_RUSTC"
    if [ ! -x "$cargo" ] || [ ! -x "$rustc" ]; then
        cargo="$(command -v cargo)" || return 1
        rustc="$(command -v rustc)" || return 1
        log "Debian's cargo/rustc not found; using $cargo"
    fi
    local crate
    for crate in tokio-1 async-channel-1; do
        if ! ls -d /usr/share/cargo/registry/"$crate".* >/dev/null 2>&1; then
            log "no ${crate%-1} sources in /usr/share/cargo/registry"
            return 1
        fi
    done
    (cd "$PEERS/tokio" && RUSTC="$rustc" "$cargo" build --release --offline -q)
}

build_python() {
    ensure python3 python3-uvloop || return 1
    "$DEB_PYTHON" -c 'import uvloop' 2>/dev/null || {
        log "$DEB_PYTHON cannot import uvloop"
        return 1
    }
}

failed=()
for peer in "${wanted[@]}"; do
    case "$peer" in
    go | tokio | python) ;;
    *)
        log "unknown peer '$peer' (go, tokio, python)"
        exit 2
        ;;
    esac
    if "build_$peer"; then
        log "$peer: ready"
    else
        log "$peer: FAILED"
        failed+=("$peer")
    fi
done
[ ${#failed[@]} -eq 0 ] || {
    log "not built: ${failed[*]}"
    exit 1
}
