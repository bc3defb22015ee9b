//! Rooms across the nodes of a cluster (issue 23), in the core, on virtual
//! clocks: two or three cluster cores (`Server::cluster`) joined by a small
//! shared store that the test plays. The store answers each core's
//! requests as Redis would (names reserved once for every node, each room
//! numbered on its own, writes kept) and tells every OTHER core what it
//! took, in the order it took it: writes as `Remote::Write`, room entries
//! as `Remote::RoomEntry`, lobby messages as `Remote::Message`, logins and
//! leavings as `Remote::Joined` / `Remote::Left`.
//!
//! What a connection sees is compared with what it would see on a single
//! node (docs/PROTOCOL.md, "Version 3"), whole lists per connection.

#[path = "common/rooms.rs"]
mod rooms;

use std::collections::HashMap;
use std::sync::Arc;

use rooms::*;
use serde_json::{Value, json};
use wschat::server::{
    Append, Claim, Disconnect, Failed, Remote, Request, Reserve, SecretHash, Snapshot,
    StoredMessage, StoredName, StoredRoom, Write,
};
use wschat::{ConnectionId, Version};

/// The shared store, and the nodes it joins.
struct Cluster {
    nodes: Vec<World>,
    /// The latest `seq` of each numbering (`None`: the lobby).
    seqs: HashMap<Option<Arc<str>>, u64>,
    /// Names held: key → (display, secret's hash).
    names: HashMap<Arc<str>, (Arc<str>, SecretHash)>,
    /// Connections holding each name, on every node.
    online: HashMap<Arc<str>, usize>,
    /// Every write taken, in order (what a new node would load).
    writes: Vec<Write>,
    /// Each room's epoch: a room made with another is refused, as the
    /// shared store settles two nodes making one room at once.
    epochs: HashMap<Arc<str>, Arc<str>>,
    /// How many of the next requests the store refuses.
    refuse: usize,
}

impl Cluster {
    fn new(nodes: usize) -> Cluster {
        Cluster::with(nodes, Snapshot::default())
    }

    fn with(nodes: usize, snapshot: Snapshot) -> Cluster {
        let nodes = (0..nodes)
            .map(|n| World::cluster(config(), snapshot.clone(), 100 + n as u64))
            .collect();
        Cluster {
            nodes,
            seqs: HashMap::new(),
            names: HashMap::new(),
            online: HashMap::new(),
            writes: Vec::new(),
            epochs: HashMap::new(),
            refuse: 0,
        }
    }

    /// Answers every request of every node, in the order they were made,
    /// telling the other nodes what was taken, until none is left.
    fn run(&mut self) {
        loop {
            let mut any = false;
            for node in 0..self.nodes.len() {
                let pending = std::mem::take(&mut self.nodes[node].pending);
                // What a core asked at once is one group, taken or refused
                // together.
                let mut refused = false;
                for request in pending {
                    any = true;
                    refused |= self.refuses(&request);
                    if refused {
                        let answer = request.fail(Failed("refused".into()));
                        self.nodes[node].answer(answer);
                    } else {
                        self.take(node, request);
                    }
                }
            }
            if !any {
                break;
            }
        }
    }

    /// Whether the store refuses `request`: a room made anew under another
    /// epoch, or one of the requests the test said to refuse.
    fn refuses(&mut self, request: &Request) -> bool {
        if self.refuse > 0 {
            self.refuse -= 1;
            return true;
        }
        if let Request::Write(_, Write::Room { room, epoch, .. }) = request {
            let known = self.epochs.entry(room.clone()).or_insert(epoch.clone());
            return known != epoch;
        }
        false
    }

