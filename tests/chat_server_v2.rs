//! Protocol v2 over real sockets: `chat-server` on 127.0.0.1 selects
//! `wschat.v2` when offered and speaks it on that connection, while a v1
//! client in the same chat sees exactly the original protocol; catch-up
//! after a reconnect; presence and logout.
#![cfg(feature = "server")]

mod net;

use std::net::Shutdown;
use std::time::{SystemTime, UNIX_EPOCH};

use net::*;
use serde_json::{Value, json};

/// Checks a frame a v1 connection received: one of v1's four types, with
/// exactly v1's keys in v1's order.
fn v1_shape(text: &str) -> Value {
    let json: Value = serde_json::from_str(text).expect("JSON from the server");
    let expected: &[&str] = match json["type"].as_str() {
        Some("loginBroadcast") => &["type", "id", "username", "location"],
        Some("loginMessage") => &["type", "id", "username", "location", "secret"],
        Some("textBroadcast") => &["type", "id", "username", "message"],
        Some("errorMessage") => &["type", "error", "id", "description"],
        _ => panic!("a v1 connection received a type v1 does not have: {text}"),
    };
    assert_eq!(keys(text), expected, "{text}");
    json
}

/// Checks a frame a v2 connection received against v2's shapes; its
/// timestamps must be the server's wall-clock time in milliseconds.
fn v2_shape(text: &str) -> Value {
    let json: Value = serde_json::from_str(text).expect("JSON from the server");
    let keys = keys(text);
    let expected: &[&str] = match json["type"].as_str() {
        Some("loginBroadcast") => &["type", "id", "username", "location", "timestamp"],
        Some("loginMessage") => &["type", "id", "replyTo", "username", "location", "secret"],
        Some("textBroadcast") if json.get("replyTo").is_some() => &[
            "type",
            "id",
            "replyTo",
            "username",
            "message",
            "seq",
            "timestamp",
        ],
        Some("textBroadcast") => &["type", "id", "username", "message", "seq", "timestamp"],
        Some("errorMessage") => &["type", "error", "id", "replyTo", "description"],
        Some("history") => &["type", "id", "replyTo", "epoch", "messages", "complete"],
        Some("userList") => &["type", "id", "replyTo", "users"],
        Some("logoutBroadcast") => &["type", "id", "username", "reason", "timestamp"],
        Some("presence") => &[
            "type",
            "id",
            "joined",
            "joinedCount",
            "left",
            "leftCount",
            "timestamp",
        ],
        _ => panic!("not a v2 message: {text}"),
    };
    assert_eq!(keys, expected, "{text}");
    if let Some(timestamp) = json.get("timestamp") {
        assert_wall_clock(timestamp);
    }
    if json["type"] == "history" {
        let messages = json["messages"].as_array().expect("an array of messages");
        let shapes = keys_in(text, "messages");
        assert_eq!(shapes.len(), messages.len());
        for (message, keys) in messages.iter().zip(shapes) {
            assert_eq!(message["type"], "textBroadcast", "{text}");
            assert_eq!(
                keys,
                ["type", "id", "username", "message", "seq", "timestamp"],
                "{text}"
            );
            assert_wall_clock(&message["timestamp"]);
        }
    }
    json
}

