//! The chat core: a sans-IO state machine for the server side.
//!
//! [`Server`] owns every piece of chat state. A driver feeds it what
//! happened (`handle_*`, each with the current instant) and performs what it
//! asks for (`poll_action`), then sleeps until `poll_timeout`. It does no I/O,
//! reads no clock, spawns nothing and keeps no globals, so tests drive it
//! with a virtual clock and the same code runs under any runtime.

mod heartbeat;
mod logins;
mod timers;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rand::CryptoRng;
use slab::Slab;

use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};
use crate::username::Username;
use crate::{Config, id};
use heartbeat::{Due, Heartbeat};
use logins::{Claim, Logins};
use timers::{Timer, Timers};

/// Names one connection for as long as it is open. Never reused: a handle to
/// a closed connection stays dead even after its slot is taken again.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    slot: u32,
    serial: u32,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this text frame on the connection.
    Send { to: ConnectionId, frame: Frame },
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

/// Something that happened, for logs and metrics. Purely informational:
/// a driver that does not care still drains them.
#[derive(Debug, Clone, PartialEq, Eq)]
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
pub struct Server<R> {
    config: Config,
    rng: R,
    connections: Slab<Connection>,
    next_serial: u32,
    logins: Logins,
    timers: Timers,
    actions: VecDeque<Action>,
    /// Some action in `actions` may name a connection closed since it was
    /// queued, so `poll_action` must check each target until the queue
    /// empties. Usually false: a driver drains after every input.
    actions_may_be_stale: bool,
    events: VecDeque<Event>,
}

#[derive(Debug)]
struct Connection {
    id: ConnectionId,
    location: Arc<str>,
    /// Key and display name of the login this connection holds.
    login: Option<(Arc<str>, Arc<str>)>,
    heartbeat: Heartbeat,
}

