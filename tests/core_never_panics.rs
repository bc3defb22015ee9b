//! Randomized checks that the core is total: any bytes in any frame, and any
//! interleaving of opens, frames, closes, clock jumps and drains, never make
//! it panic, and it never addresses a connection that is closed. A quick
//! pass for `cargo test`; the `core` fuzz target (`fuzz/`, see
//! `docs/TESTING.md`) does the same for hours.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::{SeedableRng, rngs::StdRng};
use std::time::SystemTime;

use wschat::server::{Claim, Failed, Request, Snapshot};
use wschat::username::Username;
use wschat::{
    Action, ClientMessage, Config, ConnectionId, Inbound, Server, ServerMessage, Version,
};

/// Anything a peer might put in a text frame: raw bytes, printable junk,
/// JSON close enough to the protocol to reach the deeper checks, and (often)
/// well-formed messages of every type, valid or not by the protocol's rules.
fn text_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => well_formed(),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => chars(48).prop_map(String::into_bytes),
        1 => concat!(
            r#"\{"type":"(login|textFromUser|listUsers|logout|shout)"(,"(id|username|text|secret|since)":"#,
            r#"("[a-zA-Z \u{301}\u{200b}\u{3000}]{0,6}"|null|7|0|\[\]|\{\}))*\}"#
        )
        .prop_map(String::into_bytes),
    ]
}

/// A message of the protocol, well-formed JSON with every field typed
/// right: a login with any of `NAMES` (and maybe a secret and `since`), a
/// text of up to 12 characters, `listUsers` or `logout`.
fn well_formed() -> impl Strategy<Value = Vec<u8>> {
    let login = (0..NAMES.len(), any::<bool>(), prop::option::of(0..5u64)).prop_map(
        |(name, secret, since)| ClientMessage::Login {
            id: "l".into(),
            username: NAMES[name].into(),
            secret: secret.then(|| "s".into()),
            since,
            epoch: None,
            rooms: None,
        },
    );
    let text = chars(12).prop_map(|text| ClientMessage::TextFromUser {
        id: "m".into(),
        text,
        room: None,
    });
    prop_oneof![
        3 => login,
        2 => text,
        1 => Just(ClientMessage::ListUsers { id: "u".into() }),
        1 => Just(ClientMessage::Logout { id: "o".into() }),
    ]
    .prop_map(|message| message.encode())
}

/// The types of the frames a lone connection (v2 or not, logged in as
/// "alice" or not) must be answered with for `bytes`, as the protocol says.
fn expected_answer(bytes: &[u8], logged_in: bool, v2: bool) -> Vec<&'static str> {
    let version = if v2 { Version::V2 } else { Version::V1 };
    let error = vec!["errorMessage"];
    match ClientMessage::decode_for(bytes, version) {
        Err(_) => error,
        Ok(ClientMessage::Login { .. }) if logged_in => error,
        Ok(ClientMessage::Login { username, .. }) => {
            match Username::parse(&username, Config::default().max_username_chars) {
                Err(_) => error,
                Ok(_) if v2 => vec!["loginBroadcast", "loginMessage", "history"],
                Ok(_) => vec!["loginBroadcast", "loginMessage"],
            }
        }
        Ok(_) if !logged_in => error,
        Ok(ClientMessage::TextFromUser { text, .. }) => {
            // The driver's config allows 8 characters.
            if text.trim().is_empty() || text.chars().count() > 8 {
                error
            } else {
                vec!["textBroadcast"]
            }
        }
        Ok(ClientMessage::ListUsers { .. }) => vec!["userList"],
        Ok(ClientMessage::Logout { .. }) => vec!["logoutBroadcast"],
        Ok(other) => panic!("a v3 message decoded for a v1 or v2 connection: {other:?}"),
    }
}