    /// The store takes `request` of `node`.
    fn take(&mut self, node: usize, request: Request) {
        let mut tell = Vec::new();
        let answer = match &request {
            Request::Reserve(ticket, reserve) => {
                let Reserve {
                    key,
                    display,
                    offered,
                    fresh,
                    location,
                    timestamp,
                } = reserve;
                let decision = match self.names.get(key) {
                    Some((held, secret)) if Some(*secret) == *offered => {
                        (Claim::Reclaimed, held.clone())
                    }
                    Some((held, _)) => (Claim::Taken, held.clone()),
                    None => {
                        self.names.insert(key.clone(), (display.clone(), *fresh));
                        (Claim::Fresh, display.clone())
                    }
                };
                if decision.0 != Claim::Taken {
                    *self.online.entry(key.clone()).or_default() += 1;
                    tell.push(Remote::Joined {
                        username: decision.1.clone(),
                        location: location.clone(),
                        timestamp: *timestamp,
                    });
                }
                ticket.answer(Ok(decision))
            }
            Request::Disconnect(
                ticket,
                Disconnect {
                    key,
                    display,
                    reason,
                },
            ) => {
                let count = self.online.entry(key.clone()).or_default();
                *count = count.saturating_sub(1);
                let gone = *count == 0;
                if gone {
                    tell.push(Remote::Left {
                        username: display.clone(),
                        reason: *reason,
                    });
                }
                ticket.answer(Ok(gone))
            }
            Request::Online(ticket) => {
                let online = self
                    .online
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(key, n)| (self.names[key].0.clone(), *n))
                    .collect();
                ticket.answer(Ok(online))
            }
            Request::Append(ticket, append) => {
                let Append {
                    room,
                    id,
                    timestamp,
                    username,
                    text,
                    notice,
                } = append;
                let seq = self.seqs.entry(room.clone()).or_default();
                *seq += 1;
                let message = StoredMessage {
                    seq: *seq,
                    id: id.to_string(),
                    timestamp: *timestamp,
                    username: username.to_string(),
                    text: text.to_string(),
                    notice: *notice,
                };
                tell.push(match room {
                    Some(room) => Remote::RoomEntry {
                        room: room.clone(),
                        message,
                    },
                    None => Remote::Message(message),
                });
                ticket.answer(Ok(*seq))
            }
            Request::Write(ticket, write) => {
                match write {
                    Write::Alive { .. } => {}
                    Write::Logout { key, display } => {
                        self.names.remove(key);
                        self.online.remove(key);
                        tell.push(Remote::LoggedOut {
                            key: key.clone(),
                            username: display.clone(),
                        });
                    }
                    write => {
                        self.writes.push(write.clone());
                        tell.push(Remote::Write(write.clone()));
                    }
                }
                ticket.answer(Ok(()))
            }
        };
        // The others hear of it as the store takes it; the asker's answer
        // comes back after (it crosses the network too).
        for remote in tell {
            for other in (0..self.nodes.len()).filter(|&n| n != node) {
                self.nodes[other].remote(remote.clone());
            }
        }
        self.nodes[node].answer(answer);
    }

    /// `message` from `conn` of `node`, everything settled; what every
    /// node sent, by node.
    fn ask(&mut self, node: usize, conn: ConnectionId, message: Value) -> Vec<Vec<Out>> {
        self.nodes[node].send(conn, message);
        self.drain()
    }

    /// Settles every request; what every node sent since, by node.
    fn drain(&mut self) -> Vec<Vec<Out>> {
        self.run();
        self.nodes.iter_mut().map(World::drain).collect()
    }

    /// A v3 connection of `node` logged in as `name` (with `secret`, for
    /// another device); everything said meanwhile is discarded.
    fn login(&mut self, node: usize, name: &str, secret: Option<String>) -> ConnectionId {
        let conn = self.nodes[node].open3();
        let mut login = json!({"type": "login", "id": "l", "username": name});
        if let Some(secret) = secret {
            login["secret"] = secret.into();
        }
        let out = self.ask(node, conn, login);
        assert!(
            kinds(&out[node], conn).contains(&"loginMessage".to_owned()),
            "login of {name} on node {node} failed: {out:#?}"
        );
        conn
    }

    fn user(&mut self, node: usize, name: &str) -> ConnectionId {
        self.login(node, name, None)
    }

    /// Another device of the name `first` (on `first_node`) holds, on
    /// `node`.
    fn device(
        &mut self,
        node: usize,
        name: &str,
        first_node: usize,
        first: ConnectionId,
    ) -> ConnectionId {
        let secret = self.nodes[first_node].secret(first);
        self.login(node, name, Some(secret))
    }

    fn join(&mut self, node: usize, conn: ConnectionId, room: &str) {
        let out = self.ask(node, conn, json!({"type": "join", "id": "j", "room": room}));
        assert_joined(&out[node], conn, room);
    }

    fn act(
        &mut self,
        node: usize,
        conn: ConnectionId,
        act: &str,
        room: &str,
        fields: Value,
    ) -> Vec<Vec<Out>> {
        let mut message = json!({"type": act, "id": "a", "room": room});
        if let (Some(m), Value::Object(fields)) = (message.as_object_mut(), fields) {
            m.extend(fields);
        }
        self.ask(node, conn, message)
    }

    fn say(&mut self, node: usize, conn: ConnectionId, room: &str, text: &str) -> Vec<Vec<Out>> {
        self.ask(
            node,
            conn,
            json!({"type": "textFromUser", "id": "m", "room": room, "text": text}),
        )
    }

    fn now_ms(&self, node: usize) -> u64 {
        self.nodes[node].now_ms()
    }
}

const A: usize = 0;
const B: usize = 1;

/// A `notice` as members see it.
fn notice(room: &str, seq: u64, timestamp: u64, act: &str, by: &str, extra: Value) -> Value {
    let mut frame = json!({"type": "notice", "id": "*", "room": room, "seq": seq,
        "timestamp": timestamp, "act": act, "by": by});
    if let (Some(f), Value::Object(extra)) = (frame.as_object_mut(), extra) {
        f.extend(extra);
    }
    frame
}

