//! The log of WebSocket upgrades refused for their Origin
//! (`--allowed-origins`): a page at an origin the operator did not list
//! cannot connect, and neither it (a browser hides the 403 from the page's
//! script) nor the operator would otherwise learn why. Each origin is
//! logged at most once a [`LOG_EVERY`], its line counting the refusals since
//! its last one, so that a page retrying in a loop, or a flood of forged
//! Origins, cannot flood the log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// At most one line per origin this often.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(60);

/// Origins remembered at once (each at most [`LONGEST_ORIGIN`] bytes):
/// past it, the others share one line under [`OTHER_ORIGINS`].
const MOST_ORIGINS: usize = 256;

/// An Origin is a peer's text: logged cut to this length.
const LONGEST_ORIGIN: usize = 120;

/// The name under which origins past [`MOST_ORIGINS`] are counted.
pub(crate) const OTHER_ORIGINS: &str = "(other origins)";

/// A line to log: `refused` upgrades from `origin` since its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) origin: String,
    pub(crate) refused: u64,
}

#[derive(Debug, Default)]
pub(crate) struct RefusedOrigins {
    by_origin: HashMap<String, Since>,
}

#[derive(Debug, Clone, Copy)]
struct Since {
    /// When this origin's last line was logged.
    logged_at: Instant,
    /// Refusals since then, not logged yet.
    unlogged: u64,
}

impl RefusedOrigins {
    /// An upgrade from `origin` (its `Origin` header's bytes) was refused
    /// at `now`: the line to log now, if it is time for one.
    pub(crate) fn refused(&mut self, origin: &[u8], now: Instant) -> Option<Report> {
        let mut origin = String::from_utf8_lossy(origin).into_owned();
        if origin.len() > LONGEST_ORIGIN {
            let mut end = LONGEST_ORIGIN;
            while !origin.is_char_boundary(end) {
                end -= 1;
            }
            origin.truncate(end);
            origin.push('…');
        }
        if !self.by_origin.contains_key(&origin) && self.by_origin.len() >= MOST_ORIGINS {
            // Those whose minute is over would be logged afresh anyway.
            self.by_origin
                .retain(|_, since| now.duration_since(since.logged_at) < LOG_EVERY);
            if self.by_origin.len() >= MOST_ORIGINS {
                origin = OTHER_ORIGINS.to_owned();
            }
        }
        match self.by_origin.get_mut(&origin) {
            Some(since) if now.duration_since(since.logged_at) < LOG_EVERY => {
                since.unlogged += 1;
                None
            }
            Some(since) => {
                let refused = since.unlogged + 1;
                *since = Since {
                    logged_at: now,
                    unlogged: 0,
                };
                Some(Report { origin, refused })
            }
            None => {
                let since = Since {
                    logged_at: now,
                    unlogged: 0,
                };
                self.by_origin.insert(origin.clone(), since);
                Some(Report { origin, refused: 1 })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(origin: &str, refused: u64) -> Option<Report> {
        Some(Report {
            origin: origin.into(),
            refused,
        })
    }

    #[test]
    fn an_origin_is_logged_at_once_then_at_most_once_a_minute_with_a_count() {
        let start = Instant::now();
        let mut log = RefusedOrigins::default();
        let evil = b"https://evil.example";
        assert_eq!(log.refused(evil, start), report("https://evil.example", 1));
        for second in 1..=59 {
            assert_eq!(log.refused(evil, start + Duration::from_secs(second)), None);
        }
        // Another origin has a minute of its own.
        let other = b"http://localhost:8000";
        assert_eq!(
            log.refused(other, start + Duration::from_secs(30)),
            report("http://localhost:8000", 1)
        );
        assert_eq!(
            log.refused(evil, start + LOG_EVERY),
            report("https://evil.example", 60)
        );
        assert_eq!(
            log.refused(evil, start + LOG_EVERY * 2),
            report("https://evil.example", 1)
        );
    }

    #[test]
    fn many_origins_share_one_line_and_a_long_one_is_cut() {
        let start = Instant::now();
        let mut log = RefusedOrigins::default();
        for n in 0..MOST_ORIGINS {
            let origin = format!("http://h{n}.example");
            assert!(log.refused(origin.as_bytes(), start).is_some());
        }
        assert_eq!(
            log.refused(b"http://one-more.example", start),
            report(OTHER_ORIGINS, 1)
        );
        assert_eq!(log.refused(b"http://and-another.example", start), None);
        assert_eq!(log.by_origin.len(), MOST_ORIGINS + 1, "bounded");
        // A minute later the old ones make room again.
        let later = start + LOG_EVERY;
        assert_eq!(
            log.refused(b"http://one-more.example", later),
            report("http://one-more.example", 1)
        );
        let long = format!("http://{}.example", "é".repeat(100));
        let cut = log.refused(long.as_bytes(), later).unwrap().origin;
        assert!(
            cut.len() <= LONGEST_ORIGIN + '…'.len_utf8() && cut.ends_with('…'),
            "{cut}"
        );
    }
}
