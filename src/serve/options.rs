//! What `chat-server` can be told: flags, their environment variables and
//! defaults.

use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::admission::AllowedOrigins;
pub use super::options::operators::Operators;
use super::options::operators::operator_names;
use super::proxied::{ClientIpHeader, TrustedProxies};
use crate::Config;

/// Host a WebSocket group chat that the original web frontend works against.
///
/// Every flag can also be set through the environment variable shown with it.
/// Durations read like `250ms`, `30s`, `5m` or `1h 30m`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "chat-server", version)]
pub struct Options {
    /// Address to listen on, as IP:PORT or HOST:PORT (`localhost:8080`: the
    /// host's first address). Port 0 picks a free port; the log line
    /// "listening on ws://…" (or wss://) tells which.
    #[arg(
        long,
        env = "CHAT_LISTEN",
        value_name = "ADDR",
        default_value = DEFAULT_LISTEN,
        value_parser = listen_address,
    )]
    pub listen: SocketAddr,

    /// Serve /healthz, /readyz and /metrics on this address (plain HTTP)
    /// instead of on the chat's port, which then answers them 404: for
    /// operators who do not expose them publicly. See README, "Monitoring".
    #[arg(
        long,
        env = "CHAT_ADMIN_LISTEN",
        value_name = "ADDR",
        value_parser = listen_address,
    )]
    pub admin_listen: Option<SocketAddr>,

    /// How log lines are written to stderr: `text` for people, `json` for
    /// log shippers (one JSON object a line, with the same fields). The
    /// level is set with RUST_LOG (default: info).
    #[arg(
        long,
        env = "CHAT_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Where names, their secrets (hashed), the latest messages and the
    /// message numbering are kept, so that a restart forgets nothing.
    /// Created on first start, readable by its owner only. See README, "Data".
    #[arg(
        long,
        env = "CHAT_DATA_DIR",
        value_name = "DIR",
        default_value = DEFAULT_DATA_DIR
    )]
    pub data_dir: PathBuf,

    /// Keep nothing: every name and message is forgotten when the server
    /// stops, and message numbers start again (under a new epoch). The data
    /// directory is not used.
    #[arg(long, env = "CHAT_IN_MEMORY")]
    pub in_memory: bool,

    /// Serve one chat from several nodes: Redis at this URL holds the names,
    /// their secrets (hashed), login TTLs, presence, the message numbering
    /// and history, and carries messages between nodes, so a client may use
    /// any node. `redis://HOST:PORT/DB`, or `rediss://` for TLS (a password:
    /// `redis://:PASSWORD@HOST`). With `rediss://` the system's CA
    /// certificates are trusted, or only those in the PEM file named by the
    /// SSL_CERT_FILE environment variable (a private CA). No data directory
    /// is used, so neither --data-dir nor --in-memory may be given with it.
    /// The node listens at once; it lets chat clients in, and /readyz says
    /// ready, once Redis answers. Several Redis shards: give the flag once
    /// for each (or a comma list); the first holds names, presence and the
    /// lobby, rooms spread over all. See README, "Running several nodes".
    //
    // Without the `cluster` feature: hidden, and refused with one line
    // saying why. Not left unknown, which clap would say of the flag but
    // not of CHAT_REDIS_URL: set for a cluster, that would start a node
    // that quietly keeps a chat of its own.
    #[cfg_attr(
        feature = "cluster",
        arg(
            long,
            env = "CHAT_REDIS_URL",
            value_name = "URL",
            value_parser = redis_url,
            value_delimiter = ',',
            action = clap::ArgAction::Append,
            conflicts_with_all = ["data_dir", "in_memory"],
        )
    )]
    #[cfg_attr(
        not(feature = "cluster"),
        arg(long, env = "CHAT_REDIS_URL", value_name = "URL", value_parser = redis_url, hide = true)
    )]
    pub redis_url: Vec<String>,

    /// With --redis-url: a node that has not told Redis it is alive for this
    /// long (it was killed, or cut off) counts as gone. Its users leave
    /// everyone's presence at most 1.2 times this after it stopped; their
    /// names stay held for --login-ttl. Nodes tell Redis every fifth of
    /// this; give every node the same value.
    #[cfg(feature = "cluster")]
    #[arg(
        long,
        env = "CHAT_NODE_TIMEOUT",
        value_name = "DURATION",
        default_value = span(DEFAULT_NODE_TIMEOUT),
        value_parser = positive_duration,
    )]
    pub node_timeout: Duration,

    /// Ping a connection that has been silent this long.
    #[arg(
        long,
        env = "CHAT_PING_INTERVAL",
        value_name = "DURATION",
        default_value = span(defaults().ping_interval),
        value_parser = positive_duration,
    )]
    pub ping_interval: Duration,

    /// Close a connection silent this long (no pong, no message) with
    /// 1000 "ping timeout".
    #[arg(
        long,
        env = "CHAT_EVICT_AFTER",
        value_name = "DURATION",
        default_value = span(defaults().evict_after),
        value_parser = positive_duration,
    )]
    pub evict_after: Duration,

    /// Release a name this long after the last connection holding it closed;
    /// until then only its secret can reclaim it.
    #[arg(
        long,
        env = "CHAT_LOGIN_TTL",
        value_name = "DURATION",
        default_value = span(defaults().login_ttl),
        value_parser = duration,
    )]
    pub login_ttl: Duration,

    /// Largest WebSocket frame, and largest message after reassembly, in
    /// bytes. A peer sending a larger one is closed with 1009.
    #[arg(
        long,
        env = "CHAT_MAX_FRAME_BYTES",
        value_name = "N",
        default_value_t = DEFAULT_MAX_FRAME_BYTES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(128..),
    )]
    pub max_frame_bytes: usize,

    /// Longest chat message, in characters; a longer one is refused with
    /// the error messageTooLong.
    #[arg(
        long,
        env = "CHAT_MAX_MESSAGE_CHARS",
        value_name = "N",
        default_value_t = defaults().max_message_chars,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
    )]
    pub max_message_chars: usize,

    /// Recent messages kept for protocol v2 clients to catch up on after a
    /// reconnect; 0 keeps none.
    #[arg(
        long,
        env = "CHAT_HISTORY_SIZE",
        value_name = "N",
        default_value_t = defaults().history_size,
    )]
    pub history_size: usize,

    /// How many of the latest messages a protocol v2 client logging in
    /// afresh (without `since`) is sent, for context.
    #[arg(
        long,
        env = "CHAT_HISTORY_ON_JOIN",
        value_name = "N",
        default_value_t = defaults().history_on_join,
    )]
    pub history_on_join: usize,

    /// Bytes that may wait to be sent to one connection. A reader that falls
    /// further behind is closed with 1008 "too slow", so it never delays
    /// anyone else.
    #[arg(
        long,
        env = "CHAT_SEND_QUEUE_BYTES",
        value_name = "N",
        default_value_t = DEFAULT_SEND_QUEUE_BYTES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
    )]
    pub send_queue_bytes: usize,

    /// On SIGINT or SIGTERM every connection gets Close 1001 "server
    /// shutting down"; wait this long for them to close before exiting.
    #[arg(
        long,
        env = "CHAT_SHUTDOWN_TIMEOUT",
        value_name = "DURATION",
        default_value = span(DEFAULT_SHUTDOWN_TIMEOUT),
        value_parser = duration,
    )]
    pub shutdown_timeout: Duration,

    /// Messages (text or binary frames) one connection may send per second;
    /// more are refused with the error rateLimited. 0 switches the limit off.
    #[arg(
        long,
        env = "CHAT_MESSAGE_RATE",
        value_name = "N",
        default_value_t = defaults().message_rate,
    )]
    pub message_rate: u32,

    /// Messages one connection may send at once before --message-rate
    /// applies. 0 switches the limit off.
    #[arg(
        long,
        env = "CHAT_MESSAGE_BURST",
        value_name = "N",
        default_value_t = defaults().message_burst,
    )]
    pub message_burst: u32,

    /// Wrong-secret logins allowed per peer IP address (IPv6: per /64) per
    /// minute; past that, logins with a secret from that address get
    /// rateLimited until the minute ends (guards against guessing secrets).
    /// 0 switches it off.
    #[arg(
        long,
        env = "CHAT_LOGIN_FAILURES_PER_MINUTE",
        value_name = "N",
        default_value_t = defaults().login_failures_per_minute,
    )]
    pub login_failures_per_minute: u32,

    /// New names (logins that take a free name) one IP address may take per
    /// minute; past that, rateLimited. Reclaiming a name with its secret does
    /// not count. IPv6 addresses count per /64. 0 switches the limit off.
    #[arg(
        long,
        env = "CHAT_NEW_NAMES_PER_MINUTE",
        value_name = "N",
        default_value_t = defaults().new_names_per_minute
    )]
    pub new_names_per_minute: u32,

    /// New names one address may take at once before --new-names-per-minute
    /// applies. 0 switches the limit off.
    #[arg(
        long,
        env = "CHAT_NEW_NAMES_BURST",
        value_name = "N",
        default_value_t = defaults().new_names_burst
    )]
    pub new_names_burst: u32,

    /// Most names held with no connection open (each waiting out
    /// --login-ttl, about 400 bytes each); past it, the name idle longest is
    /// released early. 0: no ceiling.
    #[arg(
        long,
        env = "CHAT_MAX_HELD_NAMES",
        value_name = "N",
        default_value_t = defaults().max_held_names
    )]
    pub max_held_names: usize,

    /// Close a connection that has not logged in this long after opening
    /// with 1008 "login timeout". 0s switches it off.
    #[arg(
        long,
        env = "CHAT_LOGIN_TIMEOUT",
        value_name = "DURATION",
        default_value = span(defaults().login_timeout),
        value_parser = duration,
    )]
    pub login_timeout: Duration,

    /// WebSocket pings one peer may send per second; a peer that exceeds this
    /// by another --peer-ping-burst is closed with 1008 "ping flood" (pings
    /// are still answered until then). 0 switches it off.
    #[arg(
        long,
        env = "CHAT_PEER_PING_RATE",
        value_name = "N",
        default_value_t = defaults().peer_ping_rate,
    )]
    pub peer_ping_rate: u32,

    /// Pings one peer may send at once before --peer-ping-rate applies.
    /// 0 switches the limit off.
    #[arg(
        long,
        env = "CHAT_PEER_PING_BURST",
        value_name = "N",
        default_value_t = defaults().peer_ping_burst,
    )]
    pub peer_ping_burst: u32,

    /// Join and leave notices per second for protocol-v2 clients. Past this
    /// budget they are summarised in one `presence` message as often as it
    /// allows, so a crowd logging in at once (everyone reconnecting after a
    /// restart) costs each v2 client a few frames a second, not one per
    /// login. v1 clients always get every loginBroadcast. 0: no pacing.
    #[arg(
        long,
        env = "CHAT_PRESENCE_RATE",
        value_name = "N",
        default_value_t = defaults().presence_rate,
    )]
    pub presence_rate: u32,

    /// Join and leave notices sent at once before --presence-rate applies.
    /// 0: no pacing.
    #[arg(
        long,
        env = "CHAT_PRESENCE_BURST",
        value_name = "N",
        default_value_t = defaults().presence_burst,
    )]
    pub presence_burst: u32,

    /// Protocol v3: messages kept per room and per direct conversation, for
    /// catch-up and paging (older ones are dropped). The lobby keeps
    /// --history-size.
    #[arg(
        long,
        env = "CHAT_ROOM_HISTORY",
        value_name = "N",
        default_value_t = defaults().room_history,
    )]
    pub room_history: usize,

    /// The highest protocol version to speak (1, 2 or 3): clients offering
    /// a later one get this one. For a rolling upgrade of a cluster (keep
    /// every node at 2 until all run this version), or to try a client's
    /// fallback.
    #[arg(
        long,
        env = "CHAT_MAX_PROTOCOL",
        value_name = "VERSION",
        default_value_t = 3,
        value_parser = clap::value_parser!(u8).range(1..=3),
    )]
    pub max_protocol: u8,

    /// Rooms one name may be in at once (the lobby and direct conversations
    /// not counted); a `join` past it is refused with limitReached.
    #[arg(
        long,
        env = "CHAT_MAX_ROOMS_PER_NAME",
        value_name = "N",
        default_value_t = defaults().max_rooms_per_name,
    )]
    pub max_rooms_per_name: usize,

    /// Names one room may hold; a `join` or `invite` past it is refused
    /// with limitReached.
    #[arg(
        long,
        env = "CHAT_MAX_ROOM_MEMBERS",
        value_name = "N",
        default_value_t = defaults().max_room_members,
    )]
    pub max_room_members: usize,

    /// Rooms one IP address (IPv6: one /64) may create per minute; a `join`
    /// that would create one more is refused with limitReached. 0 switches
    /// the limit off.
    #[arg(
        long,
        env = "CHAT_ROOMS_PER_ADDRESS_PER_MINUTE",
        value_name = "N",
        default_value_t = defaults().rooms_per_address_per_minute,
    )]
    pub rooms_per_address_per_minute: u32,

    /// Rooms in all (direct conversations not counted); a `join` that would
    /// create one more is refused with limitReached.
    #[arg(
        long,
        env = "CHAT_MAX_ROOMS",
        value_name = "N",
        default_value_t = defaults().max_rooms,
    )]
    pub max_rooms: usize,

    /// Direct conversations one name may start per minute (against DM
    /// spam); the first message of one more is refused with limitReached.
    /// Writing in a conversation already started never counts. 0 switches
    /// the limit off.
    #[arg(
        long,
        env = "CHAT_NEW_DMS_PER_MINUTE",
        value_name = "N",
        default_value_t = defaults().new_dms_per_minute,
    )]
    pub new_dms_per_minute: u32,

    /// Server operators: names, separated by commas (`alice,bob`), that are
    /// operators of every room, the lobby included (they may set topics,
    /// kick, ban and mute anywhere; a room's operators cannot act against
    /// them). Each must be a valid user name; a name is theirs once logged
    /// in with it, so hold these names (log in with them, keep their
    /// secrets). Without it: none.
    #[arg(
        long,
        env = "CHAT_OPERATORS",
        value_name = "NAMES",
        value_parser = operator_names,
    )]
    pub operators: Option<Operators>,

    /// WebSocket connections served at once; past this, new WebSocket
    /// handshakes are refused with HTTP 503 and everyone connected carries
    /// on. Connections still in their handshake (TLS, the request, the
    /// upgrade) are counted from accept: as many more as this (at most
    /// 1024), and per address --max-connections-per-ip of them (or else an
    /// eighth, at least 16); past that, a new connection is closed at once.
    /// The open-file limit is raised to the hard limit at start, with a
    /// warning if this cannot be reached under it. 0: no limit.
    #[arg(
        long,
        env = "CHAT_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
    )]
    pub max_connections: usize,

    /// Connections served at once from one IP address (IPv6: one /64);
    /// past this, HTTP 503. 0: no limit (right where many users share an
    /// address, e.g. behind NAT, or a proxy not in --trusted-proxies).
    #[arg(
        long,
        env = "CHAT_MAX_CONNECTIONS_PER_IP",
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP,
    )]
    pub max_connections_per_ip: usize,

    /// Origins whose web pages may connect: `self`, the page's own origin
    /// (http:// or https:// and the Host the browser asked for, such as
    /// the page this server serves at /); or origins, comma-separated and
    /// exact, like `https://chat.example.com,http://localhost:8000` (list
    /// this server's own too if its page is used); or `*`, any. A handshake
    /// with another Origin gets HTTP 403 (against cross-site WebSocket
    /// hijacking). A handshake without an Origin header (not a browser) is
    /// always allowed.
    #[arg(
        long,
        env = "CHAT_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        default_value = "self"
    )]
    pub allowed_origins: AllowedOrigins,

    /// Reverse proxies and load balancers, as CIDRs or addresses separated
    /// by commas (`127.0.0.1,10.0.0.0/8,fd00::/8`), whose word is taken for
    /// their clients' addresses (--client-ip-header, --proxy-protocol):
    /// every per-address limit, log line and the location others see then
    /// use the client's. Whatever other peers send is ignored. `none`: every
    /// peer's address is its own. See README, "Behind a reverse proxy".
    #[arg(
        long,
        env = "CHAT_TRUSTED_PROXIES",
        value_name = "CIDRS",
        default_value = "none"
    )]
    pub trusted_proxies: TrustedProxies,

    /// The header a trusted proxy puts the client's address in: the
    /// rightmost address that is not itself a trusted proxy is the client's.
    /// Only this one is read, since a proxy passes the other on as the
    /// client wrote it. `forwarded` is RFC 7239's `Forwarded: for=…`.
    #[arg(
        long,
        env = "CHAT_CLIENT_IP_HEADER",
        value_name = "HEADER",
        default_value = "x-forwarded-for"
    )]
    pub client_ip_header: ClientIpHeader,

    /// Every connection from --trusted-proxies starts with a PROXY protocol
    /// header (v1 or v2, as HAProxy's send-proxy and cloud load balancers
    /// send), which gives the client's address; one without it is closed.
    /// Other peers' connections are read as plain ones, where a PROXY
    /// header gets HTTP 400.
    #[arg(long, env = "CHAT_PROXY_PROTOCOL")]
    pub proxy_protocol: bool,

    /// While messages keep coming, wake each connection's writer at most
    /// this often, so that it writes everything queued meanwhile in one
    /// system call: fewer, larger writes for the price of at most this much
    /// latency (after a quiet spell, the next message goes out at once).
    /// 0s: write every message as soon as it is handled.
    #[arg(
        long,
        env = "CHAT_FLUSH_INTERVAL",
        value_name = "DURATION",
        default_value = span(DEFAULT_FLUSH_INTERVAL),
        value_parser = duration,
    )]
    pub flush_interval: Duration,

    /// Close a TCP connection that has not completed its WebSocket upgrade
    /// this long after connecting.
    #[arg(
        long,
        env = "CHAT_HANDSHAKE_TIMEOUT",
        value_name = "DURATION",
        default_value = span(DEFAULT_HANDSHAKE_TIMEOUT),
        value_parser = positive_duration,
    )]
    pub handshake_timeout: Duration,
    /// Serve wss:// (TLS) with the certificate chain in this PEM file: the
    /// server's certificate first, then any intermediates. Needs --tls-key.
    /// Without both, the server speaks plain ws:// (for a LAN, or behind a
    /// reverse proxy that terminates TLS).
    #[arg(long, env = "CHAT_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert, in PEM: PKCS#8 ("PRIVATE KEY"), RSA
    /// ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"). Needs --tls-cert.
    #[arg(long, env = "CHAT_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Threads running connection I/O; `None` means one per CPU. Not a flag:
    /// for embedders such as tests and load generators.
    #[arg(skip)]
    pub threads: Option<NonZeroUsize>,
}

