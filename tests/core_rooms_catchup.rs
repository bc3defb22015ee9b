//! Catch-up per room at login (protocol v3), history paging, read markers,
//! unread counts and mentions, on the virtual clock.

#[path = "common/rooms.rs"]
mod rooms;

use std::collections::BTreeSet;

use rooms::*;
use serde_json::{Value, json};
use wschat::{Config, ConnectionId};

/// Logs a new v3 connection in as `name` (with `secret`) listing `known`
/// rooms as (room, epoch, since); returns it and what it was sent.
fn come_back(
    w: &mut World,
    name: &str,
    secret: &str,
    known: &[(&str, &str, u64)],
) -> (ConnectionId, Vec<Out>) {
    let conn = w.open3();
    let rooms: Vec<Value> = known
        .iter()
        .map(|(room, epoch, since)| json!({"room": room, "epoch": epoch, "since": since}))
        .collect();
    let out = w.login_with(conn, name, json!({"secret": secret, "rooms": rooms}));
    (conn, out)
}

/// The `rooms` frame's states, without the lobby's.
fn rooms_but_lobby(rooms: &Value) -> Vec<(String, Value)> {
    states(rooms)
        .into_iter()
        .filter(|(room, _)| room != "#lobby")
        .collect()
}

#[test]
fn a_room_known_at_its_epoch_is_recovered_with_every_message_after_since() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let secret = w.secret(bob);
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.said(alice, "#dev", "one");
    let epoch = w.epoch(bob, "#dev");
    w.close(bob);
    w.advance(secs(5));
    w.said(alice, "#dev", "two @bob");
    w.said(alice, "#dev", "three");
    let (back, out) = come_back(&mut w, "bob", &secret, &[("#dev", &epoch, 1)]);
    let kinds = kinds(&out, back);
    let at = kinds.iter().position(|k| k == "loginMessage").unwrap();
    assert_eq!(kinds[at + 1], "rooms", "{kinds:?}");
    let rooms = one(&out, back, "rooms");
    assert_eq!(rooms["replyTo"], "l");
    assert_eq!(rooms["changes"], json!([]));
    assert_eq!(
        rooms_but_lobby(&rooms),
        [(
            "#dev".to_owned(),
            json!({"room": "#dev", "inviteOnly": false, "members": 2, "role": "member",
                "epoch": "<epoch>", "lastSeq": 3, "readSeq": 0, "unread": 3,
                "mentioned": true, "recovered": true})
        )]
    );
    assert_eq!(
        histories(&out, back)["#dev"],
        json!({"type": "history", "id": "*", "replyTo": "l", "epoch": "<epoch>",
            "messages": [
                text_in("#dev", "alice", "two @bob", 2, t(5000), None),
                text_in("#dev", "alice", "three", 3, t(5000), None),
            ],
            "complete": true, "room": "#dev"})
    );
    assert_eq!(w.epoch(back, "#dev"), epoch);
}

#[test]
fn a_room_known_at_another_epoch_or_past_what_is_held_is_not_recovered() {
    let mut w = World::new(Config {
        room_history: 3,
        ..config()
    });
    let alice = w.user("alice");
    let bob = w.user("bob");
    let secret = w.secret(bob);
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.join(alice, "#ops");
    w.join(bob, "#ops");
    let (dev, ops) = (w.epoch(bob, "#dev"), w.epoch(bob, "#ops"));
    w.close(bob);
    for i in 1..=5 {
        w.said(alice, "#dev", &format!("d{i}"));
        w.said(alice, "#ops", &format!("o{i}"));
    }
    // #dev: messages 1 and 2 are no longer held. #ops: another numbering.
    let (back, out) = come_back(
        &mut w,
        "bob",
        &secret,
        &[("#dev", &dev, 0), ("#ops", "old", 4)],
    );
    let rooms = states(&one(&out, back, "rooms"));
    assert_eq!(rooms["#dev"]["recovered"], false);
    assert_eq!(rooms["#ops"]["recovered"], false);
    let _ = ops;
    let histories = histories(&out, back);
    assert_eq!(
        history_entries(&histories["#dev"]),
        ["3:d3", "4:d4", "5:d5"]
    );
    assert_eq!(
        history_entries(&histories["#ops"]),
        ["3:o3", "4:o4", "5:o5"]
    );
}

