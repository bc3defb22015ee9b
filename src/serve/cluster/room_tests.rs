//! Rooms through the Redis link on a virtual clock, without Redis: other
//! nodes' room entries and writes reach the core once, in each room's
//! order; what pub/sub lost of a room is fetched from its log; this node's
//! own come back as answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use super::Settings;
use super::machine::{Command, CommandId, RedisLink, Status};
use super::requests::{Answer, Call, Failed, Remote, StoredMessage, Ticket, ToCore};
use crate::protocol::Role;
use crate::server::{StoredRoom, Write};

fn link(now: Instant) -> (RedisLink, CommandId) {
    let settings = Settings {
        history_size: 100,
        login_ttl: Duration::from_secs(60),
        node_timeout: Duration::from_secs(10),
    };
    let (mut link, conn) = RedisLink::joined(
        "redis://test".into(),
        "me".into(),
        "E".into(),
        settings,
        0,
        now,
    );
    let room = |key: &str, last_seq| StoredRoom {
        key: key.into(),
        display: key.into(),
        epoch: "E1".into(),
        last_seq,
        ..StoredRoom::default()
    };
    link.load_rooms(&[room("#a", 5), room("#b", 0), room("#lobby", 0)]);
    (link, conn)
}

fn commands(link: &mut RedisLink) -> Vec<Command> {
    std::iter::from_fn(|| link.poll_command()).collect()
}

/// What reached the core, as short strings: `ROOM:SEQ` for an entry,
/// `w:ROOM:NAME` for a member write, `own:SEQ` for an answer.
fn to_core(link: &mut RedisLink) -> Vec<String> {
    std::iter::from_fn(|| link.poll_to_core())
        .map(|reply| match reply {
            ToCore::Remote(Remote::RoomEntry { room, message }) => {
                format!("{room}:{}", message.seq)
            }
            ToCore::Remote(Remote::Write(Write::Member { room, name, .. })) => {
                format!("w:{room}:{name}")
            }
            ToCore::Answer(Answer::Appended(_, Ok(seq))) => format!("own:{seq}"),
            ToCore::Answer(Answer::Written(_, Ok(()))) => "written".into(),
            ToCore::Answer(Answer::Written(_, Err(Failed(why)))) => format!("refused: {why}"),
            other => format!("{other:?}"),
        })
        .collect()
}

