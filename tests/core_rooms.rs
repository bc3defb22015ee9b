//! Rooms, membership across devices, DMs and the lobby (protocol v3) in
//! the core, on the virtual clock, through its public API only.

#[path = "common/rooms.rs"]
mod rooms;

use rooms::*;
use serde_json::json;
use wschat::{Config, Version};

#[test]
fn joining_a_room_that_does_not_exist_creates_it_with_the_joiner_as_owner() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let _ = w.drain();
    let out = w.ask(alice, json!({"type": "join", "id": "j1", "room": "#Dev"}));
    assert_out(
        &out,
        vec![send(
            alice,
            joined("#Dev", Some("j1"), state("#Dev", 1, "owner", 0, 0)),
        )],
    );
    // Another spelling of the same name is the same room, shown as first
    // created; the owner is told who joined.
    let out = w.ask(bob, json!({"type": "join", "id": "j2", "room": "#DEV"}));
    assert_out(
        &out,
        vec![
            send(
                bob,
                joined("#Dev", Some("j2"), state("#Dev", 2, "member", 0, 0)),
            ),
            send(alice, member("#Dev", "bob", "joined", t(0))),
        ],
    );
    // Both see the same numbering.
    assert_eq!(w.epoch(alice, "#Dev"), w.epoch(bob, "#Dev"));
}

#[test]
fn a_message_in_a_room_reaches_every_device_of_every_member_and_no_one_else() {
    let mut w = World::default();
    let alice = w.user("alice");
    let laptop = w.device("alice", alice);
    let bob = w.user("bob");
    let outsider = w.user("carol");
    let old = w.user_v("oldie", Version::V1);
    let mid = w.user_v("middy", Version::V2);
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    let _ = w.drain();
    w.advance(ms(1500));
    let out = w.say(bob, "#dev", "hello dev");
    assert_out(
        &out,
        vec![
            send(
                bob,
                text_in("#dev", "bob", "hello dev", 1, t(1500), Some("m")),
            ),
            send(alice, text_in("#dev", "bob", "hello dev", 1, t(1500), None)),
            send(
                laptop,
                text_in("#dev", "bob", "hello dev", 1, t(1500), None),
            ),
        ],
    );
    let _ = (outsider, old, mid);
    let out = w.say(alice, "#DEV", "and again");
    assert_eq!(one(&out, laptop, "textBroadcast")["seq"], 2);
    assert_eq!(one(&out, laptop, "textBroadcast")["room"], "#dev");
}

#[test]
fn each_room_and_dm_numbers_from_one_with_its_own_epoch_and_the_lobby_goes_on() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join(alice, "#one");
    w.join(alice, "#two");
    w.join(bob, "#two");
    let lobby1 = w.said(alice, "#lobby", "lobby a");
    assert_eq!(lobby1, 1);
    assert_eq!(w.said(alice, "#one", "one a"), 1);
    assert_eq!(w.said(alice, "#one", "one b"), 2);
    assert_eq!(w.said(bob, "#two", "two a"), 1);
    assert_eq!(w.said(alice, "@bob", "dm a"), 1);
    assert_eq!(w.said(bob, "@alice", "dm b"), 2);
    assert_eq!(w.said(bob, "#lobby", "lobby b"), 2);
    // A lobby message without a room is the lobby's, as in v2.
    let out = w.ask(
        alice,
        json!({"type": "textFromUser", "id": "m", "text": "lobby c"}),
    );
    assert_eq!(one(&out, alice, "textBroadcast")["seq"], 3);
    let epochs = [
        w.epoch(alice, "#one"),
        w.epoch(alice, "#two"),
        w.epoch(alice, "@bob"),
        w.server.epoch().to_owned(),
    ];
    for (i, a) in epochs.iter().enumerate() {
        for b in &epochs[i + 1..] {
            assert_ne!(a, b, "two numberings share an epoch");
        }
    }
    // Both parties of a DM share its numbering.
    let out = w.ask(bob, json!({"type": "history", "id": "h", "room": "@alice"}));
    assert_eq!(
        history_entries(&one(&out, bob, "history")),
        ["1:dm a", "2:dm b"]
    );
    assert_eq!(w.epoch(bob, "@alice"), w.epoch(alice, "@bob"));
}

#[test]
fn room_names_follow_the_rules_of_user_names() {
    let mut w = World::default();
    let alice = w.user("alice");
    for room in [
        "#",
        "dev",
        "#two words",
        "#p\u{430}ypal",
        "##dev",
        "",
        "#a\nb",
    ] {
        let out = w.ask(alice, json!({"type": "join", "id": "j", "room": room}));
        assert_refused(&out, alice, "invalidRoom", "j", "");
        let out = w.say(alice, room, "hi");
        let [Out::Send(_, frame)] = &out[..] else {
            panic!("{out:#?}")
        };
        assert!(
            ["invalidRoom", "notAMember"].contains(&frame["error"].as_str().unwrap()),
            "{room:?}: {frame}"
        );
        assert!(w.server.is_open(alice));
    }
    // Too long, as a user name would be.
    let long = format!("#{}", "a".repeat(33));
    let out = w.ask(alice, json!({"type": "join", "id": "j", "room": long}));
    assert_refused(&out, alice, "invalidRoom", "j", "");
    let fits = format!("#{}", "a".repeat(32));
    w.join(alice, &fits);
}