#[test]
fn a_room_not_listed_gets_its_latest_50_messages_and_is_a_change_joined() {
    let mut w = World::default();
    let alice = w.user("alice");
    let secret = w.secret(alice);
    let laptop = w.device("alice", alice);
    w.join(laptop, "#dev");
    for i in 1..=60 {
        w.said(laptop, "#dev", &format!("m{i}"));
    }
    let (phone, out) = come_back(&mut w, "alice", &secret, &[]);
    let rooms = one(&out, phone, "rooms");
    assert!(
        rooms["changes"]
            .as_array()
            .unwrap()
            .contains(&json!({"room": "#dev", "change": "joined"})),
        "{rooms}"
    );
    assert_eq!(states(&rooms)["#dev"]["role"], "owner");
    let entries = history_entries(&histories(&out, phone)["#dev"]);
    let expected: Vec<String> = (11..=60).map(|i| format!("{i}:m{i}")).collect();
    assert_eq!(entries, expected);
}

#[test]
fn changes_tell_what_happened_to_the_name_s_rooms_while_a_client_was_away() {
    let mut w = World::default();
    let alice = w.user("alice");
    let secret = w.secret(alice);
    let bob = w.user("bob");
    for room in ["#stay", "#left", "#kicked", "#banned"] {
        w.join(bob, room);
        w.join(alice, room);
    }
    w.join_private(bob, "#private");
    let known: Vec<(String, String)> = ["#stay", "#left", "#kicked", "#banned"]
        .iter()
        .map(|r| (r.to_string(), w.epoch(alice, r)))
        .collect();
    // What alice's phone does not see: her laptop's doings, and bob's.
    w.ask(alice, json!({"type": "part", "id": "p", "room": "#left"}));
    w.act(
        bob,
        "kick",
        "#kicked",
        json!({"username": "alice", "reason": "noise"}),
    );
    w.act(
        bob,
        "ban",
        "#banned",
        json!({"username": "alice", "reason": "spam"}),
    );
    w.act(bob, "invite", "#private", json!({"username": "alice"}));
    w.join(alice, "#joined");
    let known: Vec<(&str, &str, u64)> = known
        .iter()
        .map(|(r, e)| (r.as_str(), e.as_str(), 0))
        .collect();
    let (phone, out) = come_back(&mut w, "alice", &secret, &known);
    let rooms = one(&out, phone, "rooms");
    let in_rooms: BTreeSet<String> = rooms_but_lobby(&rooms)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(in_rooms, BTreeSet::from(["#stay".into(), "#joined".into()]));
    let mut changes: Vec<Value> = rooms["changes"].as_array().unwrap().clone();
    // An invite may say who gave it.
    for change in &mut changes {
        if change["change"] == "invited" {
            change.as_object_mut().unwrap().remove("by");
        }
    }
    changes.sort_by_key(|c| c["room"].as_str().unwrap().to_owned());
    assert_eq!(
        changes,
        [
            json!({"room": "#banned", "change": "banned", "by": "bob", "reason": "spam"}),
            json!({"room": "#joined", "change": "joined"}),
            json!({"room": "#kicked", "change": "kicked", "by": "bob", "reason": "noise"}),
            json!({"room": "#left", "change": "left"}),
            json!({"room": "#private", "change": "invited"}),
        ]
    );
}

// ---- paging ----

fn page(w: &mut World, conn: ConnectionId, room: &str, fields: Value) -> (Vec<String>, bool) {
    let mut message = json!({"type": "history", "id": "h", "room": room});
    message
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let out = w.ask(conn, message);
    let history = one(&out, conn, "history");
    assert_eq!(history["replyTo"], "h");
    assert_eq!(history["room"], room);
    (
        history_entries(&history),
        history["complete"].as_bool().unwrap(),
    )
}

