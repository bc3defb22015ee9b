//! How fast one address may take new names. A login that takes a free name
//! reserves it for the login TTL after its connection closes, so without a
//! bound one host could connect, log in and leave in a loop and hold every
//! name anyone might want (and the memory they cost). Reclaiming one's own
//! name costs nothing here.
//!
//! One token bucket per address key (IPv6 per /64, see `address`). A full
//! bucket is the same as none, so only addresses that took names recently
//! are kept; the table is capped, and an address it cannot hold is not
//! limited (the ceiling on held names bounds that case): refusing new names
//! to everyone because a crowd of addresses filled it would be worse.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::rate::{Bucket, Rate};

#[derive(Debug)]
pub(crate) struct NewNames {
    /// `None`: no limit.
    rate: Option<Rate>,
    by_address: HashMap<Arc<str>, Bucket>,
    capacity: usize,
    /// When full buckets were last swept out, so a full table is swept at
    /// most once per refill time.
    swept_at: Option<Instant>,
}

impl NewNames {
    pub(crate) fn new(per_minute: u32, burst: u32, capacity: usize) -> Self {
        NewNames {
            rate: Rate::per(Duration::from_secs(60), per_minute, burst),
            by_address: HashMap::new(),
            capacity,
            swept_at: None,
        }
    }

    /// Whether `address` may take a new name at `now`; if not, how long
    /// until it may.
    pub(crate) fn check(&self, address: &str, now: Instant) -> Result<(), Duration> {
        match (&self.rate, self.by_address.get(address)) {
            (Some(rate), Some(bucket)) => match bucket.wait(rate, now) {
                wait if wait.is_zero() => Ok(()),
                wait => Err(wait),
            },
            _ => Ok(()),
        }
    }

    /// `address` took a new name, which `check` allowed.
    pub(crate) fn took(&mut self, address: &Arc<str>, now: Instant) {
        let Some(rate) = self.rate else { return };
        if !self.by_address.contains_key(address) && self.by_address.len() >= self.capacity {
            self.sweep(&rate, now);
        }
        if let Some(bucket) = self.by_address.get_mut(address) {
            bucket.take(&rate, now);
        } else if self.by_address.len() < self.capacity {
            let mut bucket = Bucket::new(now);
            bucket.take(&rate, now);
            self.by_address.insert(address.clone(), bucket);
        }
    }

    /// What `address` took is given back: it was not done after all (a
    /// store that could not save it).
    pub(crate) fn gave_back(&mut self, address: &str) {
        if let (Some(rate), Some(bucket)) = (&self.rate, self.by_address.get_mut(address)) {
            bucket.give_back(rate);
        }
    }

    /// Forgets addresses whose buckets are full again.
    fn sweep(&mut self, rate: &Rate, now: Instant) {
        if self.swept_at.is_some_and(|at| now < at + rate.span()) {
            return;
        }
        self.swept_at = Some(now);
        self.by_address.retain(|_, bucket| !bucket.is_full(now));
    }

    /// Addresses tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_address.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_takes_its_burst_then_one_name_per_interval() {
        let start = Instant::now();
        let mut names = NewNames::new(10, 3, 100);
        let a: Arc<str> = "10.0.0.1".into();
        for _ in 0..3 {
            assert_eq!(names.check(&a, start), Ok(()));
            names.took(&a, start);
        }
        assert_eq!(names.check(&a, start), Err(Duration::from_secs(6)));
        assert_eq!(names.check("10.0.0.2", start), Ok(()));
        assert_eq!(names.check(&a, start + Duration::from_secs(6)), Ok(()));
    }

    #[test]
    fn a_full_table_forgets_refilled_addresses_and_never_refuses_the_untracked() {
        let start = Instant::now();
        let mut names = NewNames::new(60, 1, 2);
        for address in ["a", "b"] {
            names.took(&address.into(), start);
        }
        let c: Arc<str> = "c".into();
        names.took(&c, start);
        assert_eq!((names.len(), names.check(&c, start)), (2, Ok(())));
        // A second later a and b are full again: swept out, c is tracked.
        let later = start + Duration::from_secs(1);
        names.took(&c, later);
        assert_eq!(names.len(), 1);
        assert!(names.check(&c, later).is_err());
    }

    #[test]
    fn zero_switches_the_limit_off() {
        let start = Instant::now();
        let mut names = NewNames::new(0, 3, 10);
        let a: Arc<str> = "a".into();
        for _ in 0..10 {
            names.took(&a, start);
        }
        assert_eq!((names.check(&a, start), names.len()), (Ok(()), 0));
    }
}