#[test]
fn a_join_on_one_device_shows_on_the_others_and_so_does_a_part() {
    let mut w = World::default();
    let phone = w.user("alice");
    let laptop = w.device("alice", phone);
    let bob = w.user("bob");
    w.join(bob, "#dev");
    let _ = w.drain();
    let out = w.ask(phone, json!({"type": "join", "id": "j", "room": "#dev"}));
    assert_out(
        &out,
        vec![
            send(
                phone,
                joined("#dev", Some("j"), state("#dev", 2, "member", 0, 0)),
            ),
            send(
                laptop,
                joined("#dev", None, state("#dev", 2, "member", 0, 0)),
            ),
            send(bob, member("#dev", "alice", "joined", t(0))),
        ],
    );
    // The laptop is in it without having asked.
    assert_eq!(w.said(laptop, "#dev", "from the laptop"), 1);
    let out = w.ask(
        laptop,
        json!({"type": "part", "id": "p", "room": "#dev", "reason": "bye"}),
    );
    assert_out(
        &out,
        vec![
            send(
                laptop,
                json!({"type": "membership", "id": "*", "replyTo": "p", "room": "#dev", "change": "left", "reason": "bye"}),
            ),
            send(
                phone,
                json!({"type": "membership", "id": "*", "room": "#dev", "change": "left", "reason": "bye"}),
            ),
            send(bob, member("#dev", "alice", "left", t(0))),
        ],
    );
    let out = w.say(phone, "#dev", "still here?");
    assert_refused(&out, phone, "notAMember", "m", "you are not in #dev");
    // A part of a room one is not in.
    let out = w.ask(phone, json!({"type": "part", "id": "p2", "room": "#dev"}));
    assert_refused(&out, phone, "notAMember", "p2", "you are not in #dev");
}

#[test]
fn membership_survives_disconnects_and_misses_nothing() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let secret = w.secret(bob);
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.close(bob);
    let _ = w.drain();
    w.said(alice, "#dev", "while you were out");
    let back = w.open3();
    let out = w.login_with(back, "bob", json!({ "secret": secret }));
    let rooms = one(&out, back, "rooms");
    let dev = &states(&rooms)["#dev"];
    assert_eq!(dev["role"], "member");
    assert_eq!(dev["lastSeq"], 1);
    assert_eq!(dev["unread"], 1);
    let history = &histories(&out, back)["#dev"];
    assert_eq!(history_entries(history), ["1:while you were out"]);
    // Still a member: what is said reaches the new connection.
    let out = w.say(alice, "#dev", "welcome back");
    assert_eq!(one(&out, back, "textBroadcast")["message"], "welcome back");
}

#[test]
fn a_member_going_offline_stays_listed_offline() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.close(bob);
    let _ = w.drain();
    let out = w.ask(
        alice,
        json!({"type": "listMembers", "id": "lm", "room": "#dev"}),
    );
    assert_out(
        &out,
        vec![send(
            alice,
            json!({"type": "memberList", "id": "*", "replyTo": "lm", "room": "#dev", "members": [
                {"username": "alice", "role": "owner", "online": true},
                {"username": "bob", "role": "member", "online": false},
            ]}),
        )],
    );
}

#[test]
fn a_public_room_s_members_may_be_listed_by_anyone() {
    let mut w = World::default();
    let alice = w.user("alice");
    let carol = w.user("carol");
    w.join(alice, "#dev");
    let out = w.ask(
        carol,
        json!({"type": "listMembers", "id": "lm", "room": "#dev"}),
    );
    let list = one(&out, carol, "memberList");
    assert_eq!(
        list["members"],
        json!([{"username": "alice", "role": "owner", "online": true}])
    );
}

#[test]
fn logout_ends_every_membership_and_the_next_owner_of_the_name_inherits_nothing() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.said(alice, "@bob", "psst");
    let _ = w.drain();
    let out = w.ask(bob, json!({"type": "logout", "id": "o"}));
    assert!(
        frames(&out, alice)
            .iter()
            .any(|f| f["type"] == "member" && f["username"] == "bob" && f["change"] == "left"),
        "{out:#?}"
    );
    let out = w.ask(
        alice,
        json!({"type": "listMembers", "id": "lm", "room": "#dev"}),
    );
    assert_eq!(
        one(&out, alice, "memberList")["members"],
        json!([{"username": "alice", "role": "owner", "online": true}])
    );
    let heir = w.open3();
    let out = w.login_with(heir, "bob", json!({}));
    let rooms = one(&out, heir, "rooms");
    let names: Vec<String> = states(&rooms).into_keys().collect();
    assert!(names.iter().all(|r| r == "#lobby"), "{rooms}");
    for message in ["psst"] {
        for frame in w.raw_to(heir) {
            assert!(!frame.contains(message), "{frame}");
        }
    }
    let out = w.ask(
        heir,
        json!({"type": "history", "id": "h", "room": "@alice"}),
    );
    assert_refused(&out, heir, "notAMember", "h", "");
}

#[test]
fn a_released_name_s_rooms_dms_invites_and_read_markers_are_forgotten() {
    let mut w = World::new(Config {
        login_ttl: secs(60),
        ..config()
    });
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join_private(alice, "#ops");
    w.act(alice, "invite", "#ops", json!({"username": "bob"}));
    w.join(bob, "#dev");
    w.said(bob, "#dev", "mine");
    w.ask(
        bob,
        json!({"type": "read", "id": "r", "room": "#dev", "seq": 1}),
    );
    w.said(alice, "@bob", "old secret");
    w.close(bob);
    w.advance(secs(61));
    let _ = w.drain();
    // The DM is gone for the other party too.
    let out = w.ask(alice, json!({"type": "listRooms", "id": "lr"}));
    assert!(!states(&one(&out, alice, "roomList")).contains_key("@bob"));
    let heir = w.open3();
    let out = w.login_with(heir, "bob", json!({}));
    let rooms = one(&out, heir, "rooms");
    let names: Vec<String> = states(&rooms).into_keys().collect();
    assert!(names.iter().all(|r| r == "#lobby"), "{rooms}");
    assert_eq!(rooms["changes"], json!([]), "{rooms}");
    let out = w.ask(heir, json!({"type": "join", "id": "j", "room": "#ops"}));
    assert_refused(&out, heir, "forbidden", "j", "#ops is invite-only");
    w.join(heir, "#dev");
    let out = w.ask(heir, json!({"type": "listRooms", "id": "lr"}));
    assert_eq!(states(&one(&out, heir, "roomList"))["#dev"]["readSeq"], 0);
    for frame in w.raw_to(heir) {
        assert!(!frame.contains("old secret"), "{frame}");
    }
}

