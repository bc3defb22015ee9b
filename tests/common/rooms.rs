//! A harness for protocol v3 (rooms and direct messages) in the core, on a
//! virtual clock, written against the wire contract (docs/PROTOCOL.md,
//! "Version 3") and nothing of the core's insides.
//!
//! Every frame sent is decoded as a `ServerMessage` (so it is one the
//! protocol has), kept raw (`raw_to`, for the privacy scans) and rendered as
//! JSON with its random parts masked: every server `id` is `"*"`, a secret
//! `"<secret>"`, every `epoch` `"<epoch>"` (the real ones are kept: see
//! `epoch`). Frames are compared per connection (`per_conn`): the order of
//! frames on one connection is what a client sees; the interleaving of
//! frames to different connections means nothing to any client.
//!
//! Used with `#[path = "common/rooms.rs"] mod rooms;` (tests/common/mod.rs
//! stays as it is).
#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use wschat::server::{Answer, Remote, Request, Snapshot, Write};
use wschat::{Action, Config, ConnectionId, Inbound, Server, ServerMessage, Version};

/// The wall-clock time at the harness's start, in ms since the Unix epoch.
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// A timestamp `ms` after the harness started.
pub fn t(ms: u64) -> u64 {
    EPOCH_MS + ms
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// An action, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Send(ConnectionId, Value),
    Close(ConnectionId, u16, String),
    Ping(ConnectionId),
    Pong(ConnectionId),
}

impl Out {
    pub fn to(&self) -> ConnectionId {
        match self {
            Out::Send(c, _) | Out::Close(c, _, _) | Out::Ping(c) | Out::Pong(c) => *c,
        }
    }

    /// The frame, if this is one.
    pub fn frame(&self) -> Option<&Value> {
        match self {
            Out::Send(_, v) => Some(v),
            _ => None,
        }
    }
}

/// The rooms tests' config: the limits that unrelated tests would trip (a
/// burst of messages from one connection, many names and rooms from one
/// address, new DMs) are off, and presence is not paced (one notice per
/// join or leave). Each limit has its own tests.
pub fn config() -> Config {
    Config {
        message_rate: 0,
        new_names_per_minute: 0,
        login_timeout: Duration::ZERO,
        presence_rate: 0,
        rooms_per_address_per_minute: 0,
        new_dms_per_minute: 0,
        ..Config::default()
    }
}

/// A store the harness plays: every request is answered at once and kept
/// in `World::journal` (`auto`), or kept for the test to answer.
struct Store {
    auto: bool,
    /// Whether each next request fails (an automatic store; then they
    /// succeed).
    failures: std::collections::VecDeque<bool>,
    /// The last `seq` of each numbering (`None`: the lobby).
    seqs: HashMap<Option<Arc<str>>, u64>,
}

pub struct World {
    pub server: Server<StdRng>,
    pub now: Instant,
    pub start: Instant,
    secrets: HashMap<ConnectionId, String>,
    /// (connection, room as that connection names it) → the room's epoch.
    epochs: HashMap<(ConnectionId, String), String>,
    /// Every frame ever sent, unmasked, in order.
    raw: Vec<(ConnectionId, String)>,
    closed: HashSet<ConnectionId>,
    store: Option<Store>,
    /// Every request the core made (but `Alive`), in order.
    pub journal: Vec<Request>,
    /// What an automatic store saved, in order, with the seq of each append.
    pub saved: Vec<(Request, Option<u64>)>,
    /// Requests not answered yet (a store answered by the test).
    pub pending: Vec<Request>,
}

impl Default for World {
    fn default() -> Self {
        World::new(config())
    }
}

