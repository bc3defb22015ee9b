//! Open connections: their table, how they open, close and are forgotten,
//! and their deadlines (the login timeout and the heartbeat).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rand::CryptoRng;
use slab::Slab;

use super::heartbeat::{Due, Heartbeat};
use super::names::Names;
use super::rate::Bucket;
use super::timers::Timer;
use super::{CloseCode, ConnectionId, Event, Server, address};
use crate::Config;
use crate::protocol::{LeaveReason, Version};

/// One open connection.
#[derive(Debug)]
pub(super) struct Connection {
    pub(super) id: ConnectionId,
    pub(super) version: Version,
    pub(super) location: Arc<str>,
    /// What the per-address limits count this connection under (its
    /// address; for IPv6, its /64).
    pub(super) address: Arc<str>,
    /// Key and display name of the login this connection holds.
    pub(super) login: Option<(Arc<str>, Arc<str>)>,
    /// When the connection is closed unless it logs in first.
    pub(super) login_deadline: Option<Instant>,
    pub(super) heartbeat: Heartbeat,
    /// The instant of this connection's current entry in the timer heap.
    /// Entries at other instants are stale (plans changed) and are dropped
    /// when they come due, so the heap holds about one entry per connection.
    pub(super) timer_at: Instant,
    pub(super) messages: Bucket,
    pub(super) pings: Bucket,
    /// Its login is being saved (or, on a cluster, reserved): it is not
    /// announced yet, and the frames the connection sends meanwhile wait in
    /// `held`.
    pub(super) login_pending: bool,
    pub(super) held: VecDeque<Held>,
    /// v3: the rooms its `login` listed, until the login is announced.
    pub(super) catch_up: Option<Vec<crate::protocol::RoomSince>>,
}

/// A frame held while its connection's login is being saved.
#[derive(Debug)]
pub(super) enum Held {
    Text(Vec<u8>),
    Binary,
}

impl Connection {
    /// The next instant something is due on this connection.
    pub(super) fn deadline(&self, config: &Config) -> Instant {
        let heartbeat = self.heartbeat.deadline(config);
        self.login_deadline
            .map_or(heartbeat, |login| login.min(heartbeat))
    }

    /// The login timeout starts (again) at `now`: arms an earlier timer if
    /// it comes before anything the connection's timer waits for.
    pub(super) fn restart_login_timeout(
        &mut self,
        config: &Config,
        now: Instant,
    ) -> Option<Instant> {
        let deadline = login_deadline(config, now);
        self.login_deadline = deadline;
        let at = deadline.filter(|&at| at < self.timer_at)?;
        self.timer_at = at;
        Some(at)
    }
}

/// Every open connection, by id.
#[derive(Debug, Default)]
pub(super) struct Connections {
    slab: Slab<Connection>,
    /// Who a broadcast goes to, by slot, in the slab's order: 16 bytes a
    /// connection, so a broadcast walks 16 KB per thousand recipients
    /// instead of every connection's whole state.
    /// The flag says whether lobby messages reach it: false only for a v3
    /// connection whose name left the lobby.
    recipients: Vec<Option<(ConnectionId, Version, bool)>>,
    /// Open v2 and v3 connections (v3 takes v2's lobby frames): when 0,
    /// broadcasts skip encoding the v2 frame.
    v2: usize,
    last_serial: u32,
}

impl Connections {
    #[inline]
    pub(super) fn get(&self, id: ConnectionId) -> Option<&Connection> {
        self.slab.get(id.slot as usize).filter(|c| c.id == id)
    }

    #[inline]
    pub(super) fn get_mut(&mut self, id: ConnectionId) -> Option<&mut Connection> {
        self.slab.get_mut(id.slot as usize).filter(|c| c.id == id)
    }

    #[inline]
    pub(super) fn is_open(&self, id: ConnectionId) -> bool {
        self.get(id).is_some()
    }

    /// A new id, never given before: for the next connection to be
    /// inserted, or for one refused at once.
    fn next_id(&mut self) -> ConnectionId {
        self.last_serial = self.last_serial.wrapping_add(1);
        ConnectionId {
            slot: u32::try_from(self.slab.vacant_key()).unwrap_or(u32::MAX),
            serial: self.last_serial,
        }
    }

