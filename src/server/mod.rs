//! The chat core: a sans-IO state machine for the server side of protocol
//! v1, v2 and v3.
//!
//! [`Server`] owns every piece of chat state. A driver feeds it what
//! happened (`handle_*`, each with the current instant) and performs what it
//! asks for (`poll_action`), then sleeps until `poll_timeout`. It does no I/O,
//! reads no clock, spawns nothing and keeps no globals, so tests drive it
//! with a virtual clock and the same code runs under any runtime.
//!
//! What must outlive the process leaves through a typed seam
//! ([`poll_request`](Server::poll_request) /
//! [`handle_answer`](Server::handle_answer)): each [`Request`] carries a
//! ticket of its own kind, and its [`Answer`] can only be built from that
//! ticket with that kind's result (see `seam`).
//!
//! This file is the facade: the `Server`, its inputs, outputs and getters.
//! The work is done by one module per concept:
//! - `connections`: opening, closing, forgetting, and each connection's
//!   deadlines (login timeout, heartbeat);
//! - `inbound`: a frame's way in (limits, frames held while a login is
//!   saved, decoding, pings);
//! - `login`: logins and logouts (claim or reclaim, refusals, a login
//!   that could not be saved);
//! - `names`: who decides names — this node (`Names::Local`, with or
//!   without a store) or a shared store (`Names::Shared`, see `cluster`);
//! - `broadcast`: chat messages (encoded once for every recipient) and
//!   the history a v2 client catches up from;
//! - `notices`: who joined and who left, and who is online;
//! - `rooms`: v3's rooms and direct messages, next to the lobby (v2's one
//!   room, which `broadcast` and `history` keep as they were);
//! - `seam`: requests and answers, and what waits on them.

mod action;
mod address;
mod broadcast;
mod cluster;
mod connections;
mod event;
mod failed_logins;
mod heartbeat;
mod history;
mod inbound;
mod login;
mod logins;
mod names;
mod new_names;
mod notices;
mod outbound;
mod presence;
mod rate;
mod rooms;
mod seam;
mod snapshot;
mod stats;
mod timers;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::CryptoRng;

use crate::protocol::{LeaveReason, Version};
use crate::{Config, id};
use connections::Connections;
use failed_logins::FailedLogins;
use history::History;
use logins::Logins;
use names::{Local, Names};
use new_names::NewNames;
use outbound::Outbound;
use presence::Presence;
use rate::Rate;
use rooms::Rooms;
use timers::{Timer, Timers};

pub use action::{Action, CloseCode, ConnectionId, Frame, Inbound};
pub use cluster::Remote;
pub use event::{Event, Limit};
pub use logins::{Claim, HeldName, SecretHash};
pub use seam::{Answer, Append, Disconnect, Failed, Online, Request, Reserve, Ticket, Write};
pub use snapshot::{Snapshot, StoredMember, StoredMessage, StoredName, StoredRead, StoredRoom};
pub use stats::Stats;

/// The sans-IO chat server. `R` supplies ids and secrets: a CSPRNG seeded by
/// the OS in production, a seeded one in tests.
///
/// Drive it like this, after each change:
/// 1. drain [`poll_action`](Self::poll_action) and
///    [`poll_event`](Self::poll_event) until both return `None` (and, with a
///    store, [`poll_request`](Self::poll_request));
/// 2. sleep until [`poll_timeout`](Self::poll_timeout) or the next input,
///    whichever comes first; on waking by time, call
///    [`handle_timeout`](Self::handle_timeout).
///
/// v2 timestamps are wall-clock time: tell the core what time it is with
/// [`set_wall_clock`](Self::set_wall_clock) when starting (and whenever the
/// driver wants to correct for clock steps); the core extrapolates from it
/// with the `Instant`s it is given.
pub struct Server<R> {
    config: Config,
    rng: R,
    connections: Connections,
    failed_logins: FailedLogins,
    new_names: NewNames,
    /// The limits of `config`, `None` where switched off.
    message_rate: Option<Rate>,
    ping_rate: Option<Rate>,
    history: History,
    /// The budget of v2 join and leave notices.
    presence: Presence,
    timers: Timers,
    /// Milliseconds since the Unix epoch at an instant; unset, timestamps
    /// are 0.
    wall_clock: Option<(Instant, u64)>,
    /// Set by `shutdown`, for good: nobody is left to tell who leaves, and
    /// a connection that opens now is closed at once.
    shutting_down: bool,
    actions: Outbound,
    events: VecDeque<Event>,
    stats: Stats,
    /// Names the numbering of `seq` (the `epoch` of a `history`).
    epoch: Arc<str>,
    /// Who decides names, and where what must outlive the process goes.
    names: Names,
    /// v3: every room and DM (the lobby's messages are `history`'s).
    rooms: Rooms,
}

