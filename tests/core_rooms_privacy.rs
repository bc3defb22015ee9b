//! Privacy (protocol v3): a name that is not a member learns nothing of an
//! invite-only room or of a DM between two others. Every client message
//! that names a room is tried against (a) an invite-only room with
//! messages, a topic and members, (b) a DM between two others, and (c) a
//! room that does not exist: (a) and (c) get the same answer, nothing
//! closes, and no frame any connection of the outsider receives holds the
//! room's topic, messages, notices or members.

#[path = "common/rooms.rs"]
mod rooms;

use rooms::*;
use serde_json::{Value, json};
use wschat::ConnectionId;

const TOPIC: &str = "TOPICMARK plans for the heist";
const MESSAGE: &str = "MSGMARK the vault code is 1234";
const REASON: &str = "REASONMARK too loud";
const DM: &str = "DMMARK meet at noon";
const OWNER: &str = "ownerzq";
const MEMBER: &str = "memberzq";
const GONE: &str = "gonezq";
const DM_A: &str = "dmazq";
const DM_B: &str = "dmbzq";
/// A member the outsider never names.
const QUIET: &str = "quietzq";

/// What an outsider must never see of the room and the DM (it names the
/// other members and the DM's parties itself in its requests, so their
/// names may come back in its answers: the answers are checked against
/// those about a room that does not exist instead).
const SECRETS: [&str; 5] = [TOPIC, MESSAGE, REASON, DM, QUIET];

struct Scene {
    w: World,
    owner: ConnectionId,
    member: ConnectionId,
    dm_a: ConnectionId,
    dm_b: ConnectionId,
}

/// An invite-only `#vault` (owner, member, a topic, a message, a kick with
/// a reason), a public `#plaza`, and a DM between two others: all before
/// the outsider logs in, so that it never sees their names arrive in the
/// lobby either.
fn scene() -> Scene {
    scene_in(World::default())
}

fn scene_in(mut w: World) -> Scene {
    let owner = w.user(OWNER);
    let member = w.user(MEMBER);
    let gone = w.user(GONE);
    let quiet = w.user(QUIET);
    let dm_a = w.user(DM_A);
    let dm_b = w.user(DM_B);
    w.join_private(owner, "#vault");
    for name in [MEMBER, GONE, QUIET] {
        let out = w.act(owner, "invite", "#vault", json!({ "username": name }));
        assert!(
            !kinds(&out, owner).contains(&"errorMessage".into()),
            "{out:#?}"
        );
    }
    w.join(member, "#vault");
    w.join(gone, "#vault");
    w.join(quiet, "#vault");
    let out = w.act(owner, "topic", "#vault", json!({ "topic": TOPIC }));
    assert!(
        !kinds(&out, owner).contains(&"errorMessage".into()),
        "{out:#?}"
    );
    w.said(member, "#vault", MESSAGE);
    let out = w.act(
        owner,
        "kick",
        "#vault",
        json!({"username": GONE, "reason": REASON}),
    );
    assert!(
        !kinds(&out, owner).contains(&"errorMessage".into()),
        "{out:#?}"
    );
    w.join(owner, "#plaza");
    w.said(dm_a, &format!("@{DM_B}"), DM);
    let _ = w.drain();
    Scene {
        w,
        owner,
        member,
        dm_a,
        dm_b,
    }
}

/// Every message that names a room, against `room`, with `target` as the
/// name acted on.
fn every_message_naming(room: &str, target: &str) -> Vec<Value> {
    vec![
        json!({"type": "textFromUser", "id": "textFromUser", "room": room, "text": "let me in"}),
        json!({"type": "part", "id": "part", "room": room}),
        json!({"type": "listMembers", "id": "listMembers", "room": room}),
        json!({"type": "history", "id": "history", "room": room}),
        json!({"type": "history", "id": "history-before", "room": room, "before": 3, "limit": 10}),
        json!({"type": "history", "id": "history-after", "room": room, "after": 0}),
        json!({"type": "read", "id": "read", "room": room, "seq": 1}),
        json!({"type": "topic", "id": "topic", "room": room, "topic": "mine now"}),
        json!({"type": "mode", "id": "mode", "room": room, "inviteOnly": false}),
        json!({"type": "invite", "id": "invite", "room": room, "username": "mallory"}),
        json!({"type": "kick", "id": "kick", "room": room, "username": target, "reason": "x"}),
        json!({"type": "ban", "id": "ban", "room": room, "username": target, "seconds": 60}),
        json!({"type": "unban", "id": "unban", "room": room, "username": GONE}),
        json!({"type": "mute", "id": "mute", "room": room, "username": target}),
        json!({"type": "unmute", "id": "unmute", "room": room, "username": target}),
        json!({"type": "op", "id": "op", "room": room, "username": "mallory"}),
        json!({"type": "deop", "id": "deop", "room": room, "username": OWNER}),
    ]
}

