//! The chat core: a sans-IO state machine for the server side.
//!
//! [`Server`] owns every piece of chat state. A driver feeds it what
//! happened (`handle_*`, each with the current instant) and performs what it
//! asks for (`poll_action`), then sleeps until `poll_timeout`. It does no I/O,
//! reads no clock, spawns nothing and keeps no globals, so tests drive it
//! with a virtual clock and the same code runs under any runtime.

mod address;
mod cluster;
mod failed_logins;
mod heartbeat;
pub mod held;
mod history;
mod journal;
mod logins;
mod new_names;
mod outbound;
mod presence;
mod rate;
mod stats;
mod timers;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::CryptoRng;
use slab::Slab;

use crate::protocol::{
    self, ClientMessage, ErrorCode, LeaveReason, ServerMessage, UserPresence, Version,
};
use crate::username::Username;
use crate::{Config, id, text};
use failed_logins::FailedLogins;
use heartbeat::{Due, Heartbeat};
use history::{History, Said};
use journal::{PendingLogin, PendingMessage, Waiting};
use logins::Logins;
use new_names::NewNames;
use outbound::{FrameRef, Outbound};
use presence::{Notice, Presence};
use rate::{Bucket, Rate};
use timers::{Timer, Timers};

pub use journal::{
    Claim, Failed, Outcome, Remote, Request, Snapshot, StoredMessage, StoredName, Ticket,
};
pub use logins::SecretHash;
pub use stats::Stats;

/// Names one connection for as long as it is open. Never reused: a handle to
/// a closed connection stays dead even after its slot is taken again.
///
/// Ids order as their connections opened (`serial` comes first), so things
/// due at the same instant happen to connections in that order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    serial: u32,
    slot: u32,
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.serial)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A frame received on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A text frame (or reassembled message). The bytes need not be valid
    /// UTF-8: the core answers anything with a documented error.
    Text(&'a [u8]),
    /// A binary frame; answered with `bytesReceived`.
    Binary(&'a [u8]),
    /// A WebSocket ping, with its payload.
    Ping(&'a [u8]),
    /// A WebSocket pong, with its payload.
    Pong(&'a [u8]),
}

/// The JSON text of one outbound frame. Cloning shares the bytes: a
/// broadcast is encoded once and every recipient gets the same allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    fn encode(message: &ServerMessage<'_>) -> Frame {
        Frame(Bytes::from(message.encode()))
    }

    /// The frame's bytes (UTF-8 JSON text).
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The frame's text.
    pub fn as_str(&self) -> &str {
        // Frames are only ever built from serde_json output, which is UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WebSocket close code (RFC 6455, section 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled (used for eviction,
    /// as the original did).
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is going away.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1007: a text frame that is not UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: the peer broke a policy (too slow, no login in time…).
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a frame or message over the size limit.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
}

/// Something the driver must do.
///
/// A frame is lent out of the core (`Cow::Borrowed`): every recipient of a
/// broadcast is handed the same frame and the core keeps no reference count
/// per recipient. A driver that queues the bytes clones them (`frame.bytes()`);
/// [`Action::into_owned`] keeps a whole action past the next `poll_action`.
///
/// Deliberately not `#[non_exhaustive]`: every action is a duty of the
/// driver, so a new one must break a driver's `match` at compile time
/// rather than fall into a `_ => {}` arm and be silently dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send this text frame on the connection.
    Send {
        to: ConnectionId,
        frame: Cow<'a, Frame>,
    },
    /// Send a WebSocket ping with this payload.
    Ping { to: ConnectionId, payload: Bytes },
    /// Answer a ping. A driver whose WebSocket library already answers pings
    /// by itself (tungstenite does) must skip this, or the peer gets two.
    Pong { to: ConnectionId, payload: Bytes },
    /// Send a Close frame with this code and reason, then drop the
    /// connection. The core has already forgotten it: do not report its
    /// closing back (doing so is harmless).
    Close {
        to: ConnectionId,
        code: CloseCode,
        reason: &'static str,
    },
}

impl Action<'_> {
    /// The connection the action is for.
    pub fn to(&self) -> ConnectionId {
        match self {
            Action::Send { to, .. }
            | Action::Ping { to, .. }
            | Action::Pong { to, .. }
            | Action::Close { to, .. } => *to,
        }
    }

    /// The same action, owning its frame.
    pub fn into_owned(self) -> Action<'static> {
        match self {
            Action::Send { to, frame } => Action::Send {
                to,
                frame: Cow::Owned(frame.into_owned()),
            },
            Action::Ping { to, payload } => Action::Ping { to, payload },
            Action::Pong { to, payload } => Action::Pong { to, payload },
            Action::Close { to, code, reason } => Action::Close { to, code, reason },
        }
    }
}

/// Something that happened, for logs and metrics. Purely informational:
/// a driver that does not care still drains them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A connection logged in; `fresh` is false when it reclaimed a held name.
    LoggedIn {
        conn: ConnectionId,
        username: Arc<str>,
        fresh: bool,
    },
    /// A connection was refused a name that someone holds.
    LoginRefused {
        conn: ConnectionId,
        username: Arc<str>,
    },
    /// A connection stayed silent for `evict_after` and was closed.
    Evicted { conn: ConnectionId },
    /// A name was released after its login's TTL ran out.
    LoginExpired { username: Arc<str> },
    /// A name was released before its TTL ran out, because more than
    /// `max_held_names` were held without a connection and it had been
    /// idle longest.
    LoginEvicted { username: Arc<str> },
    /// A write failed (`handle_outcome`): a login or message that waited on
    /// it was refused with `unavailable`.
    WriteFailed { error: Failed },
    /// A user's last connection went away (for a logout, see `LoggedOut`).
    Left {
        username: Arc<str>,
        /// The peer address of that last connection.
        location: Arc<str>,
        reason: LeaveReason,
    },

    /// A login was released on request (v2 `logout`).
    LoggedOut { username: Arc<str> },
    /// A connection held no login for `login_timeout` and was closed.
    LoginTimedOut { conn: ConnectionId },
    /// A frame was refused with `rateLimited`.
    RateLimited { conn: ConnectionId, limit: Limit },
    /// A connection kept pinging past its limit and was closed.
    PingFlood { conn: ConnectionId },
}

