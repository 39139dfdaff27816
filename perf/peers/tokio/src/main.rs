//! Tokio peer of perf/bench_core.c and perf/bench_sync.c: the same benchmarks, the same
//! sizes, one output line.
//!
//! usage: bench_tokio BENCH [--workers N] [--div D] [--channel async-channel|mpsc]
//!   BENCH: spawn_many yield_many ping_pong chained_spawn skynet fib
//!          mutex_contention queue_ping_pong queue_throughput
//!   --workers N: multi_thread runtime with N worker threads (default 2)
//!   --div D: divide the sizes by D (perf/run.sh --quick passes 10)
//!   --channel: queue_throughput's channel (default async-channel, see queue_throughput)
//!
//! Every benchmark body runs inside a spawned task (so it runs on a worker, like weft's
//! main task and Go's main goroutine), and is timed from inside that task.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Mutex, Notify};

struct Sizes {
    spawn_many: usize,
    yield_tasks: usize,
    yield_count: usize,
    pp_pairs: usize,
    pp_trips: usize,
    chained: usize,
    skynet_leaves: u64,
    fib_n: u64,
    mutex_tasks: usize,
    mutex_iters: usize,
    tp_producers: usize,
    tp_consumers: usize,
    tp_items: usize,
    tp_capacity: usize,
}

fn sizes(div: usize) -> Sizes {
    let mut leaves = 1_000_000u64;
    let mut d = div;
    while d >= 10 && leaves > 10 {
        leaves /= 10;
        d /= 10;
    }
    Sizes {
        spawn_many: 1_000_000 / div,
        yield_tasks: 1_000,
        yield_count: 10_000 / div,
        pp_pairs: 1_000,
        pp_trips: 5_000 / div,
        chained: 4_000_000 / div,
        skynet_leaves: leaves,
        fib_n: if div > 1 { 25 } else { 30 },
        mutex_tasks: 1_000,
        mutex_iters: 20_000 / div,
        tp_producers: 4,
        tp_consumers: 4,
        tp_items: 1_000_000 / div,
        tp_capacity: 1_024,
    }
}

/// (ops, answer) of one run; the caller times it.
type Outcome = (u64, u64);

async fn spawn_many(n: usize) -> Outcome {
    let done = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(Notify::new());
    for _ in 0..n {
        let done = done.clone();
        let notify = notify.clone();
        tokio::spawn(async move {
            if done.fetch_add(1, Ordering::AcqRel) + 1 == n {
                notify.notify_one();
            }
        });
    }
    notify.notified().await;
    (n as u64, done.load(Ordering::Acquire) as u64)
}

async fn yield_many(tasks: usize, count: usize) -> Outcome {
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        handles.push(tokio::spawn(async move {
            for _ in 0..count {
                tokio::task::yield_now().await;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    ((tasks * count) as u64, 0)
}

/// Round trips over two `mpsc::channel(1)` per pair (ping_pong and queue_ping_pong alike);
/// the answer counts the numbers that came back unchanged.
async fn ping_pong(pairs: usize, trips: usize) -> Outcome {
    let mut handles = Vec::with_capacity(pairs * 2);
    for _ in 0..pairs {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        handles.push(tokio::spawn(async move {
            let mut echoed = 0u64;
            for i in 1..=trips as u64 {
                ping_tx.send(i).await.unwrap();
                echoed += (pong_rx.recv().await.unwrap() == i) as u64;
            }
            echoed
        }));
        handles.push(tokio::spawn(async move {
            for _ in 0..trips {
                let v = ping_rx.recv().await.unwrap();
                pong_tx.send(v).await.unwrap();
            }
            0
        }));
    }
    let mut echoed = 0;
    for h in handles {
        echoed += h.await.unwrap();
    }
    ((pairs * trips) as u64, echoed)
}

/// tasks x iters `lock().await` / counter += 1 / unlock on one `tokio::sync::Mutex<u64>`;
/// the counter must end at tasks x iters.
async fn mutex_contention(tasks: usize, iters: usize) -> Outcome {
    let counter = Arc::new(Mutex::new(0u64));
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let counter = counter.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..iters {
                *counter.lock().await += 1;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let total = *counter.lock().await;
    ((tasks * iters) as u64, total)
}

/// Producers send 1..items (producer p: p+1, p+1+P, ...) and consumers receive until every
/// sender is gone, then return their sums, which add up to items (items + 1) / 2.
/// async-channel (default): one bounded MPMC channel of `capacity` shared by all, like weft's
/// queue and Go's channel. mpsc: Tokio's own channel has one receiver, so each consumer owns
/// one `mpsc::channel(capacity / consumers)` (the same room in all) and each producer feeds
/// them round-robin.
async fn queue_throughput(
    producers: usize,
    consumers: usize,
    items: usize,
    capacity: usize,
    mpmc: bool,
) -> Outcome {
    let mut handles = Vec::with_capacity(consumers);
    if mpmc {
        let (tx, rx) = async_channel::bounded::<u64>(capacity);
        for _ in 0..consumers {
            let rx = rx.clone();
            handles.push(tokio::spawn(async move {
                let mut sum = 0u64;
                while let Ok(v) = rx.recv().await {
                    sum += v;
                }
                sum
            }));
        }
        for p in 0..producers {
            let tx = tx.clone();
            tokio::spawn(async move {
                for v in (p + 1..=items).step_by(producers) {
                    tx.send(v as u64).await.unwrap();
                }
            });
        }
    } else {
        let room = (capacity / consumers).max(1);
        let mut senders = Vec::with_capacity(consumers);
        for _ in 0..consumers {
            let (tx, mut rx) = mpsc::channel::<u64>(room);
            senders.push(tx);
            handles.push(tokio::spawn(async move {
                let mut sum = 0u64;
                while let Some(v) = rx.recv().await {
                    sum += v;
                }
                sum
            }));
        }
        for p in 0..producers {
            let txs = senders.clone();
            tokio::spawn(async move {
                let mut next = p % txs.len();
                for v in (p + 1..=items).step_by(producers) {
                    txs[next].send(v as u64).await.unwrap();
                    next = (next + 1) % txs.len();
                }
            });
        }
    }
    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap();
    }
    (items as u64, sum)
}

fn chain(left: usize, done: Arc<Notify>) {
    if left == 0 {
        done.notify_one();
        return;
    }
    tokio::spawn(async move { chain(left - 1, done) });
}

async fn chained_spawn(n: usize) -> Outcome {
    let done = Arc::new(Notify::new());
    chain(n, done.clone());
    done.notified().await;
    (n as u64, 0)
}

fn skynet(num: u64, size: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if size == 1 {
            return num;
        }
        let child = size / 10;
        let mut handles = Vec::with_capacity(10);
        for i in 0..10 {
            handles.push(tokio::spawn(skynet(num + i * child, child)));
        }
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    })
}

fn skynet_tasks(leaves: u64) -> u64 {
    let (mut total, mut level) = (0, leaves);
    while level >= 1 {
        total += level;
        level /= 10;
    }
    total
}

fn fib(n: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if n < 2 {
            return n;
        }
        let child = tokio::spawn(fib(n - 1));
        let b = fib(n - 2).await;
        child.await.unwrap() + b
    })
}