// ---- direct messages ----

#[test]
fn a_dm_reaches_every_device_of_the_other_party_shown_as_the_sender() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let bob_laptop = w.device("bob", bob);
    let carol = w.user("carol");
    let _ = w.drain();
    let out = w.say(alice, "@Bob", "lunch?");
    let mut got: Vec<Out> = out
        .iter()
        .filter(|o| o.frame().is_some_and(|f| f["type"] == "textBroadcast"))
        .cloned()
        .collect();
    got.sort_by_key(Out::to);
    assert_out(
        &got,
        vec![
            send(
                alice,
                text_in("@bob", "alice", "lunch?", 1, t(0), Some("m")),
            ),
            send(bob, text_in("@alice", "alice", "lunch?", 1, t(0), None)),
            send(
                bob_laptop,
                text_in("@alice", "alice", "lunch?", 1, t(0), None),
            ),
        ],
    );
    assert!(frames(&out, carol).is_empty(), "{out:#?}");
    // No errors for anyone, and the reply takes the next seq.
    assert!(
        !out.iter()
            .any(|o| o.frame().is_some_and(|f| f["type"] == "errorMessage"))
    );
    assert_eq!(w.said(bob_laptop, "@alice", "yes"), 2);
}

#[test]
fn a_dm_to_an_offline_held_name_is_delivered_at_its_next_login() {
    let mut w = World::default();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let secret = w.secret(bob);
    w.close(bob);
    assert_eq!(w.said(alice, "@bob", "call me"), 1);
    let back = w.open3();
    let out = w.login_with(back, "bob", json!({ "secret": secret }));
    let rooms = one(&out, back, "rooms");
    let dm = &states(&rooms)["@alice"];
    assert_eq!(
        (
            &dm["lastSeq"],
            &dm["unread"],
            &dm["members"],
            &dm["inviteOnly"]
        ),
        (&json!(1), &json!(1), &json!(2), &json!(true))
    );
    assert!(
        rooms["changes"]
            .as_array()
            .unwrap()
            .contains(&json!({"room": "@alice", "change": "joined"})),
        "{rooms}"
    );
    let history = &histories(&out, back)["@alice"];
    assert_eq!(history_entries(history), ["1:call me"]);
}

#[test]
fn a_dm_to_a_name_that_is_not_held_is_no_such_user() {
    let mut w = World::default();
    let alice = w.user("alice");
    let out = w.say(alice, "@nobody", "hello?");
    assert_refused(&out, alice, "noSuchUser", "m", "");
    let out = w.say(alice, "@not a name", "hello?");
    let [Out::Send(_, frame)] = &out[..] else {
        panic!("{out:#?}")
    };
    assert!(
        ["invalidRoom", "noSuchUser"].contains(&frame["error"].as_str().unwrap()),
        "{frame}"
    );
    assert!(w.server.is_open(alice));
}

// ---- the lobby ----

