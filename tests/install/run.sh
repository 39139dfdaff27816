#!/usr/bin/env bash
# Installs the build in $1 into a scratch prefix, then builds and runs a consumer three
# ways: pkg-config (shared), find_package(weft) shared and static. TAP output.
set -u
build=$1 src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
check() { # description, command...
    local d=$1; shift
    n=$((n + 1))
    if "$@" >"$tmp/log" 2>&1; then echo "ok $n - $d"; else
        echo "not ok $n - $d"; sed 's/^/# /' "$tmp/log"; failed=$((failed + 1)); fi
}
check "cmake --install" cmake --install "$build" --prefix "$tmp/prefix"
check "installed: weft.h, libweft.so, libweft.a, weft.pc, weftConfig.cmake" test -f "$tmp/prefix/include/weft.h" \
    -a -e "$tmp/prefix/lib/libweft.so" -a -f "$tmp/prefix/lib/libweft.a" \
    -a -f "$tmp/prefix/lib/pkgconfig/weft.pc" -a -f "$tmp/prefix/lib/cmake/weft/weftConfig.cmake"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
check "pkg-config build" sh -c "cc '$src/consumer.c' -o '$tmp/pc' \$(pkg-config --cflags --libs weft) -ldl"
check "pkg-config build runs, host malloc is libc's" env LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/pc"
check "find_package(weft) configure" cmake -S "$src" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix"
check "find_package(weft) build" cmake --build "$tmp/cm"
check "shared consumer runs, host malloc is libc's" env LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/cm/consumer_shared"
check "static consumer runs, host malloc is libc's" "$tmp/cm/consumer_static"
echo "1..$n"
exit $((failed > 0))
