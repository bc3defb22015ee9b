//! fanout: N logged-in clients, S of them sending at a fixed total rate;
//! every client counts and times what it receives.
//!
//! Sends are scheduled by the clock (open loop): message `k` of sender `s`
//! is due at `t0 + (k·S + s) / rate`, whatever the server does, and carries
//! its due time, so that a server (or sender) falling behind shows up as
//! latency rather than as a lower offered rate.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::ensure;
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use smol::Timer;
use smol::lock::OnceCell;

use crate::common::{Barrier, CommonArgs, Counters, Ctx, Ending, not_logged_in, secs};
use crate::latency::{Latencies, Pending};
use crate::ledger::{Ledger, Tally};
use crate::net::{Ws, WsSender};
use crate::procfs::{CpuMeter, CpuMeters};
use crate::summary::{Status, report, round1};
use crate::wire::{self, Heard, Protocol, Stamp};

#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Logged-in clients, the senders included.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub clients: usize,
    /// How many of the clients send.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, value_name = "MSGS_PER_S", default_value_t = 500.0)]
    pub rate: f64,
    /// How long the senders send.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long to wait for the last deliveries after the last send.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Length of each message text in bytes (the frame adds ~90 bytes of JSON).
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub text_bytes: usize,
    /// Give up if connecting, logging in and the join storm take longer.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub setup_timeout: Duration,
}

report! {
    /// The fanout summary line.
    pub struct FanoutReport (mode = "fanout") {
        pub status: Status,
        pub protocol: Protocol,
        /// Clients asked for.
        pub clients: usize,
        /// Clients that logged in.
        pub logged_in: usize,
        /// Clients that failed to connect or log in.
        pub failed: usize,
        pub senders: usize,
        /// Target total send rate, messages/s.
        pub rate: f64,
        pub duration_s: f64,
        pub text_bytes: usize,
        /// Messages sent.
        pub sent: u64,
        /// `sent / duration`.
        pub offered_per_s: f64,
        /// Clients logged in when sending began; each should receive every message.
        pub receivers: usize,
        /// `sent × receivers`.
        pub expected: u64,
        /// Deliveries received, each message counted once per receiver.
        pub delivered: u64,
        /// `expected - delivered`, after the drain period.
        pub lost: u64,
        /// `delivered` over the time from the first send to the last delivery.
        pub delivered_per_s: f64,
        /// Latency percentiles, due time to receipt, in microseconds.
        pub p50_us: Option<u64>,
        pub p99_us: Option<u64>,
        pub p999_us: Option<u64>,
        pub max_us: Option<u64>,
        /// Messages whose sender got its own copy back (on v2, the
        /// acknowledgement: with a store, once the message is saved).
        pub acked: u64,
        /// `acked` over the sending time plus the drain, messages/s.
        pub acked_per_s: f64,
        /// Acknowledgement latency percentiles, due time to the sender's
        /// own copy, in microseconds.
        pub ack_p50_us: Option<u64>,
        pub ack_p99_us: Option<u64>,
        /// Deliveries out of per-sender order (duplicates or late).
        pub out_of_order: u64,
        /// Deliveries of messages nobody sent.
        pub unexpected: u64,
        /// Logged-in clients whose connection ended during the run.
        pub closed: usize,
        /// errorMessage and undecodable frames received.
        pub errors: u64,
        /// Worst delay of a send behind its due time (load generator saturation).
        pub max_send_lag_us: u64,
        /// Connecting, logging in and the join storm, seconds.
        pub setup_s: f64,
        /// From the last due send to the last delivery (or the drain limit), seconds.
        pub drain_s: f64,
        /// CPU seconds (user + system) the server and the load generator
        /// spent from the first due send to the end of the drain.
        pub server_cpu_s: Option<f64>,
        pub loadgen_cpu_s: Option<f64>,
        pub server_rss_kib: Option<u64>,
        pub loadgen_rss_kib: Option<u64>,
    }
}

/// What the sending phase needs to know, fixed before it starts.
struct Plan {
    senders: usize,
    rate: f64,
    duration: Duration,
    text_bytes: usize,
    /// All timestamps in messages are nanoseconds since this instant.
    epoch: Instant,
}

