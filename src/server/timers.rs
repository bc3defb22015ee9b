//! One heap of wake-ups for every connection and every idle login.
//!
//! Entries are never removed when plans change (activity just moves a
//! connection's deadline later); a wake-up that finds nothing due re-arms
//! itself. That keeps activity O(1) and the heap at about one entry per
//! connection, idle login and tracked address, at the price of a few
//! harmless early wake-ups. When a deadline moves earlier (a logout restarts
//! the login timeout), an earlier entry is added and the later one is
//! dropped unheeded when it comes due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use super::ConnectionId;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Check this connection's deadlines: heartbeat and login timeout.
    Connection(ConnectionId),
    /// Release this reservation of a name if it is still idle.
    LoginExpiry { key: Arc<str>, serial: u64 },
    /// Forget this address's wrong secrets if their window has ended.
    FailedLogins { address: Arc<str> },
    /// Send the held presence notices if the budget allows.
    Presence,
    /// Record that the server is alive (a server with a store).
    Alive,
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    pub(crate) fn schedule(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the earliest timer, and the instant it was set for, if it is
    /// due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }
}