/// Which limit refused a frame with `rateLimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// `message_rate` / `message_burst`.
    Messages,
    /// `login_failures_per_minute`.
    LoginFailures,
    /// `new_names_per_minute` / `new_names_burst`.
    NewNames,
}

/// The sans-IO chat server. `R` supplies ids and secrets: a CSPRNG seeded by
/// the OS in production, a seeded one in tests.
///
/// Drive it like this, after each change:
/// 1. drain [`poll_action`](Self::poll_action) and
///    [`poll_event`](Self::poll_event) until both return `None`;
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
    connections: Slab<Connection>,
    /// Who a broadcast goes to, by slot, in the slab's order: 16 bytes a
    /// connection, so a broadcast walks 16 KB per thousand recipients
    /// instead of every connection's whole state.
    recipients: Vec<Option<(ConnectionId, Version)>>,
    /// Open v2 connections: when 0, broadcasts skip encoding the v2 frame.
    v2_connections: usize,
    next_serial: u32,
    logins: Logins,
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
    /// Set by `shutdown`: nobody is left to tell who leaves.
    shutting_down: bool,
    actions: Outbound,
    events: VecDeque<Event>,
    stats: Stats,
    /// Names the numbering of `seq` (the `epoch` of a `history`).
    epoch: Arc<str>,
    /// Who decides names and keeps what must outlive the process.
    authority: Authority,
    next_ticket: u64,
    writes: VecDeque<(Ticket, Request)>,
    /// Logins and messages waiting for their writes.
    waiting: HashMap<Ticket, Waiting>,
}

#[derive(Debug)]
struct Connection {
    id: ConnectionId,
    version: Version,
    location: Arc<str>,
    /// What the per-address limits count this connection under (its
    /// address; for IPv6, its /64).
    address: Arc<str>,
    /// Key and display name of the login this connection holds.
    login: Option<(Arc<str>, Arc<str>)>,
    /// When the connection is closed unless it logs in first.
    login_deadline: Option<Instant>,
    heartbeat: Heartbeat,
    /// The instant of this connection's current entry in the timer heap.
    /// Entries at other instants are stale (plans changed) and are dropped
    /// when they come due, so the heap holds about one entry per connection.
    timer_at: Instant,
    messages: Bucket,
    pings: Bucket,
    /// Its login is being saved: it is not announced yet, and the frames
    /// the connection sends meanwhile wait in `held`.
    login_pending: bool,
    held: VecDeque<Held>,
}

/// Who decides names and numbers messages, and keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Authority {
    /// The core, keeping nothing (`Server::new`): requests are settled at
    /// once and none is handed out.
    Memory,
    /// The core, recording each fact in a store (`Server::restore`).
    Store,
    /// A store shared by several nodes, which decides names and numbers
    /// (`Server::cluster`): the core asks, and acts on its answers.
    Shared,
}

/// A frame held while its connection's login is being saved.
#[derive(Debug)]
enum Held {
    Text(Vec<u8>),
    Binary,
}

/// The most frames a connection may send while its login is being saved
/// (a few milliseconds); past it, `rateLimited`.
const MAX_HELD_FRAMES: usize = 64;

/// How often a server with a store records that it is alive, which bounds
/// how long after a crash the names then in use stay held.
const ALIVE_INTERVAL: Duration = Duration::from_secs(30);

impl Connection {
    /// The next instant something is due on this connection.
    fn deadline(&self, config: &Config) -> Instant {
        let heartbeat = self.heartbeat.deadline(config);
        self.login_deadline
            .map_or(heartbeat, |login| login.min(heartbeat))
    }
}

/// Frames of one broadcast, each encoded at most once.
struct Encoded<'m> {
    v1: &'m ServerMessage<'m>,
    /// `None`: v2 connections get nothing (a join past the presence budget).
    v2: Option<&'m ServerMessage<'m>>,
    /// A different v2 frame for this connection (its own acknowledgement).
    own: Option<(ConnectionId, &'m ServerMessage<'m>)>,
}

impl<R: CryptoRng> Server<R> {
    /// A server that keeps nothing: every name and message is forgotten
    /// when it is dropped, and `seq` numbers under a new epoch each time.
    pub fn new(config: Config, mut rng: R) -> Self {
        let history = History::new(config.history_size);
        let epoch = id::epoch(&mut rng).into();
        Server {
            rng,
            connections: Slab::new(),
            recipients: Vec::new(),
            v2_connections: 0,
            next_serial: 0,
            logins: Logins::default(),
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
            history,
            presence: Presence::new(config.presence_rate, config.presence_burst),
            timers: Timers::default(),
            wall_clock: None,
            shutting_down: false,
            actions: Outbound::default(),
            events: VecDeque::new(),
            stats: Stats::default(),
            epoch,
            authority: Authority::Memory,
            next_ticket: 0,
            writes: VecDeque::new(),
            waiting: HashMap::new(),
            config,
        }
    }

    /// A server backed by a store, started from what the store holds. Every
    /// durable fact leaves as a [`Request`] (`poll_request`), and logins and
    /// messages are answered once their writes are reported durable
    /// (`handle_outcome`). `wall` is the wall-clock time at `now`.
    ///
    /// Names whose TTL ran out while the server was down are released (and
    /// their release written); names in use when it stopped count as
    /// released at the last [`Request::Alive`] saved.
    pub fn restore(
        config: Config,
        rng: R,
        snapshot: Snapshot,
        wall: SystemTime,
        now: Instant,
    ) -> Self {
        let mut snapshot = snapshot;
        let names = std::mem::take(&mut snapshot.names);
        let alive_at = snapshot.alive_at;
        let mut server = Server::resumed(config, rng, Authority::Store, snapshot, wall, now);
        let wall_now = server.timestamp(now);
        let ttl = u64::try_from(server.config.login_ttl.as_millis()).unwrap_or(u64::MAX);
        let stopped = alive_at.unwrap_or(wall_now);
        let mut names = names;
        // Oldest first, so that the idle queue is in the order they expire.
        names.sort_by_key(|n| n.expires_at.unwrap_or(stopped.saturating_add(ttl)));
        for name in names {
            let key: Arc<str> = name.key.into();
            let expires_at = match name.expires_at {
                Some(at) => at,
                None => {
                    let at = stopped.saturating_add(ttl);
                    server.record(Request::Idle {
                        key: key.clone(),
                        expires_at: at,
                    });
                    at
                }
            };
            if expires_at <= wall_now {
                server.record(Request::Release { key });
                continue;
            }
            let at = now + Duration::from_millis(expires_at - wall_now);
            let serial = server
                .logins
                .restore(key.clone(), name.display.into(), name.secret, at);
            server
                .timers
                .schedule(at, Timer::LoginExpiry { key, serial });
        }
        while let Some((key, login)) = server.logins.over_ceiling(server.config.max_held_names) {
            server.released_early(key, login);
        }
        server.record(Request::Alive { at: wall_now });
        server.timers.schedule(now + ALIVE_INTERVAL, Timer::Alive);
        server
    }

