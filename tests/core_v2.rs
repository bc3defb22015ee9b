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
                r#"{"type":"history","id":"*","replyTo":"l","epoch":"<epoch>","messages":[],"complete":true}"#
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
fn since_on_a_v1_login_is_ignored_whatever_it_holds() {
    let mut h = Harness::default();
    let old = h.open();
    h.text(
        old,
        r#"{"type":"login","id":"l","username":"olga","since":"yesterday"}"#,
    );
    assert_eq!(h.drain(), login_outcome(&[old], old, "olga"));
    // On v2 it is part of the protocol, and a wrong type is an error.
    let new = h.open_v2();
    h.text(
        new,
        r#"{"type":"login","id":"l","username":"nova","since":"yesterday"}"#,
    );
    assert_eq!(
        h.drain(),
        [send(
            new,
            r#"{"type":"errorMessage","error":"invalidJson","id":"*","replyTo":"l","description":"invalid type: string \"yesterday\", expected u64"}"#
        )]
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

/// The frame `conn` got last, as its text.
fn last_frame_to(out: &[Out], conn: wschat::ConnectionId) -> String {
    out.iter()
        .rev()
        .find_map(|o| match o {
            Out::Send(c, f) if *c == conn => Some(f.clone()),
            _ => None,
        })
        .expect("a frame")
}

#[test]
fn control_characters_are_neutralised_and_a_history_stays_within_its_byte_budget() {
    let mut h = Harness::new(without_message_limit());
    let attacker = h.logged_in("mallory");
    // Each U+0001 would be escaped as six bytes: 50 of these made a
    // 1.2 MB history, more than a newcomer's 1 MiB send queue.
    let crafted = "\u{1}".repeat(4000);
    for _ in 0..50 {
        h.say(attacker, &crafted);
    }
    let out = h.drain();
    let echo: serde_json::Value = serde_json::from_str(&last_frame_to(&out, attacker)).unwrap();
    assert_eq!(echo["message"], "\u{fffd}".repeat(4000));
    // Bidirectional overrides too; newlines and tabs stay.
    h.say(attacker, "\u{202e}txt.exe\tand\nmore\r");
    let out = h.drain();
    let echo: serde_json::Value = serde_json::from_str(&last_frame_to(&out, attacker)).unwrap();
    assert_eq!(echo["message"], "\u{fffd}txt.exe\tand\nmore\u{fffd}");

    let newcomer = h.open_v2();
    h.login(newcomer, "newbie");
    let out = h.drain();
    let history = last_frame_to(&out, newcomer);
    assert!(history.len() <= 256 * 1024 + 200, "{} bytes", history.len());
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let (texts, complete) = history_texts(&history);
    // As many of the newest as fit (12 kB each, and the short one last).
    assert_eq!(texts.len(), 22);
    assert!(texts.last().unwrap().starts_with("51:"));
    assert!(!complete);
}

#[test]
fn the_history_budget_counts_bytes_as_encoded() {
    let mut h = Harness::new(without_message_limit());
    let quoter = h.logged_in("quoter");
    // A quote is one byte of text and two encoded: 40 of these are 160 kB
    // of text but 320 kB of JSON.
    for _ in 0..40 {
        h.say(quoter, &"\"".repeat(4000));
    }
    let _ = h.drain();
    let newcomer = h.open_v2();
    h.login(newcomer, "newbie");
    let history = last_frame_to(&h.drain(), newcomer);
    assert!(history.len() <= 256 * 1024 + 200, "{} bytes", history.len());
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let (texts, complete) = history_texts(&history);
    assert_eq!((texts.len(), complete), (32, false));
}

#[test]
fn a_user_list_stops_at_the_reply_budget_and_says_how_many_it_left_out() {
    let mut h = Harness::new(Config {
        reply_max_bytes: 200,
        new_names_per_minute: 0,
        ..without_message_limit()
    });
    let asker = h.open_v2();
    h.login(asker, "asker");
    for i in 0..20 {
        h.logged_in(&format!("user{i:02}"));
    }
    let _ = h.drain();
    h.text(asker, r#"{"type":"listUsers","id":"u"}"#);
    let out = h.drain();
    let list: serde_json::Value = serde_json::from_str(&last_frame_to(&out, asker)).unwrap();
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    // Sorted by name; as many as 200 bytes hold (36 bytes each).
    assert_eq!(names, ["asker", "user00", "user01", "user02", "user03"]);
    assert_eq!(list["more"], 16);
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

// ---- presence pacing: the join storm ----

/// Pacing tests log in crowds from one address: the limits on messages
/// and on new names per address are off (each has its own tests).
fn paced(rate: u32, burst: u32) -> Config {
    Config {
        presence_rate: rate,
        presence_burst: burst,
        new_names_per_minute: 0,
        ..without_message_limit()
    }
}

/// What `conn` got, out of everything drained.
fn to(conn: wschat::ConnectionId, out: Vec<Out>) -> Vec<Out> {
    out.into_iter()
        .filter(|o| matches!(o, Out::Send(c, _) if *c == conn))
        .collect()
}

fn v2_login_broadcast(username: &str, at: u64) -> String {
    format!(
        r#"{{"type":"loginBroadcast","id":"*","username":"{username}","location":"127.0.0.1","timestamp":{at}}}"#
    )
}

/// A `presence` summary (masked id) as the harness renders it.
fn presence(joined: &[&str], joined_count: u64, left: &[&str], left_count: u64, at: u64) -> String {
    let list = |names: &[&str]| serde_json::to_string(names).unwrap();
    format!(
        r#"{{"type":"presence","id":"*","joined":{},"joinedCount":{joined_count},"left":{},"leftCount":{left_count},"timestamp":{at}}}"#,
        list(joined),
        list(left)
    )
}

fn v2_logout_broadcast(username: &str, reason: &str, at: u64) -> String {
    format!(
        r#"{{"type":"logoutBroadcast","id":"*","username":"{username}","reason":"{reason}","timestamp":{at}}}"#
    )
}

#[test]
fn past_the_presence_budget_v2_gets_one_summary_and_v1_every_login() {
    let mut h = Harness::new(paced(10, 2));
    let old = h.open();
    let new = h.open_v2();
    let joiners: Vec<_> = (0..5).map(|_| h.open()).collect();
    for (i, &conn) in joiners.iter().enumerate() {
        h.login(conn, &format!("u{i}"));
    }
    let out = h.drain();
    let v1: Vec<_> = (0..5)
        .map(|i| send(old, &login_broadcast(&format!("u{i}"), "127.0.0.1")))
        .collect();
    assert_eq!(to(old, out.clone()), v1);
    // The burst of two, then the rest held.
    assert_eq!(
        to(new, out),
        [
            send(new, &v2_login_broadcast("u0", t(0))),
            send(new, &v2_login_broadcast("u1", t(0))),
        ]
    );
    // One token comes back after 100 ms: the summary goes out then, to v2
    // connections only.
    assert_eq!(h.server.poll_timeout(), Some(h.start + ms(100)));
    assert_eq!(
        h.advance(ms(100)),
        [(
            ms(100),
            send(new, &presence(&["u2", "u3", "u4"], 3, &[], 0, t(100)))
        )]
    );
    // Once the budget has recovered, a join is its own notice again.
    h.advance(secs(1));
    let late = h.open();
    h.login(late, "late");
    assert_eq!(
        to(new, h.drain()),
        [send(new, &v2_login_broadcast("late", t(1100)))]
    );
}

#[test]
fn a_storm_of_300_logins_costs_a_v2_connection_the_burst_and_one_summary() {
    let mut h = Harness::new(paced(10, 20));
    let watcher = h.open_v2();
    for i in 0..300 {
        let conn = h.open();
        h.login(conn, &format!("u{i:03}"));
    }
    let heard = to(watcher, h.drain());
    assert_eq!(heard.len(), 20);
    assert_eq!(heard[19], send(watcher, &v2_login_broadcast("u019", t(0))));
    let summary = h.advance(secs(1));
    let names: Vec<_> = (280..300).map(|i| format!("u{i:03}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        summary,
        [(
            ms(100),
            send(watcher, &presence(&names, 280, &[], 0, t(100)))
        )]
    );
}

#[test]
fn leaves_share_the_budget_and_a_logout_is_still_confirmed_at_once() {
    let mut h = Harness::new(paced(10, 1));
    let watcher = h.open_v2();
    let alice = h.open_v2();
    h.login(alice, "alice");
    let _ = h.drain();
    // The budget is spent: bob's join and alice's logout are held...
    let bob = h.open_v2();
    h.login(bob, "bob");
    h.text(alice, r#"{"type":"logout","id":"o"}"#);
    let out = h.drain();
    assert_eq!(to(watcher, out.clone()), []);
    // ...but alice, who asked, gets her logoutBroadcast as the confirmation.
    assert_eq!(
        to(alice, out),
        [send(alice, &v2_logout_broadcast("alice", "logout", t(0)))]
    );
    let summary = presence(&["bob"], 1, &["alice"], 1, t(100));
    assert_eq!(
        h.advance(ms(100)),
        [watcher, alice, bob].map(|c| (ms(100), send(c, &summary)))
    );
}

#[test]
fn with_pacing_off_every_join_is_its_own_notice() {
    let mut h = Harness::new(paced(0, 20));
    let watcher = h.open_v2();
    for i in 0..50 {
        let conn = h.open();
        h.login(conn, &format!("u{i}"));
    }
    assert_eq!(to(watcher, h.drain()).len(), 50);
}

#[test]
fn nothing_held_is_sent_after_a_shutdown() {
    let mut h = Harness::new(paced(10, 1));
    let watcher = h.open_v2();
    for name in ["a", "b"] {
        let conn = h.open();
        h.login(conn, name);
    }
    let _ = h.drain();
    h.server.shutdown(h.now);
    let _ = h.drain();
    assert_eq!(h.advance(secs(1)), []);
    assert!(!h.server.is_open(watcher));
}
