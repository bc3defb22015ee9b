//! Rooms with a store (protocol v3, issue 22): every fact of a room leaves
//! as the write ROOMS.md names, a message or an act is acknowledged only
//! once its write is answered (with the seq of its room's numbering), a
//! failed write is refused, and a server restored from a snapshot serves
//! its rooms, memberships and read markers on.

#[path = "common/rooms.rs"]
mod rooms;
#[path = "common/rooms_model.rs"]
mod rooms_model;

use std::sync::Arc;

use rooms::*;
use serde_json::{Value, json};
use wschat::ConnectionId;
use wschat::protocol::Role;
use wschat::server::{
    Append, Failed, Request, SecretHash, Snapshot, StoredMember, StoredMessage, StoredName,
    StoredRead, StoredRoom, Write,
};

fn a(s: &str) -> Arc<str> {
    s.into()
}

/// A name's key, as the store keeps it.
fn k(name: &str) -> Arc<str> {
    wschat::username::key(name).into()
}

/// A room's key: `#` and the key of its name.
fn r(room: &str) -> Arc<str> {
    format!("#{}", wschat::username::key(&room[1..])).into()
}

fn empty() -> Snapshot {
    Snapshot {
        epoch: "lobby-epoch".into(),
        ..Snapshot::default()
    }
}

/// The facts of the requests since `mark`: plain writes as they are,
/// appends as (room, username, text, notice).
#[derive(Debug, PartialEq)]
enum Fact {
    W(Write),
    A(Option<Arc<str>>, Arc<str>, Value, bool),
}

