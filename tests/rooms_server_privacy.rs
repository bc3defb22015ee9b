//! Protocol v3 privacy over real sockets: a name that is not a member tries
//! every message type against an invite-only room, a room that does not
//! exist and a DM of others. Each is answered by a described error and
//! never a close; the invite-only room and the missing one look the same;
//! and nothing private (messages, topic, members, notices, DMs) is in any
//! byte sent to it, while the room goes on around it.
#![cfg(all(feature = "server", target_os = "linux"))]

mod net;
#[path = "common/v3.rs"]
mod v3;

use std::time::Duration;

use net::*;
use serde_json::{Value, json};
use v3::*;

/// Strings that exist only in the private room and the DM of others: none
/// may reach the outsider.
const SECRETS: [&str; 7] = [
    "TOPIC-MARKER-7f3",
    "MSG-MARKER-91c",
    "DM-MARKER-4d2",
    "TOPIC-MARKER-2b8",
    "MSG-MARKER-e05",
    "DM-MARKER-c6a",
    "zedmember",
];

/// `v3` does the moderation act `request`, which must be done.
fn acted(v3: &mut V3, request: Value) {
    let notice = v3.moderate(request.clone());
    assert_eq!(notice["type"], "notice", "{request}: {notice}");
}

/// Every request about `room` but `join`, each without an id.
fn every_request_about(room: &str) -> Vec<Value> {
    vec![
        json!({"type": "textFromUser", "room": room, "text": "let me in"}),
        json!({"type": "part", "room": room, "reason": "bye"}),
        json!({"type": "listMembers", "room": room}),
        json!({"type": "history", "room": room}),
        json!({"type": "history", "room": room, "before": 5, "limit": 10}),
        json!({"type": "history", "room": room, "after": 0}),
        json!({"type": "read", "room": room, "seq": 1}),
        json!({"type": "topic", "room": room, "topic": "mine now"}),
        json!({"type": "mode", "room": room, "inviteOnly": false}),
        json!({"type": "invite", "room": room, "username": "eve"}),
        json!({"type": "kick", "room": room, "username": "alice", "reason": "x"}),
        json!({"type": "ban", "room": room, "username": "alice", "seconds": 60}),
        json!({"type": "unban", "room": room, "username": "eve"}),
        json!({"type": "mute", "room": room, "username": "alice"}),
        json!({"type": "unmute", "room": room, "username": "alice"}),
        json!({"type": "op", "room": room, "username": "eve"}),
        json!({"type": "deop", "room": room, "username": "alice"}),
    ]
}

/// The error `eve` gets for `request`, with `room` in its description
/// written `#x`, so that two rooms' answers can be compared.
fn answer_about(eve: &mut V3, request: Value, room: &str) -> (String, String) {
    let (code, description) = eve.refused(request.clone());
    assert!(description.contains(room), "{request}: {description}");
    (code, description.replace(room, "#x"))
}

#[test]
fn a_non_member_learns_nothing_of_an_invite_only_room_a_missing_room_or_a_dm_of_others() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    let (mut zed, _) = V3::login_as(server.addr, "zedmember");
    alice.create_invite_only("#hideout");
    acted(
        &mut alice,
        json!({"type": "topic", "room": "#hideout", "topic": SECRETS[0]}),
    );
    acted(
        &mut alice,
        json!({"type": "invite", "room": "#hideout", "username": "zedmember"}),
    );
    zed.join("#hideout");
    alice.say_in("#hideout", SECRETS[1]);
    alice.say_in("@bob", SECRETS[2]);
    bob.said(SECRETS[2]);

    let (mut eve, _) = V3::login_as(server.addr, "eve");
    // The room and the DM go on while eve is there.
    acted(
        &mut alice,
        json!({"type": "topic", "room": "#hideout", "topic": SECRETS[3]}),
    );
    alice.say_in("#hideout", SECRETS[4]);
    acted(
        &mut alice,
        json!({"type": "mute", "room": "#hideout", "username": "zedmember"}),
    );
    acted(
        &mut alice,
        json!({"type": "kick", "room": "#hideout", "username": "zedmember"}),
    );
    alice.say_in("@bob", SECRETS[5]);
    bob.said(SECRETS[5]);

    // Every request about the invite-only room and the missing one: the
    // same answers, but for the name, each a notAMember. (Spelt otherwise
    // than created, and at login: the tests below.)
    for (hidden, missing) in [("#hideout", "#nowhere")] {
        for (request, other) in every_request_about(hidden)
            .into_iter()
            .zip(every_request_about(missing))
        {
            let (code, said) = answer_about(&mut eve, request.clone(), hidden);
            assert_eq!(code, "notAMember", "{request}: {said}");
            let answer_elsewhere = answer_about(&mut eve, other, missing);
            assert_eq!((code, said), answer_elsewhere, "{request}");
        }
    }
    let (code, description) = eve.refused(json!({"type": "join", "room": "#hideout"}));
    assert_eq!(
        (code.as_str(), description.as_str()),
        ("forbidden", "#hideout is invite-only")
    );

    // A DM of others cannot even be named; eve's own DMs are hers alone.
    for dm in ["@alice\nbob", "@bob\nalice", "@alice\\nbob"] {
        for request in every_request_about(dm) {
            let answer = eve.moderate(request.clone());
            assert_eq!(answer["type"], "errorMessage", "{request}: {answer}");
        }
    }
    for request in every_request_about("@bob") {
        if request["type"] != "textFromUser" {
            let _ = eve.moderate(request);
        }
    }
    // Her DM with alice has nothing in it (or is not hers until written).
    let history = eve.request(json!({"type": "history", "room": "@alice"}));
    let empty = history["type"] == "errorMessage" || messages(&history).is_empty();
    assert!(empty, "{history}");

    // listRooms: the public rooms and eve's own; none of the others'.
    let rooms = eve.list_rooms();
    for room in ["#hideout", "@bob", "@alice"] {
        let listed = rooms.as_array().unwrap().iter().any(|r| {
            r["room"]
                .as_str()
                .is_some_and(|name| name.eq_ignore_ascii_case(room))
        });
        assert!(!listed || room == "@bob", "{room} listed: {rooms}");
    }

    // A login that claims to know them: nothing of them, and the
    // invite-only room looks like the missing one.
    let known = json!([
        {"room": "#hideout", "since": 0},
        {"room": "#nowhere", "since": 0},
        {"room": "@alice\nbob", "since": 0},
    ]);
    let (mut eve_again, login) = V3::reclaim(server.addr, "eve", &eve.secret.clone(), known);
    assert!(login.room("#hideout").is_none(), "{:?}", login.rooms);
    // (That the `changes` say the same of both is the test below.)
    assert!(login.histories.iter().all(|h| h["room"] != "#hideout"));

    // Still served, never closed; and not a byte of anything private.
    assert!(eve.list_rooms().is_array());
    eve.settle(Duration::from_millis(500));
    eve_again.settle(Duration::from_millis(200));
    for frame in eve.received.iter().chain(&eve_again.received) {
        for secret in SECRETS {
            assert!(!frame.contains(secret), "{secret} reached eve: {frame}");
        }
        if frame.to_lowercase().contains("hideout") {
            // Only her own errors name it, and a login's `changes`, which
            // say of it what they say of a room that does not exist.
            let json: Value = serde_json::from_str(frame).unwrap();
            let told = json["type"] == "errorMessage" || json["type"] == "rooms";
            assert!(told, "eve was told of #hideout: {frame}");
        }
    }
    // The members were told, and the kicked one too.
    assert_eq!(zed.notice("#hideout", "topic")["topic"], SECRETS[3]);
    let kicked = zed.next_where(|f| f["type"] == "membership" && f["change"] == "kicked");
    assert_eq!(kicked["room"], "#hideout");
}