/// A `membership` frame of a change made by someone else (no `replyTo`).
fn membership(room: &str, change: &str, extra: Value) -> Value {
    let mut frame = json!({"type": "membership", "id": "*", "room": room, "change": change});
    if let (Some(f), Value::Object(extra)) = (frame.as_object_mut(), extra) {
        f.extend(extra);
    }
    frame
}

#[test]
fn a_room_made_on_one_node_is_listed_and_joined_on_another_and_both_speak_in_one_order() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    c.join(A, alice, "#dev");
    let _ = c.drain();

    // Listed on B as a public room bob is not in.
    let out = c.ask(B, bob, json!({"type": "listRooms", "id": "r"}));
    let listed = states(&one(&out[B], bob, "roomList"));
    let mut dev = state("#dev", 1, "", 0, 0);
    dev["role"] = Value::Null;
    dev.as_object_mut().unwrap().remove("role");
    assert_eq!(listed["#dev"], dev);

    // bob joins on B: alice on A hears of it as a member would.
    let out = c.ask(B, bob, json!({"type": "join", "id": "j", "room": "#dev"}));
    let at = c.now_ms(A);
    assert_out(
        &out[B],
        vec![send(
            bob,
            joined("#dev", Some("j"), state("#dev", 2, "member", 0, 0)),
        )],
    );
    assert_out(
        &out[A],
        vec![send(alice, member("#dev", "bob", "joined", at))],
    );

    // Both speak, numbered in the room's one order, each hearing both.
    let out = c.say(A, alice, "#dev", "hi from A");
    let (ta, tb) = (c.now_ms(A), c.now_ms(B));
    assert_out(
        &out[A],
        vec![send(
            alice,
            text_in("#dev", "alice", "hi from A", 1, ta, Some("m")),
        )],
    );
    assert_out(
        &out[B],
        vec![send(
            bob,
            text_in("#dev", "alice", "hi from A", 1, ta, None),
        )],
    );
    let out = c.say(B, bob, "#dev", "hi from B");
    assert_out(
        &out[B],
        vec![send(
            bob,
            text_in("#dev", "bob", "hi from B", 2, tb, Some("m")),
        )],
    );
    assert_out(
        &out[A],
        vec![send(
            alice,
            text_in("#dev", "bob", "hi from B", 2, tb, None),
        )],
    );
}

#[test]
fn a_name_on_two_nodes_learns_on_each_what_it_did_on_the_other() {
    let mut c = Cluster::new(2);
    let laptop = c.user(A, "alice");
    let phone = c.device(B, "alice", A, laptop);
    let bob = c.user(B, "bob");
    c.join(B, bob, "#dev");
    let _ = c.drain();

    // Joined on A: the phone on B is told, bob hears a member join.
    let out = c.ask(
        A,
        laptop,
        json!({"type": "join", "id": "j", "room": "#dev"}),
    );
    let at = c.now_ms(B);
    assert_out(
        &out[A],
        vec![send(
            laptop,
            joined("#dev", Some("j"), state("#dev", 2, "member", 0, 0)),
        )],
    );
    assert_out(
        &out[B],
        vec![
            send(
                phone,
                joined("#dev", None, state("#dev", 2, "member", 0, 0)),
            ),
            send(bob, member("#dev", "alice", "joined", at)),
        ],
    );

    // bob speaks on B; alice reads on A: her phone's marker agrees.
    let _ = c.say(B, bob, "#dev", "one");
    let _ = c.say(B, bob, "#dev", "two");
    let out = c.ask(
        A,
        laptop,
        json!({"type": "read", "id": "r", "room": "#dev", "seq": 1}),
    );
    assert_out(
        &out[B],
        vec![send(
            phone,
            json!({"type": "readMarker", "id": "*", "room": "#dev", "seq": 1}),
        )],
    );
    let out = c.ask(B, phone, json!({"type": "listRooms", "id": "r"}));
    let listed = states(&one(&out[B], phone, "roomList"));
    assert_eq!(listed["#dev"], state("#dev", 2, "member", 2, 1));

    // Parted on A with a reason: the phone is told, with it; bob hears a
    // member leave.
    let out = c.ask(
        A,
        laptop,
        json!({"type": "part", "id": "p", "room": "#dev", "reason": "lunch"}),
    );
    assert_out(
        &out[B],
        vec![
            send(
                phone,
                membership("#dev", "left", json!({"reason": "lunch"})),
            ),
            send(bob, member("#dev", "alice", "left", at)),
        ],
    );
    // And the lobby: left on B, the laptop on A is told.
    let out = c.ask(
        B,
        phone,
        json!({"type": "part", "id": "p", "room": "#lobby"}),
    );
    assert_out(
        &out[A],
        vec![send(laptop, membership("#lobby", "left", json!({})))],
    );
    let out = c.say(A, laptop, "#lobby", "still here?");
    assert_refused(&out[A], laptop, "notAMember", "m", "not in #lobby");
}