/// The exact v1 and v2 frames of a lobby message, as before v3.
fn lobby_frames(name: &str, text: &str, seq: u64, at: u64) -> (String, String) {
    (
        format!(r#"{{"type":"textBroadcast","id":"*","username":"{name}","message":"{text}"}}"#),
        format!(
            r#"{{"type":"textBroadcast","id":"*","username":"{name}","message":"{text}","seq":{seq},"timestamp":{at}}}"#
        ),
    )
}

/// The last raw frame `conn` got, with its id masked.
fn last_raw(w: &World, conn: wschat::ConnectionId) -> String {
    let raw = w.raw_to(conn).pop().expect("a frame");
    let at = raw.find(r#""id":""#).unwrap() + 6;
    format!("{}*{}", &raw[..at], &raw[at + 21..])
}

#[test]
fn a_v3_client_may_part_the_lobby_and_rejoin_while_v1_and_v2_see_what_they_always_saw() {
    let mut w = World::default();
    let old = w.user_v("oldie", Version::V1);
    let mid = w.user_v("middy", Version::V2);
    let nova = w.user("nova");
    let _ = w.drain();
    // A v3 message to the lobby is, to v1 and v2, a lobby message as ever.
    w.said(nova, "#lobby", "hello all");
    let (v1, v2) = lobby_frames("nova", "hello all", 1, t(0));
    assert_eq!((last_raw(&w, old), last_raw(&w, mid)), (v1, v2));

    let out = w.ask(nova, json!({"type": "part", "id": "p", "room": "#lobby"}));
    assert_eq!(kinds(&out, nova), ["membership"], "{out:#?}");
    assert_eq!(one(&out, nova, "membership")["change"], "left");
    assert!(
        frames(&out, old).is_empty() && frames(&out, mid).is_empty(),
        "{out:#?}"
    );

    // Out of the lobby: nothing of it reaches nova, and nova may not say.
    let out = w.ask(
        old,
        json!({"type": "textFromUser", "id": "m", "text": "anyone?"}),
    );
    assert!(frames(&out, nova).is_empty(), "{out:#?}");
    let (v1, v2) = lobby_frames("oldie", "anyone?", 2, t(0));
    assert_eq!((last_raw(&w, old), last_raw(&w, mid)), (v1, v2));
    let out = w.say(nova, "#lobby", "let me say");
    assert_refused(&out, nova, "notAMember", "m", "you are not in #lobby");
    let out = w.ask(
        nova,
        json!({"type": "textFromUser", "id": "m2", "text": "default room"}),
    );
    assert_refused(&out, nova, "notAMember", "m2", "you are not in #lobby");

    // Back in: the lobby's numbering went on meanwhile.
    let out = w.ask(nova, json!({"type": "join", "id": "j", "room": "#lobby"}));
    assert_joined(&out, nova, "#lobby");
    assert!(
        frames(&out, old).is_empty() && frames(&out, mid).is_empty(),
        "{out:#?}"
    );
    let out = w.ask(
        mid,
        json!({"type": "textFromUser", "id": "m", "text": "back?"}),
    );
    // To v3 a lobby message may name the lobby, or name no room (the
    // default, as on textFromUser).
    let mut got = frames(&out, nova);
    for frame in &mut got {
        if frame["room"] == "#lobby" {
            frame.as_object_mut().unwrap().remove("room");
        }
    }
    let mut expected = text_in("#lobby", "middy", "back?", 3, t(0), None);
    expected.as_object_mut().unwrap().remove("room");
    assert_eq!(got, [expected]);
    let (v1, _) = lobby_frames("middy", "back?", 3, t(0));
    assert_eq!(last_raw(&w, old), v1);
}

#[test]
fn the_lobby_cannot_be_made_invite_only_or_owned() {
    let mut w = World::default();
    let nova = w.user("nova");
    let out = w.act(nova, "mode", "#lobby", json!({"inviteOnly": true}));
    assert_refused(&out, nova, "forbidden", "a", "");
    let out = w.act(nova, "topic", "#lobby", json!({"topic": "mine"}));
    assert_refused(&out, nova, "forbidden", "a", "");
    let out = w.act(nova, "op", "#lobby", json!({"username": "nova"}));
    assert_refused(&out, nova, "forbidden", "a", "");
    let out = w.ask(nova, json!({"type": "listRooms", "id": "lr"}));
    let lobby = &states(&one(&out, nova, "roomList"))["#lobby"];
    assert_eq!(lobby["role"], "member");
    assert_eq!(lobby["inviteOnly"], false);
}

#[test]
fn v3_messages_are_unknown_types_to_v1_and_v2() {
    let mut w = World::default();
    let old = w.user_v("oldie", Version::V1);
    let mid = w.user_v("middy", Version::V2);
    let out = w.ask(old, json!({"type": "join", "id": "j", "room": "#dev"}));
    assert_out(
        &out,
        vec![send(
            old,
            json!({"type": "errorMessage", "error": "invalidJson", "id": "*",
                "description": "unknown variant \"join\", expected \"login\" or \"textFromUser\""}),
        )],
    );
    let out = w.ask(mid, json!({"type": "listRooms", "id": "r"}));
    assert_out(
        &out,
        vec![send(
            mid,
            json!({"type": "errorMessage", "error": "invalidJson", "id": "*", "replyTo": "r",
                "description": "unknown variant \"listRooms\", expected one of \"login\", \"textFromUser\", \"listUsers\", \"logout\""}),
        )],
    );
    // A `room` on a v2 message is an unknown field: the lobby.
    let out = w.ask(
        mid,
        json!({"type": "textFromUser", "id": "m", "text": "hi", "room": "#dev"}),
    );
    assert_eq!(one(&out, mid, "textBroadcast")["seq"], 1);
    assert!(one(&out, mid, "textBroadcast").get("room").is_none());
}

#[test]
fn a_name_that_left_the_lobby_stays_out_of_it_on_its_next_login() {
    let mut w = World::default();
    let old = w.user_v("oldie", Version::V1);
    let nova = w.user("nova");
    let secret = w.secret(nova);
    w.ask(nova, json!({"type": "part", "id": "p", "room": "#lobby"}));
    w.close(nova);
    w.ask(
        old,
        json!({"type": "textFromUser", "id": "m", "text": "LOBBYMARK"}),
    );
    let back = w.open3();
    let out = w.login_with(back, "nova", json!({ "secret": secret }));
    let rooms = one(&out, back, "rooms");
    assert!(!states(&rooms).contains_key("#lobby"), "{rooms}");
    assert!(!histories(&out, back).contains_key("#lobby"), "{out:#?}");
    for frame in w.raw_to(back) {
        assert!(!frame.contains("LOBBYMARK"), "{frame}");
    }
    let out = w.ask(
        old,
        json!({"type": "textFromUser", "id": "m", "text": "LOBBYMARK"}),
    );
    assert!(frames(&out, back).is_empty(), "{out:#?}");
}

#[test]
fn member_notices_are_paced_per_room_and_the_counts_stay_true() {
    let mut w = World::new(Config {
        presence_rate: 1,
        presence_burst: 3,
        ..config()
    });
    let owner = w.user("owner");
    w.join(owner, "#busy");
    let joiners: Vec<_> = (0..10).map(|i| w.user(&format!("j{i}"))).collect();
    let _ = w.drain();
    let mut heard = Vec::new();
    for &conn in &joiners {
        let out = w.ask(conn, json!({"type": "join", "id": "j", "room": "#busy"}));
        assert_joined(&out, conn, "#busy");
        heard.extend(
            frames(&out, owner)
                .into_iter()
                .filter(|f| f["type"] == "member"),
        );
    }
    // The burst, then nothing a storm would cost everyone.
    assert_eq!(
        heard,
        (0..3)
            .map(|i| member("#busy", &format!("j{i}"), "joined", t(0)))
            .collect::<Vec<_>>()
    );
    let out = w.ask(owner, json!({"type": "listRooms", "id": "lr"}));
    assert_eq!(
        states(&one(&out, owner, "roomList"))["#busy"]["members"],
        11
    );
    // When the budget allows the next notice, the rest in one summary.
    let out = w.advance(secs(1));
    assert_eq!(
        room_presences(&out, owner, "#busy"),
        [room_presence("#busy", 3..10, t(1000))]
    );
    // The budget comes back with time.
    w.advance(secs(1));
    let out = w.ask(
        joiners[0],
        json!({"type": "part", "id": "p", "room": "#busy"}),
    );
    assert_eq!(
        frames(&out, owner),
        [member("#busy", "j0", "left", t(2000))]
    );
}

/// The `presence` summaries of `room` that `conn` got.
fn room_presences(out: &[Out], conn: ConnectionId, room: &str) -> Vec<serde_json::Value> {
    frames(out, conn)
        .into_iter()
        .filter(|f| f["type"] == "presence" && f["room"] == room)
        .collect()
}

/// The summary of the joins of `j{i}` for `i` in `joined`.
fn room_presence(room: &str, joined: std::ops::Range<usize>, timestamp: u64) -> serde_json::Value {
    let count = joined.len();
    let names: Vec<String> = joined.map(|i| format!("j{i}")).collect();
    json!({"type": "presence", "id": "*", "room": room, "joined": names,
        "joinedCount": count, "left": [], "leftCount": 0, "timestamp": timestamp})
}

#[test]
fn a_burst_of_joins_past_the_budget_is_summarised_once_at_the_refill_to_members_only() {
    let mut w = World::new(Config {
        presence_rate: 1,
        presence_burst: 2,
        ..config()
    });
    let owner = w.user("owner");
    w.join(owner, "#busy");
    let outsider = w.user("outsider");
    w.join(outsider, "#other");
    let joiners: Vec<_> = (0..5).map(|i| w.user(&format!("j{i}"))).collect();
    // The lobby's own (v2) presence budget is full again by then.
    let _ = w.advance(secs(30));
    let mut out = Vec::new();
    for &conn in &joiners {
        let joined = w.ask(conn, json!({"type": "join", "id": "j", "room": "#busy"}));
        assert_joined(&joined, conn, "#busy");
        out.extend(joined);
    }
    // j1 leaves before the summary is due: it is in it, and not told it.
    out.extend(w.advance(ms(500)));
    out.extend(w.ask(
        joiners[1],
        json!({"type": "part", "id": "p", "room": "#busy"}),
    ));
    // The burst goes out as `member` notices; the rest waits.
    assert_eq!(
        frames(&out, owner),
        [
            member("#busy", "j0", "joined", t(30_000)),
            member("#busy", "j1", "joined", t(30_000)),
        ]
    );
    assert!(frames(&out, outsider).is_empty(), "{out:#?}");
    assert!(
        !out.iter()
            .any(|o| matches!(o, Out::Send(_, f) if f["type"] == "presence")),
        "{out:#?}"
    );
    let out = w.advance(ms(499));
    assert!(!out.iter().any(|o| matches!(o, Out::Send(..))), "{out:#?}");
    // At the refill instant: one summary, to each member still in the room.
    let out = w.advance(ms(1));
    let summary = json!({"type": "presence", "id": "*", "room": "#busy",
        "joined": ["j2", "j3", "j4"], "joinedCount": 3, "left": ["j1"], "leftCount": 1,
        "timestamp": t(31_000)});
    let members = [owner, joiners[0], joiners[2], joiners[3], joiners[4]];
    for conn in members {
        assert_eq!(
            frames(&out, conn),
            std::slice::from_ref(&summary),
            "{conn:?}"
        );
    }
    assert_eq!(
        out.iter().filter(|o| matches!(o, Out::Send(..))).count(),
        members.len(),
        "{out:#?}"
    );
    // Nothing more is held.
    let out = w.advance(secs(10));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Out::Send(_, f) if f["type"] == "presence")),
        "{out:#?}"
    );
}

