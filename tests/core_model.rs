//! Model-based tests of the chat core (issue 7): random sequences of opens
//! (v1 and v2, from a few addresses), logins, messages, presence queries,
//! logouts, closes and time steps run through the core and through a small
//! reference model of names, secrets, connections, expiry, limits, v2
//! presence and history. After every step, each connection must have been
//! sent exactly what the model says, in order.
//!
//! The model states the invariants plainly:
//! - a name (by its case- and normalisation-insensitive key) is held by at
//!   most one login, and is free exactly when the model says: a login
//!   without the secret is refused exactly when the model holds the name;
//! - a login's secret is issued once and given back unchanged on reclaim;
//! - every broadcast reaches every connection open at that moment, in
//!   order, and a connection that closed gets nothing more;
//! - connections close exactly when the model says (eviction, login
//!   timeout), and names are released exactly `login_ttl` after their last
//!   connection closed.
//!
//! 256 cases by default (about a second), so `cargo test` stays quick;
//! `PROPTEST_CASES=5000 cargo test --test core_model` runs more.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::{EPOCH_MS, assert_v1_shape};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, RngAlgorithm};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use rand::{SeedableRng, rngs::StdRng};
use wschat::protocol::LeaveReason;
use wschat::{
    Action, ClientMessage, Config, ConnectionId, ErrorCode, Inbound, Server, ServerMessage, Version,
};

// ---- the setting ----

/// Short timings, so that a few steps of up to 3 s reach pings, evictions,
/// login timeouts and expiry, and small limits that random steps hit.
fn config() -> Config {
    Config {
        ping_interval: Duration::from_secs(2),
        ping_retry: Duration::from_millis(500),
        evict_after: Duration::from_secs(6),
        login_ttl: Duration::from_secs(10),
        login_timeout: Duration::from_secs(4),
        max_message_chars: 8,
        history_size: 4,
        history_on_join: 2,
        reply_max_bytes: REPLY_MAX_BYTES,
        message_rate: 2,
        message_burst: 3,
        login_failures_per_minute: 1,
        login_failure_addresses: 2,
        // Pings are not part of the model; their limit has its own tests.
        peer_ping_rate: 0,
        // Nor is the pacing of presence notices (tests/core_v2.rs has it).
        presence_rate: 0,
        ..Config::default()
    }
}

const PING_INTERVAL_MS: u64 = 2_000;
const EVICT_AFTER_MS: u64 = 6_000;
const LOGIN_TTL_MS: u64 = 10_000;
const LOGIN_TIMEOUT_MS: u64 = 4_000;
const MAX_MESSAGE_CHARS: usize = 8;
const HISTORY_SIZE: usize = 4;
const HISTORY_ON_JOIN: usize = 2;
/// About two messages of `TEXTS` as a `history` carries them.
const REPLY_MAX_BYTES: usize = 250;
/// The message bucket, in milliseconds of refill: a token is 500 ms (2 a
/// second), the bucket holds 3.
const TOKEN_MS: u64 = 500;
const BUCKET_MS: u64 = 3 * TOKEN_MS;
const FAILURES_PER_WINDOW: u32 = 1;
const FAILURE_WINDOW_MS: u64 = 60_000;
const FAILURE_ADDRESSES: usize = 2;

/// Names as typed, with the key class they fall in (`None`: invalid) and
/// how they are displayed (NFC). Classes are numbered in key order, which
/// is the order of `userList`.
const NAMES: [(&str, Option<usize>, &str); 6] = [
    ("alice", Some(0), "alice"),
    ("ALICE", Some(0), "ALICE"),
    ("bob", Some(1), "bob"),
    ("Jose\u{301}", Some(2), "Jos\u{e9}"),
    ("Jos\u{e9}", Some(2), "Jos\u{e9}"),
    ("", None, ""),
];

const TEXTS: [&str; 6] = ["hi", "hello", "  ", "abcdefghi", "ça va", "a\u{1}b\u{202e}"];