    /// A core that goes on from `snapshot`'s numbering and messages, under
    /// `authority`; `wall` is the wall-clock time at `now`.
    fn resumed(
        config: Config,
        rng: R,
        authority: Authority,
        snapshot: Snapshot,
        wall: SystemTime,
        now: Instant,
    ) -> Self {
        let mut server = Server::new(config, rng);
        server.authority = authority;
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

    /// Reserved names, whether or not anyone holding them is connected.
    pub fn login_count(&self) -> usize {
        self.logins.len()
    }

    /// The numbering `seq` belongs to (see [`Snapshot::epoch`]).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Writes asked for and not yet reported (`handle_outcome`).
    pub fn requests_in_flight(&self) -> usize {
        self.writes.len() + self.waiting.len()
    }

    /// What the core has done so far, counted (for metrics).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Reserved names that no open connection holds (each waiting out its
    /// TTL; at most `max_held_names`).
    pub fn idle_login_count(&self) -> usize {
        self.logins.idle_len()
    }

    /// Peer addresses whose wrong secrets are being counted (at most
    /// `login_failure_addresses`).
    pub fn tracked_addresses(&self) -> usize {
        self.failed_logins.len()
    }

    /// Whether `conn` is open (as far as the core knows).
    pub fn is_open(&self, conn: ConnectionId) -> bool {
        self.connection(conn).is_some()
    }

    /// The protocol `conn` speaks.
    pub fn version(&self, conn: ConnectionId) -> Option<Version> {
        self.connection(conn).map(|c| c.version)
    }

    /// The name `conn` is logged in as.
    pub fn username(&self, conn: ConnectionId) -> Option<&str> {
        self.connection(conn)?.login.as_ref().map(|(_, d)| &**d)
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
    pub fn handle_open(&mut self, location: &str, version: Version, now: Instant) -> ConnectionId {
        self.actions.start_input();
        let location: Arc<str> = location.into();
        self.next_serial = self.next_serial.wrapping_add(1);
        let entry = self.connections.vacant_entry();
        let id = ConnectionId {
            slot: u32::try_from(entry.key()).unwrap_or(u32::MAX),
            serial: self.next_serial,
        };
        let mut connection = Connection {
            id,
            version,
            address: address::key(&location),
            location,
            login: None,
            login_deadline: login_deadline(&self.config, now),
            heartbeat: Heartbeat::new(now),
            timer_at: now,
            messages: Bucket::new(now),
            pings: Bucket::new(now),
            login_pending: false,
            held: VecDeque::new(),
        };
        connection.timer_at = connection.deadline(&self.config);
        self.timers
            .schedule(connection.timer_at, Timer::Connection(id));
        entry.insert(connection);
        let slot = id.slot as usize;
        if self.recipients.len() <= slot {
            self.recipients.resize(slot + 1, None);
        }
        self.recipients[slot] = Some((id, version));
        if version == Version::V2 {
            self.v2_connections += 1;
        }
        id
    }

    /// A frame arrived on `conn`. Frames for unknown or closed connections
    /// are ignored.
    pub fn handle_frame(&mut self, conn: ConnectionId, frame: Inbound<'_>, now: Instant) {
        self.actions.start_input();
        let Some(connection) = self
            .connections
            .get_mut(conn.slot as usize)
            .filter(|c| c.id == conn)
        else {
            return;
        };
        connection.heartbeat.on_activity(now);
        if let (Inbound::Text(_) | Inbound::Binary(_), Some(rate)) = (frame, &self.message_rate)
            && let Err(wait) = connection.messages.try_take(rate, now)
        {
            return self.refuse_message(conn, frame, wait);
        }
        if connection.login_pending {
            let held = match frame {
                Inbound::Text(bytes) => Some(Held::Text(bytes.to_vec())),
                Inbound::Binary(_) => Some(Held::Binary),
                Inbound::Ping(_) | Inbound::Pong(_) => None,
            };
            if let Some(held) = held {
                if connection.held.len() < MAX_HELD_FRAMES {
                    connection.held.push_back(held);
                    return;
                }
                return self.send_error(
                    conn,
                    None,
                    ErrorCode::RateLimited,
                    "too many messages while your login is being saved; send again in a moment",
                );
            }
        }
        self.handle_inbound(conn, frame, now);
    }

    /// A frame that is `conn`'s turn to be handled.
    fn handle_inbound(&mut self, conn: ConnectionId, frame: Inbound<'_>, now: Instant) {
        let Some(version) = self.version(conn) else {
            return;
        };
        match frame {
            Inbound::Text(bytes) => match ClientMessage::decode_for(bytes, version) {
                Ok(message) => self.dispatch(conn, message, now),
                Err(e) => {
                    let reply_to = (version >= Version::V2)
                        .then(|| salvage_id(bytes))
                        .flatten();
                    self.send_error(
                        conn,
                        reply_to.as_deref(),
                        ErrorCode::InvalidJson,
                        e.description(),
                    )
                }
            },
            Inbound::Binary(_) => self.send_error(
                conn,
                None,
                ErrorCode::BytesReceived,
                "binary frames are not part of the protocol; send JSON in text frames",
            ),
            Inbound::Ping(payload) => self.ping(conn, payload, now),
            Inbound::Pong(_) => {}
        }
    }

    /// `conn` is gone (closed by the peer, by an error, or by the driver).
    /// Nothing will be sent to it again. Unknown ids are ignored.
    pub fn handle_close(&mut self, conn: ConnectionId, now: Instant) {
        self.actions.start_input();
        if self.connection(conn).is_some() {
            self.forget(conn, LeaveReason::Disconnected, now);
        }
    }

    /// Time has reached `now`: send due pings, evict silent connections,
    /// release expired names. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.actions.start_input();
        while let Some((at, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Connection(conn) => self.check_connection(conn, at, now),
                Timer::FailedLogins { address } => self.failed_logins.expire(&address, now),
                Timer::Presence => self.send_presence(now),
                Timer::LoginExpiry { key, serial } => {
                    if let Some(login) = self.logins.expire(&key, serial, now) {
                        self.events.push_back(Event::LoginExpired {
                            username: login.display,
                        });
                        self.record(Request::Release { key });
                    }
                }
                Timer::Alive => {
                    let at = self.timestamp(now);
                    self.record(Request::Alive { at });
                    self.timers.schedule(now + ALIVE_INTERVAL, Timer::Alive);
                }
            }
        }
    }

    // ---- commands ----

    /// Closes every connection with 1001 "server shutting down". Logins stay
    /// reserved (and start their TTL), as after any close.
    pub fn shutdown(&mut self, now: Instant) {
        self.actions.start_input();
        self.shutting_down = true;
        self.presence.clear();
        let all: Vec<ConnectionId> = self.connections.iter().map(|(_, c)| c.id).collect();
        for conn in all {
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
        self.actions.pop(|to| {
            connections
                .get(to.slot as usize)
                .is_some_and(|c| c.id == to)
        })
    }

    /// The next thing that happened.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next fact to make durable, in order. Report its outcome with
    /// [`handle_outcome`](Self::handle_outcome). A server made with
    /// [`new`](Self::new) asks for none.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<(Ticket, Request)> {
        self.writes.pop_front()
    }

    /// The write of `ticket` is durable (or failed). A login or a message
    /// that waited for it is answered now: announced and acknowledged, or
    /// refused with `unavailable`. Unknown tickets are ignored.
    pub fn handle_outcome(
        &mut self,
        ticket: Ticket,
        outcome: Result<Outcome, Failed>,
        now: Instant,
    ) {
        self.actions.start_input();
        let waiting = self.waiting.remove(&ticket);
        if let Err(error) = &outcome {
            self.events.push_back(Event::WriteFailed {
                error: error.clone(),
            });
        }
        match (waiting, outcome) {
            (None, _) => {}
            (Some(Waiting::Login(login)), Ok(_)) => self.announce_login(login, now),
            (Some(Waiting::Login(login)), Err(_)) => self.undo_login(login, now),
            (Some(Waiting::Message(message)), Ok(Outcome::Appended { seq })) => {
                self.accept_message(message, seq)
            }
            // The sender is told, if it is still there to hear it.
            (Some(Waiting::Message(message)), _) if self.is_open(message.conn) => {
                self.send_error(
                    message.conn,
                    message.reply_to.as_deref(),
                    ErrorCode::Unavailable,
                    "the server could not save the message; it was not sent, try again in a moment",
                );
            }
            (Some(Waiting::Message(_)), _) => {}
            (Some(Waiting::Reserve(pending)), outcome) => {
                self.reserved(pending, cluster::claim_of(outcome), now)
            }
            (
                Some(Waiting::Disconnect {
                    display,
                    location,
                    reason,
                }),
                outcome,
            ) => {
                // Unanswered, the user may still have left: the store's
                // sweep of idle names settles it, and tells everyone.
                let gone = matches!(outcome, Ok(Outcome::Released { gone: true }));
                self.disconnected(display, location, reason, gone, now);
            }
            (Some(Waiting::Online { conn, reply_to }), Ok(Outcome::Online(mut online))) => {
                online.sort_by_cached_key(|(name, _)| crate::username::key(name));
                self.send_user_list(conn, reply_to.as_deref(), &online);
            }
            (Some(Waiting::Online { conn, reply_to }), _) => self.send_error(
                conn,
                reply_to.as_deref(),
                ErrorCode::Unavailable,
                "the server could not reach its store to list who is online; try again",
            ),
        }
    }

    /// When to call `handle_timeout` next; `None` when nothing is scheduled.
    /// May be earlier than strictly needed, never later.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ---- internals ----

    /// Asks the driver to make `write` durable (a server with a store);
    /// `None` when there is no store and the fact is settled already.
    fn record(&mut self, write: Request) -> Option<Ticket> {
        if self.authority == Authority::Memory {
            return None;
        }
        self.next_ticket += 1;
        let ticket = Ticket(self.next_ticket);
        self.writes.push_back((ticket, write));
        Some(ticket)
    }

    /// Reservation `serial` of `key` went idle at `now`, until `at`: its
    /// expiry is timed and recorded.
    fn went_idle(&mut self, key: Arc<str>, at: Instant, serial: u64, now: Instant) {
        self.timers.schedule(
            at,
            Timer::LoginExpiry {
                key: key.clone(),
                serial,
            },
        );
        let expires_at = self.expires_at(now);
        self.record(Request::Idle { key, expires_at });
    }

    /// When a login that goes idle at `now` expires, in wall-clock ms.
    fn expires_at(&self, now: Instant) -> u64 {
        let ttl = u64::try_from(self.config.login_ttl.as_millis()).unwrap_or(u64::MAX);
        self.timestamp(now).saturating_add(ttl)
    }

    /// `login` was released before its TTL, over `max_held_names`.
    fn released_early(&mut self, key: Arc<str>, login: logins::Login) {
        self.events.push_back(Event::LoginEvicted {
            username: login.display,
        });
        self.record(Request::Release { key });
    }

    fn connection(&self, conn: ConnectionId) -> Option<&Connection> {
        self.connections
            .get(conn.slot as usize)
            .filter(|c| c.id == conn)
    }

    fn connection_mut(&mut self, conn: ConnectionId) -> Option<&mut Connection> {
        self.connections
            .get_mut(conn.slot as usize)
            .filter(|c| c.id == conn)
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

    /// `id` echoed as `replyTo` to v2 connections only.
    fn reply_to<'a>(&self, conn: ConnectionId, id: &'a str) -> Option<&'a str> {
        (self.version(conn)? >= Version::V2).then_some(id)
    }