fn facts(w: &World, mark: usize) -> Vec<Fact> {
    w.journal_since(mark)
        .into_iter()
        .map(|r| match r {
            Request::Write(_, write) => Fact::W(write),
            Request::Append(
                _,
                Append {
                    room,
                    username,
                    text,
                    notice,
                    ..
                },
            ) => {
                // A notice's text is its JSON object; a message's, itself.
                let text = if notice {
                    let mut v: Value = serde_json::from_str(&text).expect("a notice is JSON");
                    if v.get("id").is_some() {
                        v["id"] = "*".into();
                    }
                    v
                } else {
                    Value::String(text.to_string())
                };
                Fact::A(room, username, text, notice)
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

/// The displays of the rooms written since `mark`.
fn facts_of_rooms(w: &World, mark: usize) -> Vec<String> {
    facts(w, mark)
        .into_iter()
        .filter_map(|f| match f {
            Fact::W(Write::Room { display, .. }) => Some(display.to_string()),
            _ => None,
        })
        .collect()
}

/// `name` logged in on a v3 connection of a store-backed world that
/// settles by hand: the claim is answered here.
fn login_manual(w: &mut World, name: &str) -> ConnectionId {
    let conn = w.open3();
    w.send(conn, json!({"type": "login", "id": "l", "username": name}));
    w.answer_all();
    let out = w.drain();
    assert!(
        kinds(&out, conn).contains(&"loginMessage".into()),
        "{out:#?}"
    );
    conn
}

#[test]
fn a_join_writes_the_room_and_the_member_and_a_part_unmembers() {
    let mut w = World::stored(config(), empty());
    let alice = w.user("alice");
    let bob = w.user("bob");
    let mark = w.journal.len();
    w.join(alice, "#Dev");
    let epoch = w.epoch(alice, "#Dev");
    assert_eq!(
        facts(&w, mark),
        [
            Fact::W(Write::Room {
                room: r("#dev"),
                display: a("#Dev"),
                owner: Some(k("alice")),
                invite_only: false,
                topic: None,
                epoch: a(&epoch),
            }),
            Fact::W(Write::Member {
                room: r("#dev"),
                name: k("alice"),
                role: Role::Owner,
                muted_until: None,
            }),
        ]
    );
    let mark = w.journal.len();
    w.join(bob, "#Dev");
    w.ask(bob, json!({"type": "part", "id": "p", "room": "#dev"}));
    w.ask(bob, json!({"type": "part", "id": "p", "room": "#lobby"}));
    w.join(bob, "#lobby");
    assert_eq!(
        facts(&w, mark),
        [
            Fact::W(Write::Member {
                room: r("#dev"),
                name: k("bob"),
                role: Role::Member,
                muted_until: None,
            }),
            Fact::W(Write::Unmember {
                room: r("#dev"),
                name: k("bob"),
                by: None,
                reason: None,
            }),
            Fact::W(Write::Unmember {
                room: a("#lobby"),
                name: k("bob"),
                by: None,
                reason: None,
            }),
            Fact::W(Write::Member {
                room: a("#lobby"),
                name: k("bob"),
                role: Role::Member,
                muted_until: None,
            }),
        ]
    );
}

#[test]
fn a_room_message_is_told_only_once_appended_with_the_seq_of_its_room() {
    let mut w = World::manual(config(), empty());
    let alice = login_manual(&mut w, "alice");
    let bob = login_manual(&mut w, "bob");
    w.send(alice, json!({"type": "join", "id": "j", "room": "#dev"}));
    w.answer_all();
    w.send(bob, json!({"type": "join", "id": "j", "room": "#dev"}));
    w.answer_all();
    let _ = w.drain();
    let out = w.say(alice, "#dev", "saved first");
    assert_eq!(out, [], "told before it was saved");
    let [Request::Append(ticket, append)] = &w.pending[..] else {
        panic!("{:?}", w.pending);
    };
    assert_eq!(
        (
            append.room.as_deref(),
            &*append.username,
            &*append.text,
            append.notice
        ),
        (Some("#dev"), "alice", "saved first", false)
    );
    let ticket = *ticket;
    w.pending.clear();
    w.server.handle_answer(ticket.answer(Ok(1)), w.now);
    let out = w.drain();
    assert_out(
        &out,
        vec![
            send(
                alice,
                text_in("#dev", "alice", "saved first", 1, t(0), Some("m")),
            ),
            send(bob, text_in("#dev", "alice", "saved first", 1, t(0), None)),
        ],
    );
    // A DM is appended under the pair's key, whoever writes (a new DM may
    // write its room and members first).
    w.say(bob, "@alice", "psst");
    let pending = std::mem::take(&mut w.pending);
    let (appends, writes): (Vec<Request>, Vec<Request>) = pending
        .into_iter()
        .partition(|r| matches!(r, Request::Append(..)));
    for write in &writes {
        w.answer_durable(write);
    }
    let _ = w.drain();
    let [Request::Append(_, append)] = &appends[..] else {
        panic!("{appends:?}");
    };
    assert_eq!(
        append.room.as_deref(),
        Some(format!("@{}\n{}", k("alice"), k("bob")).as_str())
    );
    // A failed append is refused, and nothing is told.
    w.server
        .handle_answer(appends[0].fail(Failed("disk full".into())), w.now);
    let out = w.drain();
    assert_refused(&out, bob, "unavailable", "m", "");
}

#[test]
fn an_act_is_told_only_once_its_notice_is_appended_and_writes_its_fact() {
    let mut w = World::manual(config(), empty());
    let olive = login_manual(&mut w, "olive");
    let mia = login_manual(&mut w, "mia");
    w.send(olive, json!({"type": "join", "id": "j", "room": "#mod"}));
    w.answer_all();
    w.send(mia, json!({"type": "join", "id": "j", "room": "#mod"}));
    w.answer_all();
    let _ = w.drain();
    let mark = w.journal.len();
    w.send(
        olive,
        json!({"type": "topic", "id": "a", "room": "#mod", "topic": "builds"}),
    );
    assert_eq!(w.drain(), [], "told before it was saved");
    w.answer_all();
    let out = w.drain();
    let topic = json!({"type": "notice", "id": "*", "room": "#mod", "seq": 1,
        "timestamp": t(0), "act": "topic", "by": "olive", "topic": "builds"});
    assert_out(
        &out,
        vec![send(olive, topic.clone()), send(mia, topic.clone())],
    );
    let facts = facts(&w, mark);
    let epoch = w.epoch(olive, "#mod");
    assert!(
        facts.contains(&Fact::W(Write::Room {
            room: r("#mod"),
            display: a("#mod"),
            owner: Some(k("olive")),
            invite_only: false,
            topic: Some(a("builds")),
            epoch: a(&epoch),
        })),
        "{facts:#?}"
    );
    let notices: Vec<&Fact> = facts.iter().filter(|f| matches!(f, Fact::A(..))).collect();
    let [Fact::A(room, by, text, true)] = &notices[..] else {
        panic!("{facts:#?}");
    };
    assert_eq!((room.clone(), &**by), (Some(r("#mod")), "olive"));
    assert_eq!(text["act"], "topic");
    assert_eq!(text["topic"], "builds");
}

/// Runs `act` from olive (owner of `#mod`, mia a member, xena not) with a
/// store that saves everything; returns the plain writes it made.
fn writes_of(act: &str, fields: Value, setup: impl FnOnce(&mut World, ConnectionId)) -> Vec<Write> {
    let mut w = World::stored(config(), empty());
    let olive = w.user("olive");
    let mia = w.user("mia");
    let _xena = w.user("xena");
    w.join(olive, "#mod");
    w.join(mia, "#mod");
    setup(&mut w, olive);
    let mark = w.journal.len();
    let out = w.act(olive, act, "#mod", fields);
    assert!(
        !kinds(&out, olive).contains(&"errorMessage".into()),
        "{act}: {out:#?}"
    );
    facts(&w, mark)
        .into_iter()
        .filter_map(|f| match f {
            Fact::W(write) => Some(write),
            Fact::A(_, _, text, notice) => {
                assert!(notice && text["act"] == act, "{text}");
                None
            }
        })
        .collect()
}

#[test]
fn every_act_writes_what_rooms_md_names() {
    let nothing = |_: &mut World, _: ConnectionId| {};
    let member = |role, muted_until| Write::Member {
        room: r("#mod"),
        name: k("mia"),
        role,
        muted_until,
    };
    assert_eq!(
        writes_of("op", json!({"username": "mia"}), nothing),
        [member(Role::Operator, None)]
    );
    assert_eq!(
        writes_of("deop", json!({"username": "mia"}), |w, olive| {
            w.act(olive, "op", "#mod", json!({"username": "mia"}));
        }),
        [member(Role::Member, None)]
    );
    assert_eq!(
        writes_of("mute", json!({"username": "mia", "seconds": 30}), nothing),
        [member(Role::Member, Some(t(30_000)))]
    );
    assert_eq!(
        writes_of("mute", json!({"username": "mia"}), nothing),
        [member(Role::Member, Some(u64::MAX))]
    );
    assert_eq!(
        writes_of("unmute", json!({"username": "mia"}), |w, olive| {
            w.act(olive, "mute", "#mod", json!({"username": "mia"}));
        }),
        [member(Role::Member, None)]
    );
    assert_eq!(
        writes_of("kick", json!({"username": "mia", "reason": "x"}), nothing),
        [Write::Unmember {
            room: r("#mod"),
            name: k("mia"),
            by: Some(a("olive")),
            reason: Some(a("x")),
        }]
    );
    let mut ban = writes_of("ban", json!({"username": "mia", "seconds": 60}), nothing);
    ban.sort_by_key(|w| format!("{w:?}"));
    assert_eq!(
        ban,
        [
            Write::Ban {
                room: r("#mod"),
                name: k("mia"),
                until: Some(t(60_000))
            },
            Write::Unmember {
                room: r("#mod"),
                name: k("mia"),
                by: Some(a("olive")),
                reason: None,
            },
        ]
    );
    assert_eq!(
        writes_of("ban", json!({"username": "xena"}), nothing),
        [Write::Ban {
            room: r("#mod"),
            name: k("xena"),
            until: None
        }]
    );
    assert_eq!(
        writes_of("unban", json!({"username": "xena"}), |w, olive| {
            w.act(olive, "ban", "#mod", json!({"username": "xena"}));
        }),
        [Write::Unban {
            room: r("#mod"),
            name: k("xena")
        }]
    );
    assert_eq!(
        writes_of("invite", json!({"username": "xena"}), nothing),
        [Write::Invite {
            room: r("#mod"),
            name: k("xena")
        }]
    );
    let mode = writes_of("mode", json!({"inviteOnly": true}), nothing);
    assert!(
        matches!(
            &mode[..],
            [Write::Room {
                invite_only: true,
                topic: None,
                ..
            }]
        ),
        "{mode:?}"
    );
}

#[test]
fn an_invited_join_uses_the_invite_and_a_read_is_written() {
    let mut w = World::stored(config(), empty());
    let olive = w.user("olive");
    let xena = w.user("xena");
    w.join_private(olive, "#priv");
    w.act(olive, "invite", "#priv", json!({"username": "xena"}));
    w.said(olive, "#priv", "hello");
    let mark = w.journal.len();
    w.join(xena, "#priv");
    w.ask(
        xena,
        json!({"type": "read", "id": "r", "room": "#priv", "seq": 2}),
    );
    let mut got: Vec<String> = facts(&w, mark).iter().map(|f| format!("{f:?}")).collect();
    got.sort();
    let mut want: Vec<String> = [
        Write::Member {
            room: r("#priv"),
            name: k("xena"),
            role: Role::Member,
            muted_until: None,
        },
        Write::Uninvite {
            room: r("#priv"),
            name: k("xena"),
        },
        Write::Read {
            name: k("xena"),
            room: r("#priv"),
            seq: 2,
        },
    ]
    .into_iter()
    .map(|w| format!("{:?}", Fact::W(w)))
    .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_release_is_one_write_whatever_the_name_was_in() {
    let mut w = World::stored(
        wschat::Config {
            login_ttl: secs(60),
            ..config()
        },
        empty(),
    );
    let alice = w.user("alice");
    let bob = w.user("bob");
    w.join(bob, "#dev");
    w.said(alice, "@bob", "hi");
    w.close(bob);
    let mark = w.journal.len();
    w.advance(secs(61));
    assert_eq!(facts(&w, mark), [Fact::W(Write::Release { key: k("bob") })]);
}

#[test]
fn a_restored_server_serves_its_rooms_members_and_read_markers() {
    let secret = "b".repeat(24);
    let message = |seq: u64, text: &str| StoredMessage {
        seq,
        id: "i".repeat(21),
        timestamp: EPOCH_MS - 10_000 + seq,
        username: k("alice").to_string(),
        text: text.into(),
        notice: false,
    };
    let snapshot = Snapshot {
        names: vec![
            StoredName {
                key: k("bob").to_string(),
                display: "Bob".into(),
                secret: SecretHash::of(&secret),
                expires_at: Some(EPOCH_MS + 60_000),
            },
            StoredName {
                key: k("alice").to_string(),
                display: "alice".into(),
                secret: SecretHash::of(&"a".repeat(24)),
                expires_at: Some(EPOCH_MS + 60_000),
            },
        ],
        rooms: vec![StoredRoom {
            key: r("#dev").to_string(),
            display: "#Dev".into(),
            owner: Some(k("alice").to_string()),
            invite_only: true,
            topic: Some("builds".into()),
            epoch: "dev-epoch".into(),
            last_seq: 7,
            messages: vec![message(6, "six"), message(7, "seven @bob")],
            members: vec![
                StoredMember {
                    name: k("alice").to_string(),
                    role: Role::Owner,
                    muted_until: None,
                },
                StoredMember {
                    name: k("bob").to_string(),
                    role: Role::Member,
                    muted_until: Some(u64::MAX),
                },
            ],
            bans: vec![],
            invites: vec![],
        }],
        reads: vec![StoredRead {
            name: k("bob").to_string(),
            room: r("#dev").to_string(),
            seq: 6,
        }],
        ..empty()
    };
    let mut w = World::stored(config(), snapshot);
    let bob = w.open3();
    let out = w.login_with(
        bob,
        "bob",
        json!({"secret": secret, "rooms": [{"room": "#Dev", "epoch": "dev-epoch", "since": 6}]}),
    );
    let rooms = one(&out, bob, "rooms");
    assert_eq!(
        states(&rooms)["#Dev"],
        json!({"room": "#Dev", "topic": "builds", "inviteOnly": true, "members": 2,
            "role": "member", "epoch": "<epoch>", "lastSeq": 7, "readSeq": 6, "unread": 1,
            "mentioned": true, "recovered": true})
    );
    assert_eq!(w.epoch(bob, "#Dev"), "dev-epoch");
    assert_eq!(
        history_entries(&histories(&out, bob)["#Dev"]),
        ["7:seven @bob"]
    );
    // Muted for good, still; and the next message is number 8.
    let out = w.say(bob, "#dev", "may I?");
    assert_refused(&out, bob, "muted", "m", "");
    let alice = w.open3();
    w.login_with(alice, "alice", json!({"secret": "a".repeat(24)}));
    assert_eq!(w.said(alice, "#dev", "eight"), 8);
}

#[test]
fn a_restored_server_keeps_bans_invites_and_who_left_the_lobby() {
    let held = |name: &str| StoredName {
        key: k(name).to_string(),
        display: name.into(),
        secret: SecretHash::of(&name.repeat(24)[..24]),
        expires_at: Some(EPOCH_MS + 60_000),
    };
    let snapshot = Snapshot {
        names: ["olive", "bart", "ivy", "leo"].map(held).to_vec(),
        rooms: vec![StoredRoom {
            key: r("#club").to_string(),
            display: "#club".into(),
            owner: Some(k("olive").to_string()),
            invite_only: true,
            epoch: "club-epoch".into(),
            members: vec![StoredMember {
                name: k("olive").to_string(),
                role: Role::Owner,
                muted_until: None,
            }],
            bans: vec![(k("bart").to_string(), None)],
            invites: vec![k("ivy").to_string(), k("bart").to_string()],
            ..StoredRoom::default()
        }],
        left_lobby: vec![k("leo").to_string()],
        ..empty()
    };
    let mut w = World::stored(config(), snapshot);
    let login = |w: &mut World, name: &str| {
        let conn = w.open3();
        let out = w.login_with(conn, name, json!({"secret": &name.repeat(24)[..24]}));
        (conn, out)
    };
    // Banned for good, invite or not.
    let (bart, _) = login(&mut w, "bart");
    let out = w.ask(bart, json!({"type": "join", "id": "j", "room": "#club"}));
    assert_refused(&out, bart, "banned", "j", "");
    // Invited: told so at login, and may join.
    let (ivy, out) = login(&mut w, "ivy");
    let rooms = one(&out, ivy, "rooms");
    assert!(
        rooms["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["room"] == "#club" && c["change"] == "invited"),
        "{rooms}"
    );
    w.join(ivy, "#club");
    // Out of the lobby.
    let (leo, out) = login(&mut w, "leo");
    assert!(!states(&one(&out, leo, "rooms")).contains_key("#lobby"));
    let out = w.ask(
        leo,
        json!({"type": "textFromUser", "id": "m", "text": "hi"}),
    );
    assert_refused(&out, leo, "notAMember", "m", "you are not in #lobby");
}

#[test]
fn an_act_whose_notice_cannot_be_saved_is_refused_and_told_to_nobody() {
    let mut w = World::manual(config(), empty());
    let olive = login_manual(&mut w, "olive");
    let mia = login_manual(&mut w, "mia");
    w.send(olive, json!({"type": "join", "id": "j", "room": "#mod"}));
    w.answer_all();
    w.send(mia, json!({"type": "join", "id": "j", "room": "#mod"}));
    w.answer_all();
    let _ = w.drain();
    w.send(
        olive,
        json!({"type": "topic", "id": "a", "room": "#mod", "topic": "lost"}),
    );
    let pending = std::mem::take(&mut w.pending);
    for request in &pending {
        match request {
            Request::Append(..) => w
                .server
                .handle_answer(request.fail(Failed("disk full".into())), w.now),
            other => w.answer_durable(other),
        }
    }
    let out = w.drain();
    assert_refused(&out, olive, "unavailable", "a", "");
    // The next act takes number 1: nothing was numbered for the lost one.
    w.send(
        olive,
        json!({"type": "topic", "id": "a", "room": "#mod", "topic": "kept"}),
    );
    w.answer_all();
    let out = w.drain();
    assert_eq!(one(&out, mia, "notice")["seq"], 1);
    assert_eq!(one(&out, mia, "notice")["topic"], "kept");
}

#[test]
fn a_dm_is_written_as_a_room_of_its_two_parties() {
    let mut w = World::stored(config(), empty());
    let alice = w.user("alice");
    let _bob = w.user("bob");
    let mark = w.journal.len();
    w.said(alice, "@Bob", "hi");
    let dm = format!("@{}\n{}", k("alice"), k("bob"));
    let facts = facts(&w, mark);
    let members: Vec<&Write> = facts
        .iter()
        .filter_map(|f| match f {
            Fact::W(write @ Write::Member { .. }) => Some(write),
            _ => None,
        })
        .collect();
    assert_eq!(
        members,
        [
            &Write::Member {
                room: a(&dm),
                name: k("alice"),
                role: Role::Member,
                muted_until: None
            },
            &Write::Member {
                room: a(&dm),
                name: k("bob"),
                role: Role::Member,
                muted_until: None
            },
        ]
    );
    assert!(
        facts.iter().any(|f| matches!(f,
            Fact::W(Write::Room { room, owner: None, invite_only: true, .. }) if **room == *dm)),
        "{facts:#?}"
    );
    // Its display holds both parties' display names (in the order of
    // their keys), so that a restored DM shows each the other's.
    let mut w = World::stored(config(), empty());
    let bob = w.user("Bob");
    let _alice = w.user("Alice");
    let mark = w.journal.len();
    w.said(bob, "@alice", "hi");
    assert!(
        facts_of_rooms(&w, mark).contains(&("@Alice\nBob".to_owned())),
        "{:#?}",
        w.journal_since(mark)
    );
}

/// A DM restored from what the core wrote (its display: the parties'
/// display names, in the order of their keys, as the core writes it; see
/// `a_dm_is_written_as_a_room_of_its_two_parties`) is shown to each party
/// as the other's display name.
#[test]
fn a_restored_dm_is_shown_by_the_other_party_s_display_name() {
    let dm = format!("@{}\n{}", k("alice"), k("bob"));
    let secret = "b".repeat(24);
    let snapshot = Snapshot {
        names: vec![
            StoredName {
                key: k("alice").to_string(),
                display: "Alice".into(),
                secret: SecretHash::of(&"a".repeat(24)),
                expires_at: Some(EPOCH_MS + 60_000),
            },
            StoredName {
                key: k("bob").to_string(),
                display: "bob".into(),
                secret: SecretHash::of(&secret),
                expires_at: Some(EPOCH_MS + 60_000),
            },
        ],
        rooms: vec![StoredRoom {
            key: dm.clone(),
            display: "@Alice\nbob".into(),
            invite_only: true,
            epoch: "dm-epoch".into(),
            last_seq: 1,
            messages: vec![StoredMessage {
                seq: 1,
                id: "i".repeat(21),
                timestamp: EPOCH_MS - 1000,
                username: "Alice".into(),
                text: "hi".into(),
                notice: false,
            }],
            members: ["alice", "bob"]
                .map(|n| StoredMember {
                    name: k(n).to_string(),
                    role: Role::Member,
                    muted_until: None,
                })
                .to_vec(),
            ..StoredRoom::default()
        }],
        ..empty()
    };
    let mut w = World::stored(config(), snapshot);
    let bob = w.open3();
    let out = w.login_with(bob, "bob", json!({ "secret": secret }));
    let rooms = one(&out, bob, "rooms");
    assert_eq!(states(&rooms)["@Alice"]["lastSeq"], 1, "{rooms}");
    assert_eq!(history_entries(&histories(&out, bob)["@Alice"]), ["1:hi"]);
    assert_eq!(w.said(bob, "@alice", "hello again"), 2);
}

#[test]
fn a_join_part_and_read_are_answered_only_once_saved() {
    let mut w = World::manual(config(), empty());
    let alice = login_manual(&mut w, "alice");
    let bob = login_manual(&mut w, "bob");
    w.send(
        alice,
        json!({"type": "join", "id": "j", "room": "#dev", "inviteOnly": true}),
    );
    assert_eq!(w.drain(), []);
    let mark = w.journal.len() - w.pending.len();
    assert!(
        facts(&w, mark).iter().any(|f| matches!(
            f,
            Fact::W(Write::Room {
                invite_only: true,
                ..
            })
        )),
        "{:#?}",
        facts(&w, mark)
    );
    w.answer_all();
    assert_joined(&w.drain(), alice, "#dev");
    w.act(alice, "invite", "#dev", json!({"username": "bob"}));
    w.answer_all();
    let _ = w.drain();
    w.send(bob, json!({"type": "join", "id": "j", "room": "#dev"}));
    assert_eq!(w.drain(), []);
    w.answer_all();
    assert_joined(&w.drain(), bob, "#dev");
    w.send(
        bob,
        json!({"type": "read", "id": "r", "room": "#dev", "seq": 1}),
    );
    assert_eq!(w.drain(), []);
    w.answer_all();
    assert_eq!(kinds(&w.drain(), bob), ["readMarker"]);
    w.send(bob, json!({"type": "part", "id": "p", "room": "#dev"}));
    assert_eq!(w.drain(), []);
    w.answer_all();
    assert_eq!(kinds(&w.drain(), bob), ["membership"]);
}

/// Each name's own rooms as `listRooms` shows them (with their real
/// epochs), and every page of their history.
fn view(w: &mut World, conn: ConnectionId) -> Vec<(String, Value, String, Vec<String>)> {
    let out = w.ask(conn, json!({"type": "listRooms", "id": "lr"}));
    let mut view = Vec::new();
    for (room, state) in states(&one(&out, conn, "roomList")) {
        if state.get("role").is_none() {
            continue;
        }
        let out = w.ask(
            conn,
            json!({"type": "history", "id": "h", "room": room, "limit": 500}),
        );
        let entries = history_entries(&one(&out, conn, "history"));
        let epoch = w.epoch(conn, &room);
        view.push((room, state, epoch, entries));
    }
    view
}

#[test]
fn everything_saved_is_served_the_same_after_a_restart() {
    let config = config();
    let mut w = World::stored(config.clone(), empty());
    let names = ["Alice", "bob", "carol", "dave"];
    let conns: Vec<ConnectionId> = names.iter().map(|n| w.user(n)).collect();
    let [alice, bob, carol, _dave] = conns[..] else {
        unreachable!()
    };
    w.join_private(alice, "#ops");
    w.act(alice, "invite", "#ops", json!({"username": "bob"}));
    w.join(bob, "#ops");
    w.act(alice, "topic", "#ops", json!({"topic": "deploys"}));
    for i in 1..=3 {
        w.said(alice, "#ops", &format!("ops {i} @bob"));
    }
    w.join(carol, "#pub");
    w.join(bob, "#pub");
    w.said(carol, "#pub", "hello pub");
    w.act(alice, "mute", "#ops", json!({"username": "bob"}));
    w.act(
        alice,
        "ban",
        "#ops",
        json!({"username": "carol", "seconds": 3600}),
    );
    w.act(alice, "invite", "#ops", json!({"username": "dave"}));
    w.said(bob, "@alice", "dm one");
    w.said(alice, "@bob", "dm two");
    w.ask(
        bob,
        json!({"type": "read", "id": "r", "room": "#ops", "seq": 4}),
    );
    w.ask(carol, json!({"type": "part", "id": "p", "room": "#lobby"}));
    w.said(alice, "#lobby", "lobby one");
    w.said(bob, "#lobby", "lobby two");
    let secrets: Vec<String> = conns.iter().map(|&c| w.secret(c)).collect();
    let before: Vec<_> = conns.iter().map(|&c| view(&mut w, c)).collect();

    let snapshot = rooms_model::snapshot_of(
        w.server.epoch(),
        &w.saved,
        config.history_size,
        config.room_history,
        w.now_ms(),
    );
    let mut r = World::stored(config, snapshot);
    for (i, name) in names.iter().enumerate() {
        let conn = r.open3();
        let out = r.login_with(conn, name, json!({ "secret": secrets[i] }));
        assert!(
            kinds(&out, conn).contains(&"rooms".into()),
            "{name}: {out:#?}"
        );
        assert_eq!(view(&mut r, conn), before[i], "{name} after the restart");
        let rooms = one(&out, conn, "rooms");
        let changes = rooms["changes"].as_array().unwrap();
        if *name == "dave" {
            assert!(
                changes
                    .iter()
                    .any(|c| c["room"] == "#ops" && c["change"] == "invited"),
                "{rooms}"
            );
        }
    }
    // The acts hold too: bob is muted, carol banned.
    let bob = r.open3();
    r.login_with(bob, "bob", json!({ "secret": secrets[1] }));
    let out = r.say(bob, "#ops", "may I?");
    assert_refused(&out, bob, "muted", "m", "");
    let carol = r.open3();
    r.login_with(carol, "carol", json!({ "secret": secrets[2] }));
    let out = r.ask(carol, json!({"type": "join", "id": "j", "room": "#ops"}));
    assert_refused(&out, carol, "banned", "j", "");
    // And numbering goes on where it stopped.
    let alice = r.open3();
    r.login_with(alice, "Alice", json!({ "secret": secrets[0] }));
    assert_eq!(r.said(alice, "#ops", "after"), 9);
    assert_eq!(r.said(alice, "@bob", "dm three"), 3);
    assert_eq!(r.said(alice, "#lobby", "lobby three"), 3);
}

#[test]
fn a_part_of_the_lobby_that_cannot_be_saved_is_taken_back() {
    let mut w = World::manual(config(), empty());
    let alice = login_manual(&mut w, "alice");
    let bob = login_manual(&mut w, "bob");
    w.send(alice, json!({"type": "part", "id": "p", "room": "#lobby"}));
    for request in std::mem::take(&mut w.pending) {
        w.server
            .handle_answer(request.fail(Failed("disk full".into())), w.now);
    }
    let out = w.drain();
    assert_refused(&out, alice, "unavailable", "p", "");
    // Still in the lobby, as the store says.
    w.send(
        bob,
        json!({"type": "textFromUser", "id": "m", "text": "still there?"}),
    );
    w.answer_all();
    let out = w.drain();
    assert_eq!(one(&out, alice, "textBroadcast")["message"], "still there?");
}

#[test]
fn a_dm_whose_creation_cannot_be_saved_is_taken_back() {
    let mut w = World::manual(config(), empty());
    let alice = login_manual(&mut w, "alice");
    let bob = login_manual(&mut w, "bob");
    w.say(alice, "@bob", "hi");
    for request in std::mem::take(&mut w.pending) {
        w.server
            .handle_answer(request.fail(Failed("disk full".into())), w.now);
    }
    let out = w.drain();
    assert_refused(&out, alice, "unavailable", "m", "");
    for conn in [alice, bob] {
        let out = w.ask(conn, json!({"type": "listRooms", "id": "lr"}));
        let rooms = states(&one(&out, conn, "roomList"));
        assert!(rooms.keys().all(|r| !r.starts_with('@')), "{rooms:?}");
    }
    // Trying again creates it again, so that the store has it.
    w.say(alice, "@bob", "hi again");
    let again = std::mem::take(&mut w.pending);
    assert!(
        again
            .iter()
            .any(|r| matches!(r, Request::Write(_, Write::Room { .. }))),
        "{again:#?}"
    );
}

/// A DM that could not be started does not count against
/// `--new-dms-per-minute`: with one a minute, a start that failed leaves
/// the next start allowed.
#[test]
fn a_dm_whose_creation_cannot_be_saved_does_not_count_against_the_limit() {
    let mut w = World::manual(
        wschat::Config {
            new_dms_per_minute: 1,
            ..config()
        },
        empty(),
    );
    let alice = login_manual(&mut w, "alice");
    let _bob = login_manual(&mut w, "bob");
    let _carol = login_manual(&mut w, "carol");
    w.say(alice, "@bob", "hi");
    for request in std::mem::take(&mut w.pending) {
        w.server
            .handle_answer(request.fail(Failed("disk full".into())), w.now);
    }
    assert_refused(&w.drain(), alice, "unavailable", "m", "");
    w.say(alice, "@carol", "hi");
    w.answer_all();
    let out = w.drain();
    assert!(
        frames(&out, alice)
            .iter()
            .any(|f| f["type"] == "textBroadcast" && f["room"] == "@carol"),
        "the second start was refused: {out:#?}"
    );
}

#[test]
fn an_act_that_cannot_be_saved_is_not_done() {
    for (act, fields) in [
        ("topic", json!({"topic": "lost"})),
        ("mode", json!({"inviteOnly": true})),
        ("invite", json!({"username": "xena"})),
        ("kick", json!({"username": "mia"})),
        ("ban", json!({"username": "mia"})),
        ("mute", json!({"username": "mia"})),
        ("op", json!({"username": "mia"})),
    ] {
        let mut w = World::manual(config(), empty());
        let olive = login_manual(&mut w, "olive");
        let mia = login_manual(&mut w, "mia");
        let _xena = login_manual(&mut w, "xena");
        w.send(olive, json!({"type": "join", "id": "j", "room": "#mod"}));
        w.answer_all();
        w.send(mia, json!({"type": "join", "id": "j", "room": "#mod"}));
        w.answer_all();
        let _ = w.drain();
        let state = |w: &mut World| {
            w.send(mia, json!({"type": "listRooms", "id": "lr"}));
            w.send(
                mia,
                json!({"type": "listMembers", "id": "lm", "room": "#mod"}),
            );
            w.answer_all();
            w.drain()
        };
        let before = state(&mut w);
        w.act(olive, act, "#mod", fields);
        for request in std::mem::take(&mut w.pending) {
            w.server
                .handle_answer(request.fail(Failed("disk full".into())), w.now);
        }
        let out = w.drain();
        assert_refused(&out, olive, "unavailable", "a", "");
        assert_eq!(state(&mut w), before, "{act} was done though not saved");
    }
}

#[test]
fn the_lobby_s_topic_and_bans_outlive_a_restart() {
    let config = wschat::Config {
        operators: vec!["sam".into()],
        ..config()
    };
    let mut w = World::stored(config.clone(), empty());
    let sam = w.user("sam");
    let mia = w.user("mia");
    w.act(sam, "topic", "#lobby", json!({"topic": "welcome"}));
    w.act(sam, "ban", "#lobby", json!({"username": "mia"}));
    let secret = w.secret(mia);
    let snapshot = rooms_model::snapshot_of(
        w.server.epoch(),
        &w.saved,
        config.history_size,
        config.room_history,
        w.now_ms(),
    );
    let mut r = World::stored(config, snapshot);
    let mia = r.open3();
    r.login_with(mia, "mia", json!({ "secret": secret }));
    let out = r.ask(mia, json!({"type": "join", "id": "j", "room": "#lobby"}));
    assert_refused(&out, mia, "banned", "j", "");
    let out = r.ask(mia, json!({"type": "listRooms", "id": "lr"}));
    assert_eq!(
        states(&one(&out, mia, "roomList"))["#lobby"]["topic"],
        "welcome"
    );
}

#[test]
fn a_lobby_act_that_cannot_be_saved_is_not_done() {
    let config = wschat::Config {
        operators: vec!["olive".into()],
        ..config()
    };
    for (act, fields) in [
        ("topic", json!({"topic": "lost"})),
        ("kick", json!({"username": "mia"})),
        ("ban", json!({"username": "mia"})),
        ("mute", json!({"username": "mia"})),
    ] {
        let mut w = World::manual(config.clone(), empty());
        let olive = login_manual(&mut w, "olive");
        let mia = login_manual(&mut w, "mia");
        let _ = w.drain();
        let state = |w: &mut World| {
            w.send(mia, json!({"type": "listRooms", "id": "lr"}));
            w.send(
                mia,
                json!({"type": "listMembers", "id": "lm", "room": "#lobby"}),
            );
            w.answer_all();
            w.drain()
        };
        let before = state(&mut w);
        w.act(olive, act, "#lobby", fields);
        for request in std::mem::take(&mut w.pending) {
            w.server
                .handle_answer(request.fail(Failed("disk full".into())), w.now);
        }
        let out = w.drain();
        assert_refused(&out, olive, "unavailable", "a", "");
        assert!(kinds(&out, mia).is_empty(), "{act}: {out:#?}");
        assert_eq!(state(&mut w), before, "{act} was done though not saved");
    }
}

// ---- random traffic, restarted ----

use proptest::prelude::*;

const ROOMS: [&str; 8] = ["#a", "#b", "#p", "#lobby", "@u0", "@u1", "@u2", "@u3"];
const ACTS: [&str; 10] = [
    "topic", "mode", "invite", "kick", "ban", "unban", "mute", "unmute", "op", "deop",
];

#[derive(Debug, Clone)]
enum Step {
    Join(usize, usize),
    Part(usize, usize),
    Say(usize, usize),
    Act(usize, usize, usize, usize),
    Read(usize, usize, u8),
    Tick(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..4usize, 0..4usize).prop_map(|(u, r)| Step::Join(u, r)),
        1 => (0..4usize, 0..4usize).prop_map(|(u, r)| Step::Part(u, r)),
        4 => (0..4usize, 0..8usize).prop_map(|(u, r)| Step::Say(u, r)),
        3 => (0..4usize, 0..10usize, 0..3usize, 0..4usize)
            .prop_map(|(u, a, r, t)| Step::Act(u, a, r, t)),
        1 => (0..4usize, 0..8usize, 0..6u8).prop_map(|(u, r, s)| Step::Read(u, r, s)),
        1 => (0..3000u16).prop_map(Step::Tick),
    ]
}

/// Runs `steps` with a store that fails the groups `failures` says, then
/// restarts from what it saved, and compares every name's view.
fn restart_after(steps: Vec<Step>, failures: &[bool]) -> Result<(), TestCaseError> {
    let config = config();
    let mut w = World::stored(config.clone(), empty());
    let users: Vec<ConnectionId> = (0..4).map(|i| w.user(&format!("u{i}"))).collect();
    w.join_private(users[0], "#p");
    // Some writes fail: what the core took back is not served either.
    w.fail_next(failures.iter().copied());
    for (n, step) in steps.into_iter().enumerate() {
        match step {
            Step::Join(u, r) => {
                w.ask(
                    users[u],
                    json!({"type": "join", "id": "j", "room": ROOMS[r]}),
                );
            }
            Step::Part(u, r) => {
                w.ask(
                    users[u],
                    json!({"type": "part", "id": "p", "room": ROOMS[r]}),
                );
            }
            Step::Say(u, r) => {
                w.say(users[u], ROOMS[r], &format!("m{n}"));
            }
            Step::Act(u, a, r, t) => {
                let fields = match ACTS[a] {
                    "topic" => json!({"topic": format!("t{n}")}),
                    "mode" => json!({"inviteOnly": n % 2 == 0}),
                    "ban" | "mute" if n % 2 == 0 => {
                        json!({"username": format!("u{t}"), "seconds": 2})
                    }
                    _ => json!({"username": format!("u{t}")}),
                };
                w.act(users[u], ACTS[a], ROOMS[r], fields);
            }
            Step::Read(u, r, seq) => {
                w.ask(
                    users[u],
                    json!({"type": "read", "id": "r", "room": ROOMS[r], "seq": seq}),
                );
            }
            Step::Tick(ms_) => {
                w.advance(ms(u64::from(ms_)));
            }
        }
    }
    let secrets: Vec<String> = users.iter().map(|&c| w.secret(c)).collect();
    let before: Vec<_> = users.iter().map(|&c| view(&mut w, c)).collect();
    let snapshot = rooms_model::snapshot_of(
        w.server.epoch(),
        &w.saved,
        config.history_size,
        config.room_history,
        w.now_ms(),
    );
    let mut r = World::stored(config, snapshot);
    for i in 0..4 {
        let conn = r.open3();
        let out = r.login_with(conn, &format!("u{i}"), json!({ "secret": secrets[i] }));
        prop_assert!(kinds(&out, conn).contains(&"rooms".into()), "{:#?}", out);
        prop_assert_eq!(
            view(&mut r, conn),
            before[i].clone(),
            "u{} after the restart",
            i
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever is done, what the store saved is enough to serve every
    /// name the same after a restart.
    #[test]
    fn random_traffic_is_served_the_same_after_a_restart(
        steps in prop::collection::vec(step(), 1..50),
    ) {
        restart_after(steps, &[])?;
    }

    /// And whichever writes fail: what the core took back is not served
    /// after the restart, and what it kept was saved.
    #[test]
    fn random_traffic_with_failing_writes_is_served_the_same_after_a_restart(
        steps in prop::collection::vec(step(), 1..50),
        failures in prop::collection::vec(prop::bool::weighted(0.15), 0..120),
    ) {
        restart_after(steps, &failures)?;
    }
}
