#!/bin/sh
# Build a unit test statically for aarch64 and run it under qemu-aarch64: the only way this
# x86-64 machine exercises runtime/arch/aarch64_aapcs.S. Each test is built at -O0 and -O2,
# plain and with -mbranch-protection=standard, and run on qemu's "max" CPU. That CPU
# enforces PAC, so the second build shows signed return addresses surviving the switch.
# BTI is compiled in but not enforced: Debian 12's static glibc carries no BTI note, so
# the linker leaves it off the binary (forcing it traps in glibc's own startup).
#
#   tools/test-aarch64.sh [TEST.c RUNTIME.c...]
#
# With no arguments it runs tests/unit/test_coro.c with runtime/coro.c. The arch file and
# tests/tap.c are always added. Needs (Debian): gcc-aarch64-linux-gnu qemu-user
# libc6-arm64-cross libc6-dev-arm64-cross (its headers: only a recommendation of the compiler).
set -eu

cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- tests/unit/test_coro.c runtime/coro.c

cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
for tool in "$cc" qemu-aarch64; do
    command -v "$tool" >/dev/null || {
        echo "$0: $tool not found (apt-get install gcc-aarch64-linux-gnu qemu-user" \
             "libc6-arm64-cross libc6-dev-arm64-cross)" >&2
        exit 2
    }
done

out=${TMPDIR:-/tmp}/weft-aarch64
mkdir -p "$out"
name=$(basename "$1" .c)
status=0
for opt in -O0 -O2; do
    for protection in none standard; do
        bin="$out/$name$opt-$protection"
        "$cc" -std=gnu11 $opt -g -Wall -Wextra -Werror -fno-omit-frame-pointer \
            -mbranch-protection=$protection -static -Iruntime -Itests \
            "$@" runtime/arch/aarch64_aapcs.S tests/tap.c -lpthread -o "$bin"
        echo "# $name $opt, branch protection: $protection"
        if ! qemu-aarch64 -cpu max "$bin"; then
            echo "# FAILED: $bin" >&2
            status=1
        fi
    done
done
exit $status
