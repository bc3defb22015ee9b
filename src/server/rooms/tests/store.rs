//! Rooms with a store: answered once saved, and back from a snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::protocol::Role;
use crate::server::{
    Request, SecretHash, Snapshot, StoredMember, StoredMessage, StoredName, StoredRead, StoredRoom,
    Write,
};

impl Core {
    fn restored(snapshot: Snapshot) -> Core {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_millis(EPOCH_MS);
        let server = Server::restore(config(), StdRng::seed_from_u64(7), snapshot, wall, now);
        Core {
            server,
            now,
            secrets: Default::default(),
        }
    }

    fn requests(&mut self) -> Vec<Request> {
        std::iter::from_fn(|| self.server.poll_request()).collect()
    }

    /// Answers every request, numbering appends per room from `seqs`.
    fn settle(&mut self, seqs: &mut HashMap<Option<Arc<str>>, u64>) -> Vec<Request> {
        let mut all = Vec::new();
        while let Some(request) = self.server.poll_request() {
            let answer = match &request {
                Request::Write(ticket, _) => ticket.answer(Ok(())),
                Request::Append(ticket, append) => {
                    let seq = seqs.entry(append.room.clone()).or_default();
                    *seq += 1;
                    ticket.answer(Ok(*seq))
                }
                other => other.fail(crate::server::Failed("no".into())),
            };
            self.server.handle_answer(answer, self.now);
            all.push(request);
        }
        all
    }
}