/// Sends each message from `conn`; returns (message id, the whole output).
fn sweep(w: &mut World, conn: ConnectionId, messages: Vec<Value>) -> Vec<(String, Vec<Out>)> {
    messages
        .into_iter()
        .map(|m| {
            let id = m["id"].as_str().unwrap().to_owned();
            (id, w.ask(conn, m))
        })
        .collect()
}

/// Nothing `conns` ever received holds any of `SECRETS` (or `more`).
#[track_caller]
fn assert_nothing_leaked(w: &World, conns: &[ConnectionId], more: &[&str]) {
    for &conn in conns {
        for frame in w.raw_to(conn) {
            for secret in SECRETS.iter().chain(more) {
                assert!(
                    !frame.contains(secret),
                    "{conn:?} was sent {secret:?}: {frame}"
                );
            }
        }
    }
}

#[test]
fn an_invite_only_room_and_a_room_that_does_not_exist_answer_alike() {
    let Scene {
        mut w,
        owner,
        member,
        ..
    } = scene();
    let before = w.ask(owner, json!({"type": "listRooms", "id": "before"}));
    let mallory = w.user("mallory");
    let phone = w.device("mallory", mallory);

    let private = sweep(&mut w, mallory, every_message_naming("#vault", MEMBER));
    let missing = sweep(&mut w, mallory, every_message_naming("#nowhere", MEMBER));
    for ((id, private), (_, missing)) in private.iter().zip(&missing) {
        let said = assert_refused(private, mallory, "notAMember", id, "you are not in #vault");
        let said_missing = assert_refused(
            missing,
            mallory,
            "notAMember",
            id,
            "you are not in #nowhere",
        );
        assert_eq!(
            said.replace("#vault", "#x"),
            said_missing.replace("#nowhere", "#x"),
            "{id}: a non-member can tell the two apart"
        );
        assert!(w.server.is_open(mallory));
    }
    // Joining the invite-only room without an invite.
    let out = w.ask(
        mallory,
        json!({"type": "join", "id": "join", "room": "#vault"}),
    );
    assert_refused(&out, mallory, "forbidden", "join", "#vault is invite-only");
    let out = w.ask(
        mallory,
        json!({"type": "join", "id": "join", "room": "#VAULT"}),
    );
    assert_refused(&out, mallory, "forbidden", "join", "is invite-only");

    assert_nothing_leaked(&w, &[mallory, phone], &[DM_A, DM_B]);
    // Nothing was done: the members were told nothing, and the room is as
    // it was (no notice numbered, nobody added, the topic kept); the room
    // that does not exist still does not.
    assert_eq!(w.drain(), []);
    let after = w.ask(owner, json!({"type": "listRooms", "id": "before"}));
    // (The lobby has one more member: the outsider.)
    let rooms = |out: &[Out]| {
        let mut rooms = states(&one(out, owner, "roomList"));
        rooms.remove("#lobby");
        rooms
    };
    assert_eq!(rooms(&after), rooms(&before));
    let out = w.ask(
        member,
        json!({"type": "listMembers", "id": "lm", "room": "#vault"}),
    );
    let mut names: Vec<String> = one(&out, member, "memberList")["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, [MEMBER, OWNER, QUIET]);
}

#[test]
fn a_dm_between_two_others_cannot_be_reached_by_any_name_for_it() {
    let Scene {
        mut w, dm_a, dm_b, ..
    } = scene();
    let mallory = w.user("mallory");
    let phone = w.device("mallory", mallory);
    // Each party's name is, to the outsider, a DM it has not started; the
    // internal spelling of the pair is not a room name at all.
    for room in [
        format!("@{DM_A}"),
        format!("@{DM_B}"),
        format!("@{DM_A}\n{DM_B}"),
        format!("@{DM_B}\n{DM_A}"),
        format!("{DM_A}\n{DM_B}"),
    ] {
        let messages: Vec<Value> = every_message_naming(&room, DM_B)
            .into_iter()
            .filter(|m| m["type"] != "textFromUser")
            .collect();
        for (id, out) in sweep(&mut w, mallory, messages) {
            let [Out::Send(to, frame)] = &out[..] else {
                panic!("{id} on {room:?}: {out:#?}");
            };
            assert_eq!(*to, mallory);
            assert_eq!(frame["type"], "errorMessage", "{id} on {room:?}: {frame}");
            assert_eq!(frame["replyTo"], id.as_str());
            let code = frame["error"].as_str().unwrap();
            assert!(
                ["notAMember", "forbidden", "invalidRoom"].contains(&code),
                "{id} on {room:?}: {frame}"
            );
            assert!(w.server.is_open(mallory));
        }
        let out = w.ask(mallory, json!({"type": "join", "id": "join", "room": room}));
        assert_eq!(
            kinds(&out, mallory),
            ["errorMessage"],
            "join {room:?}: {out:#?}"
        );
    }
    assert_nothing_leaked(&w, &[mallory, phone], &[MEMBER]);
    // The DM's parties were told nothing.
    assert_eq!(w.drain(), []);
    // Writing to a party starts the outsider's own DM: it holds only what
    // the outsider said.
    let out = w.say(mallory, &format!("@{DM_A}"), "hello there");
    let echo = one(&out, mallory, "textBroadcast");
    assert_eq!(echo["seq"], 1);
    assert_eq!(echo["room"], format!("@{DM_A}"));
    assert!(frames(&out, dm_b).is_empty(), "{out:#?}");
    let out = w.ask(
        mallory,
        json!({"type": "history", "id": "h", "room": format!("@{DM_A}")}),
    );
    let history = one(&out, mallory, "history");
    assert_eq!(history_entries(&history), ["1:hello there"]);
    let _ = dm_a;
    assert_nothing_leaked(&w, &[mallory, phone], &[MEMBER]);
}

#[test]
fn list_rooms_shows_the_public_rooms_and_ones_own_and_nothing_private() {
    let Scene { mut w, .. } = scene();
    let mallory = w.user("mallory");
    w.join(mallory, "#mine");
    let out = w.ask(mallory, json!({"type": "listRooms", "id": "lr"}));
    let list = one(&out, mallory, "roomList");
    let mut rooms: Vec<String> = list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap().to_owned())
        .collect();
    rooms.sort();
    assert!(rooms.contains(&"#plaza".to_owned()), "{rooms:?}");
    assert!(rooms.contains(&"#mine".to_owned()), "{rooms:?}");
    assert!(
        !rooms
            .iter()
            .any(|r| r.eq_ignore_ascii_case("#vault") || r.starts_with('@')),
        "{rooms:?}"
    );
    // A public room one is not in has no role.
    let plaza = list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == "#plaza")
        .unwrap();
    assert!(plaza.get("role").is_none(), "{plaza}");
    assert_nothing_leaked(&w, &[mallory], &[OWNER, MEMBER, GONE, DM_A, DM_B]);
}