/// How often a server with a store records that it is alive, which bounds
/// how long after a crash the names then in use stay held.
const ALIVE_INTERVAL: Duration = Duration::from_secs(30);

impl<R: CryptoRng> Server<R> {
    /// A server that keeps nothing: every name and message is forgotten
    /// when it is dropped, and `seq` numbers under a new epoch each time.
    pub fn new(config: Config, rng: R) -> Self {
        Server::with_names(config, rng, Names::Local(Local::default()))
    }

    fn with_names(config: Config, mut rng: R, names: Names) -> Self {
        let epoch = id::epoch(&mut rng).into();
        Server {
            rng,
            connections: Connections::default(),
            failed_logins: FailedLogins::new(
                config.login_failures_per_minute,
                config.login_failure_addresses,
            ),
            new_names: NewNames::new(
                config.new_names_per_minute,
                config.new_names_burst,
                config.login_failure_addresses,
            ),
            message_rate: Rate::new(config.message_rate, config.message_burst),
            ping_rate: Rate::new(config.peer_ping_rate, config.peer_ping_burst),
            history: History::new(config.history_size),
            presence: Presence::new(config.presence_rate, config.presence_burst),
            timers: Timers::default(),
            wall_clock: None,
            shutting_down: false,
            actions: Outbound::default(),
            events: VecDeque::new(),
            stats: Stats::default(),
            epoch,
            names,
            rooms: Rooms::new(&config),
            config,
        }
    }

    /// A server backed by a store, started from what the store holds. Every
    /// durable fact leaves as a [`Request`] (`poll_request`), and logins and
    /// messages are answered once their writes are reported durable
    /// (`handle_answer`). `wall` is the wall-clock time at `now`.
    ///
    /// Names whose TTL ran out while the server was down are released (and
    /// their release written); names in use when it stopped count as
    /// released at the last [`Write::Alive`] saved. Names saved under the
    /// key of an older name rule are moved to today's key (their owners
    /// keep them), and those it refuses or makes one with another are
    /// released (issue 21).
    ///
    /// v3: rooms, DMs, read markers and the names out of the lobby come
    /// back for the names still held; a DM with a party no longer held is
    /// dropped (and its drop written).
    pub fn restore(
        config: Config,
        rng: R,
        mut snapshot: Snapshot,
        wall: SystemTime,
        now: Instant,
    ) -> Self {
        let names = std::mem::take(&mut snapshot.names);
        let rooms = std::mem::take(&mut snapshot.rooms);
        let reads = std::mem::take(&mut snapshot.reads);
        let left_lobby = std::mem::take(&mut snapshot.left_lobby);
        let alive_at = snapshot.alive_at;
        let mut server = Server::resumed(config, rng, Names::with_store(), snapshot, wall, now);
        server.restore_names(names, alive_at, now);
        // After the names: only held names keep what rooms hold of them.
        server.restore_rooms(rooms, reads, left_lobby);
        let at = server.timestamp(now);
        server.record(Write::Alive { at });
        server.timers.schedule(now + ALIVE_INTERVAL, Timer::Alive);
        server
    }

    /// One node of a cluster, started from what the shared store holds
    /// (`snapshot`: its epoch, the latest `seq` and messages; names stay in
    /// the store). `wall` is the wall-clock time at `now`. See `cluster`.
    ///
    /// v3: `snapshot.names` are the names held on any node (only their keys
    /// and displays are used: rooms show them), and `snapshot.rooms`,
    /// `reads` and `left_lobby` every room's state, restored as
    /// [`restore`](Self::restore) does.
    pub fn cluster(
        config: Config,
        rng: R,
        mut snapshot: Snapshot,
        wall: SystemTime,
        now: Instant,
    ) -> Self {
        let names = std::mem::take(&mut snapshot.names);
        let rooms = std::mem::take(&mut snapshot.rooms);
        let reads = std::mem::take(&mut snapshot.reads);
        let left_lobby = std::mem::take(&mut snapshot.left_lobby);
        let mut server = Server::resumed(config, rng, Names::shared(), snapshot, wall, now);
        for name in names {
            // In use when the store was read: some node holds it.
            let online = name.expires_at.is_none();
            server.learn_name(name.key.into(), name.display.into(), online);
        }
        server.restore_rooms(rooms, reads, left_lobby);
        server
    }

