//! The few frames of protocol v3 (docs/PROTOCOL.md, "Version 3") that the
//! rooms modes say and hear.
//!
//! They are written and read here rather than through `wschat::protocol`,
//! leniently (any key order, unknown fields ignored), as [`Presence`] is:
//! the load generator needs a handful of fields, and at 50,000 deliveries a
//! second a small borrowed decoder costs little.
//!
//! [`Presence`]: crate::wire

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::wire::{Ear, Heard, Stamp};

/// The WebSocket subprotocol of v3.
pub use wschat::protocol::SUBPROTOCOL_V3;

/// The key of the lobby, the room of every message without `room`.
pub const LOBBY: &str = "#lobby";

/// The `id` of a client's one `join`, so that its answer is recognised.
pub const JOIN_ID: &str = "j";

/// What the rooms modes send besides v2's `login`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Said<'a> {
    Join {
        id: &'a str,
        room: &'a str,
    },
    TextFromUser {
        id: &'a str,
        room: &'a str,
        text: &'a str,
    },
}

fn encode(said: &Said<'_>) -> String {
    // Strings and a tag only: serializing cannot fail.
    serde_json::to_string(said).unwrap_or_default()
}

/// `{"type":"join","id":…,"room":…}`.
pub fn join(id: &str, room: &str) -> String {
    encode(&Said::Join { id, room })
}

/// `{"type":"textFromUser","id":…,"room":…,"text":…}`.
pub fn say(id: u64, room: &str, text: &str) -> String {
    encode(&Said::TextFromUser {
        id: &id.to_string(),
        room,
        text,
    })
}

/// The fields of any server frame that the rooms modes read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    reply_to: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default, borrow)]
    change: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    username: Option<Cow<'a, str>>,
}

/// A v3 frame, as far as the rooms modes care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomHeard<'a> {
    /// A `textBroadcast` in `room` (the lobby when the frame names none),
    /// numbered `seq` there, carrying a load generator's stamp or not.
    Said {
        room: Cow<'a, str>,
        seq: Option<u64>,
        stamp: Option<Stamp>,
    },
    /// A `membership`: this name's membership of `room` changed (`joined`,
    /// `left`, `kicked`, `banned`, `invited`), in answer to `reply_to`.
    Membership {
        room: Cow<'a, str>,
        change: Cow<'a, str>,
        reply_to: Option<Cow<'a, str>>,
    },
    /// A lobby join notice (`loginBroadcast`, `presence`, or a `member`
    /// of the lobby, should a v3 server tell its joins so): the barrier's?
    Lobby(Heard),
    /// The answer to our login.
    LoginMessage,
    /// An `errorMessage`, with its code and the id it answers.
    Error {
        code: Cow<'a, str>,
        reply_to: Option<Cow<'a, str>>,
    },
    /// Anything else: `rooms` and `history` after login, `member`,
    /// `notice`, `logoutBroadcast`, …
    Other,
    /// Not a server message.
    Garbage,
}

/// Classifies v3 text frames.
#[derive(Debug, Clone)]
pub struct RoomEar {
    /// Reads the lobby's v1/v2 join notices.
    lobby: Ear,
    /// The username whose join marks the end of the lobby's join storm.
    barrier: String,
}

impl RoomEar {
    pub fn new(barrier: &str) -> Self {
        RoomEar {
            lobby: Ear::new(barrier),
            barrier: barrier.to_owned(),
        }
    }

    /// Classifies one v3 text frame.
    pub fn hear<'a>(&self, frame: &'a str) -> RoomHeard<'a> {
        hear(frame, self)
    }
}

fn hear<'a>(frame: &'a str, ear: &RoomEar) -> RoomHeard<'a> {
    let Ok(parsed) = serde_json::from_str::<Frame<'a>>(frame) else {
        return RoomHeard::Garbage;
    };
    match &*parsed.kind {
        "textBroadcast" => match parsed.message {
            Some(message) => RoomHeard::Said {
                room: parsed.room.unwrap_or(Cow::Borrowed(LOBBY)),
                seq: parsed.seq,
                stamp: Stamp::parse(&message),
            },
            None => RoomHeard::Garbage,
        },
        "membership" => match (parsed.room, parsed.change) {
            (Some(room), Some(change)) => RoomHeard::Membership {
                room,
                change,
                reply_to: parsed.reply_to,
            },
            _ => RoomHeard::Garbage,
        },
        "loginBroadcast" | "presence" => RoomHeard::Lobby(ear.lobby.hear(frame)),
        "member" if parsed.room.as_deref() == Some(LOBBY) => {
            let joined = parsed.change.as_deref() == Some("joined");
            RoomHeard::Lobby(Heard::LoginBroadcast {
                barrier: joined && parsed.username.as_deref() == Some(&*ear.barrier),
            })
        }
        "loginMessage" => RoomHeard::LoginMessage,
        "errorMessage" => RoomHeard::Error {
            code: parsed.error.unwrap_or(Cow::Borrowed("?")),
            reply_to: parsed.reply_to,
        },
        _ => RoomHeard::Other,
    }
}

#[cfg(test)]
#[path = "v3_tests.rs"]
mod tests;
