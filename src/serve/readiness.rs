//! Whether this node should be sent users (`/readyz`): ready while no
//! check fails. Each part that can make the node unfit to take logins
//! reports under its own [`Check`], so `/readyz` can say why in one line
//! and one part recovering never hides another's failure.
//!
//! A part whose loss leaves the node serving most of its users (a Redis
//! shard other than the home: only its rooms stop) *degrades* it instead:
//! `/readyz` stays 200 and says what is missing. Failing it would take
//! every node out of its load balancer, and the lobby and every other
//! room with them, for the sake of one shard's rooms.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Something the node needs in order to take logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Check {
    /// The chat port accepts connections: failing until the accept loop
    /// runs.
    Listening,
    /// The store saves what it is handed: failing while commits fail, and
    /// once its thread has stopped.
    Store,
    /// A cluster's Redis shard answers (`--redis-url`, the home is 0):
    /// failing while it cannot be reached, when logins and messages (the
    /// home's) or its rooms' requests are refused.
    #[cfg(feature = "cluster")]
    Redis(usize),
    /// No shutdown has begun: failing from the first moment of one, so
    /// that a load balancer sends no one new while the node drains.
    Shutdown,
}

/// The checks failing now, each with its reason and whether it only
/// degrades the node.
#[derive(Debug)]
pub(crate) struct Readiness {
    failing: Mutex<Vec<(Check, String, Severity)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    /// The node should not be sent users.
    NotReady,
    /// The node serves, with a part missing (only a cluster's shards).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Degraded,
}

impl Readiness {
    /// Starts not ready: not listening yet.
    pub(crate) fn new() -> Readiness {
        Readiness {
            failing: Mutex::new(vec![(
                Check::Listening,
                "starting".into(),
                Severity::NotReady,
            )]),
        }
    }

    /// `check` fails, for `reason` (replacing an earlier reason).
    pub(crate) fn fail(&self, check: Check, reason: impl Into<String>) {
        self.set(check, reason.into(), Severity::NotReady);
    }

    /// `check` fails, for `reason`, but the node still serves (see the
    /// module's notes).
    #[cfg(feature = "cluster")]
    pub(crate) fn degrade(&self, check: Check, reason: impl Into<String>) {
        self.set(check, reason.into(), Severity::Degraded);
    }

    fn set(&self, check: Check, reason: String, severity: Severity) {
        let mut failing = self.lock();
        failing.retain(|(c, ..)| *c != check);
        failing.push((check, reason, severity));
        failing.sort_by_key(|(c, ..)| *c);
    }

    /// `check` passes again.
    pub(crate) fn pass(&self, check: Check) {
        self.lock().retain(|(c, ..)| *c != check);
    }

    /// `Ok` when ready, with what degrades it if anything does; otherwise
    /// every reason it is not, in one line.
    pub(crate) fn status(&self) -> Result<Option<String>, String> {
        let failing = self.lock();
        let reasons = |severity| {
            let mut line = String::new();
            for (_, reason, _) in failing.iter().filter(|(.., s)| *s == severity) {
                let _ = write!(line, "{}{reason}", if line.is_empty() { "" } else { "; " });
            }
            // One line whatever a reason held (an I/O error's text, say).
            line.replace(['\r', '\n'], " ")
        };
        match reasons(Severity::NotReady) {
            not_ready if !not_ready.is_empty() => Err(not_ready),
            _ => Ok(Some(reasons(Severity::Degraded)).filter(|d| !d.is_empty())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Check, String, Severity)>> {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_no_check_fails_and_every_reason_is_told() {
        let readiness = Readiness::new();
        assert_eq!(readiness.status(), Err("starting".into()));
        readiness.pass(Check::Listening);
        assert_eq!(readiness.status(), Ok(None));
        readiness.fail(Check::Shutdown, "shutting down");
        readiness.fail(Check::Store, "cannot save:\ndisk full");
        assert_eq!(
            readiness.status(),
            Err("cannot save: disk full; shutting down".into())
        );
        readiness.pass(Check::Store);
        assert_eq!(readiness.status(), Err("shutting down".into()));
    }

    #[test]
    #[cfg(feature = "cluster")]
    fn a_degraded_part_is_told_while_ready_and_does_not_hide_a_failure() {
        let readiness = Readiness::new();
        readiness.pass(Check::Listening);
        readiness.degrade(Check::Redis(1), "redis shard 2: cannot be reached");
        assert_eq!(
            readiness.status(),
            Ok(Some("redis shard 2: cannot be reached".into()))
        );
        readiness.fail(Check::Redis(0), "redis shard 1: cannot be reached");
        assert_eq!(
            readiness.status(),
            Err("redis shard 1: cannot be reached".into())
        );
        readiness.pass(Check::Redis(0));
        readiness.pass(Check::Redis(1));
        assert_eq!(readiness.status(), Ok(None));
    }
}
