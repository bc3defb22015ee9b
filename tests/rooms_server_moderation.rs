//! Protocol v3 over real sockets: every moderation act (topic, mode,
//! invite, kick, ban, unban, mute, unmute, op, deop) told as a notice,
//! taking effect and kept with the room across a restart; server operators
//! (`--operators`); and every room limit, each set small by its flag.
#![cfg(all(feature = "server", target_os = "linux"))]

mod net;
#[path = "common/v3.rs"]
mod v3;

use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use net::*;
use serde_json::{Value, json};
use v3::*;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `actor` does `act` (a request without id) in `room`, and everyone in
/// `watchers` (the actor first) is told by a notice of `act` about
/// `username`: the actor's copy.
fn act(actor: &mut V3, watchers: &mut [&mut V3], request: Value) -> Value {
    let room = request["room"].as_str().unwrap().to_owned();
    let kind = request["type"].as_str().unwrap().to_owned();
    let notice = actor.moderate(request.clone());
    assert_eq!(notice["type"], "notice", "{request} refused: {notice}");
    assert_eq!(notice["by"], actor.name.as_str(), "{notice}");
    if let Some(username) = request.get("username") {
        assert_eq!(&notice["username"], username, "{notice}");
    }
    assert!(
        notice["seq"].as_u64().is_some(),
        "a notice is numbered: {notice}"
    );
    for watcher in watchers {
        let seen = watcher.notice(&room, &kind);
        assert_eq!(seen["seq"], notice["seq"], "{seen}");
    }
    notice
}

/// The error code `actor` gets for `request`.
fn code(actor: &mut V3, request: Value) -> String {
    actor.refused(request).0
}