impl<R: CryptoRng> Server<R> {
    pub fn new(config: Config, rng: R) -> Self {
        Server {
            config,
            rng,
            connections: Slab::new(),
            next_serial: 0,
            logins: Logins::default(),
            timers: Timers::default(),
            actions: VecDeque::new(),
            actions_may_be_stale: false,
            events: VecDeque::new(),
        }
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

    /// Whether `conn` is open (as far as the core knows).
    pub fn is_open(&self, conn: ConnectionId) -> bool {
        self.connection(conn).is_some()
    }

    /// The name `conn` is logged in as.
    pub fn username(&self, conn: ConnectionId) -> Option<&str> {
        self.connection(conn)?.login.as_ref().map(|(_, d)| &**d)
    }

    // ---- inputs ----

    /// A WebSocket connection finished its handshake. `location` is what
    /// others see in `loginBroadcast` (the peer's IP as text, or "unknown").
    pub fn handle_open(&mut self, location: &str, now: Instant) -> ConnectionId {
        self.next_serial = self.next_serial.wrapping_add(1);
        let entry = self.connections.vacant_entry();
        let id = ConnectionId {
            slot: u32::try_from(entry.key()).unwrap_or(u32::MAX),
            serial: self.next_serial,
        };
        let heartbeat = Heartbeat::new(now);
        self.timers
            .schedule(heartbeat.deadline(&self.config), Timer::Heartbeat(id));
        entry.insert(Connection {
            id,
            location: location.into(),
            login: None,
            heartbeat,
        });
        id
    }

    /// A frame arrived on `conn`. Frames for unknown or closed connections
    /// are ignored.
    pub fn handle_frame(&mut self, conn: ConnectionId, frame: Inbound<'_>, now: Instant) {
        let Some(connection) = self.connection_mut(conn) else {
            return;
        };
        connection.heartbeat.on_activity(now);
        match frame {
            Inbound::Text(bytes) => match ClientMessage::decode(bytes) {
                Ok(ClientMessage::Login {
                    username, secret, ..
                }) => self.login(conn, &username, secret.as_deref(), now),
                Ok(ClientMessage::TextFromUser { text, .. }) => self.text(conn, &text),
                Err(e) => self.send_error(conn, ErrorCode::InvalidJson, e.description()),
            },
            Inbound::Binary(_) => self.send_error(
                conn,
                ErrorCode::BytesReceived,
                "binary frames are not part of the protocol; send JSON in text frames",
            ),
            Inbound::Ping(payload) => self.actions.push_back(Action::Pong {
                to: conn,
                payload: Bytes::copy_from_slice(payload),
            }),
            Inbound::Pong(_) => {}
        }
    }

    /// `conn` is gone (closed by the peer, by an error, or by the driver).
    /// Nothing will be sent to it again. Unknown ids are ignored.
    pub fn handle_close(&mut self, conn: ConnectionId, now: Instant) {
        if self.connection(conn).is_some() {
            self.forget(conn, now);
        }
    }

    /// Time has reached `now`: send due pings, evict silent connections,
    /// release expired names. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Heartbeat(conn) => self.check_heartbeat(conn, now),
                Timer::LoginExpiry { key, serial } => {
                    if let Some(login) = self.logins.expire(&key, serial, now) {
                        self.events.push_back(Event::LoginExpired {
                            username: login.display,
                        });
                    }
                }
            }
        }
    }

    // ---- commands ----

    /// Closes every connection with 1001 "server shutting down". Logins stay
    /// reserved (and start their TTL), as after any close.
    pub fn shutdown(&mut self, now: Instant) {
        let all: Vec<ConnectionId> = self.connections.iter().map(|(_, c)| c.id).collect();
        for conn in all {
            self.close(conn, CloseCode::GOING_AWAY, "server shutting down", now);
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
    pub fn poll_action(&mut self) -> Option<Action> {
        // Checking at drain time keeps closing O(1): no scan of the queue.
        // And only when a close happened with actions queued, so that the
        // drain of a broadcast does not look every recipient up again.
        while let Some(action) = self.actions.pop_front() {
            if !self.actions_may_be_stale {
                return Some(action);
            }
            if self.actions.is_empty() {
                self.actions_may_be_stale = false;
            }
            match &action {
                Action::Send { to, .. } | Action::Ping { to, .. } | Action::Pong { to, .. }
                    if !self.is_open(*to) => {}
                _ => return Some(action),
            }
        }
        None
    }

    /// The next thing that happened.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call `handle_timeout` next; `None` when nothing is scheduled.
    /// May be earlier than strictly needed, never later.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ---- internals ----

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

    fn login(&mut self, conn: ConnectionId, raw: &str, secret: Option<&str>, now: Instant) {
        if let Some(name) = self.username(conn) {
            let description = format!("this connection is already logged in as \"{name}\"");
            return self.send_error(conn, ErrorCode::AlreadyLoggedIn, &description);
        }
        let name = match Username::parse(raw, self.config.max_username_chars) {
            Ok(name) => name,
            Err(e) => return self.send_error(conn, ErrorCode::InvalidUsername, &e.to_string()),
        };
        // A reservation that ran out before a timer released it (the driver
        // woke late) is released here, and reported like any other expiry.
        if let Some(expired) = self.logins.take_expired(&name.key, now) {
            self.events.push_back(Event::LoginExpired {
                username: expired.display,
            });
        }
        let rng = &mut self.rng;
        let (claim, login) = self
            .logins
            .claim(&name.key, &name.display, secret, now, || id::secret(rng));
        let display = login.display.clone();
        if claim == Claim::Taken {
            self.events.push_back(Event::LoginRefused {
                conn,
                username: display.clone(),
            });
            let description = format!(
                "the name \"{display}\" is taken; give its secret to reclaim it, or pick another"
            );
            return self.send_error(conn, ErrorCode::LoginTaken, &description);
        }
        let secret = login.secret().to_owned();
        let key: Arc<str> = name.key.into();
        let connection = self
            .connection_mut(conn)
            .expect("handle_frame checked the connection");
        connection.login = Some((key, display.clone()));
        let location = connection.location.clone();

        let broadcast_id = id::message_id(&mut self.rng);
        let reply_id = id::message_id(&mut self.rng);
        self.broadcast(&ServerMessage::LoginBroadcast {
            id: broadcast_id.into(),
            username: (*display).into(),
            location: (*location).into(),
        });
        self.send(
            conn,
            &ServerMessage::LoginMessage {
                id: reply_id.into(),
                username: (*display).into(),
                location: (*location).into(),
                secret: secret.into(),
            },
        );
        self.events.push_back(Event::LoggedIn {
            conn,
            username: display,
            fresh: claim == Claim::Fresh,
        });
    }

    fn text(&mut self, conn: ConnectionId, text: &str) {
        let Some(username) = self.username(conn).map(Arc::<str>::from) else {
            return self.send_error(
                conn,
                ErrorCode::MessagingWhileNotLoggedIn,
                "log in before sending messages",
            );
        };
        if text.trim().is_empty() {
            return self.send_error(conn, ErrorCode::EmptyMessage, "the message is empty");
        }
        let max = self.config.max_message_chars;
        // Counting stops at the first character past the limit, so a huge
        // text costs no more than a legal one.
        let chars = text.chars().take(max + 1).count();
        if chars > max {
            let description = format!("the message is longer than {max} characters");
            return self.send_error(conn, ErrorCode::MessageTooLong, &description);
        }
        let id = id::message_id(&mut self.rng);
        self.broadcast(&ServerMessage::TextBroadcast {
            id: id.into(),
            username: (*username).into(),
            message: text.into(),
        });
    }

    fn check_heartbeat(&mut self, conn: ConnectionId, now: Instant) {
        let config = &self.config;
        let Some(connection) = self
            .connections
            .get_mut(conn.slot as usize)
            .filter(|c| c.id == conn)
        else {
            return; // closed since this timer was set
        };
        match connection.heartbeat.due(config, now) {
            Due::NotBefore(at) => self.timers.schedule(at, Timer::Heartbeat(conn)),
            Due::Ping => {
                connection.heartbeat.on_ping_sent(now);
                let at = connection.heartbeat.deadline(config);
                self.timers.schedule(at, Timer::Heartbeat(conn));
                self.actions.push_back(Action::Ping {
                    to: conn,
                    payload: Bytes::from_static(b"wschat"),
                });
            }
            Due::Evict => {
                self.close(conn, CloseCode::NORMAL, "ping timeout", now);
                self.events.push_back(Event::Evicted { conn });
            }
        }
    }

    fn close(&mut self, conn: ConnectionId, code: CloseCode, reason: &'static str, now: Instant) {
        self.actions.push_back(Action::Close {
            to: conn,
            code,
            reason,
        });
        self.forget(conn, now);
    }

    /// Drops every trace of `conn` except its login's reservation.
    fn forget(&mut self, conn: ConnectionId, now: Instant) {
        let Some(connection) = self.connections.try_remove(conn.slot as usize) else {
            return;
        };
        self.actions_may_be_stale |= !self.actions.is_empty();
        if let Some((key, _)) = connection.login
            && let Some((at, serial)) = self.logins.release(&key, now, self.config.login_ttl)
        {
            self.timers.schedule(at, Timer::LoginExpiry { key, serial });
        }
    }

    fn send_error(&mut self, conn: ConnectionId, error: ErrorCode, description: &str) {
        let id = id::message_id(&mut self.rng);
        self.send(
            conn,
            &ServerMessage::ErrorMessage {
                error,
                id: id.into(),
                description: Some(description.into()),
            },
        );
    }

    fn send(&mut self, to: ConnectionId, message: &ServerMessage<'_>) {
        self.actions.push_back(Action::Send {
            to,
            frame: Frame::encode(message),
        });
    }

    /// Encodes once; every open connection gets the same bytes.
    fn broadcast(&mut self, message: &ServerMessage<'_>) {
        let frame = Frame::encode(message);
        self.actions.reserve(self.connections.len());
        for (_, connection) in &self.connections {
            self.actions.push_back(Action::Send {
                to: connection.id,
                frame: frame.clone(),
            });
        }
    }
}