/// Message text as everyone sees it: control characters (but newline and
/// tab) and bidirectional overrides replaced with U+FFFD.
fn neutralised(text: &str) -> String {
    let replaced = |c: char| {
        (c < ' ' && c != '\n' && c != '\t')
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    text.chars()
        .map(|c| if replaced(c) { '\u{fffd}' } else { c })
        .collect()
}

/// The bytes `said` adds to a `history`: its v2 `textBroadcast`.
fn encoded_len(said: &Said) -> usize {
    ServerMessage::TextBroadcast {
        id: "i".repeat(21).into(),
        reply_to: None,
        username: said.username.as_str().into(),
        message: said.message.as_str().into(),
        seq: Some(said.seq),
        timestamp: Some(said.timestamp),
        room: None,
    }
    .encoded_len()
}

fn location(a: u8) -> String {
    format!("10.0.0.{a}")
}

// ---- what a connection sees ----

/// A frame or close as the model predicts it: ids left out, secrets by the
/// order they were issued in, `reply` for whether `replyTo` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    LoginBroadcast {
        username: String,
        location: String,
        timestamp: Option<u64>,
    },
    LoginMessage {
        username: String,
        location: String,
        secret: usize,
        reply: bool,
    },
    Text {
        username: String,
        message: String,
        seq: Option<u64>,
        timestamp: Option<u64>,
        reply: bool,
    },
    Error {
        code: ErrorCode,
        reply: bool,
    },
    History {
        messages: Vec<Seen>,
        complete: bool,
    },
    UserList {
        users: Vec<(String, usize)>,
    },
    Left {
        username: String,
        reason: LeaveReason,
        timestamp: u64,
    },
    /// Closed by the core, at this many milliseconds since the start.
    Closed {
        code: u16,
        reason: &'static str,
        at: u64,
    },
}

/// What each connection (by open order) is sent during one step.
type Seens = BTreeMap<usize, Vec<Seen>>;

// ---- the model ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretChoice {
    None,
    /// The current secret of the name, if it is held.
    Current,
    /// Some secret issued earlier (maybe for another name, maybe stale).
    Issued(usize),
    Wrong,
}

/// The secret a login step actually sent, resolved by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Issued(usize),
    Wrong,
}

#[derive(Debug, Clone)]
enum Step {
    Open {
        v2: bool,
        address: u8,
    },
    Login {
        conn: usize,
        name: usize,
        secret: SecretChoice,
        since: Option<u64>,
    },
    Say {
        conn: usize,
        text: usize,
    },
    ListUsers {
        conn: usize,
    },
    Logout {
        conn: usize,
    },
    Pong {
        conn: usize,
    },
    Close {
        conn: usize,
    },
    Advance {
        ms: u64,
    },
}

#[derive(Debug, Clone)]
struct ModelConn {
    open: bool,
    v2: bool,
    address: u8,
    /// The key class of the login held.
    login: Option<usize>,
    last_activity: u64,
    login_deadline: Option<u64>,
    /// Message tokens, in milliseconds of refill, as of `refilled_at`.
    tokens: u64,
    refilled_at: u64,
}

#[derive(Debug, Clone)]
struct ModelLogin {
    display: String,
    secret: usize,
    connections: usize,
    expires_at: Option<u64>,
}

impl ModelLogin {
    fn is_free(&self, now: u64) -> bool {
        self.connections == 0 && self.expires_at.is_some_and(|at| at <= now)
    }
}

#[derive(Debug, Clone)]
struct Said {
    username: String,
    message: String,
    seq: u64,
    timestamp: u64,
}

#[derive(Debug, Clone, Default)]
struct Model {
    /// Milliseconds since the start.
    now: u64,
    conns: Vec<ModelConn>,
    logins: BTreeMap<usize, ModelLogin>,
    /// Per address: when its window ends, and the wrong secrets in it.
    failures: BTreeMap<u8, (u64, u32)>,
    history: Vec<Said>,
    secrets_issued: usize,
    /// Set by a login step: the secret it sent, for the test to send it too.
    sent: Option<Sent>,
    /// What the last step sends, per connection.
    expected: Seens,
}