#[test]
fn moderation_acted_on_one_node_is_enforced_on_another() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    let carol = c.user(B, "carol");
    c.join(A, alice, "#dev");
    c.join(B, bob, "#dev");
    c.join(B, carol, "#dev");
    let _ = c.drain();
    let at = c.now_ms(A);

    // A mute on A: bob's message on B is refused.
    let out = c.act(A, alice, "mute", "#dev", json!({"username": "bob"}));
    let mute = notice("#dev", 1, at, "mute", "alice", json!({"username": "bob"}));
    assert_out(&out[B], vec![send(bob, mute.clone()), send(carol, mute)]);
    let out = c.say(B, bob, "#dev", "can I?");
    assert_refused(&out[B], bob, "muted", "m", "you are muted in #dev");

    // A kick on A: carol on B is told she was kicked, after the notice the
    // others get, and bob hears her leave.
    let out = c.act(
        A,
        alice,
        "kick",
        "#dev",
        json!({"username": "carol", "reason": "spam"}),
    );
    let kick = notice(
        "#dev",
        2,
        at,
        "kick",
        "alice",
        json!({"username": "carol", "reason": "spam"}),
    );
    assert_out(
        &out[A],
        vec![
            send(alice, kick.clone()),
            send(alice, member("#dev", "carol", "left", at)),
        ],
    );
    assert_out(
        &out[B],
        vec![
            send(bob, kick),
            send(
                carol,
                membership("#dev", "kicked", json!({"by": "alice", "reason": "spam"})),
            ),
            send(bob, member("#dev", "carol", "left", at)),
        ],
    );
    let out = c.say(B, carol, "#dev", "back?");
    assert_refused(&out[B], carol, "notAMember", "m", "not in #dev");

    // A topic and invite-only on A: seen on B, and carol may not come back.
    let out = c.act(A, alice, "topic", "#dev", json!({"topic": "rust"}));
    assert_out(
        &out[B],
        vec![send(
            bob,
            notice("#dev", 3, at, "topic", "alice", json!({"topic": "rust"})),
        )],
    );
    let out = c.act(A, alice, "mode", "#dev", json!({"inviteOnly": true}));
    assert_out(
        &out[B],
        vec![send(
            bob,
            notice("#dev", 4, at, "mode", "alice", json!({"inviteOnly": true})),
        )],
    );
    let out = c.ask(B, carol, json!({"type": "join", "id": "j", "room": "#dev"}));
    assert_refused(&out[B], carol, "forbidden", "j", "#dev is invite-only");
    let out = c.ask(B, bob, json!({"type": "listRooms", "id": "r"}));
    let listed = states(&one(&out[B], bob, "roomList"));
    assert_eq!(listed["#dev"]["topic"], "rust");
    assert_eq!(listed["#dev"]["inviteOnly"], true);

    // Invited on A, carol on B is told, and may join.
    let out = c.act(A, alice, "invite", "#dev", json!({"username": "carol"}));
    assert_eq!(
        frames(&out[B], carol),
        [membership("#dev", "invited", json!({"by": "alice"}))]
    );
    c.join(B, carol, "#dev");

    // A ban on A: bob on B is told, and may not come back.
    let out = c.act(A, alice, "ban", "#dev", json!({"username": "bob"}));
    assert_out(
        &out[B],
        vec![
            send(
                carol,
                notice("#dev", 6, at, "ban", "alice", json!({"username": "bob"})),
            ),
            send(bob, membership("#dev", "banned", json!({"by": "alice"}))),
            send(carol, member("#dev", "bob", "left", at)),
        ],
    );
    let out = c.ask(B, bob, json!({"type": "join", "id": "j", "room": "#dev"}));
    assert_refused(&out[B], bob, "banned", "j", "banned from #dev for good");
}

#[test]
fn what_was_said_on_one_node_is_caught_up_and_paged_on_another() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    c.join(A, alice, "#dev");
    c.join(B, bob, "#dev");
    for text in ["one", "two", "three"] {
        let _ = c.say(A, alice, "#dev", text);
    }
    let _ = c.drain();
    let at = c.now_ms(A);

    // bob's second device on B: the catch-up comes from B's memory.
    let secret = c.nodes[B].secret(bob);
    let tablet = c.nodes[B].open3();
    let out = c.ask(
        B,
        tablet,
        json!({"type": "login", "id": "l", "username": "bob", "secret": secret}),
    );
    let rooms = one(&out[B], tablet, "rooms");
    let mut dev = state("#dev", 2, "member", 3, 0);
    dev["recovered"] = false.into();
    assert_eq!(states(&rooms)["#dev"], dev);
    let history = &histories(&out[B], tablet)["#dev"];
    assert_eq!(history_entries(history), ["1:one", "2:two", "3:three"]);

    // Paged on B.
    let out = c.ask(
        B,
        tablet,
        json!({"type": "history", "id": "h", "room": "#dev", "before": 3, "limit": 1}),
    );
    assert_out(
        &out[B],
        vec![send(
            tablet,
            json!({"type": "history", "id": "*", "replyTo": "h", "epoch": "<epoch>",
                "room": "#dev", "complete": false,
                "messages": [text_in("#dev", "alice", "two", 2, at, None)]}),
        )],
    );
}