    fn dispatch(&mut self, conn: ConnectionId, message: ClientMessage, now: Instant) {
        let reply_to = self.reply_to(conn, message.id()).map(str::to_owned);
        let reply_to = reply_to.as_deref();
        match &message {
            ClientMessage::Login {
                username,
                secret,
                since,
                epoch,
                ..
            } => {
                // A `since` of another numbering (a store that is new since
                // the client last heard from it) means nothing here: the
                // client has seen none of this numbering's messages.
                let since = match (since, epoch) {
                    (Some(_), Some(epoch)) if **epoch != *self.epoch => Some(0),
                    _ => *since,
                };
                self.login(conn, reply_to, username, secret.as_deref(), since, now)
            }
            ClientMessage::TextFromUser { text, .. } => self.text(conn, reply_to, text, now),
            ClientMessage::ListUsers { .. } => self.list_users(conn, reply_to),
            ClientMessage::Logout { .. } => self.logout(conn, reply_to, now),
        }
    }

    fn login(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        raw: &str,
        secret: Option<&str>,
        since: Option<u64>,
        now: Instant,
    ) {
        if let Some(name) = self.username(conn) {
            let description = format!("this connection is already logged in as \"{name}\"");
            return self.send_error(conn, reply_to, ErrorCode::AlreadyLoggedIn, &description);
        }
        let name = match Username::parse(raw, self.config.max_username_chars) {
            Ok(name) => name,
            Err(e) => {
                return self.send_error(conn, reply_to, ErrorCode::InvalidUsername, &e.to_string());
            }
        };
        let Some(address) = self.connection(conn).map(|c| c.address.clone()) else {
            return;
        };
        // Wrong secrets are counted per peer address, so that guessing from
        // several connections counts as one.
        let guesser = secret.map(|_| address.clone());
        if let Some(address) = &guesser
            && let Err(wait) = self.failed_logins.check(address, now)
        {
            return self.refuse_login(conn, reply_to, Limit::LoginFailures, wait);
        }
        // A reservation that ran out before a timer released it (the driver
        // woke late) is released here, and reported like any other expiry.
        if let Some(expired) = self.logins.take_expired(&name.key, now) {
            self.events.push_back(Event::LoginExpired {
                username: expired.display,
            });
            self.record(Request::Release {
                key: name.key.as_str().into(),
            });
        }
        // On a cluster only its store knows which names are free: a login
        // without a secret (which takes a free name or is refused) is what
        // counts against the limit of new names there.
        let fresh = match self.authority {
            Authority::Shared => secret.is_none(),
            _ => !self.logins.is_held(&name.key, now),
        };
        if fresh && let Err(wait) = self.new_names.check(&address, now) {
            return self.refuse_login(conn, reply_to, Limit::NewNames, wait);
        }
        if self.authority == Authority::Shared {
            return self.reserve(conn, reply_to, name, secret, since, now);
        }
        let rng = &mut self.rng;
        let claimed = self
            .logins
            .claim(&name.key, &name.display, secret, now, || id::secret(rng));
        let (claim, display) = (claimed.claim, claimed.display);
        if claim == Claim::Fresh {
            self.new_names.took(&address, now);
        }
        if claim == Claim::Taken {
            return self.refuse_taken(conn, reply_to, display, guesser, now);
        }
        let key: Arc<str> = name.key.into();
        let connection = self
            .connection_mut(conn)
            .expect("handle_frame checked the connection");
        connection.login = Some((key.clone(), display.clone()));
        connection.login_deadline = None;
        let write = match claim {
            Claim::Fresh => Some(Request::Claim {
                key: key.clone(),
                display: display.clone(),
                secret: claimed.hash,
            }),
            _ if claimed.was_idle => Some(Request::InUse { key: key.clone() }),
            _ => None,
        };
        let pending = PendingLogin {
            conn,
            reply_to: reply_to.map(str::to_owned),
            since,
            fresh: claim == Claim::Fresh,
            key,
            display,
            secret: claimed.secret,
        };
        match write.and_then(|write| self.record(write)) {
            Some(ticket) => {
                if let Some(connection) = self.connection_mut(conn) {
                    connection.login_pending = true;
                }
                self.waiting.insert(ticket, Waiting::Login(pending));
            }
            None => self.announce_login(pending, now),
        }
    }

