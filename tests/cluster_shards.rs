//! Rooms spread over two Redis shards (issue 23): three chat-server nodes
//! given two `--redis-url`s, on real redis-servers started by each test on
//! free 127.0.0.1 ports (the second keeping what it is given on disk, so
//! that it can be SIGKILLed and restarted with its rooms), killed at the
//! end. Every room but the lobby lives on the shard that rendezvous
//! hashing picks; losing a shard makes only its rooms unavailable, says so
//! to users and on /readyz, and they come back with their history.
#![cfg(all(feature = "server", feature = "cluster", target_os = "linux"))]

mod net;
#[path = "common/v3.rs"]
mod v3;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use net::redis::RedisServer;
use net::*;
use serde_json::{Value, json};
use v3::*;

struct Sharded {
    home: RedisServer,
    second: RedisServer,
    nodes: Vec<ServerProcess>,
}

impl Sharded {
    fn start() -> Sharded {
        Sharded::start_with(&[])
    }

    /// Three nodes given `extra` flags too.
    fn start_with(extra: &[&'static str]) -> Sharded {
        let home = RedisServer::start();
        let second = RedisServer::start_persistent();
        let nodes = (0..3)
            .map(|_| {
                let mut args = Sharded::args(&[&home, &second]);
                args.extend(extra);
                let mut node = ServerProcess::launch(&args);
                node.wait_listening();
                node.wait_for_log(|l| l.contains(": this is node "))
                    .unwrap_or_else(|| panic!("never joined Redis: {}", node.log_text()));
                node
            })
            .collect();
        Sharded {
            home,
            second,
            nodes,
        }
    }

    fn args(shards: &[&RedisServer]) -> Vec<&'static str> {
        let mut args = vec!["--node-timeout", "1000ms", "--admin-listen", "127.0.0.1:0"];
        args.extend(NO_RATE_LIMIT);
        for shard in shards {
            args.push("--redis-url");
            args.push(shard.url().leak());
        }
        args
    }

    fn addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].addr
    }

    /// A room key (as `prefix` and a number) that rendezvous hashing
    /// places on the shard `on` (0 the home, 1 the second), computed here
    /// from the shards' ids as `shards.rs` documents it.
    fn room_on(&self, on: usize, prefix: &str) -> String {
        let ids = [&self.home, &self.second].map(|s| s.command(&["GET", "wschat:shard"]));
        // Letters whose pairs no name key folds (as "1" to "l", "rn" to "m").
        let letters = "abefghkpqstxyz".as_bytes();
        (0..letters.len() * letters.len())
            .map(|i| {
                let (a, b) = (letters[i / letters.len()], letters[i % letters.len()]);
                format!("{prefix}{}{}", a as char, b as char)
            })
            .find(|room| {
                let scores = ids.clone().map(|id| score(&id, room));
                (scores[1] > scores[0]) == (on == 1)
            })
            .expect("a room")
    }

    /// Asserts that `room` (a key) lives on shard `on` and not the other.
    fn assert_on(&self, room: &str, on: usize) {
        let held =
            [&self.home, &self.second].map(|s| s.command(&["SISMEMBER", "wschat:rooms", room]));
        let expected = match on {
            0 => ["1", "0"],
            _ => ["0", "1"],
        };
        let all = [&self.home, &self.second].map(|s| s.command(&["SMEMBERS", "wschat:rooms"]));
        assert_eq!(held, expected, "{room:?} (home, second): {all:?}");
    }
}