fn fib_spawns(n: u64) -> u64 {
    // calls with n >= 2 = fib(n + 1) - 1
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n + 1 {
        let t = a + b;
        a = b;
        b = t;
    }
    a - 1
}

fn peak_rss_kib() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss
}

fn usage() -> ! {
    eprintln!("usage: bench_tokio BENCH [--workers N] [--div D] [--channel async-channel|mpsc]");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bench = args.next().unwrap_or_else(|| usage());
    let mut workers = 2usize;
    let mut div = 1usize;
    let mut mpmc = true;
    while let Some(a) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        if a == "--channel" {
            mpmc = match value.as_str() {
                "async-channel" => true,
                "mpsc" => false,
                _ => usage(),
            };
            continue;
        }
        let v = value.parse().unwrap_or_else(|_| usage());
        match a.as_str() {
            "--workers" => workers = v,
            "--div" => div = v.max(1),
            _ => usage(),
        }
    }
    let sz = sizes(div);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .unwrap();
    let name = bench.clone();
    let (ns, ops, answer) = rt.block_on(async move {
        tokio::spawn(async move {
            let t0 = Instant::now();
            let (ops, answer) = match name.as_str() {
                "spawn_many" => spawn_many(sz.spawn_many).await,
                "yield_many" => yield_many(sz.yield_tasks, sz.yield_count).await,
                "ping_pong" => (ping_pong(sz.pp_pairs, sz.pp_trips).await.0, 0),
                "chained_spawn" => chained_spawn(sz.chained).await,
                "skynet" => {
                    let sum = skynet(0, sz.skynet_leaves).await;
                    (skynet_tasks(sz.skynet_leaves), sum)
                }
                "fib" => (fib_spawns(sz.fib_n), fib(sz.fib_n).await),
                "mutex_contention" => mutex_contention(sz.mutex_tasks, sz.mutex_iters).await,
                "queue_ping_pong" => ping_pong(sz.pp_pairs, sz.pp_trips).await,
                "queue_throughput" => {
                    let (p, c) = (sz.tp_producers, sz.tp_consumers);
                    queue_throughput(p, c, sz.tp_items, sz.tp_capacity, mpmc).await
                }
                _ => usage(),
            };
            (t0.elapsed().as_nanos() as f64, ops, answer)
        })
        .await
        .unwrap()
    });
    drop(rt);
    println!(
        "bench={} impl=tokio workers={} ns_per_op={:.1} ops={} total_ms={:.1} peak_rss_kib={} answer={}",
        bench,
        workers,
        ns / ops as f64,
        ops,
        ns / 1e6,
        peak_rss_kib(),
        answer
    );
}
