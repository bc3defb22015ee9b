//! The std-threads example (`examples/threaded_server.rs`) really serves the
//! chat: real tungstenite clients over loopback TCP against its `serve`,
//! run in this process (its threads end with the test binary). Every read
//! has a timeout, so a broken server fails the test instead of hanging it.

#[allow(dead_code)] // its `main` is not used here
#[path = "../examples/threaded_server.rs"]
mod threaded;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::protocol::frame::FrameSocket;
use tungstenite::protocol::frame::coding::{Control, OpCode};
use tungstenite::{Message, WebSocket};
use wschat::Config;

const TIMEOUT: Duration = Duration::from_secs(10);

fn start(config: Config) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || threaded::serve(listener, config));
    addr
}

fn connect(addr: SocketAddr) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let (ws, _response) = tungstenite::client(format!("ws://{addr}/"), stream).unwrap();
    ws
}

/// A WebSocket handshake read byte by byte, so that no frame the server
/// sends right after it is swallowed with the response.
fn raw_handshake(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).unwrap();
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    stream
}

fn send(ws: &mut WebSocket<TcpStream>, message: Value) {
    ws.send(Message::text(message.to_string())).unwrap();
}

/// The next message, which must be a JSON text; its random `id` is checked
/// and masked as "*", a `secret` as "<secret>".
fn receive(ws: &mut WebSocket<TcpStream>) -> Value {
    let message = ws.read().expect("a message before the timeout");
    let Message::Text(text) = message else {
        panic!("expected a text frame, got {message:?}");
    };
    let mut value: Value = serde_json::from_str(text.as_str()).unwrap();
    let id = value["id"].as_str().unwrap();
    assert_eq!(id.len(), 21, "{value}");
    value["id"] = "*".into();
    if let Some(secret) = value.get("secret") {
        assert_eq!(secret.as_str().unwrap().len(), 24, "{value}");
        value["secret"] = "<secret>".into();
    }
    value
}

fn login_broadcast(username: &str) -> Value {
    json!({"type": "loginBroadcast", "id": "*", "username": username, "location": "127.0.0.1"})
}

fn login_message(username: &str) -> Value {
    json!({"type": "loginMessage", "id": "*", "username": username, "location": "127.0.0.1", "secret": "<secret>"})
}

fn text_broadcast(username: &str, message: &str) -> Value {
    json!({"type": "textBroadcast", "id": "*", "username": username, "message": message})
}

#[test]
fn two_clients_log_in_and_exchange_messages() {
    let addr = start(Config::default());
    let mut alice = connect(addr);
    send(
        &mut alice,
        json!({"type": "login", "id": "1", "username": "alice"}),
    );
    assert_eq!(receive(&mut alice), login_broadcast("alice"));
    assert_eq!(receive(&mut alice), login_message("alice"));

    let mut bob = connect(addr);
    send(
        &mut bob,
        json!({"type": "login", "id": "1", "username": "bob"}),
    );
    assert_eq!(receive(&mut alice), login_broadcast("bob"));
    assert_eq!(receive(&mut bob), login_broadcast("bob"));
    assert_eq!(receive(&mut bob), login_message("bob"));

    send(
        &mut alice,
        json!({"type": "textFromUser", "id": "2", "text": "hello bob"}),
    );
    assert_eq!(receive(&mut alice), text_broadcast("alice", "hello bob"));
    assert_eq!(receive(&mut bob), text_broadcast("alice", "hello bob"));
    send(
        &mut bob,
        json!({"type": "textFromUser", "id": "2", "text": "hi alice"}),
    );
    assert_eq!(receive(&mut alice), text_broadcast("bob", "hi alice"));
    assert_eq!(receive(&mut bob), text_broadcast("bob", "hi alice"));

    // Bob leaves; alice goes on talking to herself.
    bob.close(None).unwrap();
    send(
        &mut alice,
        json!({"type": "textFromUser", "id": "3", "text": "anyone?"}),
    );
    assert_eq!(receive(&mut alice), text_broadcast("alice", "anyone?"));
}

#[test]
fn errors_come_back_and_a_ping_gets_exactly_one_pong() {
    let addr = start(Config::default());
    let mut ws = connect(addr);
    ws.send(Message::Ping("are you there".into())).unwrap();
    ws.send(Message::binary(&b"\x00\x01"[..])).unwrap();
    send(
        &mut ws,
        json!({"type": "textFromUser", "id": "1", "text": "hi"}),
    );
    // The pong is tungstenite's own; the core's is skipped, so the next
    // thing after it is the answer to the binary frame, not a second pong.
    let pong = ws.read().unwrap();
    assert_eq!(pong, Message::Pong("are you there".into()));
    assert_eq!(
        receive(&mut ws),
        json!({"type": "errorMessage", "error": "bytesReceived", "id": "*",
               "description": "binary frames are not part of the protocol; send JSON in text frames"})
    );
    assert_eq!(
        receive(&mut ws),
        json!({"type": "errorMessage", "error": "messagingWhileNotLoggedIn", "id": "*",
               "description": "log in before sending messages"})
    );
}

#[test]
fn a_silent_client_is_pinged_then_closed_with_1000_ping_timeout() {
    let addr = start(Config {
        ping_interval: Duration::from_millis(50),
        ping_retry: Duration::from_millis(20),
        evict_after: Duration::from_millis(300),
        ..Config::default()
    });
    // Raw frames after a hand-made handshake, so that nothing answers the
    // server's pings: the client is silent.
    let mut frames = FrameSocket::new(raw_handshake(addr));
    let mut pings = 0;
    let close = loop {
        let frame = frames
            .read(None)
            .expect("a frame before the timeout")
            .expect("a frame before the end of the stream");
        match frame.header().opcode {
            OpCode::Control(Control::Ping) => {
                assert_eq!(frame.payload(), b"wschat");
                pings += 1;
            }
            OpCode::Control(Control::Close) => break frame,
            other => panic!("unexpected {other:?} frame"),
        }
    };
    assert!(pings >= 1, "closed without a ping");
    let payload = close.payload();
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1000);
    assert_eq!(&payload[2..], b"ping timeout");
    // And the server hangs up.
    assert!(matches!(frames.read(None), Ok(None) | Err(_)));
}
