//! The Redis link on a virtual clock, without Redis: what the machine asks
//! of Redis and tells the core, given replies, published events and time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use super::machine::{Command, CommandId, Join, JoinName, RedisLink, Status};
use super::requests::{Call, Claim, Failed, HeldName, Remote, StoredMessage, Ticket, ToCore, hex};
use super::{Settings, check_url};
use crate::protocol::LeaveReason;
use crate::server::{Online, Reserve, SecretHash};

const NODE_TIMEOUT: Duration = Duration::from_secs(10);

fn link(last_seq: u64, now: Instant) -> (RedisLink, CommandId) {
    let settings = Settings {
        history_size: 100,
        login_ttl: Duration::from_secs(60),
        node_timeout: NODE_TIMEOUT,
    };
    RedisLink::joined(
        "redis://test".into(),
        "me".into(),
        "E".into(),
        settings,
        last_seq,
        now,
    )
}

fn commands(link: &mut RedisLink) -> Vec<Command> {
    std::iter::from_fn(|| link.poll_command()).collect()
}

fn to_core(link: &mut RedisLink) -> Vec<ToCore> {
    std::iter::from_fn(|| link.poll_to_core()).collect()
}

/// The JOIN script's answer: epoch "E", `seq`, and nobody gone, nothing
/// to tell, no one online elsewhere.
fn joined(seq: i64) -> Value {
    Value::Array(vec![
        bulk("E"),
        Value::Int(seq),
        Value::Array(vec![]),
        Value::Array(vec![]),
        Value::Array(vec![]),
    ])
}

fn bulk(text: &str) -> Value {
    Value::BulkString(text.as_bytes().to_vec())
}

fn message(seq: u64) -> StoredMessage {
    StoredMessage {
        seq,
        id: format!("id{seq}"),
        timestamp: 1_000 + seq,
        username: "bob".into(),
        text: format!("text {seq}"),
        notice: false,
    }
}

/// Message `seq` as published by `node`.
fn published(node: &str, seq: u64) -> Vec<u8> {
    let m = message(seq);
    format!(
        r#"["m","{node}","{seq}","{}","{}","{}","{}"]"#,
        m.id, m.timestamp, m.username, m.text
    )
    .into_bytes()
}

/// Message `seq` of `node` as XRANGE returns it.
fn entry(node: &str, seq: u64) -> Value {
    let m = message(seq);
    let fields = [
        "n",
        node,
        "i",
        &m.id,
        "t",
        &m.timestamp.to_string(),
        "u",
        &m.username,
        "x",
        &m.text,
    ];
    Value::Array(vec![
        bulk(&format!("{seq}-0")),
        Value::Array(fields.iter().map(|f| bulk(f)).collect()),
    ])
}

fn remote_message(seq: u64) -> ToCore {
    ToCore::Remote(Remote::Message(message(seq)))
}

#[test]
fn a_gap_is_filled_from_the_history_and_delivered_in_order() {
    let t0 = Instant::now();
    let (mut link, conn) = link(10, t0);
    // 12 arrives, 11 was lost by pub/sub.
    link.handle_published(conn, &published("other", 12), t0);
    assert_eq!(to_core(&mut link), []);
    let fill = CommandId(1);
    assert_eq!(
        commands(&mut link),
        [Command::Fill {
            id: fill,
            from: 11,
            to: 12
        }]
    );
    let history = Value::Array(vec![entry("other", 11), entry("other", 12)]);
    link.handle_reply(fill, Ok(vec![history]), t0);
    assert_eq!(to_core(&mut link), [remote_message(11), remote_message(12)]);
    assert_eq!(commands(&mut link), []);
}

#[test]
fn a_duplicate_event_is_dropped() {
    let t0 = Instant::now();
    let (mut link, conn) = link(10, t0);
    link.handle_published(conn, &published("other", 11), t0);
    assert_eq!(to_core(&mut link), [remote_message(11)]);
    // Heard again (say, pub/sub and a fill both brought it): dropped, and
    // what follows still goes.
    link.handle_published(conn, &published("other", 11), t0);
    link.handle_published(conn, &published("other", 12), t0);
    link.handle_published(conn, &published("other", 12), t0);
    assert_eq!(to_core(&mut link), [remote_message(12)]);
    assert_eq!(commands(&mut link), []);
}