impl Plan {
    /// When message `seq` of `sender` is due, relative to `t0`.
    fn due(&self, sender: usize, seq: u64) -> Duration {
        let slot = seq as f64 * self.senders as f64 + sender as f64;
        Duration::from_nanos((slot * 1e9 / self.rate).round() as u64)
    }
}

/// Everything the clients share.
struct Shared {
    plan: Plan,
    counters: Counters,
    /// When sending starts; senders wait for it.
    start: OnceCell<Instant>,
    /// Messages sent by each sender (the next sequence number).
    sent: Vec<AtomicU64>,
    senders_done: AtomicUsize,
    max_send_lag_us: AtomicU64,
    latencies: Latencies,
    /// Of the senders' own copies only.
    ack_latencies: Latencies,
}

/// One client's receiving side, read by the coordinator at the end.
#[derive(Debug)]
struct Receiver {
    logged_in: bool,
    closed: bool,
    ledger: Ledger,
    delivered: u64,
    last_delivery_nanos: u64,
    errors: u64,
    /// Latencies not yet in the shared histograms.
    pending: Pending,
    acked: u64,
}

const LATENCY_BATCH: usize = 256;

impl Receiver {
    fn new(senders: usize) -> Self {
        Receiver {
            logged_in: false,
            closed: false,
            ledger: Ledger::new(senders),
            delivered: 0,
            last_delivery_nanos: 0,
            errors: 0,
            pending: Pending::default(),
            acked: 0,
        }
    }

    fn flush(&mut self, shared: &Shared) {
        (self.pending).flush(&shared.latencies, &shared.ack_latencies);
    }
}

fn lock(receiver: &Mutex<Receiver>) -> MutexGuard<'_, Receiver> {
    receiver.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<FanoutReport> {
    ensure!(args.clients >= 1, "--clients must be at least 1");
    ensure!(
        (1..=args.clients).contains(&args.senders),
        "--senders must be between 1 and --clients"
    );
    ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be positive"
    );
    // The clients and the barrier.
    let ctx = Arc::new(Ctx::new(&args.common, args.clients + 1)?);
    let shared = Arc::new(Shared {
        plan: Plan {
            senders: args.senders,
            rate: args.rate,
            duration: args.duration,
            text_bytes: args.text_bytes,
            epoch: Instant::now(),
        },
        counters: Counters::default(),
        start: OnceCell::new(),
        sent: (0..args.senders).map(|_| AtomicU64::new(0)).collect(),
        senders_done: AtomicUsize::new(0),
        max_send_lag_us: AtomicU64::new(0),
        latencies: Latencies::new(),
        ack_latencies: Latencies::new(),
    });
    let receivers: Vec<Arc<Mutex<Receiver>>> = (0..args.clients)
        .map(|_| Arc::new(Mutex::new(Receiver::new(args.senders))))
        .collect();

    let mut report = FanoutReport {
        status: Status::Timeout,
        protocol: ctx.protocol,
        clients: args.clients,
        logged_in: 0,
        failed: 0,
        senders: args.senders,
        rate: args.rate,
        duration_s: secs(args.duration),
        text_bytes: args.text_bytes,
        sent: 0,
        offered_per_s: 0.0,
        receivers: 0,
        expected: 0,
        delivered: 0,
        lost: 0,
        delivered_per_s: 0.0,
        p50_us: None,
        p99_us: None,
        p999_us: None,
        max_us: None,
        acked: 0,
        acked_per_s: 0.0,
        ack_p50_us: None,
        ack_p99_us: None,
        out_of_order: 0,
        unexpected: 0,
        closed: 0,
        errors: 0,
        max_send_lag_us: 0,
        setup_s: 0.0,
        drain_s: 0.0,
        server_cpu_s: None,
        loadgen_cpu_s: None,
        server_rss_kib: None,
        loadgen_rss_kib: None,
    };

    // Setup: everyone connects and logs in, then the join storm settles.
    let setup_start = Instant::now();
    let setup_deadline = setup_start + args.setup_timeout;
    for (n, receiver) in receivers.iter().enumerate() {
        let client = client(n, ctx.clone(), shared.clone(), receiver.clone());
        ctx.rt.spawn(client).detach();
    }
    let counters = &shared.counters;
    let settled = ctx.settle(setup_deadline, counters, args.clients).await;
    report.setup_s = secs(setup_start.elapsed());
    if counters.alive() == 0 {
        report.status = Status::Failed;
    }
    if settled {
        report.status = send_and_drain(&ctx, &shared, &receivers, &args, &mut report).await;
    }

    report.logged_in = Counters::get(&counters.logged_in);
    report.failed = Counters::get(&counters.failed);
    report.server_rss_kib = ctx.server_rss_kib();
    report.loadgen_rss_kib = crate::procfs::own_rss_kib();
    Ok(report)
}

