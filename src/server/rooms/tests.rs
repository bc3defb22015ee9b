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
fn member_notices_are_paced_per_room_and_summarised_past_the_budget() {
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
    // When the budget allows the next notice: the rest, in one summary.
    core.skip(Duration::from_secs(1));
    let summaries: Vec<Value> = core
        .frames_to(watcher)
        .into_iter()
        .filter(|f| f["type"] == "presence" && f["room"] == "#dev")
        .collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert_eq!(
        (
            &summaries[0]["joined"],
            &summaries[0]["joinedCount"],
            &summaries[0]["leftCount"]
        ),
        (&serde_json::json!(["c", "d"]), &2.into(), &0.into())
    );
    core.skip(Duration::from_secs(1));
    core.drain();
    let late = core.user("late");
    core.send(late, r##"{"type":"join","id":"j","room":"#dev"}"##);
    let frames: Vec<Value> = core
        .frames_to(watcher)
        .into_iter()
        .filter(|f| f["type"] == "member")
        .collect();
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

#[test]
fn every_act_naming_a_name_not_held_is_no_such_user() {
    let mut core = Core::new(config());
    let owner = core.user("owner");
    core.send(owner, r##"{"type":"join","id":"j","room":"#dev"}"##);
    core.drain();
    for act in [
        "kick", "ban", "unban", "mute", "unmute", "invite", "op", "deop",
    ] {
        let answer = core.ask(
            owner,
            &format!(r##"{{"type":"{act}","id":"a","room":"#dev","username":"ghost"}}"##),
        );
        assert_eq!(error(&answer).0, "noSuchUser", "{act}");
    }
}

#[test]
fn server_operators_moderate_the_lobby_and_v1_v2_see_nothing_of_it() {
    let mut core = Core::new(Config {
        operators: vec!["Sam".into()],
        ..config()
    });
    let old = core.open(Version::V1);
    core.send(old, r#"{"type":"login","id":"l","username":"oldie"}"#);
    let mid = core.open(Version::V2);
    core.send(mid, r#"{"type":"login","id":"l","username":"middy"}"#);
    let sam = core.user("sam");
    let mia = core.user("mia");
    let xena = core.user("xena");
    let refused = core.ask(
        xena,
        r##"{"type":"mute","id":"a","room":"#lobby","username":"mia"}"##,
    );
    assert_eq!(error(&refused).0, "forbidden");
    core.send(
        sam,
        r##"{"type":"mute","id":"a","room":"#lobby","username":"xena","seconds":10}"##,
    );
    let out = core.drain();
    assert!(
        out.iter().all(|(to, _)| ![old, mid].contains(to)),
        "{out:?}"
    );
    let to_mia: Vec<&Value> = out
        .iter()
        .filter(|(to, _)| *to == mia)
        .map(|(_, f)| f)
        .collect();
    assert_eq!(
        (&to_mia[0]["act"], &to_mia[0]["until"]),
        (&"mute".into(), &(EPOCH_MS + 10_000).into())
    );
    let muted = core.ask(xena, r#"{"type":"textFromUser","id":"m","text":"hello?"}"#);
    assert_eq!(error(&muted).0, "muted");
    core.skip(Duration::from_secs(10));
    core.drain();
    core.send(xena, r#"{"type":"textFromUser","id":"m","text":"hello!"}"#);
    assert_eq!(core.frames_to(xena)[0]["type"], "textBroadcast");
    core.send(
        sam,
        r##"{"type":"ban","id":"b","room":"#lobby","username":"mia"}"##,
    );
    let to_mia = core.frames_to(mia);
    assert_eq!(to_mia.last().unwrap()["change"], "banned", "{to_mia:?}");
    let banned = core.ask(mia, r##"{"type":"join","id":"j","room":"#lobby"}"##);
    assert_eq!(error(&banned).0, "banned");
    let refused = core.ask(
        sam,
        r##"{"type":"op","id":"o","room":"#lobby","username":"mia"}"##,
    );
    assert_eq!(error(&refused).0, "forbidden");
}

#[test]
fn the_owner_of_an_invite_only_room_comes_back_as_its_owner() {
    let mut core = Core::new(config());
    let owner = core.user("owner");
    core.ask(
        owner,
        r##"{"type":"join","id":"j","room":"#ops","inviteOnly":true}"##,
    );
    core.ask(owner, r##"{"type":"part","id":"p","room":"#ops"}"##);
    let back = core.ask(owner, r##"{"type":"join","id":"j","room":"#ops"}"##);
    assert_eq!(back["state"]["role"], "owner", "{back}");
}

mod random;
mod store;

#[test]
fn creating_rooms_is_limited_per_address_and_in_all_and_rooms_by_members() {
    let mut core = Core::new(Config {
        rooms_per_address_per_minute: 1,
        max_rooms: 2,
        max_room_members: 2,
        ..config()
    });
    let alice = core.user("alice");
    let bob = core.user("bob");
    core.ask(alice, r##"{"type":"join","id":"j","room":"#one"}"##);
    let refused = core.ask(bob, r##"{"type":"join","id":"j","room":"#two"}"##);
    assert_eq!(error(&refused).0, "limitReached");
    assert!(
        error(&refused)
            .1
            .contains("at most 1 a minute (--rooms-per-address-per-minute)"),
        "{refused}"
    );
    core.skip(Duration::from_secs(60));
    core.drain();
    core.ask(bob, r##"{"type":"join","id":"j","room":"#two"}"##);
    core.skip(Duration::from_secs(60));
    core.drain();
    let refused = core.ask(bob, r##"{"type":"join","id":"j","room":"#three"}"##);
    assert_eq!(
        error(&refused).1,
        "the server has 2 rooms, its most (--max-rooms)"
    );
    core.send(bob, r##"{"type":"join","id":"j","room":"#one"}"##);
    core.drain();
    let carol = core.user("carol");
    let refused = core.ask(carol, r##"{"type":"join","id":"j","room":"#one"}"##);
    assert_eq!(
        error(&refused).1,
        "#one is full: at most 2 members a room (--max-room-members)"
    );
    let refused = core.ask(
        alice,
        r##"{"type":"invite","id":"i","room":"#one","username":"carol"}"##,
    );
    assert_eq!(error(&refused).0, "limitReached");
}
