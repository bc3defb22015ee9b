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
