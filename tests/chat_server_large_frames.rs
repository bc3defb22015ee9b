//! Frames the server sends that are far larger than any it accepts: a v2
//! catch-up (`history`) holds many messages in one frame, and must reach
//! the client whole however small `--max-frame-bytes` is.
#![cfg(feature = "server")]

mod net;

use net::*;
use serde_json::json;

#[test]
fn a_history_far_larger_than_the_largest_accepted_frame_arrives_whole() {
    // 128 bytes is the smallest frame the server accepts; a write bound
    // derived from it (6 × 128 + 1 KiB) must not cap what it sends.
    let server = ServerProcess::start(&["--max-frame-bytes", "128", "--message-rate", "0"]);
    let mut alice = Client::connect(server.addr);
    alice.login("alice");
    let texts: Vec<String> = (0..40)
        .map(|i| format!("message {i:02} {}", "x".repeat(60)))
        .collect();
    for text in &texts {
        alice.say(text);
        alice.recv_type("textBroadcast");
    }

    let mut bob = Client::connect_v2(server.addr);
    bob.send_json(json!({"type": "login", "id": "l", "username": "bob"}));
    bob.recv_type("loginMessage");
    let history = bob.recv_text();
    assert!(history.len() > 6 * 128 + 1024, "{} bytes", history.len());
    let history: serde_json::Value = serde_json::from_str(&history).expect("JSON");
    assert_eq!(history["type"], "history");
    let got: Vec<&str> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["message"].as_str().expect("a text"))
        .collect();
    assert_eq!(got, texts);
}