#[test]
fn a_kicked_member_hears_nothing_more_of_an_invite_only_room() {
    let Scene {
        mut w,
        owner,
        member,
        ..
    } = scene();
    let out = w.act(owner, "kick", "#vault", json!({"username": MEMBER}));
    assert!(
        frames(&out, member)
            .iter()
            .any(|f| f["type"] == "membership" && f["change"] == "kicked"),
        "{out:#?}"
    );
    let mark = w.raw_to(member).len();
    w.said(owner, "#vault", "AFTERMARK only for members");
    w.act(
        owner,
        "topic",
        "#vault",
        json!({"topic": "AFTERMARK topic"}),
    );
    let out = w.ask(
        member,
        json!({"type": "history", "id": "h", "room": "#vault"}),
    );
    assert_refused(&out, member, "notAMember", "h", "you are not in #vault");
    let out = w.ask(member, json!({"type": "listRooms", "id": "lr"}));
    assert!(!states(&one(&out, member, "roomList")).contains_key("#vault"));
    for frame in &w.raw_to(member)[mark..] {
        assert!(!frame.contains("AFTERMARK"), "{frame}");
    }
}

#[test]
fn a_v1_or_v2_connection_hears_nothing_of_any_room() {
    let mut w = World::default();
    let old = w.user_v("oldie", wschat::Version::V1);
    let mid = w.user_v("middy", wschat::Version::V2);
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join(alice, "#dev");
    w.join(bob, "#dev");
    w.said(alice, "#dev", "ROOMMARK in dev");
    w.said(alice, "@bob", "ROOMMARK dm");
    w.act(alice, "topic", "#dev", json!({"topic": "ROOMMARK topic"}));
    let _ = w.drain();
    for conn in [old, mid] {
        for frame in w.raw_to(conn) {
            assert!(!frame.contains("ROOMMARK"), "{frame}");
            assert!(!frame.contains("#dev"), "{frame}");
        }
    }
}

