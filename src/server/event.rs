//! What the core tells the driver happened, for logs and metrics.

use std::sync::Arc;

use super::{ConnectionId, Failed};
use crate::protocol::LeaveReason;

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
    /// A write failed (`handle_answer`): a login or message that waited on
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
