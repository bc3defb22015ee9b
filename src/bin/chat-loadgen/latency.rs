//! Latency percentiles, recorded by many tasks into one histogram.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Microsecond latencies from 1 µs to an hour, 3 significant digits.
#[derive(Debug)]
pub struct Latencies {
    histogram: Mutex<Histogram<u64>>,
}

/// The percentiles a report prints, in microseconds; `None` without samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub p999_us: Option<u64>,
    pub max_us: Option<u64>,
}

impl Latencies {
    pub fn new() -> Self {
        // Fixed, valid bounds: 1 ≤ low, 2·low ≤ high, sigfig ≤ 5.
        let histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"));
        Latencies {
            histogram: Mutex::new(histogram),
        }
    }

    /// Records a batch of samples, in microseconds, under one lock.
    pub fn record_us(&self, samples: &[u64]) {
        let mut histogram = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        for &us in samples {
            histogram.saturating_record(us.max(1));
        }
    }

    pub fn record(&self, latency: Duration) {
        self.record_us(&[latency.as_micros().try_into().unwrap_or(u64::MAX)]);
    }

    pub fn percentiles(&self) -> Percentiles {
        let histogram = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let at = |q| Some(histogram.value_at_quantile(q));
        Percentiles {
            count: histogram.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: Some(histogram.max()),
        }
    }
}

/// One client's latencies not yet in the shared histograms: recorded in
/// batches, so that thousands of clients keep the histograms' locks cold.
#[derive(Debug, Default)]
pub struct Pending {
    /// Every delivery's.
    all_us: Vec<u64>,
    /// Those of the client's own messages too (its acknowledgements).
    own_us: Vec<u64>,
}

impl Pending {
    /// Adds a delivery's latency; `own` for one of the client's own
    /// messages. Returns whether `batch` are waiting: time to flush.
    pub fn push(&mut self, latency_us: u64, own: bool, batch: usize) -> bool {
        self.all_us.push(latency_us);
        if own {
            self.own_us.push(latency_us);
        }
        self.all_us.len() >= batch
    }

    /// Records what is waiting into `all` and `own`.
    pub fn flush(&mut self, all: &Latencies, own: &Latencies) {
        all.record_us(&self.all_us);
        self.all_us.clear();
        own.record_us(&self.own_us);
        self.own_us.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_samples() {
        let latencies = Latencies::new();
        assert_eq!(latencies.percentiles(), Percentiles::default());
        let samples: Vec<u64> = (1..=1000).collect();
        latencies.record_us(&samples[..500]);
        latencies.record_us(&samples[500..]);
        let p = latencies.percentiles();
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50_us, Some(500));
        assert_eq!(p.p99_us, Some(990));
        assert_eq!(p.max_us, Some(1000));
    }

    #[test]
    fn pending_latencies_reach_the_histograms_when_flushed() {
        let (all, own) = (Latencies::new(), Latencies::new());
        let mut pending = Pending::default();
        assert!(!pending.push(10, false, 3));
        assert!(!pending.push(20, true, 3));
        assert_eq!(all.percentiles().count, 0);
        assert!(pending.push(30, false, 3));
        pending.flush(&all, &own);
        assert_eq!(all.percentiles().count, 3);
        assert_eq!(own.percentiles().max_us, Some(20));
        // Flushed once: not again.
        pending.flush(&all, &own);
        assert_eq!((all.percentiles().count, own.percentiles().count), (3, 1));
    }
}