#[test]
fn another_spelling_of_an_invite_only_room_answers_as_a_room_that_does_not_exist() {
    let Scene { mut w, .. } = scene();
    let mallory = w.user("mallory");
    let private = sweep(&mut w, mallory, every_message_naming("#VAULT", MEMBER));
    let missing = sweep(&mut w, mallory, every_message_naming("#NOWHERE", MEMBER));
    for ((id, private), (_, missing)) in private.iter().zip(&missing) {
        let said = assert_refused(private, mallory, "notAMember", id, "");
        let said_missing = assert_refused(missing, mallory, "notAMember", id, "");
        assert_eq!(
            said.replace("#VAULT", "#x"),
            said_missing.replace("#NOWHERE", "#x"),
            "{id}: a non-member can tell the two apart"
        );
    }
    assert_nothing_leaked(&w, &[mallory], &[DM_A, DM_B]);
}

#[test]
fn a_login_listing_an_invite_only_room_or_a_dm_of_others_learns_nothing() {
    let Scene { mut w, .. } = scene();
    let mallory = w.user("mallory");
    let secret = w.secret(mallory);
    let back = w.open3();
    let out = w.login_with(
        back,
        "mallory",
        json!({"secret": secret, "rooms": [
            {"room": "#vault", "epoch": "guess", "since": 0},
            {"room": "#nowhere", "epoch": "guess", "since": 0},
            {"room": format!("@{DM_A}"), "epoch": "guess", "since": 0},
            {"room": format!("@{DM_A}\n{DM_B}"), "epoch": "guess", "since": 0},
        ]}),
    );
    assert!(w.server.is_open(back));
    let rooms = one(&out, back, "rooms");
    let listed = states(&rooms);
    assert!(listed.keys().all(|r| r == "#lobby"), "{rooms}");
    // Whatever is said of rooms one is not in, the invite-only room and the
    // room that does not exist are said alike.
    let changes = rooms["changes"].as_array().unwrap();
    let of = |room: &str| -> Vec<Value> {
        changes
            .iter()
            .filter(|c| c["room"] == room)
            .map(|c| {
                let mut c = c.clone();
                c["room"] = "#x".into();
                c
            })
            .collect()
    };
    assert_eq!(of("#vault"), of("#nowhere"), "{rooms}");
    assert!(!histories(&out, back).contains_key("#vault"));
    assert_nothing_leaked(&w, &[mallory, back], &[]);
}

// ---- random traffic ----

use proptest::prelude::*;