    /// A core that goes on from `snapshot`'s numbering and messages, keeping
    /// names as `names` says; `wall` is the wall-clock time at `now`.
    fn resumed(
        config: Config,
        rng: R,
        names: Names,
        snapshot: Snapshot,
        wall: SystemTime,
        now: Instant,
    ) -> Self {
        let mut server = Server::with_names(config, rng, names);
        server.set_wall_clock(wall, now);
        server.epoch = snapshot.epoch.into();
        server.history.restore(snapshot.last_seq, snapshot.messages);
        server
    }

    // ---- getters ----

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Names reserved by this node, whether or not anyone holding them is
    /// connected (0 on a cluster: the shared store keeps them).
    pub fn login_count(&self) -> usize {
        self.names.logins().map_or(0, |logins| logins.len())
    }

    /// The numbering `seq` belongs to (see [`Snapshot::epoch`]).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Requests not yet answered (`handle_answer`), counting those not yet
    /// handed out (`poll_request`) and what waits on them.
    pub fn requests_in_flight(&self) -> usize {
        self.names.seam().map_or(0, |seam| seam.in_flight())
    }

    /// What the core has done so far, counted (for metrics).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Reserved names that no open connection holds (each waiting out its
    /// TTL; at most `max_held_names`). 0 on a cluster: the shared store
    /// keeps those names, for every node.
    pub fn idle_login_count(&self) -> usize {
        self.names.logins().map_or(0, |logins| logins.idle_len())
    }

    /// Names held by at least one of this node's open connections. On a
    /// cluster a name counts from the store's answer to its login until
    /// its holders here close or log out (as in [`held_names`](Self::held_names)):
    /// a user connected to two nodes counts on both.
    pub fn logged_in_count(&self) -> usize {
        match &self.names {
            Names::Local(local) => local.logins.len() - local.logins.idle_len(),
            Names::Shared(shared) => shared.held.len(),
        }
    }

    /// v3: rooms and direct conversations held (the lobby not counted).
    pub fn room_count(&self) -> usize {
        self.rooms.by_key.len()
    }

    /// Whether this is one node of a cluster ([`cluster`](Self::cluster)),
    /// whose shared store decides names and keeps the idle ones.
    pub fn is_cluster_node(&self) -> bool {
        matches!(self.names, Names::Shared(_))
    }

    /// Peer addresses whose wrong secrets are being counted (at most
    /// `login_failure_addresses`).
    pub fn tracked_addresses(&self) -> usize {
        self.failed_logins.len()
    }

    /// Entries in the timer heap, stale ones included: what memory under
    /// churn is bounded by (see `timers`). For tests.
    #[doc(hidden)]
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// Whether `conn` is open (as far as the core knows).
    pub fn is_open(&self, conn: ConnectionId) -> bool {
        self.connections.is_open(conn)
    }

    /// The protocol `conn` speaks.
    pub fn version(&self, conn: ConnectionId) -> Option<Version> {
        self.connections.get(conn).map(|c| c.version)
    }

    /// The name `conn` is logged in as.
    pub fn username(&self, conn: ConnectionId) -> Option<&str> {
        self.connections
            .get(conn)?
            .login
            .as_ref()
            .map(|(_, d)| &**d)
    }

    /// Whether [`shutdown`](Self::shutdown) was called: every connection
    /// was closed, and any that opens is closed at once.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// The names this node's open connections hold: each one's key, display
    /// name, secret's hash and how many connections hold it, ordered by key.
    ///
    /// A cluster's link to its shared store registers them again after it
    /// reconnects (the store may have counted this node gone meanwhile). On
    /// a cluster a name counts from the store's answer to its login until
    /// its holders here close or log out; names held only by a login still
    /// being saved or reserved are included on a single node, not on a
    /// cluster (the store does not count them yet either).
    pub fn held_names(&self) -> Vec<HeldName> {
        match &self.names {
            Names::Local(local) => local.logins.held(),
            Names::Shared(shared) => shared.held.list(),
        }
    }

