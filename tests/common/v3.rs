//! A protocol v3 client over real sockets, for the tests of `chat-server`
//! with rooms: `#[path = "common/v3.rs"] mod v3;` beside `mod net;`.
//!
//! Every frame it receives is kept (`received`), so that a test can scan
//! all that reached a client for what must never reach it; frames not
//! asked for yet wait in order (`unread`), so that a test may wait for one
//! frame without losing those that came before it.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::VecDeque;
use std::net::SocketAddr;

use serde_json::{Value, json};
use tungstenite::Message;

use crate::net::{Client, TIMEOUT};

/// Flags that keep the message rate limit out of tests of other rules.
pub const NO_RATE_LIMIT: [&str; 2] = ["--message-rate", "0"];

/// A client that offered `wschat.v3, wschat.v2` and got v3.
pub struct V3 {
    pub client: Client,
    /// The name it logged in with, once it did.
    pub name: String,
    /// Its secret, once logged in.
    pub secret: String,
    /// Every text frame received, raw, in order.
    pub received: Vec<String>,
    /// Frames received but not yet taken by a wait.
    unread: VecDeque<Value>,
    /// The next request id.
    next_id: u64,
}

/// What a v3 login was answered with.
#[derive(Debug)]
pub struct Login {
    pub message: Value,
    /// The `rooms` frame.
    pub rooms: Value,
    /// The `history` frames answering the login, as sent.
    pub histories: Vec<Value>,
}

impl Login {
    /// The state of `room` in `rooms.rooms`.
    pub fn room(&self, room: &str) -> Option<&Value> {
        room_in(&self.rooms["rooms"], room)
    }

    /// The catch-up history of `room`.
    pub fn history(&self, room: &str) -> Option<&Value> {
        self.histories.iter().find(|h| h["room"] == room)
    }

    /// The `changes` entries of `room`.
    pub fn changes(&self, room: &str) -> Vec<&Value> {
        let changes = self.rooms["changes"].as_array();
        changes
            .into_iter()
            .flatten()
            .filter(|c| c["room"] == room)
            .collect()
    }
}

/// Whether a message seen on v3 is the lobby's: `room` is `#lobby`, or
/// absent (as on v2; PROTOCOL.md leaves it open).
pub fn in_lobby(message: &Value) -> bool {
    [json!("#lobby"), Value::Null].contains(&message["room"])
}

/// The entry of `room` in an array of room states.
pub fn room_in<'v>(rooms: &'v Value, room: &str) -> Option<&'v Value> {
    rooms.as_array()?.iter().find(|r| r["room"] == room)
}

/// The `seq` numbers of a `history` frame's messages, in order.
pub fn seqs(history: &Value) -> Vec<u64> {
    messages(history)
        .iter()
        .map(|m| m["seq"].as_u64().expect("a seq"))
        .collect()
}

/// The messages of a `history` frame.
pub fn messages(history: &Value) -> &Vec<Value> {
    history["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {history}"))
}

/// The texts of a `history` frame's plain messages, in order.
pub fn texts(history: &Value) -> Vec<String> {
    messages(history)
        .iter()
        .filter(|m| m["type"] == "textBroadcast")
        .map(|m| m["message"].as_str().expect("a message").to_owned())
        .collect()
}

impl V3 {
    /// Connects offering `wschat.v3, wschat.v2`; the server must select v3.
    pub fn connect(addr: SocketAddr) -> V3 {
        let (client, selected) = Client::connect_offering(addr, &["wschat.v3, wschat.v2"]);
        assert_eq!(selected.as_deref(), Some("wschat.v3"), "v3 not selected");
        V3 {
            client,
            name: String::new(),
            secret: String::new(),
            received: Vec::new(),
            unread: VecDeque::new(),
            next_id: 0,
        }
    }

    /// Connects and logs in as `name` (a new name): the login's answer.
    pub fn login_as(addr: SocketAddr, name: &str) -> (V3, Login) {
        let mut v3 = V3::connect(addr);
        let login = v3.login(json!({"username": name}));
        (v3, login)
    }

    /// Connects and logs in as `name` with `secret` (another device of the
    /// name, or the same after a restart), listing `rooms` it knows.
    pub fn reclaim(addr: SocketAddr, name: &str, secret: &str, rooms: Value) -> (V3, Login) {
        let mut v3 = V3::connect(addr);
        let login = v3.login(json!({"username": name, "secret": secret, "rooms": rooms}));
        (v3, login)
    }

