//! The core as one node of a cluster (`Server::cluster`): a shared store
//! (Redis, in chat-server) decides who holds a name and which `seq` a
//! message takes, for every node at once, and tells each node what the
//! others did. The core asks through the same seam as with its own store
//! (a request out, its answer in) and hears the others through
//! `handle_remote`; it still owns everything about its own connections:
//! their logins, limits, heartbeats, pacing and frames.
//!
//! What differs from a single node, and why:
//! - a login asks the store ([`Request::Reserve`](super::Request::Reserve))
//!   instead of deciding, so no two nodes give out one name; its frames
//!   wait meanwhile, as when a login is being saved;
//! - a connection's close asks the store whether its user is gone from
//!   every node ([`Request::Disconnect`](super::Request::Disconnect)) before
//!   anyone is told they left;
//! - `listUsers` asks the store, which counts devices on every node;
//! - names expire in the store: no timers here, and no ceiling of held
//!   names (the store bounds them);
//! - the limits per address (wrong secrets, new names) count this node's
//!   connections only;
//! - the names this node's connections hold are counted here
//!   (`Server::held_names`), for the link to register them again after it
//!   reconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use super::logins::Asked;
use super::logins::{Claim, HeldName, SecretHash};
use super::seam::{
    Disconnect, PendingDisconnect, PendingLogin, PendingOnline, PendingReserve, Reserve, Seam,
    Write,
};
use super::snapshot::StoredMessage;
use super::{ConnectionId, Event, Limit, Server};
use crate::id;
use crate::protocol::{ErrorCode, LeaveReason};

/// What the other nodes of a cluster did, as the shared store tells it
/// (`Server::handle_remote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A message said on another node. The driver delivers messages in
    /// `seq` order, this node's own (as [`Answer::Appended`](super::Answer::Appended))
    /// among them, each once.
    Message(StoredMessage),
    /// Someone logged in on another node.
    Joined {
        username: Arc<str>,
        location: Arc<str>,
        timestamp: u64,
    },
    /// Someone's last connection on any node went away.
    Left {
        username: Arc<str>,
        reason: LeaveReason,
    },
    /// Someone logged out on another node: the name is free everywhere,
    /// and this node's connections holding it are logged out too.
    LoggedOut { key: Arc<str>, username: Arc<str> },
    /// A durable change another node's core made to rooms (its `Write`, as the shared
    /// store took it): applied to this core's rooms as a restore would, nothing written,
    /// nothing asked. Comes in the order the store took it, interleaved with `RoomEntry`s
    /// of the same room in that room's `seq` order.
    Write(Write),
    /// An entry of a room (a message, or a notice when `message.notice`) that another
    /// node appended; its `seq` is the room's. Delivered to this node's connections in
    /// that room as the core delivers its own. One per `seq`, in order, per room.
    RoomEntry {
        room: Arc<str>,
        message: StoredMessage,
    },
}

/// A node of a cluster's names: asked of the shared store.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) seam: Seam,
    /// The names this node's connections hold, as the store counts them.
    pub(super) held: HeldNames,
}

/// The names this node's connections hold, from the store's answer to
/// their login until they close or log out.
#[derive(Debug, Default)]
pub(super) struct HeldNames {
    by_key: HashMap<Arc<str>, HeldName>,
}

impl HeldNames {
    /// One more connection holds `key`.
    fn add(&mut self, key: &Arc<str>, display: &Arc<str>, secret: SecretHash) {
        let held = self.by_key.entry(key.clone()).or_insert_with(|| HeldName {
            key: key.clone(),
            display: display.clone(),
            secret,
            connections: 0,
        });
        held.connections += 1;
        held.secret = secret;
    }

    /// One connection holding `key` went away.
    fn release(&mut self, key: &str) {
        if let Some(held) = self.by_key.get_mut(key) {
            held.connections = held.connections.saturating_sub(1);
            if held.connections == 0 {
                self.by_key.remove(key);
            }
        }
    }

    /// `key` was logged out: no connection of this node holds it.
    pub(super) fn remove(&mut self, key: &str) {
        self.by_key.remove(key);
    }

    /// Names held.
    pub(super) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Every name held, ordered by key.
    pub(super) fn list(&self) -> Vec<HeldName> {
        let mut held: Vec<HeldName> = self.by_key.values().cloned().collect();
        held.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        held
    }
}

impl<R: CryptoRng> Server<R> {
    /// What another node did (`handle_remote`).
    pub(super) fn remote(&mut self, remote: Remote, now: Instant) {
        match remote {
            Remote::Message(message) => self.deliver_message(
                message.seq,
                message.id.into(),
                message.timestamp,
                message.username.into(),
                message.text.into(),
                None,
            ),
            Remote::Joined {
                username,
                location,
                timestamp,
            } => self.broadcast_join(&username, &location, timestamp, now),
            Remote::Left { username, reason } => {
                self.broadcast_leave(&username, reason, &[], now);
            }
            Remote::LoggedOut { key, username } => {
                if let Some(shared) = self.shared_mut() {
                    shared.held.remove(&key);
                }
                let holders = self.log_out_holders(&key, now);
                self.broadcast_leave(&username, LeaveReason::Logout, &holders, now);
            }
            // Applied by the core's side of issue 23 (branch core-remote-rooms).
            Remote::Write(_) | Remote::RoomEntry { .. } => {}
        }
    }

