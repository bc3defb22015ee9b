//! The core with a store (issue 13), on the virtual clock: every durable fact
//! leaves as a write, a login and a message are answered only once their
//! writes are reported durable, a failed write is refused with
//! `unavailable`, and a server restored from a snapshot holds the names,
//! history and numbering it was given.
//!
//! Writes are compared as whole lists, like actions.

mod common;

use std::sync::Arc;

use common::*;
use wschat::protocol::LeaveReason;
use wschat::server::{Failed, Request, SecretHash, Snapshot, StoredMessage, StoredName, Write};
use wschat::{Config, ConnectionId, Event};

fn key(name: &str) -> Arc<str> {
    name.into()
}

/// The store reports `request` failed.
fn fail(h: &mut Harness, request: &Request) {
    h.answer(request.fail(Failed("disk full".into())));
}

/// The store reports `request`, a plain write, durable.
fn durable(h: &mut Harness, request: &Request) {
    let Request::Write(ticket, _) = request else {
        panic!("not a plain write: {request:?}");
    };
    h.answer(ticket.answer(Ok(())));
}

/// The store reports `request`, an append, durable as number `seq`.
fn appended(h: &mut Harness, request: &Request, seq: u64) {
    let Request::Append(ticket, _) = request else {
        panic!("not an append: {request:?}");
    };
    h.answer(ticket.answer(Ok(seq)));
}

/// The facts of plain writes, without their tickets.
fn facts(requests: Vec<Request>) -> Vec<Write> {
    requests
        .into_iter()
        .map(|request| match request {
            Request::Write(_, write) => write,
            other => panic!("not a plain write: {other:?}"),
        })
        .collect()
}

/// A store with nothing in it yet.
fn empty() -> Snapshot {
    Snapshot {
        epoch: "epoch-one".into(),
        ..Snapshot::default()
    }
}

/// Only the writes; the periodic `Alive` of a server with a store is
/// checked by its own test.
fn writes(h: &mut Harness) -> Vec<Request> {
    h.writes()
        .into_iter()
        .filter(|r| !matches!(r, Request::Write(_, Write::Alive { .. })))
        .collect()
}

/// Logs `name` in on a fresh connection and settles its claim as durable.
fn durable_login(h: &mut Harness, name: &str) -> ConnectionId {
    let conn = h.open();
    h.login(conn, name);
    let claim = writes(h);
    assert!(
        matches!(&claim[..], [Request::Write(_, Write::Claim { .. })]),
        "{claim:?}"
    );
    durable(h, &claim[0]);
    let _ = h.drain();
    let _ = h.events();
    conn
}

#[test]
fn a_login_is_answered_once_its_claim_is_durable() {
    let mut h = Harness::restored(Config::default(), empty());
    let watcher = durable_login(&mut h, "watcher");
    let alice = h.open();
    h.login(alice, "alice");
    // Nothing is said before the name is saved.
    assert_eq!(h.drain(), []);
    let claim = writes(&mut h);
    let [
        Request::Write(
            ticket,
            Write::Claim {
                key,
                display,
                secret,
            },
        ),
    ] = &claim[..]
    else {
        panic!("{claim:?}");
    };
    assert_eq!((&**key, &**display), ("alice", "alice"));
    h.answer(ticket.answer(Ok(())));
    assert_eq!(h.drain(), login_outcome(&[watcher, alice], alice, "alice"));
    // The secret told is the one whose hash was saved, never the secret itself.
    assert_eq!(*secret, SecretHash::of(&h.secret_of(alice)));
}

#[test]
fn a_message_is_broadcast_with_the_stores_seq_once_it_is_durable() {
    let snapshot = Snapshot {
        last_seq: 40,
        ..empty()
    };
    let mut h = Harness::restored(Config::default(), snapshot);
    let alice = durable_login(&mut h, "alice");
    let new = h.open_v2();
    h.say(alice, "hello");
    assert_eq!(h.drain(), []);
    let append = writes(&mut h);
    let [Request::Append(ticket, append)] = &append[..] else {
        panic!("{append:?}");
    };
    let (text, username, timestamp) = (&*append.text, &*append.username, append.timestamp);
    assert_eq!((text, username, timestamp), ("hello", "alice", t(0)));
    h.answer(ticket.answer(Ok(41)));
    assert_eq!(
        h.drain(),
        [
            send(alice, &text_broadcast("alice", "hello")),
            send(
                new,
                &format!(
                    r#"{{"type":"textBroadcast","id":"*","username":"alice","message":"hello","seq":41,"timestamp":{}}}"#,
                    t(0)
                )
            ),
        ]
    );
}

fn t(ms: u64) -> u64 {
    EPOCH_MS + ms
}