/// One step of random traffic: an insider's doing (said or done with a
/// SECRET marker), or the outsider's try at anything naming the room or
/// the DM.
#[derive(Debug, Clone)]
enum Step {
    /// Insider `who` (0 owner, 1 and 2 members) says something.
    Say(usize, u16),
    /// The DM's parties talk.
    Dm(bool, u16),
    /// The owner sets a secret topic.
    Topic(u16),
    /// The owner acts on member `who` (kick, ban, mute, unmute, op, deop,
    /// unban, invite).
    Act(usize, usize),
    /// Member `who` tries to join again.
    Rejoin(usize),
    /// The outsider sends message `kind` about target `target`.
    Outsider(usize, usize),
    Tick(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3usize, any::<u16>()).prop_map(|(w, n)| Step::Say(w, n)),
        2 => (any::<bool>(), any::<u16>()).prop_map(|(a, n)| Step::Dm(a, n)),
        1 => any::<u16>().prop_map(Step::Topic),
        2 => (1..3usize, 0..8usize).prop_map(|(w, a)| Step::Act(w, a)),
        1 => (1..3usize).prop_map(Step::Rejoin),
        6 => (0..19usize, 0..4usize).prop_map(|(k, t)| Step::Outsider(k, t)),
        1 => (0..5000u16).prop_map(Step::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_traffic_never_shows_an_outsider_anything_of_the_room_or_the_dm(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        let mut w = World::default();
        let insiders = ["ownerq", "memberq", "otherq"].map(|n| w.user(n));
        let dm = [w.user("dmaq"), w.user("dmbq")];
        let owner = insiders[0];
        w.join_private(owner, "#vault");
        for name in ["memberq", "otherq"] {
            w.act(owner, "invite", "#vault", json!({ "username": name }));
        }
        w.join(insiders[1], "#vault");
        w.join(insiders[2], "#vault");
        let outsider = w.user("mallory");
        let targets = ["#vault", "#VAULT", "@dmaq", "@dmbq"];
        for step in steps {
            match step {
                Step::Say(who, n) => {
                    w.say(insiders[who], "#vault", &format!("SECRET say {n}"));
                }
                Step::Dm(a, n) => {
                    let (from, to) = if a { (dm[0], "@dmbq") } else { (dm[1], "@dmaq") };
                    w.say(from, to, &format!("SECRET dm {n}"));
                }
                Step::Topic(n) => {
                    w.act(owner, "topic", "#vault", json!({"topic": format!("SECRET topic {n}")}));
                }
                Step::Act(who, act) => {
                    let name = ["ownerq", "memberq", "otherq"][who];
                    let (kind, fields) = match act {
                        0 => ("kick", json!({"username": name, "reason": "SECRET reason"})),
                        1 => ("ban", json!({"username": name, "seconds": 5, "reason": "SECRET ban"})),
                        2 => ("mute", json!({"username": name, "seconds": 5})),
                        3 => ("unmute", json!({"username": name})),
                        4 => ("op", json!({"username": name})),
                        5 => ("deop", json!({"username": name})),
                        6 => ("unban", json!({"username": name})),
                        _ => ("invite", json!({"username": name})),
                    };
                    w.act(owner, kind, "#vault", fields);
                }
                Step::Rejoin(who) => {
                    w.ask(insiders[who], json!({"type": "join", "id": "j", "room": "#vault"}));
                }
                Step::Outsider(kind, target) => {
                    let room = targets[target];
                    let mut messages = every_message_naming(room, "memberq");
                    messages.push(json!({"type": "join", "id": "join", "room": room}));
                    messages.push(json!({"type": "listRooms", "id": "lr"}));
                    let message = messages[kind % messages.len()].clone();
                    // The outsider's own DM with a party is its own business.
                    if message["type"] == "textFromUser" && room.starts_with('@') {
                        continue;
                    }
                    w.ask(outsider, message);
                    prop_assert!(w.server.is_open(outsider));
                }
                Step::Tick(ms_) => {
                    w.advance(ms(u64::from(ms_)));
                }
            }
            let _ = w.drain();
        }
        for frame in w.raw_to(outsider) {
            prop_assert!(!frame.contains("SECRET"), "the outsider was sent {}", frame);
        }
    }
}

#[test]
fn an_invited_name_learns_nothing_of_the_room_before_it_joins() {
    let Scene { mut w, owner, .. } = scene();
    let guest = w.user("guest");
    let laptop = w.device("guest", guest);
    let out = w.act(owner, "invite", "#vault", json!({"username": "guest"}));
    assert!(
        frames(&out, guest)
            .iter()
            .any(|f| f["type"] == "membership" && f["change"] == "invited"),
        "{out:#?}"
    );
    let private = sweep(
        &mut w,
        guest,
        every_message_naming("#vault", MEMBER)
            .into_iter()
            .filter(|m| m["type"] != "invite" && m["type"] != "op")
            .collect(),
    );
    for (id, out) in private {
        assert_refused(&out, guest, "notAMember", &id, "you are not in #vault");
    }
    let out = w.ask(guest, json!({"type": "listRooms", "id": "lr"}));
    let listed = states(&one(&out, guest, "roomList"));
    if let Some(vault) = listed.get("#vault") {
        assert!(vault.get("topic").is_none(), "{vault}");
    }
    // A device that logs in now is told of the invite, and of nothing else.
    let tablet = w.device("guest", guest);
    assert_nothing_leaked(&w, &[guest, laptop, tablet], &[DM_A, DM_B]);
    // Once in, it is a member like any other.
    w.join(laptop, "#vault");
    let out = w.ask(
        guest,
        json!({"type": "history", "id": "h", "room": "#vault"}),
    );
    let history = one(&out, guest, "history");
    assert!(history.to_string().contains(MESSAGE));
}

#[test]
fn an_outsider_s_tries_make_the_store_write_nothing() {
    let Scene { mut w, .. } = scene_in(World::stored(
        config(),
        wschat::server::Snapshot {
            epoch: "e".into(),
            ..Default::default()
        },
    ));
    let mallory = w.user("mallory");
    let mark = w.journal.len();
    for room in ["#vault", "#nowhere", "#VAULT"] {
        let mut messages = every_message_naming(room, MEMBER);
        messages.push(json!({"type": "join", "id": "join", "room": "#vault"}));
        sweep(&mut w, mallory, messages);
    }
    assert_eq!(w.journal_since(mark), []);
}