fn entry_json(seq: u64) -> String {
    format!(r#"["id{seq}",1700,"bob","text {seq}",false]"#)
}

/// Entries `seqs` (consecutive) of `room`, as ROOM_APPEND publishes them.
fn entries(node: &str, room: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<u8> {
    let first = *seqs.start();
    let entries: Vec<String> = seqs.map(entry_json).collect();
    format!(
        r#"["R","{node}",[["{room}",{first},[{}]]]]"#,
        entries.join(",")
    )
    .into_bytes()
}

fn member_write(node: &str, room: &str, name: &str) -> Vec<u8> {
    format!(r#"["W","{node}",[["member","{room}","{name}","member",null]]]"#).into_bytes()
}

fn bulk(text: &str) -> Value {
    Value::BulkString(text.as_bytes().to_vec())
}

/// Entry `seq` of `node` as XRANGE returns it from a room's log.
fn logged(node: &str, seq: u64) -> Value {
    Value::Array(vec![
        bulk(&format!("{seq}-0")),
        Value::Array(vec![
            bulk("n"),
            bulk(node),
            bulk("d"),
            bulk(&entry_json(seq)),
        ]),
    ])
}

#[test]
fn other_nodes_room_entries_reach_the_core_once_in_each_rooms_order() {
    let t0 = Instant::now();
    let (mut link, conn) = link(t0);
    // #a is at 5: 6 and 7 come in one run, #b's first in another.
    link.handle_published(conn, &entries("other", "#b", 1..=1), t0);
    link.handle_published(conn, &entries("other", "#a", 6..=7), t0);
    assert_eq!(to_core(&mut link), ["#b:1", "#a:6", "#a:7"]);
    // Heard again (a fill overlapping the subscription): not twice.
    link.handle_published(conn, &entries("other", "#a", 7..=7), t0);
    // An older entry than the room's start: not at all.
    link.handle_published(conn, &entries("other", "#a", 4..=4), t0);
    assert_eq!(to_core(&mut link), Vec::<String>::new());
    assert_eq!(commands(&mut link), []);
}

#[test]
fn what_pub_sub_lost_of_a_room_is_fetched_from_its_log_writes_keeping_their_place() {
    let t0 = Instant::now();
    let (mut link, conn) = link(t0);
    // 6 was lost; 7 came, then a member joined (after 7, in Redis's order).
    link.handle_published(conn, &entries("other", "#a", 7..=7), t0);
    link.handle_published(conn, &member_write("other", "#a", "cy"), t0);
    // Another room is not held up by #a's gap.
    link.handle_published(conn, &member_write("other", "#b", "dee"), t0);
    assert_eq!(to_core(&mut link), ["w:#b:dee"]);
    let fill = CommandId(1);
    assert_eq!(
        commands(&mut link),
        [Command::FillRoom {
            id: fill,
            room: "#a".into(),
            from: 6,
            to: 7
        }]
    );
    let log = Value::Array(vec![logged("other", 6), logged("other", 7)]);
    link.handle_reply(fill, Ok(vec![log]), t0);
    assert_eq!(to_core(&mut link), ["#a:6", "#a:7", "w:#a:cy"]);
    assert_eq!(commands(&mut link), []);
}

#[test]
fn this_nodes_own_entries_and_writes_come_back_as_answers_not_as_remotes() {
    let t0 = Instant::now();
    let (mut link, conn) = link(t0);
    let entry = Call::RoomAppend {
        ticket: Ticket::for_tests(1),
        room: "#b".into(),
        id: "id1".into(),
        timestamp: 1700,
        username: "bob".into(),
        text: "text 1".into(),
        notice: false,
    };
    let join = Call::RoomWrite {
        ticket: Ticket::for_tests(2),
        write: Write::Member {
            room: Arc::from("#b"),
            name: Arc::from("me"),
            role: Role::Member,
            muted_until: None,
        },
    };
    link.handle_requests([Ok(join), Ok(entry)], t0);
    let [Command::Calls { id, .. }]: [Command; 1] = commands(&mut link).try_into().unwrap() else {
        panic!("one batch");
    };
    // The echoes come before the reply: held, not delivered as remotes.
    link.handle_published(conn, &member_write("me", "#b", "me"), t0);
    link.handle_published(conn, &entries("me", "#b", 1..=1), t0);
    assert_eq!(to_core(&mut link), Vec::<String>::new());
    link.handle_reply(id, Ok(vec![Value::Int(1), Value::Int(1)]), t0);
    assert_eq!(to_core(&mut link), ["written", "own:1"]);
    // Another node's next entry follows ours.
    link.handle_published(conn, &entries("other", "#b", 2..=2), t0);
    assert_eq!(to_core(&mut link), ["#b:2"]);
}

#[test]
fn a_room_write_redis_refused_fails_with_why_and_a_room_made_later_is_numbered_from_one() {
    let t0 = Instant::now();
    let (mut link, conn) = link(t0);
    let create = Call::RoomWrite {
        ticket: Ticket::for_tests(1),
        write: Write::DropRoom {
            room: Arc::from("#a"),
        },
    };
    link.handle_requests([Ok(create)], t0);
    let [Command::Calls { id, .. }]: [Command; 1] = commands(&mut link).try_into().unwrap() else {
        panic!("one batch");
    };
    let refusal =
        redis::parse_redis_value(b"-WSCHAT_REFUSED #a was created meanwhile\r\n").unwrap();
    link.handle_reply(id, Ok(vec![refusal]), t0);
    assert_eq!(to_core(&mut link), ["refused: #a was created meanwhile"]);
    // #c was made on another node after this one started: its entries
    // are numbered from 1, its creation goes to the core first.
    let created = br##"["W","other",[["room","#c","#c",null,false,null,"E9"]]]"##;
    link.handle_published(conn, created, t0);
    link.handle_published(conn, &entries("other", "#c", 1..=2), t0);
    let got = to_core(&mut link);
    assert!(got[0].contains("Room"), "{got:?}");
    assert_eq!(got[1..], ["#c:1", "#c:2"]);
}

#[test]
fn room_writes_and_entries_decode_as_the_node_encodes_them() {
    use super::room_events::{decode_writes, write_json, writes_event};
    let s = |t: &str| -> Arc<str> { t.into() };
    let writes = [
        Write::Room {
            room: s("@a\nb"),
            display: s("a, \"b\""),
            owner: None,
            invite_only: true,
            topic: Some(s("t")),
            epoch: s("E"),
        },
        Write::Member {
            room: s("#x"),
            name: s("a"),
            role: Role::Operator,
            muted_until: Some(u64::MAX),
        },
        Write::Unmember {
            room: s("#x"),
            name: s("a"),
            by: None,
            reason: None,
        },
        Write::Ban {
            room: s("#x"),
            name: s("a"),
            until: None,
        },
        Write::Unban {
            room: s("#x"),
            name: s("a"),
        },
        Write::Invite {
            room: s("#x"),
            name: s("a"),
        },
        Write::Uninvite {
            room: s("#x"),
            name: s("a"),
        },
        Write::Read {
            name: s("a"),
            room: s("#x"),
            seq: 9,
        },
        Write::DropRoom { room: s("#x") },
        Write::Release { key: s("a") },
    ];
    let event = writes_event("n1", writes.iter());
    assert_eq!(
        decode_writes(event.as_bytes()),
        Ok(("n1".into(), writes.to_vec()))
    );
    assert_eq!(write_json(&Write::Alive { at: 1 }), None);
    for bad in [
        &br#"["W","n1",[]]"#[..],
        br##"["W","n1",[["member","#x","a","king",null]]]"##,
        br##"["W","n1",[["ban","#x","a"]]]"##,
        br##"["W","n1",[["read","a","#x","9"]]]"##,
        br##"["W","n1",[["shout","#x","a"]]]"##,
        br##"["R","n1",[["#x",1,[]]]]"##,
        br##"["R","n1",[["#x",1,[["id",1,"u","t"]]]]]"##,
    ] {
        assert!(
            super::events::decode(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let heard = super::events::decode(&entries("n1", "#x", 3..=4)).unwrap();
    let message = |seq| StoredMessage {
        seq,
        id: format!("id{seq}"),
        timestamp: 1700,
        username: "bob".into(),
        text: format!("text {seq}"),
        notice: false,
    };
    assert_eq!(
        heard.what,
        super::events::What::RoomEntries(vec![("#x".into(), vec![message(3), message(4)])])
    );
}

#[test]
fn after_a_reconnect_what_pub_sub_lost_of_each_known_room_is_fetched() {
    let t0 = Instant::now();
    let (mut link, conn) = link(t0);
    link.handle_unsubscribed(conn, t0);
    let retry = link.poll_timeout().unwrap();
    link.handle_timeout(retry);
    let connect = commands(&mut link)
        .into_iter()
        .find_map(|c| match c {
            Command::Connect { id } => Some(id),
            _ => None,
        })
        .unwrap();
    link.handle_connected(connect, retry);
    link.handle_held_names(1, Vec::new(), 0, retry);
    let [Command::Join { id: join, .. }]: [Command; 1] = commands(&mut link).try_into().unwrap()
    else {
        panic!("a JOIN");
    };
    let joined = Value::Array(vec![
        bulk("E"),
        Value::Int(0),
        Value::Array(vec![]),
        Value::Array(vec![]),
        Value::Array(vec![]),
    ]);
    link.handle_reply(join, Ok(vec![joined]), retry);
    let [Command::RoomSeqs { id: seqs }]: [Command; 1] = commands(&mut link).try_into().unwrap()
    else {
        panic!("the rooms' seqs asked");
    };
    // #a went on to 7 meanwhile; #b did not; #new was made meanwhile (its
    // creation was not heard here: not fetched).
    let answer = ["#a", "7", "#b", "0", "#new", "3"].map(bulk).to_vec();
    link.handle_reply(seqs, Ok(vec![Value::Array(answer)]), retry);
    let fill = match commands(&mut link).as_slice() {
        [Command::FillRoom { id, room, from, to }] => {
            assert_eq!((&**room, *from, *to), ("#a", 6, 7));
            *id
        }
        other => panic!("{other:?}"),
    };
    let log = Value::Array(vec![logged("other", 6), logged("other", 7)]);
    link.handle_reply(fill, Ok(vec![log]), retry);
    let got: Vec<String> = to_core(&mut link)
        .into_iter()
        .filter(|r| r.starts_with('#'))
        .collect();
    assert_eq!(got, ["#a:6", "#a:7"]);
    assert_eq!(commands(&mut link), []);
}

/// This node claims "bob" afresh, and Redis answers that the earlier
/// holder's rooms were released with it.
fn claim_fresh_releasing_rooms(link: &mut RedisLink, now: Instant) {
    let reserve = Call::Reserve {
        ticket: Ticket::for_tests(1),
        key: "bob".into(),
        display: "Bob".into(),
        offered: String::new(),
        fresh: "f".into(),
        location: "here".into(),
        timestamp: 1700,
    };
    link.handle_requests([Ok(reserve)], now);
    let [Command::Calls { id, .. }]: [Command; 1] = commands(link).try_into().unwrap() else {
        panic!("one batch");
    };
    let answer = Value::Array(vec![bulk("fresh"), bulk("Bob"), bulk("1")]);
    link.handle_reply(id, Ok(vec![answer]), now);
}

#[test]
fn a_names_earlier_holders_rooms_are_released_to_the_core_before_its_fresh_claim() {
    let t0 = Instant::now();
    let (mut link, _) = link(t0);
    claim_fresh_releasing_rooms(&mut link, t0);
    let got: Vec<ToCore> = std::iter::from_fn(|| link.poll_to_core()).collect();
    let release = ToCore::Remote(Remote::Write(Write::Release { key: "bob".into() }));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], release);
    assert!(
        matches!(got[1], ToCore::Answer(Answer::Claimed(..))),
        "{got:?}"
    );
}

/// This node's creation of `room` as epoch MINE with alice its owner: a
/// run of two writes, sent.
fn create(link: &mut RedisLink, room: &str, now: Instant) -> CommandId {
    let room: Arc<str> = room.into();
    let calls = [
        Call::RoomWrite {
            ticket: Ticket::for_tests(1),
            write: Write::Room {
                room: room.clone(),
                display: room.clone(),
                owner: Some("alice".into()),
                invite_only: false,
                topic: None,
                epoch: "MINE".into(),
            },
        },
        Call::RoomWrite {
            ticket: Ticket::for_tests(2),
            write: Write::Member {
                room,
                name: "alice".into(),
                role: Role::Owner,
                muted_until: None,
            },
        },
    ];
    link.handle_requests(calls.map(Ok), now);
    let [Command::Calls { id, .. }]: [Command; 1] = commands(link).try_into().unwrap() else {
        panic!("one batch");
    };
    id
}

fn refused_meanwhile(room: &str) -> Vec<Value> {
    let text = format!("-WSCHAT_REFUSED {room} was created meanwhile on another node\r\n");
    let refusal = redis::parse_redis_value(text.as_bytes()).unwrap();
    vec![refusal.clone(), refusal]
}

fn created_elsewhere(room: &str) -> Vec<u8> {
    format!(r#"["W","other",[["room","{room}","{room}","bob",false,null,"THEIRS"]]]"#).into_bytes()
}

/// What reached the core, a room's creation shown as `room:EPOCH`.
fn to_core_creations(link: &mut RedisLink) -> Vec<String> {
    std::iter::from_fn(|| link.poll_to_core())
        .map(|reply| match reply {
            ToCore::Remote(Remote::Write(Write::Room { room, epoch, .. })) => {
                format!("room {room}:{epoch}")
            }
            ToCore::Answer(Answer::Written(_, Err(Failed(why)))) => format!("refused: {why}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_refused_creation_waits_for_the_winning_creation_so_the_core_knows_the_room() {
    let t0 = Instant::now();
    let (mut link, conn) = link(t0);
    let id = create(&mut link, "#new", t0);
    link.handle_reply(id, Ok(refused_meanwhile("#new")), t0);
    // Not yet: the other node's creation is on its way.
    assert_eq!(to_core_creations(&mut link), Vec::<String>::new());
    assert_eq!(link.poll_timeout(), Some(t0 + super::rooms::REFUSAL_HOLD));
    let t1 = t0 + Duration::from_millis(3);
    link.handle_published(conn, &created_elsewhere("#new"), t1);
    let why = "refused: #new was created meanwhile on another node";
    assert_eq!(
        to_core_creations(&mut link),
        ["room #new:THEIRS", why, why],
        "the creation first, then the refusals of the whole run"
    );
    // Nothing is left to answer when the hold would have ended.
    link.handle_timeout(t0 + super::rooms::REFUSAL_HOLD);
    assert_eq!(to_core_creations(&mut link), Vec::<String>::new());
}

#[test]
fn a_creation_heard_before_the_refusal_comes_before_it_and_one_never_heard_is_answered_in_time() {
    let t0 = Instant::now();
    let (mut link, conn) = link(t0);
    // Heard first (pub/sub overtook the reply).
    let id = create(&mut link, "#early", t0);
    link.handle_published(conn, &created_elsewhere("#early"), t0);
    link.handle_reply(id, Ok(refused_meanwhile("#early")), t0);
    let why = "refused: #early was created meanwhile on another node";
    assert_eq!(
        to_core_creations(&mut link),
        ["room #early:THEIRS", why, why]
    );
    // Never heard (its publish lost): answered once the hold is over.
    let id = create(&mut link, "#lost", t0);
    link.handle_reply(id, Ok(refused_meanwhile("#lost")), t0);
    let almost = t0 + super::rooms::REFUSAL_HOLD - Duration::from_millis(1);
    link.handle_timeout(almost);
    assert_eq!(to_core_creations(&mut link), Vec::<String>::new());
    link.handle_timeout(t0 + super::rooms::REFUSAL_HOLD);
    let why = "refused: #lost was created meanwhile on another node";
    assert_eq!(to_core_creations(&mut link), [why, why]);
}

/// The JOIN script's answer: epoch "E", `seq` 0, nothing else.
fn joined_answer() -> Value {
    let empty = || Value::Array(vec![]);
    Value::Array(vec![bulk("E"), Value::Int(0), empty(), empty(), empty()])
}

#[test]
fn a_shard_of_rooms_only_rejoins_holding_no_names_and_leaves_releases_to_the_home() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let (link, conn) = link(t0);
    let mut link = link.rooms_only();
    // Another node's release heard on this shard: the home told every
    // core already; a room's write heard here goes on as ever.
    let release = br#"["W","other",[["release","bob"]]]"#;
    link.handle_published(conn, release, t0);
    link.handle_published(conn, &member_write("other", "#a", "carol"), t0);
    assert_eq!(to_core(&mut link), ["w:#a:carol"]);

    // Lost, and reached again: the core is not asked what it holds (the
    // home holds the names); the JOIN registers this node, holding none.
    link.handle_unsubscribed(conn, t0);
    assert_eq!(commands(&mut link), [Command::Close]);
    link.handle_timeout(t0 + ms(100));
    let [Command::Connect { id: connect }]: [Command; 1] = commands(&mut link).try_into().unwrap()
    else {
        panic!("a connect");
    };
    link.handle_connected(connect, t0 + ms(110));
    assert_eq!(to_core(&mut link), Vec::<String>::new());
    let join = match commands(&mut link).as_slice() {
        [Command::Join { id, join }] => {
            assert_eq!((join.rejoining, join.names.as_slice()), (true, &[][..]));
            *id
        }
        other => panic!("{other:?}"),
    };
    // A room's entry asked meanwhile waits for the JOIN, then goes (after
    // the rooms' seqs are asked, to fetch what pub/sub lost).
    let append = Call::RoomAppend {
        ticket: Ticket::for_tests(7),
        room: "#a".into(),
        id: "m".into(),
        timestamp: 1700,
        username: "bob".into(),
        text: "hi".into(),
        notice: false,
    };
    link.handle_requests([Ok(append.clone())], t0 + ms(111));
    assert_eq!(commands(&mut link), []);
    link.handle_reply(join, Ok(vec![joined_answer()]), t0 + ms(112));
    let got = commands(&mut link);
    assert!(
        matches!(got.as_slice(), [Command::RoomSeqs { .. }, Command::Calls { calls, .. }] if *calls == [append]),
        "{got:?}"
    );
    assert_eq!(
        link.poll_status(),
        Some(Status::Unreachable(
            "Redis at redis://test cannot be reached: the subscription ended".into()
        ))
    );
    assert_eq!(link.poll_status(), Some(Status::Reachable));
}

#[test]
fn the_home_says_which_releases_this_node_carries_to_the_other_shards() {
    let t0 = Instant::now();
    let (mut link, conn) = link(t0);
    let released = |link: &mut RedisLink| -> Vec<Arc<str>> {
        std::iter::from_fn(|| link.poll_released()).collect()
    };
    // Its own fresh claim released an earlier holder's rooms: before its
    // answer reaches the core.
    claim_fresh_releasing_rooms(&mut link, t0);
    assert_eq!(released(&mut link), [Arc::from("bob")]);
    // The sweep's (origin ""): every node hears it, and carries it.
    link.handle_published(conn, br#"["W","",[["release","carol"]]]"#, t0);
    // Another node's: its node carries it; this core hears it all the same.
    link.handle_published(conn, br#"["W","other",[["release","dave"]]]"#, t0);
    assert_eq!(released(&mut link), [Arc::from("carol")]);
    let heard: Vec<String> = to_core(&mut link)
        .into_iter()
        .filter(|r| r.contains("Release"))
        .collect();
    assert_eq!(heard.len(), 3, "{heard:?}");

    // A shard of rooms only carries nothing and tells the core nothing.
    let (rooms, conn) = self::link(t0);
    let mut rooms = rooms.rooms_only();
    rooms.handle_published(conn, br#"["W","",[["release","carol"]]]"#, t0);
    assert_eq!(released(&mut rooms), Vec::<Arc<str>>::new());
    assert_eq!(to_core(&mut rooms), Vec::<String>::new());
}
