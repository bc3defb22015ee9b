//! A deterministic harness for the chat core: a virtual clock, fake
//! connections, and actions rendered so whole lists can be compared.
//!
//! Random ids are replaced by `*`, secrets by `<secret>` and the epoch by
//! `<epoch>` in rendered
//! frames (after checking their shape), so expectations stay readable;
//! `secret_of` returns the real secret a connection was given.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, UNIX_EPOCH};

use rand::{SeedableRng, rngs::StdRng};
use wschat::server::{Answer, Request, Snapshot};
use wschat::{Action, CloseCode, Config, ConnectionId, Event, Inbound, Server, Version};

/// The wall-clock time at the harness's start, in ms since the Unix epoch:
/// v2 timestamps are this plus the virtual time elapsed.
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// An action, rendered for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// A frame, with `id` shown as `*` and `secret` as `<secret>`.
    Send(ConnectionId, String),
    Ping(ConnectionId),
    Pong(ConnectionId, Vec<u8>),
    Close(ConnectionId, u16, &'static str),
}

pub struct Harness {
    pub server: Server<StdRng>,
    pub now: Instant,
    pub start: Instant,
    secrets: HashMap<ConnectionId, String>,
    /// Connections closed by the harness or by the core: no action may ever
    /// name one of them again (except the core's own `Close`, once).
    closed: HashSet<ConnectionId>,
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The default config with one limit switched off, for tests of other rules
/// that would trip it: many messages at one instant, or connections watched
/// for minutes without logging in. The limits have their own tests.
pub fn without_message_limit() -> Config {
    Config {
        message_rate: 0,
        ..Config::default()
    }
}

/// See [`without_message_limit`].
pub fn without_login_timeout() -> Config {
    Config {
        login_timeout: Duration::ZERO,
        ..Config::default()
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new(Config::default())
    }
}

impl Harness {
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        let mut server = Server::new(config, StdRng::seed_from_u64(42));
        server.set_wall_clock(UNIX_EPOCH + Duration::from_millis(EPOCH_MS), now);
        Harness::around(server, now)
    }

    /// A server with a store, started from `snapshot` at wall-clock time
    /// `EPOCH_MS`: writes are handed out (`writes`) and settled by the test
    /// (`answer`).
    pub fn restored(config: Config, snapshot: Snapshot) -> Self {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_millis(EPOCH_MS);
        let server = Server::restore(config, StdRng::seed_from_u64(42), snapshot, wall, now);
        Harness::around(server, now)
    }

    /// One node of a cluster, started from `snapshot` at wall-clock time
    /// `EPOCH_MS`: the test plays the shared store (`writes`, `answer`)
    /// and the other nodes (`server.handle_remote`).
    pub fn cluster(config: Config, snapshot: Snapshot) -> Self {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_millis(EPOCH_MS);
        let server = Server::cluster(config, StdRng::seed_from_u64(42), snapshot, wall, now);
        Harness::around(server, now)
    }

    fn around(server: Server<StdRng>, now: Instant) -> Self {
        Harness {
            server,
            now,
            start: now,
            secrets: HashMap::new(),
            closed: HashSet::new(),
        }
    }

