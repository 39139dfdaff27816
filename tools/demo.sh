#!/usr/bin/env bash
# weft's demo: builds weft (Release) and runs the core benchmarks on 1..N workers, printing
# one table (time per operation and peak memory). Finishes by itself in well under a minute.
#   tools/demo.sh [--div D]   D divides the benchmark sizes (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
div=2
[ "${1:-}" = "--div" ] && div="$2"
tools/deps.sh
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release -DWEFT_TESTS=OFF >/dev/null
cmake --build build-demo -j "$(nproc)" --target bench_core >/dev/null
bench=build-demo/perf/bench_core
cores=$(nproc)
workers=(1)
[ "$cores" -ge 2 ] && workers+=(2)
[ "$cores" -ge 4 ] && workers+=("$cores")

printf '\nweft core benchmarks (sizes / %s, the second of two runs each), %s core(s) on %s\n\n' \
    "$div" "$cores" "$(uname -m)"
printf '%-14s' "benchmark"
for w in "${workers[@]}"; do printf '%24s' "$w worker(s)"; done
printf '\n'
for b in spawn_many yield_many ping_pong chained_spawn skynet fib; do
    printf '%-14s' "$b"
    for w in "${workers[@]}"; do
        # the second of two runs: the first also pays for memory the machine has not
        # touched for a while (on this project's VM, fresh huge pages cost several times more)
        timeout 60 "$bench" "$b" --workers "$w" --div "$div" >/dev/null || true
        line=$(timeout 60 "$bench" "$b" --workers "$w" --div "$div") || line=""
        ns=$(sed -n 's/.*ns_per_op=\([0-9.]*\).*/\1/p' <<<"$line")
        rss=$(sed -n 's/.*peak_rss_kib=\([0-9]*\).*/\1/p' <<<"$line")
        if [ -n "$ns" ]; then
            printf '%24s' "$(printf '%.1f ns/op %5d MiB' "$ns" $((rss / 1024)))"
        else
            printf '%24s' "failed"
        fi
    done
    printf '\n'
done
cat <<'TXT'

  spawn_many     1M tasks spawned from one task, each bumps an atomic (per task)
  yield_many     1,000 tasks x 10,000 weft_yield (per yield)
  ping_pong      1,000 task pairs x 5,000 round trips through futures (per round trip)
  chained_spawn  4M tasks, each spawning the next (per spawn)
  skynet         1M leaves, 10-ary tree, parents await children (per task)
  fib            fib(30) fork-join: spawn fib(n-1), compute fib(n-2), await (per spawn)

Side by side with Go, Tokio and asyncio/uvloop: perf/run.sh (see perf/README.md).
TXT