#[test]
fn a_direct_conversation_across_nodes() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    let _ = c.drain();
    let (ta, tb) = (c.now_ms(A), c.now_ms(B));

    let out = c.say(A, alice, "@bob", "psst");
    let dm = |room: &str| {
        let mut state = state(room, 2, "member", 0, 0);
        state["inviteOnly"] = true.into();
        joined(room, None, state)
    };
    assert_out(
        &out[A],
        vec![
            send(alice, dm("@bob")),
            send(alice, text_in("@bob", "alice", "psst", 1, ta, Some("m"))),
        ],
    );
    assert_out(
        &out[B],
        vec![
            send(bob, dm("@alice")),
            send(bob, text_in("@alice", "alice", "psst", 1, ta, None)),
        ],
    );
    let out = c.say(B, bob, "@alice", "yes?");
    assert_out(
        &out[A],
        vec![send(alice, text_in("@bob", "bob", "yes?", 2, tb, None))],
    );
    assert_out(
        &out[B],
        vec![send(
            bob,
            text_in("@alice", "bob", "yes?", 2, tb, Some("m")),
        )],
    );
}

#[test]
fn a_name_on_another_node_not_in_a_private_room_sees_nothing_of_it() {
    let mut c = Cluster::new(3);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    let carol = c.user(2, "carol");
    let out = c.ask(
        A,
        alice,
        json!({"type": "join", "id": "j", "room": "#Secret", "inviteOnly": true}),
    );
    assert_joined(&out[A], alice, "#Secret");
    let _ = c.act(A, alice, "invite", "#Secret", json!({"username": "bob"}));
    c.join(B, bob, "#Secret");
    let _ = c.say(A, alice, "#Secret", "the plan");
    let _ = c.say(B, bob, "#Secret", "agreed");
    let _ = c.act(A, alice, "topic", "#Secret", json!({"topic": "hush"}));
    let _ = c.act(A, alice, "kick", "#Secret", json!({"username": "bob"}));
    let _ = c.ask(C, carol, json!({"type": "listRooms", "id": "r"}));
    let seen = c.nodes[C].raw_to(carol).join("\n").to_lowercase();
    for word in ["#secret", "the plan", "agreed", "hush"] {
        assert!(!seen.contains(word), "carol saw {word:?}: {seen}");
    }
    // Asking tells her only what she wrote.
    let out = c.ask(
        C,
        carol,
        json!({"type": "listMembers", "id": "m", "room": "#secret"}),
    );
    assert_refused(&out[C], carol, "notAMember", "m", "you are not in #secret");
    let out = c.ask(
        C,
        carol,
        json!({"type": "join", "id": "j", "room": "#secret"}),
    );
    assert_refused(&out[C], carol, "forbidden", "j", "#secret is invite-only");
    let seen = c.nodes[C].raw_to(carol).join("\n");
    for word in ["#Secret", "the plan", "agreed", "hush"] {
        assert!(!seen.contains(word), "carol saw {word:?}: {seen}");
    }
    // bob, on another node, still knows the room existed (he was in it).
    assert!(c.nodes[B].raw_to(bob).join("\n").contains("#Secret"));
}

const C: usize = 2;

#[test]
fn a_node_started_from_the_store_holds_every_room_and_goes_on_with_them() {
    let mut c = Cluster::new(1);
    let alice = c.user(A, "alice");
    c.join(A, alice, "#dev");
    let _ = c.say(A, alice, "#dev", "before B");
    let _ = c.drain();
    // B starts from what the store holds: the names and the rooms.
    let names = c
        .names
        .iter()
        .map(|(key, (display, secret))| StoredName {
            key: key.to_string(),
            display: display.to_string(),
            secret: *secret,
            expires_at: None,
        })
        .collect();
    let Some(Write::Room { epoch, .. }) = c.writes.iter().find(|w| matches!(w, Write::Room { .. }))
    else {
        panic!("no room written");
    };
    let snapshot = Snapshot {
        names,
        rooms: vec![StoredRoom {
            key: "#dev".into(),
            display: "#dev".into(),
            owner: Some("alice".into()),
            epoch: epoch.to_string(),
            last_seq: 1,
            members: vec![wschat::server::StoredMember {
                name: "alice".into(),
                role: wschat::protocol::Role::Owner,
                muted_until: None,
            }],
            ..StoredRoom::default()
        }],
        ..Snapshot::default()
    };
    c.nodes.push(World::cluster(config(), snapshot, 7));
    let bob = c.user(B, "bob");
    let out = c.ask(
        B,
        bob,
        json!({"type": "listMembers", "id": "m", "room": "#dev"}),
    );
    let members = one(&out[B], bob, "memberList");
    assert_eq!(members["members"][0]["username"], "alice");
    assert_eq!(members["members"][0]["role"], "owner");
    c.join(B, bob, "#dev");
    let out = c.say(A, alice, "#dev", "after B");
    let at = c.now_ms(A);
    assert_out(
        &out[B],
        vec![send(bob, text_in("#dev", "alice", "after B", 2, at, None))],
    );
}

