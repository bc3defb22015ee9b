//! Timings and limits of the chat core, each with a documented default.
//!
//! Every limit on what a peer may do is switched off by setting it to 0
//! (`Duration::ZERO` for durations), for benchmarks and trusted setups.

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
    /// v2: the most bytes one reply built from what users said or chose
    /// carries, counted as encoded JSON: a `history` leaves out the oldest
    /// messages past it (and says `complete: false`), a `userList` the last
    /// names (and says how many in `more`). So a reply never overflows a
    /// connection's send queue or a client's frame limit, whatever the
    /// messages hold. Default 256 KiB.
    pub reply_max_bytes: usize,
    /// Messages a connection may send per second, on average. Every text or
    /// binary frame counts, whatever it holds (a `login`, a `logout` and
    /// even malformed JSON all cost the server an answer, and some a
    /// broadcast to everyone); a frame past the limit is answered with
    /// `rateLimited` and otherwise ignored. Default 5; 0 turns the limit off.
    pub message_rate: u32,
    /// Messages a connection may send at once before `message_rate` applies
    /// (the token bucket's size). Default 10; 0 turns the limit off.
    pub message_burst: u32,
    /// Wrong secrets a peer address may give in one minute; past them, every
    /// login with a secret from that address gets `rateLimited` until the
    /// minute (counted from its first wrong secret) ends. Logins without a
    /// secret are never refused by it. Default 5; 0 turns the limit off.
    pub login_failures_per_minute: u32,
    /// How many peer addresses `login_failures_per_minute` tracks at once
    /// (and `new_names_per_minute`, separately), bounding their memory
    /// (about 100 bytes each) whatever the number of attacking addresses.
    /// While that many are tracked, logins with a secret from any other
    /// address get `rateLimited`, for at most a minute after the last wrong
    /// secret; new names from addresses beyond it are not limited (the
    /// ceiling `max_held_names` bounds them). Default 10 000.
    pub login_failure_addresses: usize,
    /// New names (logins that take a free name) one address may take per
    /// minute, on average; past it, such logins get `rateLimited`
    /// (reclaiming a name with its secret is never refused by it). IPv6
    /// addresses count per /64. Bounds how fast one host can reserve names
    /// it does not use. Default 10; 0 turns the limit off.
    pub new_names_per_minute: u32,
    /// New names one address may take at once before
    /// `new_names_per_minute` applies. Default 20; 0 turns the limit off.
    pub new_names_burst: u32,
    /// The most names held without any open connection (each waiting out
    /// its `login_ttl`). Past it, the one idle longest is released early,
    /// so a flood of logins cannot hold memory or names without bound.
    /// Default 100 000 (about 40 MB); 0: no ceiling.
    pub max_held_names: usize,
    /// A connection that holds no login this long after it opened (or after
    /// its login was logged out) is closed with 1008 "login timeout".
    /// Default 60 s; `Duration::ZERO` turns the limit off.
    pub login_timeout: Duration,
    /// WebSocket pings a peer may send per second, on average. The core
    /// asks for no pong past the limit (but a driver whose WebSocket library
    /// answers every ping itself, as chat-server's does, cannot withhold
    /// it); a peer that goes on to exceed it by another `peer_ping_burst`
    /// pings is closed with 1008 "ping flood".
    /// Default 2; 0 turns the limit off.
    pub peer_ping_rate: u32,
    /// Pings a peer may send at once before `peer_ping_rate` applies.
    /// Default 10; 0 turns the limit off.
    pub peer_ping_burst: u32,
    /// v2 presence notices (`loginBroadcast`, `logoutBroadcast`) the server
    /// sends per second, on average. Past the budget, joins and leaves are
    /// held and summarised in one `presence` frame as soon as it allows: a
    /// storm of N logins (every client reconnecting after a restart) costs
    /// each v2 connection a few frames a second instead of N. v1 connections
    /// always get every `loginBroadcast`, as the original protocol has it.
    /// Default 2: during a storm of 19,000 logins that is 38,000 frames a
    /// second over all connections, which leaves room for the chat.
    /// 0 turns pacing off (one notice per join or leave).
    pub presence_rate: u32,
    /// Presence notices sent at once before `presence_rate` applies.
    /// Default 20; 0 turns pacing off.
    pub presence_burst: u32,
    /// Messages kept per room and per direct conversation (v3); the lobby
    /// keeps `history_size`. Default 500.
    pub room_history: usize,
    /// Rooms one name may be in at once (the lobby and DMs not counted).
    /// Default 100.
    pub max_rooms_per_name: usize,
    /// Names one room may hold. Default 10,000.
    pub max_room_members: usize,
    /// Rooms one address may create a minute. Default 10; 0: no limit.
    pub rooms_per_address_per_minute: u32,
    /// Rooms in all (DMs not counted). Default 100,000.
    pub max_rooms: usize,
    /// New direct conversations one name may start a minute. Default 10; 0:
    /// no limit.
    pub new_dms_per_minute: u32,
    /// Server operators: operators of every room, the lobby included (names
    /// as given; compared by their key).
    pub operators: Vec<String>,
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
            reply_max_bytes: 256 * 1024,
            message_rate: 5,
            message_burst: 10,
            login_failures_per_minute: 5,
            login_failure_addresses: 10_000,
            new_names_per_minute: 10,
            new_names_burst: 20,
            max_held_names: 100_000,
            login_timeout: Duration::from_secs(60),
            peer_ping_rate: 2,
            peer_ping_burst: 10,
            presence_rate: 2,
            presence_burst: 20,
            room_history: 500,
            max_rooms_per_name: 100,
            max_room_members: 10_000,
            rooms_per_address_per_minute: 10,
            max_rooms: 100_000,
            new_dms_per_minute: 10,
            operators: Vec::new(),
        }
    }
}
