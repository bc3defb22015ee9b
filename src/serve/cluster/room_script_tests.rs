//! The room scripts on a real `redis-server` (Debian's package, started
//! here on a free 127.0.0.1 port, writing no files, killed by its PID when
//! dropped; a test that cannot start it fails, it never skips): each run
//! as the link sends it (the encoder's pipeline, EVALSHA), its answers as
//! the machine gets them, and what it leaves read back as the start-up
//! load reads it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::Value;
use redis::aio::MultiplexedConnection;

use super::encode::Encoder;
use super::events::{self, What};
use super::requests::{Call, Ticket};
use super::room_events::room_log;
use super::room_scripts::{REFUSED, room_key};
use super::rooms::{Loaded, load};
use super::scripts::{CHANNEL, NODES, Scripts};
use super::{RoomSettings, Settings, run_batch};
use crate::protocol::Role;
use crate::server::{StoredMember, StoredMessage, StoredRead, StoredRoom, Write};

// The integration tests' redis-server (tests/net/redis.rs): one way to
// start, wait for and stop it.
#[path = "../../../tests/net/redis.rs"]
#[allow(dead_code)] // not every helper is used here
mod server;

/// How long the redis-server helper waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(10);

type Redis = server::RedisServer;

/// A redis-server of its own, answering.
fn redis() -> Redis {
    Redis::start()
}

fn encoder(node: &str) -> Encoder {
    Encoder {
        node: node.into(),
        settings: Settings {
            history_size: 100,
            login_ttl: Duration::from_secs(60),
            node_timeout: Duration::from_secs(10),
        },
        rooms: RoomSettings {
            history: 3,
            max_members: 3,
        },
        scripts: Arc::new(Scripts::new()),
    }
}

/// Connected, the scripts loaded, and `nodes` registered (as JOIN does).
async fn connect(redis: &Redis, nodes: &[&str]) -> MultiplexedConnection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    super::load(&mut conn, &Scripts::new()).await.unwrap();
    for node in nodes {
        let _: Value = redis::cmd("ZADD")
            .arg(NODES)
            .arg(0)
            .arg(*node)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    conn
}

/// Runs `calls` as the link does: one pipeline, one answer per call.
async fn run(conn: &mut MultiplexedConnection, encoder: &Encoder, calls: &[Call]) -> Vec<Value> {
    let pipeline = encoder.calls(calls);
    let values = run_batch(conn, &encoder.scripts, pipeline.cmds.clone())
        .await
        .unwrap();
    pipeline.answers(values)
}

fn write(write: Write) -> Call {
    Call::RoomWrite {
        ticket: Ticket::for_tests(0),
        write,
    }
}

fn entry(room: &str, id: &str, notice: bool) -> Call {
    Call::RoomAppend {
        ticket: Ticket::for_tests(0),
        room: room.into(),
        id: id.into(),
        timestamp: 1700,
        username: "Ann".into(),
        text: format!("text of {id}").into(),
        notice,
    }
}

fn create(room: &str, owner: &str, epoch: &str) -> [Call; 2] {
    [
        write(Write::Room {
            room: room.into(),
            display: room.into(),
            owner: Some(owner.into()),
            invite_only: false,
            topic: None,
            epoch: epoch.into(),
        }),
        member(room, owner, Role::Owner, None),
    ]
}

fn member(room: &str, name: &str, role: Role, muted_until: Option<u64>) -> Call {
    write(Write::Member {
        room: room.into(),
        name: name.into(),
        role,
        muted_until,
    })
}

fn refused(value: &Value) -> bool {
    matches!(value, Value::ServerError(e) if e.code() == REFUSED)
}

fn ok() -> Value {
    Value::Int(1)
}

fn stored(seq: u64, id: &str, notice: bool) -> StoredMessage {
    StoredMessage {
        seq,
        id: id.into(),
        timestamp: 1700,
        username: "Ann".into(),
        text: format!("text of {id}"),
        notice,
    }
}

fn owner(name: &str) -> StoredMember {
    StoredMember {
        name: name.into(),
        role: Role::Owner,
        muted_until: None,
    }
}

async fn loaded(conn: &mut MultiplexedConnection) -> Loaded {
    load(conn, 3).await.unwrap()
}

async fn smembers(conn: &mut MultiplexedConnection, key: &str) -> Vec<String> {
    let mut found: Vec<String> = redis::cmd("SMEMBERS")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap();
    found.sort();
    found
}

/// The next event published, within a few seconds.
async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
) -> events::Heard {
    let timeout = async {
        smol::Timer::after(Duration::from_secs(5)).await;
        None
    };
    let message = smol::future::or(stream.next(), timeout)
        .await
        .expect("an event within 5 s");
    events::decode(message.get_payload_bytes()).unwrap()
}

