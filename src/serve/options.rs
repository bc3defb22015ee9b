//! What `chat-server` can be told: flags, their environment variables and
//! defaults.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::admission::AllowedOrigins;
use crate::Config;

/// Host a WebSocket group chat that the original web frontend works against.
///
/// Every flag can also be set through the environment variable shown with it.
/// Durations read like `250ms`, `30s`, `5m` or `1h 30m`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "chat-server", version)]
pub struct Options {
    /// Address to listen on, as IP:PORT. Port 0 picks a free port; the log
    /// line "listening on ws://…" (or wss://) tells which.
    #[arg(
        long,
        env = "CHAT_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Ping a connection that has been silent this long.
    #[arg(long, env = "CHAT_PING_INTERVAL", value_name = "DURATION", default_value = "60s", value_parser = positive_duration)]
    pub ping_interval: Duration,

    /// Close a connection silent this long (no pong, no message) with
    /// 1000 "ping timeout".
    #[arg(long, env = "CHAT_EVICT_AFTER", value_name = "DURATION", default_value = "5m", value_parser = positive_duration)]
    pub evict_after: Duration,

    /// Release a name this long after the last connection holding it closed;
    /// until then only its secret can reclaim it.
    #[arg(long, env = "CHAT_LOGIN_TTL", value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub login_ttl: Duration,

    /// Largest WebSocket frame, and largest message after reassembly, in
    /// bytes. A peer sending a larger one is closed with 1009.
    #[arg(long, env = "CHAT_MAX_FRAME_BYTES", value_name = "N", default_value = "65536",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(128..))]
    pub max_frame_bytes: usize,

    /// Longest chat message, in characters; a longer one is refused with
    /// the error messageTooLong.
    #[arg(long, env = "CHAT_MAX_MESSAGE_CHARS", value_name = "N", default_value = "4000",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_message_chars: usize,

    /// Recent messages kept for protocol v2 clients to catch up on after a
    /// reconnect; 0 keeps none.
    #[arg(
        long,
        env = "CHAT_HISTORY_SIZE",
        value_name = "N",
        default_value = "1000"
    )]
    pub history_size: usize,

    /// How many of the latest messages a protocol v2 client logging in
    /// afresh (without `since`) is sent, for context.
    #[arg(
        long,
        env = "CHAT_HISTORY_ON_JOIN",
        value_name = "N",
        default_value = "50"
    )]
    pub history_on_join: usize,

    /// Bytes that may wait to be sent to one connection. A reader that falls
    /// further behind is closed with 1008 "too slow", so it never delays
    /// anyone else.
    #[arg(long, env = "CHAT_SEND_QUEUE_BYTES", value_name = "N", default_value = "1048576",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub send_queue_bytes: usize,

    /// On SIGINT or SIGTERM every connection gets Close 1001 "server
    /// shutting down"; wait this long for them to close before exiting.
    #[arg(long, env = "CHAT_SHUTDOWN_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub shutdown_timeout: Duration,

    /// Messages (text or binary frames) one connection may send per second;
    /// more are refused with the error rateLimited. 0 switches the limit off.
    #[arg(long, env = "CHAT_MESSAGE_RATE", value_name = "N", default_value = "5")]
    pub message_rate: u32,

    /// Messages one connection may send at once before --message-rate
    /// applies. 0 switches the limit off.
    #[arg(
        long,
        env = "CHAT_MESSAGE_BURST",
        value_name = "N",
        default_value = "10"
    )]
    pub message_burst: u32,

    /// Wrong-secret logins allowed per peer IP address per minute; past that,
    /// logins with a secret from that address get rateLimited until the
    /// minute ends (guards against guessing secrets). 0 switches it off.
    #[arg(
        long,
        env = "CHAT_LOGIN_FAILURES_PER_MINUTE",
        value_name = "N",
        default_value = "5"
    )]
    pub login_failures_per_minute: u32,

    /// Close a connection that has not logged in this long after opening
    /// with 1008 "login timeout". 0s switches it off.
    #[arg(long, env = "CHAT_LOGIN_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub login_timeout: Duration,

    /// WebSocket pings one peer may send per second; more get no pong, and a
    /// sustained flood is closed with 1008 "ping flood". 0 switches it off.
    #[arg(
        long,
        env = "CHAT_PEER_PING_RATE",
        value_name = "N",
        default_value = "2"
    )]
    pub peer_ping_rate: u32,

    /// Pings one peer may send at once before --peer-ping-rate applies.
    /// 0 switches the limit off.
    #[arg(
        long,
        env = "CHAT_PEER_PING_BURST",
        value_name = "N",
        default_value = "10"
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
        default_value = "2"
    )]
    pub presence_rate: u32,

    /// Join and leave notices sent at once before --presence-rate applies.
    /// 0: no pacing.
    #[arg(
        long,
        env = "CHAT_PRESENCE_BURST",
        value_name = "N",
        default_value = "20"
    )]
    pub presence_burst: u32,

    /// Connections served at once; past this, new WebSocket handshakes are
    /// refused with HTTP 503 and everyone connected carries on. 0: no limit.
    #[arg(
        long,
        env = "CHAT_MAX_CONNECTIONS",
        value_name = "N",
        default_value = "10000"
    )]
    pub max_connections: usize,

    /// Connections served at once from one IP address; past this, HTTP 503.
    /// 0: no limit (right where many users share an address, e.g. behind a
    /// proxy or NAT).
    #[arg(
        long,
        env = "CHAT_MAX_CONNECTIONS_PER_IP",
        value_name = "N",
        default_value = "0"
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
    #[arg(long, env = "CHAT_FLUSH_INTERVAL", value_name = "DURATION", default_value = "5ms", value_parser = duration)]
    pub flush_interval: Duration,

    /// Close a TCP connection that has not completed its WebSocket upgrade
    /// this long after connecting.
    #[arg(long, env = "CHAT_HANDSHAKE_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
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