/// Up to `max` arbitrary characters (cheaper to generate than a regex).
fn chars(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

const NAMES: &[&str] = &[
    "alice",
    "ALICE",
    "Jose\u{301}",
    "Jos\u{e9}",
    "",
    " bob",
    "b\u{200b}b",
];

#[derive(Debug, Clone)]
enum Op {
    /// Open a connection speaking v2 (true) or v1.
    Open(bool),
    Close(usize),
    Text(usize, Vec<u8>),
    Binary(usize, Vec<u8>),
    Ping(usize, Vec<u8>),
    /// This many pings at once.
    PingFlood(usize, u8),
    Pong(usize),
    /// Log in as `NAMES[name]`, with the secret of an earlier login
    /// (by index), a wrong one, or none.
    Login {
        conn: usize,
        name: usize,
        secret: Option<usize>,
    },
    Say(usize, String),
    /// Jump the clock forward, then wake the core once (a late driver).
    Advance(u64),
    Drain,
    Shutdown,
    /// A server with a store: settle the next `n` writes, failing them or not.
    Settle(u8, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let conn = any::<usize>();
    prop_oneof![
        3 => any::<bool>().prop_map(Op::Open),
        1 => conn.prop_map(Op::Close),
        3 => (conn, text_payload()).prop_map(|(c, b)| Op::Text(c, b)),
        1 => (conn, prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(c, b)| Op::Binary(c, b)),
        1 => (conn, prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(c, b)| Op::Ping(c, b)),
        1 => (conn, 0..40u8).prop_map(|(c, n)| Op::PingFlood(c, n)),
        1 => conn.prop_map(Op::Pong),
        3 => (conn, 0..NAMES.len(), prop::option::of(any::<usize>()))
            .prop_map(|(conn, name, secret)| Op::Login { conn, name, secret }),
        2 => (conn, chars(12)).prop_map(|(c, t)| Op::Say(c, t)),
        2 => prop_oneof![0..2_000u64, 0..1_000_000u64].prop_map(Op::Advance),
        3 => Just(Op::Drain),
        1 => Just(Op::Shutdown),
        3 => (0..8u8, prop::bool::weighted(0.2)).prop_map(|(n, fail)| Op::Settle(n, fail)),
    ]
}

/// A driver that checks every action against what it knows is closed.
struct Driver {
    server: Server<StdRng>,
    now: Instant,
    opened: Vec<ConnectionId>,
    closed: HashSet<ConnectionId>,
    secrets: Vec<String>,
    /// Writes asked for and not settled yet (a server with a store).
    unsettled: std::collections::VecDeque<Request>,
    last_seq: u64,
}

impl Driver {
    fn new() -> Self {
        Driver::with(Server::new)
    }

    /// One node of a cluster, its shared store played by `settle`.
    fn in_cluster() -> Self {
        Driver::with(|config, rng| {
            let snapshot = Snapshot {
                epoch: "e".into(),
                ..Snapshot::default()
            };
            Server::cluster(config, rng, snapshot, SystemTime::now(), Instant::now())
        })
    }

    /// A server with a store, started empty.
    fn with_store() -> Self {
        Driver::with(|config, rng| {
            let snapshot = Snapshot {
                epoch: "e".into(),
                ..Snapshot::default()
            };
            Server::restore(config, rng, snapshot, SystemTime::now(), Instant::now())
        })
    }

    fn with(make: impl FnOnce(Config, StdRng) -> Server<StdRng>) -> Self {
        // Short timings so that clock jumps reach pings, evictions, expiry
        // and login timeouts, and small limits that random input trips.
        let config = Config {
            ping_interval: Duration::from_secs(2),
            ping_retry: Duration::from_millis(100),
            evict_after: Duration::from_secs(10),
            login_ttl: Duration::from_secs(20),
            max_message_chars: 8,
            message_rate: 2,
            message_burst: 3,
            login_failures_per_minute: 1,
            login_failure_addresses: 1,
            login_timeout: Duration::from_secs(5),
            peer_ping_rate: 1,
            peer_ping_burst: 2,
            ..Config::default()
        };
        Driver {
            server: make(config, StdRng::seed_from_u64(0)),
            now: Instant::now(),
            opened: Vec::new(),
            closed: HashSet::new(),
            secrets: Vec::new(),
            unsettled: Default::default(),
            last_seq: 0,
        }
    }

    /// Some connection ever opened (open or closed), or none yet.
    fn pick(&self, i: usize) -> Option<ConnectionId> {
        (!self.opened.is_empty()).then(|| self.opened[i % self.opened.len()])
    }

    fn frame(&mut self, i: usize, frame: Inbound<'_>) {
        if let Some(conn) = self.pick(i) {
            self.server.handle_frame(conn, frame, self.now);
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Open(v2) => {
                let version = if v2 { Version::V2 } else { Version::V1 };
                // Two addresses, for the table of wrong secrets per address.
                let address = ["10.0.0.1", "10.0.0.2"][self.opened.len() % 2];
                let conn = self.server.handle_open(address, version, self.now);
                assert!(self.opened.iter().all(|&c| c != conn), "id reused");
                self.opened.push(conn);
            }
            Op::Close(i) => {
                if let Some(conn) = self.pick(i) {
                    // A report for a connection the core already closed (its
                    // Close still queued) is the harmless echo of that close.
                    if self.server.is_open(conn) {
                        self.closed.insert(conn);
                    }
                    self.server.handle_close(conn, self.now);
                }
            }
            Op::Text(i, bytes) => self.frame(i, Inbound::Text(&bytes)),
            Op::Binary(i, bytes) => self.frame(i, Inbound::Binary(&bytes)),
            Op::Ping(i, bytes) => self.frame(i, Inbound::Ping(&bytes)),
            Op::PingFlood(i, count) => {
                for _ in 0..count {
                    self.frame(i, Inbound::Ping(b"p"));
                }
            }
            Op::Pong(i) => self.frame(i, Inbound::Pong(b"")),
            Op::Login { conn, name, secret } => {
                let secret = secret.map(|s| match self.secrets.len() {
                    0 => "wrong".to_owned(),
                    n => self.secrets[s % n].clone(),
                });
                let json = ClientMessage::Login {
                    id: "l".into(),
                    username: NAMES[name].into(),
                    secret,
                    since: None,
                    epoch: None,
                    rooms: None,
                }
                .encode();
                self.frame(conn, Inbound::Text(&json));
            }
            Op::Say(i, text) => {
                let json = ClientMessage::TextFromUser {
                    id: "m".into(),
                    text,
                    room: None,
                }
                .encode();
                self.frame(i, Inbound::Text(&json));
            }
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                self.server.handle_timeout(self.now);
            }
            Op::Drain => self.drain(),
            Op::Shutdown => self.server.shutdown(self.now),
            Op::Settle(n, fail) => self.settle(usize::from(n), fail),
        }
    }

    /// Settles the oldest `n` writes asked for, as a store would: in order,
    /// numbering appends that succeed.
    fn settle(&mut self, n: usize, fail: bool) {
        self.unsettled
            .extend(std::iter::from_fn(|| self.server.poll_request()));
        for _ in 0..n {
            let Some(request) = self.unsettled.pop_front() else {
                return;
            };
            let answer = match request {
                _ if fail => request.fail(Failed("disk full".into())),
                Request::Write(ticket, _) => ticket.answer(Ok(())),
                Request::Append(ticket, _) => {
                    self.last_seq += 1;
                    ticket.answer(Ok(self.last_seq))
                }
                // A shared store's decisions, varied by ticket.
                Request::Reserve(ticket, reserve) => {
                    let claim =
                        [Claim::Fresh, Claim::Reclaimed, Claim::Taken][ticket.get() as usize % 3];
                    ticket.answer(Ok((claim, reserve.display)))
                }
                Request::Disconnect(ticket, _) => ticket.answer(Ok(ticket.get() % 2 == 0)),
                Request::Online(ticket) => ticket.answer(Ok(vec![("x".into(), 1)])),
            };
            self.server.handle_answer(answer, self.now);
            // An outcome may lead to more requests (a login answered for a
            // connection that closed meanwhile is given back): in order.
            self.unsettled
                .extend(std::iter::from_fn(|| self.server.poll_request()));
        }
    }

    /// Applies `ops`, then lets every request settle, and again after each
    /// jump of the clock in `later` (ms).
    fn run_then_settle(&mut self, ops: Vec<Op>, later: &[u64]) {
        for op in ops {
            self.apply(op);
        }
        self.apply(Op::Settle(u8::MAX, false));
        self.drain();
        for &ms in later {
            self.apply(Op::Advance(ms));
            self.apply(Op::Settle(u8::MAX, false));
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.server.poll_action() {
            // The action borrows the core, which the checks below consult.
            match action.into_owned() {
                Action::Send { to, frame } => {
                    self.assert_open(to, "frame");
                    let message = ServerMessage::decode(frame.bytes())
                        .unwrap_or_else(|e| panic!("undecodable frame {frame:?}: {e}"));
                    if let ServerMessage::LoginMessage { secret, .. } = message {
                        self.secrets.push(secret.into_owned());
                    }
                }
                Action::Ping { to, .. } => self.assert_open(to, "ping"),
                Action::Pong { to, .. } => self.assert_open(to, "pong"),
                Action::Close { to, .. } => {
                    assert!(!self.closed.contains(&to), "second close of {to:?}");
                    assert!(!self.server.is_open(to), "{to:?} closed but still open");
                    self.closed.insert(to);
                }
            }
        }
        while self.server.poll_event().is_some() {}
        // Open connections and idle logins always have a wake-up pending.
        let idle = self.server.connection_count() == 0 && self.server.login_count() == 0;
        assert!(idle || self.server.poll_timeout().is_some());
    }

    fn assert_open(&self, to: ConnectionId, what: &str) {
        assert!(
            self.opened.contains(&to) && !self.closed.contains(&to) && self.server.is_open(to),
            "{what} for closed or unknown connection {to:?}"
        );
    }
}

proptest! {
    // XorShift: the default ChaCha generator dominates the run time in an
    // unoptimised test build, and these cases need no cryptographic quality.
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        // Failing cases are saved beside this file, to be replayed first.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn decoding_any_bytes_never_panics_and_errors_say_why(bytes in text_payload()) {
        if let Err(e) = ClientMessage::decode(&bytes) {
            prop_assert!(!e.description().is_empty());
        }
        let _ = ServerMessage::decode(&bytes);
    }

    #[test]
    fn any_bytes_in_a_text_or_binary_frame_get_an_answer_and_no_panic(
        bytes in text_payload(),
        logged_in in any::<bool>(),
        v2 in any::<bool>(),
    ) {
        let mut d = Driver::new();
        d.apply(Op::Open(v2));
        if logged_in {
            d.apply(Op::Login { conn: 0, name: 0, secret: None });
            d.drain();
        }
        d.apply(Op::Text(0, bytes.clone()));
        let mut answers = Vec::new();
        while let Some(action) = d.server.poll_action() {
            let Action::Send { frame, .. } = action else {
                panic!("expected frames only, got {action:?}");
            };
            let message: serde_json::Value = serde_json::from_slice(frame.bytes()).unwrap();
            answers.push(message["type"].as_str().unwrap().to_owned());
        }
        // Exactly what the protocol says: never silence, never more.
        prop_assert_eq!(answers, expected_answer(&bytes, logged_in, v2));
        d.apply(Op::Binary(0, bytes));
        let error = d.server.poll_action();
        let Some(Action::Send { frame, .. }) = error else {
            panic!("expected bytesReceived, got {error:?}");
        };
        prop_assert!(frame.as_str().contains(r#""error":"bytesReceived""#));
        prop_assert_eq!(d.server.poll_action(), None);
    }

    #[test]
    fn any_sequence_of_inputs_never_panics_nor_addresses_a_closed_connection(
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut d = Driver::new();
        for op in ops {
            d.apply(op);
        }
        d.drain();
        // Whatever happened, silence evicts everyone, then every login expires.
        d.apply(Op::Advance(3_600_000));
        d.drain();
        d.apply(Op::Advance(60_000));
        d.drain();
        prop_assert_eq!(d.server.connection_count(), 0);
        prop_assert_eq!(d.server.login_count(), 0);
    }

    #[test]
    fn in_a_cluster_any_sequence_and_any_answers_of_its_store_never_panic(
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut d = Driver::in_cluster();
        d.run_then_settle(ops, &[3_600_000]);
        prop_assert_eq!(d.server.connection_count(), 0);
        prop_assert_eq!(d.server.requests_in_flight(), 0);
    }

    #[test]
    fn with_a_store_any_sequence_and_any_write_failures_never_panic(
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut d = Driver::with_store();
        // Silence evicts everyone and every login expires, as without a store.
        d.run_then_settle(ops, &[3_600_000, 60_000]);
        prop_assert_eq!(d.server.connection_count(), 0);
        prop_assert_eq!(d.server.login_count(), 0);
        prop_assert_eq!(d.server.requests_in_flight(), 0);
    }
}
