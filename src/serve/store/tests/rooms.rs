//! The store's unit tests of rooms (format 2).

use std::fs;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTableMetadata};

use super::super::tables::{BY_NAME, LOBBY_NOTICES, META, ROOM_MESSAGES, Ties};
use super::super::*;
use super::write;
use crate::protocol::Role;
use crate::server::{
    Append, SecretHash, StoredMember, StoredMessage, StoredRead, StoredRoom, Ticket, Write,
};

/// Messages kept in the lobby and in each room by these tests.
const LOBBY_KEEP: usize = 10;
const ROOM_KEEP: usize = 3;

pub(super) fn open(dir: &Path) -> (Store, Snapshot) {
    Store::open_keeping(dir, LOBBY_KEEP, ROOM_KEEP).unwrap()
}

/// Applies `writes` (numbered from 1) in one batch, which must succeed.
pub(super) fn apply(store: &mut Store, writes: Vec<Write>) {
    let batch: Vec<Request> = (1..).zip(writes).map(|(n, w)| write(n, w)).collect();
    let answers = store.commit(&batch).unwrap();
    assert!(answers.iter().all(|a| a.error().is_none()), "{answers:?}");
}

pub(super) fn room(key: &str, owner: Option<&str>) -> Write {
    Write::Room {
        room: key.into(),
        display: key.to_uppercase().into(),
        owner: owner.map(Into::into),
        invite_only: false,
        topic: None,
        epoch: format!("epoch-of-{key}").into(),
    }
}

pub(super) fn member(room: &str, name: &str, role: Role) -> Write {
    Write::Member {
        room: room.into(),
        name: name.into(),
        role,
        muted_until: None,
    }
}

pub(super) fn say(number: u64, room: Option<&str>, text: &str, notice: bool) -> Request {
    let append = Append {
        room: room.map(Into::into),
        id: format!("id-{text}").into(),
        timestamp: 1_000 + number,
        username: "alice".into(),
        text: text.into(),
        notice,
    };
    Request::Append(Ticket::for_tests(number), append)
}

/// Each answer: the `seq` an append took, or why it failed.
pub(super) fn seqs(answers: &[Answer]) -> Vec<Result<u64, String>> {
    answers
        .iter()
        .filter_map(|answer| match answer {
            Answer::Appended(_, result) => Some(result.clone().map_err(|Failed(e)| e)),
            _ => None,
        })
        .collect()
}

pub(super) fn kept(text: &str, seq: u64, number: u64, notice: bool) -> StoredMessage {
    StoredMessage {
        seq,
        id: format!("id-{text}"),
        timestamp: 1_000 + number,
        username: "alice".into(),
        text: text.into(),
        notice,
    }
}

pub(super) fn texts(messages: &[StoredMessage]) -> Vec<(u64, &str)> {
    messages.iter().map(|m| (m.seq, m.text.as_str())).collect()
}

pub(super) fn find<'s>(snapshot: &'s Snapshot, key: &str) -> &'s StoredRoom {
    let found = snapshot.rooms.iter().find(|room| room.key == key);
    found.unwrap_or_else(|| panic!("no room {key} in {:#?}", snapshot.rooms))
}

/// Every row of [`BY_NAME`], as (name, room, ties).
pub(super) fn ties(store: &Store) -> Vec<(String, String, u8)> {
    let tx = store.db.as_ref().unwrap().begin_read().unwrap();
    let table = tx.open_table(BY_NAME).unwrap();
    let rows = table.iter().unwrap().map(|entry| {
        let (pair, ties) = entry.unwrap();
        let (name, room) = pair.value();
        (name.to_owned(), room.to_owned(), ties.value())
    });
    rows.collect()
}