/// The measured phase. Fills in the delivery figures; returns how it ended.
async fn send_and_drain(
    ctx: &Ctx,
    shared: &Shared,
    receivers: &[Arc<Mutex<Receiver>>],
    args: &FanoutArgs,
    report: &mut FanoutReport,
) -> Status {
    let listening: Vec<&Arc<Mutex<Receiver>>> =
        receivers.iter().filter(|r| lock(r).logged_in).collect();
    let t0 = Instant::now() + Duration::from_millis(20);
    let end = t0 + args.duration;
    shared.start.set_blocking(t0).ok();
    Timer::at(t0).await;
    let server_cpu = CpuMeters::start(&ctx.server_pids);
    let loadgen_cpu = CpuMeter::start(None);
    Timer::at(end.min(ctx.deadline)).await;

    let sent_total = || {
        shared
            .sent
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let drained = ctx
        .wait_for(end + args.drain, || {
            let sent = sent_total();
            shared.senders_done.load(Ordering::Relaxed) == args.senders
                && listening.iter().all(|r| {
                    let r = lock(r);
                    r.closed || r.delivered >= sent
                })
        })
        .await;
    let drain_end = Instant::now();
    report.server_cpu_s = server_cpu.seconds();
    report.loadgen_cpu_s = loadgen_cpu.seconds();

    let sent: Vec<u64> = shared
        .sent
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    let mut ledgers = Vec::with_capacity(listening.len());
    let mut last_delivery_nanos = 0;
    for receiver in &listening {
        let mut receiver = lock(receiver);
        receiver.flush(shared);
        last_delivery_nanos = last_delivery_nanos.max(receiver.last_delivery_nanos);
        report.errors += receiver.errors;
        report.closed += usize::from(receiver.closed);
        report.acked += receiver.acked;
        ledgers.push(receiver.ledger.clone());
    }
    let tally = Tally::settle(&sent, &ledgers);
    let latency = shared.latencies.percentiles();
    let t0_nanos = t0.duration_since(shared.plan.epoch).as_nanos() as u64;
    let delivering = Duration::from_nanos(last_delivery_nanos.saturating_sub(t0_nanos));

    report.sent = tally.sent;
    report.offered_per_s = round1(tally.sent as f64 / args.duration.as_secs_f64());
    report.receivers = listening.len();
    report.expected = tally.expected;
    report.delivered = tally.delivered;
    report.lost = tally.lost;
    report.delivered_per_s = match delivering.as_secs_f64() {
        0.0 => 0.0,
        s => round1(tally.delivered as f64 / s),
    };
    report.acked_per_s = match delivering.as_secs_f64() {
        0.0 => 0.0,
        s => round1(report.acked as f64 / s),
    };
    let acks = shared.ack_latencies.percentiles();
    report.ack_p50_us = acks.p50_us;
    report.ack_p99_us = acks.p99_us;
    report.p50_us = latency.p50_us;
    report.p99_us = latency.p99_us;
    report.p999_us = latency.p999_us;
    report.max_us = latency.max_us;
    report.out_of_order = tally.out_of_order;
    report.unexpected = tally.unexpected;
    report.max_send_lag_us = shared.max_send_lag_us.load(Ordering::Relaxed);
    report.drain_s = secs(if drained {
        (shared.plan.epoch + Duration::from_nanos(last_delivery_nanos))
            .saturating_duration_since(end)
    } else {
        drain_end.saturating_duration_since(end)
    });
    if drain_end >= ctx.deadline {
        Status::Timeout
    } else {
        Status::Ok
    }
}

/// One client: connect, log in, then read until the run ends. Client `n`
/// below `senders` also sends, from a task of its own.
async fn client(n: usize, ctx: Arc<Ctx>, shared: Arc<Shared>, receiver: Arc<Mutex<Receiver>>) {
    let counters = &shared.counters;
    let opened = ctx.open_and_log_in(n);
    let ws: Ws = match opened.await {
        Ok(ws) => ws,
        Err(error) => return counters.fail(format_args!("{error:#}")),
    };
    let ear = ctx.ear();
    let mut barrier = Barrier::default();
    let mut refused = None;
    let (sender, mut frames) = ws.split();
    let mut sender = Some(sender);
    let mut ending = Ending::default();
    while let Some(next) = frames.next().await {
        ending.note(&next);
        // Pings are answered by tungstenite while we read; a Close or an
        // error ends the stream.
        let Ok(Message::Text(text)) = next else {
            continue;
        };
        match ear.hear(&text) {
            Heard::Stamped(stamp) => {
                let now = shared.plan.epoch.elapsed().as_nanos() as u64;
                let mut receiver = lock(&receiver);
                receiver.ledger.record(stamp.sender as usize, stamp.seq);
                receiver.delivered += 1;
                receiver.last_delivery_nanos = now;
                let latency_us = now.saturating_sub(stamp.sent_nanos) / 1000;
                let own = stamp.sender as usize == n;
                receiver.acked += u64::from(own);
                if receiver.pending.push(latency_us, own, LATENCY_BATCH) {
                    receiver.flush(&shared);
                }
            }
            heard @ (Heard::LoginBroadcast { .. } | Heard::Presence { .. }) => {
                barrier.note(&heard, counters);
            }
            Heard::Text | Heard::Other => {}
            Heard::LoginMessage => {
                lock(&receiver).logged_in = true;
                Counters::bump(&counters.logged_in);
                if let Some(sender) = sender.take().filter(|_| n < shared.plan.senders) {
                    ctx.rt
                        .spawn_punctual(send(n, sender, shared.clone()))
                        .detach();
                }
            }
            Heard::Error(code) => {
                lock(&receiver).errors += 1;
                refused.get_or_insert(code);
            }
            Heard::Garbage => lock(&receiver).errors += 1,
        }
    }
    let mut receiver = lock(&receiver);
    receiver.closed = true;
    if receiver.logged_in {
        counters.close(ending.as_str());
    } else {
        counters.fail(not_logged_in(&ctx.username(n), refused));
    }
}

/// Sender `n`: waits for the start, then sends each message at its due time.
async fn send(n: usize, mut sender: WsSender, shared: Arc<Shared>) {
    let plan = &shared.plan;
    let t0 = *shared.start.wait().await;
    for seq in 0.. {
        let due = plan.due(n, seq);
        if due >= plan.duration {
            break;
        }
        let due = t0 + due;
        Timer::at(due).await;
        let lag_us = due.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
        shared.max_send_lag_us.fetch_max(lag_us, Ordering::Relaxed);
        let stamp = Stamp {
            sender: n as u32,
            seq,
            sent_nanos: due.duration_since(plan.epoch).as_nanos() as u64,
        };
        let text = wire::text_from_user(seq, stamp.to_text(plan.text_bytes));
        // Counted before sending, so that no receiver can see a number
        // beyond the count.
        shared.sent[n].store(seq + 1, Ordering::Relaxed);
        if sender.send(Message::text(text)).await.is_err() {
            break;
        }
    }
    shared.senders_done.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_spread_evenly_over_the_senders() {
        let plan = Plan {
            senders: 4,
            rate: 100.0,
            duration: Duration::from_secs(1),
            text_bytes: 100,
            epoch: Instant::now(),
        };
        let mut dues: Vec<Duration> = (0..4)
            .flat_map(|s| (0..25).map(move |k| (s, k)))
            .map(|(s, k)| plan.due(s, k))
            .collect();
        dues.sort();
        assert_eq!(dues.len(), 100);
        assert!(dues.iter().all(|d| *d < plan.duration));
        for (i, due) in dues.iter().enumerate() {
            assert_eq!(due.as_micros(), i as u128 * 10_000);
        }
    }
}