#[test]
fn a_released_owner_s_room_stays_without_an_owner_and_the_name_s_heir_is_not_it() {
    let mut w = World::new(Config {
        login_ttl: secs(60),
        ..config()
    });
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.close(alice);
    w.advance(secs(61));
    let _ = w.drain();
    let out = w.ask(
        bob,
        json!({"type": "listMembers", "id": "lm", "room": "#dev"}),
    );
    assert_eq!(
        one(&out, bob, "memberList")["members"],
        json!([{"username": "bob", "role": "member", "online": true}])
    );
    assert_eq!(w.said(bob, "#dev", "still here"), 1);
    let heir = w.user("alice");
    let out = w.ask(heir, json!({"type": "join", "id": "j", "room": "#dev"}));
    assert_eq!(one(&out, heir, "membership")["state"]["role"], "member");
    let out = w.act(heir, "kick", "#dev", json!({"username": "bob"}));
    assert_refused(&out, heir, "forbidden", "a", "");
}

#[test]
fn a_dm_is_shown_by_the_other_party_s_display_name_however_it_was_written() {
    let mut w = World::default();
    let alice = w.user("Alice");
    let bob = w.user("BobR");
    let _ = w.drain();
    let out = w.say(alice, "@bobr", "hi");
    assert_eq!(one(&out, alice, "textBroadcast")["room"], "@BobR");
    assert_eq!(one(&out, bob, "textBroadcast")["room"], "@Alice");
    let out = w.say(bob, "@ALICE", "hello");
    assert_eq!(one(&out, bob, "textBroadcast")["room"], "@Alice");
    assert_eq!(one(&out, bob, "textBroadcast")["seq"], 2);
    let out = w.ask(bob, json!({"type": "listRooms", "id": "lr"}));
    assert!(states(&one(&out, bob, "roomList")).contains_key("@Alice"));
}