#[test]
fn v1_and_v2_connections_see_nothing_of_rooms_across_nodes() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let olga = c.user(A, "olga");
    // olga's v2 device on B, holding the name her v3 device holds on A.
    let secret = c.nodes[A].secret(olga);
    let old = c.nodes[B].open(Version::V2);
    let out = c.ask(
        B,
        old,
        json!({"type": "login", "id": "l", "username": "olga", "secret": secret}),
    );
    assert!(kinds(&out[B], old).contains(&"loginMessage".to_owned()));
    let older = c.nodes[B].open(Version::V1);
    let _ = c.ask(
        B,
        older,
        json!({"type": "login", "id": "l", "username": "oleg"}),
    );
    let _ = c.drain();
    c.join(A, alice, "#dev");
    c.join(A, olga, "#dev");
    let _ = c.say(A, alice, "#dev", "rooms talk");
    let _ = c.act(A, alice, "topic", "#dev", json!({"topic": "t"}));
    let _ = c.ask(
        A,
        olga,
        json!({"type": "read", "id": "r", "room": "#dev", "seq": 1}),
    );
    let _ = c.say(A, alice, "@olga", "psst");
    let out = c.drain();
    assert_eq!(out[B], []);
    for conn in [old, older] {
        let seen = c.nodes[B].raw_to(conn).join("\n");
        assert!(
            !seen.contains("#dev") && !seen.contains("rooms talk"),
            "{seen}"
        );
    }
}

#[test]
fn a_room_made_on_two_nodes_at_once_is_the_one_the_store_took_first_and_the_other_joins_it() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    let _ = c.drain();
    // Both ask before the store takes either: A's is taken first.
    c.nodes[A].send(alice, json!({"type": "join", "id": "j", "room": "#dev"}));
    c.nodes[B].send(bob, json!({"type": "join", "id": "j", "room": "#Dev"}));
    let out = c.drain();
    // bob's creation was refused and taken back; alice's room, heard by
    // then, stands on B: bob joins it, as on a single node.
    let at = c.now_ms(A);
    assert_out(
        &out[A],
        vec![
            send(
                alice,
                joined("#dev", Some("j"), state("#dev", 1, "owner", 0, 0)),
            ),
            send(alice, member("#dev", "bob", "joined", at)),
        ],
    );
    assert_out(
        &out[B],
        vec![send(
            bob,
            joined("#dev", Some("j"), state("#dev", 2, "member", 0, 0)),
        )],
    );
    let out = c.ask(
        B,
        bob,
        json!({"type": "listMembers", "id": "m", "room": "#dev"}),
    );
    let members = one(&out[B], bob, "memberList");
    assert_eq!(members["members"][0]["username"], "alice");
    assert_eq!(members["members"][0]["role"], "owner");
}

#[test]
fn what_the_store_refuses_is_taken_back_and_no_other_node_hears_of_it() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    c.join(A, alice, "#dev");
    c.join(B, bob, "#dev");
    let _ = c.drain();

    // A message the store refuses.
    c.refuse = 1;
    let out = c.say(A, alice, "#dev", "lost");
    assert_eq!(out[B], []);
    assert_eq!(
        frames(&out[A], alice),
        [error_frame(
            "unavailable",
            "m",
            "the server could not save the message; it was not sent, try again in a moment"
        )]
    );

    // A kick whose writes the store refuses: bob stays, on both nodes.
    c.refuse = 2;
    let out = c.act(A, alice, "kick", "#dev", json!({"username": "bob"}));
    assert_eq!(out[B], []);
    assert_eq!(
        frames(&out[A], alice),
        [error_frame(
            "unavailable",
            "a",
            "the server could not save that act; nobody was told of it, try again in a moment"
        )]
    );
    let out = c.ask(
        A,
        alice,
        json!({"type": "listMembers", "id": "m", "room": "#dev"}),
    );
    let members = one(&out[A], alice, "memberList");
    assert_eq!(members["members"].as_array().map(Vec::len), Some(2));
    let out = c.say(B, bob, "#dev", "still here");
    let at = c.now_ms(B);
    assert_out(
        &out[A],
        vec![send(
            alice,
            text_in("#dev", "bob", "still here", 1, at, None),
        )],
    );
}