fn texts(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|i| format!("{i}:m{i}")).collect()
}

#[test]
fn pages_before_and_after_a_seq_and_the_latest_by_default() {
    let mut w = World::default();
    let alice = w.user("alice");
    w.join(alice, "#dev");
    for i in 1..=120 {
        w.said(alice, "#dev", &format!("m{i}"));
    }
    assert_eq!(
        page(&mut w, alice, "#dev", json!({})),
        (texts(71..=120), false)
    );
    assert_eq!(
        page(&mut w, alice, "#dev", json!({"before": 120, "limit": 50})),
        (texts(70..=119), false)
    );
    assert_eq!(
        page(&mut w, alice, "#dev", json!({"before": 3, "limit": 50})),
        (texts(1..=2), true)
    );
    assert_eq!(
        page(&mut w, alice, "#dev", json!({"after": 100})),
        (texts(101..=120), true)
    );
    assert_eq!(
        page(&mut w, alice, "#dev", json!({"after": 10, "limit": 5})),
        (texts(11..=15), false)
    );
}

#[test]
fn paging_before_the_first_seq_of_each_page_fetches_everything_held() {
    let mut w = World::new(Config {
        room_history: 700,
        ..config()
    });
    let alice = w.user("alice");
    w.join(alice, "#dev");
    for i in 1..=1000 {
        w.said(alice, "#dev", &format!("m{i}"));
    }
    // A limit past 500 is 500.
    let (latest, complete) = page(&mut w, alice, "#dev", json!({"limit": 100_000}));
    assert_eq!((latest.len(), complete), (500, false));
    let mut all = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let fields = match before {
            Some(seq) => json!({"before": seq, "limit": 200}),
            None => json!({"limit": 200}),
        };
        let (entries, complete) = page(&mut w, alice, "#dev", fields);
        before = entries
            .first()
            .map(|e| e.split(':').next().unwrap().parse().unwrap());
        all.splice(0..0, entries);
        if complete {
            break;
        }
    }
    assert_eq!(all, texts(301..=1000));
}

#[test]
fn a_page_is_bounded_in_bytes_and_paging_still_reaches_everything() {
    let mut w = World::default();
    let alice = w.user("alice");
    w.join(alice, "#dev");
    let big = "x".repeat(4000);
    for _ in 0..100 {
        w.said(alice, "#dev", &big);
    }
    let out = w.ask(
        alice,
        json!({"type": "history", "id": "h", "room": "#dev", "limit": 100}),
    );
    let raw = w.raw_to(alice).pop().unwrap();
    assert!(raw.len() <= 256 * 1024, "{} bytes", raw.len());
    let history = one(&out, alice, "history");
    let count = history["messages"].as_array().unwrap().len();
    assert!(count > 10 && count < 100, "{count}");
    assert_eq!(history["complete"], false);
    // The newest ones; the rest before them.
    assert_eq!(history["messages"][count - 1]["seq"], 100);
    let first = history["messages"][0]["seq"].as_u64().unwrap();
    let mut seen = count as u64;
    let mut before = first;
    loop {
        let out = w.ask(
            alice,
            json!({"type": "history", "id": "h", "room": "#dev", "before": before, "limit": 100}),
        );
        let history = one(&out, alice, "history");
        let messages = history["messages"].as_array().unwrap();
        seen += messages.len() as u64;
        if history["complete"] == true {
            break;
        }
        before = messages[0]["seq"].as_u64().unwrap();
    }
    assert_eq!(seen, 100);
}