    /// The number of the latest request asked for (see [`Request::ticket`];
    /// 0 before the first, and always 0 without a store): what
    /// [`held_names`](Self::held_names) reflects is every request up to it.
    pub fn last_ticket(&self) -> u64 {
        self.names.seam().map_or(0, |seam| seam.last_ticket())
    }

    // ---- inputs ----

    /// The wall-clock time is `wall` at instant `at`. v2 timestamps are
    /// extrapolated from the latest such reading.
    pub fn set_wall_clock(&mut self, wall: SystemTime, at: Instant) {
        let millis = wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.wall_clock = Some((at, millis));
    }

    /// A WebSocket connection finished its handshake, speaking `version`.
    /// `location` is what others see in `loginBroadcast` (the peer's IP as
    /// text, or "unknown").
    ///
    /// After [`shutdown`](Self::shutdown) the connection is closed at once
    /// with 1001 "server shutting down": its id is only good for routing
    /// that `Close`.
    pub fn handle_open(&mut self, location: &str, version: Version, now: Instant) -> ConnectionId {
        self.start_input();
        if self.shutting_down {
            return self.refuse_open();
        }
        self.open(location, version, now)
    }

    /// A frame arrived on `conn`. Frames for unknown or closed connections
    /// are ignored.
    pub fn handle_frame(&mut self, conn: ConnectionId, frame: Inbound<'_>, now: Instant) {
        self.start_input();
        self.take_frame(conn, frame, now);
    }

    /// `conn` is gone (closed by the peer, by an error, or by the driver).
    /// Nothing will be sent to it again. Unknown ids are ignored.
    pub fn handle_close(&mut self, conn: ConnectionId, now: Instant) {
        self.start_input();
        if self.connections.is_open(conn) {
            self.forget(conn, LeaveReason::Disconnected, now);
        }
    }