#[test]
fn every_moderation_act_is_a_notice_takes_effect_and_is_kept_with_the_room() {
    let mut server = ServerProcess::start(&NO_RATE_LIMIT);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    let (mut carol, _) = V3::login_as(server.addr, "carol");
    let (mut dave, _) = V3::login_as(server.addr, "dave");
    let (mut eve, _) = V3::login_as(server.addr, "eve");
    let room = "#mod";
    alice.join(room);
    for member in [&mut bob, &mut carol, &mut dave] {
        member.join(room);
    }

    // A member may not moderate; the owner may, and may make operators.
    let topic = json!({"type": "topic", "room": room, "topic": "builds"});
    assert_eq!(code(&mut bob, topic.clone()), "forbidden");
    let notice = act(&mut alice, &mut [&mut bob, &mut carol], topic);
    assert_eq!(notice["topic"], "builds", "{notice}");
    let op = json!({"type": "op", "room": room, "username": "bob"});
    assert_eq!(code(&mut bob, op.clone()), "forbidden");
    act(&mut alice, &mut [&mut bob], op);
    let members = alice.request(json!({"type": "listMembers", "room": room}));
    let bob_entry = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "bob")
        .cloned();
    assert_eq!(
        bob_entry.map(|m| m["role"].clone()),
        Some(json!("operator")),
        "{members}"
    );

    // kick, with a reason: carol is told, is out, and may come back.
    let kick = json!({"type": "kick", "room": room, "username": "carol", "reason": "spam"});
    assert_eq!(act(&mut bob, &mut [&mut alice], kick)["reason"], "spam");
    let told = carol.next_where(|f| f["type"] == "membership" && f["change"] == "kicked");
    assert_eq!(
        (&told["room"], &told["by"], &told["reason"]),
        (&json!(room), &json!("bob"), &json!("spam"))
    );
    assert_eq!(
        code(
            &mut carol,
            json!({"type": "textFromUser", "room": room, "text": "hey"})
        ),
        "notAMember"
    );
    carol.join(room);

    // ban for good, then unban; then a ban for a second, which runs out.
    let ban = json!({"type": "ban", "room": room, "username": "carol", "reason": "again"});
    let notice = act(&mut bob, &mut [&mut alice], ban);
    assert!(notice.get("until").is_none(), "for good: {notice}");
    let told = carol.next_where(|f| f["type"] == "membership" && f["change"] == "banned");
    assert_eq!(
        (&told["room"], &told["reason"]),
        (&json!(room), &json!("again")),
        "{told}"
    );
    let (code_, description) = carol.refused(json!({"type": "join", "room": room}));
    assert_eq!(code_, "banned", "{description}");
    assert!(description.contains("for good"), "{description}");
    act(
        &mut bob,
        &mut [&mut alice],
        json!({"type": "unban", "room": room, "username": "carol"}),
    );
    carol.join(room);
    let ban = json!({"type": "ban", "room": room, "username": "carol", "seconds": 1});
    let notice = act(&mut bob, &mut [&mut alice], ban);
    let until = notice["until"]
        .as_u64()
        .expect("a timed ban says until when");
    assert!(until.abs_diff(now_ms() + 1000) < 5_000, "{notice}");
    let (code_, description) = carol.refused(json!({"type": "join", "room": room}));
    assert_eq!(code_, "banned", "{description}");
    thread::sleep(Duration::from_millis(1500));
    carol.join(room);

    // mute for good, unmute; mute for a second, which runs out.
    let mute = json!({"type": "mute", "room": room, "username": "dave"});
    act(&mut bob, &mut [&mut alice, &mut dave], mute);
    let say = json!({"type": "textFromUser", "room": room, "text": "can I?"});
    assert_eq!(code(&mut dave, say.clone()), "muted");
    let members = dave.request(json!({"type": "listMembers", "room": room}));
    assert!(members.to_string().contains("\"muted\":true"), "{members}");
    act(
        &mut bob,
        &mut [&mut alice],
        json!({"type": "unmute", "room": room, "username": "dave"}),
    );
    dave.say_in(room, "thanks");
    let mute = json!({"type": "mute", "room": room, "username": "dave", "seconds": 1});
    assert!(act(&mut bob, &mut [], mute)["until"].as_u64().is_some());
    assert_eq!(code(&mut dave, say.clone()), "muted");
    thread::sleep(Duration::from_millis(1500));
    dave.say_in(room, "free again");

    // No one acts against the owner; only the owner makes or unmakes
    // operators; a deopped operator is a member again.
    for request in [
        json!({"type": "kick", "room": room, "username": "alice"}),
        json!({"type": "ban", "room": room, "username": "alice"}),
        json!({"type": "mute", "room": room, "username": "alice"}),
        json!({"type": "deop", "room": room, "username": "alice"}),
        json!({"type": "op", "room": room, "username": "carol"}),
    ] {
        assert_eq!(code(&mut bob, request.clone()), "forbidden", "{request}");
    }
    act(
        &mut alice,
        &mut [&mut bob],
        json!({"type": "deop", "room": room, "username": "bob"}),
    );
    let kick = json!({"type": "kick", "room": room, "username": "dave"});
    assert_eq!(code(&mut bob, kick), "forbidden");

    // mode: invite-only keeps eve out until invited; then public again.
    let notice = act(
        &mut alice,
        &mut [&mut bob],
        json!({"type": "mode", "room": room, "inviteOnly": true}),
    );
    assert_eq!(notice["inviteOnly"], true, "{notice}");
    let (code_, description) = eve.refused(json!({"type": "join", "room": room}));
    assert_eq!(
        (code_.as_str(), description.as_str()),
        ("forbidden", "#mod is invite-only")
    );
    act(
        &mut alice,
        &mut [&mut bob],
        json!({"type": "invite", "room": room, "username": "eve"}),
    );
    let told = eve.next_where(|f| f["type"] == "membership" && f["change"] == "invited");
    assert_eq!(
        (&told["room"], &told["by"]),
        (&json!(room), &json!("alice")),
        "{told}"
    );
    eve.join(room);
    let notice = act(
        &mut alice,
        &mut [&mut eve],
        json!({"type": "mode", "room": room, "inviteOnly": false}),
    );
    assert_eq!(notice["inviteOnly"], false, "{notice}");

    // Every act is kept, numbered with the messages, across a restart.
    let expected = [
        "topic", "op", "kick", "ban", "unban", "ban", "mute", "unmute", "mute", "deop", "mode",
        "invite", "mode",
    ];
    let acts = |held: &[Value]| -> Vec<String> {
        held.iter()
            .filter(|m| m["type"] == "notice")
            .map(|m| m["act"].as_str().unwrap().to_owned())
            .collect()
    };
    let held = alice.everything_held(room, 50);
    assert_eq!(acts(&held), expected);
    let seqs: Vec<u64> = held.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let secret = alice.secret.clone();
    drop((alice, bob, carol, dave, eve));
    server.terminate();
    server.wait_exit();
    server.restart();
    let (mut alice, login) = V3::reclaim(server.addr, "alice", &secret, json!([]));
    assert_eq!(
        login.room(room).map(|r| &r["topic"]),
        Some(&json!("builds"))
    );
    assert_eq!(alice.everything_held(room, 50), held);
}

#[test]
fn server_operators_moderate_every_room() {
    let server = ServerProcess::start(&[
        "--in-memory",
        "--operators",
        "Root",
        NO_RATE_LIMIT[0],
        NO_RATE_LIMIT[1],
    ]);
    let (mut root, _) = V3::login_as(server.addr, "root");
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    alice.join("#pub");
    bob.join("#pub");
    root.join("#pub");
    // An operator of a room it did not create, which its owner cannot
    // touch.
    act(
        &mut root,
        &mut [&mut alice],
        json!({"type": "kick", "room": "#pub", "username": "bob"}),
    );
    for request in [
        json!({"type": "kick", "room": "#pub", "username": "root"}),
        json!({"type": "mute", "room": "#pub", "username": "root"}),
        json!({"type": "ban", "room": "#pub", "username": "root"}),
    ] {
        assert_eq!(code(&mut alice, request.clone()), "forbidden", "{request}");
    }
    // (How a memberList shows a server operator: the test below.)
}