#[test]
fn a_member_list_stops_at_the_reply_budget_and_says_how_many_it_left_out() {
    let mut w = World::new(Config {
        reply_max_bytes: 300,
        ..config()
    });
    let owner = w.user("owner");
    w.join(owner, "#big");
    for i in 0..20 {
        let conn = w.user(&format!("user{i:02}"));
        w.join(conn, "#big");
    }
    let out = w.ask(
        owner,
        json!({"type": "listMembers", "id": "lm", "room": "#big"}),
    );
    let list = one(&out, owner, "memberList");
    let listed = list["members"].as_array().unwrap().len();
    assert!(listed > 0 && listed < 21, "{list}");
    assert_eq!(list["more"], 21 - listed as u64);
    assert_eq!(list["members"][0]["username"], "owner");
    let raw = w.raw_to(owner).pop().unwrap();
    assert!(raw.len() <= 300 + 200, "{} bytes", raw.len());
}

/// What a v1 and a v2 connection receive in one scripted session, ids
/// masked; with `rooms`, two v3 names also use rooms, DMs and acts, and
/// leave the lobby and come back, between the same lobby messages.
fn v1_v2_view(rooms: bool) -> (Vec<String>, Vec<String>) {
    let mut w = World::default();
    let old = w.user_v("oldie", Version::V1);
    let mid = w.user_v("middy", Version::V2);
    let nova = w.user("nova");
    let vera = w.user("vera");
    w.ask(old, json!({"type": "textFromUser", "id": "m", "text": "a"}));
    if rooms {
        w.join(nova, "#dev");
        w.join(vera, "#dev");
        w.said(nova, "#dev", "in dev");
        w.said(vera, "@nova", "a dm");
        w.act(nova, "topic", "#dev", json!({"topic": "t"}));
        w.act(nova, "kick", "#dev", json!({"username": "vera"}));
        w.ask(vera, json!({"type": "part", "id": "p", "room": "#lobby"}));
        w.ask(nova, json!({"type": "listRooms", "id": "lr"}));
        w.join(vera, "#lobby");
        w.ask(
            nova,
            json!({"type": "read", "id": "r", "room": "#dev", "seq": 1}),
        );
    }
    w.ask(mid, json!({"type": "textFromUser", "id": "m", "text": "b"}));
    w.said(nova, "#lobby", "c");
    w.advance(secs(1));
    w.close(vera);
    w.ask(old, json!({"type": "textFromUser", "id": "m", "text": "d"}));
    let masked = |conn| -> Vec<String> {
        w.raw_to(conn)
            .into_iter()
            .map(|f| {
                let mut v: serde_json::Value = serde_json::from_str(&f).unwrap();
                v["id"] = "*".into();
                if v.get("secret").is_some() {
                    v["secret"] = "*".into();
                }
                v.to_string()
            })
            .collect()
    };
    (masked(old), masked(mid))
}

#[test]
fn v1_and_v2_connections_see_exactly_what_they_saw_before_whatever_v3_does() {
    let (old, mid) = v1_v2_view(false);
    assert_eq!(v1_v2_view(true), (old.clone(), mid.clone()));
    // And it is the lobby's traffic: a, b, c, d numbered 1 to 4 for v2.
    let seqs: Vec<u64> = mid
        .iter()
        .filter_map(|f| serde_json::from_str::<serde_json::Value>(f).unwrap()["seq"].as_u64())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[test]
fn a_v3_message_missing_a_field_is_invalid_json_and_never_a_close() {
    let mut w = World::default();
    let alice = w.user("alice");
    for kind in [
        "join",
        "part",
        "listMembers",
        "history",
        "read",
        "topic",
        "mode",
        "invite",
        "kick",
        "ban",
        "unban",
        "mute",
        "unmute",
        "op",
        "deop",
    ] {
        let out = w.ask(alice, json!({"type": kind, "id": kind}));
        assert_refused(&out, alice, "invalidJson", kind, "missing field");
        assert!(w.server.is_open(alice));
    }
    let out = w.ask(
        alice,
        json!({"type": "read", "id": "r", "room": "#dev", "seq": "x"}),
    );
    assert_refused(&out, alice, "invalidJson", "r", "");
    // Before a login, a v3 message is refused as any other is.
    let early = w.open3();
    let out = w.ask(early, json!({"type": "join", "id": "j", "room": "#dev"}));
    assert_refused(&out, early, "messagingWhileNotLoggedIn", "j", "log in");
}

// ---- random traffic, every device ----

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use wschat::ConnectionId;

const ROOMS: [&str; 7] = ["#a", "#b", "#p", "#lobby", "@u0", "@u1", "@u2"];
const ACTS: [&str; 6] = ["invite", "kick", "ban", "unban", "mode", "op"];

#[derive(Debug, Clone)]
enum Step {
    Join(usize, usize),
    Part(usize, usize),
    Say(usize, usize),
    Act(usize, usize, usize, usize),
    Tick(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..5usize, 0..4usize).prop_map(|(d, r)| Step::Join(d, r)),
        2 => (0..5usize, 0..4usize).prop_map(|(d, r)| Step::Part(d, r)),
        2 => (0..5usize, 0..7usize).prop_map(|(d, r)| Step::Say(d, r)),
        3 => (0..5usize, 0..6usize, 0..4usize, 0..3usize)
            .prop_map(|(d, a, r, t)| Step::Act(d, a, r, t)),
        1 => (0..3000u16).prop_map(Step::Tick),
    ]
}

