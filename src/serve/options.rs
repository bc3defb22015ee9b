//! What `chat-server` can be told: flags, their environment variables and
//! defaults.

use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::admission::AllowedOrigins;
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
    /// ready, once Redis answers. See README, "Running several nodes".
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
            conflicts_with_all = ["data_dir", "in_memory"],
        )
    )]
    #[cfg_attr(
        not(feature = "cluster"),
        arg(long, env = "CHAT_REDIS_URL", value_name = "URL", value_parser = redis_url, hide = true)
    )]
    pub redis_url: Option<String>,

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

    /// Wrong-secret logins allowed per peer IP address per minute; past that,
    /// logins with a secret from that address get rateLimited until the
    /// minute ends (guards against guessing secrets). 0 switches it off.
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

    /// Connections served at once; past this, new WebSocket handshakes are
    /// refused with HTTP 503 and everyone connected carries on. 0: no limit.
    #[arg(
        long,
        env = "CHAT_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
    )]
    pub max_connections: usize,

    /// Connections served at once from one IP address; past this, HTTP 503.
    /// 0: no limit (right where many users share an address, e.g. behind a
    /// proxy or NAT).
    #[arg(
        long,
        env = "CHAT_MAX_CONNECTIONS_PER_IP",
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP,
    )]
    pub max_connections_per_ip: usize,

    /// Origins whose web pages may connect, comma-separated and exact, like
    /// `https://chat.example.com,http://localhost:8000`; a handshake with
    /// another Origin gets HTTP 403 (against cross-site WebSocket
    /// hijacking). A handshake without an Origin header (not a browser) is
    /// always allowed. `*`: any origin.
    #[arg(
        long,
        env = "CHAT_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        default_value = "*"
    )]
    pub allowed_origins: AllowedOrigins,

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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::parse_ignoring_env(std::iter::once("chat-server").chain(args.iter().copied()))
    }

    #[test]
    fn the_core_defaults_are_the_flags_defaults() {
        assert_eq!(Options::default().config(), Config::default());
        let small = parse(&["--send-queue-bytes", "65536"]).unwrap().config();
        assert_eq!(small.reply_max_bytes, 16384);
        let defaults = Options::default();
        assert_eq!(defaults.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(defaults.flush_interval, Duration::from_millis(5));
        assert_eq!(defaults.allowed_origins, AllowedOrigins::Any);
    }

    #[test]
    fn every_flag_has_an_environment_variable_and_a_documented_default() {
        for arg in Options::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            assert!(
                arg.get_env().is_some(),
                "--{long} has no environment variable"
            );
            let optional = ["tls-cert", "tls-key", "admin-listen", "redis-url"].contains(&long);
            // A switch (such as --in-memory) is simply off unless given.
            let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
            assert_eq!(
                arg.get_default_values().is_empty(),
                optional || switch,
                "--{long}"
            );
        }
    }

    #[test]
    fn the_admin_endpoints_and_the_log_format_read_as_documented() {
        let defaults = Options::default();
        assert_eq!(
            (defaults.admin_listen, defaults.log_format),
            (None, LogFormat::Text)
        );
        let o = parse(&["--admin-listen", "127.0.0.1:9090", "--log-format", "json"]).unwrap();
        assert_eq!(
            o.admin_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9090)))
        );
        assert_eq!(o.log_format, LogFormat::Json);
    }

    #[test]
    fn listen_takes_a_host_name() {
        let local = parse(&["--listen", "localhost:0"]).unwrap().listen;
        assert!(local.ip().is_loopback(), "{local}");
        for bad in ["localhost", "nowhere.invalid:80", "127.0.0.1:99999"] {
            let e = parse(&["--listen", bad]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("--listen"), "{bad}: {e}");
        }
    }

    #[test]
    fn eviction_before_the_first_ping_is_refused() {
        let o = parse(&["--ping-interval", "60s", "--evict-after", "30s"]).unwrap();
        assert_eq!(
            o.check().unwrap_err().to_string(),
            "--evict-after (30s) must be longer than --ping-interval (60s): a silent \
             connection would be closed before it was ever pinged"
        );
        let same = parse(&["--ping-interval", "1m", "--evict-after", "60s"]).unwrap();
        assert!(same.check().is_err());
        assert_eq!(Options::default().check(), Ok(()));
    }

    #[test]
    fn durations_read_like_humans_write_them() {
        let o = parse(&["--ping-interval", "250ms", "--evict-after", "1m 30s"]).unwrap();
        assert_eq!(o.ping_interval, Duration::from_millis(250));
        assert_eq!(o.evict_after, Duration::from_secs(90));
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_flag() {
        for args in [
            &["--ping-interval", "soon"][..],
            &["--ping-interval", "0s"],
            &["--max-frame-bytes", "12"],
            &["--send-queue-bytes", "0"],
            &["--message-rate", "lots"],
            &["--login-timeout", "never"],
            &["--listen", "nowhere"],
            &["--max-connections", "10k"],
            &["--max-connections", "many"],
            &["--max-connections-per-ip", "1.5"],
            &["--allowed-origins", "chat.example.com"],
            &["--allowed-origins", "https://chat.example.com/"],
            &["--allowed-origins", ""],
            &["--handshake-timeout", "0s"],
            &["--handshake-timeout", "later"],
            &["--admin-listen", "nowhere"],
            &["--log-format", "xml"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(args[0]), "{args:?}: {e}");
        }
    }

    #[test]
    fn connection_limits_and_origins_read_as_documented() {
        let o = parse(&[
            "--max-connections",
            "0",
            "--max-connections-per-ip",
            "8",
            "--allowed-origins",
            "https://chat.example.com, http://localhost:8000",
            "--handshake-timeout",
            "1s",
        ])
        .unwrap();
        assert_eq!((o.max_connections, o.max_connections_per_ip), (0, 8));
        assert_eq!(
            o.allowed_origins,
            AllowedOrigins::Only(vec![
                "https://chat.example.com".into(),
                "http://localhost:8000".into()
            ])
        );
        assert_eq!(o.handshake_timeout, Duration::from_secs(1));
    }

    #[test]
    fn tls_takes_both_files_or_neither() {
        let both = parse(&["--tls-cert", "cert.pem", "--tls-key", "key.pem"]).unwrap();
        assert_eq!(both.tls_cert, Some(PathBuf::from("cert.pem")));
        assert_eq!(both.tls_key, Some(PathBuf::from("key.pem")));
        for (given, missing) in [("--tls-cert", "--tls-key"), ("--tls-key", "--tls-cert")] {
            let e = parse(&[given, "file.pem"]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
            assert_eq!(e.exit_code(), 2);
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default();
            assert!(
                message.contains(&format!("{missing} <FILE>")),
                "{given}: {message}"
            );
            assert!(first.contains("required"), "{given}: {message}");
        }
    }

    #[cfg(not(feature = "cluster"))]
    #[test]
    fn without_the_cluster_feature_redis_url_is_hidden_and_refused_in_one_line() {
        let help = Options::command().render_long_help().to_string();
        assert!(!help.contains("redis"), "{help}");
        assert!(!help.contains("--node-timeout"), "{help}");
        let e = parse(&["--redis-url", "redis://127.0.0.1"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let message = e.to_string();
        assert!(message.contains("--redis-url"), "{message}");
        assert!(
            message.contains("built without the `cluster` feature"),
            "{message}"
        );
        // The environment variable too, which an unknown flag would not be.
        let command = Options::command();
        let from_env = command
            .get_arguments()
            .find(|a| a.get_long() == Some("redis-url"));
        assert_eq!(
            from_env.and_then(|a| a.get_env()),
            Some(std::ffi::OsStr::new("CHAT_REDIS_URL"))
        );
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn redis_takes_the_place_of_the_data_directory() {
        let o = parse(&["--redis-url", "redis://127.0.0.1:6379/2"]).unwrap();
        assert_eq!(o.redis_url.as_deref(), Some("redis://127.0.0.1:6379/2"));
        assert!(parse(&["--redis-url", "rediss://redis.example.com"]).is_ok());
        for other in [&["--in-memory"][..], &["--data-dir", "/var/lib/wschat"]] {
            let args = [&["--redis-url", "redis://127.0.0.1"][..], other].concat();
            let e = parse(&args).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{e}");
            assert!(e.to_string().contains(other[0]), "{e}");
        }
        for bad in [
            "127.0.0.1:6379",
            "http://127.0.0.1",
            "redis://",
            "redis://h:port",
        ] {
            let e = parse(&["--redis-url", bad]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("--redis-url"), "{bad}: {e}");
        }
        let o = parse(&["--node-timeout", "3s"]).unwrap();
        assert_eq!(o.node_timeout, Duration::from_secs(3));
        assert_eq!(Options::default().node_timeout, DEFAULT_NODE_TIMEOUT);
    }
}
