//! Rooms and direct messages on a cluster (issue 23): three chat-server
//! nodes on one real redis-server (started by each test on a free port,
//! keeping no files, killed at the end), over protocol v3. Seen from any
//! client the cluster behaves as one server: rooms created on one node are
//! joined on another, one order per room everywhere, a name's membership
//! on all its devices whatever node each is on, moderation acted on one
//! node enforced on the others, catch-up and paging on any node, and
//! nothing acknowledged lost when a node is SIGKILLed.
#![cfg(all(feature = "server", feature = "cluster", target_os = "linux"))]

mod net;
#[path = "common/v3.rs"]
mod v3;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use net::redis::RedisServer;
use net::*;
use serde_json::{Value, json};
use v3::*;

/// As tests/cluster.rs: a killed node's users leave within 1.2 times it.
const NODE_TIMEOUT: Duration = Duration::from_secs(1);

struct Cluster {
    _redis: RedisServer,
    nodes: Vec<ServerProcess>,
}

impl Cluster {
    fn start() -> Cluster {
        let redis = RedisServer::start();
        let timeout = format!("{}ms", NODE_TIMEOUT.as_millis());
        let nodes = (0..3)
            .map(|_| {
                let mut node = ServerProcess::launch(&[
                    "--redis-url",
                    &redis.url(),
                    "--node-timeout",
                    &timeout,
                    NO_RATE_LIMIT[0],
                    NO_RATE_LIMIT[1],
                    // Tests make rooms faster than the public may.
                    "--rooms-per-address-per-minute",
                    "0",
                ]);
                node.wait_listening();
                node.wait_for_log(|l| l.contains(": this is node "))
                    .unwrap_or_else(|| panic!("never joined Redis: {}", node.log_text()));
                node
            })
            .collect();
        Cluster {
            _redis: redis,
            nodes,
        }
    }

    fn addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].addr
    }
}

/// The texts of the room's messages that `v3` receives next, `n` of them.
fn heard_in(v3: &mut V3, room: &str, n: usize) -> Vec<(u64, String)> {
    (0..n)
        .map(|_| {
            let frame = v3.next_where(|f| f["type"] == "textBroadcast" && f["room"] == room);
            (
                frame["seq"].as_u64().expect("a seq"),
                frame["message"].as_str().expect("a text").to_owned(),
            )
        })
        .collect()
}

/// Lists rooms on `v3`'s node until `room` is among them.
fn wait_until_listed(v3: &mut V3, room: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while room_in(&v3.list_rooms(), room).is_none() {
        assert!(std::time::Instant::now() < deadline, "{room} never listed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_room_made_on_one_node_is_joined_listed_and_heard_in_one_order_on_all() {
    let cluster = Cluster::start();
    let (mut alice, _) = V3::login_as(cluster.addr(0), "alice");
    let (mut bob, _) = V3::login_as(cluster.addr(1), "bob");
    let (mut carol, _) = V3::login_as(cluster.addr(2), "carol");
    alice.join("#Dev");
    // Node 1 knows the room once Redis has told it (a join there before that
    // would create it again, which Redis refuses: `unavailable`, try again).
    wait_until_listed(&mut bob, "#Dev");
    let joined = bob.join("#dev");
    assert_eq!(
        joined["room"], "#Dev",
        "one room, as first created: {joined}"
    );
    assert_eq!(joined["state"]["members"], 2, "{joined}");
    let seen = alice.next_where(|f| f["type"] == "member" && f["username"] == "bob");
    assert_eq!(
        (&seen["room"], &seen["change"]),
        (&json!("#Dev"), &json!("joined"))
    );
    let rooms = carol.list_rooms();
    let dev = room_in(&rooms, "#Dev").unwrap_or_else(|| panic!("{rooms}"));
    assert_eq!(dev["members"], 2, "{dev}");
    carol.join("#Dev");

    // Three nodes talk at once; everyone hears one order, numbered 1, 2, …
    for i in 0..5 {
        for (v3, who) in [(&mut alice, "a"), (&mut bob, "b"), (&mut carol, "c")] {
            let id = v3.id("say");
            v3.send(json!({"type": "textFromUser", "id": id, "room": "#Dev", "text": format!("{who}{i}")}));
        }
    }
    let heard: Vec<_> = [&mut alice, &mut bob, &mut carol]
        .into_iter()
        .map(|v3| heard_in(v3, "#Dev", 15))
        .collect();
    let seqs: Vec<u64> = heard[0].iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=15).collect::<Vec<_>>(), "{heard:?}");
    assert_eq!(heard[0], heard[1], "bob heard another order");
    assert_eq!(heard[0], heard[2], "carol heard another order");

    // A direct message across nodes, to an online name and back.
    let sent = alice.say_in("@carol", "psst");
    let got = carol.said("psst");
    assert_eq!(
        (&got["room"], &got["seq"]),
        (&json!("@alice"), &sent["seq"])
    );
    carol.say_in("@alice", "yes?");
    assert_eq!(alice.said("yes?")["room"], "@carol");
    assert!(!bob.has_seen("psst"), "a DM reached a third party");
}