#[test]
fn a_join_and_a_message_are_answered_only_once_saved() {
    let mut core = Core::restored(Snapshot::default());
    let mut seqs = HashMap::new();
    let alice = core.open(Version::V3);
    core.send(alice, r#"{"type":"login","id":"l","username":"alice"}"#);
    core.settle(&mut seqs);
    core.drain();
    core.send(alice, r##"{"type":"join","id":"j","room":"#dev"}"##);
    assert!(core.drain().is_empty());
    let requests = core.requests();
    assert!(
        matches!(&requests[..], [
        Request::Write(_, Write::Room { room, owner: Some(_), .. }),
        Request::Write(last, Write::Member { role: Role::Owner, .. }),
    ] if &**room == "#dev" && last.get() > 0),
        "{requests:?}"
    );
    let Request::Write(first, _) = &requests[0] else {
        unreachable!()
    };
    core.server.handle_answer(first.answer(Ok(())), core.now);
    assert!(core.drain().is_empty(), "answered before its last write");
    let Request::Write(last, _) = &requests[1] else {
        unreachable!()
    };
    core.server.handle_answer(last.answer(Ok(())), core.now);
    assert_eq!(core.frames_to(alice)[0]["change"], "joined");
    core.send(
        alice,
        r##"{"type":"textFromUser","id":"m","room":"#dev","text":"hi"}"##,
    );
    assert!(core.drain().is_empty());
    let requests = core.requests();
    let [Request::Append(ticket, append)] = &requests[..] else {
        panic!("{requests:?}")
    };
    assert_eq!(
        (append.room.as_deref(), append.notice),
        (Some("#dev"), false)
    );
    core.server.handle_answer(ticket.answer(Ok(7)), core.now);
    let ack = core.frames_to(alice).remove(0);
    assert_eq!((&ack["seq"], &ack["replyTo"]), (&7.into(), &"m".into()));
}

#[test]
fn rooms_come_back_from_the_snapshot_for_held_names_only() {
    let message = |seq: u64, text: &str, notice: bool| StoredMessage {
        seq,
        id: format!("id{seq}"),
        timestamp: EPOCH_MS,
        username: "alice".into(),
        text: text.into(),
        notice,
    };
    let member = |name: &str, role| StoredMember {
        name: name.into(),
        role,
        muted_until: None,
    };
    let snapshot = Snapshot {
        epoch: "lobby".into(),
        names: vec![StoredName {
            key: "alice".into(),
            display: "Alice".into(),
            secret: SecretHash::of("s3cret"),
            expires_at: Some(EPOCH_MS + 60_000),
        }],
        rooms: vec![
            StoredRoom {
                key: "#dev".into(),
                display: "#Dev".into(),
                owner: Some("alice".into()),
                topic: Some("builds".into()),
                epoch: "devepoch".into(),
                last_seq: 3,
                messages: vec![
                    message(2, "two", false),
                    message(3, r#"{"act":"topic","by":"Alice","topic":"builds"}"#, true),
                ],
                members: vec![member("alice", Role::Owner), member("bob", Role::Member)],
                ..StoredRoom::default()
            },
            StoredRoom {
                key: "@alice\nbob".into(),
                display: "@Alice\nbob".into(),
                epoch: "dm".into(),
                members: vec![member("alice", Role::Member), member("bob", Role::Member)],
                ..StoredRoom::default()
            },
        ],
        reads: vec![StoredRead {
            name: "alice".into(),
            room: "#dev".into(),
            seq: 2,
        }],
        left_lobby: vec!["alice".into(), "bob".into()],
        ..Snapshot::default()
    };
    let mut core = Core::restored(snapshot);
    let requests = core.requests();
    assert!(requests.iter().any(
        |r| matches!(r, Request::Write(_, Write::DropRoom { room }) if &**room == "@alice\nbob")
    ));
    let alice = core.open(Version::V3);
    core.send(
        alice,
        r#"{"type":"login","id":"l","username":"alice","secret":"s3cret"}"#,
    );
    core.settle(&mut HashMap::new());
    let mut frames = core.frames_to(alice);
    frames.retain(|f| f["type"] != "loginBroadcast");
    let rooms = &frames[1];
    assert_eq!(
        rooms["rooms"],
        serde_json::json!([{"room":"#Dev","topic":"builds","inviteOnly":false,"members":1,"role":"owner","epoch":"devepoch","lastSeq":3,"readSeq":2,"unread":1,"mentioned":false,"recovered":false}])
    );
    assert_eq!(frames.len(), 3, "{frames:?}"); // no lobby history: alice left it
    assert_eq!(seqs(&frames[2]), [2, 3]);
    assert_eq!(frames[2]["messages"][1]["act"], "topic");
}

#[test]
fn a_join_that_cannot_be_saved_is_refused_and_taken_back() {
    let mut core = Core::restored(Snapshot::default());
    let mut seqs = HashMap::new();
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let conn = core.open(Version::V3);
        core.send(
            conn,
            &format!(r#"{{"type":"login","id":"l","username":"{name}"}}"#),
        );
        core.settle(&mut seqs);
        users.push(conn);
    }
    let [alice, bob] = users[..] else {
        unreachable!()
    };
    core.drain();
    let fail_all = |core: &mut Core| {
        for request in core.requests() {
            let answer = request.fail(crate::server::Failed("disk full".into()));
            core.server.handle_answer(answer, core.now);
        }
    };
    // A room that could not be created is not there.
    core.send(alice, r##"{"type":"join","id":"j","room":"#dev"}"##);
    fail_all(&mut core);
    let refused = core.frames_to(alice);
    assert_eq!(
        (refused.len(), &refused[0]["error"]),
        (1, &"unavailable".into())
    );
    assert_eq!(core.server.room_count(), 0);
    // Nor is a member whose join could not be saved.
    core.send(alice, r##"{"type":"join","id":"j","room":"#dev"}"##);
    core.settle(&mut seqs);
    core.send(bob, r##"{"type":"join","id":"j","room":"#dev"}"##);
    fail_all(&mut core);
    assert_eq!(error(&core.frames_to(bob)[0]).0, "unavailable");
    core.send(alice, r##"{"type":"listMembers","id":"x","room":"#dev"}"##);
    core.settle(&mut seqs);
    let members = core.frames_to(alice);
    assert_eq!(
        members[0]["members"].as_array().unwrap().len(),
        1,
        "{members:?}"
    );
}
