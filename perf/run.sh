#!/usr/bin/env bash
# weft's benchmarks beside its peers, with workers 1 and 2. See perf/README.md.
#
#   perf/run.sh [--quick] [--only NAME[,NAME]] [--impl IMPL[,IMPL]] [--reps N] [--no-install]
#               [--build-dir DIR]
#
#   --quick        sizes / 10 (fib 25, skynet 100k leaves), one repetition: a smoke run
#   --only NAME    core: spawn_many yield_many ping_pong chained_spawn skynet fib; sync:
#                  mutex_contention queue_ping_pong queue_throughput (repeatable)
#   --impl IMPL    weft go tokio asyncio uvloop (repeatable)
#   --reps N       runs per (bench, impl, workers); the fastest counts (default 3, quick 1)
#   --no-install   do not apt-get missing toolchains and libraries (perf/install.sh)
#   --build-dir D  weft's build and the results in D (default build-perf; relative to the root)
#
# Raw lines go to build-perf/results.txt, the table also to build-perf/summary.txt. Two
# invocations on one machine run their benchmarks one after the other (a lock in /tmp).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PERF="$ROOT/perf"
BUILD="$ROOT/build-perf"
CORE_BENCHES=(spawn_many yield_many ping_pong chained_spawn skynet fib)    # weft: bench_core
SYNC_BENCHES=(mutex_contention queue_ping_pong queue_throughput)             # weft: bench_sync
ALL_BENCHES=("${CORE_BENCHES[@]}" "${SYNC_BENCHES[@]}")
ALL_IMPLS=(weft go tokio asyncio uvloop)
# one event loop: these make sense
PY_BENCHES=" spawn_many yield_many ping_pong chained_spawn ${SYNC_BENCHES[*]} "
WORKERS=(1 2)
TIMEOUT=120

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

