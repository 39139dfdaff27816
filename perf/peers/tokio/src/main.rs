//! Tokio peer of perf/bench_core.c: the same six benchmarks, the same sizes, one output line.
//!
//! usage: bench_tokio BENCH [--workers N] [--div D]
//!   BENCH: spawn_many yield_many ping_pong chained_spawn skynet fib
//!   --workers N: multi_thread runtime with N worker threads (default 2)
//!   --div D: divide the sizes by D (perf/run.sh --quick passes 10)
//!
//! Every benchmark body runs inside a spawned task (so it runs on a worker, like weft's
//! main task and Go's main goroutine), and is timed from inside that task.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Notify};

struct Sizes {
    spawn_many: usize,
    yield_tasks: usize,
    yield_count: usize,
    pp_pairs: usize,
    pp_trips: usize,
    chained: usize,
    skynet_leaves: u64,
    fib_n: u64,
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

async fn ping_pong(pairs: usize, trips: usize) -> Outcome {
    let mut handles = Vec::with_capacity(pairs * 2);
    for _ in 0..pairs {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        handles.push(tokio::spawn(async move {
            for i in 0..trips as u64 {
                ping_tx.send(i).await.unwrap();
                pong_rx.recv().await.unwrap();
            }
        }));
        handles.push(tokio::spawn(async move {
            for _ in 0..trips {
                let v = ping_rx.recv().await.unwrap();
                pong_tx.send(v).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    ((pairs * trips) as u64, 0)
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
    eprintln!("usage: bench_tokio BENCH [--workers N] [--div D]");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bench = args.next().unwrap_or_else(|| usage());
    let mut workers = 2usize;
    let mut div = 1usize;
    while let Some(a) = args.next() {
        let v = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage());
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
                "ping_pong" => ping_pong(sz.pp_pairs, sz.pp_trips).await,
                "chained_spawn" => chained_spawn(sz.chained).await,
                "skynet" => {
                    let sum = skynet(0, sz.skynet_leaves).await;
                    (skynet_tasks(sz.skynet_leaves), sum)
                }
                "fib" => (fib_spawns(sz.fib_n), fib(sz.fib_n).await),
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
