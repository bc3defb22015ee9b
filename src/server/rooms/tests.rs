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
        r##"{"type":"join","id":"j","room":"#secret","inviteOnly":true}"##,
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