/// `shards::score`: FNV-1a 64 of `shard \0 room`, then SplitMix64's
/// finalizer (written again here: a change there fails this test).
fn score(shard: &str, room: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in shard.bytes().chain([0]).chain(room.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = hash;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Lists rooms on `v3`'s node until `room` is among them.
fn wait_until_listed(v3: &mut V3, room: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while room_in(&v3.list_rooms(), room).is_none() {
        assert!(Instant::now() < deadline, "{room} never listed");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Three users, one per node, all in `room` (made by the first); its
/// epoch.
fn all_join(users: &mut [V3; 3], room: &str) -> Value {
    users[0].join(room);
    let mut epoch = Value::Null;
    for user in &mut users[1..] {
        wait_until_listed(user, room);
        epoch = user.join(room)["state"]["epoch"].clone();
    }
    epoch
}

/// Each user says something in `room`; every one hears the three in one
/// order. Returns the seqs.
fn talk(users: &mut [V3; 3], room: &str, tag: &str) -> Vec<u64> {
    for (n, user) in users.iter_mut().enumerate() {
        let id = user.id("say");
        user.send(
            json!({"type": "textFromUser", "id": id, "room": room, "text": format!("{tag}{n}")}),
        );
    }
    let heard: Vec<Vec<(u64, String)>> = users
        .iter_mut()
        .map(|user| {
            (0..3)
                .map(|n| {
                    let frame = user.said(&format!("{tag}{n}"));
                    (frame["seq"].as_u64().expect("a seq"), format!("{tag}{n}"))
                })
                .collect::<Vec<_>>()
        })
        .map(|mut heard| {
            heard.sort();
            heard
        })
        .collect();
    assert_eq!(heard[0], heard[1], "{room}: another order on node 1");
    assert_eq!(heard[0], heard[2], "{room}: another order on node 2");
    heard[0].iter().map(|(seq, _)| *seq).collect()
}

/// alice, bob and carol on nodes 0, 1 and 2; bob's secret.
fn users(cluster: &Sharded) -> ([V3; 3], String) {
    let (alice, _) = V3::login_as(cluster.addr(0), "alice");
    let (bob, login) = V3::login_as(cluster.addr(1), "bob");
    let secret = login.message["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let (carol, _) = V3::login_as(cluster.addr(2), "carol");
    ([alice, bob, carol], secret)
}

/// The texts `v3` can page back in `room`, oldest first, with their seqs.
fn held(v3: &mut V3, room: &str) -> Vec<(u64, String)> {
    v3.everything_held(room, 7)
        .iter()
        .filter(|m| m["type"] == "textBroadcast")
        .map(|m| {
            (
                m["seq"].as_u64().expect("a seq"),
                m["message"].as_str().expect("a text").to_owned(),
            )
        })
        .collect()
}

#[test]
fn rooms_spread_over_two_shards_work_on_every_node() {
    let cluster = Sharded::start();
    let (mut users, bob_secret) = users(&cluster);
    let near = cluster.room_on(0, "#near");
    let far = cluster.room_on(1, "#far");
    let mut epochs = Vec::new();
    for (room, on) in [(&near, 0), (&far, 1)] {
        epochs.push(all_join(&mut users, room));
        cluster.assert_on(room, on);
        let seqs = talk(&mut users, room, &format!("{room} hello "));
        assert_eq!(seqs, [1, 2, 3], "{room}");
    }
    // The lobby is the home's, as on one Redis.
    assert_eq!(cluster.second.command(&["EXISTS", "wschat:history"]), "0");
    users[1].say_in("#lobby", "lobby still here");
    users[2].said("lobby still here");

    // Direct messages, wherever each lands.
    let sent = users[0].say_in("@carol", "psst");
    let got = users[2].said("psst");
    assert_eq!(
        (&got["room"], &got["seq"]),
        (&json!("@alice"), &sent["seq"])
    );
    users[2].say_in("@bob", "hi bob");
    assert_eq!(users[1].said("hi bob")["room"], "@carol");

    // bob goes; both rooms go on; he comes back on node 2 and catches up
    // on each, then pages each back to its start.
    let [alice, bob, _] = &mut users;
    drop(std::mem::replace(bob, V3::connect(cluster.addr(1))));
    for i in 0..10 {
        alice.say_in(&near, &format!("near {i}"));
        alice.say_in(&far, &format!("far {i}"));
    }
    let known = json!([
        {"room": near, "epoch": epochs[0], "since": 3},
        {"room": far, "epoch": epochs[1], "since": 3},
    ]);
    let (mut bob, login) = V3::reclaim(cluster.addr(2), "bob", &bob_secret, known);
    for room in [&near, &far] {
        let state = login
            .room(room)
            .unwrap_or_else(|| panic!("{room}: {}", login.rooms));
        assert_eq!(state["recovered"], true, "{state}");
        let history = login
            .history(room)
            .unwrap_or_else(|| panic!("no catch-up of {room}"));
        assert_eq!(
            seqs(history),
            (4..=13).collect::<Vec<_>>(),
            "{room}: {history}"
        );
        let all: Vec<u64> = held(&mut bob, room).iter().map(|(seq, _)| *seq).collect();
        assert_eq!(all, (1..=13).collect::<Vec<_>>(), "{room}");
    }
}

/// Says `text` in `room` until it is taken (a shard coming back), and
/// returns its seq.
fn say_when_back(v3: &mut V3, room: &str, text: &str) -> u64 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let reply = v3.request(json!({"type": "textFromUser", "room": room, "text": text}));
        if reply["type"] == "textBroadcast" {
            return reply["seq"].as_u64().expect("a seq");
        }
        assert_eq!(reply["error"], "unavailable", "{reply}");
        assert!(Instant::now() < deadline, "{room} never came back: {reply}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_lost_shard_takes_only_its_rooms_away_and_gives_them_back_with_their_history() {
    let mut cluster = Sharded::start();
    let (mut users, _) = users(&cluster);
    let near = cluster.room_on(0, "#near");
    let far = cluster.room_on(1, "#far");
    all_join(&mut users, &near);
    all_join(&mut users, &far);
    talk(&mut users, &far, "before ");
    let (mut erin, _) = V3::login_as(cluster.addr(0), "erin");
    erin.join(&far);

    cluster.second.kill();
    // erin logs out meanwhile: her rows there go once the shard is back.
    erin.send(json!({"type": "logout", "id": "bye"}));
    let told = "is on a Redis shard that cannot be reached (shard 2 of 2)";
    for (n, user) in users.iter_mut().enumerate() {
        // Refused at once, saying why, once the node knows (a request in
        // flight as the shard went may be refused without saying).
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (code, why) =
                user.refused(json!({"type": "textFromUser", "room": far, "text": "lost"}));
            assert_eq!(code, "unavailable", "node {n}: {why}");
            if why.contains(told) {
                assert!(why.starts_with(&far), "node {n}: {why}");
                break;
            }
            assert!(Instant::now() < deadline, "node {n} never said why: {why}");
            thread::sleep(Duration::from_millis(50));
        }
        // The home's room and the lobby go on.
        user.say_in(&near, &format!("near on {n}"));
        user.say_in("#lobby", &format!("lobby on {n}"));
    }
    let second = format!("redis shard 2 (redis://127.0.0.1:{})", cluster.second.port);
    for node in &cluster.nodes {
        // Degraded, not out of the load balancer: the rest is served.
        let readyz = http_get(node.admin_addr(), "/readyz");
        assert_eq!(readyz.status, 200, "{}", readyz.body);
        assert!(
            readyz.body.starts_with("ready, degraded: "),
            "{}",
            readyz.body
        );
        assert!(readyz.body.contains(&second), "{}", readyz.body);
        assert!(!readyz.body.contains("shard 1"), "{}", readyz.body);
    }

    // Back, with what it kept: the room goes on from its history.
    cluster.second.restart();
    let mut seqs = Vec::new();
    for (n, user) in users.iter_mut().enumerate() {
        seqs.push(say_when_back(user, &far, &format!("after on {n}")));
    }
    assert_eq!(seqs, [4, 5, 6], "numbering goes on where it was");
    let mut texts: Vec<String> = held(&mut users[2], &far)
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    texts[..3].sort(); // said at once on three nodes: in any order
    assert_eq!(
        texts,
        [
            "before 0",
            "before 1",
            "before 2",
            "after on 0",
            "after on 1",
            "after on 2"
        ]
    );
    for node in &cluster.nodes {
        let deadline = Instant::now() + TIMEOUT;
        let mut readyz = http_get(node.admin_addr(), "/readyz");
        while readyz.body != "ready\n" && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
            readyz = http_get(node.admin_addr(), "/readyz");
        }
        assert_eq!((readyz.status, &*readyz.body), (200, "ready\n"));
    }
    wait_for_answer(&cluster.second, &["EXISTS", "wschat:{u:erin}:rooms"], "0");
    let members = format!("wschat:{{r:{far}}}:members");
    assert_eq!(cluster.second.command(&["HEXISTS", &members, "erin"]), "0");
}

#[test]
fn a_node_given_other_shards_refuses_to_start_and_says_which() {
    let cluster = Sharded::start();
    let third = RedisServer::start();
    for (shards, why) in [
        (vec![&cluster.home], "is not among --redis-url"),
        (
            vec![&cluster.home, &third],
            "is not one of the cluster's shards",
        ),
        (
            vec![&cluster.second, &cluster.home],
            "the cluster's home shard is",
        ),
    ] {
        let (status, log) = ServerProcess::run_to_exit(&Sharded::args(&shards));
        assert!(
            !status.success(),
            "{shards:?} {log:?}",
            shards = shards.len()
        );
        let line = log
            .iter()
            .find(|l| l.contains("--redis-url names other Redis shards than the cluster's"))
            .unwrap_or_else(|| panic!("{log:?}"));
        assert!(line.contains(why), "{line}");
    }
    // The cluster was not disturbed.
    let (mut alice, _) = V3::login_as(cluster.addr(0), "alice");
    alice.say_in("#lobby", "still one cluster");
}

/// Waits until `redis` answers `words` with `expected`.
fn wait_for_answer(redis: &RedisServer, words: &[&str], expected: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let answer = redis.command(words);
        if answer == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{words:?}: {answer:?}, not {expected:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_name_released_on_the_home_leaves_its_rooms_on_every_shard() {
    let cluster = Sharded::start();
    let (mut users, _) = users(&cluster);
    let near = cluster.room_on(0, "#near");
    let far = cluster.room_on(1, "#far");
    all_join(&mut users, &near);
    all_join(&mut users, &far);
    let ties = "wschat:{u:bob}:rooms";
    assert_eq!(cluster.second.command(&["SMEMBERS", ties]), far);

    // bob logs out (on node 1): the name is free everywhere, and its rows
    // go on both shards; the others see him leave both rooms once.
    users[1].send(json!({"type": "logout", "id": "bye"}));
    let members = format!("wschat:{{r:{far}}}:members");
    wait_for_answer(&cluster.second, &["HEXISTS", &members, "bob"], "0");
    wait_for_answer(&cluster.second, &["EXISTS", ties], "0");
    assert_eq!(cluster.home.command(&["EXISTS", ties]), "0");
    for room in [&near, &far] {
        let left = users[2].next_where(|f| f["type"] == "member" && f["room"] == **room);
        assert_eq!(
            (&left["username"], &left["change"]),
            (&json!("bob"), &json!("left")),
            "{left}"
        );
    }
    users[2].settle(Duration::from_millis(200));
    let told = users[2]
        .received
        .iter()
        .filter(|f| f.contains(r#""type":"member""#) && f.contains(r#""username":"bob""#))
        .filter(|f| f.contains(r#""change":"left""#))
        .count();
    assert_eq!(told, 2, "carol heard bob leave each room once");

    // A new bob, on node 2, is in neither room.
    let (_, login) = V3::login_as(cluster.addr(2), "bob");
    assert!(
        login.room(&far).is_none() && login.room(&near).is_none(),
        "{}",
        login.rooms
    );

    // dave, tied to no room of the home (which cannot see the other
    // shard's ties), logs out on node 0: his rows go there too.
    let (mut dave, _) = V3::login_as(cluster.addr(0), "dave");
    dave.join(&far);
    let ties = "wschat:{u:dave}:rooms";
    assert_eq!(cluster.second.command(&["SMEMBERS", ties]), far);
    dave.send(json!({"type": "logout", "id": "bye"}));
    wait_for_answer(&cluster.second, &["EXISTS", ties], "0");
    wait_for_answer(&cluster.second, &["HEXISTS", &members, "dave"], "0");
    let left = users[2]
        .next_where(|f| f["type"] == "member" && f["username"] == "dave" && f["change"] == "left");
    assert_eq!(
        (&left["room"], &left["change"]),
        (&json!(far), &json!("left")),
        "{left}"
    );
}

#[test]
fn a_node_waits_for_every_shard_saying_which_and_starts_when_all_answer() {
    let home = RedisServer::start();
    let port = RedisServer::unused_port();
    let second = format!("redis://127.0.0.1:{port}");
    let mut args = vec![
        "--admin-listen",
        "127.0.0.1:0",
        "--redis-url",
        home.url().leak(),
    ];
    args.extend(["--redis-url", second.as_str()]);
    let mut node = ServerProcess::launch(&args);
    node.wait_listening();
    let waiting = format!("waiting for redis shard 2 ({second})");
    node.wait_for_log(|l| l.contains(&waiting))
        .unwrap_or_else(|| panic!("{}", node.log_text()));
    let readyz = http_get(node.admin_addr(), "/readyz");
    assert_eq!(readyz.status, 503, "{}", readyz.body);
    assert!(readyz.body.contains(&waiting), "{}", readyz.body);
    assert!(
        !readyz.body.contains("shard 1"),
        "the home answered: {}",
        readyz.body
    );
    let _second = RedisServer::start_on(port);
    node.wait_for_log(|l| l.contains(": this is node "))
        .unwrap_or_else(|| panic!("never started: {}", node.log_text()));
    let deadline = Instant::now() + TIMEOUT;
    let mut readyz = http_get(node.admin_addr(), "/readyz");
    while readyz.status != 200 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        readyz = http_get(node.admin_addr(), "/readyz");
    }
    assert_eq!(readyz.status, 200, "{}", readyz.body);
    let (mut alice, _) = V3::login_as(node.addr, "alice");
    alice.join("#dev");
    alice.say_in("#dev", "both shards");
    assert_eq!(node.log_text().matches(&waiting).count(), 1, "said once");
}

#[test]
fn a_name_whose_ttl_ran_out_leaves_its_rooms_on_every_shard() {
    let cluster = Sharded::start_with(&["--login-ttl", "300ms"]);
    let (mut users, _) = users(&cluster);
    let far = cluster.room_on(1, "#far");
    all_join(&mut users, &far);
    let ties = "wschat:{u:bob}:rooms";
    assert_eq!(cluster.second.command(&["SMEMBERS", ties]), far);
    // bob's only connection closes; his name is released by the home's
    // sweep once its TTL ran out, and his rows on the second shard go.
    let [alice, bob, carol] = &mut users;
    drop(std::mem::replace(bob, V3::connect(cluster.addr(1))));
    wait_for_answer(&cluster.second, &["EXISTS", ties], "0");
    let members = format!("wschat:{{r:{far}}}:members");
    assert_eq!(cluster.second.command(&["HEXISTS", &members, "bob"]), "0");
    for user in [alice, carol] {
        let left = user.next_where(|f| {
            f["type"] == "member" && f["username"] == "bob" && f["change"] == "left"
        });
        assert_eq!(left["room"], far, "{left}");
    }
}