impl Model {
    fn timestamp(&self) -> u64 {
        EPOCH_MS + self.now
    }

    /// The connection a step names: any ever opened, by index.
    fn pick(&self, conn: usize) -> Option<usize> {
        (!self.conns.is_empty()).then(|| conn % self.conns.len())
    }

    fn expect(&mut self, conn: usize, seen: Seen) {
        self.expected.entry(conn).or_default().push(seen);
    }

    fn open_conns(&self) -> Vec<usize> {
        (0..self.conns.len())
            .filter(|&c| self.conns[c].open)
            .collect()
    }

    /// Names still held (the core has released every other by now).
    fn held_logins(&self) -> usize {
        let now = self.now;
        self.logins.values().filter(|l| !l.is_free(now)).count()
    }

    fn error(&mut self, conn: usize, code: ErrorCode) {
        let reply = self.conns[conn].v2;
        self.expect(conn, Seen::Error { code, reply });
    }

    /// A text frame from `conn`: alive, and one token if there is one.
    fn take_token(&mut self, conn: usize) -> bool {
        let now = self.now;
        let c = &mut self.conns[conn];
        c.last_activity = now;
        c.tokens = (c.tokens + (now - c.refilled_at)).min(BUCKET_MS);
        c.refilled_at = now;
        if c.tokens < TOKEN_MS {
            self.error(conn, ErrorCode::RateLimited);
            return false;
        }
        self.conns[conn].tokens -= TOKEN_MS;
        true
    }

    fn open(&mut self, v2: bool, address: u8) {
        self.conns.push(ModelConn {
            open: true,
            v2,
            address,
            login: None,
            last_activity: self.now,
            login_deadline: Some(self.now + LOGIN_TIMEOUT_MS),
            tokens: BUCKET_MS,
            refilled_at: self.now,
        });
    }

    fn login(&mut self, conn: usize, name: usize, choice: SecretChoice, since: Option<u64>) {
        let (_, class, display) = NAMES[name];
        let now = self.now;
        let sent = match choice {
            SecretChoice::None => None,
            SecretChoice::Current => Some(
                class
                    .and_then(|class| self.logins.get(&class))
                    .filter(|login| !login.is_free(now))
                    .map_or(Sent::Wrong, |login| Sent::Issued(login.secret)),
            ),
            SecretChoice::Issued(_) if self.secrets_issued == 0 => Some(Sent::Wrong),
            SecretChoice::Issued(i) => Some(Sent::Issued(i % self.secrets_issued)),
            SecretChoice::Wrong => Some(Sent::Wrong),
        };
        self.sent = sent;
        if !self.conns[conn].open || !self.take_token(conn) {
            return;
        }
        if self.conns[conn].login.is_some() {
            return self.error(conn, ErrorCode::AlreadyLoggedIn);
        }
        let Some(class) = class else {
            return self.error(conn, ErrorCode::InvalidUsername);
        };
        let address = self.conns[conn].address;
        // Windows that have ended are gone (their timers fired on time).
        self.failures.retain(|_, (ends_at, _)| *ends_at > now);
        if sent.is_some() {
            let locked = match self.failures.get(&address) {
                Some(&(_, count)) => count >= FAILURES_PER_WINDOW,
                None => self.failures.len() >= FAILURE_ADDRESSES,
            };
            if locked {
                return self.error(conn, ErrorCode::RateLimited);
            }
        }
        let held = self.logins.get(&class).filter(|login| !login.is_free(now));
        match (held, sent) {
            (None, _) => {
                let secret = self.secrets_issued;
                self.secrets_issued += 1;
                self.logins.insert(
                    class,
                    ModelLogin {
                        display: display.to_owned(),
                        secret,
                        connections: 1,
                        expires_at: None,
                    },
                );
            }
            (Some(login), Some(Sent::Issued(s))) if s == login.secret => {
                let login = self.logins.get_mut(&class).expect("held");
                login.connections += 1;
                login.expires_at = None;
            }
            (Some(_), sent) => {
                if sent.is_some() {
                    if let Some((_, count)) = self.failures.get_mut(&address) {
                        *count += 1;
                    } else if self.failures.len() < FAILURE_ADDRESSES {
                        self.failures.insert(address, (now + FAILURE_WINDOW_MS, 1));
                    }
                }
                return self.error(conn, ErrorCode::LoginTaken);
            }
        }
        let login = &self.logins[&class];
        let (username, secret) = (login.display.clone(), login.secret);
        let c = &mut self.conns[conn];
        c.login = Some(class);
        c.login_deadline = None;
        let (v2, location) = (c.v2, location(c.address));
        let timestamp = self.timestamp();
        for other in self.open_conns() {
            let v2 = self.conns[other].v2;
            self.expect(
                other,
                Seen::LoginBroadcast {
                    username: username.clone(),
                    location: location.clone(),
                    timestamp: v2.then_some(timestamp),
                },
            );
        }
        self.expect(
            conn,
            Seen::LoginMessage {
                username,
                location,
                secret,
                reply: v2,
            },
        );
        if v2 {
            let history = self.catch_up(since);
            self.expect(conn, history);
        }
    }

