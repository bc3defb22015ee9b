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
    /// v2: how many recent messages the server keeps for catch-up after a
    /// reconnect. Default 1000.
    pub history_size: usize,
    /// v2: how many recent messages a login without `since` is sent, so a
    /// newcomer has context. Default 50.
    pub history_on_join: usize,
    /// v2: the most message text one `history` reply carries, in bytes; older
    /// messages past it are left out (and `complete` is false), so a catch-up
    /// never overflows a connection's send queue. Default 256 KiB.
    pub history_max_bytes: usize,
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
            history_size: 1000,
            history_on_join: 50,
            history_max_bytes: 256 * 1024,
        }
    }
}
