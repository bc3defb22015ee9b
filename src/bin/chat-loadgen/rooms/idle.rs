//! rooms-idle: what a room and a membership cost the server. C clients log
//! in; then they create R rooms (room `k` by client `k % C`), and the
//! server's RSS is read; then M-1 more clients join each room (clients
//! `k+1 … k+M-1`, modulo C), and it is read again. Nobody says anything.
//!
//! A room created costs the room and its creator's membership; the second
//! phase adds memberships only, so their difference is an empty room.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::ensure;
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use smol::Timer;
use smol::lock::OnceCell;

use super::plan::room_name;
use super::v3::{self, RoomEar, RoomHeard, SUBPROTOCOL_V3};
use crate::common::{Barrier, CommonArgs, Counters, Ctx, Ending, not_logged_in, secs};
use crate::net::WsSender;
use crate::summary::{Status, report};
use crate::wire::Protocol;

#[derive(Debug, Clone, clap::Args)]
pub struct RoomsIdleArgs {
    // Always protocol v3 (`wschat.v3`): `--protocol` is refused but for its default.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Logged-in clients that create and join the rooms.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub clients: usize,
    /// Rooms created.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub rooms: usize,
    /// Members of each room in the end, its creator included (at most --clients).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub members: usize,
    /// Pause before each reading of the server's RSS, for the last
    /// answers and notices to go out.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Give up if connecting, logging in and the join storm take longer
    /// (and again for each phase of joins).
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = humantime::parse_duration)]
    pub setup_timeout: Duration,
    #[command(flatten)]
    pub lobby: super::LobbyArgs,
}

report! {
    /// The rooms-idle summary line.
    pub struct RoomsIdleReport (mode = "rooms-idle") {
        pub status: Status,
        /// Always `v3`.
        pub protocol: String,
        pub clients: usize,
        pub logged_in: usize,
        /// Clients that failed to connect or log in.
        pub failed: usize,
        /// Rooms asked for, and created (their creator's join answered `joined`).
        pub rooms: usize,
        pub created: usize,
        /// Members asked for per room, and joins of the second phase answered `joined`.
        pub members: usize,
        pub memberships_added: usize,
        /// Joins refused (or not answered before a connection ended).
        pub join_failed: usize,
        pub setup_s: f64,
        pub create_s: f64,
        pub fill_s: f64,
        /// Logged-in clients whose connection ended during the run.
        pub closed: usize,
        /// errorMessage and undecodable frames received.
        pub errors: u64,
        /// Server VmRSS before the first connection, once all are logged
        /// in, once the rooms are created, and once they are full.
        pub server_rss_before_kib: Option<u64>,
        pub server_rss_logged_in_kib: Option<u64>,
        pub server_rss_created_kib: Option<u64>,
        pub server_rss_filled_kib: Option<u64>,
        /// `(created - logged_in) / created`: a room with one member, in bytes.
        pub server_bytes_per_room: Option<u64>,
        /// `(filled - created) / memberships_added`, in bytes.
        pub server_bytes_per_membership: Option<u64>,
        /// `per_room - per_membership`: a room without its member, in bytes.
        pub server_bytes_per_empty_room: Option<u64>,
        pub loadgen_rss_kib: Option<u64>,
    }
}

/// The two phases of joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Create,
    Fill,
}

impl Phase {
    /// The `id` of a join of room `k` in this phase.
    fn join_id(self, room: usize) -> String {
        match self {
            Phase::Create => format!("c{room}"),
            Phase::Fill => format!("f{room}"),
        }
    }

    /// The phase of a join, from its `id`.
    fn of(id: &str) -> Option<Phase> {
        match id.as_bytes().first() {
            Some(b'c') => Some(Phase::Create),
            Some(b'f') => Some(Phase::Fill),
            _ => None,
        }
    }
}

/// Which rooms client `n` of `clients` joins in each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    clients: usize,
    rooms: usize,
    members: usize,
}

impl Plan {
    fn rooms_of(self, n: usize, phase: Phase) -> Vec<usize> {
        let Plan {
            clients,
            rooms,
            members,
        } = self;
        let offsets = match phase {
            Phase::Create => 0..1,
            Phase::Fill => 1..members,
        };
        let mut joined: Vec<usize> = offsets
            // Room k's j-th member is client (k + j) % clients.
            .flat_map(|j| {
                let first = (n + clients - j % clients) % clients;
                (first..rooms).step_by(clients)
            })
            .collect();
        joined.sort_unstable();
        joined
    }
}

#[derive(Default)]
struct Shared {
    counters: Counters,
    created: AtomicUsize,
    added: AtomicUsize,
    join_failures: AtomicUsize,
    first_join_failure: OnceLock<String>,
    errors: AtomicUsize,
    create: OnceCell<()>,
    fill: OnceCell<()>,
}

impl Shared {
    fn join_failed(&self, why: impl std::fmt::Display) {
        Counters::bump(&self.join_failures);
        if self.first_join_failure.set(why.to_string()).is_ok() {
            eprintln!("chat-loadgen: a join failed: {why}");
        }
    }
}