/// The `--log-format` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    // No doc comments: clap would list the values in a block of their own.
    #[default]
    Text,
    Json,
}

/// `--listen` when not given.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// `--data-dir` when not given: in the working directory.
const DEFAULT_DATA_DIR: &str = "wschat-data";
const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
const DEFAULT_SEND_QUEUE_BYTES: usize = 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 0;
const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(5);
#[cfg(feature = "cluster")]
/// Long enough to ride out a slow Redis or a short network hiccup, short
/// enough that a killed node's users are seen gone within seconds.
const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that has not completed its upgrade by then (its TLS handshake
/// included) is dropped.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The chat core's settings come from the core: `Config::default()` is the
/// one place their defaults are written.
fn defaults() -> Config {
    Config::default()
}

/// A duration as `--help` shows it: `5ms`, `60s`, `5m`.
fn span(duration: Duration) -> String {
    let (secs, millis) = (duration.as_secs(), duration.subsec_millis());
    match (secs, millis) {
        (0, ms) => format!("{ms}ms"),
        (s, 0) if s >= 120 && s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ => humantime::format_duration(duration).to_string(),
    }
}

impl Default for Options {
    /// The documented defaults: what running with no flags and no `CHAT_*`
    /// variables gives.
    fn default() -> Self {
        Options::parse_ignoring_env(["chat-server"]).expect("every flag has a default that parses")
    }
}

impl Options {
    /// Parses `args` as flags alone, whatever `CHAT_*` variables are set.
    pub fn parse_ignoring_env<I, T>(args: I) -> Result<Options, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = Options::command().mut_args(|arg| arg.env(None));
        Options::from_arg_matches(&command.try_get_matches_from(args)?)
    }

    /// The chat core's settings (the same names as the flags).
    pub fn config(&self) -> Config {
        Config {
            ping_interval: self.ping_interval,
            evict_after: self.evict_after,
            login_ttl: self.login_ttl,
            max_message_chars: self.max_message_chars,
            history_size: self.history_size,
            history_on_join: self.history_on_join,
            message_rate: self.message_rate,
            message_burst: self.message_burst,
            login_failures_per_minute: self.login_failures_per_minute,
            new_names_per_minute: self.new_names_per_minute,
            new_names_burst: self.new_names_burst,
            max_held_names: self.max_held_names,
            login_timeout: self.login_timeout,
            // A reply (a catch-up, a user list) must fit well within the
            // connection's send queue, beside what else is queued.
            reply_max_bytes: defaults().reply_max_bytes.min(self.send_queue_bytes / 4),
            peer_ping_rate: self.peer_ping_rate,
            peer_ping_burst: self.peer_ping_burst,
            presence_rate: self.presence_rate,
            presence_burst: self.presence_burst,
            room_history: self.room_history,
            max_rooms_per_name: self.max_rooms_per_name,
            max_room_members: self.max_room_members,
            rooms_per_address_per_minute: self.rooms_per_address_per_minute,
            max_rooms: self.max_rooms,
            new_dms_per_minute: self.new_dms_per_minute,
            operators: self
                .operators
                .as_ref()
                .map(|o| o.names().to_vec())
                .unwrap_or_default(),
            ..defaults()
        }
    }
}