#[test]
fn a_room_created_meanwhile_on_another_node_is_refused_with_all_its_run() {
    let redis = redis();
    smol::block_on(async {
        let mut conn = connect(&redis, &["n1", "n2"]).await;
        let (n1, n2) = (encoder("n1"), encoder("n2"));
        assert_eq!(
            run(&mut conn, &n1, &create("#dev", "ann", "E1")).await,
            [ok(), ok()]
        );
        // n2 had not heard of it: its creation (another epoch) and its
        // owner's membership are refused together.
        let answers = run(&mut conn, &n2, &create("#dev", "bob", "E2")).await;
        assert!(answers.iter().all(refused), "{answers:?}");
        // A change of the same room (its epoch) is taken from any node.
        let topic = write(Write::Room {
            room: "#dev".into(),
            display: "#Dev".into(),
            owner: Some("ann".into()),
            invite_only: true,
            topic: Some("hi".into()),
            epoch: "E1".into(),
        });
        assert_eq!(run(&mut conn, &n2, &[topic]).await, [ok()]);
        let loaded = loaded(&mut conn).await;
        assert_eq!(
            loaded.rooms,
            [StoredRoom {
                key: "#dev".into(),
                display: "#Dev".into(),
                owner: Some("ann".into()),
                invite_only: true,
                topic: Some("hi".into()),
                epoch: "E1".into(),
                members: vec![owner("ann")],
                ..StoredRoom::default()
            }]
        );
        // Writes to a room that is not there are refused, not made up.
        let stray = member("#gone", "bob", Role::Member, None);
        assert!(refused(&run(&mut conn, &n1, &[stray]).await[0]));
        assert_eq!(
            smembers(&mut conn, "wschat:{u:bob}:rooms").await,
            Vec::<String>::new()
        );
    });
}

#[test]
fn a_join_past_max_room_members_is_refused_and_a_members_change_is_not() {
    let redis = redis();
    smol::block_on(async {
        let mut conn = connect(&redis, &["n1"]).await;
        let n1 = encoder("n1"); // at most 3 members
        run(&mut conn, &n1, &create("#dev", "ann", "E1")).await;
        let joins = [
            member("#dev", "bob", Role::Member, None),
            member("#dev", "cy", Role::Member, None),
        ];
        assert_eq!(run(&mut conn, &n1, &joins).await, [ok(), ok()]);
        let fourth = member("#dev", "dee", Role::Member, None);
        let answer = run(&mut conn, &n1, &[fourth]).await;
        assert!(refused(&answer[0]), "{answer:?}");
        // Muting a member is no join.
        let mute = member("#dev", "cy", Role::Member, Some(5000));
        assert_eq!(run(&mut conn, &n1, &[mute]).await, [ok()]);
        let members = &loaded(&mut conn).await.rooms[0].members;
        assert_eq!(members.len(), 3);
        assert_eq!(members[2].muted_until, Some(5000));
    });
}