#[test]
fn every_room_write_is_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    let (a, b) = ("#a", "#b");
    let read = |name: &str, room: &str, seq| Write::Read {
        name: name.into(),
        room: room.into(),
        seq,
    };
    apply(
        &mut store,
        vec![
            room(a, Some("alice")),
            Write::Room {
                room: b.into(),
                display: "#B".into(),
                owner: Some("bob".into()),
                invite_only: true,
                topic: Some("bees".into()),
                epoch: "eb".into(),
            },
            member(a, "alice", Role::Owner),
            Write::Member {
                room: a.into(),
                name: "bob".into(),
                role: Role::Operator,
                muted_until: Some(99),
            },
            Write::Member {
                room: a.into(),
                name: "carol".into(),
                role: Role::Member,
                muted_until: Some(u64::MAX),
            },
            member(a, "dave", Role::Member),
            Write::Unmember {
                room: a.into(),
                name: "dave".into(),
                by: None,
                reason: None,
            },
            Write::Ban {
                room: a.into(),
                name: "mallory".into(),
                until: Some(5),
            },
            Write::Ban {
                room: a.into(),
                name: "eve".into(),
                until: None,
            },
            Write::Ban {
                room: a.into(),
                name: "trent".into(),
                until: None,
            },
            Write::Unban {
                room: a.into(),
                name: "trent".into(),
            },
            Write::Invite {
                room: b.into(),
                name: "carol".into(),
            },
            Write::Invite {
                room: b.into(),
                name: "dave".into(),
            },
            Write::Uninvite {
                room: b.into(),
                name: "dave".into(),
            },
            read("alice", a, 2),
            read("bob", "#lobby", 7),
            read("alice", a, 3),
            Write::Unmember {
                room: "#lobby".into(),
                name: "carol".into(),
                by: None,
                reason: None,
            },
            Write::Unmember {
                room: "#lobby".into(),
                name: "dave".into(),
                by: None,
                reason: None,
            },
            member("#lobby", "dave", Role::Member),
            // A change of settings keeps the room's members and numbering.
            Write::Room {
                room: a.into(),
                display: "#A".into(),
                owner: Some("alice".into()),
                invite_only: true,
                topic: Some("ants".into()),
                epoch: "epoch-of-#a".into(),
            },
        ],
    );
    let notice = r#"{"kind":"kick","username":"dave"}"#;
    let answers = store
        .commit(&[
            say(1, Some(a), "hi", false),
            say(2, Some(a), notice, true),
            say(3, None, notice, true),
            say(4, None, "lobby", false),
        ])
        .unwrap();
    assert_eq!(seqs(&answers), [Ok(1), Ok(2), Ok(1), Ok(2)]);
    drop(store);

    let (_store, snapshot) = open(dir.path());
    let expected_a = StoredRoom {
        key: a.into(),
        display: "#A".into(),
        owner: Some("alice".into()),
        invite_only: true,
        topic: Some("ants".into()),
        epoch: "epoch-of-#a".into(),
        last_seq: 2,
        messages: vec![kept("hi", 1, 1, false), kept(notice, 2, 2, true)],
        members: vec![
            StoredMember {
                name: "alice".into(),
                role: Role::Owner,
                muted_until: None,
            },
            StoredMember {
                name: "bob".into(),
                role: Role::Operator,
                muted_until: Some(99),
            },
            StoredMember {
                name: "carol".into(),
                role: Role::Member,
                muted_until: Some(u64::MAX),
            },
        ],
        bans: vec![("eve".into(), None), ("mallory".into(), Some(5))],
        invites: vec![],
    };
    let expected_b = StoredRoom {
        key: b.into(),
        display: "#B".into(),
        owner: Some("bob".into()),
        invite_only: true,
        topic: Some("bees".into()),
        epoch: "eb".into(),
        invites: vec!["carol".into()],
        ..StoredRoom::default()
    };
    assert_eq!(snapshot.rooms, [expected_a, expected_b]);
    let stored_read = |name: &str, room: &str, seq| StoredRead {
        name: name.into(),
        room: room.into(),
        seq,
    };
    assert_eq!(
        snapshot.reads,
        [stored_read("alice", a, 3), stored_read("bob", "#lobby", 7)]
    );
    assert_eq!(snapshot.left_lobby, ["carol"]);
    assert_eq!(snapshot.last_seq, 2);
    assert_eq!(
        snapshot.messages,
        [kept(notice, 1, 3, true), kept("lobby", 2, 4, false)]
    );
}