    /// Time has reached `now`: send due pings, evict silent connections,
    /// release expired names. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.start_input();
        while let Some((at, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Connection(conn) => self.check_connection(conn, at, now),
                Timer::FailedLogins { address } => self.failed_logins.expire(&address, now),
                Timer::Presence => self.send_presence(now),
                Timer::RoomPresence { room } => self.send_room_presence(&room, now),
                Timer::LoginExpiry { key, serial } => self.expire_login(key, serial, now),
                Timer::Alive => {
                    let at = self.timestamp(now);
                    self.record(Write::Alive { at });
                    self.timers.schedule(now + ALIVE_INTERVAL, Timer::Alive);
                }
            }
        }
    }

    /// The answer to a request handed out by [`poll_request`](Self::poll_request).
    /// A login or a message that waited for it is answered now: announced
    /// and acknowledged, or refused with `unavailable`; a failure is also
    /// reported as [`Event::WriteFailed`]. Answers to unknown tickets are
    /// ignored (but for that event).
    pub fn handle_answer(&mut self, answer: Answer, now: Instant) {
        self.start_input();
        if let Some(error) = answer.error() {
            self.events.push_back(Event::WriteFailed {
                error: error.clone(),
            });
        }
        let Some(seam) = self.names.seam_mut() else {
            return; // a server that keeps nothing hands out no ticket
        };
        match answer {
            Answer::Written(ticket, result) => {
                if let Some(login) = seam.logins.remove(&ticket) {
                    match result {
                        Ok(()) => self.announce_login(login, now),
                        Err(_) => self.undo_login(login, now),
                    }
                } else if let Some(frames) = seam.after.remove(&ticket) {
                    let told = result
                        .as_ref()
                        .err()
                        .and_then(|e| e.told().map(str::to_owned));
                    self.frames_saved(frames, result.is_ok(), told, now);
                }
            }
            Answer::Appended(ticket, result) => {
                if let Some(message) = seam.messages.remove(&ticket) {
                    match result {
                        Ok(seq) => self.accept_message(message, seq),
                        Err(e) => self.refuse_unsaved(message, e.told()),
                    }
                }
            }
            Answer::Claimed(ticket, result) => {
                if let Some(login) = seam.reserves.remove(&ticket) {
                    self.reserved(login, result.ok(), now);
                }
            }
            Answer::Released(ticket, result) => {
                if let Some(left) = seam.disconnects.remove(&ticket) {
                    // Unanswered, the user may still have left: the store's
                    // sweep of idle names settles it, and tells everyone.
                    self.disconnected(left, result == Ok(true), now);
                }
            }
            Answer::Online(ticket, result) => {
                if let Some(asked) = seam.online.remove(&ticket) {
                    self.online_answered(asked, result);
                }
            }
        }
    }

    /// What another node of a cluster did, as the shared store tells it.
    /// Messages come in `seq` order (see [`Remote::Message`]); v3: writes
    /// to rooms in the order the store took them, and each room's entries
    /// in its `seq` order (see [`Remote::Write`], [`Remote::RoomEntry`]).
    pub fn handle_remote(&mut self, remote: Remote, now: Instant) {
        self.start_input();
        self.remote(remote, now);
    }

    // ---- commands ----

    /// Closes every connection with 1001 "server shutting down", and every
    /// connection that opens from now on. Logins stay reserved (and start
    /// their TTL), as after any close.
    pub fn shutdown(&mut self, now: Instant) {
        self.start_input();
        self.shutting_down = true;
        self.presence.clear();
        for conn in self.connections.ids() {
            self.close(
                conn,
                CloseCode::GOING_AWAY,
                "server shutting down",
                LeaveReason::Disconnected,
                now,
            );
        }
    }

    // ---- outputs ----

    /// The next thing to do, in order.
    ///
    /// Frames and pings still queued for a connection when it closes (by the
    /// peer, or by the core's own `Close`) are dropped here rather than
    /// handed out: nothing is ever addressed to a closed connection.
    #[must_use]
    #[inline]
    pub fn poll_action(&mut self) -> Option<Action<'_>> {
        let connections = &self.connections;
        self.actions.pop(|to| connections.is_open(to))
    }

    /// The next thing that happened.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next request to the store, in order. Answer it with
    /// [`handle_answer`](Self::handle_answer), through its ticket. A server
    /// made with [`new`](Self::new) asks for none.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Request> {
        self.names.seam_mut()?.pop()
    }

    /// When to call `handle_timeout` next; `None` when nothing is scheduled.
    /// May be earlier than strictly needed, never later.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ---- shared helpers ----

    /// Called before each input is handled.
    fn start_input(&mut self) {
        self.actions.start_input();
        self.compact_timers();
    }

    /// Drops the timer entries that nothing waits for any more (see
    /// `timers`): a connection's at any instant but its current one, an
    /// idle name's unless it is that very spell's expiry, an address's
    /// unless its window ends then.
    fn compact_timers(&mut self) {
        let connections = &self.connections;
        let logins = self.names.logins();
        let failed_logins = &self.failed_logins;
        // At most one live entry per connection, idle name and tracked
        // address, one each of `Presence` and `Alive`, and one
        // `RoomPresence` per room at most.
        let rooms = &self.rooms.by_key;
        let live = connections.len()
            + logins.map_or(0, Logins::idle_len)
            + failed_logins.len()
            + rooms.len()
            + 2;
        self.timers.compact(live, |at, timer| match timer {
            Timer::Connection(conn) => connections.get(*conn).is_some_and(|c| c.timer_at == at),
            Timer::LoginExpiry { key, serial } => {
                logins.is_some_and(|logins| logins.expires_then(key, *serial, at))
            }
            Timer::FailedLogins { address } => failed_logins.window_ends_at(address) == Some(at),
            Timer::RoomPresence { room } => rooms
                .get(room)
                .and_then(|room| room.member_notices.as_ref())
                .is_some_and(Presence::is_holding),
            Timer::Presence | Timer::Alive => true,
        });
    }

    /// Milliseconds since the Unix epoch at `now`.
    fn timestamp(&self, now: Instant) -> u64 {
        self.wall_clock.map_or(0, |(at, millis)| {
            let since = now.saturating_duration_since(at).as_millis();
            let before = at.saturating_duration_since(now).as_millis();
            let since = u64::try_from(since).unwrap_or(u64::MAX);
            let before = u64::try_from(before).unwrap_or(u64::MAX);
            millis.saturating_add(since).saturating_sub(before)
        })
    }
}