#[test]
fn a_catch_up_larger_than_one_reply_is_recovered_and_the_rest_is_paged() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let secret = w.secret(bob);
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    let epoch = w.epoch(bob, "#dev");
    w.close(bob);
    let big = "y".repeat(4000);
    for _ in 0..100 {
        w.said(alice, "#dev", &big);
    }
    let (back, out) = come_back(&mut w, "bob", &secret, &[("#dev", &epoch, 0)]);
    assert_eq!(states(&one(&out, back, "rooms"))["#dev"]["recovered"], true);
    let history = &histories(&out, back)["#dev"];
    assert_eq!(history["complete"], false);
    let messages = history["messages"].as_array().unwrap();
    let last = messages.last().unwrap()["seq"].as_u64().unwrap();
    let mut seen = messages.len() as u64;
    let mut after = last;
    while after < 100 {
        let out = w.ask(
            back,
            json!({"type": "history", "id": "h", "room": "#dev", "after": after, "limit": 500}),
        );
        let history = one(&out, back, "history");
        let messages = history["messages"].as_array().unwrap();
        assert!(!messages.is_empty());
        seen += messages.len() as u64;
        after = messages.last().unwrap()["seq"].as_u64().unwrap();
    }
    assert_eq!(seen, 100, "every message, once");
}

#[test]
fn the_lobby_pages_too_back_to_the_last_history_size_messages() {
    let mut w = World::new(Config {
        history_size: 45,
        ..config()
    });
    let alice = w.user("alice");
    for i in 1..=60 {
        w.said(alice, "#lobby", &format!("m{i}"));
    }
    assert_eq!(
        page(&mut w, alice, "#lobby", json!({"before": 26, "limit": 5})),
        (texts(21..=25), false)
    );
    let mut all = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let fields = match before {
            Some(seq) => json!({"before": seq, "limit": 10}),
            None => json!({"limit": 10}),
        };
        let (entries, complete) = page(&mut w, alice, "#lobby", fields);
        before = entries
            .first()
            .map(|e| e.split(':').next().unwrap().parse().unwrap());
        all.splice(0..0, entries);
        if complete {
            break;
        }
    }
    assert_eq!(all, texts(16..=60));
}

// ---- read markers, unread counts, mentions ----

fn state_of(w: &mut World, conn: ConnectionId, room: &str) -> Value {
    let out = w.ask(conn, json!({"type": "listRooms", "id": "lr"}));
    states(&one(&out, conn, "roomList"))[room].clone()
}

#[test]
fn a_read_marker_is_shared_by_every_device_of_the_name() {
    let mut w = World::default();
    let phone = w.user("alice");
    let secret = w.secret(phone);
    let laptop = w.device("alice", phone);
    let bob = w.user("bob");
    w.join(phone, "#dev");
    w.join(bob, "#dev");
    for i in 1..=3 {
        w.said(bob, "#dev", &format!("m{i}"));
    }
    let out = w.ask(
        phone,
        json!({"type": "read", "id": "r", "room": "#dev", "seq": 2}),
    );
    assert_out(
        &out,
        vec![
            send(
                phone,
                json!({"type": "readMarker", "id": "*", "replyTo": "r", "room": "#dev", "seq": 2}),
            ),
            send(
                laptop,
                json!({"type": "readMarker", "id": "*", "room": "#dev", "seq": 2}),
            ),
        ],
    );
    let state = state_of(&mut w, laptop, "#dev");
    assert_eq!(
        (&state["readSeq"], &state["unread"]),
        (&json!(2), &json!(1))
    );
    // And a device that logs in later.
    let (tablet, out) = come_back(&mut w, "alice", &secret, &[]);
    let state = &states(&one(&out, tablet, "rooms"))["#dev"];
    assert_eq!(
        (&state["readSeq"], &state["unread"]),
        (&json!(2), &json!(1))
    );
    // A read of a room one is not in.
    let out = w.ask(
        tablet,
        json!({"type": "read", "id": "r", "room": "#other", "seq": 1}),
    );
    assert_refused(&out, tablet, "notAMember", "r", "you are not in #other");
}

