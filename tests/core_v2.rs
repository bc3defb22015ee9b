//! Protocol v2 in the core: negotiation per connection, seq and timestamps,
//! replyTo, catch-up history, presence and logout — and v1 connections
//! seeing none of it (the harness checks every v1 frame's shape).

mod common;

use common::*;
use wschat::{Config, Event, Inbound};

fn t(ms: u64) -> u64 {
    EPOCH_MS + ms
}

#[test]
fn v1_and_v2_connections_each_get_their_version_of_a_broadcast() {
    let mut h = Harness::default();
    let old = h.open();
    let new = h.open_v2();
    h.advance(ms(1500));
    h.login(new, "nova");
    assert_eq!(
        h.drain(),
        [
            send(
                old,
                r#"{"type":"loginBroadcast","id":"*","username":"nova","location":"127.0.0.1"}"#
            ),
            send(
                new,
                &format!(
                    r#"{{"type":"loginBroadcast","id":"*","username":"nova","location":"127.0.0.1","timestamp":{}}}"#,
                    t(1500)
                )
            ),
            send(
                new,
                r#"{"type":"loginMessage","id":"*","replyTo":"l","username":"nova","location":"127.0.0.1","secret":"<secret>"}"#
            ),
            send(
                new,
                r#"{"type":"history","id":"*","replyTo":"l","messages":[],"complete":true}"#
            ),
        ]
    );
    h.login(old, "olga");
    let _ = h.drain();
    h.say(new, "hi");
    assert_eq!(
        h.drain(),
        [
            send(
                old,
                r#"{"type":"textBroadcast","id":"*","username":"nova","message":"hi"}"#
            ),
            send(
                new,
                &format!(
                    r#"{{"type":"textBroadcast","id":"*","replyTo":"m","username":"nova","message":"hi","seq":1,"timestamp":{}}}"#,
                    t(1500)
                )
            ),
        ]
    );
    h.advance(ms(20));
    h.say(old, "yo");
    assert_eq!(
        h.drain(),
        [
            send(
                old,
                r#"{"type":"textBroadcast","id":"*","username":"olga","message":"yo"}"#
            ),
            send(
                new,
                &format!(
                    r#"{{"type":"textBroadcast","id":"*","username":"olga","message":"yo","seq":2,"timestamp":{}}}"#,
                    t(1520)
                )
            ),
        ]
    );
}

