//! Protocol v3 over real sockets: `chat-server` on 127.0.0.1 selects
//! `wschat.v3` on a single node; rooms (join, say, part), direct messages
//! (online, held for an offline name, to a name not held), catch-up per
//! room after a restart (SIGTERM) and after a SIGKILL, paging through all
//! that is held, and read markers shared by two devices of one name.
#![cfg(all(feature = "server", target_os = "linux"))]

mod net;
#[path = "common/v3.rs"]
mod v3;

use net::*;
use serde_json::{Value, json};
use v3::*;

#[test]
fn v3_is_selected_on_a_single_node_when_offered_and_v2_when_only_v2_is() {
    for flags in [&[][..], &["--in-memory"]] {
        let server = ServerProcess::start(flags);
        for (n, (offers, expected)) in [
            (&["wschat.v3, wschat.v2"][..], Some("wschat.v3")),
            (&["wschat.v2", "wschat.v3"], Some("wschat.v3")),
            (&["wschat.v3"], Some("wschat.v3")),
            (&["wschat.v2"], Some("wschat.v2")),
            (&[], None),
        ]
        .into_iter()
        .enumerate()
        {
            let (mut client, selected) = Client::connect_offering(server.addr, offers);
            assert_eq!(selected.as_deref(), expected, "{flags:?} {offers:?}");
            // Each speaks the version it got: a v1 login has no replyTo.
            let name = format!("nova{n}");
            client.send_json(json!({"type": "login", "id": "l", "username": name}));
            let reply = client.recv_type("loginMessage");
            assert_eq!(
                reply.get("replyTo").is_some(),
                expected.is_some(),
                "{reply}"
            );
        }
        // Counted by the protocol each speaks.
        let metrics = http_get(server.addr, "/metrics").body;
        for (protocol, count) in [("v1", 1), ("v2", 1), ("v3", 3)] {
            let line =
                format!("wschat_connections_opened_total{{protocol=\"{protocol}\"}} {count}");
            assert!(
                metrics.lines().any(|l| l == line),
                "no {line:?} in:\n{metrics}"
            );
        }
    }
}

#[cfg(feature = "cluster")]
#[test]
fn a_cluster_node_selects_v3_too_and_max_protocol_2_keeps_a_server_at_v2() {
    let redis = net::redis::RedisServer::start();
    let mut node = ServerProcess::launch(&["--redis-url", &redis.url()]);
    node.wait_listening();
    node.wait_for_log(|l| l.contains(": this is node "))
        .unwrap_or_else(|| panic!("the node never joined Redis: {}", node.log_text()));
    let (_, selected) = Client::connect_offering(node.addr, &["wschat.v3, wschat.v2"]);
    assert_eq!(selected.as_deref(), Some("wschat.v3"));
    // A rolling upgrade keeps every node at v2 until all can speak v3.
    let v2 = ServerProcess::start(&["--in-memory", "--max-protocol", "2"]);
    let (mut client, selected) = Client::connect_offering(v2.addr, &["wschat.v3, wschat.v2"]);
    assert_eq!(selected.as_deref(), Some("wschat.v2"));
    client.send_json(json!({"type": "login", "id": "l", "username": "nova"}));
    assert_eq!(client.reply_to("l")["type"], "loginMessage");
    let (_, selected) = Client::connect_offering(v2.addr, &["wschat.v3"]);
    assert_eq!(selected, None, "v3 alone: v1");
}