#[test]
fn unread_counts_and_mentions_by_at_name_or_the_name_as_a_word() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.said(bob, "#dev", "malice aforethought");
    w.said(bob, "#dev", "alicecream");
    let state = state_of(&mut w, alice, "#dev");
    assert_eq!(
        (&state["unread"], &state["mentioned"]),
        (&json!(2), &json!(false))
    );
    w.said(bob, "#dev", "ping @alice");
    let state = state_of(&mut w, alice, "#dev");
    assert_eq!(
        (&state["unread"], &state["mentioned"]),
        (&json!(3), &json!(true))
    );
    w.ask(
        alice,
        json!({"type": "read", "id": "r", "room": "#dev", "seq": 3}),
    );
    let state = state_of(&mut w, alice, "#dev");
    assert_eq!(
        (&state["unread"], &state["mentioned"]),
        (&json!(0), &json!(false))
    );
    w.said(bob, "#dev", "Alice, look");
    let state = state_of(&mut w, alice, "#dev");
    assert_eq!(
        (&state["unread"], &state["mentioned"]),
        (&json!(1), &json!(true))
    );
    // A DM's unread count.
    w.said(bob, "@alice", "one");
    w.said(bob, "@alice", "two");
    let state = state_of(&mut w, alice, "@bob");
    assert_eq!(
        (&state["unread"], &state["lastSeq"]),
        (&json!(2), &json!(2))
    );
}

#[test]
fn a_dm_known_at_its_epoch_is_recovered_like_a_room() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let secret = w.secret(bob);
    w.said(alice, "@bob", "one");
    let epoch = w.epoch(bob, "@alice");
    w.close(bob);
    w.said(alice, "@bob", "two");
    let (back, out) = come_back(&mut w, "bob", &secret, &[("@alice", &epoch, 1)]);
    let rooms = one(&out, back, "rooms");
    let dm = &states(&rooms)["@alice"];
    assert_eq!(
        (&dm["recovered"], &dm["lastSeq"], &dm["role"]),
        (&json!(true), &json!(2), &json!("member"))
    );
    assert_eq!(rooms["changes"], json!([]));
    assert_eq!(history_entries(&histories(&out, back)["@alice"]), ["2:two"]);
}

#[test]
fn since_and_epoch_at_the_top_of_a_v3_login_mean_the_lobby() {
    let mut w = World::default();
    let alice = w.user("alice");
    for i in 1..=3 {
        w.said(alice, "#lobby", &format!("m{i}"));
    }
    let lobby_epoch = w.server.epoch().to_owned();
    let bob = w.open3();
    let out = w.login_with(bob, "bob", json!({"since": 2, "epoch": lobby_epoch}));
    assert_eq!(history_entries(&histories(&out, bob)["#lobby"]), ["3:m3"]);
    assert_eq!(histories(&out, bob)["#lobby"]["complete"], true);
}

#[test]
fn room_messages_follow_the_rules_of_lobby_messages() {
    let mut w = World::default();
    let alice = w.user("alice");
    w.join(alice, "#dev");
    let out = w.say(alice, "#dev", "   ");
    assert_refused(&out, alice, "emptyMessage", "m", "");
    let out = w.say(alice, "#dev", &"x".repeat(4001));
    assert_refused(&out, alice, "messageTooLong", "m", "");
    let out = w.say(alice, "#dev", "\u{202e}evil");
    assert_eq!(one(&out, alice, "textBroadcast")["message"], "\u{fffd}evil");
}

/// As v2 has it for the lobby (docs/PROTOCOL.md: "A since beyond the
/// server's latest seq … gets everything held, with complete: false"): a
/// client that has more of a room than the server holds has not been
/// caught up, and reloads.
#[test]
fn a_since_beyond_the_room_s_latest_seq_is_not_recovered() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let secret = w.secret(bob);
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.said(alice, "#dev", "one");
    let epoch = w.epoch(bob, "#dev");
    w.close(bob);
    let (back, out) = come_back(&mut w, "bob", &secret, &[("#dev", &epoch, 5)]);
    assert_eq!(
        states(&one(&out, back, "rooms"))["#dev"]["recovered"],
        false
    );
    assert_eq!(history_entries(&histories(&out, back)["#dev"]), ["1:one"]);
}

