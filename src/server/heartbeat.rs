//! Per-connection liveness: when to ping, when to retry, when to give up.
//!
//! Each connection carries its own deadlines, so a ping or an eviction
//! happens at the instant it is due rather than at the next global sweep.

use std::time::{Duration, Instant};

use crate::Config;

/// What a connection's heartbeat wants done at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing yet; ask again at this instant.
    NotBefore(Instant),
    /// Send a ping now.
    Ping,
    /// Silent for `evict_after`: close the connection now.
    Evict,
}

#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    last_activity: Instant,
    /// Pings sent since the last activity, and when the latest one went out.
    unanswered: u32,
    last_ping: Instant,
}

impl Heartbeat {
    pub(crate) fn new(now: Instant) -> Self {
        Heartbeat {
            last_activity: now,
            unanswered: 0,
            last_ping: now,
        }
    }

    /// Any inbound frame proves the peer is alive.
    pub(crate) fn on_activity(&mut self, now: Instant) {
        self.last_activity = self.last_activity.max(now);
        self.unanswered = 0;
    }

    pub(crate) fn on_ping_sent(&mut self, now: Instant) {
        self.unanswered = self.unanswered.saturating_add(1);
        self.last_ping = now;
    }

    /// The next instant something is due, whether or not it has passed.
    pub(crate) fn deadline(&self, config: &Config) -> Instant {
        let evict = self.last_activity + config.evict_after;
        let ping = if self.unanswered == 0 {
            self.last_activity + config.ping_interval
        } else {
            self.last_ping + retry_delay(config, self.unanswered)
        };
        ping.min(evict)
    }

    pub(crate) fn due(&self, config: &Config, now: Instant) -> Due {
        if now >= self.last_activity + config.evict_after {
            Due::Evict
        } else if now >= self.deadline(config) {
            Due::Ping
        } else {
            Due::NotBefore(self.deadline(config))
        }
    }
}

/// `ping_retry` doubled per unanswered ping after the first, capped at
/// `ping_interval`: 1 s, 2 s, 4 s… with the defaults.
fn retry_delay(config: &Config, unanswered: u32) -> Duration {
    let doublings = unanswered.saturating_sub(1).min(31);
    config
        .ping_retry
        .saturating_mul(1 << doublings)
        .min(config.ping_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_and_cap_at_the_ping_interval() {
        let config = Config::default();
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(&config, n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(&config, u32::MAX).as_secs(), 60);
    }
}