    /// The `history` a v2 login with `since` gets.
    fn catch_up(&self, since: Option<u64>) -> Seen {
        let last_seq = self.history.last().map_or(0, |said| said.seq);
        let held = self.history.len().min(HISTORY_SIZE);
        let (count, complete) = match since {
            Some(since) if since > last_seq => (held, false),
            Some(since) => {
                let wanted = (last_seq - since) as usize;
                (wanted.min(held), wanted <= held)
            }
            None => (HISTORY_ON_JOIN.min(held), true),
        };
        // Newest first, while the encoded messages fit in the byte budget.
        let mut bytes = 0;
        let mut messages: Vec<Seen> = self
            .history
            .iter()
            .rev()
            .take(count)
            .take_while(|said| {
                bytes += encoded_len(said) + 1;
                bytes <= REPLY_MAX_BYTES
            })
            .map(|said| Seen::Text {
                username: said.username.clone(),
                message: said.message.clone(),
                seq: Some(said.seq),
                timestamp: Some(said.timestamp),
                reply: false,
            })
            .collect();
        let complete = complete && messages.len() == count;
        messages.reverse();
        Seen::History { messages, complete }
    }

    fn say(&mut self, conn: usize, text: &str) {
        if !self.conns[conn].open || !self.take_token(conn) {
            return;
        }
        let Some(class) = self.conns[conn].login else {
            return self.error(conn, ErrorCode::MessagingWhileNotLoggedIn);
        };
        if text.trim().is_empty() {
            return self.error(conn, ErrorCode::EmptyMessage);
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return self.error(conn, ErrorCode::MessageTooLong);
        }
        let said = Said {
            username: self.logins[&class].display.clone(),
            message: neutralised(text),
            seq: self.history.last().map_or(0, |said| said.seq) + 1,
            timestamp: self.timestamp(),
        };
        for other in self.open_conns() {
            let v2 = self.conns[other].v2;
            self.expect(
                other,
                Seen::Text {
                    username: said.username.clone(),
                    message: said.message.clone(),
                    seq: v2.then_some(said.seq),
                    timestamp: v2.then_some(said.timestamp),
                    reply: v2 && other == conn,
                },
            );
        }
        self.history.push(said);
    }