#[test]
fn a_room_with_nothing_new_sends_no_history_at_login() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let secret = w.secret(bob);
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.join(alice, "#quiet");
    w.join(bob, "#quiet");
    w.said(alice, "#dev", "one");
    w.said(alice, "#quiet", "hush");
    let (dev, quiet) = (w.epoch(bob, "#dev"), w.epoch(bob, "#quiet"));
    w.close(bob);
    w.said(alice, "#dev", "two");
    let (back, out) = come_back(
        &mut w,
        "bob",
        &secret,
        &[("#dev", &dev, 1), ("#quiet", &quiet, 1)],
    );
    let histories = histories(&out, back);
    assert!(!histories.contains_key("#quiet"), "{histories:?}");
    assert_eq!(history_entries(&histories["#dev"]), ["2:two"]);
    assert_eq!(
        states(&one(&out, back, "rooms"))["#quiet"]["recovered"],
        true
    );
}

#[test]
fn the_lobby_has_a_read_marker_and_unread_count_too() {
    let mut w = World::default();
    let alice = w.user("alice");
    let laptop = w.device("alice", alice);
    let bob = w.user("bob");
    for i in 1..=3 {
        w.said(bob, "#lobby", &format!("m{i}"));
    }
    let state = state_of(&mut w, alice, "#lobby");
    assert_eq!(
        (&state["lastSeq"], &state["unread"]),
        (&json!(3), &json!(3))
    );
    let out = w.ask(
        alice,
        json!({"type": "read", "id": "r", "room": "#lobby", "seq": 2}),
    );
    assert_eq!(
        frames(&out, laptop),
        [json!({"type": "readMarker", "id": "*", "room": "#lobby", "seq": 2})]
    );
    w.said(bob, "#lobby", "hey alice");
    let state = state_of(&mut w, laptop, "#lobby");
    assert_eq!(
        (&state["readSeq"], &state["unread"], &state["mentioned"]),
        (&json!(2), &json!(2), &json!(true))
    );
}

// ---- random traffic, a client that comes and goes ----

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// What a v3 client keeps of each room: its epoch and the seqs it has.
#[derive(Default, Debug)]
struct Client {
    epochs: HashMap<String, String>,
    seqs: BTreeMap<String, BTreeSet<u64>>,
}

impl Client {
    fn learn(&mut self, w: &World, conn: ConnectionId, out: &[Out]) {
        for frame in frames(out, conn) {
            let mut items = vec![frame.clone()];
            if frame["type"] == "history" {
                let room = frame["room"].as_str().unwrap_or("#lobby").to_owned();
                for m in frame["messages"].as_array().unwrap() {
                    let mut m = m.clone();
                    m["room"] = room.clone().into();
                    items.push(m);
                }
            }
            for item in items {
                let Some(room) = item["room"].as_str() else {
                    continue;
                };
                if let Some(seq) = item["seq"].as_u64()
                    && ["textBroadcast", "notice"].contains(&item["type"].as_str().unwrap_or(""))
                {
                    self.seqs.entry(room.to_owned()).or_default().insert(seq);
                }
            }
        }
        // Epochs as the harness learnt them for this connection.
        for room in ["#a", "#b", "@alice", "@carol"] {
            if let Some(epoch) = w.try_epoch(conn, room) {
                self.epochs.insert(room.to_owned(), epoch);
            }
        }
    }