#[test]
fn members_bans_invites_reads_and_entries_come_back_in_the_start_up_load() {
    let redis = redis();
    smol::block_on(async {
        let mut conn = connect(&redis, &["n1"]).await;
        let n1 = encoder("n1");
        run(&mut conn, &n1, &create("#dev", "ann", "E1")).await;
        let s = |t: &str| -> Arc<str> { t.into() };
        let writes = [
            member("#dev", "bob", Role::Operator, Some(u64::MAX)),
            member("#dev", "cy", Role::Member, None),
            write(Write::Unmember {
                room: s("#dev"),
                name: s("cy"),
                by: None,
                reason: None,
            }),
            write(Write::Ban {
                room: s("#dev"),
                name: s("eve"),
                until: None,
            }),
            write(Write::Ban {
                room: s("#dev"),
                name: s("fay"),
                until: Some(99),
            }),
            write(Write::Ban {
                room: s("#dev"),
                name: s("gus"),
                until: None,
            }),
            write(Write::Unban {
                room: s("#dev"),
                name: s("gus"),
            }),
            write(Write::Invite {
                room: s("#dev"),
                name: s("hal"),
            }),
            write(Write::Invite {
                room: s("#dev"),
                name: s("ivy"),
            }),
            write(Write::Uninvite {
                room: s("#dev"),
                name: s("ivy"),
            }),
            write(Write::Read {
                name: s("bob"),
                room: s("#dev"),
                seq: 4,
            }),
            // The lobby: a mute, a ban, a name that left it.
            member("#lobby", "bob", Role::Member, Some(77)),
            write(Write::Ban {
                room: s("#lobby"),
                name: s("eve"),
                until: None,
            }),
            write(Write::Unmember {
                room: s("#lobby"),
                name: s("cy"),
                by: None,
                reason: None,
            }),
        ];
        let answers = run(&mut conn, &n1, &writes).await;
        assert!(answers.iter().all(|a| *a == ok()), "{answers:?}");
        let entries: Vec<Call> = (1..=5)
            .map(|n| entry("#dev", &format!("e{n}"), n == 2))
            .collect();
        run(&mut conn, &n1, &entries).await;
        // bob's name is held (ann's expired long ago: Redis dropped it).
        let secret = "ab".repeat(32);
        let _: Value = redis::cmd("HSET")
            .arg("wschat:name:bob")
            .arg(&["display", "Bob", "secret", &secret, "expires", "0"][..])
            .query_async(&mut conn)
            .await
            .unwrap();
        let loaded = loaded(&mut conn).await;
        let bob = crate::server::StoredName {
            key: "bob".into(),
            display: "Bob".into(),
            secret: crate::server::SecretHash([0xab; 32]),
            expires_at: None,
        };
        assert_eq!(loaded.names, [bob]);
        let dev = StoredRoom {
            key: "#dev".into(),
            display: "#dev".into(),
            owner: Some("ann".into()),
            invite_only: false,
            topic: None,
            epoch: "E1".into(),
            last_seq: 5,
            // The latest --room-history (3) of them.
            messages: vec![
                stored(3, "e3", false),
                stored(4, "e4", false),
                stored(5, "e5", false),
            ],
            members: vec![
                owner("ann"),
                StoredMember {
                    name: "bob".into(),
                    role: Role::Operator,
                    muted_until: Some(u64::MAX),
                },
            ],
            bans: vec![("eve".into(), None), ("fay".into(), Some(99))],
            invites: vec!["hal".into()],
        };
        let lobby = StoredRoom {
            key: "#lobby".into(),
            display: "#lobby".into(),
            members: vec![StoredMember {
                name: "bob".into(),
                role: Role::Member,
                muted_until: Some(77),
            }],
            bans: vec![("eve".into(), None)],
            ..StoredRoom::default()
        };
        assert_eq!(loaded.rooms, [dev, lobby]);
        let read = StoredRead {
            name: "bob".into(),
            room: "#dev".into(),
            seq: 4,
        };
        assert_eq!(loaded.reads, [read]);
        assert_eq!(loaded.left_lobby, ["cy"]);
        // Each name knows its rooms, for its release.
        assert_eq!(
            smembers(&mut conn, "wschat:{u:bob}:rooms").await,
            ["#dev", "#lobby"]
        );
        // cy left #dev, and the lobby (a mark its release takes too).
        assert_eq!(smembers(&mut conn, "wschat:{u:cy}:rooms").await, ["#lobby"]);
        assert_eq!(smembers(&mut conn, "wschat:{u:hal}:rooms").await, ["#dev"]);
    });
}

#[test]
fn entries_are_numbered_per_room_one_script_call_per_run() {
    let redis = redis();
    smol::block_on(async {
        let mut conn = connect(&redis, &["n1"]).await;
        let n1 = encoder("n1");
        run(&mut conn, &n1, &create("#a", "ann", "E1")).await;
        run(&mut conn, &n1, &create("#b", "ann", "E2")).await;
        let first = [
            entry("#a", "a1", false),
            entry("#b", "b1", false),
            entry("#a", "a2", true),
        ];
        assert_eq!(n1.calls(&first).cmds.len(), 1);
        let n = |seq| Value::Int(seq);
        assert_eq!(run(&mut conn, &n1, &first).await, [n(1), n(1), n(2)]);
        let second = [
            entry("#b", "b2", false),
            entry("#none", "x", false),
            entry("#a", "a3", false),
        ];
        let answers = run(&mut conn, &n1, &second).await;
        assert_eq!(answers[0], n(2));
        assert!(refused(&answers[1]), "{answers:?}");
        assert_eq!(answers[2], n(3));
        let log: Value = redis::cmd("XRANGE")
            .arg(room_key("#a", "log"))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        let log: Vec<_> = room_log(&log)
            .into_iter()
            .map(|(m, node)| (m.seq, m.id, m.notice, node))
            .collect();
        assert_eq!(
            log,
            [
                (1, "a1".to_owned(), false, "n1".to_owned()),
                (2, "a2".into(), true, "n1".into()),
                (3, "a3".into(), false, "n1".into())
            ]
        );
        // What a reconnect reads to learn what it missed.
        let seqs = run_batch(&mut conn, &n1.scripts, vec![n1.room_seqs()])
            .await
            .unwrap();
        let mut seqs = super::room_events::seqs(&seqs[0]);
        seqs.sort();
        assert_eq!(seqs, [("#a".to_owned(), 3), ("#b".to_owned(), 2)]);
    });
}

