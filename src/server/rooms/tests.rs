//! Unit tests of the rules of rooms, through the core's public API.

use std::time::{Duration, Instant, UNIX_EPOCH};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

use crate::server::{Action, ConnectionId, Inbound, Server};
use crate::{Config, Version};

const EPOCH_MS: u64 = 1_700_000_000_000;

struct Core {
    server: Server<StdRng>,
    now: Instant,
    secrets: std::collections::HashMap<String, String>,
}

impl Core {
    fn new(config: Config) -> Core {
        let now = Instant::now();
        let mut server = Server::new(config, StdRng::seed_from_u64(7));
        server.set_wall_clock(UNIX_EPOCH + Duration::from_millis(EPOCH_MS), now);
        Core {
            server,
            now,
            secrets: Default::default(),
        }
    }

    fn open(&mut self, version: Version) -> ConnectionId {
        self.server.handle_open("127.0.0.1", version, self.now)
    }

    fn send(&mut self, conn: ConnectionId, json: &str) {
        self.server
            .handle_frame(conn, Inbound::Text(json.as_bytes()), self.now);
    }

    /// Every frame sent, as (to, JSON).
    fn drain(&mut self) -> Vec<(ConnectionId, Value)> {
        let mut out = Vec::new();
        while let Some(action) = self.server.poll_action() {
            if let Action::Send { to, frame } = action {
                out.push((to, serde_json::from_str(frame.as_str()).unwrap()));
            }
        }
        while self.server.poll_event().is_some() {}
        out
    }

