//! Who joined, who left, and who is online: `loginBroadcast` to everyone,
//! `logoutBroadcast` to v2 connections (within the presence budget, see
//! `presence`; past it, one `presence` summary later), and `userList`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use super::broadcast::Encoded;
use super::names::Names;
use super::presence::Notice;
use super::seam::{Failed, PendingOnline};
use super::timers::Timer;
use super::{ConnectionId, Frame, Server};
use crate::id;
use crate::protocol::{self, ErrorCode, LeaveReason, ServerMessage, UserPresence, Version};

impl<R: CryptoRng> Server<R> {
    /// Tells everyone that `display` joined from `location`: every v1
    /// connection, and v2 ones within the presence budget.
    pub(super) fn broadcast_join(
        &mut self,
        display: &Arc<str>,
        location: &str,
        timestamp: u64,
        now: Instant,
    ) {
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
        let v2_now = self.connections.v2_len() > 0 && {
            let notice = self.presence.joined(display.clone(), now);
            self.arm_presence(notice);
            notice == Notice::Send
        };
        self.broadcast(Encoded {
            v1: &v1,
            v2: v2_now.then_some(&v2),
            own: None,
            lobby: false,
        });
    }

    /// `logoutBroadcast` to every v2 connection (v1 has no such message),
    /// within the presence budget; past it, only to `holders` (the
    /// connections that just logged out, for whom it is the confirmation)
    /// and the others hear of it in the next `presence` summary.
    pub(super) fn broadcast_leave(
        &mut self,
        username: &Arc<str>,
        reason: LeaveReason,
        holders: &[ConnectionId],
        now: Instant,
    ) {
        if self.connections.v2_len() == 0 {
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
            for &(id, version, _) in self.connections.recipients() {
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
    pub(super) fn send_presence(&mut self, now: Instant) {
        let summary = match self.presence.due(now) {
            Ok(summary) => summary,
            Err(later) => {
                if let Some(at) = later {
                    self.timers.schedule(at, Timer::Presence);
                }
                return;
            }
        };
        if self.connections.v2_len() == 0 {
            return;
        }
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::Presence {
            id: id.into(),
            room: None,
            joined: listed(&summary.joined),
            joined_count: summary.joined_count,
            left: listed(&summary.left),
            left_count: summary.left_count,
            timestamp: self.timestamp(now),
        });
        let frame = self.actions.add(frame);
        for &(id, version, _) in self.connections.recipients() {
            if version >= Version::V2 {
                self.actions.send(id, frame);
            }
        }
    }

    /// `listUsers`: a single node knows who is online; a cluster asks its
    /// shared store, which counts every node's devices.
    pub(super) fn list_users(&mut self, conn: ConnectionId, reply_to: Option<&str>) {
        if self.username(conn).is_none() {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::MessagingWhileNotLoggedIn,
                "log in before listing users",
            );
        }
        match &self.names {
            Names::Local(local) => {
                let online = local.logins.online();
                self.send_user_list(conn, reply_to, &online);
            }
            Names::Shared(_) => self.ask_online(conn, reply_to),
        }
    }

    /// The shared store's answer to a `listUsers`.
    pub(super) fn online_answered(
        &mut self,
        asked: PendingOnline,
        online: Result<Vec<(Arc<str>, usize)>, Failed>,
    ) {
        let PendingOnline { conn, reply_to } = asked;
        match online {
            Ok(mut online) => {
                // Ordered as a single node orders them (`Logins::online`).
                online.sort_by_cached_key(|(name, _)| crate::username::fold(name));
                self.send_user_list(conn, reply_to.as_deref(), &online);
            }
            Err(_) => self.send_error(
                conn,
                reply_to.as_deref(),
                ErrorCode::Unavailable,
                "the server could not reach its store to list who is online; try again",
            ),
        }
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
}

/// Names as a `presence` frame lists them.
pub(super) fn listed(names: &VecDeque<Arc<str>>) -> Vec<Cow<'_, str>> {
    names.iter().map(|name| Cow::Borrowed(&**name)).collect()
}