#[test]
fn a_names_devices_on_different_nodes_share_its_rooms() {
    let cluster = Cluster::start();
    let (mut phone, login) = V3::login_as(cluster.addr(0), "alice");
    let secret = login.message["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let (mut laptop, _) = V3::reclaim(cluster.addr(1), "alice", &secret, json!([]));
    phone.join("#ops");
    let told = laptop.next_where(|f| f["type"] == "membership" && f["room"] == "#ops");
    assert_eq!(told["change"], "joined", "{told}");
    laptop.say_in("#ops", "from the laptop");
    assert_eq!(phone.said("from the laptop")["room"], "#ops");
    laptop.request(json!({"type": "part", "room": "#ops"}));
    let told = phone
        .next_where(|f| f["type"] == "membership" && f["room"] == "#ops" && f["change"] == "left");
    assert_eq!(told["room"], "#ops");
    // A third device, on the third node, is in no room but the lobby.
    let (_, login) = V3::reclaim(cluster.addr(2), "alice", &secret, json!([]));
    assert!(login.room("#ops").is_none(), "{}", login.rooms);
}

#[test]
fn moderation_acted_on_one_node_is_enforced_on_another() {
    let cluster = Cluster::start();
    let (mut owner, _) = V3::login_as(cluster.addr(0), "owner");
    let (mut carol, _) = V3::login_as(cluster.addr(1), "carol");
    let (mut dave, _) = V3::login_as(cluster.addr(2), "dave");
    owner.join("#dev");
    wait_until_listed(&mut carol, "#dev");
    carol.join("#dev");
    wait_until_listed(&mut dave, "#dev");
    dave.join("#dev");

    let topic = owner.moderate(json!({"type": "topic", "room": "#dev", "topic": "ship it"}));
    assert_eq!(topic["type"], "notice", "{topic}");
    let seen = dave.notice("#dev", "topic");
    assert_eq!(seen["topic"], "ship it", "{seen}");

    let mute = json!({"type": "mute", "room": "#dev", "username": "carol", "seconds": 60});
    assert_eq!(owner.moderate(mute)["type"], "notice");
    carol.notice("#dev", "mute");
    let (code, _) = carol.refused(json!({"type": "textFromUser", "room": "#dev", "text": "x"}));
    assert_eq!(code, "muted", "a mute on node 0 holds on node 1");

    let ban = json!({"type": "ban", "room": "#dev", "username": "dave", "reason": "spam"});
    assert_eq!(owner.moderate(ban)["type"], "notice");
    let told = dave.next_where(|f| f["type"] == "membership" && f["room"] == "#dev");
    assert_eq!(told["change"], "banned", "{told}");
    let (code, _) = dave.refused(json!({"type": "join", "room": "#dev"}));
    assert_eq!(code, "banned", "a ban on node 0 holds on node 2");
    let (code, _) = dave.refused(json!({"type": "textFromUser", "room": "#dev", "text": "x"}));
    assert_ne!(code, "", "a banned name cannot say anything there");

    // Invite-only, set on node 0: a stranger on node 2 sees nothing of it.
    owner.moderate(json!({"type": "mode", "room": "#dev", "inviteOnly": true}));
    let (mut stranger, _) = V3::login_as(cluster.addr(2), "stranger");
    assert!(room_in(&stranger.list_rooms(), "#dev").is_none());
    let (code, _) = stranger.refused(json!({"type": "join", "room": "#dev"}));
    assert_eq!(code, "forbidden", "no invite, no entry");
    owner.say_in("#dev", "secret plans");
    stranger.settle(Duration::from_millis(300));
    assert!(!stranger.has_seen("secret plans"));
}

#[test]
fn a_room_is_caught_up_and_paged_on_any_node() {
    let cluster = Cluster::start();
    let (mut alice, _) = V3::login_as(cluster.addr(0), "alice");
    let (mut bob, login) = V3::login_as(cluster.addr(1), "bob");
    let secret = login.message["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    alice.join("#dev");
    wait_until_listed(&mut bob, "#dev");
    let joined = bob.join("#dev");
    let epoch = joined["state"]["epoch"].clone();
    alice.say_in("#dev", "before");
    bob.said("before");
    drop(bob);
    for i in 0..40 {
        alice.say_in("#dev", &format!("while away {i}"));
    }
    // bob comes back on another node, saying what he has.
    let known = json!([{"room": "#dev", "epoch": epoch, "since": 1}]);
    let (mut bob, login) = V3::reclaim(cluster.addr(2), "bob", &secret, known);
    let room = login
        .room("#dev")
        .unwrap_or_else(|| panic!("{}", login.rooms));
    assert_eq!(room["recovered"], true, "{room}");
    let history = login.history("#dev").expect("a catch-up of #dev");
    assert_eq!(seqs(history), (2..=41).collect::<Vec<_>>(), "{history}");
    // Paging on the third node gives everything held, in order.
    let all = bob.everything_held("#dev", 7);
    let seqs: Vec<u64> = all.iter().filter_map(|m| m["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=41).collect::<Vec<_>>());
}

#[test]
fn a_node_sigkilled_mid_traffic_loses_nothing_acknowledged_in_rooms() {
    let mut cluster = Cluster::start();
    let (mut listener, _) = V3::login_as(cluster.addr(1), "listener");
    listener.join("#busy");
    let (mut talker, _) = V3::login_as(cluster.addr(0), "talker");
    wait_until_listed(&mut talker, "#busy");
    talker.join("#busy");
    let mut acked: Vec<(u64, String)> = Vec::new();
    for i in 0..30 {
        let ack = talker.say_in("#busy", &format!("m{i}"));
        acked.push((ack["seq"].as_u64().expect("a seq"), format!("m{i}")));
    }
    // In flight when killed: whatever was acknowledged must be kept.
    for i in 30..60 {
        let id = talker.id("say");
        talker.send(
            json!({"type": "textFromUser", "id": id, "room": "#busy", "text": format!("m{i}")}),
        );
    }
    cluster.nodes[0].kill();
    let all = listener.everything_held("#busy", 50);
    let held: Vec<(u64, String)> = all
        .iter()
        .filter(|m| m["type"] == "textBroadcast")
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for said in &acked {
        assert!(
            held.contains(said),
            "{said:?} was acknowledged and lost: {held:?}"
        );
    }
    let seqs: Vec<u64> = held.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "a gap: {seqs:?}"
    );
}

#[test]
fn a_room_created_at_once_on_three_nodes_is_one_room_everyone_joined() {
    let cluster = Cluster::start();
    // Two names on each node.
    let names = ["ann", "ben", "cyd", "dee", "eve", "fay"];
    let mut clients: Vec<V3> = names
        .iter()
        .enumerate()
        .map(|(n, name)| V3::login_as(cluster.addr(n % 3), name).0)
        .collect();
    // Each new room asked of all three nodes at the same moment: Redis
    // keeps one creation; the others become joins of it, and so do the
    // joins a node made of its own losing creation.
    const ROOMS: usize = 30;
    let mut asked = Vec::new();
    for i in 0..ROOMS {
        for v3 in clients.iter_mut() {
            let id = v3.id("join");
            v3.send(json!({"type": "join", "id": id, "room": format!("#race{i}")}));
            asked.push(id);
        }
    }
    let mut refused = Vec::new();
    for (n, id) in asked.iter().enumerate() {
        let v3 = &mut clients[n % names.len()];
        let reply = v3.reply(id);
        if reply["change"] != "joined" {
            refused.push(format!("{}: {reply}", v3.name));
        }
    }
    assert_eq!(refused, Vec::<String>::new(), "joins refused");
    // Every node lists every room with everyone in it (once it has heard
    // the other nodes' last joins), and every name may speak in every room
    // on its own node.
    let everyone = json!(names.len());
    for v3 in clients.iter_mut().take(3) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let rooms = v3.list_rooms();
            let counts: Vec<Value> = (0..ROOMS)
                .map(|i| {
                    room_in(&rooms, &format!("#race{i}"))
                        .map_or(json!(null), |r| r["members"].clone())
                })
                .collect();
            if counts.iter().all(|c| *c == everyone) {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {counts:?}", v3.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for v3 in clients.iter_mut() {
        for i in 0..ROOMS {
            let text = format!("{} in {i}", v3.name);
            v3.say_in(&format!("#race{i}"), &text);
        }
    }
}