pub async fn run(args: RoomsIdleArgs) -> anyhow::Result<RoomsIdleReport> {
    ensure!(
        args.common.protocol == Protocol::V1,
        "the rooms-idle mode speaks protocol v3 only: leave out --protocol"
    );
    ensure!(args.clients >= 1, "--clients must be at least 1");
    ensure!(
        (1..=args.clients).contains(&args.members),
        "--members must be between 1 and --clients"
    );
    let plan = Plan {
        clients: args.clients,
        rooms: args.rooms,
        members: args.members,
    };
    let ctx = Arc::new(Ctx::offering(
        &args.common,
        args.clients + 1,
        Some(SUBPROTOCOL_V3),
    )?);
    let shared = Arc::new(Shared::default());
    let mut report = RoomsIdleReport {
        status: Status::Timeout,
        protocol: "v3".into(),
        clients: args.clients,
        logged_in: 0,
        failed: 0,
        rooms: args.rooms,
        created: 0,
        members: args.members,
        memberships_added: 0,
        join_failed: 0,
        setup_s: 0.0,
        create_s: 0.0,
        fill_s: 0.0,
        closed: 0,
        errors: 0,
        server_rss_before_kib: ctx.server_rss_kib(),
        server_rss_logged_in_kib: None,
        server_rss_created_kib: None,
        server_rss_filled_kib: None,
        server_bytes_per_room: None,
        server_bytes_per_membership: None,
        server_bytes_per_empty_room: None,
        loadgen_rss_kib: None,
    };

    let start = Instant::now();
    for n in 0..args.clients {
        let client = client(n, plan, ctx.clone(), shared.clone());
        ctx.rt.spawn(client).detach();
    }
    let counters = &shared.counters;
    let until = start + args.setup_timeout;
    let mut done = super::settle_lobby(&ctx, counters, args.clients, until, &args.lobby).await;
    report.setup_s = secs(start.elapsed());
    if counters.alive() == 0 {
        report.status = Status::Failed;
        done = false;
    }
    if done {
        Timer::after(args.settle).await;
        report.server_rss_logged_in_kib = ctx.server_rss_kib();
        let expected = |phase| {
            let joins = |n| plan.rooms_of(n, phase).len();
            (0..args.clients).map(joins).sum::<usize>()
        };
        let (create, fill) = (expected(Phase::Create), expected(Phase::Fill));
        let failures = || Counters::get(&shared.join_failures);
        // Phase 1: the rooms.
        let phase_start = Instant::now();
        shared.create.set_blocking(()).ok();
        done = ctx
            .wait_for(phase_start + args.setup_timeout, || {
                Counters::get(&shared.created) + failures() >= create
            })
            .await;
        report.create_s = secs(phase_start.elapsed());
        Timer::after(args.settle).await;
        report.server_rss_created_kib = ctx.server_rss_kib();
        // Phase 2: their other members.
        if done {
            let phase_start = Instant::now();
            shared.fill.set_blocking(()).ok();
            let failed_before = failures();
            done = ctx
                .wait_for(phase_start + args.setup_timeout, || {
                    Counters::get(&shared.added) + failures() - failed_before >= fill
                })
                .await;
            report.fill_s = secs(phase_start.elapsed());
            Timer::after(args.settle).await;
            report.server_rss_filled_kib = ctx.server_rss_kib();
        }
        if Counters::get(&shared.created) == 0 {
            // Every join refused: nothing was measured.
            report.status = Status::Failed;
        } else if done && Instant::now() < ctx.deadline {
            report.status = Status::Ok;
        }
    }

    report.logged_in = Counters::get(&counters.logged_in);
    report.failed = Counters::get(&counters.failed);
    report.closed = Counters::get(&counters.closed);
    report.created = Counters::get(&shared.created);
    report.memberships_added = Counters::get(&shared.added);
    report.join_failed = Counters::get(&shared.join_failures);
    report.errors = Counters::get(&shared.errors) as u64;
    let per = |from: Option<u64>, to: Option<u64>, count: usize| match (from, to) {
        (Some(from), Some(to)) if count > 0 => Some(to.saturating_sub(from) * 1024 / count as u64),
        _ => None,
    };
    report.server_bytes_per_room = per(
        report.server_rss_logged_in_kib,
        report.server_rss_created_kib,
        report.created,
    );
    report.server_bytes_per_membership = per(
        report.server_rss_created_kib,
        report.server_rss_filled_kib,
        report.memberships_added,
    );
    report.server_bytes_per_empty_room = report
        .server_bytes_per_room
        .zip(report.server_bytes_per_membership)
        .map(|(room, membership)| room.saturating_sub(membership));
    report.loadgen_rss_kib = crate::procfs::own_rss_kib();
    Ok(report)
}