/// Why a set of options cannot work together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    #[error(
        "--evict-after ({evict}) must be longer than --ping-interval ({ping}): a silent \
         connection would be closed before it was ever pinged"
    )]
    EvictBeforePing { evict: String, ping: String },
    #[error(
        "--proxy-protocol needs --trusted-proxies: the PROXY header is read only from the \
         load balancers listed there"
    )]
    ProxyProtocolUntrusted,
}

impl Options {
    /// Checks what each flag alone cannot: that the flags make sense together.
    pub fn check(&self) -> Result<(), OptionsError> {
        if self.evict_after <= self.ping_interval {
            return Err(OptionsError::EvictBeforePing {
                evict: span(self.evict_after),
                ping: span(self.ping_interval),
            });
        }
        if self.proxy_protocol && self.trusted_proxies.is_empty() {
            return Err(OptionsError::ProxyProtocolUntrusted);
        }
        Ok(())
    }
}

/// `IP:PORT`, or `HOST:PORT` resolved to the host's first address.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err("expected IP:PORT or HOST:PORT, such as 127.0.0.1:8080".into());
    }
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {text}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{text} resolves to no address"))
}

/// `redis://…` or `rediss://…`, checked as the redis crate reads it.
#[cfg(feature = "cluster")]
fn redis_url(text: &str) -> Result<String, String> {
    super::cluster::check_url(text)?;
    Ok(text.to_owned())
}

#[cfg(not(feature = "cluster"))]
fn redis_url(_: &str) -> Result<String, String> {
    Err(NO_CLUSTER.into())
}

/// Why `--redis-url` is refused by a chat-server built without Redis.
#[cfg(not(feature = "cluster"))]
pub(crate) const NO_CLUSTER: &str = "this chat-server was built without the `cluster` feature, \
     so it cannot use Redis (build it with the default features)";

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e} (expected a duration such as 250ms, 30s or 5m)"))
}

/// Zero would make the core ping or evict in a busy loop.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        Duration::ZERO => Err("must be greater than zero".into()),
        d => Ok(d),
    }
}

mod operators;

#[cfg(test)]
mod tests;