#[test]
fn v1_and_v2_clients_cannot_reach_a_room_at_all() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    alice.create_invite_only("#hideout");
    alice.say_in("#hideout", SECRETS[1]);
    let mut v2 = Client::connect_v2(server.addr);
    v2.login("mallory");
    let mut v1 = Client::connect(server.addr);
    v1.login("trudy");
    // A v3 message is unknown to them; a `room` on textFromUser is an
    // unknown field, ignored: said in the lobby.
    for client in [&mut v2, &mut v1] {
        client.send_json(json!({"type": "history", "id": "h", "room": "#hideout"}));
        let error = client.recv_type("errorMessage");
        assert_eq!(error["error"], "invalidJson", "{error}");
        client.send_json(
            json!({"type": "textFromUser", "id": "t", "room": "#hideout", "text": "in?"}),
        );
        let said = client.recv_type("textBroadcast");
        assert_eq!(said["message"], "in?", "{said}");
        assert!(said.get("room").is_none(), "{said}");
    }
    let lobby = alice.said("in?");
    assert!(in_lobby(&lobby), "{lobby}");
    let held = alice.everything_held("#hideout", 50);
    assert_eq!(texts(&json!({ "messages": held })), [SECRETS[1]]);
}

/// `eve`, logged in on `server` where alice has the invite-only `#hideout`
/// (which eve is not in) and no one has `#nowhere`.
fn outsider_beside_a_hideout(server: &ServerProcess) -> V3 {
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    alice.create_invite_only("#hideout");
    alice.say_in("#hideout", SECRETS[1]);
    V3::login_as(server.addr, "eve").0
}

#[test]
fn an_invite_only_room_looks_missing_however_it_is_spelt() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let mut eve = outsider_beside_a_hideout(&server);
    for (request, other) in every_request_about("#HideOut")
        .into_iter()
        .zip(every_request_about("#NoWhere"))
    {
        let answer = answer_about(&mut eve, request.clone(), "#HideOut");
        assert_eq!(
            answer,
            answer_about(&mut eve, other, "#NoWhere"),
            "{request}"
        );
    }
    let (code, description) = eve.refused(json!({"type": "join", "room": "#HideOut"}));
    assert_eq!(
        (code.as_str(), description.as_str()),
        ("forbidden", "#HideOut is invite-only")
    );
}

#[test]
fn a_login_listing_an_invite_only_room_hears_what_it_would_of_a_missing_one() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let eve = outsider_beside_a_hideout(&server);
    let known = json!([{"room": "#hideout", "since": 0}, {"room": "#nowhere", "since": 0}]);
    let (_, login) = V3::reclaim(server.addr, "eve", &eve.secret.clone(), known);
    let changes = |room: &str| -> Vec<String> {
        login
            .changes(room)
            .iter()
            .map(|c| c.to_string().replace(room, "#x"))
            .collect()
    };
    assert_eq!(
        changes("#hideout"),
        changes("#nowhere"),
        "{:?}",
        login.rooms
    );
    assert!(login.room("#hideout").is_none(), "{:?}", login.rooms);
    assert!(login.history("#hideout").is_none(), "{:?}", login.histories);
}