#[test]
fn members_are_listed_online_while_a_connection_on_any_node_holds_them() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    c.join(A, alice, "#dev");
    c.join(B, bob, "#dev");
    let _ = c.drain();
    let listed = |c: &mut Cluster, room: &str| {
        let out = c.ask(
            B,
            bob,
            json!({"type": "listMembers", "id": "m", "room": room}),
        );
        one(&out[B], bob, "memberList")["members"].clone()
    };
    let entry = |name: &str, role: &str, online: bool| json!({"username": name, "role": role, "online": online});
    assert_eq!(
        listed(&mut c, "#dev"),
        json!([entry("alice", "owner", true), entry("bob", "member", true)])
    );
    assert_eq!(
        listed(&mut c, "#lobby"),
        json!([entry("alice", "member", true), entry("bob", "member", true)])
    );
    // alice's only connection, on A, closes: offline everywhere (her name
    // is still held, and she still in #dev).
    c.nodes[A].close(alice);
    let _ = c.drain();
    assert_eq!(
        listed(&mut c, "#dev"),
        json!([entry("alice", "owner", false), entry("bob", "member", true)])
    );
    assert_eq!(
        listed(&mut c, "#lobby"),
        json!([
            entry("alice", "member", false),
            entry("bob", "member", true)
        ])
    );
}

#[test]
fn a_name_the_store_releases_leaves_its_rooms_on_every_node() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    c.join(A, alice, "#dev");
    c.join(B, bob, "#dev");
    let _ = c.say(A, alice, "@bob", "psst");
    c.nodes[A].close(alice);
    let _ = c.drain();
    // Its TTL ran out: the store releases it and tells every node.
    c.names.remove("alice");
    for node in 0..2 {
        c.nodes[node].remote(Remote::Write(Write::Release {
            key: "alice".into(),
        }));
    }
    let out = c.drain();
    let at = c.now_ms(B);
    assert_out(
        &out[B],
        // As a single node tells it: the DM dropped first.
        vec![
            send(
                bob,
                membership(
                    "@alice",
                    "left",
                    json!({"reason": "the other party's name was released"}),
                ),
            ),
            send(bob, member("#dev", "alice", "left", at)),
        ],
    );
    let out = c.say(B, bob, "@alice", "hello?");
    assert_refused(&out[B], bob, "noSuchUser", "m", "no one holds the name");
    let out = c.ask(
        B,
        bob,
        json!({"type": "listMembers", "id": "m", "room": "#dev"}),
    );
    assert_eq!(
        one(&out[B], bob, "memberList")["members"],
        json!([{"username": "bob", "role": "member", "online": true}])
    );
}

#[test]
fn another_node_s_writes_are_applied_and_never_written_again() {
    // A node that has not heard of alice's login yet (it reached another
    // shard first): the DM stands, and no write goes back to the store.
    let mut node = World::cluster(config(), Snapshot::default(), 9);
    let bob = {
        let mut c = Cluster {
            nodes: vec![node],
            ..Cluster::new(0)
        };
        let bob = c.user(0, "bob");
        node = c.nodes.pop().unwrap();
        bob
    };
    let dm: Arc<str> = "@alice\nbob".into();
    let mark = node.journal.len();
    for write in [
        Write::Room {
            room: dm.clone(),
            display: "@Alice\nbob".into(),
            owner: None,
            invite_only: true,
            topic: None,
            epoch: "e1".into(),
        },
        Write::Member {
            room: dm.clone(),
            name: "alice".into(),
            role: wschat::protocol::Role::Member,
            muted_until: None,
        },
        Write::Member {
            room: dm.clone(),
            name: "bob".into(),
            role: wschat::protocol::Role::Member,
            muted_until: None,
        },
    ] {
        node.remote(Remote::Write(write));
    }
    assert_eq!(node.journal_since(mark), []);
    assert_eq!(node.server.room_count(), 1);
    let out = node.drain();
    assert_eq!(
        frames(&out, bob),
        [joined("@Alice", None, {
            let mut state = state("@Alice", 2, "member", 0, 0);
            state["inviteOnly"] = true.into();
            state
        })]
    );
}