    fn shared_mut(&mut self) -> Option<&mut Shared> {
        self.names.shared_mut()
    }

    /// A login of `conn` on a cluster, valid and within the limit of wrong
    /// secrets: the store is asked for the name, and the connection's
    /// frames wait for its answer.
    pub(super) fn reserve(&mut self, asked: Asked<'_>, now: Instant) {
        let Asked {
            conn,
            reply_to,
            name,
            secret: offered,
            since,
            address,
        } = asked;
        // Only the store knows which names are free: a login without a
        // secret (which takes a free name or is refused) is what counts
        // against the limit of new names here.
        if offered.is_none()
            && let Err(wait) = self.new_names.check(&address, now)
        {
            return self.refuse_login(conn, reply_to, Limit::NewNames, wait);
        }
        let Some(connection) = self.connections.get(conn) else {
            return;
        };
        let location = connection.location.clone();
        let fresh = id::secret(&mut self.rng);
        let request = Reserve {
            key: name.key.as_str().into(),
            display: name.display.as_str().into(),
            offered: offered.map(SecretHash::of),
            fresh: SecretHash::of(&fresh),
            location,
            timestamp: self.timestamp(now),
        };
        let pending = PendingReserve {
            conn,
            reply_to: reply_to.map(str::to_owned),
            since,
            key: name.key.into(),
            offered: offered.map(str::to_owned),
            fresh,
        };
        let Some(shared) = self.shared_mut() else {
            return;
        };
        shared.seam.reserve(request, pending);
        if let Some(connection) = self.connections.get_mut(conn) {
            connection.login_pending = true;
        }
    }

    /// The store's answer to a login; `None` if it failed.
    pub(super) fn reserved(
        &mut self,
        pending: PendingReserve,
        outcome: Option<(Claim, Arc<str>)>,
        now: Instant,
    ) {
        let PendingReserve {
            conn,
            reply_to,
            since,
            key,
            offered,
            fresh,
        } = pending;
        let Some(address) = self.connections.get(conn).map(|c| c.address.clone()) else {
            // Closed meanwhile: a name it was given has one connection too
            // many in the store.
            if let Some((Claim::Fresh | Claim::Reclaimed, display)) = outcome {
                let reason = LeaveReason::Disconnected;
                self.disconnect(key, display, location_unknown(), reason);
            }
            return;
        };
        if let Some(connection) = self.connections.get_mut(conn) {
            connection.login_pending = false;
        }
        match outcome {
            None => self.send_error(
                conn,
                reply_to.as_deref(),
                ErrorCode::Unavailable,
                "the server could not reach its store to log you in; try again in a moment",
            ),
            Some((Claim::Taken, display)) => {
                let guesser = offered.is_some().then_some(address);
                self.refuse_taken(conn, reply_to.as_deref(), display, guesser, now);
            }
            Some((claim, display)) => {
                if claim == Claim::Fresh {
                    self.new_names.took(&address, now);
                }
                let secret = match claim {
                    Claim::Fresh => fresh,
                    _ => offered.unwrap_or_default(),
                };
                if let Some(shared) = self.shared_mut() {
                    shared.held.add(&key, &display, SecretHash::of(&secret));
                }
                if let Some(connection) = self.connections.get_mut(conn) {
                    connection.login = Some((key.clone(), display.clone()));
                    connection.login_deadline = None;
                }
                let login = PendingLogin {
                    conn,
                    reply_to,
                    since,
                    fresh: claim == Claim::Fresh,
                    key,
                    display,
                    secret,
                };
                // Announced here; the other nodes are told by the store.
                return self.announce_login(login, now);
            }
        }
        self.release_held(conn, now);
    }

    /// One of this node's connections holding `key` went away: the store
    /// says whether its user left every node, and only then is it told.
    pub(super) fn disconnect(
        &mut self,
        key: Arc<str>,
        display: Arc<str>,
        location: Arc<str>,
        reason: LeaveReason,
    ) {
        let Some(shared) = self.shared_mut() else {
            return;
        };
        shared.held.release(&key);
        let request = Disconnect {
            key,
            display: display.clone(),
            reason,
        };
        let left = PendingDisconnect {
            display,
            location,
            reason,
        };
        shared.seam.disconnect(request, left);
    }

    /// The store's answer to a disconnect: `gone` when no connection on any
    /// node holds the name any more.
    pub(super) fn disconnected(&mut self, left: PendingDisconnect, gone: bool, now: Instant) {
        if !gone {
            return; // another device, on some node, still holds the name
        }
        let PendingDisconnect {
            display,
            location,
            reason,
        } = left;
        if !self.shutting_down {
            self.broadcast_leave(&display, reason, &[], now);
        }
        self.events.push_back(Event::Left {
            username: display,
            location,
            reason,
        });
    }

    /// A `listUsers` on a cluster: the store counts every node's devices.
    pub(super) fn ask_online(&mut self, conn: ConnectionId, reply_to: Option<&str>) {
        if let Some(shared) = self.shared_mut() {
            let asked = PendingOnline {
                conn,
                reply_to: reply_to.map(str::to_owned),
            };
            shared.seam.online(asked);
        }
    }
}

/// The location of a connection that closed before its login was answered.
fn location_unknown() -> Arc<str> {
    "unknown".into()
}
