//! Whether this node should be sent users (`/readyz`): ready while no
//! check fails. Each part that can make the node unfit to take logins
//! reports under its own [`Check`], so `/readyz` can say why in one line
//! and one part recovering never hides another's failure.

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

/// The checks failing now, each with its reason.
#[derive(Debug)]
pub(crate) struct Readiness {
    failing: Mutex<Vec<(Check, String)>>,
}

impl Readiness {
    /// Starts not ready: not listening yet.
    pub(crate) fn new() -> Readiness {
        Readiness {
            failing: Mutex::new(vec![(Check::Listening, "starting".into())]),
        }
    }

    /// `check` fails, for `reason` (replacing an earlier reason).
    pub(crate) fn fail(&self, check: Check, reason: impl Into<String>) {
        let mut failing = self.lock();
        failing.retain(|(c, _)| *c != check);
        failing.push((check, reason.into()));
        failing.sort_by_key(|(c, _)| *c);
    }

    /// `check` passes again.
    pub(crate) fn pass(&self, check: Check) {
        self.lock().retain(|(c, _)| *c != check);
    }

    /// `Ok` when ready; otherwise every reason, in one line.
    pub(crate) fn status(&self) -> Result<(), String> {
        let failing = self.lock();
        if failing.is_empty() {
            return Ok(());
        }
        let mut line = String::new();
        for (i, (_, reason)) in failing.iter().enumerate() {
            let _ = write!(line, "{}{reason}", if i > 0 { "; " } else { "" });
        }
        // One line whatever a reason held (an I/O error's text, say).
        Err(line.replace(['\r', '\n'], " "))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Check, String)>> {
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
        assert_eq!(readiness.status(), Ok(()));
        readiness.fail(Check::Shutdown, "shutting down");
        readiness.fail(Check::Store, "cannot save:\ndisk full");
        assert_eq!(
            readiness.status(),
            Err("cannot save: disk full; shutting down".into())
        );
        readiness.pass(Check::Store);
        assert_eq!(readiness.status(), Err("shutting down".into()));
    }
}
