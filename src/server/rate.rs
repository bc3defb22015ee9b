//! Token buckets for what a peer may send: messages and pings.
//!
//! A bucket holds up to `burst` tokens and gains `rate` a second. It is kept
//! as a single instant, the one at which it will be full again (the generic
//! cell rate algorithm): taking a token pushes that instant one interval
//! later, and the bucket is empty when it lies more than `burst - 1`
//! intervals ahead. So checking costs a comparison, needs no floats and gives
//! the same answer at the same instant every time.

use std::time::{Duration, Instant};

/// A rate and a burst, turned into the durations the buckets compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    /// Time to gain one token.
    interval: Duration,
    /// How far ahead `full_at` may lie with a token still left: `burst - 1`
    /// intervals.
    tolerance: Duration,
    /// The time a full bucket takes to refill: `burst` intervals.
    span: Duration,
}

impl Rate {
    /// `per_second` tokens a second, at most `burst` at once; `None` (no
    /// limit) when either is 0.
    pub(crate) fn new(per_second: u32, burst: u32) -> Option<Rate> {
        Rate::per(Duration::from_secs(1), per_second, burst)
    }

    /// `count` tokens per `period`, at most `burst` at once; `None` (no
    /// limit) when either is 0.
    pub(crate) fn per(period: Duration, count: u32, burst: u32) -> Option<Rate> {
        if count == 0 || burst == 0 {
            return None;
        }
        let interval = period / count;
        Some(Rate {
            interval,
            tolerance: interval.saturating_mul(burst - 1),
            span: interval.saturating_mul(burst),
        })
    }

    /// The time a full bucket takes to refill.
    pub(crate) fn span(&self) -> Duration {
        self.span
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// When the bucket will be full again if nothing more is taken; at or
    /// before now, it is full.
    full_at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(now: Instant) -> Self {
        Bucket { full_at: now }
    }

    /// How long until a token is left: zero when one is left now.
    pub(crate) fn wait(&self, rate: &Rate, now: Instant) -> Duration {
        self.full_at
            .saturating_duration_since(now)
            .saturating_sub(rate.tolerance)
    }

    /// Takes a token if one is left; otherwise takes nothing and says how
    /// long until one is.
    pub(crate) fn try_take(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        match self.wait(rate, now) {
            wait if wait.is_zero() => {
                self.take(rate, now);
                Ok(())
            }
            wait => Err(wait),
        }
    }

    /// Whether the bucket is full at `now`: then it is the same as a new one.
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        self.full_at <= now
    }

    /// Takes a token whether or not one is left, running into debt: a peer
    /// that keeps going past the limit finds the bucket ever further from
    /// full.
    pub(crate) fn take(&mut self, rate: &Rate, now: Instant) {
        self.full_at = self.full_at.max(now) + rate.interval;
    }

    /// Puts back one token taken for something that was then not done.
    pub(crate) fn give_back(&mut self, rate: &Rate) {
        self.full_at = self
            .full_at
            .checked_sub(rate.interval)
            .unwrap_or(self.full_at);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_full_bucket_gives_its_burst_then_one_token_per_interval() {
        let rate = Rate::new(5, 10).unwrap();
        let start = Instant::now();
        let mut bucket = Bucket::new(start);
        for _ in 0..10 {
            assert_eq!(bucket.try_take(&rate, start), Ok(()));
        }
        assert_eq!(
            bucket.try_take(&rate, start),
            Err(Duration::from_millis(200))
        );
        let almost = start + Duration::from_millis(199);
        assert_eq!(
            bucket.try_take(&rate, almost),
            Err(Duration::from_millis(1))
        );
        let then = start + Duration::from_millis(200);
        assert_eq!(bucket.try_take(&rate, then), Ok(()));
        assert!(bucket.try_take(&rate, then).is_err());
        // Two idle seconds refill it completely, and no more.
        let later = then + Duration::from_secs(60);
        let taken = (0..20)
            .filter(|_| bucket.try_take(&rate, later).is_ok())
            .count();
        assert_eq!(taken, 10);
    }

    #[test]
    fn zero_switches_the_limit_off() {
        assert_eq!(Rate::new(0, 10), None);
        assert_eq!(Rate::new(5, 0), None);
    }

    #[test]
    fn debt_keeps_growing_while_a_peer_takes_past_the_limit() {
        let rate = Rate::new(1, 2).unwrap();
        let start = Instant::now();
        let mut bucket = Bucket::new(start);
        for _ in 0..5 {
            bucket.take(&rate, start);
        }
        assert_eq!(bucket.wait(&rate, start), Duration::from_secs(4));
        assert_eq!(
            bucket.wait(&rate, start + Duration::from_secs(4)),
            Duration::ZERO
        );
    }

    proptest! {
        /// The single-instant bucket agrees at every step with the textbook
        /// one that counts tokens (in nanoseconds, to stay exact).
        #[test]
        fn agrees_with_a_counting_token_bucket(
            per_second in 1u32..50,
            burst in 1u32..20,
            steps in prop::collection::vec((0u64..400, any::<bool>()), 1..200),
        ) {
            let rate = Rate::new(per_second, burst).unwrap();
            let interval = u128::from(1_000_000_000 / per_second);
            let capacity = interval * u128::from(burst);
            let start = Instant::now();
            let mut bucket = Bucket::new(start);
            let (mut tokens, mut last) = (capacity, 0u128);
            let mut now = 0u128;
            for (step_ms, forced) in steps {
                now += u128::from(step_ms) * 1_000_000;
                tokens = (tokens + (now - last)).min(capacity);
                last = now;
                let at = start + Duration::from_nanos(u64::try_from(now).unwrap());
                let expected_ok = tokens >= interval;
                if forced {
                    prop_assert_eq!(bucket.wait(&rate, at).is_zero(), expected_ok);
                    bucket.take(&rate, at);
                    // Debt is what the counting bucket cannot show: check
                    // the next answers only while it has a token to give.
                    tokens = tokens.saturating_sub(interval);
                    if !expected_ok {
                        return Ok(());
                    }
                } else {
                    prop_assert_eq!(bucket.try_take(&rate, at).is_ok(), expected_ok);
                    if expected_ok {
                        tokens -= interval;
                    }
                }
            }
        }
    }
}