#[test]
fn a_released_name_takes_its_ties_and_direct_conversations_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    let (alice_bob, bob_carol, aaron_alice) = ("@alice\nbob", "@bob\ncarol", "@aaron\nalice");
    let (a_read, lobby_read) = (
        Write::Read {
            name: "alice".into(),
            room: "#a".into(),
            seq: 1,
        },
        Write::Read {
            name: "alice".into(),
            room: "#lobby".into(),
            seq: 4,
        },
    );
    apply(
        &mut store,
        vec![
            Write::Claim {
                key: "alice".into(),
                display: "Alice".into(),
                secret: SecretHash::of("s"),
            },
            room("#a", Some("alice")),
            member("#a", "alice", Role::Owner),
            member("#a", "bob", Role::Member),
            room("#b", Some("bob")),
            member("#b", "bob", Role::Owner),
            Write::Invite {
                room: "#b".into(),
                name: "alice".into(),
            },
            Write::Ban {
                room: "#b".into(),
                name: "alice".into(),
                until: None,
            },
            a_read,
            lobby_read,
            Write::Read {
                name: "bob".into(),
                room: "#a".into(),
                seq: 1,
            },
            Write::Unmember {
                room: "#lobby".into(),
                name: "alice".into(),
                by: None,
                reason: None,
            },
            room(alice_bob, None),
            member(alice_bob, "alice", Role::Member),
            member(alice_bob, "bob", Role::Member),
            Write::Read {
                name: "bob".into(),
                room: alice_bob.into(),
                seq: 1,
            },
            room(bob_carol, None),
            member(bob_carol, "bob", Role::Member),
            member(bob_carol, "carol", Role::Member),
            // alice is a party of this one without being in it.
            room(aaron_alice, None),
            member(aaron_alice, "aaron", Role::Member),
        ],
    );
    let answers = store.commit(&[say(1, Some(alice_bob), "psst", false)]);
    assert_eq!(seqs(&answers.unwrap()), [Ok(1)]);

    apply(
        &mut store,
        vec![Write::Release {
            key: "alice".into(),
        }],
    );
    let all = |ties: &[Ties]| ties.iter().fold(0, |all, tie| all | tie.0);
    let row = |name: &str, room: &str, tied: &[Ties]| (name.into(), room.into(), all(tied));
    assert_eq!(
        ties(&store),
        [
            row("bob", "#a", &[Ties::MEMBER, Ties::READ]),
            row("bob", "#b", &[Ties::OWNER, Ties::MEMBER]),
            row("bob", bob_carol, &[Ties::PARTY, Ties::MEMBER]),
            row("carol", bob_carol, &[Ties::PARTY, Ties::MEMBER]),
        ],
        "aaron's direct conversation with alice went with her"
    );
    drop(store);

    let (mut store, snapshot) = open(dir.path());
    assert_eq!(snapshot.names, []);
    let keys: Vec<&str> = snapshot.rooms.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["#a", "#b", bob_carol]);
    let (a, b) = (find(&snapshot, "#a"), find(&snapshot, "#b"));
    assert_eq!(a.owner, None);
    let members: Vec<&str> = a.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(members, ["bob"]);
    assert_eq!(
        (&b.owner, &b.invites, &b.bans),
        (&Some("bob".into()), &vec![], &vec![("alice".into(), None)]),
        "her bans stay"
    );
    assert_eq!(find(&snapshot, bob_carol).members.len(), 2);
    let reads: Vec<(&str, &str)> = snapshot
        .reads
        .iter()
        .map(|r| (r.name.as_str(), r.room.as_str()))
        .collect();
    assert_eq!(reads, [("bob", "#a")]);
    assert_eq!(snapshot.left_lobby, Vec::<String>::new());

    // The conversation started again starts afresh: its messages went too.
    apply(&mut store, vec![room(alice_bob, None)]);
    let answers = store.commit(&[say(1, Some(alice_bob), "again", false)]);
    assert_eq!(seqs(&answers.unwrap()), [Ok(1)]);
    let tx = store.db.as_ref().unwrap().begin_read().unwrap();
    let messages = tx.open_table(ROOM_MESSAGES).unwrap();
    assert_eq!(messages.len().unwrap(), 1);
}

/// A lobby mute (`Write::Member` of `#lobby` with `muted_until`).
fn lobby_mute(name: &str, until: u64) -> Write {
    Write::Member {
        room: "#lobby".into(),
        name: name.into(),
        role: Role::Member,
        muted_until: Some(until),
    }
}