    /// Tells everyone of a login, and the connection its outcome, once the
    /// login is durable; then handles what the connection sent meanwhile.
    fn announce_login(&mut self, pending: PendingLogin, now: Instant) {
        let PendingLogin {
            conn,
            reply_to,
            since,
            fresh,
            key,
            display,
            secret,
        } = pending;
        let reply_to = reply_to.as_deref();
        let Some(connection) = self.connection_mut(conn) else {
            return; // closed meanwhile: its login was released as it closed
        };
        if connection.login.as_ref().is_none_or(|(k, _)| *k != key) {
            return; // logged out meanwhile (by another device)
        }
        connection.login_pending = false;
        let location = connection.location.clone();
        let version = connection.version;

        let timestamp = self.timestamp(now);
        self.broadcast_join(&display, &location, timestamp, now);
        let reply_id = id::message_id(&mut self.rng);
        self.send(
            conn,
            &ServerMessage::LoginMessage {
                id: reply_id.into(),
                reply_to: reply_to.map(Into::into),
                username: (*display).into(),
                location: (*location).into(),
                secret: secret.into(),
            },
        );
        if version >= Version::V2 {
            self.send_history(conn, reply_to.unwrap_or_default(), since);
        }
        self.events.push_back(Event::LoggedIn {
            conn,
            username: display,
            fresh,
        });
        self.release_held(conn, now);
    }

    /// A login past a limit of `conn`'s address, which allows the next in
    /// `wait`.
    fn refuse_login(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        limit: Limit,
        wait: Duration,
    ) {
        let too_many = match limit {
            Limit::NewNames => "too many new names",
            _ => "too many wrong secrets",
        };
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let description = format!("{too_many} from your address; retry in {secs} s");
        self.events.push_back(Event::RateLimited { conn, limit });
        self.send_error(conn, reply_to, ErrorCode::RateLimited, &description);
    }