    /// Time since the harness started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn open(&mut self) -> ConnectionId {
        self.open_from("127.0.0.1")
    }

    pub fn open_from(&mut self, location: &str) -> ConnectionId {
        self.server.handle_open(location, Version::V1, self.now)
    }

    /// Opens a connection that negotiated protocol v2.
    pub fn open_v2(&mut self) -> ConnectionId {
        self.server.handle_open("127.0.0.1", Version::V2, self.now)
    }

    /// The wall-clock timestamp (ms) the core gives at the current instant.
    pub fn timestamp(&self) -> u64 {
        EPOCH_MS + u64::try_from(self.elapsed().as_millis()).unwrap()
    }

    /// The peer of `conn` went away (as a driver reports it).
    pub fn close(&mut self, conn: ConnectionId) {
        self.server.handle_close(conn, self.now);
        self.closed.insert(conn);
    }

    pub fn text(&mut self, conn: ConnectionId, json: &str) {
        self.frame(conn, Inbound::Text(json.as_bytes()));
    }

    pub fn frame(&mut self, conn: ConnectionId, frame: Inbound<'_>) {
        self.server.handle_frame(conn, frame, self.now);
    }

    pub fn login(&mut self, conn: ConnectionId, username: &str) {
        let json = serde_json::json!({"type": "login", "id": "l", "username": username});
        self.text(conn, &json.to_string());
    }

    pub fn login_with_secret(&mut self, conn: ConnectionId, username: &str, secret: &str) {
        let json =
            serde_json::json!({"type": "login", "id": "l", "username": username, "secret": secret});
        self.text(conn, &json.to_string());
    }

    pub fn say(&mut self, conn: ConnectionId, text: &str) {
        let json = serde_json::json!({"type": "textFromUser", "id": "m", "text": text});
        self.text(conn, &json.to_string());
    }

    /// Opens a connection, logs it in and discards the resulting actions.
    pub fn logged_in(&mut self, username: &str) -> ConnectionId {
        let conn = self.open();
        self.login(conn, username);
        let out = self.drain();
        assert!(
            out.iter()
                .any(|o| matches!(o, Out::Send(c, f) if *c == conn && f.contains("loginMessage"))),
            "login of {username} failed: {out:?}"
        );
        conn
    }

    /// The secret last sent to `conn` in a `loginMessage`.
    pub fn secret_of(&self, conn: ConnectionId) -> String {
        self.secrets[&conn].clone()
    }

    /// Every pending action, rendered.
    pub fn drain(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        while let Some(action) = self.server.poll_action() {
            let action = action.into_owned();
            out.push(self.render(action));
        }
        out
    }

    /// Every request made so far, in order.
    pub fn writes(&mut self) -> Vec<Request> {
        std::iter::from_fn(|| self.server.poll_request()).collect()
    }

    /// The store answers a request.
    pub fn answer(&mut self, answer: Answer) {
        self.server.handle_answer(answer, self.now);
    }

    /// Moves the virtual clock forward WITHOUT waking the core, as a late
    /// driver would; the next `advance` catches up.
    pub fn skip(&mut self, by: Duration) {
        self.now += by;
    }

    /// Every pending event.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    /// Moves the virtual clock forward by `by`, waking the core at every
    /// instant it asked for on the way (exactly then, as a perfect driver
    /// would). Returns what it did, stamped with the time since start.
    pub fn advance(&mut self, by: Duration) -> Vec<(Duration, Out)> {
        let target = self.now + by;
        let mut out = Vec::new();
        while let Some(at) = self.server.poll_timeout().filter(|&at| at <= target) {
            self.now = self.now.max(at);
            self.server.handle_timeout(self.now);
            while let Some(action) = self.server.poll_action() {
                let action = action.into_owned();
                let rendered = self.render(action);
                out.push((self.elapsed(), rendered));
            }
        }
        self.now = target;
        self.server.handle_timeout(self.now);
        while let Some(action) = self.server.poll_action() {
            let action = action.into_owned();
            let rendered = self.render(action);
            out.push((self.elapsed(), rendered));
        }
        out
    }

    fn render(&mut self, action: Action<'static>) -> Out {
        let to = action.to();
        assert!(
            !self.closed.contains(&to),
            "{action:?} for a connection already closed"
        );
        match action {
            Action::Send { to, frame } => {
                assert!(
                    self.server.is_open(to),
                    "frame for closed connection {to:?}"
                );
                if self.server.version(to) == Some(Version::V1) {
                    assert_v1_shape(frame.as_str());
                }
                let mut value: serde_json::Value =
                    serde_json::from_str(frame.as_str()).expect("frames are JSON");
                let object = value.as_object_mut().expect("frames are JSON objects");
                let id = object["id"].as_str().expect("every frame has an id");
                assert!(is_token(id, 21), "bad id {id:?}");
                object["id"] = "*".into();
                if let Some(secret) = object.get("secret") {
                    let secret = secret.as_str().expect("secret is a string").to_owned();
                    assert!(is_token(&secret, 24), "bad secret {secret:?}");
                    self.secrets.insert(to, secret);
                    object["secret"] = "<secret>".into();
                }
                let mut text = frame_with_replacements(frame.as_str(), object);
                // The epoch is random too: shown as <epoch>, once checked.
                if let Some(epoch) = object.get("epoch") {
                    assert_eq!(epoch.as_str(), Some(self.server.epoch()));
                    let real = format!("\"epoch\":\"{}\"", self.server.epoch());
                    text = text.replacen(&real, "\"epoch\":\"<epoch>\"", 1);
                }
                Out::Send(to, text)
            }
            Action::Ping { to, .. } => {
                assert!(self.server.is_open(to), "ping for closed connection {to:?}");
                Out::Ping(to)
            }
            Action::Pong { to, payload } => {
                assert!(self.server.is_open(to), "pong for closed connection {to:?}");
                Out::Pong(to, payload.to_vec())
            }
            Action::Close { to, code, reason } => {
                assert!(!self.server.is_open(to), "closed connection still open");
                self.closed.insert(to);
                Out::Close(to, code.0, reason)
            }
        }
    }
}