impl World {
    /// A server that keeps nothing.
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        let mut server = Server::new(config, StdRng::seed_from_u64(42));
        server.set_wall_clock(UNIX_EPOCH + Duration::from_millis(EPOCH_MS), now);
        World::around(server, now, None)
    }

    /// A server with a store that saves everything at once (each request
    /// answered as soon as it is made, appends numbered per room from the
    /// snapshot's numbering).
    pub fn stored(config: Config, snapshot: Snapshot) -> Self {
        World::restored(config, snapshot, true)
    }

    /// A server with a store whose requests the test answers
    /// (`pending`, `answer`).
    pub fn manual(config: Config, snapshot: Snapshot) -> Self {
        World::restored(config, snapshot, false)
    }

    /// One node of a cluster (`Server::cluster`, its rng seeded with
    /// `seed`), whose shared store the test plays: every request waits in
    /// `pending` (see `answer`, `remote`).
    pub fn cluster(config: Config, snapshot: Snapshot, seed: u64) -> Self {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_millis(EPOCH_MS);
        let server = Server::cluster(config, StdRng::seed_from_u64(seed), snapshot, wall, now);
        let store = Store {
            auto: false,
            failures: Default::default(),
            seqs: HashMap::new(),
        };
        World::around(server, now, Some(store))
    }

    /// The test's store gives `answer`.
    pub fn answer(&mut self, answer: Answer) {
        self.server.handle_answer(answer, self.now);
        self.settle();
    }

    /// What another node did, as a shared store tells it.
    pub fn remote(&mut self, remote: Remote) {
        self.server.handle_remote(remote, self.now);
        self.settle();
    }

    fn restored(config: Config, snapshot: Snapshot, auto: bool) -> Self {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_millis(EPOCH_MS);
        let mut seqs = HashMap::new();
        seqs.insert(None, snapshot.last_seq);
        for room in &snapshot.rooms {
            seqs.insert(Some(Arc::from(room.key.as_str())), room.last_seq);
        }
        let server = Server::restore(config, StdRng::seed_from_u64(42), snapshot, wall, now);
        let store = Store {
            auto,
            failures: Default::default(),
            seqs,
        };
        let mut world = World::around(server, now, Some(store));
        world.settle();
        world
    }

    fn around(server: Server<StdRng>, now: Instant, store: Option<Store>) -> Self {
        World {
            server,
            now,
            start: now,
            secrets: HashMap::new(),
            epochs: HashMap::new(),
            raw: Vec::new(),
            closed: HashSet::new(),
            store,
            journal: Vec::new(),
            saved: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// The timestamp the core gives now.
    pub fn now_ms(&self) -> u64 {
        EPOCH_MS + u64::try_from((self.now - self.start).as_millis()).unwrap()
    }

    // ---- connections ----

    pub fn open(&mut self, version: Version) -> ConnectionId {
        self.server.handle_open("127.0.0.1", version, self.now)
    }

    pub fn open_from(&mut self, location: &str, version: Version) -> ConnectionId {
        self.server.handle_open(location, version, self.now)
    }

    pub fn open3(&mut self) -> ConnectionId {
        self.open(Version::V3)
    }

    pub fn close(&mut self, conn: ConnectionId) {
        self.server.handle_close(conn, self.now);
        self.closed.insert(conn);
        self.settle();
    }

    /// Sends `message` (a JSON value) as one text frame.
    pub fn send(&mut self, conn: ConnectionId, message: Value) {
        self.text(conn, &message.to_string());
    }

    pub fn text(&mut self, conn: ConnectionId, text: &str) {
        self.server
            .handle_frame(conn, Inbound::Text(text.as_bytes()), self.now);
        self.settle();
    }

    /// Sends `message` and returns everything that follows.
    pub fn ask(&mut self, conn: ConnectionId, message: Value) -> Vec<Out> {
        self.send(conn, message);
        self.drain()
    }

    /// Logs `conn` in as `name` (with `extra` fields merged into the login).
    pub fn login_with(&mut self, conn: ConnectionId, name: &str, extra: Value) -> Vec<Out> {
        let mut login = json!({"type": "login", "id": "l", "username": name});
        if let (Some(login), Value::Object(extra)) = (login.as_object_mut(), extra) {
            login.extend(extra);
        }
        self.ask(conn, login)
    }

    /// A v3 connection logged in as a new `name`; what it was told is
    /// discarded.
    pub fn user(&mut self, name: &str) -> ConnectionId {
        self.user_from(name, "127.0.0.1")
    }

    pub fn user_from(&mut self, name: &str, location: &str) -> ConnectionId {
        let conn = self.open_from(location, Version::V3);
        let out = self.login_with(conn, name, json!({}));
        assert!(
            kinds(&out, conn).contains(&"loginMessage".to_owned()),
            "login of {name} failed: {out:#?}"
        );
        conn
    }

    /// A connection of another `version` logged in as `name`.
    pub fn user_v(&mut self, name: &str, version: Version) -> ConnectionId {
        let conn = self.open(version);
        let out = self.login_with(conn, name, json!({}));
        assert!(
            kinds(&out, conn).contains(&"loginMessage".to_owned()),
            "login of {name} failed: {out:#?}"
        );
        conn
    }

    /// Another v3 device of the name `first` is logged in as.
    pub fn device(&mut self, name: &str, first: ConnectionId) -> ConnectionId {
        let secret = self.secret(first);
        let conn = self.open3();
        let out = self.login_with(conn, name, json!({ "secret": secret }));
        assert!(
            kinds(&out, conn).contains(&"loginMessage".to_owned()),
            "second device of {name} failed: {out:#?}"
        );
        conn
    }

    /// The secret `conn` was last given.
    pub fn secret(&self, conn: ConnectionId) -> String {
        self.secrets[&conn].clone()
    }

    /// The real epoch of `room` as `conn` last saw it, if it saw one.
    pub fn try_epoch(&self, conn: ConnectionId, room: &str) -> Option<String> {
        self.epochs.get(&(conn, room.to_owned())).cloned()
    }

    /// The real epoch of `room` as `conn` last saw it.
    pub fn epoch(&self, conn: ConnectionId, room: &str) -> String {
        self.epochs
            .get(&(conn, room.to_owned()))
            .unwrap_or_else(|| panic!("{conn:?} was never told the epoch of {room}"))
            .clone()
    }

    // ---- rooms ----

    /// `conn` joins `room`, which must succeed; everything that follows is
    /// discarded.
    pub fn join(&mut self, conn: ConnectionId, room: &str) {
        let out = self.ask(conn, json!({"type": "join", "id": "j", "room": room}));
        assert_joined(&out, conn, room);
    }

    /// `conn` creates the invite-only `room`.
    pub fn join_private(&mut self, conn: ConnectionId, room: &str) {
        let out = self.ask(
            conn,
            json!({"type": "join", "id": "j", "room": room, "inviteOnly": true}),
        );
        assert_joined(&out, conn, room);
    }

    /// `conn` says `text` in `room` (`None`: as v1/v2 do, the lobby).
    pub fn say(&mut self, conn: ConnectionId, room: &str, text: &str) -> Vec<Out> {
        self.ask(
            conn,
            json!({"type": "textFromUser", "id": "m", "room": room, "text": text}),
        )
    }

    /// `conn` says `text` in `room`, which must be accepted; returns the
    /// `seq` it took.
    pub fn said(&mut self, conn: ConnectionId, room: &str, text: &str) -> u64 {
        let out = self.say(conn, room, text);
        let echo = frames(&out, conn)
            .into_iter()
            .find(|f| f["type"] == "textBroadcast" && f["replyTo"] == "m")
            .unwrap_or_else(|| panic!("{text:?} in {room} was not accepted: {out:#?}"));
        echo["seq"].as_u64().expect("a seq")
    }

    /// An act (`topic`, `kick`, …) with `fields`, from `conn`.
    pub fn act(&mut self, conn: ConnectionId, act: &str, room: &str, fields: Value) -> Vec<Out> {
        let mut message = json!({"type": act, "id": "a", "room": room});
        if let (Some(m), Value::Object(fields)) = (message.as_object_mut(), fields) {
            m.extend(fields);
        }
        self.ask(conn, message)
    }

    // ---- output ----

    /// Every pending action, rendered. Every ping is answered at once (the
    /// peers are alive however far the clock moves), and pings are left
    /// out of what is returned.
    pub fn drain(&mut self) -> Vec<Out> {
        self.settle();
        let mut out = Vec::new();
        let mut pinged = Vec::new();
        while let Some(action) = self.server.poll_action() {
            let action = action.into_owned();
            if let Action::Ping { to, payload } = &action {
                pinged.push((*to, payload.to_vec()));
                continue;
            }
            out.push(self.render(action));
        }
        for (conn, payload) in pinged {
            if self.server.is_open(conn) {
                self.server
                    .handle_frame(conn, Inbound::Pong(&payload), self.now);
            }
        }
        out
    }

    /// Moves the clock by `by`, waking the core whenever it asked; returns
    /// what it did.
    pub fn advance(&mut self, by: Duration) -> Vec<Out> {
        let target = self.now + by;
        let mut out = Vec::new();
        while let Some(at) = self.server.poll_timeout().filter(|&at| at <= target) {
            self.now = self.now.max(at);
            self.server.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = target;
        self.server.handle_timeout(self.now);
        out.extend(self.drain());
        out
    }

    /// Every frame `conn` was ever sent, as sent.
    pub fn raw_to(&self, conn: ConnectionId) -> Vec<String> {
        self.raw
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, f)| f.clone())
            .collect()
    }

    // ---- the store ----

    /// Hands out the core's requests: answered at once by an automatic
    /// store, kept in `pending` otherwise. Either way kept in `journal`.
    fn settle(&mut self) {
        loop {
            // What the core asked so far is one group, saved (or failed)
            // together, as a store commits them.
            let group: Vec<Request> = std::iter::from_fn(|| self.server.poll_request()).collect();
            if group.is_empty() {
                break;
            }
            let fails = self
                .store
                .as_mut()
                .is_some_and(|s| s.auto && s.failures.pop_front() == Some(true));
            for request in group {
                if let Request::Write(ticket, Write::Alive { .. }) = &request {
                    self.server.handle_answer(ticket.answer(Ok(())), self.now);
                    continue;
                }
                self.journal.push(request.clone());
                match &self.store {
                    Some(_) if fails => {
                        let answer = request.fail(wschat::server::Failed("disk full".into()));
                        self.server.handle_answer(answer, self.now);
                    }
                    Some(store) if store.auto => {
                        let answer = self.durable_answer(&request);
                        let seq = match &answer {
                            Answer::Appended(_, Ok(seq)) => Some(*seq),
                            _ => None,
                        };
                        self.saved.push((request, seq));
                        self.server.handle_answer(answer, self.now);
                    }
                    _ => self.pending.push(request),
                }
            }
        }
    }

    /// An automatic store fails the next groups of requests where
    /// `failures` says so.
    pub fn fail_next(&mut self, failures: impl IntoIterator<Item = bool>) {
        let store = self.store.as_mut().expect("a store");
        store.failures = failures.into_iter().collect();
    }

    /// The answer a store that saved `request` gives: an append takes the
    /// next `seq` of its room.
    pub fn durable_answer(&mut self, request: &Request) -> Answer {
        match request {
            Request::Write(ticket, _) => ticket.answer(Ok(())),
            Request::Append(ticket, append) => {
                let store = self.store.as_mut().expect("a store");
                let seq = store.seqs.entry(append.room.clone()).or_insert(0);
                *seq += 1;
                ticket.answer(Ok(*seq))
            }
            other => panic!("a single server asked a shared store: {other:?}"),
        }
    }

    /// The test's store answers `request` as saved.
    pub fn answer_durable(&mut self, request: &Request) {
        let answer = self.durable_answer(request);
        self.server.handle_answer(answer, self.now);
        self.settle();
    }

    /// The test's store answers every pending request as saved, in order.
    pub fn answer_all(&mut self) {
        while !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            for request in pending {
                self.answer_durable(&request);
            }
        }
    }

    /// The requests made since `mark` (an index into `journal`).
    pub fn journal_since(&self, mark: usize) -> Vec<Request> {
        self.journal[mark..].to_vec()
    }

    // ---- rendering ----

    fn render(&mut self, action: Action<'static>) -> Out {
        let to = action.to();
        assert!(
            !self.closed.contains(&to),
            "{action:?} for a connection already closed"
        );
        match action {
            Action::Send { to, frame } => {
                let text = frame.as_str().to_owned();
                self.raw.push((to, text.clone()));
                if let Err(e) = ServerMessage::decode(text.as_bytes()) {
                    panic!("not a server message ({e}): {text}");
                }
                match self.server.version(to) {
                    Some(Version::V1) => assert_v1_shape(&text),
                    Some(Version::V2) => assert_v2_shape(&text),
                    _ => {}
                }
                let mut value: Value = serde_json::from_str(&text).expect("frames are JSON");
                if let Some(secret) = value.get("secret").and_then(Value::as_str) {
                    self.secrets.insert(to, secret.to_owned());
                }
                self.mask(to, &mut value, None);
                Out::Send(to, value)
            }
            Action::Ping { to, .. } => Out::Ping(to),
            Action::Pong { to, .. } => Out::Pong(to),
            Action::Close { to, code, reason } => {
                self.closed.insert(to);
                Out::Close(to, code.0, reason.to_string())
            }
        }
    }

    /// Masks ids, secrets and epochs in `value`, learning the epochs.
    /// `room`: the room of the enclosing object (a history's messages).
    fn mask(&mut self, to: ConnectionId, value: &mut Value, room: Option<&str>) {
        match value {
            Value::Object(object) => {
                let room = object
                    .get("room")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| room.map(str::to_owned));
                if let Some(id) = object.get_mut("id")
                    && id.as_str().is_some_and(|s| is_token(s, 21))
                {
                    *id = "*".into();
                }
                if let Some(secret) = object.get_mut("secret")
                    && secret.is_string()
                {
                    *secret = "<secret>".into();
                }
                if let Some(epoch) = object.get_mut("epoch")
                    && let Some(real) = epoch.as_str()
                {
                    let room = room.clone().unwrap_or_else(|| "#lobby".into());
                    self.epochs.insert((to, room), real.to_owned());
                    *epoch = "<epoch>".into();
                }
                for (_, v) in object.iter_mut() {
                    self.mask(to, v, room.as_deref());
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.mask(to, item, room);
                }
            }
            _ => {}
        }
    }
}