#[test]
fn the_lobby_s_topic_bans_and_mutes_are_read_back_as_the_room_lobby() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    let lobby = |topic: Option<&str>| Write::Room {
        room: "#lobby".into(),
        display: "#lobby".into(),
        owner: None,
        invite_only: false,
        topic: topic.map(Into::into),
        epoch: "the-lobby-s".into(),
    };
    apply(
        &mut store,
        vec![
            lobby(Some("welcome")),
            Write::Ban {
                room: "#lobby".into(),
                name: "mia".into(),
                until: None,
            },
            lobby_mute("bob", 5_000),
            lobby_mute("carol", u64::MAX),
            lobby_mute("dave", 7_000),
            // Muted or not, dave's place in the lobby is its own matter.
            Write::Unmember {
                room: "#lobby".into(),
                name: "dave".into(),
                by: None,
                reason: None,
            },
            Write::Member {
                room: "#lobby".into(),
                name: "carol".into(),
                role: Role::Member,
                muted_until: None,
            },
            lobby_mute("bob", 0),
            Write::Release {
                key: "carol".into(),
            },
        ],
    );
    // The lobby is not an ordinary room: it keeps no message of its own.
    let batch = [say(1, Some("#lobby"), "nowhere", false)];
    let answers = store.commit(&batch).unwrap();
    assert!(seqs(&answers)[0].is_err(), "{answers:?}");
    drop(store);
    let (_, snapshot) = open(dir.path());
    assert_eq!(snapshot.rooms.len(), 1, "{:#?}", snapshot.rooms);
    let lobby = find(&snapshot, "#lobby");
    assert_eq!(lobby.topic.as_deref(), Some("welcome"));
    assert_eq!(lobby.last_seq, 0);
    assert_eq!(lobby.bans, [("mia".to_owned(), None)]);
    // bob was unmuted; carol's mute went with her name.
    assert_eq!(
        lobby.members,
        [StoredMember {
            name: "dave".into(),
            role: Role::Member,
            muted_until: Some(7_000),
        }]
    );
    assert_eq!(snapshot.left_lobby, ["dave"]);
}

#[test]
fn a_dropped_room_leaves_nothing_but_other_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    apply(
        &mut store,
        vec![
            room("#a", Some("alice")),
            member("#a", "alice", Role::Owner),
            member("#a", "bob", Role::Member),
            Write::Invite {
                room: "#a".into(),
                name: "carol".into(),
            },
            Write::Ban {
                room: "#a".into(),
                name: "dave".into(),
                until: None,
            },
            Write::Read {
                name: "bob".into(),
                room: "#a".into(),
                seq: 1,
            },
            room("#ab", None),
            member("#ab", "bob", Role::Member),
        ],
    );
    let answers = store.commit(&[say(1, Some("#a"), "one", false)]);
    assert_eq!(seqs(&answers.unwrap()), [Ok(1)]);
    apply(&mut store, vec![Write::DropRoom { room: "#a".into() }]);
    let member_of_ab = ("bob".into(), "#ab".into(), Ties::MEMBER.0);
    assert_eq!(ties(&store), [member_of_ab]);
    drop(store);

    let (mut store, snapshot) = open(dir.path());
    let keys: Vec<&str> = snapshot.rooms.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["#ab"]);
    assert_eq!(snapshot.reads, []);
    // Made again: a new room, numbered from 1, with none of the old rows.
    apply(&mut store, vec![room("#a", Some("bob"))]);
    let answers = store.commit(&[say(1, Some("#a"), "new", false)]);
    assert_eq!(seqs(&answers.unwrap()), [Ok(1)]);
    drop(store);
    let (_store, snapshot) = open(dir.path());
    let a = find(&snapshot, "#a");
    assert_eq!(texts(&a.messages), [(1, "new")]);
    assert_eq!((a.members.len(), a.bans.len(), a.invites.len()), (0, 0, 0));
}

#[test]
fn each_room_numbers_its_own_messages_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    apply(&mut store, vec![room("#a", None), room("#b", None)]);
    let batch = [
        say(1, Some("#a"), "a1", false),
        say(2, None, "l1", false),
        say(3, Some("#nowhere"), "lost", false),
        say(4, Some("#b"), "b1", false),
        say(5, Some("#a"), "a2", false),
    ];
    let answers = store.commit(&batch).unwrap();
    let said = seqs(&answers);
    assert_eq!(said[..2], [Ok(1), Ok(1)]);
    let refused = said[2].as_ref().unwrap_err();
    assert!(refused.contains("\"#nowhere\"") && refused.contains("never created"));
    assert_eq!(said[3..], [Ok(1), Ok(2)]);
    drop(store);

    let (mut store, snapshot) = open(dir.path());
    assert_eq!(snapshot.last_seq, 1);
    assert_eq!(find(&snapshot, "#a").last_seq, 2);
    assert_eq!(find(&snapshot, "#b").last_seq, 1);
    let answers = store.commit(&[
        say(1, Some("#b"), "b2", false),
        say(2, Some("#a"), "a3", false),
        say(3, None, "l2", false),
    ]);
    assert_eq!(seqs(&answers.unwrap()), [Ok(2), Ok(3), Ok(2)]);
    drop(store);
    let (_store, snapshot) = open(dir.path());
    assert_eq!(
        texts(&find(&snapshot, "#a").messages),
        [(1, "a1"), (2, "a2"), (3, "a3")]
    );
    assert_eq!(texts(&snapshot.messages), [(1, "l1"), (2, "l2")]);
}