/// Re-renders the original frame text with every server id (nested ones in
/// a `history` too) masked as `*` and the secret as `<secret>`, keeping the
/// server's key order so tests see exactly what went on the wire.
fn frame_with_replacements(
    original: &str,
    masked: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut text = String::with_capacity(original.len());
    let mut rest = original;
    while let Some(at) = rest.find("\"id\":\"") {
        let value_start = at + "\"id\":\"".len();
        text.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        match rest.get(..22) {
            Some(value) if value.ends_with('"') && is_token(&value[..21], 21) => {
                text.push('*');
                rest = &rest[21..];
            }
            _ => {}
        }
    }
    text.push_str(rest);
    if let Some(secret) = masked.get("secret") {
        let real = serde_json::from_str::<serde_json::Value>(original).unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        text = text.replacen(
            &format!("\"secret\":\"{real}\""),
            &format!("\"secret\":\"{}\"", secret.as_str().unwrap()),
            1,
        );
    }
    text
}

/// Every frame a v1 connection receives must be one the original server
/// could have sent: a v1 type with exactly the v1 fields.
pub fn assert_v1_shape(frame: &str) {
    let value: serde_json::Value = serde_json::from_str(frame).expect("frames are JSON");
    let object = value.as_object().expect("frames are objects");
    let kind = object["type"].as_str().expect("frames have a type");
    let (required, optional): (&[&str], &[&str]) = match kind {
        "loginBroadcast" => (&["type", "id", "username", "location"], &[]),
        "loginMessage" => (&["type", "id", "username", "location", "secret"], &[]),
        "textBroadcast" => (&["type", "id", "username", "message"], &[]),
        "errorMessage" => (&["type", "error", "id"], &["description"]),
        other => panic!("v1 connection got a v2-only message type {other:?}: {frame}"),
    };
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    for key in required {
        assert!(keys.contains(key), "v1 {kind} lacks {key:?}: {frame}");
    }
    for key in &keys {
        assert!(
            required.contains(key) || optional.contains(key),
            "v1 {kind} has a v2 field {key:?}: {frame}"
        );
    }
}

fn is_token(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Shorthand for an expected frame.
pub fn send(to: ConnectionId, json: &str) -> Out {
    Out::Send(to, json.to_owned())
}

pub fn close(to: ConnectionId, code: CloseCode, reason: &'static str) -> Out {
    Out::Close(to, code.0, reason)
}

/// The same frame to each of `to`, in order: what a broadcast looks like.
pub fn broadcast(to: &[ConnectionId], json: &str) -> Vec<Out> {
    to.iter().map(|&c| send(c, json)).collect()
}

/// The `errorMessage` frame `to` gets for `code`, with `description`
/// escaped as JSON.
pub fn error(to: ConnectionId, code: &str, description: &str) -> Out {
    let description = serde_json::to_string(description).unwrap();
    Out::Send(
        to,
        format!(
            r#"{{"type":"errorMessage","error":"{code}","id":"*","description":{description}}}"#
        ),
    )
}

/// The event of `username`'s last connection (from 127.0.0.1) going away.
pub fn left(username: &str, reason: wschat::protocol::LeaveReason) -> Event {
    Event::Left {
        username: username.into(),
        location: "127.0.0.1".into(),
        reason,
    }
}

/// Concatenates groups of expected outputs.
pub fn seq<const N: usize>(groups: [Vec<Out>; N]) -> Vec<Out> {
    groups.into_iter().flatten().collect()
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The `loginBroadcast` frame for `username` connecting from `location`.
pub fn login_broadcast(username: &str, location: &str) -> String {
    format!(
        r#"{{"type":"loginBroadcast","id":"*","username":{},"location":{}}}"#,
        json_string(username),
        json_string(location)
    )
}

/// The `loginMessage` frame for `username` at `location` (secret masked).
pub fn login_message(username: &str, location: &str) -> String {
    format!(
        r#"{{"type":"loginMessage","id":"*","username":{},"location":{},"secret":"<secret>"}}"#,
        json_string(username),
        json_string(location)
    )
}

/// The `textBroadcast` frame of `message` said by `username`.
pub fn text_broadcast(username: &str, message: &str) -> String {
    format!(
        r#"{{"type":"textBroadcast","id":"*","username":{},"message":{}}}"#,
        json_string(username),
        json_string(message)
    )
}

/// What everyone in `all` sees, then what `conn` alone sees, when `conn`
/// logs in as `username` from 127.0.0.1.
pub fn login_outcome(all: &[ConnectionId], conn: ConnectionId, username: &str) -> Vec<Out> {
    let mut out = broadcast(all, &login_broadcast(username, "127.0.0.1"));
    out.push(send(conn, &login_message(username, "127.0.0.1")));
    out
}