#[test]
fn a_reconnect_registers_again_what_the_core_holds() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let (mut link, conn) = link(10, t0);
    // Bob logs in: the link learns the secret Redis keeps for him.
    let reserve = Call::Reserve {
        ticket: Ticket::for_tests(1),
        key: "bob".into(),
        display: "Bob".into(),
        offered: String::new(),
        fresh: hex(&SecretHash::of("s")),
        location: "127.0.0.1".into(),
        timestamp: 5,
    };
    link.handle_requests([Ok(reserve.clone())], t0);
    let batch = CommandId(1);
    assert_eq!(
        commands(&mut link),
        [Command::Calls {
            id: batch,
            calls: vec![reserve]
        }]
    );
    let claimed = Value::Array(vec![bulk("fresh"), bulk("Bob")]);
    link.handle_reply(batch, Ok(vec![claimed]), t0);
    let answer = Ticket::<Reserve>::for_tests(1).answer(Ok((Claim::Fresh, "Bob".into())));
    assert_eq!(to_core(&mut link), [ToCore::Answer(answer)]);

    // The subscription ends: the link is lost, and made again after the
    // first backoff.
    link.handle_unsubscribed(conn, t0);
    assert_eq!(commands(&mut link), [Command::Close]);
    let reason = "Redis at redis://test cannot be reached: the subscription ended";
    assert_eq!(link.poll_status(), Some(Status::Unreachable(reason.into())));
    assert_eq!(link.poll_timeout(), Some(t0 + ms(100)));
    link.handle_timeout(t0 + ms(99)); // early: nothing
    assert_eq!(commands(&mut link), []);
    link.handle_timeout(t0 + ms(100));
    let connect = CommandId(2);
    assert_eq!(commands(&mut link), [Command::Connect { id: connect }]);

    // Up again: the core is asked what it holds.
    link.handle_connected(connect, t0 + ms(110));
    assert_eq!(to_core(&mut link), [ToCore::HeldNamesWanted(1)]);
    assert_eq!(commands(&mut link), []);
    // Before answering, the core asked `listUsers` (ticket 2); after, a
    // message (ticket 3). Bob has two connections now.
    let append = Call::Append {
        ticket: Ticket::for_tests(3),
        id: "m".into(),
        timestamp: 6,
        username: "Bob".into(),
        text: "hi".into(),
    };
    let online = Call::Online {
        ticket: Ticket::for_tests(2),
    };
    link.handle_requests([Ok(online.clone())], t0 + ms(111));
    link.handle_requests([Ok(append.clone())], t0 + ms(111));
    let held = vec![HeldName {
        key: "bob".into(),
        display: "Bob".into(),
        secret: SecretHash::of("s"),
        connections: 2,
    }];
    link.handle_held_names(1, held, 2, t0 + ms(112));
    // What the core asked before it answered runs before the JOIN...
    let settling = CommandId(3);
    assert_eq!(
        commands(&mut link),
        [Command::Calls {
            id: settling,
            calls: vec![online]
        }]
    );
    link.handle_reply(settling, Ok(vec![Value::Array(vec![])]), t0 + ms(113));
    assert_eq!(
        to_core(&mut link),
        [ToCore::Answer(
            Ticket::<Online>::for_tests(2).answer(Ok(vec![]))
        )]
    );
    // ...then the JOIN, with the names the core holds and their secrets.
    let join = CommandId(4);
    let names = vec![JoinName {
        key: "bob".into(),
        display: "Bob".into(),
        secret: hex(&SecretHash::of("s")),
        connections: 2,
    }];
    let expected = Join {
        epoch: "E".into(),
        rejoining: true,
        delivered: 10,
        names,
    };
    assert_eq!(
        commands(&mut link),
        [Command::Join {
            id: join,
            join: expected
        }]
    );
    let joined = joined(10);
    link.handle_reply(join, Ok(vec![joined]), t0 + ms(114));
    assert_eq!(link.poll_status(), Some(Status::Reachable));
    // ...and what the core asked after its answer, after the JOIN.
    assert_eq!(
        commands(&mut link),
        [Command::Calls {
            id: CommandId(5),
            calls: vec![append]
        }]
    );
}