#[test]
fn a_failed_write_refuses_the_message_and_service_resumes_with_the_next() {
    let mut h = Harness::restored(Config::default(), empty());
    let alice = durable_login(&mut h, "alice");
    h.say(alice, "lost");
    h.say(alice, "kept");
    let appends = writes(&mut h);
    assert_eq!(appends.len(), 2);
    fail(&mut h, &appends[0]);
    assert_eq!(
        h.drain(),
        [error(
            alice,
            "unavailable",
            "the server could not save the message; it was not sent, try again in a moment"
        )]
    );
    assert_eq!(
        h.events(),
        [Event::WriteFailed {
            error: Failed("disk full".into())
        }]
    );
    // The store numbers what it keeps: no gap for the one it could not.
    appended(&mut h, &appends[1], 1);
    assert_eq!(h.drain(), [send(alice, &text_broadcast("alice", "kept"))]);
}

#[test]
fn a_claim_that_cannot_be_saved_leaves_the_name_free() {
    let mut h = Harness::restored(Config::default(), empty());
    let alice = h.open();
    h.login(alice, "alice");
    let claim = writes(&mut h);
    fail(&mut h, &claim[0]);
    assert_eq!(
        h.drain(),
        [error(
            alice,
            "unavailable",
            "the server could not save your login; try again in a moment"
        )]
    );
    assert_eq!(
        (h.server.username(alice), h.server.login_count()),
        (None, 0)
    );
    // Nothing of it was kept, so nothing of it is written; a retry works.
    assert_eq!(writes(&mut h), []);
    h.login(alice, "alice");
    let claim = writes(&mut h);
    durable(&mut h, &claim[0]);
    assert_eq!(h.drain(), login_outcome(&[alice], alice, "alice"));
}

