//! rooms: protocol v3's rooms under load. R rooms of M members each; every
//! member logs in with a fresh name, joins its room (the first to arrive
//! creates it), then says a message there every interval, open loop as in
//! the fanout mode (each text carries its due time). Every member must
//! hear every message said in its room, once, in the room's order.
//!
//! The defaults are issue 22's benchmark: 1,000 rooms × 10 members (10,000
//! connections), a message every 2 s each: 5,000 messages and 50,000
//! deliveries a second.

mod client;
pub mod idle;
mod plan;
mod v3;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::ensure;
use smol::Timer;
use smol::lock::OnceCell;

use self::client::{Member, lock};
use self::plan::{Layout, RoomsTally, Schedule};
use crate::common::{CommonArgs, Counters, Ctx, secs};
use crate::latency::Latencies;
use crate::procfs::{CpuMeter, CpuMeters};
use crate::summary::{Status, report, round1};
use crate::wire::Protocol;

#[derive(Debug, Clone, clap::Args)]
pub struct RoomsArgs {
    // Always protocol v3 (`wschat.v3`): `--protocol` is refused but for its default.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Rooms, each created by the first of its members to join.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub rooms: usize,
    /// Members of each room, each a connection of its own.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub members: usize,
    /// Each member says a message this often (the first ones spread evenly
    /// over the first interval).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// How long the members speak.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long to wait for the last deliveries after the last message is due.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Length of each message text in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub text_bytes: usize,
    /// Give up if connecting, logging in, the join storm and joining the
    /// rooms take longer.
    #[arg(long, value_name = "DURATION", default_value = "180s", value_parser = humantime::parse_duration)]
    pub setup_timeout: Duration,
    #[command(flatten)]
    pub lobby: LobbyArgs,
}

/// How long the rooms modes wait for the lobby's join storm.
#[derive(Debug, Clone, clap::Args)]
pub struct LobbyArgs {
    /// Wait at most this long, once every client has logged in, for all
    /// of them to hear the barrier's login in the lobby; then go on with a
    /// warning (a v3 server might tell the lobby's joins in a way this
    /// load generator does not read).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub barrier_timeout: Duration,
}

/// Waits until all `clients` have logged in or failed, then for the lobby's
/// join storm to settle behind the [barrier](Ctx::barrier), for at most
/// `--barrier-timeout`. Returns whether some client is logged in by then.
async fn settle_lobby(
    ctx: &Ctx,
    counters: &Counters,
    clients: usize,
    until: Instant,
    lobby: &LobbyArgs,
) -> bool {
    let logged_in = ctx
        .wait_for(until, || {
            Counters::get(&counters.logged_in) + Counters::get(&counters.failed) >= clients
        })
        .await;
    if !logged_in || counters.alive() == 0 {
        return false;
    }
    let patience = until.min(Instant::now() + lobby.barrier_timeout);
    let heard = ctx
        .barrier(
            patience,
            || counters.alive(),
            || Counters::get(&counters.heard_barrier),
        )
        .await;
    if !heard {
        eprintln!(
            "chat-loadgen: {} of {} clients heard the barrier's login within {:?}; going on",
            Counters::get(&counters.heard_barrier),
            counters.alive(),
            lobby.barrier_timeout,
        );
    }
    Instant::now() < until
}

report! {
    /// The rooms summary line.
    pub struct RoomsReport (mode = "rooms") {
        pub status: Status,
        /// Always `v3`.
        pub protocol: String,
        pub rooms: usize,
        pub members: usize,
        /// `rooms × members`.
        pub clients: usize,
        pub logged_in: usize,
        /// Clients that failed to connect or log in.
        pub failed: usize,
        /// Clients whose join was answered `joined`.
        pub joined: usize,
        /// Clients whose join was refused (or not answered before they closed).
        pub join_failed: usize,
        pub interval_s: f64,
        pub duration_s: f64,
        pub text_bytes: usize,
        /// Messages said, all rooms together.
        pub sent: u64,
        /// `sent / duration`.
        pub offered_per_s: f64,
        /// Per room, its messages × its members when sending began, added up.
        pub expected: u64,
        /// Distinct in-order deliveries, in the room they were said in.
        pub delivered: u64,
        /// `expected - delivered`, after the drain.
        pub lost: u64,
        /// Rooms where some member missed some message.
        pub rooms_with_loss: usize,
        /// `delivered` over the time from the first due message to the last delivery.
        pub delivered_per_s: f64,
        /// Latency percentiles, due time to receipt, in microseconds.
        pub p50_us: Option<u64>,
        pub p99_us: Option<u64>,
        pub p999_us: Option<u64>,
        pub max_us: Option<u64>,
        /// Messages whose sender heard its own copy (with a store: saved).
        pub acked: u64,
        pub ack_p50_us: Option<u64>,
        pub ack_p99_us: Option<u64>,
        /// Deliveries out of a member's order: duplicates or late.
        pub out_of_order: u64,
        /// Deliveries of messages said in another room, or never said.
        pub unexpected: u64,
        /// Deliveries whose room `seq` did not follow the previous one's.
        pub seq_breaks: u64,
        /// Logged-in clients whose connection ended during the run.
        pub closed: usize,
        /// errorMessage and undecodable frames received.
        pub errors: u64,
        /// Worst delay of a send behind its due time (load generator saturation).
        pub max_send_lag_us: u64,
        /// Connecting, logging in, the join storm and the joins, seconds.
        pub setup_s: f64,
        /// From the last due message to the last delivery (or the drain limit), seconds.
        pub drain_s: f64,
        /// CPU seconds from the first due message to the end of the drain.
        pub server_cpu_s: Option<f64>,
        pub loadgen_cpu_s: Option<f64>,
        pub server_rss_kib: Option<u64>,
        pub loadgen_rss_kib: Option<u64>,
    }
}