#[test]
fn an_entry_of_no_room_is_refused_and_leaves_no_key_behind() {
    let redis = redis();
    smol::block_on(async {
        let mut conn = connect(&redis, &["n1"]).await;
        let n1 = encoder("n1");
        run(&mut conn, &n1, &create("#a", "ann", "E1")).await;
        let batch = [entry("#none", "x", false), entry("#a", "a1", false)];
        let answers = run(&mut conn, &n1, &batch).await;
        assert!(refused(&answers[0]), "{answers:?}");
        assert_eq!(answers[1], Value::Int(1));
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("wschat:{r:#none}*")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(keys, Vec::<String>::new());
    });
}

#[test]
fn what_the_room_scripts_publish_decodes_back_as_they_ran() {
    let redis = redis();
    smol::block_on(async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port)).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe(CHANNEL).await.unwrap();
        let mut conn = connect(&redis, &["n\"1"]).await;
        let n1 = encoder("n\"1");
        let created = create("#dev", "ann", "E1");
        let batch = [
            created[0].clone(),
            created[1].clone(),
            entry("#dev", "d1", true),
            entry("#dev", "d2", false),
            write(Write::Release { key: "bob".into() }),
        ];
        run(&mut conn, &n1, &batch).await;
        // Refused: nothing published.
        run(&mut conn, &n1, &create("#dev", "bob", "E2")).await;
        run(&mut conn, &n1, &[entry("#dev", "d3", false)]).await;
        let mut heard = Vec::new();
        let mut stream = pubsub.on_message();
        for _ in 0..4 {
            heard.push(next_event(&mut stream).await);
        }
        assert!(heard.iter().all(|h| h.origin == "n\"1"));
        let what: Vec<What> = heard.into_iter().map(|h| h.what).collect();
        let Call::RoomWrite { write: room, .. } = &created[0] else {
            unreachable!()
        };
        let Call::RoomWrite { write: owner, .. } = &created[1] else {
            unreachable!()
        };
        assert_eq!(
            what,
            [
                What::Writes(vec![room.clone(), owner.clone()]),
                What::RoomEntries(vec![(
                    "#dev".into(),
                    vec![stored(1, "d1", true), stored(2, "d2", false)]
                )]),
                What::Writes(vec![Write::Release { key: "bob".into() }]),
                What::RoomEntries(vec![("#dev".into(), vec![stored(3, "d3", false)])]),
            ]
        );
    });
}

#[test]
fn a_released_name_takes_its_rooms_rows_and_conversations_with_it() {
    let redis = redis();
    smol::block_on(async {
        let mut conn = connect(&redis, &["n1"]).await;
        let n1 = encoder("n1");
        let s = |t: &str| -> Arc<str> { t.into() };
        let dm = "@ann\nbob";
        let mut batch = create("#dev", "ann", "E1").to_vec();
        batch.extend([
            member("#dev", "bob", Role::Member, None),
            write(Write::Room {
                room: s(dm),
                display: s("ann, bob"),
                owner: None,
                invite_only: true,
                topic: None,
                epoch: s("E2"),
            }),
            member(dm, "ann", Role::Member, None),
            member(dm, "bob", Role::Member, None),
            write(Write::Ban {
                room: s("#dev"),
                name: s("ann"),
                until: None,
            }),
            member("#lobby", "ann", Role::Member, Some(50)),
            write(Write::Unmember {
                room: s("#lobby"),
                name: s("ann"),
                by: None,
                reason: None,
            }),
            write(Write::Read {
                name: s("ann"),
                room: s("#dev"),
                seq: 1,
            }),
            entry(dm, "hello", false),
        ]);
        run(&mut conn, &n1, &batch).await;
        assert_eq!(
            smembers(&mut conn, "wschat:{u:bob}:rooms").await,
            ["#dev", dm]
        );
        let answers = run(&mut conn, &n1, &[write(Write::Release { key: s("ann") })]).await;
        assert_eq!(answers, [ok()]);
        let loaded = loaded(&mut conn).await;
        // The conversation is gone, every key of it; #dev has no owner,
        // and ann's ban stays.
        assert_eq!(
            loaded
                .rooms
                .iter()
                .map(|r| r.key.as_str())
                .collect::<Vec<_>>(),
            ["#dev", "#lobby"]
        );
        let dev = &loaded.rooms[0];
        assert_eq!((dev.owner.as_deref(), dev.members.len()), (None, 1));
        assert_eq!(dev.bans, [("ann".to_owned(), None)]);
        assert_eq!(loaded.rooms[1].members, []);
        assert_eq!((loaded.reads.len(), loaded.left_lobby.len()), (0, 0));
        for part in ["meta", "log", "members"] {
            let exists: u64 = redis::cmd("EXISTS")
                .arg(room_key(dm, part))
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(exists, 0, "{part}");
        }
        assert_eq!(
            smembers(&mut conn, "wschat:{u:ann}:rooms").await,
            Vec::<String>::new()
        );
        assert_eq!(smembers(&mut conn, "wschat:{u:bob}:rooms").await, ["#dev"]);
        // An unregistered node changes nothing (Redis lost its keys).
        let stranger = encoder("n9");
        let answers = run(&mut conn, &stranger, &create("#x", "ann", "E3")).await;
        assert!(
            answers
                .iter()
                .all(|a| matches!(a, Value::ServerError(e) if e.code() == "WSCHAT_LOST")),
            "{answers:?}"
        );
    });
}

