//! Sending slower after the server rate-limited one of our messages.
//!
//! A rate-limited message is not lost: it goes back to the front of the
//! queue, nothing is sent until the instant the server said to retry at,
//! and then one message at a time is in flight (each waits for its echo) so
//! that later ones are not refused in turn and the order is kept. That lasts
//! until the queue drains, or for [`SLOW_FOR`] after the last refusal.

use std::time::{Duration, Instant};

/// How long to keep one message in flight after the last refusal.
pub(crate) const SLOW_FOR: Duration = Duration::from_secs(10);
/// The wait when the server does not say how long.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// The longest wait believed; a server asking for more is not taken at its
/// word (the next refusal says again).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub(crate) struct Pacing {
    /// Send nothing before this instant.
    resume_at: Option<Instant>,
    /// One message in flight at a time until then.
    slow_until: Option<Instant>,
    /// Whether the user has been told that sending is slower.
    told: bool,
}

impl Pacing {
    /// The server refused a message as too fast, saying `description`.
    /// Returns when sending may resume, and whether this is the first
    /// refusal of the session (to tell the user once).
    pub(crate) fn limited(&mut self, description: Option<&str>, now: Instant) -> (Instant, bool) {
        let resume_at = now + retry_after(description);
        self.resume_at = Some(self.resume_at.map_or(resume_at, |at| at.max(resume_at)));
        self.slow_until = Some(resume_at + SLOW_FOR);
        let first = !self.told;
        self.told = true;
        (resume_at, first)
    }

    /// Whether sending waits for the retry instant.
    pub(crate) fn is_paused(&self) -> bool {
        self.resume_at.is_some()
    }

    /// The retry instant sending waits for, if any.
    pub(crate) fn resume_at(&self) -> Option<Instant> {
        self.resume_at
    }

    pub(crate) fn is_slow(&self) -> bool {
        self.slow_until.is_some()
    }

    /// A new connection: its rate limit starts afresh.
    pub(crate) fn reconnected(&mut self) {
        self.resume_at = None;
    }

    /// Everything was sent and confirmed: back to the full window.
    pub(crate) fn drained(&mut self) {
        self.slow_until = None;
    }

    /// Time has reached `now`; whether anything changed.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> bool {
        let mut changed = false;
        if self.resume_at.is_some_and(|at| now >= at) {
            self.resume_at = None;
            changed = true;
        }
        if self.slow_until.is_some_and(|at| now >= at) {
            self.slow_until = None;
            changed = true;
        }
        changed
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.resume_at.or(self.slow_until)
    }
}

/// How long the server asked us to wait: "retry in N ms" or "retry in N s"
/// in its description; [`DEFAULT_WAIT`] when it does not say (or says
/// something unreadable), at most [`MAX_WAIT`].
pub(crate) fn retry_after(description: Option<&str>) -> Duration {
    parse_retry(description.unwrap_or_default())
        .unwrap_or(DEFAULT_WAIT)
        .min(MAX_WAIT)
}

fn parse_retry(description: &str) -> Option<Duration> {
    let (_, rest) = description.rsplit_once("retry in ")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let amount: u64 = rest[..digits].parse().ok()?;
    let unit = rest[digits..].trim_start();
    let unit = unit
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    match unit {
        "ms" => Some(Duration::from_millis(amount)),
        "s" => Some(Duration::from_secs(amount.min(u64::from(u32::MAX)))),
        _ => None,
    }
}

/// The server's description without its "; retry in …" part, which only
/// concerned the message refused.
pub(crate) fn the_limit(description: &str) -> &str {
    description
        .split_once("; retry in")
        .map_or(description, |(limit, _)| limit)
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wait_the_server_asks_for_and_distrusts_the_rest() {
        let ms = Duration::from_millis;
        for (description, wait) in [
            (
                Some("too many messages: at most 5 a second, 10 at once; retry in 200 ms"),
                ms(200),
            ),
            (Some("retry in 3 s"), Duration::from_secs(3)),
            (Some("retry in 7ms."), ms(7)),
            (Some("retry in 0 ms"), ms(0)),
            (Some("retry in 3600 s"), MAX_WAIT),
            (Some("retry in 99999999999999999999999 ms"), DEFAULT_WAIT),
            (Some("retry in 5 minutes"), DEFAULT_WAIT),
            (Some("retry in -5 ms"), DEFAULT_WAIT),
            (Some("retry in ms"), DEFAULT_WAIT),
            (Some("slow down"), DEFAULT_WAIT),
            (Some(""), DEFAULT_WAIT),
            (None, DEFAULT_WAIT),
        ] {
            assert_eq!(retry_after(description), wait, "{description:?}");
        }
    }

    #[test]
    fn the_limit_drops_the_per_message_wait() {
        assert_eq!(
            the_limit("too many messages: at most 5 a second, 10 at once; retry in 200 ms"),
            "too many messages: at most 5 a second, 10 at once"
        );
        assert_eq!(the_limit("slow down"), "slow down");
    }

    #[test]
    fn pauses_until_the_retry_instant_and_stays_slow_for_a_while() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        assert_eq!(pacing.poll_timeout(), None);
        let (at, first) = pacing.limited(Some("retry in 200 ms"), now);
        assert_eq!((at, first), (now + Duration::from_millis(200), true));
        assert!(pacing.is_paused() && pacing.is_slow());
        assert_eq!(pacing.poll_timeout(), Some(at));
        assert!(!pacing.handle_timeout(at - Duration::from_millis(1)));
        assert!(pacing.handle_timeout(at));
        assert!(!pacing.is_paused() && pacing.is_slow());
        assert_eq!(pacing.poll_timeout(), Some(at + SLOW_FOR));
        let (_, first) = pacing.limited(None, at);
        assert!(!first, "told once");
        assert!(pacing.handle_timeout(at + DEFAULT_WAIT + SLOW_FOR));
        assert!(!pacing.is_paused() && !pacing.is_slow());
        assert_eq!(pacing.poll_timeout(), None);
    }
}