/// Client `n`: logs in, then joins its rooms of each phase when told to.
async fn client(n: usize, plan: Plan, ctx: Arc<Ctx>, shared: Arc<Shared>) {
    let counters = &shared.counters;
    let ws = match ctx.open_and_log_in(n).await {
        Ok(ws) => ws,
        Err(error) => return counters.fail(format_args!("{error:#}")),
    };
    let ear = RoomEar::new(&ctx.barrier_name());
    let mut barrier = Barrier::default();
    let (sender, mut frames) = ws.split();
    let mut sender = Some(sender);
    let mut refused = None;
    let mut ending = Ending::default();
    let mut logged_in = false;
    while let Some(next) = frames.next().await {
        ending.note(&next);
        let Ok(Message::Text(text)) = next else {
            continue;
        };
        match ear.hear(&text) {
            RoomHeard::LoginMessage => {
                logged_in = true;
                Counters::bump(&counters.logged_in);
                if let Some(sender) = sender.take() {
                    ctx.rt
                        .spawn(join(n, plan, sender, ctx.clone(), shared.clone()))
                        .detach();
                }
            }
            RoomHeard::Lobby(heard) => barrier.note(&heard, counters),
            RoomHeard::Membership {
                room,
                change,
                reply_to: Some(id),
            } => match (Phase::of(&id), &*change) {
                (Some(Phase::Create), "joined") => Counters::bump(&shared.created),
                (Some(Phase::Fill), "joined") => Counters::bump(&shared.added),
                (Some(_), _) => shared.join_failed(format_args!("join {room} answered {change}")),
                (None, _) => {}
            },
            RoomHeard::Error { code, reply_to } => {
                Counters::bump(&shared.errors);
                if reply_to.as_deref().and_then(Phase::of).is_some() {
                    shared.join_failed(format_args!("join by {} refused: {code}", ctx.username(n)));
                }
                refused.get_or_insert(code.into_owned());
            }
            RoomHeard::Garbage => Counters::bump(&shared.errors),
            RoomHeard::Said { .. } | RoomHeard::Membership { .. } | RoomHeard::Other => {}
        }
    }
    if logged_in {
        counters.close(ending.as_str());
    } else {
        counters.fail(not_logged_in(&ctx.username(n), refused));
    }
}

/// Client `n`'s joins: those of each phase, all at once, when it begins.
async fn join(n: usize, plan: Plan, mut ws: WsSender, ctx: Arc<Ctx>, shared: Arc<Shared>) {
    for (phase, begun) in [(Phase::Create, &shared.create), (Phase::Fill, &shared.fill)] {
        begun.wait().await;
        for room in plan.rooms_of(n, phase) {
            let frame = v3::join(&phase.join_id(room), &room_name(&ctx.run, room));
            if ws.send(Message::text(frame)).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_room_gets_its_creator_then_distinct_other_members() {
        let plan = Plan {
            clients: 4,
            rooms: 10,
            members: 3,
        };
        let mut members = vec![Vec::new(); plan.rooms];
        for phase in [Phase::Create, Phase::Fill] {
            for n in 0..plan.clients {
                for room in plan.rooms_of(n, phase) {
                    members[room].push((n, phase));
                }
            }
        }
        for (k, members) in members.iter().enumerate() {
            let mut clients: Vec<usize> = members.iter().map(|&(n, _)| n).collect();
            let creators: Vec<usize> = members
                .iter()
                .filter(|&&(_, phase)| phase == Phase::Create)
                .map(|&(n, _)| n)
                .collect();
            assert_eq!(creators, [k % 4], "room {k}");
            clients.sort_unstable();
            clients.dedup();
            assert_eq!(clients.len(), 3, "room {k}: {members:?}");
        }
        // Each client joins its share: rooms 0, 4, 8 are client 0's to create.
        assert_eq!(plan.rooms_of(0, Phase::Create), [0, 4, 8]);
    }

    #[test]
    fn a_join_id_tells_its_phase() {
        for phase in [Phase::Create, Phase::Fill] {
            assert_eq!(Phase::of(&phase.join_id(17)), Some(phase));
        }
        assert_eq!(Phase::of("l"), None);
        assert_eq!(Phase::of(""), None);
    }

    #[test]
    fn the_report_reads_back_from_its_own_line() {
        let report = RoomsIdleReport {
            status: Status::Ok,
            protocol: "v3".into(),
            clients: 1000,
            logged_in: 1000,
            failed: 0,
            rooms: 10_000,
            created: 10_000,
            members: 10,
            memberships_added: 90_000,
            join_failed: 0,
            setup_s: 3.5,
            create_s: 1.5,
            fill_s: 6.0,
            closed: 0,
            errors: 0,
            server_rss_before_kib: Some(5_000),
            server_rss_logged_in_kib: Some(30_000),
            server_rss_created_kib: Some(40_000),
            server_rss_filled_kib: Some(70_000),
            server_bytes_per_room: Some(1024),
            server_bytes_per_membership: Some(341),
            server_bytes_per_empty_room: Some(683),
            loadgen_rss_kib: None,
        };
        let line = report.to_summary().to_string();
        assert!(line.starts_with("loadgen mode=rooms-idle status=ok protocol=v3 "));
        let back = RoomsIdleReport::from_summary(&line.parse().unwrap());
        assert_eq!(back, Ok(report));
    }
}