#[test]
fn a_node_counted_gone_by_the_sweep_registers_again_and_hears_who_left() {
    let t0 = Instant::now();
    let (mut link, conn) = link(10, t0);
    let beat_at = t0 + NODE_TIMEOUT / 5;
    assert_eq!(link.poll_timeout(), Some(beat_at));
    link.handle_timeout(beat_at - Duration::from_millis(1)); // early: nothing
    assert_eq!(commands(&mut link), []);
    link.handle_timeout(beat_at);
    let beat = CommandId(1);
    assert_eq!(commands(&mut link), [Command::Heartbeat { id: beat }]);
    assert_eq!(link.poll_timeout(), Some(beat_at + NODE_TIMEOUT / 5));

    // This node's heartbeat was older than --node-timeout: the sweep
    // counted it gone (and another node with it). It registers again what
    // the core holds.
    let answer = Value::Array(vec![Value::Int(1), Value::Int(2)]);
    link.handle_reply(beat, Ok(vec![answer]), beat_at);
    assert_eq!(to_core(&mut link), [ToCore::HeldNamesWanted(1)]);
    link.handle_held_names(1, Vec::new(), 0, beat_at);
    let expected = Join {
        epoch: "E".into(),
        rejoining: true,
        delivered: 10,
        names: Vec::new(),
    };
    assert_eq!(
        commands(&mut link),
        [Command::Join {
            id: CommandId(2),
            join: expected
        }]
    );
    // The swept node's users leave everyone's presence.
    link.handle_published(conn, br#"["l","dead","Al","disconnected"]"#, beat_at);
    let left = Remote::Left {
        username: Arc::from("Al"),
        reason: LeaveReason::Disconnected,
    };
    assert_eq!(to_core(&mut link), [ToCore::Remote(left)]);
}

/// Loses the link of `link` (its subscription ends) and connects again,
/// up to the core's question; returns the new connection.
fn reconnect(link: &mut RedisLink, conn: CommandId, now: Instant) -> CommandId {
    link.handle_unsubscribed(conn, now);
    let retry = link.poll_timeout().unwrap();
    link.handle_timeout(retry);
    let connect = commands(link)
        .into_iter()
        .find_map(|c| match c {
            Command::Connect { id } => Some(id),
            _ => None,
        })
        .unwrap();
    link.handle_connected(connect, retry);
    connect
}

#[test]
fn while_redis_is_out_of_reach_requests_fail_at_once_and_in_flight_ones_too() {
    let t0 = Instant::now();
    let (mut link, conn) = link(10, t0);
    let online = |n| Call::Online {
        ticket: Ticket::for_tests(n),
    };
    link.handle_requests([Ok(online(1))], t0);
    assert_eq!(
        commands(&mut link),
        [Command::Calls {
            id: CommandId(1),
            calls: vec![online(1)]
        }]
    );
    link.handle_requests([Ok(online(2))], t0); // waits its turn
    link.handle_reply(CommandId(1), Err("connection reset".into()), t0);
    let error = |n, why: &str| {
        let answer = Ticket::<Online>::for_tests(n)
            .answer(Err(Failed(format!("Redis is unreachable: {why}"))));
        ToCore::Answer(answer)
    };
    assert_eq!(
        to_core(&mut link),
        [error(1, "connection reset"), error(2, "connection reset")]
    );
    assert_eq!(commands(&mut link), [Command::Close]);
    link.handle_requests([Ok(online(3))], t0);
    assert_eq!(to_core(&mut link), [error(3, "connection reset")]);
    // A reply of the lost connection, or what it published, is stale.
    link.handle_published(conn, &published("other", 11), t0);
    assert_eq!(to_core(&mut link), []);
    assert_eq!(commands(&mut link), []);
}

#[test]
fn a_heartbeat_in_flight_when_the_link_is_lost_does_not_stop_the_next() {
    let t0 = Instant::now();
    let period = NODE_TIMEOUT / 5;
    let (mut link, conn) = link(10, t0);
    link.handle_timeout(t0 + period);
    assert_eq!(
        commands(&mut link),
        [Command::Heartbeat { id: CommandId(1) }]
    );
    let conn = reconnect(&mut link, conn, t0 + period);
    assert_eq!(to_core(&mut link), [ToCore::HeldNamesWanted(1)]);
    link.handle_held_names(1, Vec::new(), 0, t0 + period);
    let join = match commands(&mut link).as_slice() {
        [Command::Join { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    let joined = joined(10);
    link.handle_reply(join, Ok(vec![joined]), t0 + period);
    // The old connection's beat never answers; the next one goes anyway.
    link.handle_timeout(t0 + 2 * period);
    let beat = CommandId(join.0 + 1);
    assert_eq!(commands(&mut link), [Command::Heartbeat { id: beat }]);
    let _ = conn;
}

#[test]
fn secrets_of_names_no_longer_held_are_forgotten_when_the_core_is_asked() {
    let t0 = Instant::now();
    let (mut link, _conn) = link(10, t0);
    // 1025 logins, each given a name: past 1024 secrets, the core is asked
    // which names it still holds.
    let mut next = 0;
    let mut log_in = |link: &mut RedisLink, key: &str| {
        next += 1;
        let reserve = Call::Reserve {
            ticket: Ticket::for_tests(next),
            key: key.into(),
            display: key.into(),
            offered: String::new(),
            fresh: format!("secret of {key}"),
            location: "127.0.0.1".into(),
            timestamp: 5,
        };
        link.handle_requests([Ok(reserve)], t0);
        let sent = commands(link);
        let [Command::Calls { id, .. }] = sent.as_slice() else {
            panic!("no batch");
        };
        let claimed = Value::Array(vec![bulk("fresh"), bulk(key)]);
        link.handle_reply(*id, Ok(vec![claimed]), t0);
        to_core(link)
    };
    for n in 0..1024 {
        let out = log_in(&mut link, &format!("u{n}"));
        assert!(matches!(out.as_slice(), [ToCore::Answer(..)]), "{out:?}");
    }
    let out = log_in(&mut link, "late");
    assert!(
        matches!(
            out.as_slice(),
            [ToCore::Answer(..), ToCore::HeldNamesWanted(1)]
        ),
        "{out:?}"
    );
    // Learnt after the question: kept whatever the answer says.
    log_in(&mut link, "later");
    let held = |key: &str| HeldName {
        key: key.into(),
        display: key.into(),
        secret: SecretHash::of(key),
        connections: 1,
    };
    link.handle_held_names(1, vec![held("u7")], 1025, t0);
    assert_eq!(commands(&mut link), []);
    // Logging out takes the secret it had; a name forgotten has none.
    let logout = |n, key: &str| {
        Ok(Call::Logout {
            ticket: Ticket::for_tests(n),
            key: key.into(),
            display: key.into(),
            secret: String::new(),
        })
    };
    link.handle_requests(
        [
            logout(1027, "u7"),
            logout(1028, "u8"),
            logout(1029, "later"),
        ],
        t0,
    );
    let sent = commands(&mut link);
    let [Command::Calls { calls, .. }] = sent.as_slice() else {
        panic!("no batch");
    };
    let secrets: Vec<_> = calls
        .iter()
        .map(|call| match call {
            Call::Logout { secret, .. } => secret.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(secrets, ["secret of u7", "", "secret of later"]);
}

#[test]
fn urls_are_redis_or_rediss() {
    assert_eq!(check_url("redis://127.0.0.1:6379/2"), Ok(()));
    assert_eq!(check_url("rediss://redis.example.com"), Ok(()));
    assert_eq!(check_url("redis://:secret@127.0.0.1"), Ok(()));
    for bad in [
        "127.0.0.1:6379",
        "http://x",
        "unix:///tmp/r.sock",
        "redis://h:port",
    ] {
        assert!(check_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn hashes_are_kept_in_hex() {
    let hash = SecretHash::of("s");
    let hex = hex(&hash);
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
}

/// A script's error reply with this code, as Redis sends it.
fn script_error(code: &str) -> Value {
    let value = redis::parse_redis_value(format!("-{code} details\r\n").as_bytes()).unwrap();
    assert!(matches!(value, Value::ServerError(_)), "{value:?}");
    value
}

fn reserve(ticket: u64, key: &str) -> Call {
    Call::Reserve {
        ticket: Ticket::for_tests(ticket),
        key: key.into(),
        display: key.into(),
        offered: String::new(),
        fresh: format!("secret of {key}"),
        location: "127.0.0.1".into(),
        timestamp: 5,
    }
}

#[test]
fn a_redis_that_lost_the_keys_gets_the_held_names_again_and_gives_none_meanwhile() {
    let t0 = Instant::now();
    let (mut link, _conn) = link(10, t0);
    // Redis was flushed: the script did nothing and says so. The login
    // fails (unavailable), and the core is asked what it holds.
    link.handle_requests([Ok(reserve(1, "carol"))], t0);
    let [Command::Calls { id, .. }] = commands(&mut link)[..] else {
        panic!("no batch");
    };
    link.handle_reply(id, Ok(vec![script_error("WSCHAT_LOST")]), t0);
    let out = to_core(&mut link);
    assert!(
        matches!(
            out.as_slice(),
            [ToCore::Answer(answer), ToCore::HeldNamesWanted(1)]
                if *answer == Ticket::<Reserve>::for_tests(1).answer(Err(Failed(
                    "Redis at redis://test lost the cluster's keys: registering again".into()
                )))
        ),
        "{out:?}"
    );
    assert!(
        matches!(link.poll_status(), Some(Status::Rebuilding(_))),
        "not ready while registering again"
    );
    // Another login meanwhile waits for the JOIN.
    link.handle_requests([Ok(reserve(2, "dave"))], t0);
    assert_eq!(commands(&mut link), []);
    let alice = HeldName {
        key: "alice".into(),
        display: "Alice".into(),
        secret: SecretHash::of("a"),
        connections: 1,
    };
    link.handle_held_names(1, vec![alice], 1, t0);
    let names = vec![JoinName {
        key: "alice".into(),
        display: "Alice".into(),
        secret: hex(&SecretHash::of("a")),
        connections: 1,
    }];
    let join = Join {
        epoch: "E".into(),
        rejoining: true,
        delivered: 10,
        names,
    };
    let [Command::Join { id, join: sent }] = &commands(&mut link)[..] else {
        panic!("no JOIN");
    };
    assert_eq!(*sent, join, "alice is registered again with her secret");
    // The JOIN opened the rebuilding window: not ready until it ends.
    let Value::Array(mut joined) = joined(10) else {
        unreachable!()
    };
    joined.push(Value::Int(10_000)); // the rebuilding window still to run, in ms
    let joined = Value::Array(joined);
    link.handle_reply(*id, Ok(vec![joined]), t0);
    assert!(matches!(link.poll_status(), Some(Status::Rebuilding(_))));
    // Dave's login goes now; Redis gives no fresh name while rebuilding.
    let [Command::Calls { id, calls }] = &commands(&mut link)[..] else {
        panic!("no batch");
    };
    assert_eq!(*calls, [reserve(2, "dave")]);
    link.handle_reply(*id, Ok(vec![script_error("WSCHAT_REBUILDING")]), t0);
    let refused = Ticket::<Reserve>::for_tests(2).answer(Err(Failed(
        "the cluster is registering again what it holds".into(),
    )));
    assert_eq!(to_core(&mut link), [ToCore::Answer(refused)]);
    assert_eq!(commands(&mut link), [], "no second JOIN");
    // Ready again when the window ends.
    let rebuilt = t0 + Duration::from_secs(10);
    link.handle_timeout(rebuilt - Duration::from_millis(1));
    assert_eq!(link.poll_status(), None);
    link.handle_timeout(rebuilt);
    assert_eq!(link.poll_status(), Some(Status::Reachable));
}

#[test]
fn a_name_registered_with_the_cores_hash_is_logged_out_with_it() {
    let t0 = Instant::now();
    let (mut link, conn) = link(10, t0);
    // The core holds carol, whose reserve this link never saw (its memory
    // of secrets was pruned, say): she is registered with the core's hash.
    let later = t0 + Duration::from_secs(1);
    reconnect(&mut link, conn, later);
    assert_eq!(to_core(&mut link), [ToCore::HeldNamesWanted(1)]);
    let carol = HeldName {
        key: "carol".into(),
        display: "Carol".into(),
        secret: SecretHash::of("c"),
        connections: 1,
    };
    link.handle_held_names(1, vec![carol], 0, later);
    let join = commands(&mut link)
        .into_iter()
        .find_map(|c| match c {
            Command::Join { id, .. } => Some(id),
            _ => None,
        })
        .expect("a JOIN");
    let joined = joined(10);
    link.handle_reply(join, Ok(vec![joined]), later);
    let _ = commands(&mut link);
    // Her logout frees the name with that hash, not with nothing.
    let logout = Call::Logout {
        ticket: Ticket::for_tests(1),
        key: "carol".into(),
        display: "Carol".into(),
        secret: String::new(),
    };
    link.handle_requests([Ok(logout)], later);
    let sent = commands(&mut link);
    let [Command::Calls { calls, .. }] = sent.as_slice() else {
        panic!("{sent:?}");
    };
    let expected = hex(&SecretHash::of("c"));
    assert!(
        matches!(calls.as_slice(), [Call::Logout { secret, .. }] if *secret == expected),
        "{calls:?}"
    );
}