    /// A login refused because someone holds `display`; a wrong secret
    /// (one was given, by `guesser`'s address) counts against the address.
    fn refuse_taken(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        display: Arc<str>,
        guesser: Option<Arc<str>>,
        now: Instant,
    ) {
        if let Some(address) = guesser
            && let Some(ends_at) = self.failed_logins.record(&address, now)
        {
            self.timers
                .schedule(ends_at, Timer::FailedLogins { address });
        }
        let description = format!(
            "the name \"{display}\" is taken; give its secret to reclaim it, or pick another"
        );
        self.events.push_back(Event::LoginRefused {
            conn,
            username: display,
        });
        self.send_error(conn, reply_to, ErrorCode::LoginTaken, &description);
    }

    /// Tells everyone that `display` joined from `location`: every v1
    /// connection, and v2 ones within the presence budget.
    fn broadcast_join(&mut self, display: &Arc<str>, location: &str, timestamp: u64, now: Instant) {
        let broadcast_id = id::message_id(&mut self.rng);
        let v1 = ServerMessage::LoginBroadcast {
            id: (&*broadcast_id).into(),
            username: (**display).into(),
            location: location.into(),
            timestamp: None,
        };
        let v2 = ServerMessage::LoginBroadcast {
            id: (&*broadcast_id).into(),
            username: (**display).into(),
            location: location.into(),
            timestamp: Some(timestamp),
        };
        let v2_now = self.v2_connections > 0 && {
            let notice = self.presence.joined(display.clone(), now);
            self.arm_presence(notice);
            notice == Notice::Send
        };
        self.broadcast(Encoded {
            v1: &v1,
            v2: v2_now.then_some(&v2),
            own: None,
        });
    }

    /// A login could not be saved: the connection is not logged in after
    /// all, and is told so.
    fn undo_login(&mut self, pending: PendingLogin, now: Instant) {
        let deadline = login_deadline(&self.config, now);
        let Some(connection) = self.connection_mut(pending.conn) else {
            return;
        };
        if connection
            .login
            .as_ref()
            .is_none_or(|(k, _)| *k != pending.key)
        {
            return;
        }
        connection.login = None;
        connection.login_pending = false;
        connection.login_deadline = deadline;
        if let Some(at) = deadline.filter(|&at| at < connection.timer_at) {
            connection.timer_at = at;
            self.timers.schedule(at, Timer::Connection(pending.conn));
        }
        let key = pending.key;
        if let Some((at, serial)) = self.logins.release(&key, now, self.config.login_ttl) {
            if pending.fresh {
                // Never announced, never saved: as if it had not happened.
                self.logins.remove(&key);
            } else {
                self.went_idle(key, at, serial, now);
            }
        }
        self.send_error(
            pending.conn,
            pending.reply_to.as_deref(),
            ErrorCode::Unavailable,
            "the server could not save your login; try again in a moment",
        );
        self.release_held(pending.conn, now);
    }

    /// Handles, in order, the frames `conn` sent while its login was being
    /// saved, until none is left or another login is.
    fn release_held(&mut self, conn: ConnectionId, now: Instant) {
        loop {
            let Some(connection) = self.connection_mut(conn) else {
                return;
            };
            if connection.login_pending {
                return;
            }
            let Some(held) = connection.held.pop_front() else {
                connection.held = VecDeque::new(); // free its memory
                return;
            };
            match held {
                Held::Text(bytes) => self.handle_inbound(conn, Inbound::Text(&bytes), now),
                Held::Binary => self.handle_inbound(conn, Inbound::Binary(&[]), now),
            }
        }
    }

