//! A store written before rooms (by chat-server of ab928bb, store format 1:
//! tests/fixtures/store-ab928bb) is opened and served on by today's
//! chat-server: the lobby's messages keep their `seq`s and epoch, the next
//! message takes the next `seq`, and so on after a SIGKILL.
#![cfg(all(feature = "server", target_os = "linux"))]

mod net;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;

use net::*;
use serde_json::{Value, json};

/// The fixture's epoch, and its messages as (seq, username, text).
const EPOCH: &str = "8v6nzW0n8hJCV_Sl";
const SAID: [(u64, &str, &str); 4] = [
    (1, "alice", "hello from alice"),
    (2, "alice", "second line from alice"),
    (3, "Bob", "hi alice, bob here"),
    (4, "alice", "alice again"),
];

/// The history a v2 login as `name` with `since` (in [`EPOCH`]) is sent:
/// the `history` message.
fn history_since(addr: SocketAddr, name: &str, since: u64) -> (Client, Value) {
    let mut client = Client::connect_v2(addr);
    client.send_json(json!({
        "type": "login", "id": "l", "username": name, "since": since, "epoch": EPOCH
    }));
    let history = client.recv_type("history");
    (client, history)
}

fn said(history: &Value) -> Vec<(u64, String, String)> {
    let messages = history["messages"].as_array().expect("messages");
    messages
        .iter()
        .map(|m| {
            let seq = m["seq"].as_u64().expect("a seq");
            let username = m["username"].as_str().expect("a username");
            let text = m["message"].as_str().expect("a message");
            (seq, username.to_owned(), text.to_owned())
        })
        .collect()
}

fn expected(said: &[(u64, &str, &str)]) -> Vec<(u64, String, String)> {
    said.iter()
        .map(|&(seq, username, text)| (seq, username.into(), text.into()))
        .collect()
}

/// Says `text` as `client`; its `seq`.
fn say(client: &mut Client, id: &str, text: &str) -> u64 {
    client.send_json(json!({"type": "textFromUser", "id": id, "text": text}));
    let ack = client.reply_to(id);
    assert_eq!(ack["type"], "textBroadcast", "{ack}");
    ack["seq"].as_u64().expect("a seq")
}

#[test]
fn a_store_written_by_ab928bb_is_served_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-ab928bb");
    fs::copy(fixture.join("wschat.redb"), data.join("wschat.redb")).unwrap();
    let data = data.to_str().unwrap();
    let mut server = ServerProcess::start(&["--data-dir", data]);

    let (_, everything) = history_since(server.addr, "carol", 0);
    assert_eq!(everything["epoch"], EPOCH, "{everything}");
    assert_eq!(said(&everything), expected(&SAID));
    assert_eq!(everything["complete"], true);
    let (mut dave, missed) = history_since(server.addr, "dave", 2);
    assert_eq!(said(&missed), expected(&SAID[2..]));
    assert_eq!(say(&mut dave, "m", "the fifth"), 5);
    // The names the old server held ran out while it was down: free.
    let mut alice = Client::connect_v2(server.addr);
    alice.login("alice");
    drop((alice, dave));

    server.restart(); // after a SIGKILL
    let (mut erin, missed) = history_since(server.addr, "erin", 4);
    assert_eq!(missed["epoch"], EPOCH);
    assert_eq!(said(&missed), expected(&[(5, "dave", "the fifth")]));
    assert_eq!(say(&mut erin, "m", "the sixth"), 6);
}
