//! Timings and limits of the chat core, each with a documented default.

use std::time::Duration;

/// Timings and limits of the chat core. `Config::default()` gives the values
/// documented on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// A connection silent this long is pinged. Default 60 s.
    pub ping_interval: Duration,
    /// Delay before re-sending an unanswered ping; doubles with each retry,
    /// capped at `ping_interval`. Default 1 s.
    pub ping_retry: Duration,
    /// A connection silent this long is closed with 1000 "ping timeout".
    /// Default 5 min.
    pub evict_after: Duration,
    /// A login whose last connection closed is released this long after that
    /// close. Default 10 min.
    pub login_ttl: Duration,
    /// Longest accepted `textFromUser`, in characters. Default 4000.
    pub max_message_chars: usize,
    /// Longest accepted username, in characters after NFC. Default 32.
    pub max_username_chars: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ping_interval: Duration::from_secs(60),
            ping_retry: Duration::from_secs(1),
            evict_after: Duration::from_secs(5 * 60),
            login_ttl: Duration::from_secs(10 * 60),
            max_message_chars: 4000,
            max_username_chars: 32,
        }
    }
}