#[test]
fn a_name_expired_logged_out_or_claimed_afresh_takes_its_rooms_with_it_for_every_node() {
    let redis = redis();
    smol::block_on(async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port)).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe(CHANNEL).await.unwrap();
        let mut conn = connect(&redis, &["n1"]).await;
        let n1 = encoder("n1");
        let mut batch = create("#dev", "ann", "E1").to_vec();
        batch.push(member("#dev", "bob", Role::Member, None));
        batch.push(member("#dev", "cy", Role::Member, None));
        run(&mut conn, &n1, &batch).await;
        let other = conn.clone();
        let redis_cmd = async |words: &[&str]| {
            let mut cmd = redis::cmd(words[0]);
            cmd.arg(&words[1..]);
            let _: Value = cmd.query_async(&mut other.clone()).await.unwrap();
        };
        // ann's TTL ran out (as DISCONNECT leaves a name): the heartbeat
        // sweeps it.
        redis_cmd(&[
            "HSET",
            "wschat:name:ann",
            "display",
            "Ann",
            "secret",
            "s",
            "expires",
            "1",
        ])
        .await;
        redis_cmd(&["ZADD", "wschat:expiring", "1", "ann"]).await;
        let beat = run_batch(&mut conn, &n1.scripts, vec![n1.heartbeat()])
            .await
            .unwrap();
        assert!(matches!(beat[0], Value::Array(_)), "{beat:?}");
        // bob's name expired and is claimed afresh before any sweep.
        let reserve = Call::Reserve {
            ticket: Ticket::for_tests(0),
            key: "bob".into(),
            display: "Bob".into(),
            offered: String::new(),
            fresh: "f".into(),
            location: "here".into(),
            timestamp: 1700,
        };
        let answer = run(&mut conn, &n1, &[reserve]).await;
        // Fresh, and an earlier holder's rooms went (this node's core is
        // told with the answer).
        let answer: Vec<String> = answer[0]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(events::text)
            .collect();
        assert_eq!(answer, ["fresh", "Bob", "1"]);
        // cy logs out (v2).
        redis_cmd(&[
            "HSET",
            "wschat:name:cy",
            "display",
            "Cy",
            "secret",
            "s2",
            "expires",
            "0",
        ])
        .await;
        let logout = Call::Logout {
            ticket: Ticket::for_tests(0),
            key: "cy".into(),
            display: "Cy".into(),
            secret: "s2".into(),
        };
        assert_eq!(run(&mut conn, &n1, &[logout]).await, [Value::Int(2)]);
        let dev = &loaded(&mut conn).await.rooms[0];
        assert_eq!((dev.owner.as_deref(), dev.members.len()), (None, 0));
        // The other nodes hear each release; a sweep's, every node (origin
        // "").
        let mut stream = pubsub.on_message();
        let mut released = Vec::new();
        for _ in 0..6 {
            let heard = next_event(&mut stream).await;
            if let What::Writes(writes) = heard.what {
                let releases = writes
                    .into_iter()
                    .filter(|w| matches!(w, Write::Release { .. }));
                released.extend(releases.map(|w| (heard.origin.clone(), w)));
            }
        }
        let release =
            |origin: &str, key: &str| (origin.to_owned(), Write::Release { key: key.into() });
        assert_eq!(
            released,
            [
                release("", "ann"),
                release("n1", "bob"),
                release("n1", "cy")
            ]
        );
    });
}
