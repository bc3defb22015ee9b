//! When to try connecting again: exponential backoff with jitter.

use std::time::Duration;

use rand::{Rng, RngExt};

/// Delays between reconnection attempts: `initial` doubled after every
/// failure up to `max`, each drawn at random from the upper half of that
/// (so a restarted server is not hit by all its clients in the same
/// instant, and no delay exceeds `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before attempt `failures + 1`, given `failures` failures in
    /// a row (0 for the first retry after a connection was lost).
    pub fn delay<R: Rng + ?Sized>(&self, failures: u32, rng: &mut R) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1 << failures.min(20))
            .min(self.max);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(nanos / 2..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn doubles_from_half_a_second_with_jitter_up_to_the_cap() {
        let backoff = Backoff::default();
        let mut rng = StdRng::seed_from_u64(3);
        let ceilings = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000];
        for (failures, ceiling) in ceilings.into_iter().enumerate() {
            let ceiling = Duration::from_millis(ceiling);
            let delays: Vec<Duration> = (0..50)
                .map(|_| backoff.delay(failures as u32, &mut rng))
                .collect();
            assert!(
                delays.iter().all(|d| *d >= ceiling / 2 && *d <= ceiling),
                "{failures}: {delays:?}"
            );
            // Jittered: not all the same.
            assert!(delays.iter().any(|d| *d != delays[0]), "{delays:?}");
        }
        assert!(backoff.delay(u32::MAX, &mut rng) <= Duration::from_secs(30));
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let backoff = Backoff::default();
        let schedule = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..8)
                .map(|n| backoff.delay(n, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(schedule(1), schedule(1));
        assert_ne!(schedule(1), schedule(2));
    }
}