#[test]
fn errors_carry_reply_to_for_v2_only() {
    let mut h = Harness::default();
    let old = h.open();
    let new = h.open_v2();
    for conn in [old, new] {
        h.text(conn, r#"{"type":"textFromUser","id":"x1","text":"early"}"#);
        h.text(conn, r#"{"type":"login","id":"x2"}"#);
    }
    assert_eq!(
        h.drain(),
        [
            send(
                old,
                r#"{"type":"errorMessage","error":"messagingWhileNotLoggedIn","id":"*","description":"log in before sending messages"}"#
            ),
            send(
                old,
                r#"{"type":"errorMessage","error":"invalidJson","id":"*","description":"missing field \"username\""}"#
            ),
            send(
                new,
                r#"{"type":"errorMessage","error":"messagingWhileNotLoggedIn","id":"*","replyTo":"x1","description":"log in before sending messages"}"#
            ),
            send(
                new,
                r#"{"type":"errorMessage","error":"invalidJson","id":"*","replyTo":"x2","description":"missing field \"username\""}"#
            ),
        ]
    );
}

#[test]
fn v2_only_messages_are_unknown_types_on_v1() {
    let mut h = Harness::default();
    let old = h.logged_in("olga");
    h.text(old, r#"{"type":"listUsers","id":"u"}"#);
    h.text(old, r#"{"type":"logout","id":"o"}"#);
    assert_eq!(
        h.drain(),
        [
            send(
                old,
                r#"{"type":"errorMessage","error":"invalidJson","id":"*","description":"unknown variant \"listUsers\", expected \"login\" or \"textFromUser\""}"#
            ),
            send(
                old,
                r#"{"type":"errorMessage","error":"invalidJson","id":"*","description":"unknown variant \"logout\", expected \"login\" or \"textFromUser\""}"#
            ),
        ]
    );
    assert_eq!(
        h.server.username(old),
        Some("olga"),
        "a v1 logout does nothing"
    );
}

#[test]
fn seq_increases_by_one_per_message_across_senders() {
    let mut h = Harness::default();
    let a = h.logged_in("a");
    let b = h.logged_in("b");
    let watcher = h.open_v2();
    for (i, conn) in [a, b, a, b].into_iter().enumerate() {
        h.say(conn, &format!("m{i}"));
    }
    let seqs: Vec<u64> = h
        .drain()
        .into_iter()
        .filter_map(|o| match o {
            Out::Send(c, f) if c == watcher => {
                serde_json::from_str::<serde_json::Value>(&f).unwrap()["seq"].as_u64()
            }
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

/// Logs `conn` in over v2 with `since` and returns the history frame.
fn login_since(
    h: &mut Harness,
    conn: wschat::ConnectionId,
    name: &str,
    since: Option<u64>,
) -> serde_json::Value {
    let mut login = serde_json::json!({"type": "login", "id": "l", "username": name});
    if let Some(since) = since {
        login["since"] = since.into();
    }
    h.text(conn, &login.to_string());
    let frames: Vec<serde_json::Value> = h
        .drain()
        .into_iter()
        .filter_map(|o| match o {
            Out::Send(c, f) if c == conn => Some(serde_json::from_str(&f).unwrap()),
            _ => None,
        })
        .collect();
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["loginBroadcast", "loginMessage", "history"]);
    frames[2].clone()
}

fn history_texts(history: &serde_json::Value) -> (Vec<String>, bool) {
    let texts = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["type"], "textBroadcast");
            assert!(
                m.get("replyTo").is_none(),
                "history entries are not replies"
            );
            format!("{}:{}", m["seq"], m["message"].as_str().unwrap())
        })
        .collect();
    (texts, history["complete"].as_bool().unwrap())
}

fn chat(h: &mut Harness, count: u64) {
    let speaker = h.logged_in("speaker");
    for i in 1..=count {
        h.say(speaker, &format!("m{i}"));
    }
    let _ = h.drain();
}

#[test]
fn history_after_since_inside_the_ring_at_its_edge_and_beyond() {
    let config = Config {
        history_size: 3,
        ..Config::default()
    };
    let mut h = Harness::new(config);
    chat(&mut h, 5); // the ring holds seq 3, 4, 5

    let inside = h.open_v2();
    let history = login_since(&mut h, inside, "in", Some(3));
    assert_eq!(history["replyTo"], "l");
    assert_eq!(
        history_texts(&history),
        (vec!["4:m4".into(), "5:m5".into()], true)
    );

    let edge = h.open_v2();
    let history = login_since(&mut h, edge, "edge", Some(2));
    assert_eq!(
        history_texts(&history),
        (vec!["3:m3".into(), "4:m4".into(), "5:m5".into()], true)
    );

    let beyond = h.open_v2();
    let history = login_since(&mut h, beyond, "beyond", Some(0));
    assert_eq!(
        history_texts(&history),
        (vec!["3:m3".into(), "4:m4".into(), "5:m5".into()], false)
    );

    let current = h.open_v2();
    let history = login_since(&mut h, current, "current", Some(5));
    assert_eq!(history_texts(&history), (vec![], true));

    // A `since` the server never reached (it restarted): all it holds, and
    // a warning that the client may have missed something.
    let future = h.open_v2();
    let history = login_since(&mut h, future, "future", Some(99));
    assert_eq!(
        history_texts(&history),
        (vec!["3:m3".into(), "4:m4".into(), "5:m5".into()], false)
    );
}

#[test]
fn a_newcomer_gets_the_latest_history_on_join_messages() {
    let config = Config {
        history_on_join: 2,
        ..Config::default()
    };
    let mut h = Harness::new(config);
    chat(&mut h, 4);
    let newcomer = h.open_v2();
    let history = login_since(&mut h, newcomer, "newbie", None);
    assert_eq!(
        history_texts(&history),
        (vec!["3:m3".into(), "4:m4".into()], true)
    );
}

#[test]
fn history_entries_keep_their_original_timestamps() {
    let mut h = Harness::default();
    let speaker = h.logged_in("speaker");
    h.advance(secs(3));
    h.say(speaker, "early");
    h.advance(secs(60));
    let _ = h.drain();
    let late = h.open_v2();
    let history = login_since(&mut h, late, "late", Some(0));
    assert_eq!(history["messages"][0]["timestamp"], t(3000));
}

#[test]
fn presence_counts_devices_and_a_user_leaves_with_their_last_connection() {
    let mut h = Harness::default();
    let watcher = h.open_v2();
    h.login(watcher, "watcher");
    let phone = h.logged_in("alice");
    let secret = h.secret_of(phone);
    let laptop = h.open();
    h.login_with_secret(laptop, "alice", &secret);
    let _ = h.drain();

    h.text(watcher, r#"{"type":"listUsers","id":"u1"}"#);
    assert_eq!(
        h.drain(),
        [send(
            watcher,
            r#"{"type":"userList","id":"*","replyTo":"u1","users":[{"username":"alice","connections":2},{"username":"watcher","connections":1}]}"#
        )]
    );

    h.advance(secs(2));
    h.close(phone);
    assert_eq!(
        h.drain(),
        [],
        "alice still has her laptop: she has not left"
    );
    h.close(laptop);
    assert_eq!(
        h.drain(),
        [send(
            watcher,
            &format!(
                r#"{{"type":"logoutBroadcast","id":"*","username":"alice","reason":"disconnected","timestamp":{}}}"#,
                t(2000)
            )
        )]
    );
    h.text(watcher, r#"{"type":"listUsers","id":"u2"}"#);
    assert_eq!(
        h.drain(),
        [send(
            watcher,
            r#"{"type":"userList","id":"*","replyTo":"u2","users":[{"username":"watcher","connections":1}]}"#
        )]
    );
}

#[test]
fn an_evicted_user_leaves_with_reason_evicted() {
    let mut h = Harness::default();
    let watcher = h.open_v2();
    h.login(watcher, "watcher");
    let _ghost = h.logged_in("ghost");
    // The watcher keeps answering; the ghost never does.
    let mut leaves = Vec::new();
    for _ in 0..30 {
        for (_, out) in h.advance(secs(10)) {
            if let Out::Send(c, f) = out
                && c == watcher
            {
                leaves.push(f);
            }
        }
        h.frame(watcher, Inbound::Pong(b"wschat"));
    }
    assert_eq!(
        leaves,
        [format!(
            r#"{{"type":"logoutBroadcast","id":"*","username":"ghost","reason":"evicted","timestamp":{}}}"#,
            t(300_000)
        )]
    );
}

#[test]
fn logout_releases_the_name_for_every_device_at_once() {
    let mut h = Harness::default();
    let phone = h.open_v2();
    h.login(phone, "alice");
    let _ = h.drain();
    let secret = h.secret_of(phone);
    let laptop = h.open_v2();
    h.login_with_secret(laptop, "alice", &secret);
    let _ = h.drain();

    h.text(phone, r#"{"type":"logout","id":"o1"}"#);
    assert_eq!(
        h.drain(),
        [
            send(
                phone,
                &format!(
                    r#"{{"type":"logoutBroadcast","id":"*","username":"alice","reason":"logout","timestamp":{}}}"#,
                    t(0)
                )
            ),
            send(
                laptop,
                &format!(
                    r#"{{"type":"logoutBroadcast","id":"*","username":"alice","reason":"logout","timestamp":{}}}"#,
                    t(0)
                )
            ),
        ]
    );
    assert_eq!(
        h.events().last(),
        Some(&Event::LoggedOut {
            username: "alice".into()
        })
    );
    // Both devices are still open but no longer logged in.
    assert!(h.server.is_open(phone) && h.server.is_open(laptop));
    assert_eq!(
        (h.server.username(phone), h.server.username(laptop)),
        (None, None)
    );
    h.say(laptop, "still me?");
    assert_eq!(
        h.drain(),
        [send(
            laptop,
            r#"{"type":"errorMessage","error":"messagingWhileNotLoggedIn","id":"*","replyTo":"m","description":"log in before sending messages"}"#
        )]
    );
    // The old secret is worthless: the name is free, and whoever takes it
    // gets a new secret.
    let other = h.open_v2();
    h.login_with_secret(other, "ALICE", &secret);
    let out = h.drain();
    assert!(
        matches!(&out[..], [.., Out::Send(c, f), _] if *c == other && f.contains("loginMessage"))
    );
    assert_ne!(h.secret_of(other), secret);
    // Closing the logged-out devices tells nobody anything more.
    h.close(phone);
    h.close(laptop);
    assert_eq!(h.drain(), []);
}

#[test]
fn list_users_and_logout_need_a_login() {
    let mut h = Harness::default();
    let new = h.open_v2();
    h.text(new, r#"{"type":"listUsers","id":"u"}"#);
    h.text(new, r#"{"type":"logout","id":"o"}"#);
    assert_eq!(
        h.drain(),
        [
            send(
                new,
                r#"{"type":"errorMessage","error":"messagingWhileNotLoggedIn","id":"*","replyTo":"u","description":"log in before listing users"}"#
            ),
            send(
                new,
                r#"{"type":"errorMessage","error":"messagingWhileNotLoggedIn","id":"*","replyTo":"o","description":"log in before logging out"}"#
            ),
        ]
    );
}

#[test]
fn shutdown_sends_no_leave_notices() {
    let mut h = Harness::default();
    let a = h.open_v2();
    h.login(a, "a");
    let b = h.open_v2();
    h.login(b, "b");
    let _ = h.drain();
    h.server.shutdown(h.now);
    assert_eq!(
        h.drain(),
        [
            Out::Close(a, 1001, "server shutting down"),
            Out::Close(b, 1001, "server shutting down"),
        ]
    );
}

#[test]
fn a_broadcast_is_encoded_once_per_version() {
    let mut h = Harness::default();
    let sender = h.open_v2();
    h.login(sender, "s");
    let conns: Vec<_> = (0..4)
        .map(|i| if i % 2 == 0 { h.open() } else { h.open_v2() })
        .collect();
    let _ = h.drain();
    h.say(sender, "x");
    let mut pointers = std::collections::HashMap::new();
    while let Some(action) = h.server.poll_action() {
        if let wschat::Action::Send { to, frame } = action {
            pointers.insert(to, frame.bytes().as_ptr());
        }
    }
    assert_eq!(
        pointers[&conns[0]], pointers[&conns[2]],
        "v1 recipients share bytes"
    );
    assert_eq!(
        pointers[&conns[1]], pointers[&conns[3]],
        "v2 recipients share bytes"
    );
    assert_ne!(pointers[&conns[0]], pointers[&conns[1]]);
    assert_ne!(
        pointers[&sender], pointers[&conns[1]],
        "the sender's copy carries replyTo"
    );
}