    fn send_history(&mut self, conn: ConnectionId, reply_to: &str, since: Option<u64>) {
        let max_bytes = self.config.reply_max_bytes;
        let catch_up = match since {
            Some(since) => self.history.after(since, max_bytes),
            None => self.history.latest(self.config.history_on_join, max_bytes),
        };
        let messages = catch_up
            .messages
            .iter()
            .map(|said| said.message(None, true))
            .collect();
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::History {
            id: id.into(),
            reply_to: reply_to.into(),
            epoch: Some((*self.epoch).into()),
            messages,
            complete: catch_up.complete,
        });
        self.actions.send_new(conn, frame);
    }

    fn text(&mut self, conn: ConnectionId, reply_to: Option<&str>, text: &str, now: Instant) {
        let Some(username) = self.username(conn).map(Arc::<str>::from) else {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::MessagingWhileNotLoggedIn,
                "log in before sending messages",
            );
        };
        if text.trim().is_empty() {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::EmptyMessage,
                "the message is empty",
            );
        }
        let max = self.config.max_message_chars;
        // Counting stops at the first character past the limit, so a huge
        // text costs no more than a legal one.
        let chars = text.chars().take(max + 1).count();
        if chars > max {
            let description = format!("the message is longer than {max} characters");
            return self.send_error(conn, reply_to, ErrorCode::MessageTooLong, &description);
        }
        let pending = PendingMessage {
            conn,
            reply_to: reply_to.map(str::to_owned),
            id: id::message_id(&mut self.rng).into(),
            timestamp: self.timestamp(now),
            username,
            text: text::neutralise(text).into(),
        };
        if self.authority == Authority::Memory {
            let seq = self.history.next_seq();
            return self.accept_message(pending, seq);
        }
        let write = Request::Append {
            id: pending.id.clone(),
            timestamp: pending.timestamp,
            username: pending.username.clone(),
            text: pending.text.clone(),
        };
        if let Some(ticket) = self.record(write) {
            self.waiting.insert(ticket, Waiting::Message(pending));
        }
    }

    /// A message is saved as number `seq`: everyone gets it, the sender its
    /// acknowledgement (v2), and it joins the history.
    fn accept_message(&mut self, pending: PendingMessage, seq: u64) {
        let PendingMessage {
            conn,
            reply_to,
            id,
            timestamp,
            username,
            text,
        } = pending;
        let own = reply_to.map(|reply_to| (conn, reply_to));
        self.deliver_message(seq, id, timestamp, username, text, own);
        self.stats.messages += 1;
    }

    /// Message `seq` goes to everyone (with the sender's `own` copy, which
    /// acknowledges it on v2) and joins the history.
    fn deliver_message(
        &mut self,
        seq: u64,
        id: Arc<str>,
        timestamp: u64,
        username: Arc<str>,
        text: Arc<str>,
        own: Option<(ConnectionId, String)>,
    ) {
        let mut said = Said {
            id,
            username,
            message: text,
            seq,
            timestamp,
            encoded_len: 0,
        };
        let (v1, v2) = (said.message(None, false), said.message(None, true));
        let own_copy = own
            .as_ref()
            .map(|(conn, reply_to)| (*conn, said.message(Some(reply_to), true)));
        let v2_len = self.broadcast(Encoded {
            v1: &v1,
            v2: Some(&v2),
            own: own_copy.as_ref().map(|(conn, own)| (*conn, own)),
        });
        // What the message adds to a `history`: its v2 frame, encoded once
        // already for the broadcast unless nobody speaks v2.
        let encoded_len = v2_len.unwrap_or_else(|| v2.encoded_len());
        said.encoded_len = encoded_len;
        self.history.push(said);
    }

    fn list_users(&mut self, conn: ConnectionId, reply_to: Option<&str>) {
        if self.username(conn).is_none() {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::MessagingWhileNotLoggedIn,
                "log in before listing users",
            );
        }
        if self.authority == Authority::Shared {
            return self.ask_online(conn, reply_to);
        }
        let online = self.logins.online();
        self.send_user_list(conn, reply_to, &online);
    }

    /// The `userList` of `online` (sorted), for `conn`.
    fn send_user_list(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        online: &[(Arc<str>, usize)],
    ) {
        if !self.is_open(conn) {
            return;
        }
        // Names are short, but ten thousand of them would not be: the list
        // stops at the reply budget, and says how many it left out.
        let mut bytes = 0;
        let users: Vec<UserPresence<'_>> = online
            .iter()
            .map(|(username, connections)| UserPresence {
                username: (**username).into(),
                connections: *connections,
            })
            .take_while(|user| {
                bytes += protocol::encoded_len(user) + 1; // and a comma
                bytes <= self.config.reply_max_bytes
            })
            .collect();
        let more = online.len() - users.len();
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::UserList {
            id: id.into(),
            reply_to: reply_to.unwrap_or_default().into(),
            users,
            more,
        });
        self.actions.send_new(conn, frame);
    }

    fn logout(&mut self, conn: ConnectionId, reply_to: Option<&str>, now: Instant) {
        let Some((key, display)) = self.connection(conn).and_then(|c| c.login.clone()) else {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::MessagingWhileNotLoggedIn,
                "log in before logging out",
            );
        };
        if self.authority == Authority::Shared {
            let request = Request::Logout {
                key: key.clone(),
                display: display.clone(),
            };
            self.record(request);
        } else {
            self.logins.remove(&key);
            self.record(Request::Release { key: key.clone() });
        }
        let holders = self.log_out_holders(&key, now);
        self.broadcast_leave(&display, LeaveReason::Logout, &holders, now);
        self.events
            .push_back(Event::LoggedOut { username: display });
    }

    /// The timer of `conn` set for `at` came due: close it if it held no
    /// login in time, otherwise see to its heartbeat, then re-arm.
    fn check_connection(&mut self, conn: ConnectionId, at: Instant, now: Instant) {
        let config = &self.config;
        let Some(connection) = self
            .connections
            .get_mut(conn.slot as usize)
            .filter(|c| c.id == conn && c.timer_at == at)
        else {
            return; // closed since this timer was set, or a stale entry
        };
        if connection
            .login_deadline
            .is_some_and(|deadline| deadline <= now)
        {
            self.events.push_back(Event::LoginTimedOut { conn });
            return self.close(
                conn,
                CloseCode::POLICY,
                "login timeout",
                LeaveReason::Disconnected,
                now,
            );
        }
        let due = connection.heartbeat.due(config, now);
        if due == Due::Ping {
            connection.heartbeat.on_ping_sent(now);
        }
        if due != Due::Evict {
            connection.timer_at = connection.deadline(config);
            self.timers
                .schedule(connection.timer_at, Timer::Connection(conn));
        }
        match due {
            Due::NotBefore(_) => {}
            Due::Ping => {
                self.actions.ping(conn, Bytes::from_static(b"wschat"));
            }
            Due::Evict => {
                self.events.push_back(Event::Evicted { conn });
                self.close(
                    conn,
                    CloseCode::NORMAL,
                    "ping timeout",
                    LeaveReason::Evicted,
                    now,
                );
            }
        }
    }

    fn close(
        &mut self,
        conn: ConnectionId,
        code: CloseCode,
        reason: &'static str,
        leave: LeaveReason,
        now: Instant,
    ) {
        self.actions.close(conn, code, reason);
        self.forget(conn, leave, now);
    }

    /// Drops every trace of `conn` except its login's reservation, and tells
    /// v2 connections when that was the user's last connection.
    fn forget(&mut self, conn: ConnectionId, leave: LeaveReason, now: Instant) {
        let Some(connection) = self.connections.try_remove(conn.slot as usize) else {
            return;
        };
        if let Some(recipient) = self.recipients.get_mut(conn.slot as usize) {
            *recipient = None;
        }
        self.actions.connection_closed();
        if connection.version == Version::V2 {
            self.v2_connections -= 1;
        }
        let Some((key, display)) = connection.login else {
            return;
        };
        if self.authority == Authority::Shared {
            // A cluster login is announced as soon as it is held: whether
            // its user left is the store's to say.
            return self.disconnect(key, display, connection.location, leave);
        }
        if let Some((at, serial)) = self.logins.release(&key, now, self.config.login_ttl) {
            self.went_idle(key, at, serial, now);
            // A login still being saved was never announced: nobody is told
            // it ends.
            if !connection.login_pending {
                if !self.shutting_down {
                    self.broadcast_leave(&display, leave, &[], now);
                }
                self.events.push_back(Event::Left {
                    username: display,
                    location: connection.location,
                    reason: leave,
                });
            }
            while let Some((key, login)) = self.logins.over_ceiling(self.config.max_held_names) {
                self.released_early(key, login);
            }
        }
    }

    /// `logoutBroadcast` to every v2 connection (v1 has no such message),
    /// within the presence budget; past it, only to `holders` (the
    /// connections that just logged out, for whom it is the confirmation)
    /// and the others hear of it in the next `presence` summary.
    fn broadcast_leave(
        &mut self,
        username: &Arc<str>,
        reason: LeaveReason,
        holders: &[ConnectionId],
        now: Instant,
    ) {
        if self.v2_connections == 0 {
            return;
        }
        let notice = self.presence.left(username.clone(), now);
        self.arm_presence(notice);
        let to_everyone = notice == Notice::Send;
        if !to_everyone && holders.is_empty() {
            return;
        }
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::LogoutBroadcast {
            id: id.into(),
            username: (**username).into(),
            reason,
            timestamp: self.timestamp(now),
        });
        let frame = self.actions.add(frame);
        if to_everyone {
            for &(id, version) in self.recipients.iter().flatten() {
                if version >= Version::V2 {
                    self.actions.send(id, frame);
                }
            }
        } else {
            for &id in holders {
                if self.version(id) >= Some(Version::V2) {
                    self.actions.send(id, frame);
                }
            }
        }
    }

    /// A presence notice was held: wake up to summarise it when the budget
    /// allows.
    fn arm_presence(&mut self, notice: Notice) {
        if let Notice::HeldUntil(at) = notice {
            self.timers.schedule(at, Timer::Presence);
        }
    }

    /// The presence budget allows a notice again: every v2 connection gets
    /// the summary of what was held.
    fn send_presence(&mut self, now: Instant) {
        let summary = match self.presence.due(now) {
            Ok(summary) => summary,
            Err(later) => {
                if let Some(at) = later {
                    self.timers.schedule(at, Timer::Presence);
                }
                return;
            }
        };
        if self.v2_connections == 0 {
            return;
        }
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::Presence {
            id: id.into(),
            joined: listed(&summary.joined),
            joined_count: summary.joined_count,
            left: listed(&summary.left),
            left_count: summary.left_count,
            timestamp: self.timestamp(now),
        });
        let frame = self.actions.add(frame);
        for &(id, version) in self.recipients.iter().flatten() {
            if version >= Version::V2 {
                self.actions.send(id, frame);
            }
        }
    }

    /// A ping within the limit is answered; past it, ignored; and past it by
    /// another burst, the connection is closed. Every ping counts, answered
    /// or not, so only a peer that slows down to the rate gets pongs again.
    fn ping(&mut self, conn: ConnectionId, payload: &[u8], now: Instant) {
        let Some(rate) = self.ping_rate else {
            return self.pong(conn, payload);
        };
        let Some(connection) = self.connection_mut(conn) else {
            return;
        };
        let wait = connection.pings.wait(&rate, now);
        connection.pings.take(&rate, now);
        if wait.is_zero() {
            self.pong(conn, payload);
        } else if wait > rate.span() {
            self.events.push_back(Event::PingFlood { conn });
            self.close(
                conn,
                CloseCode::POLICY,
                "ping flood",
                LeaveReason::Disconnected,
                now,
            );
        }
    }

    fn pong(&mut self, conn: ConnectionId, payload: &[u8]) {
        self.actions.pong(conn, Bytes::copy_from_slice(payload));
    }

    /// A text or binary frame past `message_rate`: `rateLimited`, saying how
    /// long to wait, and nothing else. It is not even decoded (but for the
    /// `id` a v2 client needs to know which message to send again).
    fn refuse_message(&mut self, conn: ConnectionId, frame: Inbound<'_>, wait: Duration) {
        let reply_to = match frame {
            Inbound::Text(bytes) if self.version(conn) >= Some(Version::V2) => salvage_id(bytes),
            _ => None,
        };
        let description = format!(
            "too many messages: at most {} a second, {} at once; retry in {} ms",
            self.config.message_rate,
            self.config.message_burst,
            wait.as_millis() + u128::from(!wait.subsec_nanos().is_multiple_of(1_000_000))
        );
        self.events.push_back(Event::RateLimited {
            conn,
            limit: Limit::Messages,
        });
        self.send_error(
            conn,
            reply_to.as_deref(),
            ErrorCode::RateLimited,
            &description,
        );
    }

    fn send_error(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        error: ErrorCode,
        description: &str,
    ) {
        self.stats.count_error(error);
        let id = id::message_id(&mut self.rng);
        self.send(
            conn,
            &ServerMessage::ErrorMessage {
                error,
                id: id.into(),
                reply_to: reply_to.map(Into::into),
                description: Some(description.into()),
            },
        );
    }

    fn send(&mut self, to: ConnectionId, message: &ServerMessage<'_>) {
        self.actions.send_new(to, Frame::encode(message));
    }

    /// Every open connection gets the frame of its version; each distinct
    /// frame is encoded once and its bytes shared by all its recipients.
    /// Returns the v2 frame's length, if it was encoded.
    fn broadcast(&mut self, message: Encoded<'_>) -> Option<usize> {
        // A join past the presence budget, with only v2 connections open,
        // is for nobody: skip walking every recipient for it.
        let v1_connections = self.connections.len() - self.v2_connections;
        if message.v2.is_none() && message.own.is_none() && v1_connections == 0 {
            return None;
        }
        let v1 = self.actions.add(Frame::encode(message.v1));
        let mut v2_len = None;
        let v2 = match message.v2 {
            Some(v2) if self.v2_connections > 0 => {
                let frame = Frame::encode(v2);
                v2_len = Some(frame.0.len());
                Some(self.actions.add(frame))
            }
            _ => None,
        };
        let own: Option<(ConnectionId, FrameRef)> = message
            .own
            .map(|(conn, own)| (conn, self.actions.add(Frame::encode(own))));
        self.actions.reserve(self.connections.len());
        for &(id, version) in self.recipients.iter().flatten() {
            let frame = match (own, version) {
                (_, Version::V1) => v1,
                (Some((conn, own)), _) if conn == id => own,
                _ => match v2 {
                    Some(v2) => v2,
                    None => continue,
                },
            };
            self.actions.send(id, frame);
        }
        v2_len
    }
}

/// Names as a `presence` frame lists them.
fn listed(names: &VecDeque<Arc<str>>) -> Vec<Cow<'_, str>> {
    names.iter().map(|name| Cow::Borrowed(&**name)).collect()
}

/// When a connection opening (or logging out) at `now` must hold a login by.
fn login_deadline(config: &Config, now: Instant) -> Option<Instant> {
    (!config.login_timeout.is_zero()).then(|| now + config.login_timeout)
}

/// The `id` of a message that failed to decode, if one can be made out, so
/// a v2 client can match the error to what it sent.
fn salvage_id(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_slice::<IdOnly>(bytes).ok().map(|m| m.id)
}