    fn list_users(&mut self, conn: usize) {
        if !self.conns[conn].open || !self.take_token(conn) {
            return;
        }
        if !self.conns[conn].v2 {
            return self.error(conn, ErrorCode::InvalidJson);
        }
        if self.conns[conn].login.is_none() {
            return self.error(conn, ErrorCode::MessagingWhileNotLoggedIn);
        }
        let users = self
            .logins
            .values()
            .filter(|login| login.connections > 0)
            .map(|login| (login.display.clone(), login.connections))
            .collect();
        self.expect(conn, Seen::UserList { users });
    }

    fn logout(&mut self, conn: usize) {
        if !self.conns[conn].open || !self.take_token(conn) {
            return;
        }
        if !self.conns[conn].v2 {
            return self.error(conn, ErrorCode::InvalidJson);
        }
        let Some(class) = self.conns[conn].login else {
            return self.error(conn, ErrorCode::MessagingWhileNotLoggedIn);
        };
        let login = self.logins.remove(&class).expect("held");
        let now = self.now;
        for c in &mut self.conns {
            if c.open && c.login == Some(class) {
                c.login = None;
                c.login_deadline = Some(now + LOGIN_TIMEOUT_MS);
            }
        }
        self.leave(&login.display, LeaveReason::Logout);
    }

    /// `logoutBroadcast` to every open v2 connection.
    fn leave(&mut self, username: &str, reason: LeaveReason) {
        let timestamp = self.timestamp();
        for other in self.open_conns() {
            if self.conns[other].v2 {
                let username = username.to_owned();
                self.expect(
                    other,
                    Seen::Left {
                        username,
                        reason,
                        timestamp,
                    },
                );
            }
        }
    }

    /// `conn` is gone; its login starts its TTL if it was the last one.
    fn gone(&mut self, conn: usize, reason: LeaveReason) {
        let c = &mut self.conns[conn];
        c.open = false;
        let Some(class) = c.login.take() else {
            return;
        };
        let now = self.now;
        let login = self.logins.get_mut(&class).expect("held");
        login.connections -= 1;
        if login.connections == 0 {
            login.expires_at = Some(now + LOGIN_TTL_MS);
            let display = login.display.clone();
            self.leave(&display, reason);
        }
    }

    /// When `conn` is closed by the core unless something happens first,
    /// and how: the login timeout wins a tie with eviction.
    fn closes_at(&self, conn: usize) -> (u64, bool) {
        let c = &self.conns[conn];
        let evict = c.last_activity + EVICT_AFTER_MS;
        match c.login_deadline {
            Some(deadline) if deadline <= evict => (deadline, true),
            _ => (evict, false),
        }
    }

    /// Time passes; the core is woken at every instant it asks for.
    /// Closes due at the same instant happen in the order of opening, and
    /// frames queued in that wake for a connection closed in it are dropped
    /// with it (it is closed: nothing more reaches it).
    fn advance(&mut self, ms: u64) {
        let target = self.now + ms;
        let mut wake = None;
        let mut queued_before_wake = BTreeMap::new();
        loop {
            let next = self
                .open_conns()
                .into_iter()
                .map(|conn| (self.closes_at(conn), conn))
                .filter(|((at, _), _)| *at <= target)
                .min();
            let Some(((at, login_timeout), conn)) = next else {
                break;
            };
            if wake != Some(at) {
                wake = Some(at);
                queued_before_wake = (self.expected.iter())
                    .map(|(&conn, seen)| (conn, seen.len()))
                    .collect();
            }
            self.now = at;
            if let Some(seen) = self.expected.get_mut(&conn) {
                seen.truncate(queued_before_wake.get(&conn).copied().unwrap_or(0));
            }
            if login_timeout {
                self.expect(
                    conn,
                    Seen::Closed {
                        code: 1008,
                        reason: "login timeout",
                        at,
                    },
                );
                self.gone(conn, LeaveReason::Disconnected);
            } else {
                self.expect(
                    conn,
                    Seen::Closed {
                        code: 1000,
                        reason: "ping timeout",
                        at,
                    },
                );
                self.gone(conn, LeaveReason::Evicted);
            }
        }
        self.now = target;
        let now = self.now;
        self.logins.retain(|_, login| !login.is_free(now));
        self.failures.retain(|_, (ends_at, _)| *ends_at > now);
    }
}

