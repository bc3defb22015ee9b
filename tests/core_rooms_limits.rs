//! The limits of protocol v3, each on its own: rooms per name, members per
//! room, rooms created per address per minute, rooms in all, new DMs per
//! name per minute, and messages kept per room. A refusal is a described
//! `limitReached` (which limit, and its value), never a close.

#[path = "common/rooms.rs"]
mod rooms;

use rooms::*;
use serde_json::json;
use wschat::Config;

/// `limitReached`, naming the limit (its flag) and its value (2 in
/// every test here).
#[track_caller]
fn assert_limit(out: &[Out], conn: wschat::ConnectionId, code: &str, reply_to: &str, flag: &str) {
    let description = assert_refused(out, conn, code, reply_to, flag);
    assert!(description.contains('2'), "{description}");
}

#[test]
fn a_name_may_be_in_max_rooms_per_name_rooms_the_lobby_and_dms_not_counted() {
    let mut w = World::new(Config {
        max_rooms_per_name: 2,
        ..config()
    });
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join(bob, "#c");
    w.join(alice, "#a");
    w.join(alice, "#b");
    let out = w.ask(alice, json!({"type": "join", "id": "j", "room": "#c"}));
    assert_limit(&out, alice, "limitReached", "j", "--max-rooms-per-name");
    let out = w.ask(alice, json!({"type": "join", "id": "j", "room": "#new"}));
    assert_limit(&out, alice, "limitReached", "j", "--max-rooms-per-name");
    assert!(w.server.is_open(alice));
    // DMs and the lobby are not rooms one joins.
    assert_eq!(w.said(alice, "@bob", "hi"), 1);
    w.said(alice, "#lobby", "hi all");
    // A part makes room for another.
    w.ask(alice, json!({"type": "part", "id": "p", "room": "#a"}));
    w.join(alice, "#c");
    // The refused room was not created.
    let out = w.ask(bob, json!({"type": "listRooms", "id": "lr"}));
    assert!(!states(&one(&out, bob, "roomList")).contains_key("#new"));
}

#[test]
fn a_room_holds_max_room_members_names_on_join_and_on_invite() {
    let mut w = World::new(Config {
        max_room_members: 2,
        ..config()
    });
    let alice = w.user("alice");
    let bob = w.user("bob");
    let carol = w.user("carol");
    w.join(alice, "#full");
    w.join(bob, "#full");
    let out = w.ask(carol, json!({"type": "join", "id": "j", "room": "#full"}));
    assert_limit(&out, carol, "limitReached", "j", "--max-room-members");
    w.join_private(alice, "#priv");
    w.act(alice, "invite", "#priv", json!({"username": "bob"}));
    w.join(bob, "#priv");
    let out = w.act(alice, "invite", "#priv", json!({"username": "carol"}));
    assert_limit(&out, alice, "limitReached", "a", "--max-room-members");
    // One leaves: there is room again.
    w.ask(bob, json!({"type": "part", "id": "p", "room": "#full"}));
    w.join(carol, "#full");
}

#[test]
fn an_address_creates_rooms_per_address_per_minute_rooms_and_may_join_others() {
    let mut w = World::new(Config {
        rooms_per_address_per_minute: 2,
        ..config()
    });
    let alice = w.user("alice");
    let phone = w.device("alice", alice);
    let bob = w.user("bob");
    let far = w.user_from("faraway", "192.0.2.7");
    w.join(far, "#theirs");
    w.join(alice, "#a");
    w.join(bob, "#b");
    // The third room created from 127.0.0.1 this minute, by any name.
    let out = w.ask(phone, json!({"type": "join", "id": "j", "room": "#c"}));
    assert_limit(
        &out,
        phone,
        "limitReached",
        "j",
        "--rooms-per-address-per-minute",
    );
    // Joining a room that exists creates nothing.
    w.join(alice, "#theirs");
    w.join(alice, "#b");
    // Another address has its own count.
    w.join(far, "#c");
    w.advance(secs(60));
    w.join(alice, "#d");
}

#[test]
fn the_server_holds_max_rooms_rooms_dms_not_counted() {
    let mut w = World::new(Config {
        max_rooms: 2,
        ..config()
    });
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join(alice, "#a");
    w.join(bob, "#b");
    let out = w.ask(alice, json!({"type": "join", "id": "j", "room": "#c"}));
    assert_limit(&out, alice, "limitReached", "j", "--max-rooms");
    w.join(alice, "#b");
    assert_eq!(w.said(alice, "@bob", "a DM is not a room"), 1);
}

#[test]
fn a_name_starts_new_dms_per_minute_new_dms_and_may_go_on_with_old_ones() {
    let mut w = World::new(Config {
        new_dms_per_minute: 2,
        ..config()
    });
    let spammer = w.user("spammer");
    let phone = w.device("spammer", spammer);
    for name in ["a", "b", "c"] {
        w.user(name);
    }
    let d = w.user("d");
    // A DM started by the other party is not the spammer's to count.
    assert_eq!(w.said(d, "@spammer", "hello"), 1);
    assert_eq!(w.said(spammer, "@a", "buy now"), 1);
    assert_eq!(w.said(phone, "@b", "buy now"), 1);
    assert_eq!(w.said(spammer, "@d", "a reply"), 2);
    // The third new DM this minute, from either device.
    let out = w.say(spammer, "@c", "buy now");
    assert_limit(&out, spammer, "limitReached", "m", "--new-dms-per-minute");
    assert!(w.server.is_open(spammer));
    // Going on with a DM already started is not limited.
    assert_eq!(w.said(spammer, "@a", "really"), 2);
    w.advance(secs(60));
    assert_eq!(w.said(spammer, "@c", "buy now"), 1);
}

#[test]
fn a_room_keeps_its_latest_room_history_messages() {
    let mut w = World::new(Config {
        room_history: 3,
        ..config()
    });
    let alice = w.user("alice");
    w.join(alice, "#dev");
    for i in 1..=5 {
        w.said(alice, "#dev", &format!("m{i}"));
    }
    let out = w.ask(
        alice,
        json!({"type": "history", "id": "h", "room": "#dev", "limit": 10}),
    );
    let history = one(&out, alice, "history");
    assert_eq!(history_entries(&history), ["3:m3", "4:m4", "5:m5"]);
    assert_eq!(history["complete"], true);
    let out = w.ask(
        alice,
        json!({"type": "history", "id": "h", "room": "#dev", "before": 3}),
    );
    let history = one(&out, alice, "history");
    assert_eq!(history_entries(&history), Vec::<String>::new());
    assert_eq!(history["complete"], true);
    // The lobby keeps `history_size`, not `room_history`.
    for i in 1..=5 {
        w.said(alice, "#lobby", &format!("l{i}"));
    }
    let out = w.ask(
        alice,
        json!({"type": "history", "id": "h", "room": "#lobby"}),
    );
    assert_eq!(history_entries(&one(&out, alice, "history")).len(), 5);
}

#[test]
fn v3_messages_count_against_the_message_rate_like_any_other() {
    let mut w = World::new(Config {
        message_rate: 5,
        message_burst: 10,
        ..config()
    });
    let alice = w.user("alice");
    w.advance(secs(10));
    for i in 0..10 {
        let out = w.ask(alice, json!({"type": "listRooms", "id": format!("r{i}")}));
        assert_eq!(kinds(&out, alice), ["roomList"], "{out:#?}");
    }
    let out = w.ask(alice, json!({"type": "join", "id": "j", "room": "#dev"}));
    assert_refused(&out, alice, "rateLimited", "j", "");
    assert!(w.server.is_open(alice));
}
