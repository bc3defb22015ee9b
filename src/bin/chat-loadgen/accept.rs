//! accept: how fast the server takes new connections and logins, and what
//! the v1 join storm costs.
//!
//! `--concurrency` workers each open a connection, log in, time it, and
//! start over, until `--connections` have been opened or `--duration` has
//! passed. By default every connection stays open and keeps reading, as
//! when all clients reconnect after a restart: in v1 each login is
//! broadcast to every open connection, so N logins cost about N²/2 frames.
//! A barrier login after the last one tells when that storm is over. In
//! v2 a server past its presence budget summarises joins in paced
//! `presence` frames instead: `join_frames` counts the frames and
//! `joins_heard` the joins they told of, so the saving shows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;

use crate::common::{Barrier, CommonArgs, Counters, Ctx, Ending, login, secs};
use crate::latency::Latencies;
use crate::net::{Ws, within};
use crate::procfs::{CpuMeter, CpuMeters};
use crate::summary::{Status, report, round1};
use crate::wire::{Ear, Joins, Protocol};

#[derive(Debug, Clone, clap::Args)]
pub struct AcceptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Connections to open and log in.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub connections: usize,
    /// Stop opening connections after this long, even if fewer were opened.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Close each connection right after its login instead of keeping it
    /// open: measures accept + login alone, without the join storm.
    #[arg(long)]
    pub close_after_login: bool,
}

report! {
    /// The accept summary line.
    pub struct AcceptReport (mode = "accept") {
        pub status: Status,
        pub protocol: Protocol,
        /// Connections asked for.
        pub connections: usize,
        /// Connections kept open after login (false: closed at once).
        pub keep_open: bool,
        /// Connections that logged in.
        pub opened: usize,
        /// Connections that failed to connect or log in.
        pub failed: usize,
        /// From the first connect to the last loginMessage, seconds.
        pub elapsed_s: f64,
        /// `opened / elapsed_s`: connections + logins per second.
        pub per_s: f64,
        /// Connect start to loginMessage, microseconds.
        pub p50_us: Option<u64>,
        pub p99_us: Option<u64>,
        pub p999_us: Option<u64>,
        pub max_us: Option<u64>,
        /// Connect start to WebSocket handshake done, microseconds.
        pub handshake_p50_us: Option<u64>,
        pub handshake_p99_us: Option<u64>,
        /// Join notices the clients received (the join storm), in frames:
        /// `loginBroadcast`s plus (v2) `presence` summaries.
        pub join_frames: u64,
        /// The joins those frames told of: `loginBroadcast`s plus the
        /// `joinedCount` of every `presence`. Equals `join_frames` in v1.
        pub joins_heard: u64,
        /// From the first connect until every open connection had heard
        /// every login, seconds (`na` with --close-after-login).
        pub join_s: Option<f64>,
        /// `join_frames / join_s`.
        pub join_frames_per_s: Option<f64>,
        /// Logged-in connections that the server closed.
        pub closed: usize,
        /// CPU seconds (user + system) the server and the load generator
        /// spent on the whole run, join storm included.
        pub server_cpu_s: Option<f64>,
        pub loadgen_cpu_s: Option<f64>,
        pub server_rss_kib: Option<u64>,
        pub loadgen_rss_kib: Option<u64>,
    }
}

struct Shared {
    args: AcceptArgs,
    start: Instant,
    ear: Ear,
    next: AtomicUsize,
    counters: Counters,
    /// Join notices received, per connection (no shared hot counter):
    /// frames and joins.
    join_frames: Vec<AtomicU64>,
    joins_heard: Vec<AtomicU64>,
    /// Nanoseconds from `start` to the latest loginMessage.
    last_login_nanos: AtomicU64,
    to_login: Latencies,
    to_handshake: Latencies,
}

