//! Wrong secrets per peer address, so that nobody can guess one.
//!
//! An address's first wrong secret opens a one-minute window; once the window
//! holds `login_failures_per_minute` of them, every login with a secret from
//! that address is refused until the window ends. Windows are fixed (not
//! sliding) so the refusal states exactly when to retry, and one timer per
//! address removes its entry when its window ends.
//!
//! The table is capped: an attacker with many addresses cannot grow it
//! without bound. While it is full, logins with a secret from an address it
//! does not hold are refused too, since letting untracked addresses guess
//! freely would make the cap the way around the limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one address's failures are counted together.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Window {
    ends_at: Instant,
    failures: u32,
}

#[derive(Debug)]
pub(crate) struct FailedLogins {
    by_address: HashMap<Arc<str>, Window>,
    /// Wrong secrets allowed per window; 0 turns the limit off.
    limit: u32,
    /// Most addresses tracked at once.
    capacity: usize,
}

impl FailedLogins {
    pub(crate) fn new(limit: u32, capacity: usize) -> Self {
        FailedLogins {
            by_address: HashMap::new(),
            limit,
            capacity,
        }
    }

    /// Whether `address` may try a secret at `now`; if not, how long until
    /// it may.
    pub(crate) fn check(&mut self, address: &str, now: Instant) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        // A window that ended before its timer fired (the driver woke late)
        // counts as ended: the answer depends on `now` alone.
        self.expire(address, now);
        match self.by_address.get(address) {
            Some(window) if window.failures >= self.limit => Err(window.ends_at - now),
            Some(_) => Ok(()),
            // Every window ends within `WINDOW`: an upper bound on the wait.
            None if self.by_address.len() >= self.capacity => Err(WINDOW),
            None => Ok(()),
        }
    }

    /// A wrong secret from `address`, which `check` allowed. Returns when a
    /// new window ends, for the caller to schedule its removal.
    pub(crate) fn record(&mut self, address: &Arc<str>, now: Instant) -> Option<Instant> {
        if self.limit == 0 {
            return None;
        }
        if let Some(window) = self.by_address.get_mut(address) {
            window.failures = window.failures.saturating_add(1);
            return None;
        }
        if self.by_address.len() >= self.capacity {
            return None; // `check` refused it already; keep the cap regardless
        }
        let ends_at = now + WINDOW;
        self.by_address.insert(
            address.clone(),
            Window {
                ends_at,
                failures: 1,
            },
        );
        Some(ends_at)
    }

    /// Forgets `address` if its window has ended by `now`.
    pub(crate) fn expire(&mut self, address: &str, now: Instant) {
        if self
            .by_address
            .get(address)
            .is_some_and(|window| window.ends_at <= now)
        {
            self.by_address.remove(address);
        }
    }

    /// When the window of `address` ends, if it is tracked.
    pub(crate) fn window_ends_at(&self, address: &str) -> Option<Instant> {
        self.by_address.get(address).map(|window| window.ends_at)
    }

    /// Addresses tracked.
    pub(crate) fn len(&self) -> usize {
        self.by_address.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_locks_an_address_until_its_window_ends() {
        let start = Instant::now();
        let mut failed = FailedLogins::new(2, 10);
        let a: Arc<str> = "10.0.0.1".into();
        assert_eq!(failed.check(&a, start), Ok(()));
        assert_eq!(failed.record(&a, start), Some(start + WINDOW));
        let later = start + Duration::from_secs(10);
        assert_eq!(failed.check(&a, later), Ok(()));
        assert_eq!(failed.record(&a, later), None);
        assert_eq!(failed.check(&a, later), Err(Duration::from_secs(50)));
        assert_eq!(failed.check("10.0.0.2", later), Ok(()));
        assert_eq!(failed.check(&a, start + WINDOW), Ok(()));
        assert_eq!(failed.len(), 0);
    }

    #[test]
    fn a_full_table_refuses_addresses_it_does_not_hold() {
        let start = Instant::now();
        let mut failed = FailedLogins::new(5, 2);
        for address in ["a", "b"] {
            failed.record(&address.into(), start);
        }
        assert_eq!(failed.check("a", start), Ok(()));
        assert_eq!(failed.check("c", start), Err(WINDOW));
        assert_eq!(failed.record(&"c".into(), start), None);
        assert_eq!(failed.len(), 2);
        failed.expire("a", start + WINDOW);
        assert_eq!(failed.check("c", start + WINDOW), Ok(()));
    }

    #[test]
    fn zero_switches_the_limit_off() {
        let start = Instant::now();
        let mut failed = FailedLogins::new(0, 0);
        assert_eq!(failed.record(&"a".into(), start), None);
        assert_eq!(failed.check("a", start), Ok(()));
        assert_eq!(failed.len(), 0);
    }
}
