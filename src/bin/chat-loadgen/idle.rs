//! idle: N logged-in clients that only answer pings, to measure what an
//! idle connection costs the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use smol::Timer;

use crate::common::{Barrier, CommonArgs, Counters, Ctx, Ending, not_logged_in, secs};
use crate::summary::{Status, report};
use crate::wire::{Heard, Protocol};

#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Logged-in idle clients.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub clients: usize,
    /// How long to hold them after the join storm has settled. Run the
    /// server with a short --ping-interval to see pings within it.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    /// Give up if connecting, logging in and the join storm take longer.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    pub setup_timeout: Duration,
}

report! {
    /// The idle summary line.
    pub struct IdleReport (mode = "idle") {
        pub status: Status,
        pub protocol: Protocol,
        /// Clients asked for.
        pub clients: usize,
        /// Clients that logged in.
        pub logged_in: usize,
        /// Clients that failed to connect or log in.
        pub failed: usize,
        /// Connecting, logging in and the join storm, seconds.
        pub setup_s: f64,
        pub hold_s: f64,
        /// Pings the clients received (and tungstenite answered).
        pub pings: u64,
        /// Logged-in clients whose connection ended during the run.
        pub closed: usize,
        /// errorMessage and undecodable frames received.
        pub errors: u64,
        /// Server VmRSS before the first connection.
        pub server_rss_before_kib: Option<u64>,
        /// Server VmRSS once every client is logged in and the join storm is over.
        pub server_rss_after_kib: Option<u64>,
        /// Server VmRSS at the end of the hold.
        pub server_rss_held_kib: Option<u64>,
        /// `(held - before) / logged_in`, in bytes.
        pub server_bytes_per_conn: Option<u64>,
        pub loadgen_rss_kib: Option<u64>,
    }
}

#[derive(Default)]
struct Shared {
    counters: Counters,
    pings: AtomicU64,
    errors: AtomicU64,
}

pub async fn run(args: IdleArgs) -> anyhow::Result<IdleReport> {
    ensure!(args.clients >= 1, "--clients must be at least 1");
    // The clients and the barrier.
    let ctx = Arc::new(Ctx::new(&args.common, args.clients + 1)?);
    let shared = Arc::new(Shared::default());
    let mut report = IdleReport {
        status: Status::Timeout,
        protocol: ctx.protocol,
        clients: args.clients,
        logged_in: 0,
        failed: 0,
        setup_s: 0.0,
        hold_s: 0.0,
        pings: 0,
        closed: 0,
        errors: 0,
        server_rss_before_kib: ctx.server_rss_kib(),
        server_rss_after_kib: None,
        server_rss_held_kib: None,
        server_bytes_per_conn: None,
        loadgen_rss_kib: None,
    };

    let setup_start = Instant::now();
    let setup_deadline = setup_start + args.setup_timeout;
    for n in 0..args.clients {
        ctx.rt
            .spawn(client(n, ctx.clone(), shared.clone()))
            .detach();
    }
    let counters = &shared.counters;
    let settled = ctx.settle(setup_deadline, counters, args.clients).await;
    report.setup_s = secs(setup_start.elapsed());
    if counters.alive() == 0 {
        report.status = Status::Failed;
    }

    if settled {
        report.server_rss_after_kib = ctx.server_rss_kib();
        let hold_start = Instant::now();
        Timer::at((hold_start + args.hold).min(ctx.deadline)).await;
        report.hold_s = secs(hold_start.elapsed());
        report.server_rss_held_kib = ctx.server_rss_kib();
        if Instant::now() < ctx.deadline {
            report.status = Status::Ok;
        }
    }

    report.logged_in = Counters::get(&counters.logged_in);
    report.failed = Counters::get(&counters.failed);
    report.closed = Counters::get(&counters.closed);
    report.pings = shared.pings.load(Ordering::Relaxed);
    report.errors = shared.errors.load(Ordering::Relaxed);
    report.server_bytes_per_conn = match (report.server_rss_before_kib, report.server_rss_held_kib)
    {
        (Some(before), Some(held)) if report.logged_in > 0 => {
            Some(held.saturating_sub(before) * 1024 / report.logged_in as u64)
        }
        _ => None,
    };
    report.loadgen_rss_kib = crate::procfs::own_rss_kib();
    Ok(report)
}

/// One idle client: connect, log in, then keep reading, which is what
/// makes tungstenite answer the server's pings.
async fn client(n: usize, ctx: Arc<Ctx>, shared: Arc<Shared>) {
    let counters = &shared.counters;
    let opened = ctx.open_and_log_in(n);
    let mut ws = match opened.await {
        Ok(ws) => ws,
        Err(error) => return counters.fail(format_args!("{error:#}")),
    };
    let ear = ctx.ear();
    let mut barrier = Barrier::default();
    let mut logged_in = false;
    let mut refused = None;
    let mut ending = Ending::default();
    while let Some(next) = ws.next().await {
        ending.note(&next);
        let Ok(message) = next else { break };
        match message {
            Message::Text(text) => match ear.hear(&text) {
                Heard::LoginMessage => {
                    logged_in = true;
                    Counters::bump(&counters.logged_in);
                }
                heard @ (Heard::LoginBroadcast { .. } | Heard::Presence { .. }) => {
                    barrier.note(&heard, counters);
                }
                Heard::Error(code) => {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    refused.get_or_insert(code);
                }
                Heard::Garbage => {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            },
            Message::Ping(_) => {
                shared.pings.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    if logged_in {
        counters.close(ending.as_str());
    } else {
        counters.fail(not_logged_in(&ctx.username(n), refused));
    }
}