pub async fn run(args: AcceptArgs) -> anyhow::Result<AcceptReport> {
    ensure!(args.connections >= 1, "--connections must be at least 1");
    let workers = args.common.concurrency.clamp(1, args.connections);
    let sockets = match args.close_after_login {
        true => workers,
        // All of them, and the barrier.
        false => args.connections + 1,
    };
    let ctx = Arc::new(Ctx::new(&args.common, sockets)?);
    let shared = Arc::new(Shared {
        start: Instant::now(),
        ear: ctx.ear(),
        next: AtomicUsize::new(0),
        counters: Counters::default(),
        join_frames: (0..args.connections).map(|_| AtomicU64::new(0)).collect(),
        joins_heard: (0..args.connections).map(|_| AtomicU64::new(0)).collect(),
        last_login_nanos: AtomicU64::new(0),
        to_login: Latencies::new(),
        to_handshake: Latencies::new(),
        args,
    });
    let args = &shared.args;
    let server_cpu = CpuMeters::start(&ctx.server_pids);
    let loadgen_cpu = CpuMeter::start(None);

    let tasks: Vec<_> = (0..workers)
        .map(|_| ctx.rt.spawn(worker(ctx.clone(), shared.clone())))
        .collect();
    let left = ctx.deadline.saturating_duration_since(Instant::now());
    let mut status = match within(left, async {
        for task in tasks {
            task.await;
        }
    })
    .await
    {
        Ok(()) => Status::Ok,
        Err(_) => Status::Timeout,
    };
    let counters = &shared.counters;
    let elapsed = Duration::from_nanos(shared.last_login_nanos.load(Ordering::Relaxed));

    let mut join = None;
    if !args.close_after_login && status == Status::Ok {
        let settled = ctx
            .barrier(
                ctx.deadline,
                || counters.alive(),
                || Counters::get(&counters.heard_barrier),
            )
            .await;
        if settled {
            join = Some(shared.start.elapsed());
        } else {
            status = Status::Timeout;
        }
    }

    let opened = Counters::get(&counters.logged_in);
    if opened == 0 {
        status = Status::Failed;
    }
    let to_login = shared.to_login.percentiles();
    let to_handshake = shared.to_handshake.percentiles();
    let total = |counts: &[AtomicU64]| counts.iter().map(|n| n.load(Ordering::Relaxed)).sum();
    let join_frames = total(&shared.join_frames);
    Ok(AcceptReport {
        status,
        protocol: ctx.protocol,
        connections: args.connections,
        keep_open: !args.close_after_login,
        opened,
        failed: Counters::get(&counters.failed),
        elapsed_s: round1(elapsed.as_secs_f64()),
        per_s: match elapsed.as_secs_f64() {
            0.0 => 0.0,
            s => round1(opened as f64 / s),
        },
        p50_us: to_login.p50_us,
        p99_us: to_login.p99_us,
        p999_us: to_login.p999_us,
        max_us: to_login.max_us,
        handshake_p50_us: to_handshake.p50_us,
        handshake_p99_us: to_handshake.p99_us,
        join_frames,
        joins_heard: total(&shared.joins_heard),
        join_s: join.map(secs),
        join_frames_per_s: join.map(|d| round1(join_frames as f64 / d.as_secs_f64())),
        closed: Counters::get(&counters.closed),
        server_cpu_s: server_cpu.seconds(),
        loadgen_cpu_s: loadgen_cpu.seconds(),
        server_rss_kib: ctx.server_rss_kib(),
        loadgen_rss_kib: crate::procfs::own_rss_kib(),
    })
}

/// Opens and logs in connections one after another until there are enough
/// or time is up.
async fn worker(ctx: Arc<Ctx>, shared: Arc<Shared>) {
    let open_until = shared.start + shared.args.duration;
    let counters = &shared.counters;
    loop {
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if n >= shared.args.connections || Instant::now() >= open_until {
            return;
        }
        let started = Instant::now();
        let opened = async {
            let mut ws = ctx.dialer.dial().await?;
            let handshake = started.elapsed();
            let heard = login(&mut ws, &ctx.username(n), &shared.ear).await?;
            anyhow::Ok((ws, handshake, heard))
        };
        let (ws, handshake, heard) = match opened.await {
            Ok(opened) => opened,
            Err(error) => {
                counters.fail(format_args!("{error:#}"));
                continue;
            }
        };
        shared.to_login.record(started.elapsed());
        shared.to_handshake.record(handshake);
        let since_start = shared.start.elapsed().as_nanos() as u64;
        shared
            .last_login_nanos
            .fetch_max(since_start, Ordering::Relaxed);
        shared.count_joins(n, heard);
        Counters::bump(&counters.logged_in);
        if !shared.args.close_after_login {
            ctx.rt.spawn(listen(n, ws, shared.clone())).detach();
        }
    }
}

/// Keeps an open connection reading, counting the join storm.
async fn listen(n: usize, mut ws: Ws, shared: Arc<Shared>) {
    let mut ending = Ending::default();
    let mut barrier = Barrier::default();
    while let Some(next) = ws.next().await {
        ending.note(&next);
        if let Ok(Message::Text(text)) = next {
            let heard = shared.ear.hear(&text);
            barrier.note(&heard, &shared.counters);
            let mut joins = Joins::default();
            joins.count(&heard);
            shared.count_joins(n, joins);
        }
    }
    shared.counters.close(ending.as_str());
}

impl Shared {
    fn count_joins(&self, n: usize, joins: Joins) {
        if joins.frames > 0 {
            self.join_frames[n].fetch_add(joins.frames, Ordering::Relaxed);
            self.joins_heard[n].fetch_add(joins.heard, Ordering::Relaxed);
        }
    }
}
