//! One heap of wake-ups for every connection and every idle login.
//!
//! Entries are never removed when plans change (activity just moves a
//! connection's deadline later); a wake-up that finds nothing due re-arms
//! itself. That keeps activity O(1) and the heap at about one entry per
//! connection and idle login, at the price of a few harmless early wake-ups.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use super::ConnectionId;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Check this connection's heartbeat.
    Heartbeat(ConnectionId),
    /// Release this reservation of a name if it is still idle.
    LoginExpiry { key: Arc<str>, serial: u64 },
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

    /// Pops the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, timer))| timer)
    }
}
