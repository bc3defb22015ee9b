//! What the load generator says and how it reads what it hears.
//!
//! It speaks protocol v1 through `wschat::protocol`. Reading is the hot
//! path of the fanout mode (hundreds of thousands of frames per second on
//! the same two cores as the server), so the two frames that come in bulk,
//! `textBroadcast` and `loginBroadcast`, are recognised by a byte scan that
//! relies on the documented key order (docs/PROTOCOL.md: `type` first); any
//! frame the scan does not recognise goes through the full decoder.

use std::fmt::Write as _;

use wschat::ServerMessage;
use wschat::protocol::ClientMessage;

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
    /// A `loginBroadcast`; `barrier` when it announces the given barrier name.
    LoginBroadcast { barrier: bool },
    /// The answer to our own login.
    LoginMessage,
    /// An `errorMessage`, with its code on the wire.
    Error(String),
    /// Not a server message of protocol v1.
    Garbage,
}

const TEXT_BROADCAST: &str = r#"{"type":"textBroadcast","#;
const LOGIN_BROADCAST: &str = r#"{"type":"loginBroadcast","#;
const MESSAGE_KEY: &str = r#","message":""#;

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
        // v2 only: the load generator speaks v1.
        Ok(
            ServerMessage::History { .. }
            | ServerMessage::UserList { .. }
            | ServerMessage::LogoutBroadcast { .. }
            | ServerMessage::Presence { .. },
        )
        | Err(_) => Heard::Garbage,
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
    })
}

/// The JSON text of a `textFromUser`.
pub fn text_from_user(id: u64, text: String) -> String {
    encode(&ClientMessage::TextFromUser {
        id: id.to_string(),
        text,
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

    #[test]
    fn hears_logins_errors_and_garbage() {
        let login_broadcast = |name: &str| {
            let msg = ServerMessage::LoginBroadcast {
                id: "i".into(),
                username: name.into(),
                location: "127.0.0.3".into(),
                timestamp: None,
            };
            String::from_utf8(msg.encode()).unwrap()
        };
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
            })
        );
        assert_eq!(
            ClientMessage::decode(text_from_user(5, "lg 1 2 3 x".into()).as_bytes()),
            Ok(ClientMessage::TextFromUser {
                id: "5".into(),
                text: "lg 1 2 3 x".into()
            })
        );
    }
}
