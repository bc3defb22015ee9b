//! Pacing of v2 presence notices: who joined, who left.
//!
//! In v1 every login is broadcast to every open connection, so N clients
//! logging in at once (all of them reconnecting after a restart) cost about
//! N²/2 frames: 180 million for 19,000. v2 connections instead share one
//! budget of notices (a token bucket, `presence_rate` a second): within it,
//! each join or leave is its own `loginBroadcast` or `logoutBroadcast` as
//! before; past it, they are held, and when the budget allows the next
//! notice, everything held goes out as one `presence` summary. A storm then
//! costs each v2 connection `presence_rate` frames a second, whatever its
//! size.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::rate::{Bucket, Rate};
use crate::protocol::PRESENCE_NAMES;

#[derive(Debug)]
pub(super) struct Presence {
    /// `None`: pacing is off, every notice goes out at once.
    rate: Option<Rate>,
    /// Created full by the first notice (the core has no instant before).
    bucket: Option<Bucket>,
    /// Notices held since the budget ran out.
    held: Option<Summary>,
}

/// What to do with a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Notice {
    /// Send it now, on its own.
    Send,
    /// It is held for a summary; none was pending, so ask to be woken at
    /// this instant to send it.
    HeldUntil(Instant),
    /// It is held for the summary already due at an earlier wake-up.
    Held,
}

/// Joins and leaves held for one `presence` frame.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Summary {
    /// The most recent names, oldest first.
    pub(super) joined: VecDeque<Arc<str>>,
    pub(super) joined_count: u64,
    pub(super) left: VecDeque<Arc<str>>,
    pub(super) left_count: u64,
}

impl Summary {
    fn add(names: &mut VecDeque<Arc<str>>, count: &mut u64, name: Arc<str>) {
        if names.len() == PRESENCE_NAMES {
            names.pop_front();
        }
        names.push_back(name);
        *count += 1;
    }
}

impl Presence {
    pub(super) fn new(per_second: u32, burst: u32) -> Self {
        Presence {
            rate: Rate::new(per_second, burst),
            bucket: None,
            held: None,
        }
    }

    pub(super) fn joined(&mut self, name: Arc<str>, now: Instant) -> Notice {
        self.notice(now, |held| {
            Summary::add(&mut held.joined, &mut held.joined_count, name)
        })
    }

    pub(super) fn left(&mut self, name: Arc<str>, now: Instant) -> Notice {
        self.notice(now, |held| {
            Summary::add(&mut held.left, &mut held.left_count, name)
        })
    }

    /// The summary to send, if one is held and the budget allows it at
    /// `now`; otherwise `None`, and the instant it will (if one is held).
    pub(super) fn due(&mut self, now: Instant) -> Result<Summary, Option<Instant>> {
        let (Some(rate), Some(bucket)) = (&self.rate, &mut self.bucket) else {
            return Err(None);
        };
        if self.held.is_none() {
            return Err(None);
        }
        match bucket.try_take(rate, now) {
            Ok(()) => Ok(self.held.take().unwrap_or_default()),
            Err(wait) => Err(Some(now + wait)),
        }
    }

    /// Whether notices are held for a summary.
    pub(super) fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    /// Forgets what is held: nobody is left to tell.
    pub(super) fn clear(&mut self) {
        self.held = None;
    }

    fn notice(&mut self, now: Instant, hold: impl FnOnce(&mut Summary)) -> Notice {
        let Some(rate) = &self.rate else {
            return Notice::Send;
        };
        if let Some(held) = &mut self.held {
            // Held notices go first: this one waits its turn behind them.
            hold(held);
            return Notice::Held;
        }
        let bucket = self.bucket.get_or_insert_with(|| Bucket::new(now));
        match bucket.try_take(rate, now) {
            Ok(()) => Notice::Send,
            Err(wait) => {
                hold(self.held.insert(Summary::default()));
                Notice::HeldUntil(now + wait)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn names(summary: &VecDeque<Arc<str>>) -> Vec<&str> {
        summary.iter().map(|n| &**n).collect()
    }

    #[test]
    fn within_the_budget_every_notice_goes_out_alone() {
        let now = Instant::now();
        let mut presence = Presence::new(10, 3);
        for name in ["a", "b", "c"] {
            assert_eq!(presence.joined(name.into(), now), Notice::Send);
        }
        let second = now + Duration::from_secs(1);
        assert_eq!(presence.left("a".into(), second), Notice::Send);
        assert_eq!(presence.due(second), Err(None));
    }

    #[test]
    fn past_the_budget_notices_are_summarised_when_it_allows() {
        let now = Instant::now();
        let mut presence = Presence::new(10, 2);
        assert_eq!(presence.joined("a".into(), now), Notice::Send);
        assert_eq!(presence.joined("b".into(), now), Notice::Send);
        let wake = now + Duration::from_millis(100);
        assert_eq!(presence.joined("c".into(), now), Notice::HeldUntil(wake));
        assert_eq!(presence.left("a".into(), now), Notice::Held);
        // Even with a token back, a new notice waits behind the held ones.
        assert_eq!(presence.joined("d".into(), wake), Notice::Held);
        assert_eq!(
            presence.due(wake - Duration::from_millis(1)),
            Err(Some(wake))
        );
        let summary = presence.due(wake).expect("due");
        assert_eq!(
            (names(&summary.joined), summary.joined_count),
            (vec!["c", "d"], 2)
        );
        assert_eq!((names(&summary.left), summary.left_count), (vec!["a"], 1));
        assert_eq!(presence.due(wake), Err(None));
    }

    #[test]
    fn a_summary_names_the_most_recent_and_counts_all() {
        let now = Instant::now();
        let mut presence = Presence::new(1, 1);
        assert_eq!(presence.joined("first".into(), now), Notice::Send);
        for i in 0..1000 {
            assert_ne!(presence.joined(format!("u{i}").into(), now), Notice::Send);
        }
        let summary = presence.due(now + Duration::from_secs(1)).expect("due");
        assert_eq!(summary.joined_count, 1000);
        assert_eq!(summary.joined.len(), PRESENCE_NAMES);
        assert_eq!(&*summary.joined[0], "u980");
        assert_eq!(&*summary.joined[PRESENCE_NAMES - 1], "u999");
    }

    #[test]
    fn zero_turns_pacing_off() {
        let now = Instant::now();
        for mut presence in [Presence::new(0, 20), Presence::new(10, 0)] {
            for i in 0..100 {
                assert_eq!(presence.joined(format!("u{i}").into(), now), Notice::Send);
            }
            assert_eq!(presence.due(now), Err(None));
        }
    }
}
