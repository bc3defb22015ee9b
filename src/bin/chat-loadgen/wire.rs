//! What the load generator says and how it reads what it hears.
//!
//! It speaks protocol v1 or v2 through `wschat::protocol`. Reading is the
//! hot path of the fanout mode (hundreds of thousands of frames per second
//! on the same two cores as the server), so the two frames that come in
//! bulk, `textBroadcast` and `loginBroadcast`, are recognised by a byte scan
//! that relies on the documented key order (docs/PROTOCOL.md: `type`
//! first); any frame the scan does not recognise goes through a decoder.
//!
//! v2 adds the paced `presence` summary, which stands for many joins and
//! leaves at once: it is decoded here, leniently, by [`Presence`] rather
//! than by `wschat::protocol`, so that the load generator reads exactly the
//! fields it needs and ignores any others.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;
use wschat::ServerMessage;
use wschat::protocol::{ClientMessage, SUBPROTOCOL_V2};

use crate::summary::Field;

/// The protocol version the clients speak (`--protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Protocol {
    /// Offer no subprotocol: every login is one `loginBroadcast` to everyone.
    #[default]
    V1,
    /// Offer `wschat.v2` and require the server to select it.
    V2,
}

impl Protocol {
    /// The `Sec-WebSocket-Protocol` to offer in the handshake.
    pub fn subprotocol(self) -> Option<&'static str> {
        match self {
            Protocol::V1 => None,
            Protocol::V2 => Some(SUBPROTOCOL_V2),
        }
    }
}

impl Field for Protocol {
    fn render(&self) -> String {
        match self {
            Protocol::V1 => "v1",
            Protocol::V2 => "v2",
        }
        .to_owned()
    }
    fn parse(text: &str) -> Option<Self> {
        match text {
            "v1" => Some(Protocol::V1),
            "v2" => Some(Protocol::V2),
            _ => None,
        }
    }
}

/// The text a fanout sender puts in a `textFromUser`:
/// `lg <sender> <seq> <sent_nanos> xxxx…`, padded with `x` to a fixed
/// length. `sent_nanos` is when the message was *scheduled*, in
/// nanoseconds since the run's epoch, so that a sender running late shows
/// up as latency instead of hiding it (no coordinated omission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sender: u32,
    pub seq: u64,
    pub sent_nanos: u64,
}

impl Stamp {
    const TAG: &'static str = "lg ";

    /// The message text, at least `min_len` bytes long.
    pub fn to_text(self, min_len: usize) -> String {
        let mut text = String::with_capacity(min_len.max(48));
        let _ = write!(
            text,
            "{}{} {} {} ",
            Self::TAG,
            self.sender,
            self.seq,
            self.sent_nanos
        );
        while text.len() < min_len {
            text.push('x');
        }
        text
    }

    /// Reads a stamp back from a message text.
    pub fn parse(text: &str) -> Option<Stamp> {
        let mut words = text.strip_prefix(Self::TAG)?.split(' ');
        Some(Stamp {
            sender: words.next()?.parse().ok()?,
            seq: words.next()?.parse().ok()?,
            sent_nanos: words.next()?.parse().ok()?,
        })
    }
}

/// A frame from the server, as far as the load generator cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A `textBroadcast` carrying a fanout stamp.
    Stamped(Stamp),
    /// Any other `textBroadcast`.
    Text,
    /// A `loginBroadcast`: one join; `barrier` when it announces the
    /// given barrier name.
    LoginBroadcast { barrier: bool },
    /// v2: a `presence` summary of `joined` joins (its `joinedCount`);
    /// `barrier` when the barrier name is among the names listed as joined.
    Presence { barrier: bool, joined: u64 },
    /// The answer to our own login.
    LoginMessage,
    /// An `errorMessage`, with its code on the wire.
    Error(String),
    /// A v2 message the load generator has no use for: `history` (after
    /// every v2 `loginMessage`), `logoutBroadcast`, `userList`.
    Other,
    /// Not a server message.
    Garbage,
}

impl Heard {
    /// Whether this frame tells that the barrier has joined.
    pub fn is_barrier(&self) -> bool {
        matches!(
            self,
            Heard::LoginBroadcast { barrier: true } | Heard::Presence { barrier: true, .. }
        )
    }
}

