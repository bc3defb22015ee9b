//! Random sequences of connections, frames, closes and time steps into the
//! chat core. Checks what must hold whatever peers do: no panic, every
//! frame is a JSON object, and nothing is addressed to a closed connection.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rand::{SeedableRng, rngs::StdRng};
use wschat::{Action, Config, ConnectionId, Inbound, Server, Version};

#[derive(Arbitrary, Debug)]
enum Op {
    Open {
        v2: bool,
    },
    Close {
        conn: u8,
    },
    Login {
        conn: u8,
        name: u8,
        secret: Option<u8>,
        since: Option<u8>,
    },
    Say {
        conn: u8,
        text: String,
    },
    ListUsers {
        conn: u8,
    },
    Logout {
        conn: u8,
    },
    RawText {
        conn: u8,
        bytes: Vec<u8>,
    },
    Binary {
        conn: u8,
        bytes: Vec<u8>,
    },
    Ping {
        conn: u8,
    },
    Pong {
        conn: u8,
    },
    Advance {
        millis: u32,
    },
    Shutdown,
}

const NAMES: [&str; 6] = ["alice", "Alice", "bob", "Jose\u{301}", "Jos\u{e9}", " bad"];

fuzz_target!(|ops: Vec<Op>| {
    let config = Config {
        history_size: 8,
        ..Config::default()
    };
    let mut server = Server::new(config, StdRng::seed_from_u64(0));
    let mut now = Instant::now();
    let mut conns: Vec<ConnectionId> = Vec::new();
    let mut open: HashSet<ConnectionId> = HashSet::new();
    let mut secrets: Vec<String> = Vec::new();
    let pick =
        |conns: &[ConnectionId], i: u8| conns.get(usize::from(i) % conns.len().max(1)).copied();

    for op in ops.into_iter().take(256) {
        match op {
            Op::Open { v2 } => {
                let version = if v2 { Version::V2 } else { Version::V1 };
                let conn = server.handle_open("127.0.0.1", version, now);
                conns.push(conn);
                open.insert(conn);
            }
            Op::Close { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    server.handle_close(conn, now);
                    open.remove(&conn);
                }
            }
            Op::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis));
                server.handle_timeout(now);
            }
            Op::Shutdown => server.shutdown(now),
            Op::Login {
                conn,
                name,
                secret,
                since,
            } => {
                if let Some(conn) = pick(&conns, conn) {
                    let mut login = serde_json::json!({
                        "type": "login", "id": "l", "username": NAMES[usize::from(name) % NAMES.len()],
                    });
                    if let Some(s) =
                        secret.and_then(|s| secrets.get(usize::from(s) % secrets.len().max(1)))
                    {
                        login["secret"] = s.clone().into();
                    }
                    if let Some(since) = since {
                        login["since"] = since.into();
                    }
                    server.handle_frame(conn, Inbound::Text(login.to_string().as_bytes()), now);
                }
            }
            Op::Say { conn, text } => {
                if let Some(conn) = pick(&conns, conn) {
                    let say = serde_json::json!({"type": "textFromUser", "id": "m", "text": text});
                    server.handle_frame(conn, Inbound::Text(say.to_string().as_bytes()), now);
                }
            }
            Op::ListUsers { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    server.handle_frame(
                        conn,
                        Inbound::Text(br#"{"type":"listUsers","id":"u"}"#),
                        now,
                    );
                }
            }
            Op::Logout { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    server.handle_frame(conn, Inbound::Text(br#"{"type":"logout","id":"o"}"#), now);
                }
            }
            Op::RawText { conn, bytes } => {
                if let Some(conn) = pick(&conns, conn) {
                    server.handle_frame(conn, Inbound::Text(&bytes), now);
                }
            }
            Op::Binary { conn, bytes } => {
                if let Some(conn) = pick(&conns, conn) {
                    server.handle_frame(conn, Inbound::Binary(&bytes), now);
                }
            }
            Op::Ping { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    server.handle_frame(conn, Inbound::Ping(b"p"), now);
                }
            }
            Op::Pong { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    server.handle_frame(conn, Inbound::Pong(b"p"), now);
                }
            }
        }
        while let Some(action) = server.poll_action() {
            match action {
                Action::Send { to, frame } => {
                    assert!(open.contains(&to), "frame for closed {to:?}");
                    let value: serde_json::Value =
                        serde_json::from_str(frame.as_str()).expect("frames are JSON");
                    if let Some(secret) = value.get("secret").and_then(|s| s.as_str()) {
                        secrets.push(secret.to_owned());
                    }
                }
                Action::Ping { to, .. } | Action::Pong { to, .. } => {
                    assert!(open.contains(&to), "ping or pong for closed {to:?}");
                }
                Action::Close { to, .. } => {
                    assert!(open.remove(&to), "close for closed {to:?}");
                }
            }
        }
        while server.poll_event().is_some() {}
        assert_eq!(server.connection_count(), open.len());
    }
});