    /// A v3 connection logged in as `name`, its frames drained.
    fn user(&mut self, name: &str) -> ConnectionId {
        let conn = self.open(Version::V3);
        let secret = match self.secrets.get(name) {
            Some(secret) => format!(r#","secret":"{secret}""#),
            None => String::new(),
        };
        self.send(
            conn,
            &format!(r#"{{"type":"login","id":"l","username":"{name}"{secret}}}"#),
        );
        for (to, frame) in self.drain() {
            if to == conn && frame["type"] == "loginMessage" {
                let secret = frame["secret"].as_str().unwrap_or_default().to_owned();
                self.secrets.insert(name.to_owned(), secret);
            }
        }
        conn
    }

    fn frames_to(&mut self, conn: ConnectionId) -> Vec<Value> {
        self.drain()
            .into_iter()
            .filter(|(to, _)| *to == conn)
            .map(|(_, v)| v)
            .collect()
    }
}

fn config() -> Config {
    Config {
        message_rate: 0,
        ..Config::default()
    }
}

#[test]
fn a_room_message_reaches_every_device_of_every_member_and_no_one_else() {
    let mut core = Core::new(config());
    let alice = core.user("alice");
    let alice_phone = core.user("alice");
    let bob = core.user("bob");
    let carol = core.user("carol");
    let old = core.open(Version::V2);
    core.send(alice, r##"{"type":"join","id":"j","room":"#Dev"}"##);
    let out = core.drain();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].1["replyTo"], "j");
    assert_eq!(out[0].1["state"]["role"], "owner");
    assert_eq!(out[1].0, alice_phone);
    core.send(bob, r##"{"type":"join","id":"j","room":"#dev"}"##);
    core.drain();
    core.send(
        bob,
        r##"{"type":"textFromUser","id":"m","room":"#DEV","text":"hi"}"##,
    );
    let out = core.drain();
    let to: Vec<ConnectionId> = out.iter().map(|(to, _)| *to).collect();
    assert_eq!(to.len(), 3, "{out:?}");
    assert!(!to.contains(&carol) && !to.contains(&old));
    for (to, frame) in &out {
        assert_eq!(frame["room"], "#Dev");
        assert_eq!(frame["seq"], 1);
        assert_eq!(frame.get("replyTo").is_some(), *to == bob);
    }
}

impl Core {
    fn skip(&mut self, by: Duration) {
        self.now += by;
        self.server.handle_timeout(self.now);
    }

    /// The only frame `conn` got from `json`.
    fn ask(&mut self, conn: ConnectionId, json: &str) -> Value {
        self.send(conn, json);
        let mut frames = self.frames_to(conn);
        assert_eq!(frames.len(), 1, "{json}: {frames:?}");
        frames.remove(0)
    }
}

fn error(frame: &Value) -> (&str, &str) {
    (
        frame["error"].as_str().unwrap_or("-"),
        frame["description"].as_str().unwrap_or("-"),
    )
}

#[test]
fn a_dm_reaches_an_offline_held_name_at_its_next_login_and_needs_a_held_name() {
    let mut core = Core::new(config());
    let alice = core.user("alice");
    let bob = core.user("bob");
    core.server.handle_close(bob, core.now);
    core.drain();
    let nobody = core.ask(
        alice,
        r#"{"type":"textFromUser","id":"m","room":"@zed","text":"hi"}"#,
    );
    assert_eq!(error(&nobody).0, "noSuchUser");
    core.send(
        alice,
        r#"{"type":"textFromUser","id":"m","room":"@Bob","text":"lunch?"}"#,
    );
    let out = core.frames_to(alice);
    let ack = out.iter().find(|f| f["type"] == "textBroadcast").unwrap();
    assert_eq!(
        (&ack["room"], &ack["seq"], &ack["replyTo"]),
        (&"@bob".into(), &1.into(), &"m".into())
    );
    let bob = core.user("bob");
    let _ = bob;
    // Log in again and look at what came.
    let phone = core.open(Version::V3);
    let secret = core.secrets["bob"].clone();
    core.send(
        phone,
        &format!(r#"{{"type":"login","id":"l","username":"bob","secret":"{secret}"}}"#),
    );
    let frames = core.frames_to(phone);
    let rooms = frames.iter().find(|f| f["type"] == "rooms").unwrap();
    assert_eq!(rooms["rooms"][1]["room"], "@alice", "{rooms}");
    assert_eq!(rooms["rooms"][1]["unread"], 1);
    assert_eq!(rooms["changes"][0]["change"], "joined");
    let history = frames
        .iter()
        .find(|f| f["type"] == "history" && f["room"] == "@alice")
        .unwrap();
    assert_eq!(history["messages"][0]["message"], "lunch?");
    assert_eq!(history["messages"][0]["room"], "@alice");
}

#[test]
fn a_non_member_cannot_tell_an_invite_only_room_from_none() {
    let mut core = Core::new(config());
    let owner = core.user("owner");
    let eve = core.user("eve");
    core.send(
        owner,
        r##"{"type":"join","id":"j","room":"#SeCret","inviteOnly":true}"##,
    );
    core.send(
        owner,
        r##"{"type":"textFromUser","id":"m","room":"#secret","text":"psst"}"##,
    );
    core.drain();
    for room in ["#secret", "#nothing"] {
        let asks = [
            format!(r#"{{"type":"textFromUser","id":"x","room":"{room}","text":"hi"}}"#),
            format!(r#"{{"type":"part","id":"x","room":"{room}"}}"#),
            format!(r#"{{"type":"listMembers","id":"x","room":"{room}"}}"#),
            format!(r#"{{"type":"history","id":"x","room":"{room}"}}"#),
            format!(r#"{{"type":"read","id":"x","room":"{room}","seq":1}}"#),
            format!(r#"{{"type":"topic","id":"x","room":"{room}","topic":"t"}}"#),
            format!(r#"{{"type":"mode","id":"x","room":"{room}","inviteOnly":false}}"#),
            format!(r#"{{"type":"invite","id":"x","room":"{room}","username":"eve"}}"#),
            format!(r#"{{"type":"kick","id":"x","room":"{room}","username":"owner"}}"#),
            format!(r#"{{"type":"ban","id":"x","room":"{room}","username":"owner"}}"#),
            format!(r#"{{"type":"unban","id":"x","room":"{room}","username":"owner"}}"#),
            format!(r#"{{"type":"mute","id":"x","room":"{room}","username":"owner"}}"#),
            format!(r#"{{"type":"unmute","id":"x","room":"{room}","username":"owner"}}"#),
            format!(r#"{{"type":"op","id":"x","room":"{room}","username":"eve"}}"#),
            format!(r#"{{"type":"deop","id":"x","room":"{room}","username":"owner"}}"#),
        ];
        for ask in asks {
            let answer = core.ask(eve, &ask);
            let (code, description) = error(&answer);
            assert_eq!(code, "notAMember", "{ask}");
            assert!(
                description.starts_with(&format!("you are not in {room}")),
                "{ask}: {description}"
            );
        }
    }
    let list = core.ask(eve, r#"{"type":"listRooms","id":"r"}"#);
    assert_eq!(list["rooms"].as_array().unwrap().len(), 1, "{list}"); // the lobby
    let join = core.ask(eve, r##"{"type":"join","id":"j","room":"#secret"}"##);
    assert_eq!(error(&join), ("forbidden", "#secret is invite-only"));
    // Nothing of the room reached eve meanwhile.
    core.send(
        owner,
        r##"{"type":"topic","id":"t","room":"#secret","topic":"plans"}"##,
    );
    assert!(core.frames_to(eve).is_empty());
}

#[test]
fn a_name_that_left_the_lobby_hears_nothing_of_it_and_v2_sees_no_change() {
    let mut core = Core::new(config());
    let alice = core.user("alice");
    let v2 = core.open(Version::V2);
    core.send(v2, r#"{"type":"login","id":"l","username":"olga"}"#);
    core.drain();
    let left = core.ask(alice, r##"{"type":"part","id":"p","room":"#lobby"}"##);
    assert_eq!(
        (&left["type"], &left["change"]),
        (&"membership".into(), &"left".into())
    );
    core.send(
        v2,
        r#"{"type":"textFromUser","id":"m","text":"hello lobby"}"#,
    );
    let out = core.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, v2);
    assert!(out[0].1.get("room").is_none());
    let refused = core.ask(alice, r#"{"type":"textFromUser","id":"m","text":"hi"}"#);
    assert_eq!(error(&refused).0, "notAMember");
    core.ask(alice, r##"{"type":"join","id":"j","room":"#lobby"}"##);
    core.send(v2, r#"{"type":"textFromUser","id":"m","text":"again"}"#);
    assert_eq!(core.drain().len(), 2);
}

/// Each room's frames' `seq`s, in order.
fn seqs(history: &Value) -> Vec<u64> {
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn history_pages_before_and_after_say_when_they_reach_the_end() {
    let mut core = Core::new(config());
    let alice = core.user("alice");
    core.send(alice, r##"{"type":"join","id":"j","room":"#dev"}"##);
    for n in 1..=10 {
        core.send(
            alice,
            &format!(r##"{{"type":"textFromUser","id":"m","room":"#dev","text":"m{n}"}}"##),
        );
    }
    core.drain();
    let cases = [
        (r#""before":5,"limit":2"#, vec![3, 4], false),
        (r#""before":3,"limit":2"#, vec![1, 2], true),
        (r#""after":8"#, vec![9, 10], true),
        (r#""after":2,"limit":3"#, vec![3, 4, 5], false),
        (r#""limit":3"#, vec![8, 9, 10], false),
        (r#""limit":0"#, vec![10], false),
    ];
    for (bounds, expected, complete) in cases {
        let page = core.ask(
            alice,
            &format!(r##"{{"type":"history","id":"h","room":"#dev",{bounds}}}"##),
        );
        assert_eq!(
            (seqs(&page), page["complete"].as_bool()),
            (expected, Some(complete)),
            "{bounds}"
        );
        assert_eq!(page["room"], "#dev");
    }
}

#[test]
fn a_read_marker_goes_to_every_device_and_unread_and_mentions_follow_it() {
    let mut core = Core::new(config());
    let alice = core.user("alice");
    let phone = core.user("alice");
    let bob = core.user("bob");
    for conn in [alice, bob] {
        core.send(conn, r##"{"type":"join","id":"j","room":"#dev"}"##);
    }
    core.send(
        bob,
        r##"{"type":"textFromUser","id":"m","room":"#dev","text":"hey ALICE, look"}"##,
    );
    core.send(
        bob,
        r##"{"type":"textFromUser","id":"m","room":"#dev","text":"malice is not a mention"}"##,
    );
    core.drain();
    let list = core.ask(alice, r#"{"type":"listRooms","id":"r"}"#);
    let dev = &list["rooms"][1];
    assert_eq!(
        (&dev["room"], &dev["unread"], &dev["mentioned"]),
        (&"#dev".into(), &2.into(), &true.into())
    );
    core.send(alice, r##"{"type":"read","id":"r","room":"#dev","seq":1}"##);
    let out = core.drain();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!((out[0].0, &out[0].1["replyTo"]), (alice, &"r".into()));
    assert_eq!((out[1].0, out[1].1.get("replyTo")), (phone, None));
    assert_eq!(out[1].1["seq"], 1);
    let list = core.ask(phone, r#"{"type":"listRooms","id":"r"}"#);
    let dev = &list["rooms"][1];
    assert_eq!(
        (&dev["readSeq"], &dev["unread"], &dev["mentioned"]),
        (&1.into(), &1.into(), &false.into())
    );
}

#[test]
fn a_released_name_leaves_nothing_to_its_next_owner() {
    let mut core = Core::new(config());
    let alice = core.user("alice");
    let bob = core.user("bob");
    core.send(alice, r##"{"type":"join","id":"j","room":"#dev"}"##);
    core.send(alice, r##"{"type":"part","id":"p","room":"#lobby"}"##);
    core.send(
        alice,
        r#"{"type":"textFromUser","id":"m","room":"@bob","text":"hi"}"#,
    );
    core.drain();
    core.send(alice, r#"{"type":"logout","id":"o"}"#);
    let to_bob = core.frames_to(bob);
    assert!(
        to_bob
            .iter()
            .any(|f| f["type"] == "membership" && f["room"] == "@alice" && f["change"] == "left"),
        "{to_bob:?}"
    );
    core.secrets.remove("alice");
    let next = core.open(Version::V3);
    core.send(next, r##"{"type":"login","id":"l","username":"alice","rooms":[{"room":"#dev","since":0},{"room":"@bob","since":0}]}"##);
    let frames = core.frames_to(next);
    let rooms = frames.iter().find(|f| f["type"] == "rooms").unwrap();
    let names: Vec<&Value> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["room"])
        .collect();
    assert_eq!(names, [&Value::from("#lobby")], "{rooms}");
    assert_eq!(
        rooms["changes"],
        serde_json::json!([{"room":"#dev","change":"left"},{"room":"@bob","change":"left"}])
    );
    let dev = core.ask(bob, r##"{"type":"listMembers","id":"x","room":"#dev"}"##);
    assert_eq!(dev["members"].as_array().unwrap().len(), 0, "{dev}");
    // The room the old alice created is not the new one's.
    let joined = core.ask(next, r##"{"type":"join","id":"j","room":"#dev"}"##);
    assert_eq!(joined["state"]["role"], "member", "{joined}");
}

#[test]
fn listing_rooms_at_login_cannot_tell_a_private_room_from_none() {
    let mut core = Core::new(config());
    let owner = core.user("owner");
    core.send(
        owner,
        r##"{"type":"join","id":"j","room":"#secret","inviteOnly":true}"##,
    );
    core.drain();
    let eve = core.open(Version::V3);
    core.send(eve, r##"{"type":"login","id":"l","username":"eve","rooms":[{"room":"#secret","since":0},{"room":"#nothing","since":0}]}"##);
    let frames = core.frames_to(eve);
    let rooms = frames.iter().find(|f| f["type"] == "rooms").unwrap();
    assert_eq!(
        rooms["changes"],
        serde_json::json!([{"room":"#nothing","change":"left"},{"room":"#secret","change":"left"}])
    );
}

#[test]
fn catch_up_says_what_was_recovered_and_who_kicked_whom_while_away() {
    let mut core = Core::new(config());
    let owner = core.user("owner");
    let carol = core.user("carol");
    for room in ["#a", "#b"] {
        for conn in [owner, carol] {
            core.send(
                conn,
                &format!(r#"{{"type":"join","id":"j","room":"{room}"}}"#),
            );
        }
    }
    core.send(
        owner,
        r##"{"type":"textFromUser","id":"m","room":"#a","text":"one"}"##,
    );
    core.drain();
    let epoch_a = core.ask(carol, r##"{"type":"history","id":"h","room":"#a"}"##)["epoch"].clone();
    let epoch_b = core.ask(carol, r##"{"type":"history","id":"h","room":"#b"}"##)["epoch"].clone();
    core.server.handle_close(carol, core.now);
    core.send(
        owner,
        r##"{"type":"textFromUser","id":"m","room":"#a","text":"two"}"##,
    );
    core.send(
        owner,
        r##"{"type":"kick","id":"k","room":"#b","username":"carol","reason":"spam"}"##,
    );
    core.drain();
    let back = core.open(Version::V3);
    let secret = core.secrets["carol"].clone();
    core.send(back, &format!(
        r##"{{"type":"login","id":"l","username":"carol","secret":"{secret}","rooms":[{{"room":"#a","epoch":{epoch_a},"since":1}},{{"room":"#b","epoch":{epoch_b},"since":0}}]}}"##
    ));
    let mut frames = core.frames_to(back);
    frames.retain(|f| f["type"] != "loginBroadcast");
    let kinds: Vec<&Value> = frames.iter().map(|f| &f["type"]).collect();
    assert_eq!(
        kinds,
        ["loginMessage", "rooms", "history", "history"]
            .map(Value::from)
            .iter()
            .collect::<Vec<_>>()
    );
    let rooms = &frames[1];
    assert_eq!(rooms["rooms"][1]["room"], "#a");
    assert_eq!(rooms["rooms"][1]["recovered"], true);
    assert_eq!(
        rooms["changes"],
        serde_json::json!([{"room":"#b","change":"kicked","by":"owner","reason":"spam"}])
    );
    assert_eq!(frames[3]["room"], "#a");
    assert_eq!(seqs(&frames[3]), [2]);
}

#[test]
fn operators_act_within_their_rank_and_bans_and_mutes_run_out() {
    let mut core = Core::new(config());
    let owner = core.user("owner");
    let op = core.user("op");
    let carol = core.user("carol");
    for conn in [owner, op, carol] {
        core.send(conn, r##"{"type":"join","id":"j","room":"#dev"}"##);
    }
    core.drain();
    let refused = core.ask(
        op,
        r##"{"type":"op","id":"o","room":"#dev","username":"op"}"##,
    );
    assert_eq!(error(&refused).0, "forbidden");
    core.send(
        owner,
        r##"{"type":"op","id":"o","room":"#dev","username":"op"}"##,
    );
    let notice = core.frames_to(op).remove(0);
    assert_eq!(
        (&notice["type"], &notice["act"], &notice["seq"]),
        (&"notice".into(), &"op".into(), &1.into())
    );
    let refused = core.ask(
        op,
        r##"{"type":"kick","id":"k","room":"#dev","username":"owner"}"##,
    );
    assert_eq!(
        error(&refused),
        ("forbidden", "owner owns #dev: you cannot do that")
    );
    core.send(
        op,
        r##"{"type":"mute","id":"m","room":"#dev","username":"carol","seconds":60}"##,
    );
    core.drain();
    let muted = core.ask(
        carol,
        r##"{"type":"textFromUser","id":"m","room":"#dev","text":"x"}"##,
    );
    assert_eq!(error(&muted).0, "muted");
    core.send(
        op,
        r##"{"type":"ban","id":"b","room":"#dev","username":"carol","seconds":30,"reason":"no"}"##,
    );
    let to_carol = core.frames_to(carol);
    assert_eq!(to_carol.len(), 1, "{to_carol:?}");
    assert_eq!(
        (&to_carol[0]["change"], &to_carol[0]["by"]),
        (&"banned".into(), &"op".into())
    );
    let banned = core.ask(carol, r##"{"type":"join","id":"j","room":"#dev"}"##);
    assert_eq!(error(&banned).0, "banned");
    core.skip(Duration::from_secs(31));
    core.drain();
    let back = core.ask(carol, r##"{"type":"join","id":"j","room":"#dev"}"##);
    assert_eq!(back["change"], "joined", "{back}");
    let history = core.ask(owner, r##"{"type":"history","id":"h","room":"#dev"}"##);
    let acts: Vec<&Value> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["act"])
        .collect();
    assert_eq!(
        acts,
        ["op", "mute", "ban"]
            .map(Value::from)
            .iter()
            .collect::<Vec<_>>()
    );
}

#[test]
fn limits_are_refused_with_their_name_and_value() {
    let mut core = Core::new(Config {
        max_rooms_per_name: 1,
        new_dms_per_minute: 1,
        ..config()
    });
    let alice = core.user("alice");
    core.user("bob");
    core.user("carol");
    core.ask(alice, r##"{"type":"join","id":"j","room":"#one"}"##);
    let refused = core.ask(alice, r##"{"type":"join","id":"j","room":"#two"}"##);
    assert_eq!(error(&refused).0, "limitReached");
    assert!(
        error(&refused).1.contains("--max-rooms-per-name"),
        "{refused}"
    );
    core.send(
        alice,
        r#"{"type":"textFromUser","id":"m","room":"@bob","text":"hi"}"#,
    );
    core.drain();
    let refused = core.ask(
        alice,
        r#"{"type":"textFromUser","id":"m","room":"@carol","text":"hi"}"#,
    );
    assert!(
        error(&refused)
            .1
            .contains("at most 1 a minute (--new-dms-per-minute)"),
        "{refused}"
    );
    // An existing DM is not a new one.
    core.send(
        alice,
        r#"{"type":"textFromUser","id":"m","room":"@bob","text":"again"}"#,
    );
    assert_eq!(core.frames_to(alice)[0]["seq"], 2);
}

mod with_a_store {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::protocol::Role;
    use crate::server::{
        Request, SecretHash, Snapshot, StoredMember, StoredMessage, StoredName, StoredRead,
        StoredRoom, Write,
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
}

#[test]
fn a_v2_device_of_a_name_that_left_the_lobby_lives_in_it_as_before() {
    let mut core = Core::new(config());
    let alice = core.user("alice");
    core.ask(alice, r##"{"type":"part","id":"p","room":"#lobby"}"##);
    let old = core.open(Version::V2);
    let secret = core.secrets["alice"].clone();
    core.send(
        old,
        &format!(r#"{{"type":"login","id":"l","username":"alice","secret":"{secret}"}}"#),
    );
    core.drain();
    let said = core.ask(
        old,
        r#"{"type":"textFromUser","id":"m","text":"still here"}"#,
    );
    assert_eq!(
        (&said["type"], &said["seq"]),
        (&"textBroadcast".into(), &1.into()),
        "{said}"
    );
}

#[test]
fn member_notices_are_paced_per_room_and_dropped_past_the_budget() {
    let mut core = Core::new(Config {
        presence_rate: 1,
        presence_burst: 2,
        ..config()
    });
    let watcher = core.user("watcher");
    core.send(watcher, r##"{"type":"join","id":"j","room":"#dev"}"##);
    core.drain();
    let mut joined = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let conn = core.user(name);
        core.send(conn, r##"{"type":"join","id":"j","room":"#dev"}"##);
        joined.extend(
            core.frames_to(watcher)
                .into_iter()
                .filter(|f| f["type"] == "member")
                .map(|f| f["username"].as_str().unwrap_or_default().to_owned()),
        );
    }
    assert_eq!(joined, ["a", "b"]);
    core.skip(Duration::from_secs(1));
    let late = core.user("late");
    core.send(late, r##"{"type":"join","id":"j","room":"#dev"}"##);
    let frames = core.frames_to(watcher);
    assert_eq!(
        (
            &frames[0]["type"],
            &frames[0]["username"],
            &frames[0]["change"]
        ),
        (&"member".into(), &"late".into(), &"joined".into())
    );
    let members = core.ask(
        watcher,
        r##"{"type":"listMembers","id":"x","room":"#dev"}"##,
    );
    assert_eq!(members["members"].as_array().unwrap().len(), 6);
}

#[test]
fn a_catch_up_one_reply_cannot_hold_is_incomplete_and_paged_after() {
    let mut core = Core::new(Config {
        reply_max_bytes: 600,
        ..config()
    });
    let alice = core.user("alice");
    core.send(alice, r##"{"type":"join","id":"j","room":"#dev"}"##);
    for n in 1..=10 {
        core.send(
            alice,
            &format!(r##"{{"type":"textFromUser","id":"m","room":"#dev","text":"message {n}"}}"##),
        );
    }
    core.drain();
    let epoch = core.ask(
        alice,
        r##"{"type":"history","id":"h","room":"#dev","limit":1}"##,
    )["epoch"]
        .clone();
    let back = core.open(Version::V3);
    let secret = core.secrets["alice"].clone();
    core.send(back, &format!(
        r##"{{"type":"login","id":"l","username":"alice","secret":"{secret}","rooms":[{{"room":"#dev","epoch":{epoch},"since":2}}]}}"##
    ));
    let frames = core.frames_to(back);
    let rooms = frames.iter().find(|f| f["type"] == "rooms").unwrap();
    assert_eq!(rooms["rooms"][1]["recovered"], true);
    let history = frames
        .iter()
        .find(|f| f["type"] == "history" && f["room"] == "#dev")
        .unwrap();
    let got = seqs(history);
    assert_eq!(
        (got[0], history["complete"].as_bool()),
        (3, Some(false)),
        "{history}"
    );
    let last = *got.last().unwrap();
    let rest = core.ask(
        back,
        &format!(r##"{{"type":"history","id":"h","room":"#dev","after":{last}}}"##),
    );
    assert_eq!(*seqs(&rest).last().unwrap(), 10);
}

/// Random v3 traffic from a few names on several devices, with and without
/// a store (whose answers sometimes fail): nothing panics, and who is in
/// which room agrees both ways (rooms → members, names → rooms).
#[test]
fn random_traffic_never_panics_and_keeps_memberships_consistent() {
    use rand::RngExt;

    use crate::server::Request;

    let names = ["ann", "bob", "cat"];
    let rooms = [
        "#a", "#B", "#lobby", "@ann", "@bob", "@cat", "@zed", "nope", "#",
    ];
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut core = if seed % 2 == 0 {
            Core::new(config())
        } else {
            let now = Instant::now();
            let wall = UNIX_EPOCH + Duration::from_millis(EPOCH_MS);
            let snapshot = crate::server::Snapshot::default();
            Core {
                server: Server::restore(config(), StdRng::seed_from_u64(seed), snapshot, wall, now),
                now,
                secrets: Default::default(),
            }
        };
        let mut conns = Vec::new();
        let mut seq = 0;
        for step in 0..3000 {
            let pick = |rng: &mut StdRng, of: &[&'static str]| of[rng.random_range(0..of.len())];
            let room = pick(&mut rng, &rooms);
            let name = pick(&mut rng, &names);
            let n = rng.random_range(0..40u64);
            let json = match rng.random_range(0..22) {
                0 if conns.len() < 8 => {
                    let version = if n % 3 == 0 { Version::V2 } else { Version::V3 };
                    conns.push(core.open(version));
                    continue;
                }
                1 if !conns.is_empty() => {
                    let conn = conns.swap_remove(rng.random_range(0..conns.len()));
                    core.server.handle_close(conn, core.now);
                    continue;
                }
                2 => {
                    core.skip(Duration::from_secs(n * 20));
                    continue;
                }
                3 => {
                    let secret = core.secrets.get(name).cloned().unwrap_or_default();
                    let rooms = format!(r#"[{{"room":"{room}","since":{n},"epoch":"x"}}]"#);
                    format!(
                        r#"{{"type":"login","id":"l","username":"{name}","secret":"{secret}","rooms":{rooms}}}"#
                    )
                }
                4 => format!(
                    r#"{{"type":"join","id":"j","room":"{room}","inviteOnly":{}}}"#,
                    n % 2 == 0
                ),
                5 => format!(r#"{{"type":"part","id":"p","room":"{room}","reason":"r"}}"#),
                6 | 7 => format!(
                    r#"{{"type":"textFromUser","id":"m","room":"{room}","text":"hi {name}"}}"#
                ),
                8 => r#"{"type":"listRooms","id":"r"}"#.to_owned(),
                9 => format!(r#"{{"type":"listMembers","id":"x","room":"{room}"}}"#),
                10 => format!(
                    r#"{{"type":"history","id":"h","room":"{room}","before":{n},"limit":{}}}"#,
                    n % 7
                ),
                11 => format!(r#"{{"type":"read","id":"r","room":"{room}","seq":{n}}}"#),
                12 => format!(r#"{{"type":"topic","id":"t","room":"{room}","topic":"t{n}"}}"#),
                13 => format!(
                    r#"{{"type":"mode","id":"o","room":"{room}","inviteOnly":{}}}"#,
                    n % 2 == 0
                ),
                14 => format!(
                    r#"{{"type":"ban","id":"b","room":"{room}","username":"{name}","seconds":{n}}}"#
                ),
                15 => format!(r#"{{"type":"kick","id":"k","room":"{room}","username":"{name}"}}"#),
                16 => format!(r#"{{"type":"mute","id":"m","room":"{room}","username":"{name}"}}"#),
                17 => format!(r#"{{"type":"op","id":"o","room":"{room}","username":"{name}"}}"#),
                18 => {
                    format!(r#"{{"type":"invite","id":"i","room":"{room}","username":"{name}"}}"#)
                }
                19 => format!(r#"{{"type":"unban","id":"u","room":"{room}","username":"{name}"}}"#),
                20 => r#"{"type":"logout","id":"o"}"#.to_owned(),
                _ => format!(r#"{{"type":"textFromUser","id":"m","text":"lobby {step}"}}"#),
            };
            if conns.is_empty() {
                continue;
            }
            let conn = conns[rng.random_range(0..conns.len())];
            core.send(conn, &json);
            while let Some(request) = core.server.poll_request() {
                let fail = rng.random_range(0..10) == 0;
                let answer = match &request {
                    _ if fail => request.fail(crate::server::Failed("disk full".into())),
                    Request::Write(ticket, _) => ticket.answer(Ok(())),
                    Request::Append(ticket, _) => {
                        seq += 1;
                        ticket.answer(Ok(seq))
                    }
                    other => other.fail(crate::server::Failed("no".into())),
                };
                core.server.handle_answer(answer, core.now);
            }
            for (to, frame) in core.drain() {
                if to == conn && frame["type"] == "loginMessage" {
                    let secret = frame["secret"].as_str().unwrap_or_default().to_owned();
                    core.secrets.insert(name.to_owned(), secret);
                }
            }
            let rooms = &core.server.rooms;
            for (key, room) in &rooms.by_key {
                for name in room.members.keys() {
                    assert!(
                        rooms.of_name.get(name).is_some_and(|r| r.contains(key)),
                        "seed {seed} step {step}"
                    );
                }
            }
            for (name, keys) in &rooms.of_name {
                for key in keys {
                    assert!(
                        rooms
                            .by_key
                            .get(key)
                            .is_some_and(|r| r.members.contains_key(name)),
                        "seed {seed} step {step}"
                    );
                }
            }
        }
    }
}