/// Milliseconds since the Unix epoch, within a few minutes of this
/// machine's clock (not seconds, not zero, not the monotonic clock).
fn assert_wall_clock(timestamp: &Value) {
    let ms = timestamp.as_u64().expect("a timestamp in milliseconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(ms.abs_diff(now) < 5 * 60 * 1000, "{ms} is not around {now}");
}

/// The next frame of a v1 connection, checked.
fn v1(client: &mut Client) -> Value {
    v1_shape(&client.recv_text())
}

/// The next frame of a v2 connection, checked.
fn v2(client: &mut Client) -> Value {
    v2_shape(&client.recv_text())
}

/// Logs in on v2 and returns the secret and the catch-up.
fn login_v2(client: &mut Client, json: Value) -> (String, Value) {
    let id = json["id"].as_str().expect("an id").to_owned();
    client.send_json(json);
    login_v2_reply(client, &id)
}

/// The `loginMessage` (its secret) and `history` answering login `id`,
/// skipping the broadcasts before them.
fn login_v2_reply(client: &mut Client, id: &str) -> (String, Value) {
    let reply = loop {
        let frame = v2(client);
        if frame["type"] == "loginMessage" {
            break frame;
        }
    };
    assert_eq!(reply["replyTo"], id);
    let history = v2(client);
    assert_eq!(history["type"], "history");
    assert_eq!(history["replyTo"], id);
    (reply["secret"].as_str().unwrap().to_owned(), history)
}

/// Reads a v2 connection up to the `textBroadcast` of `message`.
fn until_said(client: &mut Client, message: &str) -> Value {
    loop {
        let frame = v2(client);
        if frame["type"] == "textBroadcast" && frame["message"] == message {
            return frame;
        }
    }
}

#[test]
fn a_v1_and_a_v2_client_in_one_chat_each_get_what_their_version_promises() {
    let server = ServerProcess::start(&[]);
    let (mut olga, selected) = Client::connect_offering(server.addr, &[]);
    assert_eq!(selected, None, "no offer, no subprotocol: v1");
    let mut nova = Client::connect_v2(server.addr);

    nova.send_json(json!({"type": "login", "id": "l1", "username": "nova"}));
    let joined = v2(&mut nova);
    assert_eq!(
        (&joined["type"], &joined["username"]),
        (&json!("loginBroadcast"), &json!("nova"))
    );
    let reply = v2(&mut nova);
    assert_eq!(
        (&reply["type"], &reply["replyTo"]),
        (&json!("loginMessage"), &json!("l1"))
    );
    let history = v2(&mut nova);
    assert_eq!(history["type"], "history");
    assert_eq!(history["messages"], json!([]));
    assert_eq!(history["complete"], true);
    assert_eq!(v1(&mut olga)["username"], "nova");

    // A `since` on a v1 login is ignored like any unknown field: no history.
    olga.send_json(json!({"type": "login", "id": "l2", "username": "olga", "since": 0}));
    assert_eq!(v1(&mut olga)["type"], "loginBroadcast");
    assert_eq!(v1(&mut olga)["type"], "loginMessage");
    assert_eq!(v2(&mut nova)["username"], "olga");

    nova.send_json(json!({"type": "textFromUser", "id": "m1", "text": "from v2"}));
    let own = v2(&mut nova);
    assert_eq!(own["replyTo"], "m1", "the sender's copy acknowledges");
    let first = own["seq"].as_u64().expect("a seq");
    let seen = v1(&mut olga);
    assert_eq!(
        (&seen["username"], &seen["message"]),
        (&json!("nova"), &json!("from v2"))
    );

    olga.say("from v1");
    assert_eq!(v1(&mut olga)["message"], "from v1");
    let other = v2(&mut nova);
    assert_eq!(other["message"], "from v1");
    assert!(other.get("replyTo").is_none(), "not nova's message");
    assert_eq!(other["seq"].as_u64(), Some(first + 1));

    nova.send_json(json!({"type": "listUsers", "id": "u1"}));
    let list = v2(&mut nova);
    assert_eq!(list["type"], "userList");
    assert_eq!(list["replyTo"], "u1");
    assert_eq!(user_list(&list), [("nova".into(), 1), ("olga".into(), 1)]);
    olga.send_json(json!({"type": "listUsers", "id": "u2"}));
    let error = v1(&mut olga);
    assert_eq!(error["error"], "invalidJson");
    assert_eq!(
        error["description"],
        r#"unknown variant "listUsers", expected "login" or "textFromUser""#
    );

    nova.send_json(json!({"type": "logout", "id": "o1"}));
    let gone = v2(&mut nova);
    assert_eq!(gone["type"], "logoutBroadcast");
    assert_eq!(
        (&gone["username"], &gone["reason"]),
        (&json!("nova"), &json!("logout"))
    );
    nova.send_json(json!({"type": "textFromUser", "id": "m2", "text": "still me?"}));
    let refused = v2(&mut nova);
    assert_eq!(refused["error"], "messagingWhileNotLoggedIn");
    assert_eq!(refused["replyTo"], "m2");

    // olga was told nothing of the logout: her next frame is her own.
    olga.say("anyone?");
    assert_eq!(v1(&mut olga)["message"], "anyone?");
    // nova, logged out but connected, still hears the chat.
    assert_eq!(v2(&mut nova)["seq"].as_u64(), Some(first + 2));

    // olga leaves; the v2 connection is told, by name and reason.
    olga.ws.close(None).unwrap();
    let (_, _, rest) = olga.recv_close();
    for text in rest {
        v1_shape(&text);
    }
    let left = v2(&mut nova);
    assert_eq!(left["type"], "logoutBroadcast");
    assert_eq!(
        (&left["username"], &left["reason"]),
        (&json!("olga"), &json!("disconnected"))
    );
}

#[test]
fn wschat_v2_is_selected_among_other_subprotocols_and_only_when_offered() {
    let server = ServerProcess::start(&[]);
    let offers: [&[&str]; 3] = [
        &["chat, wschat.v2"],
        &["wschat.v2 , superchat"],
        &["superchat", "wschat.v2"], // two header lines
    ];
    for (n, offer) in offers.into_iter().enumerate() {
        let (mut client, selected) = Client::connect_offering(server.addr, offer);
        assert_eq!(selected.as_deref(), Some("wschat.v2"), "{offer:?}");
        let name = format!("v2user{n}");
        login_v2(
            &mut client,
            json!({"type": "login", "id": "l", "username": name}),
        );
    }
    // Other subprotocols alone select none, and the connection is v1.
    let (mut client, selected) = Client::connect_offering(server.addr, &["chat, superchat"]);
    assert_eq!(selected, None);
    client.send_json(json!({"type": "login", "id": "l", "username": "plain"}));
    assert_eq!(v1(&mut client)["type"], "loginBroadcast");
    assert_eq!(v1(&mut client)["type"], "loginMessage");
    client.say("v1 here");
    assert_eq!(v1(&mut client)["message"], "v1 here");
}

#[test]
fn a_v2_client_that_reconnects_with_since_gets_exactly_what_it_missed() {
    let server = ServerProcess::start(&[]);
    let mut alice = Client::connect_v2(server.addr);
    let (secret, _) = login_v2(
        &mut alice,
        json!({"type": "login", "id": "l", "username": "alice"}),
    );
    let mut bob = Client::connect_v2(server.addr);
    login_v2(
        &mut bob,
        json!({"type": "login", "id": "l", "username": "bob"}),
    );
    let mut carol = Client::connect(server.addr); // v1
    carol.login("carol");

    bob.say("before the drop");
    until_said(&mut bob, "before the drop");
    let last_seen = until_said(&mut alice, "before the drop")["seq"]
        .as_u64()
        .expect("a seq");

    // alice's connection dies without a word.
    alice.ws.get_ref().shutdown(Shutdown::Both).unwrap();
    drop(alice);
    let left = loop {
        let frame = v2(&mut bob);
        if frame["type"] == "logoutBroadcast" {
            break frame;
        }
    };
    assert_eq!(
        (&left["username"], &left["reason"]),
        (&json!("alice"), &json!("disconnected"))
    );

    // The others keep chatting, each message handled before the next.
    let missed = [
        ("bob", "while away 1"),
        ("carol", "while away 2"),
        ("bob", "while away 3"),
        ("carol", "while away 4"),
    ];
    for (who, text) in missed {
        if who == "bob" {
            bob.say(text);
        } else {
            carol.say(text);
        }
        until_said(&mut bob, text);
    }

    // alice is back. Her new connection hears the chat as soon as it is
    // open, before her login: this message arrives live *and* is in the
    // catch-up, which is why a client skips a seq it already has.
    let mut alice = Client::connect_v2(server.addr);
    bob.say("between");
    let between = until_said(&mut alice, "between");
    alice.send_json(json!({
        "type": "login", "id": "back", "username": "alice", "secret": secret, "since": last_seen
    }));
    let (again, history) = login_v2_reply(&mut alice, "back");
    assert_eq!(again, secret, "the name was reclaimed");
    assert_eq!(history["complete"], true);
    let caught: Vec<(String, String, u64)> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_owned(),
                m["message"].as_str().unwrap().to_owned(),
                m["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, u64)> = missed
        .iter()
        .copied()
        .chain([("bob", "between")])
        .zip(last_seen + 1..)
        .map(|((who, text), seq)| (who.to_owned(), text.to_owned(), seq))
        .collect();
    assert_eq!(
        caught, expected,
        "exactly what came after `since`, in order"
    );
    assert_eq!(between["seq"].as_u64(), Some(last_seen + 5));

    // Then the chat goes on where the catch-up ended.
    bob.say("after");
    let live = until_said(&mut alice, "after");
    assert_eq!(live["seq"].as_u64(), Some(last_seen + 6));
}

#[test]
fn list_users_counts_devices_and_logout_frees_the_name_at_once() {
    let server = ServerProcess::start(&[]);
    let mut laptop = Client::connect_v2(server.addr);
    let (secret, _) = login_v2(
        &mut laptop,
        json!({"type": "login", "id": "l", "username": "alice"}),
    );
    let mut phone = Client::connect_v2(server.addr);
    let (same, _) = login_v2(
        &mut phone,
        json!({"type": "login", "id": "l", "username": "alice", "secret": secret}),
    );
    assert_eq!(same, secret);
    let mut bob = Client::connect_v2(server.addr);
    login_v2(
        &mut bob,
        json!({"type": "login", "id": "l", "username": "bob"}),
    );

    bob.send_json(json!({"type": "listUsers", "id": "w1"}));
    let list = v2(&mut bob);
    assert_eq!(list["replyTo"], "w1");
    assert_eq!(user_list(&list), [("alice".into(), 2), ("bob".into(), 1)]);

    // One device goes: alice has not left, and nobody is told she did.
    let phone_addr = format!("peer={}", phone.local_addr);
    phone.ws.close(None).unwrap();
    phone.recv_close();
    server
        .wait_for_log(|l| l.contains("closed by peer") && l.contains(&phone_addr))
        .expect("the server saw the phone go");
    bob.say("marker");
    let next = v2(&mut bob);
    assert_eq!(next["message"], "marker", "no logoutBroadcast before it");
    bob.send_json(json!({"type": "listUsers", "id": "w2"}));
    assert_eq!(
        user_list(&v2(&mut bob)),
        [("alice".into(), 1), ("bob".into(), 1)]
    );

    // A logout is at once, for everyone on v2, the one leaving included.
    laptop.send_json(json!({"type": "logout", "id": "o"}));
    for client in [&mut laptop, &mut bob] {
        let gone = loop {
            let frame = v2(client);
            if frame["type"] == "logoutBroadcast" {
                break frame;
            }
        };
        assert_eq!(
            (&gone["username"], &gone["reason"]),
            (&json!("alice"), &json!("logout"))
        );
    }
    laptop.send_json(json!({"type": "listUsers", "id": "w3"}));
    let refused = v2(&mut laptop);
    assert_eq!(refused["error"], "messagingWhileNotLoggedIn");
    assert_eq!(refused["replyTo"], "w3");
    bob.send_json(json!({"type": "listUsers", "id": "w4"}));
    assert_eq!(user_list(&v2(&mut bob)), [("bob".into(), 1)]);

    // The name is free: someone else takes it (the old secret is worthless
    // and counts as no secret), and then the old secret is refused.
    let mut eve = Client::connect_v2(server.addr);
    let (fresh, _) = login_v2(
        &mut eve,
        json!({"type": "login", "id": "l", "username": "Alice", "secret": secret}),
    );
    assert_ne!(fresh, secret, "a fresh login");
    laptop
        .send_json(json!({"type": "login", "id": "again", "username": "alice", "secret": secret}));
    let taken = loop {
        let frame = v2(&mut laptop);
        if frame["type"] == "errorMessage" {
            break frame;
        }
    };
    assert_eq!(taken["error"], "loginTaken");
    assert_eq!(taken["replyTo"], "again");
}

#[test]
fn the_history_flags_bound_the_catch_up_and_a_newcomers_context() {
    let server = ServerProcess::start(&["--history-size", "3", "--history-on-join", "2"]);
    let mut bob = Client::connect_v2(server.addr);
    login_v2(
        &mut bob,
        json!({"type": "login", "id": "l", "username": "bob"}),
    );
    for n in 1..=5 {
        let text = format!("said {n}");
        bob.say(&text);
        until_said(&mut bob, &text);
    }
    let texts = |history: &Value| -> Vec<String> {
        history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message"].as_str().unwrap().to_owned())
            .collect()
    };
    // A newcomer: the latest two, for context.
    let mut carol = Client::connect_v2(server.addr);
    let (_, context) = login_v2(
        &mut carol,
        json!({"type": "login", "id": "l", "username": "carol"}),
    );
    assert_eq!(texts(&context), ["said 4", "said 5"]);
    assert_eq!(context["complete"], true);
    // Back after seq 1: 2 and 3 are gone from a ring of 3.
    let mut dave = Client::connect_v2(server.addr);
    let (_, catch_up) = login_v2(
        &mut dave,
        json!({"type": "login", "id": "l", "username": "dave", "since": 1}),
    );
    assert_eq!(texts(&catch_up), ["said 3", "said 4", "said 5"]);
    assert_eq!(catch_up["complete"], false);
}

#[test]
fn past_the_presence_budget_a_v2_client_gets_a_summary_and_a_v1_client_every_login() {
    // One notice at once, then one a second: the second and third logins
    // come as one summary.
    let server = ServerProcess::start(&["--presence-rate", "1", "--presence-burst", "1"]);
    let mut watcher_v2 = Client::connect_v2(server.addr);
    let mut watcher_v1 = Client::connect(server.addr);
    let mut joiners: Vec<_> = (0..3).map(|_| Client::connect(server.addr)).collect();
    // Sent together, so that all three arrive well within the second.
    for (i, joiner) in joiners.iter_mut().enumerate() {
        joiner.send_json(json!({"type": "login", "id": "l", "username": format!("j{i}")}));
    }
    for joiner in &mut joiners {
        joiner.recv_type("loginMessage");
    }
    // The order the core took them in (sockets race): v1 hears each.
    let order: Vec<Value> = (0..3)
        .map(|_| {
            let join = v1(&mut watcher_v1);
            assert_eq!(join["type"], "loginBroadcast");
            join["username"].clone()
        })
        .collect();
    let mut names = order.clone();
    names.sort_by_key(|n| n.to_string());
    assert_eq!(names, [json!("j0"), json!("j1"), json!("j2")]);
    let first = v2(&mut watcher_v2);
    assert_eq!(
        (&first["type"], &first["username"]),
        (&json!("loginBroadcast"), &order[0])
    );
    let summary = v2(&mut watcher_v2);
    assert_eq!(summary["type"], "presence");
    assert_eq!(summary["joined"], json!(order[1..]));
    assert_eq!(summary["joinedCount"], 2);
    assert_eq!(
        (&summary["left"], &summary["leftCount"]),
        (&json!([]), &json!(0))
    );
}
