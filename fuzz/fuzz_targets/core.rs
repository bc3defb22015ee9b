//! Random sequences of connections, frames, closes and time steps into the
//! chat core, with every limit on and small enough to be hit. Checks what
//! must hold whatever peers do: no panic, every frame is a JSON object,
//! nothing is addressed to a closed connection, and no peer gets past a
//! limit: broadcasts and pongs per connection stay within their token
//! buckets, wrong secrets per address within their windows.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rand::{SeedableRng, rngs::StdRng};
use wschat::{Action, Config, ConnectionId, Inbound, Server, Version};

#[derive(Arbitrary, Debug)]
enum Op {
    Open {
        v2: bool,
        address: u8,
    },
    Close {
        conn: u8,
    },
    /// `secret`: an issued secret (maybe stale), or a wrong one when its
    /// index is a multiple of 4.
    Login {
        conn: u8,
        name: u8,
        secret: Option<u8>,
        since: Option<u8>,
    },
    /// `repeat` + 1 times at the same instant: a message flood.
    Say {
        conn: u8,
        text: String,
        repeat: u8,
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
    /// `count` pings at the same instant: a ping flood.
    Ping {
        conn: u8,
        count: u8,
    },
    Pong {
        conn: u8,
    },
    Advance {
        millis: u16,
    },
    AdvanceLong {
        seconds: u16,
    },
    Shutdown,
}

const NAMES: [&str; 6] = ["alice", "Alice", "bob", "Jose\u{301}", "Jos\u{e9}", " bad"];
const ADDRESSES: [&str; 4] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "unknown"];

/// Limits small enough that random input hits every one of them.
fn config() -> Config {
    Config {
        ping_interval: Duration::from_secs(2),
        ping_retry: Duration::from_millis(100),
        evict_after: Duration::from_secs(10),
        login_ttl: Duration::from_secs(20),
        history_size: 8,
        message_rate: 2,
        message_burst: 3,
        login_failures_per_minute: 2,
        login_failure_addresses: 2,
        login_timeout: Duration::from_secs(5),
        peer_ping_rate: 1,
        peer_ping_burst: 2,
        ..Config::default()
    }
}

/// What one connection has been granted so far.
struct Granted {
    opened: Instant,
    broadcasts: u64,
    pongs: u64,
}

/// Most tokens a bucket of `rate` per second and `burst` can have given out
/// in `elapsed`.
fn bucket_bound(rate: u32, burst: u32, elapsed: Duration) -> u64 {
    u64::from(burst) + (u128::from(rate) * elapsed.as_millis() / 1000) as u64
}

fuzz_target!(|ops: Vec<Op>| {
    let config = config();
    let mut server = Server::new(config.clone(), StdRng::seed_from_u64(0));
    let start = Instant::now();
    let mut now = start;
    let mut conns: Vec<ConnectionId> = Vec::new();
    let mut open: HashSet<ConnectionId> = HashSet::new();
    let mut granted: HashMap<ConnectionId, Granted> = HashMap::new();
    let mut address_of: HashMap<ConnectionId, &str> = HashMap::new();
    // Instants of wrong-secret `loginTaken` answers, per address.
    let mut wrong_secrets: HashMap<&str, Vec<Instant>> = HashMap::new();
    let mut secrets: Vec<String> = Vec::new();
    let pick =
        |conns: &[ConnectionId], i: u8| conns.get(usize::from(i) % conns.len().max(1)).copied();

    for op in ops.into_iter().take(256) {
        // A login with a secret may be answered `loginTaken`: a wrong guess.
        let mut guess: Option<ConnectionId> = None;
        let sender = match &op {
            Op::Say { conn, .. } | Op::RawText { conn, .. } => pick(&conns, *conn),
            _ => None,
        };
        match op {
            Op::Open { v2, address } => {
                let version = if v2 { Version::V2 } else { Version::V1 };
                let address = ADDRESSES[usize::from(address) % ADDRESSES.len()];
                let conn = server.handle_open(address, version, now);
                conns.push(conn);
                open.insert(conn);
                address_of.insert(conn, address);
                granted.insert(
                    conn,
                    Granted {
                        opened: now,
                        broadcasts: 0,
                        pongs: 0,
                    },
                );
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
            Op::AdvanceLong { seconds } => {
                now += Duration::from_secs(u64::from(seconds));
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
                    if let Some(s) = secret {
                        let issued = secrets.get(usize::from(s) % secrets.len().max(1));
                        login["secret"] = match issued {
                            Some(issued) if s % 4 != 0 => issued.clone(),
                            _ => "wrong".to_owned(),
                        }
                        .into();
                        guess = Some(conn);
                    }
                    if let Some(since) = since {
                        login["since"] = since.into();
                    }
                    server.handle_frame(conn, Inbound::Text(login.to_string().as_bytes()), now);
                }
            }
            Op::Say { conn, text, repeat } => {
                if let Some(conn) = pick(&conns, conn) {
                    let say = serde_json::json!({"type": "textFromUser", "id": "m", "text": text});
                    for _ in 0..=repeat % 16 {
                        server.handle_frame(conn, Inbound::Text(say.to_string().as_bytes()), now);
                    }
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
            Op::Ping { conn, count } => {
                if let Some(conn) = pick(&conns, conn) {
                    for _ in 0..count % 32 {
                        server.handle_frame(conn, Inbound::Ping(b"p"), now);
                    }
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
                    // Only the op's one sender said anything: a broadcast it
                    // gets is its own message, let through its bucket.
                    if value["type"] == "textBroadcast" && sender == Some(to) {
                        granted.get_mut(&to).expect("opened").broadcasts += 1;
                    }
                    if value["error"] == "loginTaken" && guess == Some(to) {
                        let address = address_of[&to];
                        wrong_secrets.entry(address).or_default().push(now);
                    }
                }
                Action::Ping { to, .. } => {
                    assert!(open.contains(&to), "ping for closed {to:?}");
                }
                Action::Pong { to, .. } => {
                    assert!(open.contains(&to), "pong for closed {to:?}");
                    granted.get_mut(&to).expect("opened").pongs += 1;
                }
                Action::Close { to, .. } => {
                    assert!(open.remove(&to), "close for closed {to:?}");
                }
            }
        }
        while server.poll_event().is_some() {}
        assert_eq!(server.connection_count(), open.len());
        assert!(server.tracked_addresses() <= config.login_failure_addresses);

        for (conn, g) in &granted {
            let elapsed = now - g.opened;
            let messages = bucket_bound(config.message_rate, config.message_burst, elapsed);
            assert!(
                g.broadcasts <= messages,
                "{conn:?} broadcast past its limit"
            );
            let pings = bucket_bound(config.peer_ping_rate, config.peer_ping_burst, elapsed);
            assert!(g.pongs <= pings, "{conn:?} got pongs past its limit");
        }
        // Fixed one-minute windows: at most twice the limit in any minute.
        for (address, times) in &wrong_secrets {
            let recent = times.iter().filter(|&&t| now - t < Duration::from_secs(60));
            let limit = 2 * config.login_failures_per_minute as usize;
            assert!(recent.count() <= limit, "{address} guessed past its limit");
        }
    }
});