    /// Adds the connection made for the next id.
    fn insert(&mut self, make: impl FnOnce(ConnectionId) -> Connection) -> ConnectionId {
        let id = self.next_id();
        let connection = make(id);
        let version = connection.version;
        self.slab.insert(connection);
        let slot = id.slot as usize;
        if self.recipients.len() <= slot {
            self.recipients.resize(slot + 1, None);
        }
        self.recipients[slot] = Some((id, version, true));
        if version >= Version::V2 {
            self.v2 += 1;
        }
        id
    }

    fn remove(&mut self, id: ConnectionId) -> Option<Connection> {
        self.get(id)?;
        let connection = self.slab.try_remove(id.slot as usize)?;
        if let Some(recipient) = self.recipients.get_mut(id.slot as usize) {
            *recipient = None;
        }
        if connection.version >= Version::V2 {
            self.v2 -= 1;
        }
        Some(connection)
    }

    pub(super) fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether lobby messages reach `id` (see `recipients`).
    pub(super) fn set_in_lobby(&mut self, id: ConnectionId, in_lobby: bool) {
        if let Some(Some(recipient)) = self.recipients.get_mut(id.slot as usize)
            && recipient.0 == id
        {
            recipient.2 = in_lobby;
        }
    }

    /// Open v2 and v3 connections.
    pub(super) fn v2_len(&self) -> usize {
        self.v2
    }

    /// Every open connection's id and version, in slot order.
    #[inline]
    pub(super) fn recipients(&self) -> impl Iterator<Item = &(ConnectionId, Version, bool)> {
        self.recipients.iter().flatten()
    }

    pub(super) fn ids(&self) -> Vec<ConnectionId> {
        self.slab.iter().map(|(_, c)| c.id).collect()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Connection> {
        self.slab.iter_mut().map(|(_, c)| c)
    }
}

impl<R: CryptoRng> Server<R> {
    /// A connection opens, speaking `version`, from `location`.
    pub(super) fn open(&mut self, location: &str, version: Version, now: Instant) -> ConnectionId {
        let location: Arc<str> = location.into();
        let config = &self.config;
        let id = self.connections.insert(|id| {
            let mut connection = Connection {
                id,
                version,
                address: address::key(&location),
                location,
                login: None,
                login_deadline: login_deadline(config, now),
                heartbeat: Heartbeat::new(now),
                timer_at: now,
                messages: Bucket::new(now),
                pings: Bucket::new(now),
                login_pending: false,
                held: VecDeque::new(),
                catch_up: None,
            };
            connection.timer_at = connection.deadline(config);
            connection
        });
        if let Some(connection) = self.connections.get(id) {
            self.timers
                .schedule(connection.timer_at, Timer::Connection(id));
        }
        id
    }

    /// A connection opens while the server shuts down: it is closed at
    /// once, and never counted as open.
    pub(super) fn refuse_open(&mut self) -> ConnectionId {
        let id = self.connections.next_id();
        self.actions
            .close(id, CloseCode::GOING_AWAY, "server shutting down");
        id
    }

    /// The timer of `conn` set for `at` came due: close it if it held no
    /// login in time, otherwise see to its heartbeat, then re-arm.
    pub(super) fn check_connection(&mut self, conn: ConnectionId, at: Instant, now: Instant) {
        let config = &self.config;
        let Some(connection) = self.connections.get_mut(conn).filter(|c| c.timer_at == at) else {
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

    /// Closes `conn` with `code` and `reason`, and forgets it.
    pub(super) fn close(
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
    pub(super) fn forget(&mut self, conn: ConnectionId, leave: LeaveReason, now: Instant) {
        let Some(connection) = self.connections.remove(conn) else {
            return;
        };
        self.actions.connection_closed();
        let Some((key, display)) = connection.login else {
            return;
        };
        if connection.version == Version::V3 {
            self.remove_device(conn, &key);
        }
        match self.names {
            Names::Local(_) => {
                let announced = !connection.login_pending;
                self.release_locally(key, display, connection.location, announced, leave, now)
            }
            // A cluster login is announced as soon as it is held: whether
            // its user left is the store's to say.
            Names::Shared(_) => self.disconnect(key, display, connection.location, leave),
        }
    }
}

/// When a connection opening (or logging out) at `now` must hold a login by.
pub(super) fn login_deadline(config: &Config, now: Instant) -> Option<Instant> {
    (!config.login_timeout.is_zero()).then(|| now + config.login_timeout)
}
