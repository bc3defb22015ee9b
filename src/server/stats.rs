//! Counts of what the core has done, for a driver's metrics. Plain
//! counters, read whenever the driver likes (`Server::stats`): counting
//! costs an increment, and nothing is queued for a driver that does not
//! care.

use crate::protocol::ErrorCode;

/// What the core has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Chat messages accepted and broadcast.
    pub messages: u64,
    /// `errorMessage`s sent, by code, in the order of [`ErrorCode::ALL`].
    errors: [u64; ErrorCode::ALL.len()],
}

impl Stats {
    /// `errorMessage`s sent with each code (codes never sent included).
    pub fn errors(&self) -> impl Iterator<Item = (ErrorCode, u64)> + '_ {
        ErrorCode::ALL
            .iter()
            .copied()
            .zip(self.errors.iter().copied())
    }

    /// `errorMessage`s sent with `code`.
    pub fn errors_of(&self, code: ErrorCode) -> u64 {
        ErrorCode::ALL
            .iter()
            .position(|&c| c == code)
            .map_or(0, |i| self.errors[i])
    }

    pub(crate) fn count_error(&mut self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|&c| c == code) {
            self.errors[i] += 1;
        }
    }
}