impl Default for Options {
    /// The documented defaults (the same as running with no flags).
    fn default() -> Self {
        let core = Config::default();
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ping_interval: core.ping_interval,
            evict_after: core.evict_after,
            login_ttl: core.login_ttl,
            max_frame_bytes: 64 * 1024,
            max_message_chars: core.max_message_chars,
            history_size: core.history_size,
            history_on_join: core.history_on_join,
            send_queue_bytes: 1024 * 1024,
            shutdown_timeout: Duration::from_secs(5),
            message_rate: core.message_rate,
            message_burst: core.message_burst,
            login_failures_per_minute: core.login_failures_per_minute,
            login_timeout: core.login_timeout,
            peer_ping_rate: core.inbound_ping_rate,
            peer_ping_burst: core.inbound_ping_burst,
            presence_rate: core.presence_rate,
            presence_burst: core.presence_burst,
            max_connections: 10_000,
            max_connections_per_ip: 0,
            allowed_origins: AllowedOrigins::Any,
            handshake_timeout: Duration::from_secs(10),
            flush_interval: Duration::from_millis(5),
            tls_cert: None,
            tls_key: None,
            threads: None,
        }
    }
}

impl Options {
    /// The chat core's settings.
    pub fn config(&self) -> Config {
        Config {
            ping_interval: self.ping_interval,
            evict_after: self.evict_after,
            login_ttl: self.login_ttl,
            max_message_chars: self.max_message_chars,
            message_rate: self.message_rate,
            message_burst: self.message_burst,
            login_failures_per_minute: self.login_failures_per_minute,
            login_timeout: self.login_timeout,
            inbound_ping_rate: self.peer_ping_rate,
            inbound_ping_burst: self.peer_ping_burst,
            presence_rate: self.presence_rate,
            presence_burst: self.presence_burst,
            history_size: self.history_size,
            history_on_join: self.history_on_join,
            ..Config::default()
        }
    }
}

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
        Options::try_parse_from(std::iter::once("chat-server").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        // Only meaningful when no CHAT_* variable is set, as in CI.
        if std::env::vars().any(|(k, _)| k.starts_with("CHAT_")) {
            return;
        }
        assert_eq!(parse(&[]).unwrap(), Options::default());
        assert_eq!(Options::default().config(), Config::default());
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
        if std::env::vars().any(|(k, _)| k.starts_with("CHAT_TLS_")) {
            return;
        }
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
}