/// The join notices one connection received: the frames, and the joins
/// they told of. In v1 the two are equal; in v2 one `presence` frame may
/// stand for thousands of joins, which is the point of pacing. The
/// barrier's own join is not counted: it measures the storm, it is not
/// part of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Joins {
    /// `loginBroadcast` and `presence` frames.
    pub frames: u64,
    /// `loginBroadcast`s plus the `joinedCount` of every `presence`.
    pub heard: u64,
}

impl Joins {
    /// Counts `heard` if it is a join notice.
    pub fn count(&mut self, heard: &Heard) {
        match *heard {
            Heard::LoginBroadcast { barrier: false } => {
                self.frames += 1;
                self.heard += 1;
            }
            Heard::Presence { barrier, joined } => {
                self.frames += 1;
                self.heard += joined.saturating_sub(u64::from(barrier));
            }
            _ => {}
        }
    }
}

const TEXT_BROADCAST: &str = r#"{"type":"textBroadcast","#;
const LOGIN_BROADCAST: &str = r#"{"type":"loginBroadcast","#;
const PRESENCE: &str = r#"{"type":"presence","#;
const MESSAGE_KEY: &str = r#","message":""#;

/// The fields of a v2 `presence` frame that the load generator reads:
///
/// ```json
/// {"type":"presence","id":"…","joined":["lg-x-5","lg-x-6"],"joinedCount":1234,
///  "left":["carol"],"leftCount":1,"timestamp":1764326400000}
/// ```
///
/// `joined` lists the most recent names (up to 20), `joinedCount` the
/// joins summarised. Other fields are ignored; a missing `joinedCount`
/// counts the names listed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Presence<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    joined: Vec<Name<'a>>,
    #[serde(default)]
    joined_count: Option<u64>,
}

/// A username, borrowed from the frame unless it holds JSON escapes.
#[derive(Debug, Deserialize)]
struct Name<'a>(#[serde(borrow)] Cow<'a, str>);

impl Presence<'_> {
    /// The frame as a presence summary, or `None` if it is none.
    fn hear(frame: &str, barrier: &str) -> Option<Heard> {
        let presence: Presence = serde_json::from_str(frame).ok()?;
        (presence.kind == "presence").then(|| Heard::Presence {
            barrier: presence.joined.iter().any(|name| name.0 == barrier),
            joined: presence
                .joined_count
                .unwrap_or(presence.joined.len() as u64),
        })
    }
}

/// Classifies text frames.
#[derive(Debug, Clone)]
pub struct Ear {
    /// The username whose `loginBroadcast` marks the end of a join phase.
    barrier: String,
    /// `"username":"<barrier>"`, built once rather than per frame.
    barrier_field: String,
}