struct ChatModel;

impl ReferenceStateMachine for ChatModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Step> {
        let conn = 0..64usize;
        // Wrong secrets often enough that addresses get locked out.
        let secret = prop_oneof![
            1 => Just(SecretChoice::None),
            2 => Just(SecretChoice::Current),
            1 => (0..16usize).prop_map(SecretChoice::Issued),
            2 => Just(SecretChoice::Wrong),
        ];
        prop_oneof![
            3 => (any::<bool>(), 0..3u8).prop_map(|(v2, address)| Step::Open { v2, address }),
            4 => (conn.clone(), 0..NAMES.len(), secret, prop::option::of(0..6u64))
                .prop_map(|(conn, name, secret, since)| Step::Login { conn, name, secret, since }),
            4 => (conn.clone(), 0..TEXTS.len()).prop_map(|(conn, text)| Step::Say { conn, text }),
            1 => conn.clone().prop_map(|conn| Step::ListUsers { conn }),
            1 => conn.clone().prop_map(|conn| Step::Logout { conn }),
            1 => conn.clone().prop_map(|conn| Step::Pong { conn }),
            1 => conn.prop_map(|conn| Step::Close { conn }),
            3 => (0..3_000u64).prop_map(|ms| Step::Advance { ms }),
            1 => (5_000..70_000u64).prop_map(|ms| Step::Advance { ms }),
        ]
        .boxed()
    }

    fn apply(mut model: Model, step: &Step) -> Model {
        model.expected.clear();
        model.sent = None;
        match *step {
            Step::Open { v2, address } => model.open(v2, address),
            Step::Advance { ms } => model.advance(ms),
            Step::Login {
                conn,
                name,
                secret,
                since,
            } => {
                if let Some(conn) = model.pick(conn) {
                    model.login(conn, name, secret, since);
                }
            }
            Step::Say { conn, text } => {
                if let Some(conn) = model.pick(conn) {
                    model.say(conn, TEXTS[text]);
                }
            }
            Step::ListUsers { conn } => {
                if let Some(conn) = model.pick(conn) {
                    model.list_users(conn);
                }
            }
            Step::Logout { conn } => {
                if let Some(conn) = model.pick(conn) {
                    model.logout(conn);
                }
            }
            Step::Pong { conn } => {
                if let Some(conn) = model.pick(conn) {
                    let now = model.now;
                    let c = &mut model.conns[conn];
                    if c.open {
                        c.last_activity = now;
                    }
                }
            }
            Step::Close { conn } => {
                if let Some(conn) = model.pick(conn)
                    && model.conns[conn].open
                {
                    model.gone(conn, LeaveReason::Disconnected);
                }
            }
        }
        model
    }
}

// ---- the core, driven alongside ----

struct Chat {
    server: Server<StdRng>,
    start: Instant,
    now: Instant,
    /// Every connection ever opened, in order: the model's indices.
    conns: Vec<ConnectionId>,
    index: HashMap<ConnectionId, usize>,
    /// Secrets in the order they were issued.
    secrets: Vec<String>,
}

impl Chat {
    fn new() -> Self {
        let now = Instant::now();
        let mut server = Server::new(config(), StdRng::seed_from_u64(7));
        server.set_wall_clock(UNIX_EPOCH + Duration::from_millis(EPOCH_MS), now);
        Chat {
            server,
            start: now,
            now,
            conns: Vec::new(),
            index: HashMap::new(),
            secrets: Vec::new(),
        }
    }

    fn pick(&self, conn: usize) -> Option<ConnectionId> {
        (!self.conns.is_empty()).then(|| self.conns[conn % self.conns.len()])
    }

