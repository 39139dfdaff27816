"""asyncio / uvloop peer of perf/bench_core.c and perf/bench_sync.c for the benchmarks where
one Python event loop makes sense: spawn_many, yield_many, ping_pong, chained_spawn,
mutex_contention, queue_ping_pong, queue_throughput.

usage: bench_asyncio.py BENCH [--loop asyncio|uvloop] [--div D]

One event loop, so always workers=1. Sizes are the core sizes divided by PY_DIV (and by
D), so a run stays within seconds; the output is per operation, like every other peer.
"""

import asyncio
import resource
import sys
import time

PY_DIV = 10  # Python is ~10x slower per operation; keep each run near a second


def sizes(div):
    return {
        "spawn_many": 1_000_000 // div,
        "yield_tasks": 1_000,
        "yield_count": max(1, 10_000 // div),
        "pp_pairs": 1_000,
        "pp_trips": max(1, 5_000 // div),
        "chained": 4_000_000 // div,
        "mutex_tasks": 1_000,
        "mutex_iters": max(1, 20_000 // div),
        "tp_producers": 4,
        "tp_consumers": 4,
        "tp_items": max(1, 1_000_000 // div),
        "tp_capacity": 1_024,
    }


async def spawn_many(n):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = 0

    async def bump():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    for _ in range(n):
        asyncio.create_task(bump())  # the ready queue holds it until its only step ran
    await done
    return n, count


async def yield_many(tasks, count):
    async def body():
        for _ in range(count):
            await asyncio.sleep(0)

    await asyncio.gather(*(body() for _ in range(tasks)))
    return tasks * count, 0


async def ping_pong(pairs, trips):
    # Each round trip: A completes a fresh future B awaits, B completes a fresh one A awaits
    # (the same handoff bench_core.c builds from weft futures).
    loop = asyncio.get_running_loop()

    async def pinger(out):
        for _ in range(trips):
            back = loop.create_future()
            out.set_result(back)
            out = await back

    async def ponger(inbox):
        for i in range(trips):
            back = await inbox
            inbox = loop.create_future() if i + 1 < trips else None
            back.set_result(inbox)

    coros = []
    for _ in range(pairs):
        first = loop.create_future()
        coros += [pinger(first), ponger(first)]
    del first  # each future refers to the next: keep no head of the chain alive
    await asyncio.gather(*coros)
    return pairs * trips, 0


async def chained_spawn(n):
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    async def link(left):
        if left == 0:
            done.set_result(None)
            return
        asyncio.create_task(link(left - 1))  # held by the ready queue until it ran

    await link(n)
    await done
    return n, 0


async def mutex_contention(tasks, iters):
    # tasks x iters acquire / counter += 1 / release on one asyncio.Lock.
    lock = asyncio.Lock()
    counter = 0

    async def body():
        nonlocal counter
        for _ in range(iters):
            async with lock:
                counter += 1

    await asyncio.gather(*(body() for _ in range(tasks)))
    return tasks * iters, counter


async def queue_ping_pong(pairs, trips):
    # Two asyncio.Queue(1) per pair; the answer counts the numbers that came back unchanged.
    async def pinger(ping, pong):
        echoed = 0
        for i in range(1, trips + 1):
            await ping.put(i)
            echoed += await pong.get() == i
        return echoed

    async def ponger(ping, pong):
        for _ in range(trips):
            await pong.put(await ping.get())
        return 0

    coros = []
    for _ in range(pairs):
        ping, pong = asyncio.Queue(1), asyncio.Queue(1)
        coros += [pinger(ping, pong), ponger(ping, pong)]
    return pairs * trips, sum(await asyncio.gather(*coros))


async def queue_throughput(producers, consumers, items, capacity):
    # One asyncio.Queue(capacity); producer p puts p+1, p+1+P, ...; Python 3.11 has no
    # Queue.shutdown, so after the last put each consumer gets one None and stops.
    q = asyncio.Queue(capacity)

    async def produce(first):
        for v in range(first, items + 1, producers):
            await q.put(v)

    async def consume():
        total = 0
        while (v := await q.get()) is not None:
            total += v
        return total

    getters = [asyncio.create_task(consume()) for _ in range(consumers)]
    await asyncio.gather(*(produce(p + 1) for p in range(producers)))
    for _ in range(consumers):
        await q.put(None)
    return items, sum(await asyncio.gather(*getters))


async def run(bench, sz):
    t0 = time.perf_counter_ns()
    if bench == "spawn_many":
        ops, answer = await spawn_many(sz["spawn_many"])
    elif bench == "yield_many":
        ops, answer = await yield_many(sz["yield_tasks"], sz["yield_count"])
    elif bench == "ping_pong":
        ops, answer = await ping_pong(sz["pp_pairs"], sz["pp_trips"])
    elif bench == "chained_spawn":
        ops, answer = await chained_spawn(sz["chained"])
    elif bench == "mutex_contention":
        ops, answer = await mutex_contention(sz["mutex_tasks"], sz["mutex_iters"])
    elif bench == "queue_ping_pong":
        ops, answer = await queue_ping_pong(sz["pp_pairs"], sz["pp_trips"])
    elif bench == "queue_throughput":
        ops, answer = await queue_throughput(
            sz["tp_producers"], sz["tp_consumers"], sz["tp_items"], sz["tp_capacity"]
        )
    else:
        usage()
    return time.perf_counter_ns() - t0, ops, answer


def usage():
    sys.stderr.write("usage: bench_asyncio.py BENCH [--loop asyncio|uvloop] [--div D]\n")
    sys.exit(2)


def main():
    if len(sys.argv) < 2:
        usage()
    bench, loop_name, div = sys.argv[1], "asyncio", 1
    args = sys.argv[2:]
    if len(args) % 2:
        usage()
    for flag, value in zip(args[::2], args[1::2]):
        if flag == "--loop" and value in ("asyncio", "uvloop"):
            loop_name = value
        elif flag == "--div" and value.isdigit() and int(value) > 0:
            div = int(value)
        else:
            usage()
    if loop_name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    ns, ops, answer = asyncio.run(run(bench, sizes(div * PY_DIV)))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"bench={bench} impl={loop_name} workers=1 ns_per_op={ns / ops:.1f} ops={ops} "
        f"total_ms={ns / 1e6:.1f} peak_rss_kib={rss} answer={answer}"
    )


if __name__ == "__main__":
    main()