/// A server with `flags` (in memory, no message rate limit).
fn server_with(flags: &[&str]) -> ServerProcess {
    let args = [
        &["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]][..],
        flags,
    ]
    .concat();
    ServerProcess::start(&args)
}

/// `v3` is refused `request` with limitReached, whose description names
/// `value`.
fn limit_reached(v3: &mut V3, request: Value, value: &str) {
    let (code_, description) = v3.refused(request.clone());
    assert_eq!(code_, "limitReached", "{request}: {description}");
    assert!(description.contains(value), "{request}: {description}");
}

#[test]
fn max_rooms_per_name() {
    let server = server_with(&["--max-rooms-per-name", "2"]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (_bob, _) = V3::login_as(server.addr, "bob");
    alice.join("#a");
    alice.join("#b");
    limit_reached(&mut alice, json!({"type": "join", "room": "#c"}), "2");
    // The lobby and DMs do not count; leaving one room makes room.
    alice.say_in("#lobby", "still here");
    alice.say_in("@bob", "a DM");
    alice.request(json!({"type": "part", "room": "#a"}));
    alice.join("#c");
}

#[test]
fn max_room_members() {
    let server = server_with(&["--max-room-members", "2"]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    let (mut carol, _) = V3::login_as(server.addr, "carol");
    alice.join("#full");
    bob.join("#full");
    limit_reached(&mut carol, json!({"type": "join", "room": "#full"}), "2");
    alice.create_invite_only("#inv");
    act(
        &mut alice,
        &mut [],
        json!({"type": "invite", "room": "#inv", "username": "bob"}),
    );
    bob.join("#inv");
    limit_reached(
        &mut alice,
        json!({"type": "invite", "room": "#inv", "username": "carol"}),
        "2",
    );
}

#[test]
fn rooms_per_address_per_minute() {
    let server = server_with(&["--rooms-per-address-per-minute", "2"]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    alice.join("#a");
    alice.join("#b");
    // bob is on the same address: he may join, not create.
    limit_reached(&mut bob, json!({"type": "join", "room": "#c"}), "2");
    bob.join("#a");
}

#[test]
fn max_rooms() {
    let server = server_with(&["--max-rooms", "2", "--rooms-per-address-per-minute", "0"]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    alice.join("#a");
    bob.join("#b");
    limit_reached(&mut alice, json!({"type": "join", "room": "#c"}), "2");
    // DMs are not rooms.
    alice.say_in("@bob", "still possible");
    bob.join("#a");
}

#[test]
fn new_dms_per_minute() {
    let server = server_with(&["--new-dms-per-minute", "1"]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    let (_carol, _) = V3::login_as(server.addr, "carol");
    alice.say_in("@bob", "first");
    let dm = json!({"type": "textFromUser", "room": "@carol", "text": "second"});
    limit_reached(&mut alice, dm, "1");
    // Writing in a conversation already started is not starting one.
    alice.say_in("@bob", "again");
    bob.say_in("@alice", "a reply");
}

#[test]
fn a_memberlist_shows_a_server_operator_as_an_operator() {
    let server = server_with(&["--operators", "Root"]);
    let (mut root, _) = V3::login_as(server.addr, "root");
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    alice.join("#pub");
    root.join("#pub");
    let members = alice.request(json!({"type": "listMembers", "room": "#pub"}));
    let roles: Vec<(&str, &str)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["username"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [("alice", "owner"), ("root", "operator")],
        "{members}"
    );
}

#[test]
fn server_operators_moderate_the_lobby() {
    let server = server_with(&["--operators", "Root"]);
    let (mut root, _) = V3::login_as(server.addr, "root");
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    // The lobby: mute and unmute, which no one else may.
    let mute = json!({"type": "mute", "room": "#lobby", "username": "bob"});
    assert_eq!(code(&mut alice, mute.clone()), "forbidden");
    act(&mut root, &mut [&mut alice], mute);
    let (code_, _) = bob.refused(json!({"type": "textFromUser", "text": "in the lobby"}));
    assert_eq!(code_, "muted");
    act(
        &mut root,
        &mut [],
        json!({"type": "unmute", "room": "#lobby", "username": "bob"}),
    );
    bob.say_in("#lobby", "back");
    // The lobby has no owner and is never invite-only.
    let mode = json!({"type": "mode", "room": "#lobby", "inviteOnly": true});
    assert_eq!(code(&mut root, mode), "forbidden");
}