impl Ear {
    pub fn new(barrier: &str) -> Self {
        Ear {
            barrier: barrier.to_owned(),
            barrier_field: format!(r#""username":"{barrier}""#),
        }
    }

    /// Classifies one text frame.
    pub fn hear(&self, frame: &str) -> Heard {
        hear(frame, &self.barrier, &self.barrier_field)
    }
}

fn hear(frame: &str, barrier: &str, barrier_field: &str) -> Heard {
    if frame.starts_with(TEXT_BROADCAST) {
        // Server ids are `A-Za-z0-9_-` and our usernames are `lg-…`, so the
        // first `,"message":"` is the key, not part of a value.
        if let Some(at) = find(frame, MESSAGE_KEY, TEXT_BROADCAST.len()) {
            let message = &frame[at + MESSAGE_KEY.len()..];
            return match Stamp::parse(message) {
                Some(stamp) => Heard::Stamped(stamp),
                None => Heard::Text,
            };
        }
    } else if frame.starts_with(LOGIN_BROADCAST) {
        return Heard::LoginBroadcast {
            barrier: find(frame, barrier_field, LOGIN_BROADCAST.len()).is_some(),
        };
    } else if frame.starts_with(PRESENCE) {
        return Presence::hear(frame, barrier).unwrap_or(Heard::Garbage);
    }
    // Rare frames, or keys in another order: a presence summary by its
    // own decoder (whatever `wschat::protocol` makes of it), then the rest.
    if let Some(presence) = Presence::hear(frame, barrier) {
        return presence;
    }
    match ServerMessage::decode(frame.as_bytes()) {
        Ok(ServerMessage::TextBroadcast { message, .. }) => match Stamp::parse(&message) {
            Some(stamp) => Heard::Stamped(stamp),
            None => Heard::Text,
        },
        Ok(ServerMessage::LoginBroadcast { username, .. }) => Heard::LoginBroadcast {
            barrier: username == barrier,
        },
        Ok(ServerMessage::LoginMessage { .. }) => Heard::LoginMessage,
        Ok(ServerMessage::ErrorMessage { error, .. }) => Heard::Error(error.to_string()),
        // history, logoutBroadcast, userList, and whatever v2 adds.
        Ok(_) => Heard::Other,
        Err(_) => Heard::Garbage,
    }
}

/// Where `needle` first occurs in `haystack` at or after `from`. A plain
/// scan: on frames of a few hundred bytes it beats `str::find`, which
/// builds a two-way searcher on every call (a tenth of the load
/// generator's CPU in a fanout profile).
fn find(haystack: &str, needle: &str, from: usize) -> Option<usize> {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    let first = *needle.first()?;
    (from..=haystack.len().checked_sub(needle.len())?)
        .find(|&at| haystack[at] == first && haystack[at..].starts_with(needle))
}

/// The JSON text of a `login`.
pub fn login(username: &str) -> String {
    encode(&ClientMessage::Login {
        id: "l".into(),
        username: username.into(),
        secret: None,
        since: None,
        epoch: None,
        rooms: None,
    })
}

/// The JSON text of a `textFromUser`.
pub fn text_from_user(id: u64, text: String) -> String {
    encode(&ClientMessage::TextFromUser {
        id: id.to_string(),
        text,
        room: None,
    })
}

fn encode(message: &ClientMessage) -> String {
    // `encode` produces JSON, which is UTF-8.
    String::from_utf8(message.encode()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wschat::ErrorCode;

    fn hear(frame: &str, barrier: &str) -> Heard {
        Ear::new(barrier).hear(frame)
    }

    fn text_broadcast(message: &str) -> String {
        let msg = ServerMessage::TextBroadcast {
            id: "0StDjslAiQlRMS0_W5JNJ".into(),
            reply_to: None,
            username: "lg-1a2b-7".into(),
            message: message.into(),
            seq: None,
            timestamp: None,
            room: None,
        };
        String::from_utf8(msg.encode()).unwrap()
    }

    #[test]
    fn a_stamp_survives_the_text_and_the_padding() {
        let stamp = Stamp {
            sender: 7,
            seq: 12_345,
            sent_nanos: 9_876_543_210,
        };
        let text = stamp.to_text(100);
        assert_eq!(text.len(), 100);
        assert!(text.starts_with("lg 7 12345 9876543210 xxx"));
        assert_eq!(Stamp::parse(&text), Some(stamp));
        assert_eq!(Stamp::parse(&stamp.to_text(0)), Some(stamp));
        assert_eq!(Stamp::parse("lg 7 x 1 "), None);
        assert_eq!(Stamp::parse("hello"), None);
    }

    #[test]
    fn hears_a_stamped_broadcast_through_the_fast_path_and_the_decoder() {
        let stamp = Stamp {
            sender: 2,
            seq: 3,
            sent_nanos: 4,
        };
        let frame = text_broadcast(&stamp.to_text(100));
        assert!(frame.starts_with(TEXT_BROADCAST), "{frame}");
        assert_eq!(hear(&frame, "b"), Heard::Stamped(stamp));
        // Same message, keys reordered: only the decoder understands it.
        let reordered = format!(
            r#"{{"message":"{}","type":"textBroadcast","id":"i","username":"u"}}"#,
            stamp.to_text(10)
        );
        assert_eq!(hear(&reordered, "b"), Heard::Stamped(stamp));
        assert_eq!(hear(&text_broadcast("hello"), "b"), Heard::Text);
    }

    fn login_broadcast(name: &str) -> String {
        let msg = ServerMessage::LoginBroadcast {
            id: "i".into(),
            username: name.into(),
            location: "127.0.0.3".into(),
            timestamp: Some(1_764_326_400_000),
        };
        String::from_utf8(msg.encode()).unwrap()
    }

    #[test]
    fn hears_logins_errors_and_garbage() {
        assert_eq!(
            hear(&login_broadcast("lg-1-barrier"), "lg-1-barrier"),
            Heard::LoginBroadcast { barrier: true }
        );
        assert_eq!(
            hear(&login_broadcast("lg-1-9"), "lg-1-barrier"),
            Heard::LoginBroadcast { barrier: false }
        );
        let login_message = ServerMessage::LoginMessage {
            id: "i".into(),
            reply_to: None,
            username: "u".into(),
            location: "l".into(),
            secret: "s".into(),
        };
        let login_message = String::from_utf8(login_message.encode()).unwrap();
        assert_eq!(hear(&login_message, "b"), Heard::LoginMessage);
        let error = ServerMessage::ErrorMessage {
            error: ErrorCode::LoginTaken,
            id: "i".into(),
            reply_to: None,
            description: None,
        };
        let error = String::from_utf8(error.encode()).unwrap();
        assert_eq!(hear(&error, "b"), Heard::Error("loginTaken".into()));
        assert_eq!(hear("null", "b"), Heard::Garbage);
        assert_eq!(hear(r#"{"type":"textBroadcast","#, "b"), Heard::Garbage);
    }

    /// A v2 `presence` frame, keys in the spec's order.
    fn presence(joined: &[&str], joined_count: u64, left: &[&str]) -> String {
        let names = |names: &[&str]| serde_json::to_string(names).unwrap();
        format!(
            r#"{{"type":"presence","id":"Pq3","joined":{},"joinedCount":{joined_count},"left":{},"leftCount":{},"timestamp":1764326400000}}"#,
            names(joined),
            names(left),
            left.len(),
        )
    }

    #[test]
    fn a_presence_summary_with_the_barrier_among_the_joined_is_hearing_it() {
        let barrier = "lg-x-barrier";
        let frame = presence(&["lg-x-998", "lg-x-999", barrier], 1234, &["carol"]);
        assert!(frame.starts_with(PRESENCE), "{frame}");
        let heard = hear(&frame, barrier);
        assert_eq!(
            heard,
            Heard::Presence {
                barrier: true,
                joined: 1234
            }
        );
        assert!(heard.is_barrier());

        // Not among the joined: not heard, even when it has left.
        let heard = hear(&presence(&["lg-x-5"], 7, &[barrier]), barrier);
        assert_eq!(
            heard,
            Heard::Presence {
                barrier: false,
                joined: 7
            }
        );
        assert!(!heard.is_barrier());
        // A name that merely contains the barrier's is another name.
        let longer = format!("{barrier}2");
        assert!(!hear(&presence(&[&longer], 1, &[]), barrier).is_barrier());
    }

    #[test]
    fn a_presence_summary_is_read_leniently() {
        let barrier = "lg-x-barrier";
        // Keys in another order, unknown fields, an escaped name.
        let frame = r#"{"joinedCount":3,"extra":{"a":[1,2]},"joined":["lg-x-\u0062arrier"],"type":"presence"}"#;
        assert_eq!(
            hear(frame, barrier),
            Heard::Presence {
                barrier: true,
                joined: 3
            }
        );
        // No joinedCount: the names listed are the joins known; no joined at all: none.
        assert_eq!(
            hear(r#"{"type":"presence","joined":["a","b"]}"#, barrier),
            Heard::Presence {
                barrier: false,
                joined: 2
            }
        );
        assert_eq!(
            hear(r#"{"type":"presence","left":["a"],"leftCount":1}"#, barrier),
            Heard::Presence {
                barrier: false,
                joined: 0
            }
        );
        // Malformed: garbage, not a panic.
        assert_eq!(
            hear(r#"{"type":"presence","joined":"a"}"#, barrier),
            Heard::Garbage
        );
        assert_eq!(hear(r#"{"type":"presence","#, barrier), Heard::Garbage);
    }

    #[test]
    fn joins_heard_adds_the_joined_count_of_each_summary() {
        let barrier = "lg-x-barrier";
        let mut joins = Joins::default();
        for frame in [
            login_broadcast("lg-x-1"),
            login_broadcast("lg-x-2"),
            presence(&["lg-x-3", "lg-x-4"], 1000, &[]),
            presence(&["lg-x-5"], 500, &["lg-x-1"]),
        ] {
            joins.count(&hear(&frame, barrier));
        }
        assert_eq!(
            joins,
            Joins {
                frames: 4,
                heard: 2 + 1000 + 500
            }
        );
        // Other frames are no joins; the barrier's own join is not counted.
        joins.count(&hear(&login_broadcast(barrier), barrier));
        joins.count(&Heard::Text);
        joins.count(&Heard::Other);
        assert_eq!(joins.frames, 4);
        joins.count(&hear(&presence(&["lg-x-6", barrier], 2, &[]), barrier));
        assert_eq!(
            joins,
            Joins {
                frames: 5,
                heard: 1503
            }
        );
    }

    #[test]
    fn hears_the_other_v2_messages() {
        let stamp = Stamp {
            sender: 1,
            seq: 9,
            sent_nanos: 77,
        };
        // The sender's own copy: replyTo before the message, seq and timestamp after.
        let own = ServerMessage::TextBroadcast {
            id: "K2f".into(),
            reply_to: Some("9".into()),
            username: "lg-x-1".into(),
            message: stamp.to_text(100).into(),
            seq: Some(43),
            timestamp: Some(1_764_326_401_000),
            room: None,
        };
        let own = String::from_utf8(own.encode()).unwrap();
        assert!(own.starts_with(TEXT_BROADCAST), "{own}");
        assert_eq!(hear(&own, "b"), Heard::Stamped(stamp));

        let history = ServerMessage::History {
            id: "Rt4".into(),
            reply_to: "l".into(),
            epoch: None,
            messages: vec![ServerMessage::decode(own.as_bytes()).unwrap()],
            complete: true,
            room: None,
        };
        let history = String::from_utf8(history.encode()).unwrap();
        assert_eq!(hear(&history, "b"), Heard::Other);
        let logout = r#"{"type":"logoutBroadcast","id":"i","username":"lg-x-barrier","reason":"disconnected","timestamp":1}"#;
        assert_eq!(hear(logout, "lg-x-barrier"), Heard::Other);
        let login_message = r#"{"type":"loginMessage","id":"Zq0","replyTo":"l","username":"u","location":"l","secret":"s"}"#;
        assert_eq!(hear(login_message, "b"), Heard::LoginMessage);
    }

    #[test]
    fn protocols_read_back_from_the_summary() {
        for protocol in [Protocol::V1, Protocol::V2] {
            assert_eq!(Protocol::parse(&protocol.render()), Some(protocol));
        }
        assert_eq!(Protocol::V1.subprotocol(), None);
        assert_eq!(Protocol::V2.subprotocol(), Some("wschat.v2"));
        assert_eq!(Protocol::parse("v3"), None);
    }

    #[test]
    fn find_is_str_find_from_an_offset() {
        for (haystack, needle, from) in [
            ("abcabc", "bc", 0),
            ("abcabc", "bc", 2),
            ("abcabc", "abc", 4),
            ("abc", "abcd", 0),
            ("", "a", 0),
            ("aaab", "aab", 0),
        ] {
            let expected = haystack
                .get(from..)
                .and_then(|h| h.find(needle))
                .map(|at| at + from);
            assert_eq!(
                find(haystack, needle, from),
                expected,
                "{haystack:?} {needle:?} {from}"
            );
        }
    }

    #[test]
    fn what_we_send_is_what_the_server_decodes() {
        assert_eq!(
            ClientMessage::decode(login("lg-1-2").as_bytes()),
            Ok(ClientMessage::Login {
                id: "l".into(),
                username: "lg-1-2".into(),
                secret: None,
                since: None,
                epoch: None,
                rooms: None
            })
        );
        assert_eq!(
            ClientMessage::decode(text_from_user(5, "lg 1 2 3 x".into()).as_bytes()),
            Ok(ClientMessage::TextFromUser {
                id: "5".into(),
                text: "lg 1 2 3 x".into(),
                room: None
            })
        );
    }
}
