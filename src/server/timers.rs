//! One heap of wake-ups for every connection and every idle login.
//!
//! Entries are never removed when plans change (activity just moves a
//! connection's deadline later); a wake-up that finds nothing due re-arms
//! itself. That keeps activity O(1), at the price of a few harmless early
//! wake-ups. When a deadline moves earlier (a logout restarts the login
//! timeout), an earlier entry is added and the later one is dropped unheeded
//! when it comes due.
//!
//! Entries also outlive what they were for: a closed connection's stays
//! until its heartbeat was due (a minute), an idle name's until its TTL
//! (ten minutes) although past `max_held_names` it was released long
//! before. Under churn (connect, log in, close, in a loop) those stale
//! entries would pile up in proportion to the rate, not to what is live: so
//! once they outnumber the live ones, [`Timers::compact`] drops them, which
//! keeps the heap within about twice what is live at O(1) amortised cost.

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
    /// Send this room's held `member` notices if its budget allows (a room
    /// gone by then: nothing).
    RoomPresence { room: Arc<str> },
    /// Record that the server is alive (a server with a store).
    Alive,
}

/// Stale entries tolerated beyond twice the live ones, so that a small
/// heap is not compacted over and over.
const COMPACT_SLACK: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    pub(crate) fn schedule(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// Drops every entry `is_live` says is stale, and duplicates, once the
    /// heap holds more than twice `live` (how many entries can be live at
    /// most). Between two compactions at least about `live` entries were
    /// added, so their cost is O(1) per entry.
    pub(crate) fn compact(&mut self, live: usize, is_live: impl Fn(Instant, &Timer) -> bool) {
        if self.heap.len() <= live.saturating_mul(2).saturating_add(COMPACT_SLACK) {
            return;
        }
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.retain(|Reverse((at, timer))| is_live(*at, timer));
        // The same wake-up planned twice (a name reclaimed and released
        // again at the same instant) is one wake-up.
        entries.sort_unstable();
        entries.dedup();
        self.heap = BinaryHeap::from(entries);
    }

    /// Entries, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
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
