//! Logins and logouts: what every login goes through (one per connection,
//! a valid name, the limits of its address), its announcement once it
//! holds, its refusals, a login that could not be saved, and logging out.
//!
//! Whether a name is free is decided by this node (`names`) or by a shared
//! store (`cluster`); the rest is the same either way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::CryptoRng;

use super::logins::Asked;
use super::names::Names;
use super::seam::{PendingLogin, Write};
use super::timers::Timer;
use super::{ConnectionId, Event, Limit, Server};
use crate::id;
use crate::protocol::{ErrorCode, LeaveReason, ServerMessage, Version};
use crate::username::Username;

impl<R: CryptoRng> Server<R> {
    pub(super) fn login(
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
        let Some(address) = self.connections.get(conn).map(|c| c.address.clone()) else {
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
        let asked = Asked {
            conn,
            reply_to,
            name,
            secret,
            since,
            address,
        };
        match self.names {
            Names::Local(_) => self.claim_locally(asked, now),
            Names::Shared(_) => self.reserve(asked, now),
        }
    }

    /// Tells everyone of a login, and the connection its outcome, once the
    /// login is durable; then handles what the connection sent meanwhile.
    pub(super) fn announce_login(&mut self, pending: PendingLogin, now: Instant) {
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
        let Some(connection) = self.connections.get_mut(conn) else {
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
        if version == Version::V3 {
            self.add_device(conn, &key);
            let listed = self
                .connections
                .get_mut(conn)
                .and_then(|c| c.catch_up.take())
                .unwrap_or_default();
            self.catch_up(conn, reply_to.unwrap_or_default(), &key, since, listed);
        } else if version >= Version::V2 {
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
    pub(super) fn refuse_login(
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
    pub(super) fn refuse_taken(
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

    /// A login could not be saved: the connection is not logged in after
    /// all, and is told so.
    pub(super) fn undo_login(&mut self, pending: PendingLogin, now: Instant) {
        let Some(connection) = self.connections.get_mut(pending.conn) else {
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
        if let Some(at) = connection.restart_login_timeout(&self.config, now) {
            self.timers.schedule(at, Timer::Connection(pending.conn));
        }
        self.give_back(pending.key, pending.fresh, now);
        self.send_error(
            pending.conn,
            pending.reply_to.as_deref(),
            ErrorCode::Unavailable,
            "the server could not save your login; try again in a moment",
        );
        self.release_held(pending.conn, now);
    }

    /// A v2 `logout`: the name is freed (by this node, or everywhere by the
    /// shared store), and every connection of this node holding it is
    /// logged out.
    pub(super) fn logout(&mut self, conn: ConnectionId, reply_to: Option<&str>, now: Instant) {
        let Some((key, display)) = self.connections.get(conn).and_then(|c| c.login.clone()) else {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::MessagingWhileNotLoggedIn,
                "log in before logging out",
            );
        };
        let write = match &mut self.names {
            Names::Local(local) => {
                local.logins.remove(&key);
                Write::Release { key: key.clone() }
            }
            Names::Shared(shared) => {
                shared.held.remove(&key);
                Write::Logout {
                    key: key.clone(),
                    display: display.clone(),
                }
            }
        };
        self.record(write);
        if matches!(self.names, Names::Local(_)) {
            self.forget_name(&key, now);
        } else {
            self.forget_shared_name(&key, now);
        }
        let holders = self.log_out_holders(&key, now);
        self.broadcast_leave(&display, LeaveReason::Logout, &holders, now);
        self.events
            .push_back(Event::LoggedOut { username: display });
    }

    /// Logs out this node's connections holding `key` (the name was freed
    /// here, or on another node); returns them.
    pub(super) fn log_out_holders(&mut self, key: &str, now: Instant) -> Vec<ConnectionId> {
        let mut holders = Vec::new();
        let mut v3 = Vec::new();
        for connection in self.connections.iter_mut() {
            if connection.login.as_ref().is_some_and(|(k, _)| **k == *key) {
                holders.push(connection.id);
                if connection.version == Version::V3 {
                    v3.push(connection.id);
                }
                connection.login = None;
                // The login timeout starts again, maybe before anything the
                // connection's timer waits for: arm an earlier timer.
                if let Some(at) = connection.restart_login_timeout(&self.config, now) {
                    self.timers.schedule(at, Timer::Connection(connection.id));
                }
            }
        }
        for conn in v3 {
            self.remove_device(conn, key);
        }
        holders
    }
}