#[test]
fn a_name_logged_out_on_one_node_leaves_its_rooms_on_every_node() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    c.join(A, alice, "#dev");
    c.join(B, bob, "#dev");
    let _ = c.drain();
    let out = c.ask(A, alice, json!({"type": "logout", "id": "o"}));
    let at = c.now_ms(B);
    assert!(
        frames(&out[B], bob).contains(&member("#dev", "alice", "left", at)),
        "{out:#?}"
    );
    let out = c.ask(
        B,
        bob,
        json!({"type": "listMembers", "id": "m", "room": "#dev"}),
    );
    assert_eq!(
        one(&out[B], bob, "memberList")["members"],
        json!([{"username": "bob", "role": "member", "online": true}])
    );
    // The name is free again: whoever takes it is in no room.
    let again = c.user(A, "alice");
    let out = c.ask(A, again, json!({"type": "listRooms", "id": "r"}));
    assert_eq!(
        states(&one(&out[A], again, "roomList"))["#dev"]["role"],
        Value::Null
    );
}

#[test]
fn a_room_two_nodes_make_at_once_is_one_room_and_the_losers_creation_and_joins_become_joins() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    let dee = c.user(B, "dee");
    let _ = c.drain();
    // At the same moment: alice makes #new on A; bob makes it on B and dee
    // joins bob's (not yet saved) room there. The store takes A's first
    // (and tells B), then refuses B's creation and dee's join with it.
    c.nodes[A].send(alice, json!({"type": "join", "id": "j", "room": "#new"}));
    c.nodes[B].send(bob, json!({"type": "join", "id": "j", "room": "#new"}));
    c.nodes[B].send(dee, json!({"type": "join", "id": "j", "room": "#new"}));
    let out = c.drain();
    // Each of the three is told it joined, once, and nobody is refused.
    for (node, conn) in [(A, alice), (B, bob), (B, dee)] {
        let answers: Vec<Value> = frames(&out[node], conn)
            .into_iter()
            .filter(|f| f["replyTo"] == "j")
            .collect();
        assert_eq!(answers.len(), 1, "{conn:?}: {answers:#?}");
        assert_eq!(
            (&answers[0]["type"], &answers[0]["change"]),
            (&json!("membership"), &json!("joined")),
            "{conn:?}: {answers:#?}"
        );
    }
    // One room, alice its owner, three members, on both nodes; each may speak.
    for (node, conn) in [(A, alice), (B, bob)] {
        let out = c.ask(
            node,
            conn,
            json!({"type": "listMembers", "id": "m", "room": "#new"}),
        );
        let members = one(&out[node], conn, "memberList");
        let roles: Vec<(&Value, &Value)> = members["members"]
            .as_array()
            .map(|m| m.iter().map(|m| (&m["username"], &m["role"])).collect())
            .unwrap_or_default();
        assert_eq!(
            roles,
            [
                (&json!("alice"), &json!("owner")),
                (&json!("bob"), &json!("member")),
                (&json!("dee"), &json!("member"))
            ],
            "node {node}: {members}"
        );
    }
    for (node, conn, name) in [(A, alice, "alice"), (B, bob, "bob"), (B, dee, "dee")] {
        let out = c.say(node, conn, "#new", &format!("{name} here"));
        assert_eq!(
            kinds(&out[node], conn),
            ["textBroadcast"],
            "{name}: {out:#?}"
        );
    }
}

#[test]
fn a_join_saved_apart_from_a_losing_creation_shows_in_the_winning_room() {
    let mut c = Cluster::new(2);
    let alice = c.user(A, "alice");
    let bob = c.user(B, "bob");
    let dee = c.user(B, "dee");
    let _ = c.drain();
    // bob makes #new on B, and dee joins it there; the store has not
    // answered bob's creation when dee's join, sent apart, is answered
    // saved (Redis had alice's room by then: B has not heard of it yet).
    c.nodes[B].send(bob, json!({"type": "join", "id": "j", "room": "#new"}));
    let creation = std::mem::take(&mut c.nodes[B].pending);
    c.nodes[B].send(dee, json!({"type": "join", "id": "j", "room": "#new"}));
    for request in std::mem::take(&mut c.nodes[B].pending) {
        c.take(B, request);
    }
    // Now B hears alice's room, and then the refusal of bob's creation.
    c.nodes[A].send(alice, json!({"type": "join", "id": "j", "room": "#new"}));
    c.run();
    for request in creation {
        let answer = request.fail(Failed("refused".into()));
        c.nodes[B].answer(answer);
    }
    let _ = c.drain();
    // (Only B is looked at: here the store took dee's join before alice's
    // room, which Redis cannot, so A never heard of it.)
    let out = c.ask(
        B,
        bob,
        json!({"type": "listMembers", "id": "m", "room": "#new"}),
    );
    let members = one(&out[B], bob, "memberList");
    let names: Vec<&Value> = members["members"]
        .as_array()
        .map(|m| m.iter().map(|m| &m["username"]).collect())
        .unwrap_or_default();
    assert_eq!(names, ["alice", "bob", "dee"], "{members}");
    let out = c.say(B, dee, "#new", "dee here");
    assert_eq!(kinds(&out[B], dee), ["textBroadcast"], "{out:#?}");
}