#[test]
fn members_join_say_in_and_part_a_room_that_v2_never_sees() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let mut lobby = Client::connect_v2(server.addr);
    lobby.login("lobbyist");
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let created = alice.join("#Dev");
    let state = &created["state"];
    assert_eq!(created["room"], "#Dev", "{created}");
    assert_eq!(
        (&state["role"], &state["members"], &state["lastSeq"]),
        (&json!("owner"), &json!(1), &json!(0)),
        "{created}"
    );
    assert!(
        state["epoch"].as_str().is_some_and(|e| !e.is_empty()),
        "{created}"
    );

    // `#dev` is `#Dev`: one room, shown as first created.
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    let joined = bob.join("#dev");
    assert_eq!(joined["room"], "#Dev", "{joined}");
    assert_eq!(joined["state"]["role"], "member", "{joined}");
    assert_eq!(joined["state"]["members"], 2, "{joined}");
    let seen = alice.next_where(|f| f["type"] == "member" && f["username"] == "bob");
    assert_eq!(
        (&seen["room"], &seen["change"]),
        (&json!("#Dev"), &json!("joined"))
    );

    let first = alice.say_in("#Dev", "builds are green");
    assert_eq!(first["seq"], 1, "{first}");
    let heard = bob.said("builds are green");
    assert_eq!((&heard["room"], &heard["seq"]), (&json!("#Dev"), &json!(1)));
    assert!(heard.get("replyTo").is_none(), "{heard}");
    assert_eq!(bob.say_in("#Dev", "thanks")["seq"], 2);
    assert_eq!(alice.said("thanks")["room"], "#Dev");
    // The lobby numbers on by itself, and a v2 client there sees the
    // lobby's message only.
    let lobby_ack = alice.say_in("#lobby", "hello lobby");
    assert_eq!(lobby_ack["seq"], 1, "{lobby_ack}");
    let plain = alice.request(json!({"type": "textFromUser", "text": "no room is the lobby"}));
    assert_eq!(plain["seq"], 2, "{plain}");
    assert!(in_lobby(&plain), "{plain}");
    let heard = lobby.recv_type("textBroadcast");
    assert_eq!(heard["message"], "hello lobby");
    assert!(heard.get("room").is_none(), "v2 frames are v2's: {heard}");

    let rooms = alice.list_rooms();
    let dev = room_in(&rooms, "#Dev").unwrap_or_else(|| panic!("{rooms}"));
    assert_eq!(
        (&dev["members"], &dev["lastSeq"]),
        (&json!(2), &json!(2)),
        "{dev}"
    );
    assert!(room_in(&rooms, "#lobby").is_some(), "{rooms}");
    let members = bob.request(json!({"type": "listMembers", "room": "#dev"}));
    assert_eq!(members["type"], "memberList", "{members}");
    let roles: Vec<(&str, &str)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["username"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles.len(), 2, "{members}");
    assert!(roles.contains(&("alice", "owner")), "{members}");
    assert!(roles.contains(&("bob", "member")), "{members}");

    let left = bob.request(json!({"type": "part", "room": "#Dev", "reason": "lunch"}));
    assert_eq!(
        (&left["type"], &left["room"], &left["change"]),
        (&json!("membership"), &json!("#Dev"), &json!("left")),
        "{left}"
    );
    let seen = alice.next_where(|f| f["type"] == "member" && f["change"] == "left");
    assert_eq!(
        (&seen["room"], &seen["username"]),
        (&json!("#Dev"), &json!("bob"))
    );
    let (code, description) =
        bob.refused(json!({"type": "textFromUser", "room": "#Dev", "text": "still here?"}));
    assert_eq!(code, "notAMember", "{description}");
    assert!(description.contains("#Dev"), "{description}");
    let (code, _) = bob.refused(json!({"type": "join", "room": "#no room"}));
    assert_eq!(code, "invalidRoom");
    let (code, _) = bob.refused(json!({"type": "join", "room": "dev"}));
    assert_eq!(code, "invalidRoom");

    // A v2 client got nothing of #Dev, and is still served.
    assert_eq!(
        lobby.list_users("u"),
        [
            ("alice".into(), 1),
            ("bob".into(), 1),
            ("lobbyist".into(), 1)
        ]
    );
    assert!(
        !alice
            .received
            .iter()
            .any(|f| f.contains("\"errorMessage\""))
    );
}

#[test]
fn direct_messages_reach_online_and_offline_names_and_a_name_not_held_is_no_such_user() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");

    // Online: bob sees the conversation as @alice, alice as @bob.
    let ack = alice.say_in("@bob", "lunch?");
    assert_eq!(ack["seq"], 1, "{ack}");
    let got = bob.said("lunch?");
    assert_eq!(
        (&got["room"], &got["username"]),
        (&json!("@alice"), &json!("alice"))
    );
    let ack = bob.say_in("@alice", "yes, 12:30");
    assert_eq!(ack["seq"], 2, "{ack}");
    assert_eq!(alice.said("yes, 12:30")["room"], "@bob");
    let rooms = bob.list_rooms();
    let dm = room_in(&rooms, "@alice").unwrap_or_else(|| panic!("{rooms}"));
    assert_eq!(
        (&dm["members"], &dm["lastSeq"]),
        (&json!(2), &json!(2)),
        "{dm}"
    );

    // Offline but held: carol gets it at her next login.
    let (carol, _) = V3::login_as(server.addr, "carol");
    let secret = carol.secret.clone();
    drop(carol);
    assert_eq!(alice.say_in("@carol", "are you there?")["seq"], 1);
    let (_, login) = V3::reclaim(server.addr, "carol", &secret, json!([]));
    let dm = login
        .room("@alice")
        .unwrap_or_else(|| panic!("{:?}", login.rooms));
    assert_eq!(dm["lastSeq"], 1, "{dm}");
    let history = login
        .history("@alice")
        .unwrap_or_else(|| panic!("{login:?}"));
    assert_eq!(texts(history), ["are you there?"]);
    assert_eq!(
        login.changes("@alice").first().map(|c| &c["change"]),
        Some(&json!("joined")),
        "{:?}",
        login.rooms
    );

    // A name no one holds, and a DM to oneself or to no valid name.
    let (code, description) =
        alice.refused(json!({"type": "textFromUser", "room": "@nobody", "text": "hi"}));
    assert_eq!(code, "noSuchUser", "{description}");
    assert!(description.contains("nobody"), "{description}");
    let (code, _) = alice.refused(json!({"type": "textFromUser", "room": "@no body", "text": "x"}));
    assert!(
        ["noSuchUser", "invalidRoom"].contains(&code.as_str()),
        "{code}"
    );
    // Nothing of it reached bob.
    bob.settle(std::time::Duration::from_millis(300));
    assert!(!bob.has_seen("are you there?"));
}