#[test]
fn frames_sent_while_a_login_is_saved_are_answered_after_it_in_order() {
    let mut h = Harness::restored(Config::default(), empty());
    let alice = h.open_v2();
    h.text(alice, r#"{"type":"login","id":"l","username":"alice"}"#);
    h.text(alice, r#"{"type":"textFromUser","id":"m","text":"first"}"#);
    h.text(alice, r#"{"type":"listUsers","id":"u"}"#);
    assert_eq!(h.drain(), []);
    let claim = writes(&mut h);
    durable(&mut h, &claim[0]);
    let out = h.drain();
    let kinds: Vec<&str> = out
        .iter()
        .map(|o| match o {
            Out::Send(_, frame) => frame.split('"').nth(3).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    // The message waits for its own write; the list does not.
    assert_eq!(
        kinds,
        ["loginBroadcast", "loginMessage", "history", "userList"]
    );
    let append = writes(&mut h);
    assert!(matches!(&append[..], [Request::Append(..)]), "{append:?}");
}

#[test]
fn names_and_messages_journal_every_change_at_its_instant() {
    let config = Config {
        login_ttl: secs(600),
        ..without_login_timeout()
    };
    let mut h = Harness::restored(config, empty());
    let alice = durable_login(&mut h, "alice");
    let secret = h.secret_of(alice);
    // The last connection closes: held until ten minutes on.
    h.close(alice);
    assert_eq!(
        facts(writes(&mut h)),
        [Write::Idle {
            key: key("alice"),
            expires_at: t(600_000)
        }]
    );
    // Reclaimed: in use again, and answered once that is saved.
    h.advance(secs(60));
    let again = h.open();
    h.login_with_secret(again, "alice", &secret);
    let in_use = writes(&mut h);
    assert_eq!(facts(in_use.clone()), [Write::InUse { key: key("alice") }]);
    assert_eq!(h.drain(), []);
    durable(&mut h, &in_use[0]);
    assert_eq!(h.drain(), login_outcome(&[again], again, "alice"));
    // A second device of an online name writes nothing.
    let phone = h.open();
    h.login_with_secret(phone, "alice", &secret);
    assert_eq!(writes(&mut h), []);
    assert_eq!(h.drain().len(), 3);
    // Both leave; the TTL runs out; the release is written.
    h.close(again);
    h.close(phone);
    let _ = writes(&mut h);
    h.advance(secs(600));
    assert_eq!(
        facts(writes(&mut h)),
        [Write::Release { key: key("alice") }]
    );
}

#[test]
fn a_server_with_a_store_says_it_is_alive_every_30_seconds() {
    let mut h = Harness::restored(Config::default(), empty());
    let alive = |h: &mut Harness| facts(h.writes());
    assert_eq!(alive(&mut h), [Write::Alive { at: t(0) }]);
    h.advance(secs(30) - ms(1));
    assert_eq!(alive(&mut h), []);
    h.advance(ms(1));
    assert_eq!(alive(&mut h), [Write::Alive { at: t(30_000) }]);
}

#[test]
fn a_restored_server_holds_its_names_history_and_numbering() {
    let hash = |s: &str| SecretHash::of(s);
    let snapshot = Snapshot {
        epoch: "epoch-one".into(),
        last_seq: 7,
        messages: vec![
            StoredMessage {
                seq: 6,
                id: "i".repeat(21),
                timestamp: EPOCH_MS - 5000,
                username: "alice".into(),
                text: "before the restart".into(),
                notice: false,
            },
            StoredMessage {
                seq: 7,
                id: "j".repeat(21),
                timestamp: EPOCH_MS - 4000,
                username: "bob".into(),
                text: "me too".into(),
                notice: false,
            },
        ],
        names: vec![
            // Held for another minute.
            StoredName {
                key: "alice".into(),
                display: "Alice".into(),
                secret: hash(&"a".repeat(24)),
                expires_at: Some(EPOCH_MS + 60_000),
            },
            // Its TTL ran out while the server was down.
            StoredName {
                key: "gone".into(),
                display: "gone".into(),
                secret: hash(&"g".repeat(24)),
                expires_at: Some(EPOCH_MS - 1),
            },
            // In use when the server died, 30 s before it came back: held
            // for the TTL after that.
            StoredName {
                key: "bob".into(),
                display: "bob".into(),
                secret: hash(&"b".repeat(24)),
                expires_at: None,
            },
        ],
        alive_at: Some(EPOCH_MS - 30_000),
        rooms: Vec::new(),
        reads: Vec::new(),
        left_lobby: Vec::new(),
    };
    let mut h = Harness::restored(Config::default(), snapshot);
    assert_eq!(h.server.epoch(), "epoch-one");
    assert_eq!(
        facts(writes(&mut h)),
        [
            Write::Release { key: key("gone") },
            Write::Idle {
                key: key("bob"),
                expires_at: EPOCH_MS - 30_000 + 600_000
            },
        ]
    );
    assert_eq!(h.server.login_count(), 2);

    // Alice's secret reclaims her name; a wrong one does not; "gone" is free.
    let conn = h.open_v2();
    h.text(
        conn,
        r#"{"type":"login","id":"l","username":"alice","secret":"wrong"}"#,
    );
    assert_eq!(
        h.drain(),
        [send(
            conn,
            r#"{"type":"errorMessage","error":"loginTaken","id":"*","replyTo":"l","description":"the name \"Alice\" is taken; give its secret to reclaim it, or pick another"}"#
        )]
    );
    let login = serde_json::json!({"type": "login", "id": "l", "username": "alice",
        "secret": "a".repeat(24), "since": 6, "epoch": "epoch-one"});
    h.text(conn, &login.to_string());
    let in_use = writes(&mut h);
    durable(&mut h, &in_use[0]);
    let history = h.drain().pop().unwrap();
    assert_eq!(
        history,
        send(
            conn,
            &format!(
                r#"{{"type":"history","id":"*","replyTo":"l","epoch":"<epoch>","messages":[{{"type":"textBroadcast","id":"*","username":"bob","message":"me too","seq":7,"timestamp":{}}}],"complete":true}}"#,
                EPOCH_MS - 4000
            )
        )
    );
    // A `since` of another numbering counts from the start of this one.
    let other = h.open_v2();
    h.text(
        other,
        r#"{"type":"login","id":"l","username":"gone","since":7,"epoch":"older"}"#,
    );
    let claim = writes(&mut h);
    durable(&mut h, &claim[0]);
    let history = h.drain().pop().unwrap();
    let Out::Send(_, history) = history else {
        panic!("{history:?}")
    };
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let seqs: Vec<u64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!((seqs, &history["complete"]), (vec![6, 7], &false.into()));
}

#[test]
fn a_connection_that_closes_while_its_login_is_saved_is_never_announced() {
    let mut h = Harness::restored(Config::default(), empty());
    let watcher = h.open_v2();
    h.login(watcher, "watcher");
    let claim = writes(&mut h);
    durable(&mut h, &claim[0]);
    let _ = h.drain();
    let _ = h.events();
    let brief = h.open();
    h.login(brief, "brief");
    h.close(brief);
    let journal = facts(writes(&mut h));
    assert!(
        matches!(&journal[..], [Write::Claim { .. }, Write::Idle { .. }]),
        "{journal:?}"
    );
    // No leave notice for a join nobody heard of.
    assert_eq!(h.drain(), []);
    assert!(!h.events().iter().any(|e| matches!(
        e,
        Event::Left {
            reason: LeaveReason::Disconnected,
            ..
        }
    )),);
}
