//! Gives the memory that a burst freed back to the operating system.
//!
//! glibc's allocator keeps what a program frees for later reuse. After a
//! burst (a join storm queues thousands of frames per connection, writes and
//! frees them) it kept four times what the idle connections then needed, for
//! as long as the process lived: 16.7 KB of RSS per connection against 4 KB
//! once trimmed. So once a burst is over, `malloc_trim` hands the free pages
//! back. A server under steady load is never trimmed (it would only grow
//! again), and an idle one only once after each burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smol::Timer;
use tracing::debug;

/// How often the activity is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Work since the last trim that makes a burst worth trimming after.
const BURST_BYTES: u64 = 16 << 20;

/// Work within one `CHECK_EVERY` below which the burst is over.
const QUIET_BYTES: u64 = 1 << 20;

/// What an opened or closed connection counts as, in bytes of work: about
/// what its handshake, login and teardown allocate and free.
pub(crate) const CONNECTION_BYTES: u64 = 8 << 10;

/// The work done, in bytes: queued frames and connections opened or closed.
/// Added to by the core task, read by [`release_after_bursts`].
#[derive(Debug, Default)]
pub(crate) struct Activity(AtomicU64);

impl Activity {
    pub(crate) fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Whether this build can give memory back (glibc only).
pub(crate) const CAN_RELEASE: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// Runs forever: trims the heap once the activity falls quiet after a burst.
pub(crate) async fn release_after_bursts(activity: Arc<Activity>) {
    let mut trimmer = Trimmer::default();
    loop {
        Timer::after(CHECK_EVERY).await;
        if trimmer.should_release(activity.0.load(Ordering::Relaxed)) {
            let started = Instant::now();
            release();
            debug!(
                "returned freed memory to the system in {:?}",
                started.elapsed()
            );
        }
    }
}

/// When to trim, from the activity counter read every `CHECK_EVERY`.
#[derive(Debug, Default)]
struct Trimmer {
    last_total: u64,
    since_release: u64,
}

impl Trimmer {
    fn should_release(&mut self, total: u64) -> bool {
        let recent = total.wrapping_sub(self.last_total);
        self.last_total = total;
        self.since_release = self.since_release.saturating_add(recent);
        if self.since_release >= BURST_BYTES && recent < QUIET_BYTES {
            self.since_release = 0;
            return true;
        }
        false
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the crate's one FFI call outside the load generator
fn release() {
    // SAFETY: malloc_trim only walks and trims glibc's own heap, under its
    // own locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_a_burst_falls_quiet_and_not_under_steady_load() {
        let mut trimmer = Trimmer::default();
        let mut total = 0;
        let mut tick = |bytes: u64| {
            total += bytes;
            trimmer.should_release(total)
        };
        // Small talk never adds up to a burst within these ticks.
        assert!(!(0..10).any(|_| tick(1000)));
        // A burst: nothing while it lasts, one trim once it is over.
        assert!(!tick(BURST_BYTES));
        assert!(!tick(BURST_BYTES));
        assert!(tick(0));
        assert!(!tick(0), "once per burst");
        // Steady heavy load is never quiet.
        assert!(!(0..10).any(|_| tick(4 * QUIET_BYTES)));
        assert!(tick(QUIET_BYTES - 1), "quiet again after it");
    }
}