#[test]
fn each_room_keeps_its_latest_messages_only() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    apply(&mut store, vec![room("#a", None), room("#b", None)]);
    let mut batch: Vec<Request> = (1..=5)
        .map(|n| say(n, Some("#a"), &format!("a{n}"), false))
        .collect();
    batch.push(say(6, Some("#b"), "b1", false));
    store.commit(&batch).unwrap();
    drop(store);
    let (_store, snapshot) = open(dir.path());
    let a = find(&snapshot, "#a");
    assert_eq!(texts(&a.messages), [(3, "a3"), (4, "a4"), (5, "a5")]);
    assert_eq!(texts(&find(&snapshot, "#b").messages), [(1, "b1")]);
    drop(_store);

    // Fewer kept from now on: the older ones go at the next message.
    let (mut store, snapshot) = Store::open_keeping(dir.path(), LOBBY_KEEP, 1).unwrap();
    assert_eq!(texts(&find(&snapshot, "#a").messages), [(5, "a5")]);
    store.commit(&[say(1, Some("#a"), "a6", false)]).unwrap();
    let tx = store.db.as_ref().unwrap().begin_read().unwrap();
    let table = tx.open_table(ROOM_MESSAGES).unwrap();
    let rows: Vec<(String, u64)> = table
        .iter()
        .unwrap()
        .map(|entry| {
            let (key, _) = entry.unwrap();
            let (room, seq) = key.value();
            (room.to_owned(), seq)
        })
        .collect();
    assert_eq!(rows, [("#a".into(), 6), ("#b".into(), 1)]);
}

#[test]
fn a_lobby_notice_is_kept_as_one_and_trimmed_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open_keeping(dir.path(), 2, ROOM_KEEP).unwrap();
    store
        .commit(&[say(1, None, "n1", true), say(2, None, "m2", false)])
        .unwrap();
    drop(store);
    let (mut store, snapshot) = Store::open_keeping(dir.path(), 2, ROOM_KEEP).unwrap();
    let notices: Vec<bool> = snapshot.messages.iter().map(|m| m.notice).collect();
    assert_eq!(notices, [true, false]);
    store
        .commit(&[say(1, None, "n3", true), say(2, None, "m4", false)])
        .unwrap();
    let tx = store.db.as_ref().unwrap().begin_read().unwrap();
    let table = tx.open_table(LOBBY_NOTICES).unwrap();
    let rows: Vec<u64> = table
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value())
        .collect();
    assert_eq!(rows, [3]);
}

#[test]
fn a_store_of_format_1_is_served_on_and_brought_to_format_2() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-ab928bb/wschat.redb"
    );
    fs::copy(fixture, dir.path().join(FILE_NAME)).unwrap();
    let (mut store, snapshot) = open(dir.path());
    assert_eq!(
        (snapshot.epoch.as_str(), snapshot.last_seq),
        ("8v6nzW0n8hJCV_Sl", 4)
    );
    assert_eq!(
        texts(&snapshot.messages),
        [
            (1, "hello from alice"),
            (2, "second line from alice"),
            (3, "hi alice, bob here"),
            (4, "alice again")
        ]
    );
    assert!(snapshot.messages.iter().all(|m| !m.notice));
    let names: Vec<&str> = snapshot.names.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!((snapshot.rooms.len(), snapshot.reads.len()), (0, 0));
    let tx = store.db.as_ref().unwrap().begin_read().unwrap();
    let meta = tx.open_table(META).unwrap();
    assert_eq!(meta.get("format").unwrap().unwrap().value(), FORMAT);
    drop((meta, tx));

    apply(&mut store, vec![room("#a", None)]);
    let answers = store.commit(&[say(1, None, "5th", false), say(2, Some("#a"), "a1", false)]);
    assert_eq!(seqs(&answers.unwrap()), [Ok(5), Ok(1)]);
    drop(store);
    let (_store, snapshot) = open(dir.path());
    assert_eq!(snapshot.epoch, "8v6nzW0n8hJCV_Sl");
    assert_eq!(snapshot.messages.last().map(|m| m.seq), Some(5));
    assert_eq!(texts(&find(&snapshot, "#a").messages), [(1, "a1")]);
}