    fn send(&mut self, conn: usize, message: &ClientMessage) {
        if let Some(conn) = self.pick(conn) {
            let json = message.encode();
            self.server
                .handle_frame(conn, Inbound::Text(&json), self.now);
        }
    }

    /// Every action, as the model would describe it.
    fn drain(&mut self, seens: &mut Seens) {
        while let Some(action) = self.server.poll_action() {
            // The action borrows the core, which the checks below consult.
            match action.into_owned() {
                Action::Send { to, frame } => {
                    assert!(self.server.is_open(to), "frame for closed {to:?}");
                    let version = self.server.version(to).expect("open");
                    if version == Version::V1 {
                        assert_v1_shape(frame.as_str());
                    }
                    let message = ServerMessage::decode(frame.bytes()).expect("frames decode");
                    let seen = self.seen(message);
                    seens.entry(self.index[&to]).or_default().push(seen);
                }
                Action::Ping { to, .. } => {
                    assert!(self.server.is_open(to), "ping for closed {to:?}");
                }
                Action::Pong { .. } => panic!("no pings are sent, so no pong is owed"),
                Action::Close { to, code, reason } => {
                    assert!(!self.server.is_open(to), "closed but still open");
                    let at = (self.now - self.start).as_millis();
                    let seen = Seen::Closed {
                        code: code.0,
                        reason,
                        at: u64::try_from(at).expect("a short test"),
                    };
                    seens.entry(self.index[&to]).or_default().push(seen);
                }
            }
        }
        while self.server.poll_event().is_some() {}
    }

    fn seen(&mut self, message: ServerMessage<'_>) -> Seen {
        match message {
            ServerMessage::LoginBroadcast {
                username,
                location,
                timestamp,
                ..
            } => Seen::LoginBroadcast {
                username: username.into_owned(),
                location: location.into_owned(),
                timestamp,
            },
            ServerMessage::LoginMessage {
                reply_to,
                username,
                location,
                secret,
                ..
            } => {
                let secret = match self.secrets.iter().position(|s| *s == secret) {
                    Some(known) => known,
                    None => {
                        self.secrets.push(secret.into_owned());
                        self.secrets.len() - 1
                    }
                };
                Seen::LoginMessage {
                    username: username.into_owned(),
                    location: location.into_owned(),
                    secret,
                    reply: reply_to.is_some(),
                }
            }
            ServerMessage::TextBroadcast {
                reply_to,
                username,
                message,
                seq,
                timestamp,
                ..
            } => Seen::Text {
                username: username.into_owned(),
                message: message.into_owned(),
                seq,
                timestamp,
                reply: reply_to.is_some(),
            },
            ServerMessage::ErrorMessage {
                error,
                reply_to,
                description,
                ..
            } => {
                assert!(description.is_some_and(|d| !d.is_empty()));
                Seen::Error {
                    code: error,
                    reply: reply_to.is_some(),
                }
            }
            ServerMessage::History {
                messages, complete, ..
            } => Seen::History {
                messages: messages.into_iter().map(|m| self.seen(m)).collect(),
                complete,
            },
            ServerMessage::UserList { users, .. } => Seen::UserList {
                users: users
                    .into_iter()
                    .map(|u| (u.username.into_owned(), u.connections))
                    .collect(),
            },
            ServerMessage::LogoutBroadcast {
                username,
                reason,
                timestamp,
                ..
            } => Seen::Left {
                username: username.into_owned(),
                reason,
                timestamp,
            },
            ServerMessage::Presence { .. } => panic!("presence pacing is off in the model"),
            other => panic!("a v3 message on a v2 connection: {other:?}"),
        }
    }
}

struct CoreMatchesModel;

impl StateMachineTest for CoreMatchesModel {
    type SystemUnderTest = Chat;
    type Reference = ChatModel;

    fn init_test(_: &Model) -> Chat {
        Chat::new()
    }

