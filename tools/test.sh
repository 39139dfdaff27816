#!/usr/bin/env bash
# Builds weft and runs the whole test suite (CTest; every test is its own TAP program).
#   tools/test.sh                      the normal build (jemalloc), warnings as errors
#   tools/test.sh --sanitize address,undefined | thread
#   tools/test.sh --valgrind           every test under valgrind (libc allocator build)
#   tools/test.sh --chaos              (reserved for the chaos mode)
# Extra arguments after -- go to ctest (e.g. -- -R test_cancel).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=normal sanitize=""
ctest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize) mode=sanitize sanitize="$2"; shift 2 ;;
    --valgrind) mode=valgrind; shift ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "usage: tools/test.sh [--sanitize LIST | --valgrind] [-- ctest args]" >&2; exit 2 ;;
    esac
done
extra=()
[ "$mode" = valgrind ] && extra+=(valgrind)
tools/deps.sh "${extra[@]}"
cmake_args=(-DWEFT_WERROR=ON -DWEFT_PERF=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo)
case "$mode" in
normal) dir=build ;;
sanitize) dir="build-${sanitize//,/-}"; cmake_args+=(-DWEFT_SANITIZE="$sanitize") ;;
valgrind)
    dir=build-valgrind
    cmake_args+=(-DWEFT_ALLOCATOR=libc -DWEFT_TEST_TIMEOUT=1200
        "-DWEFT_TEST_WRAPPER=valgrind;--quiet;--error-exitcode=99;--leak-check=full;--errors-for-leak-kinds=definite;--fair-sched=yes")
    ;;
esac
cmake -S . -B "$dir" "${cmake_args[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
export WEFT_TEST_MODE="$mode"
[ "$mode" = valgrind ] && export WEFT_TEST_SCALE=20
if [ "$mode" = sanitize ]; then
    export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
    export WEFT_TEST_SCALE=4
fi
ctest --test-dir "$dir" --output-on-failure "${ctest_args[@]}"