/// Everything a server was told before a restart: the epochs and last
/// seqs alice knows, her and bob's secrets.
struct Before {
    dev_epoch: String,
    dm_epoch: String,
    alice: String,
    bob: String,
}

/// alice owns #dev, where bob is too; each says a message there, bob
/// writes to alice; alice reads #dev up to 2 and goes away; bob says one
/// more in each. alice knows #dev up to 2 and @bob up to 1.
fn before_a_restart(server: &ServerProcess) -> Before {
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    let dev_epoch = alice.join("#dev")["state"]["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.join("#dev");
    assert_eq!(alice.say_in("#dev", "d1")["seq"], 1);
    assert_eq!(bob.say_in("#dev", "d2")["seq"], 2);
    alice.said("d2");
    assert_eq!(bob.say_in("@alice", "dm1")["seq"], 1);
    alice.said("dm1");
    let read = alice.request(json!({"type": "read", "room": "#dev", "seq": 2}));
    assert_eq!(
        (&read["type"], &read["seq"]),
        (&json!("readMarker"), &json!(2)),
        "{read}"
    );
    let rooms = alice.list_rooms();
    let dm_epoch = room_in(&rooms, "@bob").unwrap_or_else(|| panic!("{rooms}"))["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_secret = alice.secret.clone();
    drop(alice);
    assert_eq!(bob.say_in("#dev", "d3")["seq"], 3);
    assert_eq!(bob.say_in("@alice", "dm2")["seq"], 2);
    Before {
        dev_epoch,
        dm_epoch,
        alice: alice_secret,
        bob: bob.secret.clone(),
    }
}

/// alice comes back after the restart, listing what she knows: each room
/// is recovered, with just what she missed, membership and read marker
/// kept, and the numbering goes on.
fn after_a_restart(server: &ServerProcess, before: &Before) {
    let known = json!([
        {"room": "#dev", "epoch": before.dev_epoch, "since": 2},
        {"room": "@bob", "epoch": before.dm_epoch, "since": 1},
    ]);
    let (mut alice, login) = V3::reclaim(server.addr, "alice", &before.alice, known);
    let dev = login
        .room("#dev")
        .unwrap_or_else(|| panic!("{:?}", login.rooms));
    assert_eq!(
        (
            &dev["recovered"],
            &dev["role"],
            &dev["lastSeq"],
            &dev["epoch"]
        ),
        (
            &json!(true),
            &json!("owner"),
            &json!(3),
            &json!(before.dev_epoch)
        ),
        "{dev}"
    );
    assert_eq!(
        (&dev["readSeq"], &dev["unread"]),
        (&json!(2), &json!(1)),
        "{dev}"
    );
    let history = login.history("#dev").unwrap_or_else(|| panic!("{login:?}"));
    assert_eq!(
        (seqs(history), texts(history)),
        (vec![3], vec!["d3".to_owned()])
    );
    assert_eq!(history["complete"], true, "{history}");
    let dm = login
        .room("@bob")
        .unwrap_or_else(|| panic!("{:?}", login.rooms));
    assert_eq!(
        (&dm["recovered"], &dm["lastSeq"]),
        (&json!(true), &json!(2)),
        "{dm}"
    );
    let history = login.history("@bob").unwrap_or_else(|| panic!("{login:?}"));
    assert_eq!(
        (seqs(history), texts(history)),
        (vec![2], vec!["dm2".to_owned()])
    );
    assert!(login.changes("#dev").is_empty(), "{:?}", login.rooms);

    assert_eq!(alice.say_in("#dev", "d4")["seq"], 4);
    assert_eq!(alice.say_in("@bob", "dm3")["seq"], 3);
    // Another epoch is not recovered; a room not listed is joined, with
    // its latest messages.
    let known = json!([{"room": "#dev", "epoch": "another", "since": 3}]);
    let (_, stale) = V3::reclaim(server.addr, "alice", &before.alice, known);
    let dev = stale
        .room("#dev")
        .unwrap_or_else(|| panic!("{:?}", stale.rooms));
    assert_eq!(dev["recovered"], false, "{dev}");
    let dm = stale.history("@bob").unwrap_or_else(|| panic!("{stale:?}"));
    assert_eq!(seqs(dm), [1, 2, 3]);
    let joined = stale.changes("@bob");
    assert_eq!(joined.first().map(|c| &c["change"]), Some(&json!("joined")));
    let (_, bob) = V3::reclaim(server.addr, "bob", &before.bob, json!([]));
    assert_eq!(bob.room("#dev").map(|r| &r["role"]), Some(&json!("member")));
    assert_eq!(bob.room("@alice").map(|r| &r["lastSeq"]), Some(&json!(3)));
}

#[test]
fn catch_up_per_room_after_a_restart() {
    let mut server = ServerProcess::start(&NO_RATE_LIMIT);
    let before = before_a_restart(&server);
    server.terminate();
    assert!(server.wait_exit().success(), "{}", server.log_text());
    server.restart();
    after_a_restart(&server, &before);
}

#[test]
fn catch_up_per_room_after_a_sigkill_loses_nothing_acknowledged() {
    let mut server = ServerProcess::start(&NO_RATE_LIMIT);
    let before = before_a_restart(&server);
    // Then a burst, each acknowledged, and the kill right after the last.
    let (mut carol, _) = V3::login_as(server.addr, "carol");
    carol.join("#dev");
    let mut acknowledged = Vec::new();
    for n in 0..40 {
        let (room, text) = match n % 4 {
            0 => ("@alice", format!("carol dm {n}")),
            _ => ("#dev", format!("carol says {n}")),
        };
        let ack = carol.say_in(room, &text);
        acknowledged.push((room, ack["seq"].as_u64().unwrap(), text));
    }
    let carol_secret = carol.secret.clone();
    server.kill();
    server.restart();

    let (mut alice, login) = V3::reclaim(
        server.addr,
        "alice",
        &before.alice,
        json!([{"room": "#dev", "epoch": before.dev_epoch, "since": 0}]),
    );
    assert_eq!(
        login.room("#dev").map(|r| &r["recovered"]),
        Some(&json!(true))
    );
    let held = alice.everything_held("#dev", 7);
    let dev: Vec<(u64, String)> = held
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(dev.len(), 33, "{dev:?}");
    assert_eq!(
        dev[..3],
        [(1, "d1".into()), (2, "d2".into()), (3, "d3".into())]
    );
    for (room, seq, text) in &acknowledged {
        let room_of_alice = if *room == "@alice" { "@carol" } else { "#dev" };
        let found = if room_of_alice == "#dev" {
            dev.contains(&(*seq, text.clone()))
        } else {
            let dm = alice.everything_held("@carol", 50);
            dm.iter()
                .any(|m| m["seq"] == *seq && m["message"] == text.as_str())
        };
        assert!(found, "{room} {seq} {text:?} acknowledged, then lost");
    }
    // carol is still in #dev, with her name.
    let (_, carol) = V3::reclaim(server.addr, "carol", &carol_secret, json!([]));
    assert_eq!(carol.room("#dev").map(|r| &r["lastSeq"]), Some(&json!(33)));
    after_sigkill_numbering(&mut alice);
}

/// Numbering goes on after the kill.
fn after_sigkill_numbering(alice: &mut V3) {
    assert_eq!(alice.say_in("#dev", "after the kill")["seq"], 34);
}

/// Says numbered messages in `room` as fast as they are acknowledged,
/// until the server dies: (seq, text) of each acknowledged.
fn say_until_killed(mut v3: V3, room: &'static str) -> Vec<(u64, String)> {
    let mut acknowledged = Vec::new();
    for n in 0.. {
        let (id, text) = (format!("m{n}"), format!("{} in {room} #{n}", v3.name));
        let said = json!({"type": "textFromUser", "id": id, "room": room, "text": text});
        if v3.client.try_send_json(said).is_none() {
            break;
        }
        let Some(ack) = v3.client.try_reply_to(&id) else {
            break;
        };
        assert_eq!(ack["type"], "textBroadcast", "{ack}");
        acknowledged.push((ack["seq"].as_u64().expect("a seq"), text));
    }
    acknowledged
}

#[test]
fn a_sigkill_amid_traffic_in_rooms_and_dms_loses_nothing_acknowledged() {
    // Every message kept, so that all said can be checked.
    let flags = [&["--room-history", "100000"][..], &NO_RATE_LIMIT].concat();
    let mut server = ServerProcess::start(&flags);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    alice.join("#a");
    alice.join("#b");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    bob.join("#a");
    let (mut carol, _) = V3::login_as(server.addr, "carol");
    carol.join("#b");
    let (dave, _) = V3::login_as(server.addr, "dave");
    let secret = alice.secret.clone();
    drop(alice);
    let senders = [
        std::thread::spawn(move || say_until_killed(bob, "#a")),
        std::thread::spawn(move || say_until_killed(carol, "#b")),
        std::thread::spawn(move || say_until_killed(dave, "@alice")),
    ];
    std::thread::sleep(std::time::Duration::from_millis(
        300 + rand::random::<u64>() % 500,
    ));
    server.kill();
    let acknowledged: Vec<Vec<(u64, String)>> = senders.map(|s| s.join().expect("a sender")).into();
    assert!(
        acknowledged.iter().all(|a| !a.is_empty()),
        "every sender was acknowledged before the kill"
    );
    server.restart();

    let (mut alice, _) = V3::reclaim(server.addr, "alice", &secret, json!([]));
    for (room, acknowledged) in ["#a", "#b", "@dave"].into_iter().zip(&acknowledged) {
        let held: Vec<(u64, String)> = alice
            .everything_held(room, 100)
            .iter()
            .map(|m| {
                (
                    m["seq"].as_u64().unwrap(),
                    m["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let numbers: Vec<u64> = held.iter().map(|(seq, _)| *seq).collect();
        let expected: Vec<u64> = (1..=held.len() as u64).collect();
        assert_eq!(
            numbers, expected,
            "{room}: numbered from 1, no gap, no repeat"
        );
        for said in acknowledged {
            assert!(
                held.contains(said),
                "{room}: {said:?} acknowledged, then lost"
            );
        }
        // Numbering goes on after the last held.
        let next = alice.say_in(room, "after the kill")["seq"]
            .as_u64()
            .unwrap();
        assert_eq!(next, held.len() as u64 + 1, "{room}");
    }
}

#[test]
fn paging_fetches_everything_the_server_holds() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    alice.join("#dev");
    for n in 1..=23 {
        alice.say_in("#dev", &format!("m{n}"));
    }
    for n in 1..=9 {
        bob.say_in("@alice", &format!("dm{n}"));
    }
    let held = alice.everything_held("#dev", 5);
    let expected: Vec<Value> = (1..=23).map(|n| json!(n)).collect();
    let got: Vec<Value> = held.iter().map(|m| m["seq"].clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(held[22]["message"], "m23");
    assert_eq!(held[0]["room"], "#dev", "{}", held[0]);
    let dm = alice.everything_held("@bob", 4);
    assert_eq!(dm.len(), 9);
    assert_eq!(dm[8]["room"], "@bob", "{}", dm[8]);

    let latest = alice.page("#dev", json!({}), Some(3));
    assert_eq!(
        (seqs(&latest), &latest["complete"]),
        (vec![21, 22, 23], &json!(false))
    );
    let after = alice.page("#dev", json!({"after": 20}), Some(50));
    assert_eq!(
        (seqs(&after), &after["complete"]),
        (vec![21, 22, 23], &json!(true))
    );
    let before = alice.page("#dev", json!({"before": 3}), Some(2));
    assert_eq!(
        (seqs(&before), &before["complete"]),
        (vec![1, 2], &json!(true))
    );
    let middle = alice.page("#dev", json!({"after": 5}), Some(2));
    assert_eq!(
        (seqs(&middle), &middle["complete"]),
        (vec![6, 7], &json!(false))
    );
    // The default page is 50, so 23 come whole.
    let default = alice.page("#dev", json!({}), None);
    assert_eq!(
        (seqs(&default).len(), &default["complete"]),
        (23, &json!(true))
    );
}

#[test]
fn a_room_keeps_room_history_messages_and_paging_ends_there() {
    let server = ServerProcess::start(&[
        "--in-memory",
        "--room-history",
        "5",
        NO_RATE_LIMIT[0],
        NO_RATE_LIMIT[1],
    ]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    alice.join("#dev");
    for n in 1..=8 {
        alice.say_in("#dev", &format!("m{n}"));
    }
    let held = alice.everything_held("#dev", 2);
    let got: Vec<u64> = held.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(got, [4, 5, 6, 7, 8]);
    let old = alice.page("#dev", json!({"before": 4}), Some(10));
    assert_eq!((seqs(&old), &old["complete"]), (vec![], &json!(true)));
}

#[test]
fn read_markers_and_joins_are_shared_by_two_devices_of_one_name() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let (mut phone, _) = V3::login_as(server.addr, "alice");
    phone.join("#dev");
    let secret = phone.secret.clone();
    let (mut laptop, login) = V3::reclaim(server.addr, "alice", &secret, json!([]));
    assert_eq!(
        login.room("#dev").map(|r| &r["role"]),
        Some(&json!("owner"))
    );

    // A join on the phone shows on the laptop.
    phone.join("#ops");
    let shown = laptop.next_in("membership", "#ops");
    assert_eq!(shown["change"], "joined", "{shown}");
    assert!(shown.get("replyTo").is_none(), "{shown}");
    assert_eq!(shown["state"]["role"], "owner", "{shown}");

    let (mut bob, _) = V3::login_as(server.addr, "bob");
    bob.join("#dev");
    for text in ["hello", "@alice look at this", "bye"] {
        bob.say_in("#dev", text);
    }
    laptop.said("bye");
    let rooms = laptop.list_rooms();
    let dev = room_in(&rooms, "#dev").unwrap();
    assert_eq!(
        (
            &dev["lastSeq"],
            &dev["readSeq"],
            &dev["unread"],
            &dev["mentioned"]
        ),
        (&json!(3), &json!(0), &json!(3), &json!(true)),
        "{dev}"
    );

    let marker = phone.request(json!({"type": "read", "room": "#dev", "seq": 1}));
    assert_eq!(
        (&marker["type"], &marker["seq"]),
        (&json!("readMarker"), &json!(1))
    );
    let told = laptop.next_in("readMarker", "#dev");
    assert_eq!(told["seq"], 1, "{told}");
    assert!(told.get("replyTo").is_none(), "{told}");
    let dev = room_in(&laptop.list_rooms(), "#dev").cloned().unwrap();
    assert_eq!(
        (&dev["readSeq"], &dev["unread"], &dev["mentioned"]),
        (&json!(1), &json!(2), &json!(true)),
        "{dev}"
    );
    // The laptop reads on; the phone is told, and nothing is unread.
    laptop.request(json!({"type": "read", "room": "#dev", "seq": 3}));
    assert_eq!(phone.next_in("readMarker", "#dev")["seq"], 3);
    let dev = room_in(&phone.list_rooms(), "#dev").cloned().unwrap();
    assert_eq!(
        (&dev["readSeq"], &dev["unread"], &dev["mentioned"]),
        (&json!(3), &json!(0), &json!(false)),
        "{dev}"
    );
    // A third device logging in sees the marker in its `rooms`.
    let (_, login) = V3::reclaim(server.addr, "alice", &secret, json!([]));
    let dev = login.room("#dev").unwrap();
    assert_eq!(
        (&dev["readSeq"], &dev["unread"]),
        (&json!(3), &json!(0)),
        "{dev}"
    );
    // A part on the laptop shows on the phone.
    laptop.request(json!({"type": "part", "room": "#ops"}));
    assert_eq!(phone.next_in("membership", "#ops")["change"], "left");
}

#[test]
fn a_login_is_told_what_changed_in_its_rooms_while_it_was_away() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    for room in ["#kicked", "#banned", "#parted"] {
        bob.join(room);
        alice.join(room);
    }
    bob.create_invite_only("#invited");
    let rooms = alice.list_rooms();
    let listed: Vec<Value> = ["#kicked", "#banned", "#parted"]
        .into_iter()
        .map(|room| {
            let state = room_in(&rooms, room).unwrap_or_else(|| panic!("{rooms}"));
            json!({"room": room, "epoch": state["epoch"], "since": 0})
        })
        .collect();
    let secret = alice.secret.clone();
    // Away: a second device parts one room and joins another; bob kicks,
    // bans and invites.
    let (mut phone, _) = V3::reclaim(server.addr, "alice", &secret, json!(listed));
    drop(alice);
    phone.request(json!({"type": "part", "room": "#parted"}));
    phone.join("#new");
    drop(phone);
    let kick = json!({"type": "kick", "room": "#kicked", "username": "alice", "reason": "noise"});
    assert_eq!(bob.moderate(kick)["type"], "notice");
    let ban = json!({"type": "ban", "room": "#banned", "username": "alice", "reason": "spam"});
    assert_eq!(bob.moderate(ban)["type"], "notice");
    let invite = json!({"type": "invite", "room": "#invited", "username": "alice"});
    assert_eq!(bob.moderate(invite)["type"], "notice");

    let (_, login) = V3::reclaim(server.addr, "alice", &secret, json!(listed));
    let change = |room: &str| -> Vec<(Value, Value, Value)> {
        login
            .changes(room)
            .iter()
            .map(|c| (c["change"].clone(), c["by"].clone(), c["reason"].clone()))
            .collect()
    };
    assert_eq!(
        change("#kicked"),
        [(json!("kicked"), json!("bob"), json!("noise"))]
    );
    assert_eq!(
        change("#banned"),
        [(json!("banned"), json!("bob"), json!("spam"))]
    );
    assert_eq!(
        change("#parted").first().map(|c| c.0.clone()),
        Some(json!("left"))
    );
    assert_eq!(
        change("#new").first().map(|c| c.0.clone()),
        Some(json!("joined"))
    );
    assert_eq!(
        change("#invited").first().map(|c| c.0.clone()),
        Some(json!("invited"))
    );
    for gone in ["#kicked", "#banned", "#parted"] {
        assert!(login.room(gone).is_none(), "{gone}: {:?}", login.rooms);
    }
    assert!(login.room("#new").is_some(), "{:?}", login.rooms);
}

/// alice (new) owns #dev, where bob is too, has read it, has a DM with bob
/// and an invite to bob's #inner: what a released name must not leave.
fn alice_with_everything(server: &ServerProcess, bob: &mut V3) -> V3 {
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    alice.join("#dev");
    bob.join("#dev");
    alice.say_in("#dev", "mine");
    alice.request(json!({"type": "read", "room": "#dev", "seq": 1}));
    alice.say_in("@bob", "a secret between us");
    bob.said("a secret between us");
    let invite = json!({"type": "invite", "room": "#inner", "username": "alice"});
    assert_eq!(bob.moderate(invite)["type"], "notice");
    alice
}

/// The next owner of the name "alice" inherits nothing of the last.
fn inherits_nothing(server: &ServerProcess, bob: &mut V3) {
    let (mut alice, login) = V3::login_as(server.addr, "alice");
    let rooms: Vec<&Value> = login.rooms["rooms"].as_array().unwrap().iter().collect();
    assert_eq!(rooms.len(), 1, "the lobby only: {:?}", login.rooms);
    assert!(login.changes("#inner").is_empty(), "{:?}", login.rooms);
    assert!(!alice.has_seen("a secret between us"));
    let (code, _) = alice.refused(json!({"type": "history", "room": "#inner"}));
    assert_eq!(code, "notAMember");
    // bob's side of the DM is gone too; #dev goes on without alice.
    let rooms = bob.list_rooms();
    assert!(room_in(&rooms, "@alice").is_none(), "{rooms}");
    assert_eq!(
        room_in(&rooms, "#dev").map(|r| &r["members"]),
        Some(&json!(1)),
        "{rooms}"
    );
    let history = alice.request(json!({"type": "history", "room": "@bob"}));
    let empty = history["type"] == "errorMessage" || messages(&history).is_empty();
    assert!(empty, "{history}");
}

#[test]
fn a_name_released_by_logout_leaves_nothing_to_its_next_owner_even_after_a_restart() {
    let mut server = ServerProcess::start(&NO_RATE_LIMIT);
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    bob.create_invite_only("#inner");
    let mut alice = alice_with_everything(&server, &mut bob);
    alice.send(json!({"type": "logout", "id": "bye"}));
    alice.next_where(|f| f["type"] == "logoutBroadcast" && f["username"] == "alice");
    // The release is saved: after a restart as before it.
    let bob_secret = bob.secret.clone();
    drop(bob);
    server.terminate();
    server.wait_exit();
    server.restart();
    let (mut bob, _) = V3::reclaim(server.addr, "bob", &bob_secret, json!([]));
    inherits_nothing(&server, &mut bob);
}

#[test]
fn a_name_released_by_its_ttl_leaves_nothing_to_its_next_owner() {
    let flags = [&["--in-memory", "--login-ttl", "1s"][..], &NO_RATE_LIMIT].concat();
    let server = ServerProcess::start(&flags);
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    bob.create_invite_only("#inner");
    drop(alice_with_everything(&server, &mut bob));
    bob.next_where(|f| f["type"] == "logoutBroadcast" && f["username"] == "alice");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    inherits_nothing(&server, &mut bob);
}

#[test]
fn a_page_holds_at_most_500_messages_and_256_kib() {
    let flags = [
        &["--in-memory", "--room-history", "1000"][..],
        &NO_RATE_LIMIT,
    ]
    .concat();
    let server = ServerProcess::start(&flags);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    alice.join("#many");
    for n in 1..=520 {
        alice.say_in("#many", &format!("{n}"));
    }
    let page = alice.page("#many", json!({}), Some(1000));
    assert_eq!(seqs(&page), (21..=520).collect::<Vec<u64>>());
    assert_eq!(page["complete"], false);

    alice.join("#long");
    let long = "x".repeat(4000);
    for _ in 0..80 {
        alice.say_in("#long", &long);
    }
    let id = alice.id("history");
    alice.send(json!({"type": "history", "id": id, "room": "#long", "limit": 500}));
    let page = alice.reply(&id);
    let raw = alice
        .received
        .iter()
        .rev()
        .find(|f| f.contains(&format!("\"replyTo\":\"{id}\"")))
        .expect("the page, raw");
    assert!(raw.len() <= 256 * 1024 + 1024, "{} bytes", raw.len());
    let got = seqs(&page);
    assert!(got.len() >= 50 && got.len() < 80, "{} messages", got.len());
    assert_eq!(got.last(), Some(&80), "the latest, oldest first");
    assert_eq!(page["complete"], false);
    // The rest comes before the first.
    let older = alice.everything_held("#long", 500);
    assert_eq!(older.len(), 80);
}

#[test]
fn a_catch_up_larger_than_one_reply_is_recovered_and_the_rest_paged_after_it() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let epoch = alice.join("#long")["state"]["epoch"].clone();
    let secret = alice.secret.clone();
    drop(alice);
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    bob.join("#long");
    for n in 1..=80 {
        bob.say_in("#long", &format!("{n:04}{}", "y".repeat(3996)));
    }
    let known = json!([{"room": "#long", "epoch": epoch, "since": 0}]);
    let (mut alice, login) = V3::reclaim(server.addr, "alice", &secret, known);
    assert_eq!(
        login.room("#long").map(|r| &r["recovered"]),
        Some(&json!(true))
    );
    let first = login
        .history("#long")
        .unwrap_or_else(|| panic!("{login:?}"));
    assert_eq!(first["complete"], false, "one reply cannot hold 320 KB");
    let mut got = seqs(first);
    assert_eq!(got.first(), Some(&1), "from the client's since on");
    for _ in 0..10 {
        let last = *got.last().expect("a page has messages");
        let page = alice.page("#long", json!({"after": last}), Some(500));
        got.extend(seqs(&page));
        if page["complete"] == true {
            break;
        }
    }
    assert_eq!(got, (1..=80).collect::<Vec<u64>>());
}

#[test]
fn a_v3_client_may_leave_the_lobby_and_join_it_again() {
    let server = ServerProcess::start(&["--in-memory", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let mut lobby = Client::connect_v2(server.addr);
    lobby.login("lobbyist");
    let left = alice.request(json!({"type": "part", "room": "#lobby"}));
    assert_eq!(
        (&left["type"], &left["change"]),
        (&json!("membership"), &json!("left")),
        "{left}"
    );
    lobby.say("while alice is out");
    lobby.recv_type("textBroadcast");
    let (code, _) = alice.refused(json!({"type": "textFromUser", "text": "may I?"}));
    assert_eq!(code, "notAMember");
    // Out of the lobby across logins too, until she joins it again.
    let (mut again, login) = V3::reclaim(server.addr, "alice", &alice.secret.clone(), json!([]));
    assert!(login.room("#lobby").is_none(), "{:?}", login.rooms);
    again.join("#lobby");
    assert_eq!(alice.next_in("membership", "#lobby")["change"], "joined");
    lobby.say("welcome back");
    assert!(in_lobby(&alice.said("welcome back")));
    alice.settle(std::time::Duration::from_millis(100));
    assert!(
        !alice.has_seen("while alice is out"),
        "the lobby reached alice out of it"
    );
}

#[test]
fn a_full_disk_refuses_room_messages_joins_and_acts_and_rooms_resume_without_a_gap() {
    // As persistence.rs: the server may not grow its files past 2 MB.
    let (server, _data) = full_disk::start_on_a_full_disk(2 * 1024 * 1024);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    let (mut bob, _) = V3::login_as(server.addr, "bob");
    alice.join("#dev");
    bob.join("#dev");
    let big = "x".repeat(3900);
    let mut last = 0;
    let refused = (0..2000)
        .find_map(|n| {
            let text = format!("big {n} {big}");
            let reply =
                alice.request(json!({"type": "textFromUser", "room": "#dev", "text": text}));
            match reply["type"].as_str() {
                Some("textBroadcast") => {
                    last = reply["seq"].as_u64().unwrap();
                    None
                }
                _ => Some((n, reply)),
            }
        })
        .expect("a write failed once the file could not grow");
    let (refused_n, refused) = refused;
    assert_eq!(refused["error"], "unavailable", "{refused}");
    // A join (of a new room) and an act are refused too, and undone.
    let (code, _) = alice.refused(json!({"type": "join", "room": "#new"}));
    assert_eq!(code, "unavailable");
    assert!(room_in(&alice.list_rooms(), "#new").is_none());
    let topic = alice.moderate(json!({"type": "topic", "room": "#dev", "topic": "full"}));
    assert_eq!(topic["error"], "unavailable", "{topic}");

    full_disk::free_space(&server);
    // The refused message took no number, and never reached bob.
    let ack = alice.say_in("#dev", "room again");
    assert_eq!(ack["seq"], last + 1, "{ack}");
    let heard = bob.said("room again");
    assert_eq!(heard["seq"], last + 1);
    let refused_text = format!("\"big {refused_n} ");
    assert!(!bob.received.iter().any(|f| f.contains(&refused_text)));
    alice.join("#new");
}

/// The store keeps what `--room-history` says, not its default (500): a
/// restart must not trim a room to the default.
#[test]
fn a_room_history_above_the_default_outlives_a_restart() {
    let mut server =
        ServerProcess::start(&["--room-history", "510", NO_RATE_LIMIT[0], NO_RATE_LIMIT[1]]);
    let (mut alice, _) = V3::login_as(server.addr, "alice");
    alice.join("#dev");
    for n in 1..=510 {
        alice.say_in("#dev", &format!("m{n}"));
    }
    drop(alice);
    server.restart();
    let (mut alice, _) = V3::login_as(server.addr, "carol");
    alice.join("#dev");
    let held = alice.everything_held("#dev", 500);
    assert_eq!(held.len(), 510, "messages held after the restart");
}
