//! The core as one node of a cluster (`Server::cluster`): a shared store
//! (Redis, in chat-server) decides who holds a name and which `seq` a
//! message takes, for every node at once, and tells each node what the
//! others did. The core asks through the same seam as with its own store
//! (a request out, its outcome in) and hears the others through
//! `handle_remote`; it still owns everything about its own connections:
//! their logins, limits, heartbeats, pacing and frames.
//!
//! What differs from a single node, and why:
//! - a login asks the store ([`Request::Reserve`]) instead of deciding, so
//!   no two nodes give out one name; its frames wait meanwhile, as when a
//!   login is being saved;
//! - a connection's close asks the store whether its user is gone from
//!   every node ([`Request::Disconnect`]) before anyone is told they left;
//! - `listUsers` asks the store, which counts devices on every node;
//! - names expire in the store: no timers here, and no ceiling of held
//!   names (the store bounds them);
//! - the limits per address (wrong secrets, new names) count this node's
//!   connections only.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rand::CryptoRng;

use super::journal::{
    Claim, Outcome, PendingLogin, PendingReserve, Remote, Request, Snapshot, Waiting,
};
use super::logins::SecretHash;
use super::{Authority, ConnectionId, Event, Server, Timer, login_deadline};
use crate::id;
use crate::protocol::{ErrorCode, LeaveReason};

impl<R: CryptoRng> Server<R> {
    /// One node of a cluster, started from what the shared store holds
    /// (`snapshot`: its epoch, the latest `seq` and messages; names stay in
    /// the store). `wall` is the wall-clock time at `now`.
    pub fn cluster(
        config: crate::Config,
        rng: R,
        snapshot: Snapshot,
        wall: SystemTime,
        now: Instant,
    ) -> Self {
        Server::resumed(config, rng, Authority::Shared, snapshot, wall, now)
    }

    /// What another node did, as the shared store tells it. Messages come
    /// in `seq` order (see [`Remote::Message`]).
    pub fn handle_remote(&mut self, remote: Remote, now: Instant) {
        self.actions.start_input();
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
                let holders = self.log_out_holders(&key, now);
                self.broadcast_leave(&username, LeaveReason::Logout, &holders, now);
            }
        }
    }

    /// A login of `conn`, valid and within its limits: the store is asked
    /// for the name, and the connection's frames wait for its answer.
    pub(super) fn reserve(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        name: crate::username::Username,
        offered: Option<&str>,
        since: Option<u64>,
        now: Instant,
    ) {
        let Some(connection) = self.connection(conn) else {
            return;
        };
        let location = connection.location.clone();
        let fresh = id::secret(&mut self.rng);
        let request = Request::Reserve {
            key: name.key.as_str().into(),
            display: name.display.as_str().into(),
            offered: offered.map(SecretHash::of),
            fresh: SecretHash::of(&fresh),
            location,
            timestamp: self.timestamp(now),
        };
        let Some(ticket) = self.record(request) else {
            return;
        };
        if let Some(connection) = self.connection_mut(conn) {
            connection.login_pending = true;
        }
        let pending = PendingReserve {
            conn,
            reply_to: reply_to.map(str::to_owned),
            since,
            key: name.key.into(),
            offered: offered.map(str::to_owned),
            fresh,
        };
        self.waiting.insert(ticket, Waiting::Reserve(pending));
    }

    /// The store's answer to a login.
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
        let Some(address) = self.connection(conn).map(|c| c.address.clone()) else {
            // Closed meanwhile: a name it was given has one connection too
            // many in the store.
            if let Some((Claim::Fresh | Claim::Reclaimed, display)) = outcome {
                let reason = LeaveReason::Disconnected;
                self.disconnect(key, display, location_unknown(), reason);
            }
            return;
        };
        if let Some(connection) = self.connection_mut(conn) {
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
                if let Some(connection) = self.connection_mut(conn) {
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
        let request = Request::Disconnect {
            key,
            display: display.clone(),
            reason,
        };
        if let Some(ticket) = self.record(request) {
            let waiting = Waiting::Disconnect {
                display,
                location,
                reason,
            };
            self.waiting.insert(ticket, waiting);
        }
    }

    /// The store's answer to a disconnect.
    pub(super) fn disconnected(
        &mut self,
        display: Arc<str>,
        location: Arc<str>,
        reason: LeaveReason,
        gone: bool,
        now: Instant,
    ) {
        if !gone {
            return; // another device, on some node, still holds the name
        }
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
        if let Some(ticket) = self.record(Request::Online) {
            let waiting = Waiting::Online {
                conn,
                reply_to: reply_to.map(str::to_owned),
            };
            self.waiting.insert(ticket, waiting);
        }
    }

    /// Logs out this node's connections holding `key` (the name was freed
    /// on another node, or by one of them); returns them.
    pub(super) fn log_out_holders(&mut self, key: &str, now: Instant) -> Vec<ConnectionId> {
        let deadline = login_deadline(&self.config, now);
        let mut holders = Vec::new();
        for (_, connection) in &mut self.connections {
            if connection.login.as_ref().is_some_and(|(k, _)| **k == *key) {
                holders.push(connection.id);
                connection.login = None;
                connection.login_deadline = deadline;
                // The login timeout starts again, maybe before anything the
                // connection's timer waits for: arm an earlier timer.
                if let Some(at) = deadline.filter(|&at| at < connection.timer_at) {
                    connection.timer_at = at;
                    self.timers.schedule(at, Timer::Connection(connection.id));
                }
            }
        }
        holders
    }
}

/// The location of a connection that closed before its login was answered.
fn location_unknown() -> Arc<str> {
    "unknown".into()
}

/// The outcome of a reserve, as `reserved` takes it: `None` if the store
/// failed, or gave an answer that is not one.
pub(super) fn claim_of(outcome: Result<Outcome, super::Failed>) -> Option<(Claim, Arc<str>)> {
    match outcome {
        Ok(Outcome::Claimed { claim, display }) => Some((claim, display)),
        _ => None,
    }
}