    fn apply(mut chat: Chat, model: &Model, step: Step) -> Chat {
        let mut seens = Seens::new();
        match step {
            Step::Open { v2, address } => {
                let version = if v2 { Version::V2 } else { Version::V1 };
                let location = location(address);
                let conn = chat.server.handle_open(&location, version, chat.now);
                chat.index.insert(conn, chat.conns.len());
                chat.conns.push(conn);
            }
            Step::Login {
                conn, name, since, ..
            } => {
                let secret = model.sent.map(|sent| match sent {
                    Sent::Issued(i) => chat.secrets[i].clone(),
                    Sent::Wrong => "not the secret".to_owned(),
                });
                let login = ClientMessage::Login {
                    id: "l".into(),
                    username: NAMES[name].0.into(),
                    secret,
                    since,
                    epoch: None,
                    rooms: None,
                };
                chat.send(conn, &login);
            }
            Step::Say { conn, text } => {
                let say = ClientMessage::TextFromUser {
                    id: "m".into(),
                    text: TEXTS[text].into(),
                    room: None,
                };
                chat.send(conn, &say);
            }
            Step::ListUsers { conn } => {
                chat.send(conn, &ClientMessage::ListUsers { id: "u".into() });
            }
            Step::Logout { conn } => chat.send(conn, &ClientMessage::Logout { id: "o".into() }),
            Step::Pong { conn } => {
                if let Some(conn) = chat.pick(conn) {
                    chat.server.handle_frame(conn, Inbound::Pong(b""), chat.now);
                }
            }
            Step::Close { conn } => {
                if let Some(conn) = chat.pick(conn) {
                    chat.server.handle_close(conn, chat.now);
                }
            }
            Step::Advance { ms } => {
                // A perfect driver: woken at every instant the core asks for.
                let target = chat.now + Duration::from_millis(ms);
                while let Some(at) = chat.server.poll_timeout().filter(|&at| at <= target) {
                    chat.now = chat.now.max(at);
                    chat.server.handle_timeout(chat.now);
                    chat.drain(&mut seens);
                }
                chat.now = target;
                chat.server.handle_timeout(chat.now);
            }
        }
        chat.drain(&mut seens);
        assert_eq!(seens, model.expected, "after {step:?}");
        chat
    }

    fn check_invariants(chat: &Chat, model: &Model) {
        assert_eq!(chat.now - chat.start, Duration::from_millis(model.now));
        for (i, &conn) in chat.conns.iter().enumerate() {
            let expected = &model.conns[i];
            assert_eq!(chat.server.is_open(conn), expected.open, "c{i} open");
            let username = expected
                .login
                .filter(|_| expected.open)
                .map(|class| model.logins[&class].display.as_str());
            assert_eq!(chat.server.username(conn), username, "c{i} login");
        }
        assert_eq!(
            chat.server.connection_count(),
            model.open_conns().len(),
            "open connections"
        );
        assert_eq!(chat.server.login_count(), model.held_logins(), "held names");
        let failures = model
            .failures
            .values()
            .filter(|(ends_at, _)| *ends_at > model.now)
            .count();
        assert_eq!(
            chat.server.tracked_addresses(),
            failures,
            "tracked addresses"
        );
        // Every open connection, held name and tracked address is something
        // to wake up for, and soon.
        if !model.open_conns().is_empty() || model.held_logins() > 0 || failures > 0 {
            let next = chat.server.poll_timeout().expect("a wake-up is pending");
            let latest = model.now + PING_INTERVAL_MS.max(FAILURE_WINDOW_MS).max(LOGIN_TTL_MS);
            assert!(next - chat.start <= Duration::from_millis(latest));
        }
    }
}

fn proptest_config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // See core_never_panics.rs: ChaCha dominates an unoptimised run.
        rng_algorithm: RngAlgorithm::XorShift,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

prop_state_machine! {
    #![proptest_config(proptest_config())]

    #[test]
    fn the_core_does_what_the_model_says(sequential 1..80 => CoreMatchesModel);
}
