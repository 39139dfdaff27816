#!/bin/sh
# run.sh: model-check the Promela models in this directory with spin (Debian package spin).
# Each model must verify with no errors and a complete search. Each " * must-fail: FLAGS"
# line in a model's header comment names spin -D flags that build a deliberately broken
# variant; that variant must produce an error, which shows the model can catch the bug.
#
# usage: tests/model/run.sh [model.pml ...]      (default: every *.pml beside this script)
# env:   SPIN_FLAGS  extra spin flags for every run (e.g. -DITEMS=4: minutes, over 2 GB)
#        PAN_MEMLIM  pan's memory limit in MB (default 8192)
# Exit status: 0 when every check passed, 1 when one failed, 2 when spin is missing.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
command -v spin >/dev/null || { echo "run.sh: spin not found (apt-get install spin)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ $# -gt 0 ] || set -- "$here"/*.pml

# check MODEL EXPECT [FLAGS...]: EXPECT is "verifies" or "fails".
check() {
    model=$1 expect=$2
    shift 2
    name=$(basename "$model")
    label="$name${*:+ $*}${SPIN_FLAGS:+ $SPIN_FLAGS}"
    rm -f "$work"/*
    cp "$model" "$work/$name"
    if ! (cd "$work" && spin -a "$@" ${SPIN_FLAGS:-} "$name" >spin.out 2>&1 &&
          ${CC:-cc} -O2 -w -DSAFETY -DCOLLAPSE -DMEMLIM="${PAN_MEMLIM:-8192}" -o pan pan.c &&
          ./pan -m1000000 >pan.out 2>&1); then
        echo "not ok - $label: spin, cc or pan did not run"
        cat "$work"/spin.out "$work"/pan.out 2>/dev/null | tail -20
        return 1
    fi
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$work/pan.out")
    states=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' "$work/pan.out")
    if [ "$expect" = verifies ]; then
        if [ "${errors:-1}" -eq 0 ] &&
           ! grep -q "max search depth too small\|out of memory\|Search not completed" \
               "$work/pan.out"; then
            echo "ok - $label verifies ($states states)"
            return 0
        fi
        echo "not ok - $label: errors or an incomplete search"
        (cd "$work" && spin -t -p -g "$@" ${SPIN_FLAGS:-} "$name" 2>&1 | tail -40)
        grep -v "^Depth=" "$work/pan.out" | head -20
        return 1
    fi
    if [ "${errors:-0}" -gt 0 ]; then
        echo "ok - $label fails as it must ($(grep -m1 'pan:1:' "$work/pan.out"))"
        return 0
    fi
    echo "not ok - $label: the broken variant verified; the model cannot see that bug"
    return 1
}

status=0
for model in "$@"; do
    check "$model" verifies || status=1
    sed -n 's/^ \* must-fail: //p' "$model" | while read -r flags; do
        check "$model" fails $flags || exit 1
    done || status=1
done
exit $status
