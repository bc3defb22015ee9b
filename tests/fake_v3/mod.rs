//! A stand-in for a protocol-v3 chat-server, just enough of it for the
//! load generator's rooms mode (docs/PROTOCOL.md, "Version 3"): `login`
//! (answered, and told to everyone as a `loginBroadcast`), `join` (answered
//! with a `membership`) and `textFromUser` in a room (numbered per room and
//! sent to its members, the sender's copy with `replyTo`). It exists so
//! that the mode is tested end to end before the real server speaks v3;
//! once it does, the same test runs against `chat-server`.
//!
//! It can misbehave on purpose ([`Faults`]), to show that the load
//! generator notices or copes.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{Value, json};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// What every connection's thread shares.
#[derive(Default)]
struct World {
    /// Every logged-in connection's outbox.
    lobby: Vec<Sender<String>>,
    rooms: HashMap<String, Room>,
    connections: u64,
}

/// A room's next seq and its members: their connections and outboxes.
type Room = (u64, Vec<(u64, Sender<String>)>);

pub struct FakeV3 {
    pub addr: SocketAddr,
}

/// Ways to misbehave.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Drop delivery number `n` (from 1) of a `textBroadcast`.
    pub drop_delivery: Option<u64>,
    /// Tell nobody of logins (no `loginBroadcast`).
    pub quiet_lobby: bool,
    /// Answer every `join` with `forbidden`.
    pub refuse_joins: bool,
    /// Select no subprotocol, as a server of v1 and v2 only does.
    pub no_v3: bool,
}

impl FakeV3 {
    /// Listens on 127.0.0.1. Its threads live as long as the test process.
    pub fn start(faults: Faults) -> FakeV3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local address");
        let world = Arc::new(Mutex::new(World::default()));
        let deliveries = Arc::new(AtomicU64::new(0));
        thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (world, deliveries) = (world.clone(), deliveries.clone());
                thread::spawn(move || serve(tcp, world, deliveries, faults));
            }
        });
        FakeV3 { addr }
    }
}

fn serve(tcp: TcpStream, world: Arc<Mutex<World>>, deliveries: Arc<AtomicU64>, faults: Faults) {
    #[allow(clippy::result_large_err)] // tungstenite's callback type
    let select_v3 = |request: &Request, mut response: Response| {
        let offered = request.headers().get("sec-websocket-protocol");
        let v3_offered = offered.is_some_and(|o| o.to_str().is_ok_and(|o| o.contains("wschat.v3")));
        if v3_offered && !faults.no_v3 {
            let v3 = HeaderValue::from_static("wschat.v3");
            response.headers_mut().insert("sec-websocket-protocol", v3);
        }
        Ok(response)
    };
    let Ok(writer_tcp) = tcp.try_clone() else {
        return;
    };
    let Ok(mut reader) = tungstenite::accept_hdr(tcp, select_v3) else {
        return;
    };
    // Writes go through a thread of their own, so that a member's reader
    // never blocks on another's socket.
    let (outbox, frames) = channel::<String>();
    thread::spawn(move || {
        let mut writer = WebSocket::from_raw_socket(writer_tcp, Role::Server, None);
        for frame in frames {
            if writer.send(Message::text(frame)).is_err() {
                break;
            }
        }
    });
    let mut username = String::new();
    let me = {
        let mut world = world.lock().unwrap();
        world.connections += 1;
        world.connections
    };
    while let Ok(message) = reader.read() {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(request) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let id = request["id"].as_str().unwrap_or_default();
        let mut world = world.lock().unwrap();
        match request["type"].as_str().unwrap_or_default() {
            "login" => {
                username = request["username"].as_str().unwrap_or_default().to_owned();
                let answer = json!({"type": "loginMessage", "id": "L", "replyTo": id,
                    "username": username, "location": "127.0.0.1", "secret": "s"});
                outbox.send(answer.to_string()).ok();
                world.lobby.push(outbox.clone());
                if faults.quiet_lobby {
                    continue;
                }
                let told = json!({"type": "loginBroadcast", "id": "B", "username": username,
                    "location": "127.0.0.1", "timestamp": 1});
                world.lobby.retain(|o| o.send(told.to_string()).is_ok());
            }
            "join" if faults.refuse_joins => {
                let refusal = json!({"type": "errorMessage", "error": "forbidden", "id": "E",
                    "replyTo": id, "description": "join is not served"});
                outbox.send(refusal.to_string()).ok();
            }
            "join" => {
                let room = request["room"].as_str().unwrap_or_default().to_owned();
                let (_, members) = world.rooms.entry(room.clone()).or_insert((1, Vec::new()));
                members.push((me, outbox.clone()));
                let answer = json!({"type": "membership", "id": "M", "replyTo": id,
                    "room": room, "change": "joined", "state": {"room": room}});
                outbox.send(answer.to_string()).ok();
            }
            "textFromUser" => {
                let room = request["room"].as_str().unwrap_or_default();
                let Some((next_seq, members)) = world.rooms.get_mut(room) else {
                    continue;
                };
                let seq = *next_seq;
                *next_seq += 1;
                let said = |reply_to: Option<&str>| {
                    let mut said = json!({"type": "textBroadcast", "id": "T",
                        "username": username, "message": request["text"], "seq": seq,
                        "timestamp": 1, "room": room});
                    if let Some(reply_to) = reply_to {
                        said["replyTo"] = reply_to.into();
                    }
                    said.to_string()
                };
                let (others, own) = (said(None), said(Some(id)));
                for (member, member_outbox) in members.iter() {
                    let n = deliveries.fetch_add(1, Ordering::Relaxed) + 1;
                    if Some(n) == faults.drop_delivery {
                        continue;
                    }
                    let frame = if *member == me { &own } else { &others };
                    member_outbox.send(frame.clone()).ok();
                }
            }
            _ => {}
        }
    }
}