    fn known(&self) -> Vec<Value> {
        self.seqs
            .iter()
            .filter(|(room, _)| *room != "#lobby")
            .filter_map(|(room, seqs)| {
                let epoch = self.epochs.get(room)?;
                Some(json!({"room": room, "epoch": epoch, "since": seqs.last().copied().unwrap_or(0)}))
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Trip {
    Say(bool, usize),
    Leave,
    Back,
    BobJoins(usize),
    BobParts(usize),
    Topic(usize),
}

fn trip() -> impl Strategy<Value = Trip> {
    prop_oneof![
        6 => (any::<bool>(), 0..4usize).prop_map(|(a, r)| Trip::Say(a, r)),
        2 => Just(Trip::Leave),
        2 => Just(Trip::Back),
        1 => (0..2usize).prop_map(Trip::BobJoins),
        1 => (0..2usize).prop_map(Trip::BobParts),
        1 => (0..2usize).prop_map(Trip::Topic),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A client that gives, at each login, the epoch and last seq of every
    /// room it knows misses nothing: each room it is told is recovered has
    /// every message the server holds after what it had, once it pages
    /// what a reply could not hold.
    #[test]
    fn a_client_that_comes_and_goes_misses_nothing_recovered(
        trips in prop::collection::vec(trip(), 1..40),
        room_history in prop_oneof![Just(500usize), 2..6usize],
    ) {
        // A short room history: some catch-ups cannot be recovered, and
        // must not say they are.
        let mut w = World::new(Config {
            room_history,
            ..config()
        });
        let alice = w.user("alice");
        let carol = w.user("carol");
        let mut bob = w.user("bob");
        let secret = w.secret(bob);
        for (conn, room) in [(alice, "#a"), (carol, "#b"), (bob, "#a"), (bob, "#b")] {
            w.join(conn, room);
        }
        let mut client = Client::default();
        client.learn(&w, bob, &[]);
        let mut online = true;
        let rooms = ["#a", "#b", "@bob", "@bob"];
        for (n, trip) in trips.into_iter().enumerate() {
            let out = match trip {
                Trip::Say(by_alice, r) => {
                    let (from, room) = match (by_alice, r) {
                        (true, 3) | (false, 2) => continue,
                        (true, _) => (alice, rooms[r]),
                        (false, _) => (carol, rooms[r]),
                    };
                    w.say(from, room, &format!("m{n}"))
                }
                Trip::Topic(r) => w.act(
                    [alice, carol][r],
                    "topic",
                    ["#a", "#b"][r],
                    json!({"topic": format!("t{n}")}),
                ),
                Trip::Leave if online => {
                    online = false;
                    w.close(bob);
                    continue;
                }
                Trip::Back if !online => {
                    online = true;
                    bob = w.open3();
                    let known = client.known();
                    w.login_with(bob, "bob", json!({"secret": secret, "rooms": known}))
                }
                Trip::BobJoins(r) if online => {
                    w.ask(bob, json!({"type": "join", "id": "j", "room": (["#a", "#b"][r])}))
                }
                Trip::BobParts(r) if online => {
                    w.ask(bob, json!({"type": "part", "id": "p", "room": (["#a", "#b"][r])}))
                }
                _ => continue,
            };
            if online {
                client.learn(&w, bob, &out);
            }
        }
        if online {
            w.close(bob);
        }
        bob = w.open3();
        let known = client.known();
        let sinces: HashMap<String, u64> = known
            .iter()
            .map(|k| (k["room"].as_str().unwrap().to_owned(), k["since"].as_u64().unwrap()))
            .collect();
        let out = w.login_with(bob, "bob", json!({"secret": secret, "rooms": known}));
        client.learn(&w, bob, &out);
        let rooms_frame = one(&out, bob, "rooms");
        for (room, state) in states(&rooms_frame) {
            if room == "#lobby" || state["recovered"] != true {
                continue;
            }
            // Page what one reply could not hold.
            let histories = histories(&out, bob);
            if histories.get(&room).is_some_and(|h| h["complete"] == false) {
                let after = client.seqs[&room].last().copied().unwrap_or(0);
                let out = w.ask(bob, json!({"type": "history", "id": "h", "room": room, "after": after, "limit": 500}));
                client.learn(&w, bob, &out);
            }
            let since = sinces.get(&room).copied().unwrap_or(0);
            let last = state["lastSeq"].as_u64().unwrap();
            let have = client.seqs.get(&room).cloned().unwrap_or_default();
            for seq in since + 1..=last {
                prop_assert!(have.contains(&seq), "{} misses seq {} (since {})", room, seq, since);
            }
        }
    }
}