fn is_token(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Every frame a v1 connection receives is one the original server could
/// have sent: a v1 type with exactly the v1 fields.
pub fn assert_v1_shape(frame: &str) {
    let value: Value = serde_json::from_str(frame).expect("frames are JSON");
    let object = value.as_object().expect("frames are objects");
    let kind = object["type"].as_str().expect("frames have a type");
    let (required, optional): (&[&str], &[&str]) = match kind {
        "loginBroadcast" => (&["type", "id", "username", "location"], &[]),
        "loginMessage" => (&["type", "id", "username", "location", "secret"], &[]),
        "textBroadcast" => (&["type", "id", "username", "message"], &[]),
        "errorMessage" => (&["type", "error", "id"], &["description"]),
        other => panic!("v1 connection got a later message type {other:?}: {frame}"),
    };
    assert_no_v3_code(&value, frame);
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    for key in required {
        assert!(keys.contains(key), "v1 {kind} lacks {key:?}: {frame}");
    }
    for key in &keys {
        assert!(
            required.contains(key) || optional.contains(key),
            "v1 {kind} has a later field {key:?}: {frame}"
        );
    }
}

/// A v2 connection gets no v3 message type and no v3 field, whatever
/// happens in rooms (the lobby's moderation included).
pub fn assert_v2_shape(frame: &str) {
    let value: Value = serde_json::from_str(frame).expect("frames are JSON");
    let kind = value["type"].as_str().expect("frames have a type");
    assert!(
        [
            "loginBroadcast",
            "loginMessage",
            "textBroadcast",
            "errorMessage",
            "history",
            "userList",
            "logoutBroadcast",
            "presence"
        ]
        .contains(&kind),
        "v2 connection got a v3 message: {frame}"
    );
    assert!(
        !frame.contains("\"room\""),
        "v2 connection got a room: {frame}"
    );
    assert_no_v3_code(&value, frame);
}

/// The error codes only v3 connections get.
pub const V3_CODES: [&str; 7] = [
    "invalidRoom",
    "noSuchUser",
    "notAMember",
    "forbidden",
    "banned",
    "muted",
    "limitReached",
];

fn assert_no_v3_code(value: &Value, frame: &str) {
    assert!(
        !V3_CODES.contains(&value["error"].as_str().unwrap_or_default()),
        "a v1 or v2 connection got a v3 error code: {frame}"
    );
}

// ---- reading what was sent ----

/// An expected frame.
pub fn send(to: ConnectionId, frame: Value) -> Out {
    Out::Send(to, frame)
}

/// The frames `conn` got, in order.
pub fn frames(out: &[Out], conn: ConnectionId) -> Vec<Value> {
    out.iter()
        .filter_map(|o| match o {
            Out::Send(c, f) if *c == conn => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// The types of the frames `conn` got, in order.
pub fn kinds(out: &[Out], conn: ConnectionId) -> Vec<String> {
    frames(out, conn)
        .iter()
        .map(|f| f["type"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// What each connection got, in order: how whole outputs are compared
/// (frames to different connections have no order a client could see).
pub fn per_conn(out: &[Out]) -> BTreeMap<ConnectionId, Vec<Out>> {
    let mut map: BTreeMap<ConnectionId, Vec<Out>> = BTreeMap::new();
    for o in out {
        map.entry(o.to()).or_default().push(o.clone());
    }
    map
}

/// Asserts that `out` is exactly `expected`, connection by connection.
#[track_caller]
pub fn assert_out(out: &[Out], expected: Vec<Out>) {
    let (got, want) = (per_conn(out), per_conn(&expected));
    if got != want {
        panic!(
            "outputs differ\n--- got:\n{}\n--- expected:\n{}",
            pretty(&got),
            pretty(&want)
        );
    }
}

fn pretty(map: &BTreeMap<ConnectionId, Vec<Out>>) -> String {
    let mut s = String::new();
    for (conn, outs) in map {
        for o in outs {
            match o {
                Out::Send(_, f) => s.push_str(&format!("{conn:?} <- {f}\n")),
                other => s.push_str(&format!("{other:?}\n")),
            }
        }
    }
    s
}

/// The errorMessage `conn` gets for `code`, answering `reply_to`; the
/// description is checked separately (see `assert_refused`).
pub fn error_frame(code: &str, reply_to: &str, description: &str) -> Value {
    json!({"type": "errorMessage", "error": code, "id": "*", "replyTo": reply_to,
           "description": description})
}

/// Asserts that `out` is one `errorMessage` to `conn` with `code`, answering
/// `reply_to`, whose description contains `words`; returns the description.
#[track_caller]
pub fn assert_refused(
    out: &[Out],
    conn: ConnectionId,
    code: &str,
    reply_to: &str,
    words: &str,
) -> String {
    let [Out::Send(to, frame)] = out else {
        panic!("expected one {code} to {conn:?}, got {out:#?}");
    };
    assert_eq!(*to, conn, "{frame}");
    assert_eq!(frame["type"], "errorMessage", "{frame}");
    assert_eq!(frame["error"], code, "{frame}");
    assert_eq!(frame["replyTo"], reply_to, "{frame}");
    let description = frame["description"].as_str().unwrap_or_default().to_owned();
    assert!(
        description.contains(words),
        "description {description:?} lacks {words:?}"
    );
    description
}

/// Asserts that `conn` was told it joined `room` (`membership`, answering
/// the join).
#[track_caller]
pub fn assert_joined(out: &[Out], conn: ConnectionId, room: &str) {
    let ok = frames(out, conn)
        .iter()
        .any(|f| f["type"] == "membership" && f["room"] == room && f["change"] == "joined");
    assert!(ok, "{conn:?} did not join {room}: {out:#?}");
}

/// The one frame of type `kind` that `conn` got.
#[track_caller]
pub fn one(out: &[Out], conn: ConnectionId, kind: &str) -> Value {
    let found: Vec<Value> = frames(out, conn)
        .into_iter()
        .filter(|f| f["type"] == kind)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{conn:?} got {} {kind}: {out:#?}",
        found.len()
    );
    found[0].clone()
}

/// The `seq`s and texts of a `history` frame's messages (notices as
/// `seq:<act>`).
pub fn history_entries(history: &Value) -> Vec<String> {
    history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| match m["type"].as_str() {
            Some("notice") => format!("{}:<{}>", m["seq"], m["act"].as_str().unwrap_or("?")),
            _ => format!("{}:{}", m["seq"], m["message"].as_str().unwrap_or("?")),
        })
        .collect()
}

/// The `textBroadcast` a member sees of `text` said by `username` in
/// `room` at `timestamp`, numbered `seq` (`reply_to`: the sender's copy).
pub fn text_in(
    room: &str,
    username: &str,
    text: &str,
    seq: u64,
    timestamp: u64,
    reply_to: Option<&str>,
) -> Value {
    let mut frame = json!({"type": "textBroadcast", "id": "*", "username": username,
        "message": text, "seq": seq, "timestamp": timestamp, "room": room});
    if let Some(reply_to) = reply_to {
        frame["replyTo"] = reply_to.into();
    }
    frame
}

/// The `history` frames `conn` got, by room (one without a room is the
/// lobby's).
pub fn histories(out: &[Out], conn: ConnectionId) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for frame in frames(out, conn) {
        if frame["type"] == "history" {
            let room = frame["room"].as_str().unwrap_or("#lobby").to_owned();
            assert!(
                map.insert(room.clone(), frame).is_none(),
                "two histories of {room}"
            );
        }
    }
    map
}

/// The room states of a `rooms` or `roomList` frame, by room.
pub fn states(frame: &Value) -> BTreeMap<String, Value> {
    frame["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| (r["room"].as_str().expect("room").to_owned(), r.clone()))
        .collect()
}

/// A room's state as its member sees it (`membership.state`, `roomList`).
pub fn state(room: &str, members: u64, role: &str, last_seq: u64, read_seq: u64) -> Value {
    json!({"room": room, "inviteOnly": false, "members": members, "role": role,
        "epoch": "<epoch>", "lastSeq": last_seq, "readSeq": read_seq,
        "unread": last_seq - read_seq, "mentioned": false})
}

/// The `membership` frame of joining, as the device that asked sees it
/// (`reply_to`) or another device (`None`).
pub fn joined(room: &str, reply_to: Option<&str>, state: Value) -> Value {
    let mut frame = json!({"type": "membership", "id": "*", "room": room,
        "change": "joined", "state": state});
    if let Some(reply_to) = reply_to {
        frame["replyTo"] = reply_to.into();
    }
    frame
}

/// The `member` frame other members get when `username` joins or leaves.
pub fn member(room: &str, username: &str, change: &str, timestamp: u64) -> Value {
    json!({"type": "member", "id": "*", "room": room, "username": username,
        "change": change, "timestamp": timestamp})
}