/// What each device believes its name is in, from what it was told.
fn follow(beliefs: &mut BTreeMap<ConnectionId, BTreeSet<String>>, out: &[Out]) {
    for o in out {
        let Out::Send(conn, f) = o else { continue };
        let Some(belief) = beliefs.get_mut(conn) else {
            continue;
        };
        let room = f["room"].as_str().unwrap_or_default().to_owned();
        match (f["type"].as_str(), f["change"].as_str()) {
            (Some("membership"), Some("joined")) => {
                belief.insert(room);
            }
            (Some("membership"), Some("left" | "kicked" | "banned")) => {
                belief.remove(&room);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Membership belongs to the name: whatever happens, on whichever
    /// device, every device of a name is told, and ends up believing what
    /// the server says the name is in.
    #[test]
    fn every_device_of_a_name_follows_its_memberships(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        // u0 is a server operator: its acts reach the lobby too; a v1 and
        // a v2 connection watch (the harness fails on any v3 frame to them).
        let mut w = World::new(Config {
            operators: vec!["u0".into()],
            ..config()
        });
        let old = w.user_v("oldie", Version::V1);
        let mid = w.user_v("middy", Version::V2);
        let u0 = w.user("u0");
        let u0b = w.device("u0", u0);
        let u1 = w.user("u1");
        let u1b = w.device("u1", u1);
        let u2 = w.user("u2");
        let devices: [ConnectionId; 5] = [u0, u0b, u1, u1b, u2];
        let name_of = |d: usize| ["u0", "u0", "u1", "u1", "u2"][d];
        let mut beliefs: BTreeMap<ConnectionId, BTreeSet<String>> = devices
            .iter()
            .map(|&c| (c, BTreeSet::from(["#lobby".to_owned()])))
            .collect();
        let out = w.ask(u0, json!({"type": "join", "id": "j", "room": "#p", "inviteOnly": true}));
        follow(&mut beliefs, &out);
        for (n, step) in steps.into_iter().enumerate() {
            let out = match step {
                Step::Join(d, r) => {
                    w.ask(devices[d], json!({"type": "join", "id": "j", "room": ROOMS[r]}))
                }
                Step::Part(d, r) => {
                    w.ask(devices[d], json!({"type": "part", "id": "p", "room": ROOMS[r]}))
                }
                Step::Say(d, r) => {
                    if ROOMS[r] == format!("@{}", name_of(d)) {
                        continue;
                    }
                    w.say(devices[d], ROOMS[r], &format!("m{n}"))
                }
                Step::Act(d, a, r, t) => {
                    let fields = match ACTS[a] {
                        "mode" => json!({"inviteOnly": n % 2 == 0}),
                        "ban" => json!({"username": format!("u{t}"), "seconds": 2}),
                        _ => json!({"username": format!("u{t}")}),
                    };
                    w.act(devices[d], ACTS[a], ROOMS[r], fields)
                }
                Step::Tick(ms_) => w.advance(ms(u64::from(ms_))),
            };
            follow(&mut beliefs, &out);
        }
        prop_assert!(w.server.is_open(old) && w.server.is_open(mid));
        for (d, &conn) in devices.iter().enumerate() {
            let out = w.ask(conn, json!({"type": "listRooms", "id": "lr"}));
            let truth: BTreeSet<String> = states(&one(&out, conn, "roomList"))
                .into_iter()
                .filter(|(_, s)| s.get("role").is_some())
                .map(|(room, _)| room)
                .collect();
            prop_assert_eq!(&beliefs[&conn], &truth, "device {} of {}", d, name_of(d));
        }
    }
}

#[test]
fn a_v2_device_of_a_v3_name_gets_nothing_of_its_rooms_or_dms() {
    let mut w = World::default();
    let laptop = w.user("alice");
    let secret = w.secret(laptop);
    let phone = w.open(Version::V2);
    let out = w.login_with(phone, "alice", json!({ "secret": secret }));
    assert!(kinds(&out, phone).contains(&"loginMessage".to_owned()));
    let old = w.open(Version::V1);
    let out = w.login_with(old, "alice", json!({ "secret": secret }));
    assert!(kinds(&out, old).contains(&"loginMessage".to_owned()));
    let bob = w.user("bob");
    let _ = w.drain();
    w.join(laptop, "#dev");
    w.join(bob, "#dev");
    w.said(bob, "#dev", "ROOMMARK");
    w.said(bob, "@alice", "DMMARK");
    w.act(laptop, "topic", "#dev", json!({"topic": "TOPICMARK"}));
    w.ask(
        laptop,
        json!({"type": "read", "id": "r", "room": "#dev", "seq": 1}),
    );
    for conn in [phone, old] {
        for frame in w.raw_to(conn) {
            assert!(
                !["ROOMMARK", "DMMARK", "TOPICMARK", "#dev"]
                    .iter()
                    .any(|m| frame.contains(m)),
                "{frame}"
            );
        }
    }
    // The v3 device got them all.
    let raw = w.raw_to(laptop).join("\n");
    for mark in ["ROOMMARK", "DMMARK", "TOPICMARK"] {
        assert!(raw.contains(mark), "{mark}");
    }
}

#[derive(Debug, Clone)]
enum Move {
    Join(usize, usize),
    Part(usize, usize),
    Kick(usize, usize),
    Ban(usize, usize),
    Unban(usize, usize),
    Logout(usize),
    Tick(u16),
}

fn a_move() -> impl Strategy<Value = Move> {
    prop_oneof![
        4 => (0..3usize, 0..2usize).prop_map(|(u, r)| Move::Join(u, r)),
        2 => (0..3usize, 0..2usize).prop_map(|(u, r)| Move::Part(u, r)),
        1 => (0..3usize, 0..2usize).prop_map(|(u, r)| Move::Kick(u, r)),
        1 => (0..3usize, 0..2usize).prop_map(|(u, r)| Move::Ban(u, r)),
        1 => (0..3usize, 0..2usize).prop_map(|(u, r)| Move::Unban(u, r)),
        1 => (0..3usize).prop_map(Move::Logout),
        1 => (0..3000u16).prop_map(Move::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `member` notices tell a member every join and leave of a room it is
    /// in (parts, kicks, bans, logouts), and paced, the `presence`
    /// summaries of a room the rest: what it pieces together is what
    /// `listMembers` says (but for a name a summary says both joined and
    /// left, until a later notice tells).
    #[test]
    fn member_notices_add_up_to_the_member_list(
        moves in prop::collection::vec(a_move(), 1..40),
        paced in any::<bool>(),
    ) {
        let mut w = World::new(Config {
            presence_rate: u32::from(paced),
            presence_burst: 2,
            ..config()
        });
        let mut uncertain: BTreeSet<(String, String)> = BTreeSet::new();
        let watcher = w.user("watcher");
        let rooms = ["#a", "#b"];
        for room in rooms {
            w.join(watcher, room);
        }
        let names = ["u0", "u1", "u2"];
        let mut users: Vec<ConnectionId> = names.iter().map(|n| w.user(n)).collect();
        let mut seen: BTreeMap<String, BTreeSet<String>> = rooms
            .iter()
            .map(|r| (r.to_string(), BTreeSet::from(["watcher".to_owned()])))
            .collect();
        for (n, mv) in moves.into_iter().enumerate() {
            let out = match mv {
                Move::Join(u, r) => {
                    w.ask(users[u], json!({"type": "join", "id": "j", "room": rooms[r]}))
                }
                Move::Part(u, r) => {
                    w.ask(users[u], json!({"type": "part", "id": "p", "room": rooms[r]}))
                }
                Move::Kick(u, r) => w.act(watcher, "kick", rooms[r], json!({"username": names[u]})),
                Move::Ban(u, r) => w.act(
                    watcher,
                    "ban",
                    rooms[r],
                    json!({"username": names[u], "seconds": 1 + n % 3}),
                ),
                Move::Unban(u, r) => w.act(watcher, "unban", rooms[r], json!({"username": names[u]})),
                Move::Logout(u) => {
                    let out = w.ask(users[u], json!({"type": "logout", "id": "o"}));
                    w.close(users[u]);
                    let mut out = out;
                    out.extend(w.drain());
                    users[u] = w.user(names[u]);
                    out.extend(w.drain());
                    out
                }
                Move::Tick(ms_) => w.advance(ms(u64::from(ms_))),
            };
            notices_seen(&frames(&out, watcher), paced, &mut seen, &mut uncertain)?;
        }
        // Whatever is still held goes out.
        let out = w.advance(secs(10));
        notices_seen(&frames(&out, watcher), paced, &mut seen, &mut uncertain)?;
        for room in rooms {
            let out = w.ask(watcher, json!({"type": "listMembers", "id": "lm", "room": room}));
            let listed: BTreeSet<String> = one(&out, watcher, "memberList")["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["username"].as_str().unwrap().to_owned())
                .collect();
            let listed: BTreeSet<String> = listed
                .into_iter()
                .filter(|name| !uncertain.contains(&(room.to_owned(), name.clone())))
                .collect();
            prop_assert_eq!(&seen[room], &listed, "{}", room);
        }
    }
}

/// What the watcher learns from `frames` of who is in which room: `seen`,
/// but for the names in `uncertain` (a summary said they joined and left).
fn notices_seen(
    frames: &[serde_json::Value],
    paced: bool,
    seen: &mut BTreeMap<String, BTreeSet<String>>,
    uncertain: &mut BTreeSet<(String, String)>,
) -> Result<(), TestCaseError> {
    let names = |list: &serde_json::Value| -> BTreeSet<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect()
    };
    for f in frames {
        let Some(room) = f["room"].as_str() else {
            continue; // the lobby's (v2) presence
        };
        let Some(set) = seen.get_mut(room) else {
            continue;
        };
        if f["type"] == "presence" {
            prop_assert!(paced, "a summary unpaced: {}", f);
            let (joined, left) = (names(&f["joined"]), names(&f["left"]));
            let counts = (f["joinedCount"].as_u64(), f["leftCount"].as_u64());
            let (Some(joined_count), Some(left_count)) = counts else {
                return Err(TestCaseError::fail(format!("no counts: {f}")));
            };
            prop_assert!(joined_count >= joined.len() as u64, "{}", f);
            prop_assert!(left_count >= left.len() as u64, "{}", f);
            prop_assert!(joined_count + left_count > 0, "an empty summary: {}", f);
            for name in joined.union(&left) {
                let key = (room.to_owned(), name.clone());
                let was_uncertain = uncertain.remove(&key);
                match (joined.contains(name), left.contains(name)) {
                    (true, true) => {
                        set.remove(name);
                        uncertain.insert(key);
                    }
                    (true, false) => {
                        prop_assert!(
                            set.insert(name.clone()) || was_uncertain,
                            "joined twice: {}",
                            f
                        )
                    }
                    _ => prop_assert!(set.remove(name) || was_uncertain, "left but not in: {}", f),
                }
            }
            continue;
        }
        if f["type"] != "member" {
            continue;
        }
        let name = f["username"].as_str().unwrap().to_owned();
        let was_uncertain = uncertain.remove(&(room.to_owned(), name.clone()));
        match f["change"].as_str() {
            Some("joined") => {
                prop_assert!(set.insert(name) || was_uncertain, "joined twice: {}", f)
            }
            Some("left") => {
                prop_assert!(set.remove(&name) || was_uncertain, "left but not in: {}", f)
            }
            _ => {}
        }
    }
    Ok(())
}