quick=0 reps="" install=1 benches=() impls=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --only)
        [ $# -ge 2 ] || usage
        IFS=, read -ra add <<<"$2"
        benches+=("${add[@]}")
        shift
        ;;
    --impl)
        [ $# -ge 2 ] || usage
        IFS=, read -ra add <<<"$2"
        impls+=("${add[@]}")
        shift
        ;;
    --reps)
        if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then usage; fi
        reps="$2"
        shift
        ;;
    --no-install) install=0 ;;
    --build-dir)
        [ $# -ge 2 ] || usage
        case "$2" in
        /*) BUILD="$2" ;;
        *) BUILD="$ROOT/$2" ;;
        esac
        shift
        ;;
    -h | --help) usage ;;
    *) usage ;;
    esac
    shift
done
[ ${#benches[@]} -eq 0 ] && benches=("${ALL_BENCHES[@]}")
[ ${#impls[@]} -eq 0 ] && impls=("${ALL_IMPLS[@]}")
for b in "${benches[@]}"; do
    [[ " ${ALL_BENCHES[*]} " == *" $b "* ]] || { echo "run.sh: unknown bench '$b'" >&2; usage; }
done
for i in "${impls[@]}"; do
    [[ " ${ALL_IMPLS[*]} " == *" $i "* ]] || { echo "run.sh: unknown impl '$i'" >&2; usage; }
done
div=1
[ $quick -eq 1 ] && div=10
[ -n "$reps" ] || { [ $quick -eq 1 ] && reps=1 || reps=3; }
wants() { [[ " ${impls[*]} " == *" $1 "* ]]; }
weft_program() { # bench -> the weft program that runs it
    if [[ " ${SYNC_BENCHES[*]} " == *" $1 "* ]]; then echo bench_sync; else echo bench_core; fi
}

mkdir -p "$BUILD"
SHOWN="${BUILD#"$ROOT"/}" # how messages name it
RESULTS="$BUILD/results.txt"
SUMMARY="$BUILD/summary.txt"
notes=()
note() {
    notes+=("$*")
    echo "run.sh: $*" >&2
}

# ---- build ----------------------------------------------------------------------------------
available=()
weft_built=() # the weft programs this invocation built

if wants weft; then
    [ $install -eq 0 ] || "$PERF/install.sh" cmake make gcc pkg-config libhwloc-dev libjemalloc-dev
    echo "run.sh: building weft (Release) in $SHOWN/" >&2
    targets=()
    for b in "${benches[@]}"; do
        t="$(weft_program "$b")"
        [[ " ${targets[*]} " == *" $t "* ]] || targets+=("$t")
    done
    # weft_objects first: libweft.a's custom command needs the objects but (CMake) does not
    # order itself after the object library, so `--target bench_core` alone can fail.
    log="$BUILD/weft-build.log"
    if { cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_TESTS=OFF -DWEFT_PERF=ON &&
        cmake --build "$BUILD" --target weft_objects -j "$(nproc)"; } >"$log" 2>&1; then
        for t in "${targets[@]}"; do # each alone: bench_core still runs if bench_sync fails
            if cmake --build "$BUILD" --target "$t" -j "$(nproc)" >>"$log" 2>&1 &&
                [ -x "$BUILD/perf/$t" ]; then
                weft_built+=("$t")
            else
                note "weft's $t did not build (see $SHOWN/weft-build.log); its rows: peers only"
            fi
        done
        [ ${#weft_built[@]} -eq 0 ] || available+=(weft)
    else
        note "weft did not build (see $SHOWN/weft-build.log); running the peers only"
    fi
fi

peers=()
wants go && peers+=(go)
wants tokio && peers+=(tokio)
{ wants asyncio || wants uvloop; } && peers+=(python)
no_install=()
[ $install -eq 1 ] || no_install=(--no-install)
peer_ready() { "$PERF/peers/build.sh" "${no_install[@]}" "$1"; }
for peer in "${peers[@]}"; do
    if ! peer_ready "$peer"; then
        note "peer $peer is not available"
    elif [ "$peer" = python ]; then
        wants asyncio && available+=(asyncio)
        wants uvloop && available+=(uvloop)
    else
        available+=("$peer")
    fi
done
has() { [[ " ${available[*]} " == *" $1 "* ]]; }

# ---- versions -------------------------------------------------------------------------------
versions=()
has go && versions+=("go: $(/usr/bin/go version 2>/dev/null || go version)")
if has tokio; then
    lock="$PERF/peers/tokio/Cargo.lock"
    crate_v() { # the version of crate $1 in Cargo.lock
        awk -v n="$1" '$0 == "name = \"" n "\"" {getline; gsub(/"/, "", $3); print $3}' "$lock" 2>/dev/null
    }
    tokio_v="$(crate_v tokio)"
    channel_v="$(crate_v async-channel)"
    rustc_v="$( (/usr/bin/rustc --version || rustc --version) 2>/dev/null)"
    versions+=("tokio: ${tokio_v:-?}, async-channel ${channel_v:-?} ($rustc_v)")
fi
if has asyncio || has uvloop; then
    versions+=("python: $(/usr/bin/python3 -c 'import sys, uvloop
print(sys.version.split()[0], "uvloop", uvloop.__version__)' 2>/dev/null)")
fi
has weft && versions+=("weft: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')")

# ---- run ------------------------------------------------------------------------------------
# Two runs at once would each measure the other: wait for any other invocation to finish.
exec 9>"${TMPDIR:-/tmp}/weft-perf-run.lock"
if command -v flock >/dev/null && ! flock -n 9; then
    echo "run.sh: another perf/run.sh is measuring; waiting for it" >&2
    flock 9
fi
{
    echo "# perf/run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) div=$div reps=$reps cpus=$(nproc)" \
        "loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
    for v in "${versions[@]}"; do echo "# $v"; done
} >"$RESULTS"

command_for() { # impl bench workers
    case "$1" in
    weft) echo "$BUILD/perf/$(weft_program "$2") $2 --workers $3 --div $div" ;;
    go) echo "$PERF/peers/go/bin/bench_go $2 --workers $3 --div $div" ;;
    tokio) echo "$PERF/peers/tokio/target/release/bench_tokio $2 --workers $3 --div $div" ;;
    asyncio | uvloop) echo "/usr/bin/python3 $PERF/peers/python/bench_asyncio.py $2 --loop $1 --div $div" ;;
    esac
}

# The repetitions take turns (weft, go, tokio, weft, go, tokio, ...), so a slow spell of this
# shared machine falls on every implementation alike instead of on all runs of one.
for bench in "${benches[@]}"; do
    for w in "${WORKERS[@]}"; do
        runs=()
        for impl in "${ALL_IMPLS[@]}"; do
            has "$impl" || continue
            program="$(weft_program "$bench")"
            if [ "$impl" = weft ] && [[ " ${weft_built[*]} " != *" $program "* ]]; then
                echo "bench=$bench impl=weft workers=$w failed=1" >>"$RESULTS"
                continue
            fi
            if [ "$impl" = asyncio ] || [ "$impl" = uvloop ]; then
                if [[ "$PY_BENCHES" != *" $bench "* ]] || [ "$w" != 1 ]; then continue; fi
            fi
            runs+=("$impl")
        done
        failed=" "
        for ((r = 1; r <= reps; r++)); do
            for impl in "${runs[@]}"; do
                [[ "$failed" == *" $impl "* ]] && continue
                printf 'run.sh: %-16s %-7s workers=%s rep %d/%d\n' "$bench" "$impl" "$w" "$r" "$reps" >&2
                # shellcheck disable=SC2046
                line="$(timeout "$TIMEOUT" $(command_for "$impl" "$bench" "$w") | grep '^bench=')"
                rc=$?
                if [ $rc -ne 0 ] || [ -z "$line" ]; then
                    echo "bench=$bench impl=$impl workers=$w failed=1" >>"$RESULTS"
                    note "$impl $bench workers=$w failed (exit $rc$([ $rc -eq 124 ] && echo ', timeout'))"
                    failed+="$impl "
                    continue
                fi
                echo "$line" >>"$RESULTS"
            done
        done
    done
done

# ---- report ---------------------------------------------------------------------------------
report() {
    echo "weft benchmarks, $(nproc) CPUs, div=$div (1 = full size), best of $reps;" \
        "load average before: $(sed -n 's/.*loadavg=\([^ ]*\).*/\1/p' "$RESULTS"), after:" \
        "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
    for v in "${versions[@]}"; do echo "  $v"; done
    echo "  asyncio/uvloop: one event loop (workers=1 rows), sizes a further 1/10, per-op figures"
    echo
    awk -v benches="${benches[*]}" -v impls="${ALL_IMPLS[*]}" '
    function field(line, key,   re) {
        re = "(^| )" key "=[^ ]*"
        if (!match(line, re)) return ""
        return substr(line, RSTART + length(key) + 1 + (RSTART > 1), RLENGTH - length(key) - 1 - (RSTART > 1))
    }
    function cell(k) {
        if (!(k in ns)) return (k in failed) ? "failed" : "-"
        if (bench_ == "skynet") return sprintf("%.0fms %.0fM", ms[k], rss[k] / 1024)
        return sprintf("%.1fns %.0fM", ns[k], rss[k] / 1024)
    }
    /^#/ { next }
    {
        b = field($0, "bench"); i = field($0, "impl"); w = field($0, "workers")
        k = b SUBSEP i SUBSEP w
        if (field($0, "failed") != "") { failed[k] = 1; next }
        v = field($0, "ns_per_op") + 0
        if (!(k in ns) || v < ns[k]) {
            ns[k] = v; ms[k] = field($0, "total_ms") + 0; rss[k] = field($0, "peak_rss_kib") + 0
        }
    }
    END {
        # goal: weft/best ratio to reach; goal_ns: an absolute goal (ns per op) instead;
        # neither: the ratio is reported, without a verdict. Worker count "any": the issues
        # state these goals against the best of Go and Tokio with 1 or 2 workers ("best
        # peer 199 ns (Tokio, 2 workers)"), so weft is taken at its best too, in a row of
        # its own; the rows per worker count show the same ratios at equal worker counts.
        goal["spawn_many"] = 0.35; goal["yield_many"] = 0.3; goal["ping_pong"] = 0.5
        goal["chained_spawn"] = 0.5; goal["skynet"] = 0.57; goal["fib"] = 0.1
        goal_ns["mutex_contention", 1] = 20; goal_ns["mutex_contention", 2] = 60
        goal_ns["queue_ping_pong", "any"] = 100
        nb = split(benches, B, " "); ni = split(impls, I, " ")
        printf "%-16s %3s", "bench", "w"
        for (j = 1; j <= ni; j++) printf "  %-15s", I[j]
        printf "  %-6s %9s %6s  %s\n", "best", "weft/best", "goal", "verdict"
        for (x = 1; x <= nb; x++) {
            bench_ = B[x]
            for (j = 1; j <= ni; j++) { # each implementation at its best worker count
                a = bench_ SUBSEP I[j] SUBSEP "any"
                for (w = 1; w <= 2; w++) {
                    k = bench_ SUBSEP I[j] SUBSEP w
                    if ((k in ns) && (!(a in ns) || ns[k] < ns[a])) {
                        ns[a] = ns[k]; ms[a] = ms[k]; rss[a] = rss[k]; at[a] = w
                    }
                }
            }
            rows = (bench_ in goal || (bench_, "any") in goal_ns) ? 3 : 2
            for (row = 1; row <= rows; row++) {
                w = row <= 2 ? row : "any"
                printf "%-16s %3s", bench_, w
                best = ""; bestv = 0
                for (j = 1; j <= ni; j++) {
                    k = bench_ SUBSEP I[j] SUBSEP w
                    printf "  %-15s", cell(k) (w == "any" && (k in ns) ? "@" at[k] : "")
                    if ((I[j] == "go" || I[j] == "tokio") && (k in ns) && (best == "" || ns[k] < bestv)) {
                        best = I[j]; bestv = ns[k]
                    }
                }
                if ((bench_, w) in goal_ns) goal_text = sprintf("%.0fns", goal_ns[bench_, w])
                else if (bench_ in goal && w == "any") goal_text = sprintf("%.2fx", goal[bench_])
                else goal_text = "-"
                wk = bench_ SUBSEP "weft" SUBSEP w
                if (!(wk in ns)) {
                    printf "  %-6s %9s %6s  %s\n", (best == "" ? "-" : best), "-", goal_text, "-"
                    continue
                }
                ratio_text = best == "" ? "-" : sprintf("%.3fx", ns[wk] / bestv)
                if ((bench_, w) in goal_ns)
                    verdict = ns[wk] <= goal_ns[bench_, w] ? "met" : "not met"
                else if (best == "" || goal_text == "-")
                    verdict = "-"
                else
                    verdict = ns[wk] / bestv <= goal[bench_] ? "met" : "not met"
                if (bench_ == "skynet" && best != "" && goal_text != "-")
                    verdict = "time " verdict ", RSS " (rss[wk] <= 64 * 1024 ? "met" : "not met")
                if (best == "") best = "-"
                printf "  %-6s %9s %6s  %s\n", best, ratio_text, goal_text, verdict
            }
        }
        for (x = 1; x <= nb; x++) {
            if (B[x] != "queue_throughput") continue
            print ""
            printf "queue_throughput, million items per second:"
            for (w = 1; w <= 2; w++) {
                printf "\n  workers=%d:", w
                for (j = 1; j <= ni; j++) {
                    k = B[x] SUBSEP I[j] SUBSEP w
                    if ((k in ns) && ns[k] > 0) printf " %s %.2f", I[j], 1e3 / ns[k]
                }
            }
            print ""
        }
        print ""
        print "cells: ns per op (skynet: total ms) and peak RSS in MiB; best = faster of go and tokio"
        print "at the same worker count; w=any: each at its best worker count (@w), which is what"
        print "the issues state their goals against; goal = weft/best ratio to reach (skynet also"
        print "RSS <= 64 MiB), or ns per op for weft to reach (mutex_contention with 1 and with 2"
        print "workers, queue_ping_pong); queue_throughput reports the ratio only"
    }' "$RESULTS"
    if [ ${#notes[@]} -gt 0 ]; then
        echo
        for n in "${notes[@]}"; do echo "note: $n"; done
    fi
}
report | tee "$SUMMARY"
echo "raw lines: $SHOWN/results.txt"