    /// A fresh request id.
    pub fn id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{kind}{}", self.next_id)
    }

    /// Logs in with the fields of `login` (a `type` and `id` are added):
    /// the `loginMessage`, the `rooms` and the `history` frames answering
    /// it (those sent before the answer to a `listRooms` sent once `rooms`
    /// came: the core sends a login's whole answer at once). A login that
    /// is not answered so fails the test.
    pub fn login(&mut self, mut login: Value) -> Login {
        let id = self.id("login");
        login["type"] = "login".into();
        login["id"] = id.clone().into();
        self.send(login);
        let message = self.reply(&id);
        assert_eq!(message["type"], "loginMessage", "{message}");
        self.name = message["username"].as_str().expect("a name").to_owned();
        self.secret = message["secret"].as_str().expect("a secret").to_owned();
        // `rooms`, then a `history` per room; a lobby's `history` may come
        // before `rooms`, as on v2.
        let mut histories = Vec::new();
        let rooms = loop {
            let frame = self.reply(&id);
            match frame["type"].as_str() {
                Some("rooms") => break frame,
                Some("history") => histories.push(frame),
                _ => panic!("{}: {frame} answers a login", self.name),
            }
        };
        let sync = self.id("sync");
        self.send(json!({"type": "listRooms", "id": sync}));
        loop {
            let frame = self.next_where(|f| f["replyTo"] == id || f["replyTo"] == sync);
            if frame["replyTo"] == sync {
                break;
            }
            assert_eq!(frame["type"], "history", "{frame}");
            histories.push(frame);
        }
        Login {
            message,
            rooms,
            histories,
        }
    }

    pub fn send(&mut self, json: Value) {
        self.client.send_json(json);
    }

    /// Sends `request` with a fresh id (of its type) and returns the frame
    /// answering it.
    pub fn request(&mut self, mut request: Value) -> Value {
        let kind = request["type"].as_str().expect("a type").to_owned();
        let id = self.id(&kind);
        request["id"] = id.clone().into();
        self.send(request);
        self.reply(&id)
    }

    /// The next frame answering `id` (its `replyTo`).
    pub fn reply(&mut self, id: &str) -> Value {
        self.next_where(|f| f["replyTo"] == id)
    }

    /// The first frame (unread or yet to come) that `pred` matches, taken;
    /// those before it stay unread. A Close fails the test.
    pub fn next_where(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(at) = self.unread.iter().position(&pred) {
            return self.unread.remove(at).expect("a position found");
        }
        loop {
            let frame = self.read();
            if pred(&frame) {
                return frame;
            }
            self.unread.push_back(frame);
        }
    }

    /// The next frame of `kind` about `room`.
    pub fn next_in(&mut self, kind: &str, room: &str) -> Value {
        self.next_where(|f| f["type"] == kind && f["room"] == room)
    }

    /// The next `textBroadcast` of `text` (in any room).
    pub fn said(&mut self, text: &str) -> Value {
        self.next_where(|f| f["type"] == "textBroadcast" && f["message"] == text)
    }

    /// The next `notice` of `act` in `room`.
    pub fn notice(&mut self, room: &str, act: &str) -> Value {
        self.next_where(|f| f["type"] == "notice" && f["room"] == room && f["act"] == act)
    }

    /// Reads one frame, keeping it in `received`.
    fn read(&mut self) -> Value {
        let text = match self.client.recv() {
            Message::Text(text) => text.to_string(),
            other => panic!("{}: expected a text frame, got {other:?}", self.name),
        };
        self.received.push(text.clone());
        serde_json::from_str(&text).expect("JSON from the server")
    }

    /// Every frame that arrives within `quiet` of the last one (at most
    /// until `TIMEOUT`), kept unread: for a test that then scans
    /// `received` for what must not have come.
    pub fn settle(&mut self, quiet: std::time::Duration) {
        let tcp = self.client.ws.get_ref();
        tcp.set_read_timeout(Some(quiet)).expect("set a timeout");
        let deadline = std::time::Instant::now() + TIMEOUT;
        while std::time::Instant::now() < deadline {
            match self.client.ws.read() {
                Ok(Message::Text(text)) => {
                    self.received.push(text.to_string());
                    let frame = serde_json::from_str(&text).expect("JSON from the server");
                    self.unread.push_back(frame);
                }
                Ok(Message::Close(frame)) => panic!("{}: closed: {frame:?}", self.name),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => panic!("{}: {e}", self.name),
            }
        }
        let tcp = self.client.ws.get_ref();
        tcp.set_read_timeout(Some(TIMEOUT)).expect("set a timeout");
    }

    /// Says `text` in `room` and returns the acknowledgement (the sender's
    /// own `textBroadcast`), which must have come.
    pub fn say_in(&mut self, room: &str, text: &str) -> Value {
        let ack = self.request(json!({"type": "textFromUser", "room": room, "text": text}));
        assert_eq!(ack["type"], "textBroadcast", "{}: {ack}", self.name);
        match room {
            "#lobby" => assert!(in_lobby(&ack), "{ack}"),
            _ => assert_eq!(ack["room"], room, "{ack}"),
        }
        ack
    }

    /// Joins `room` (creating it if new); the `membership` answering it.
    pub fn join(&mut self, room: &str) -> Value {
        let reply = self.request(json!({"type": "join", "room": room}));
        assert_eq!(
            (&reply["type"], &reply["change"]),
            (&json!("membership"), &json!("joined")),
            "{}: {reply}",
            self.name
        );
        reply
    }

    /// Creates the invite-only `room`; the `membership` answering it.
    pub fn create_invite_only(&mut self, room: &str) -> Value {
        let reply = self.request(json!({"type": "join", "room": room, "inviteOnly": true}));
        assert_eq!(reply["type"], "membership", "{}: {reply}", self.name);
        assert_eq!(reply["state"]["inviteOnly"], true, "{reply}");
        reply
    }

    /// A page of `room`'s history: `position` is `{"before": n}`,
    /// `{"after": n}` or `{}` (the latest).
    pub fn page(&mut self, room: &str, position: Value, limit: Option<u64>) -> Value {
        let mut request = json!({"type": "history", "room": room});
        for (key, value) in position.as_object().expect("an object") {
            request[key] = value.clone();
        }
        if let Some(limit) = limit {
            request["limit"] = limit.into();
        }
        let page = self.request(request);
        assert_eq!(page["type"], "history", "{page}");
        assert_eq!(page["room"], room, "{page}");
        page
    }

    /// Everything the server holds of `room`, fetched page by page
    /// backwards (`before` the first `seq` of each page, until
    /// `complete`), oldest first.
    pub fn everything_held(&mut self, room: &str, limit: u64) -> Vec<Value> {
        let mut page = self.page(room, json!({}), Some(limit));
        let mut all: Vec<Value> = messages(&page).clone();
        for _ in 0..10_000 {
            if page["complete"] == true {
                return all;
            }
            let first = all
                .first()
                .and_then(|m| m["seq"].as_u64())
                .expect("an incomplete page has messages");
            page = self.page(room, json!({"before": first}), Some(limit));
            let mut older = messages(&page).clone();
            assert!(!older.is_empty() || page["complete"] == true, "{page}");
            older.append(&mut all);
            all = older;
        }
        panic!("paging {room} never completed");
    }

    /// Sends a moderation act (`request` without an id): the `notice` of
    /// it by this name in its room (an act is answered by the notice to
    /// the room, which carries no `replyTo`), or the error refusing it.
    pub fn moderate(&mut self, request: Value) -> Value {
        let room = request["room"].as_str().expect("a room").to_owned();
        let act = request["type"].as_str().expect("a type").to_owned();
        let id = self.id(&act);
        let mut request = request;
        request["id"] = id.clone().into();
        self.send(request);
        let name = self.name.clone();
        self.next_where(|f| {
            let notice = f["type"] == "notice"
                && f["room"] == room.as_str()
                && f["act"] == act.as_str()
                && f["by"] == name.as_str();
            notice || f["replyTo"] == id.as_str()
        })
    }

    /// The `roomList` answering a `listRooms`: its rooms.
    pub fn list_rooms(&mut self) -> Value {
        let list = self.request(json!({"type": "listRooms"}));
        assert_eq!(list["type"], "roomList", "{list}");
        list["rooms"].clone()
    }

    /// The `errorMessage` that `request` must be refused with: its code
    /// and description.
    pub fn refused(&mut self, request: Value) -> (String, String) {
        let reply = self.request(request.clone());
        assert_eq!(
            reply["type"], "errorMessage",
            "{}: {request} was not refused: {reply}",
            self.name
        );
        (
            reply["error"].as_str().expect("a code").to_owned(),
            reply["description"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Whether any frame received so far contains `marker`.
    pub fn has_seen(&self, marker: &str) -> bool {
        self.received.iter().any(|f| f.contains(marker))
    }
}