/// Everything the clients share.
pub struct Shared {
    layout: Layout,
    schedule: Schedule,
    text_bytes: usize,
    /// All timestamps in messages are nanoseconds since this instant.
    epoch: Instant,
    counters: Counters,
    joined: AtomicUsize,
    /// Joins refused, or not answered before the connection ended.
    join_failures: AtomicUsize,
    first_join_failure: OnceLock<String>,
    /// When the members start speaking; each waits for it.
    start: OnceCell<Instant>,
    /// Messages said by each client (the next number).
    sent: Vec<AtomicU64>,
    speakers: AtomicUsize,
    speakers_done: AtomicUsize,
    /// Deliveries of stamped messages in the room they were said in.
    delivered: AtomicU64,
    max_send_lag_us: AtomicU64,
    latencies: Latencies,
    ack_latencies: Latencies,
}

impl Shared {
    /// Counts a join that failed; the first cause goes to stderr.
    fn join_failed(&self, why: impl std::fmt::Display) {
        Counters::bump(&self.join_failures);
        if self.first_join_failure.set(why.to_string()).is_ok() {
            eprintln!("chat-loadgen: a join failed: {why}");
        }
    }
}

pub async fn run(args: RoomsArgs) -> anyhow::Result<RoomsReport> {
    ensure!(
        args.common.protocol == Protocol::V1,
        "the rooms mode speaks protocol v3 only: leave out --protocol"
    );
    ensure!(args.rooms >= 1, "--rooms must be at least 1");
    ensure!(args.members >= 1, "--members must be at least 1");
    ensure!(!args.interval.is_zero(), "--interval must be positive");
    let layout = Layout {
        rooms: args.rooms,
        members: args.members,
    };
    let clients = layout.clients();
    ensure!(clients <= u32::MAX as usize, "too many clients");
    // The clients and the barrier.
    let ctx = Arc::new(Ctx::offering(
        &args.common,
        clients + 1,
        Some(v3::SUBPROTOCOL_V3),
    )?);
    let shared = Arc::new(Shared {
        layout,
        schedule: Schedule {
            layout,
            interval: args.interval,
            duration: args.duration,
        },
        text_bytes: args.text_bytes,
        epoch: Instant::now(),
        counters: Counters::default(),
        joined: AtomicUsize::new(0),
        join_failures: AtomicUsize::new(0),
        first_join_failure: OnceLock::new(),
        start: OnceCell::new(),
        sent: (0..clients).map(|_| AtomicU64::new(0)).collect(),
        speakers: AtomicUsize::new(0),
        speakers_done: AtomicUsize::new(0),
        delivered: AtomicU64::new(0),
        max_send_lag_us: AtomicU64::new(0),
        latencies: Latencies::new(),
        ack_latencies: Latencies::new(),
    });
    let members: Vec<Arc<Mutex<Member>>> = (0..clients)
        .map(|_| Arc::new(Mutex::new(Member::new(args.members))))
        .collect();
    let mut report = RoomsReport {
        status: Status::Timeout,
        protocol: "v3".into(),
        rooms: args.rooms,
        members: args.members,
        clients,
        logged_in: 0,
        failed: 0,
        joined: 0,
        join_failed: 0,
        interval_s: round1(args.interval.as_secs_f64()),
        duration_s: secs(args.duration),
        text_bytes: args.text_bytes,
        sent: 0,
        offered_per_s: 0.0,
        expected: 0,
        delivered: 0,
        lost: 0,
        rooms_with_loss: 0,
        delivered_per_s: 0.0,
        p50_us: None,
        p99_us: None,
        p999_us: None,
        max_us: None,
        acked: 0,
        ack_p50_us: None,
        ack_p99_us: None,
        out_of_order: 0,
        unexpected: 0,
        seq_breaks: 0,
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

    // Setup: everyone connects, logs in and joins; the lobby's join storm
    // settles; every join is answered.
    let setup_start = Instant::now();
    let setup_deadline = setup_start + args.setup_timeout;
    for (n, member) in members.iter().enumerate() {
        let client = client::client(n, ctx.clone(), shared.clone(), member.clone());
        ctx.rt.spawn(client).detach();
    }
    let counters = &shared.counters;
    let settled = settle_lobby(&ctx, counters, clients, setup_deadline, &args.lobby).await
        && ctx
            .wait_for(setup_deadline, || {
                Counters::get(&shared.joined) + Counters::get(&shared.join_failures)
                    >= Counters::get(&counters.logged_in)
            })
            .await;
    report.setup_s = secs(setup_start.elapsed());
    if counters.alive() == 0 || Counters::get(&shared.joined) == 0 {
        report.status = Status::Failed;
    }
    if settled && report.status != Status::Failed {
        report.status = speak_and_drain(&ctx, &shared, &members, &args, &mut report).await;
    }

    report.logged_in = Counters::get(&counters.logged_in);
    report.failed = Counters::get(&counters.failed);
    report.joined = Counters::get(&shared.joined);
    report.join_failed = Counters::get(&shared.join_failures);
    report.closed = Counters::get(&counters.closed);
    report.server_rss_kib = ctx.server_rss_kib();
    report.loadgen_rss_kib = crate::procfs::own_rss_kib();
    Ok(report)
}

/// The measured phase. Fills in the delivery figures; returns how it ended.
async fn speak_and_drain(
    ctx: &Ctx,
    shared: &Shared,
    members: &[Arc<Mutex<Member>>],
    args: &RoomsArgs,
    report: &mut RoomsReport,
) -> Status {
    let layout = shared.layout;
    // Who hears its room from the start: every member whose join was answered.
    let listening: Vec<bool> = members.iter().map(|m| lock(m).joined).collect();
    let listeners: Vec<u64> = (0..layout.rooms)
        .map(|room| layout.members_of(room).filter(|&n| listening[n]).count() as u64)
        .collect();
    let t0 = Instant::now() + Duration::from_millis(20);
    let end = t0 + args.duration;
    shared.start.set_blocking(t0).ok();
    Timer::at(t0).await;
    let server_cpu = CpuMeters::start(&ctx.server_pids);
    let loadgen_cpu = CpuMeter::start(None);
    Timer::at(end.min(ctx.deadline)).await;

    let expected = || -> u64 {
        (0..layout.rooms)
            .map(|room| {
                let said: u64 = layout
                    .members_of(room)
                    .map(|n| shared.sent[n].load(Ordering::Relaxed))
                    .sum();
                said * listeners[room]
            })
            .sum()
    };
    let drained = ctx
        .wait_for(end + args.drain, || {
            Counters::get(&shared.speakers_done) == Counters::get(&shared.speakers)
                && shared.delivered.load(Ordering::Relaxed) >= expected()
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
    let mut ledgers = Vec::with_capacity(members.len());
    let mut last_delivery_nanos = 0;
    for (n, member) in members.iter().enumerate() {
        let mut member = lock(member);
        member.flush(shared);
        last_delivery_nanos = last_delivery_nanos.max(member.last_delivery_nanos);
        report.errors += member.errors;
        report.acked += member.acked;
        report.seq_breaks += member.seq.breaks;
        ledgers.push(listening[n].then(|| member.ledger.clone()));
    }
    let tally = RoomsTally::settle(layout, &sent, |n| ledgers[n].as_ref());
    let latency = shared.latencies.percentiles();
    let acks = shared.ack_latencies.percentiles();
    let t0_nanos = t0.duration_since(shared.epoch).as_nanos() as u64;
    let delivering = Duration::from_nanos(last_delivery_nanos.saturating_sub(t0_nanos));

    report.sent = tally.total.sent;
    report.offered_per_s = round1(tally.total.sent as f64 / args.duration.as_secs_f64());
    report.expected = tally.total.expected;
    report.delivered = tally.total.delivered;
    report.lost = tally.total.lost;
    report.rooms_with_loss = tally.rooms_with_loss;
    report.delivered_per_s = match delivering.as_secs_f64() {
        0.0 => 0.0,
        s => round1(tally.total.delivered as f64 / s),
    };
    report.p50_us = latency.p50_us;
    report.p99_us = latency.p99_us;
    report.p999_us = latency.p999_us;
    report.max_us = latency.max_us;
    report.ack_p50_us = acks.p50_us;
    report.ack_p99_us = acks.p99_us;
    report.out_of_order = tally.total.out_of_order;
    report.unexpected = tally.total.unexpected;
    report.max_send_lag_us = shared.max_send_lag_us.load(Ordering::Relaxed);
    report.drain_s = secs(if drained {
        (shared.epoch + Duration::from_nanos(last_delivery_nanos)).saturating_duration_since(end)
    } else {
        drain_end.saturating_duration_since(end)
    });
    if drain_end >= ctx.deadline {
        Status::Timeout
    } else {
        Status::Ok
    }
}

#[cfg(test)]
mod tests;
