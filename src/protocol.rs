//! Wire protocol v1: the JSON messages of the original chat server.
//!
//! Every message is one JSON object in one WebSocket text frame. Decoding is
//! strict and total: any byte string either decodes into a [`ClientMessage`]
//! or yields a [`DecodeError`] whose text is fit to send back to the peer as
//! the `description` of an `invalidJson` error. Unknown extra fields are
//! ignored, as the original did. Key order on output is the original's
//! (`type` first, then the fields in declaration order), because the
//! original frontend's authors may have relied on it.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A message a client sends to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    /// Take a free name, or reclaim a reserved one with its secret.
    Login {
        /// Client-chosen message id; the server ignores its value.
        id: String,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// Say something to everyone.
    TextFromUser { id: String, text: String },
}

/// A message the server sends to a client.
///
/// Borrowed fields on encode, owned ones when a client decodes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage<'a> {
    /// Someone logged in; sent to every open connection.
    LoginBroadcast {
        id: Cow<'a, str>,
        username: Cow<'a, str>,
        location: Cow<'a, str>,
    },
    /// Your login succeeded; keep the secret to reclaim the name later.
    LoginMessage {
        id: Cow<'a, str>,
        username: Cow<'a, str>,
        location: Cow<'a, str>,
        secret: Cow<'a, str>,
    },
    /// Someone said something; sent to every open connection.
    TextBroadcast {
        id: Cow<'a, str>,
        username: Cow<'a, str>,
        message: Cow<'a, str>,
    },
    /// Your last message was refused.
    ErrorMessage {
        error: ErrorCode,
        id: Cow<'a, str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<Cow<'a, str>>,
    },
}

impl ServerMessage<'_> {
    /// Encodes the message as the JSON text of one frame.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain structs into a Vec cannot fail: every key is
        // a string and no value has a fallible `Serialize` impl.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a server message (what a client does).
    pub fn decode(bytes: &[u8]) -> Result<ServerMessage<'static>, DecodeError> {
        decode_object(bytes)
    }
}

/// The `error` codes of `errorMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// `textFromUser` before a successful login.
    MessagingWhileNotLoggedIn,
    /// The name is reserved and no secret, or a wrong one, was given.
    LoginTaken,
    /// This connection is already logged in.
    AlreadyLoggedIn,
    /// A binary frame arrived; the protocol is JSON text only.
    BytesReceived,
    /// Not JSON, not an object, an unknown `type`, or a missing or mistyped field.
    InvalidJson,
    /// The name is empty, too long, or contains forbidden characters.
    InvalidUsername,
    /// The text is empty or only whitespace.
    EmptyMessage,
    /// The text is longer than the server allows.
    MessageTooLong,
    /// A code this version does not know (a newer server); clients only.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MessagingWhileNotLoggedIn => "messagingWhileNotLoggedIn",
            ErrorCode::LoginTaken => "loginTaken",
            ErrorCode::AlreadyLoggedIn => "alreadyLoggedIn",
            ErrorCode::BytesReceived => "bytesReceived",
            ErrorCode::InvalidJson => "invalidJson",
            ErrorCode::InvalidUsername => "invalidUsername",
            ErrorCode::EmptyMessage => "emptyMessage",
            ErrorCode::MessageTooLong => "messageTooLong",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a frame could not be decoded. Its text names the problem in words a
/// client author can act on, e.g. `missing field "username"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl DecodeError {
    /// The human-readable reason.
    pub fn description(&self) -> &str {
        &self.0
    }
}

impl ClientMessage {
    /// Decodes one text frame. Total: never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<ClientMessage, DecodeError> {
        decode_object(bytes)
    }

    /// Encodes the message as the JSON text of one frame (what a client does).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn decode_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    // serde's message for a non-object ("invalid type: null, expected
    // internally tagged enum") means nothing to a client author; say it plainly.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
            return Err(DecodeError(
                "expected a JSON object with a \"type\" field".into(),
            ));
        }
        Some(_) => {}
        None => return Err(DecodeError("empty frame: expected a JSON object".into())),
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError(describe(&e)))
}

/// serde_json's message, minus the position suffix and with backticks turned
/// into quotes; syntax errors are prefixed so they read as "not JSON".
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" at line ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let text = text.replace('`', "\"");
    match error.classify() {
        serde_json::error::Category::Data => text,
        _ => format!("not valid JSON: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        ClientMessage::decode(input.as_bytes())
            .unwrap_err()
            .description()
            .to_owned()
    }

    #[test]
    fn decodes_login_with_and_without_secret_ignoring_extra_fields() {
        assert_eq!(
            ClientMessage::decode(br#"{"type":"login","id":"l1","username":"alice","x":[1]}"#),
            Ok(ClientMessage::Login {
                id: "l1".into(),
                username: "alice".into(),
                secret: None
            })
        );
        assert_eq!(
            ClientMessage::decode(br#"{"id":"l1","username":"a","secret":"s","type":"login"}"#),
            Ok(ClientMessage::Login {
                id: "l1".into(),
                username: "a".into(),
                secret: Some("s".into())
            })
        );
    }

    #[test]
    fn describes_each_kind_of_bad_input() {
        assert_eq!(
            err(r#"{"type":"login","id":"l1"}"#),
            r#"missing field "username""#
        );
        assert_eq!(
            err(r#"{"type":"shout","id":"l1"}"#),
            r#"unknown variant "shout", expected "login" or "textFromUser""#
        );
        assert_eq!(err(r#"{"id":"l1"}"#), r#"missing field "type""#);
        assert_eq!(
            err(r#"{"type":"textFromUser","id":7,"text":"x"}"#),
            r#"invalid type: integer "7", expected a string"#
        );
        assert_eq!(err("null"), "expected a JSON object with a \"type\" field");
        assert_eq!(err("[1,2]"), "expected a JSON object with a \"type\" field");
        assert_eq!(err("   "), "empty frame: expected a JSON object");
        assert!(
            err("hello").starts_with("not valid JSON: "),
            "{}",
            err("hello")
        );
        assert!(err("{\"type\":").starts_with("not valid JSON: "));
    }

    #[test]
    fn invalid_utf8_and_deep_nesting_are_errors_not_panics() {
        assert!(ClientMessage::decode(b"{\"type\":\"login\",\"id\":\"\xff\"}").is_err());
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(ClientMessage::decode(deep.as_bytes()).is_err());
    }

    #[test]
    fn encodes_keys_in_the_original_order() {
        let msg = ServerMessage::ErrorMessage {
            error: ErrorCode::LoginTaken,
            id: "x".into(),
            description: Some("taken".into()),
        };
        assert_eq!(
            String::from_utf8(msg.encode()).unwrap(),
            r#"{"type":"errorMessage","error":"loginTaken","id":"x","description":"taken"}"#
        );
        let msg = ServerMessage::LoginMessage {
            id: "i".into(),
            username: "u".into(),
            location: "l".into(),
            secret: "s".into(),
        };
        assert_eq!(
            String::from_utf8(msg.encode()).unwrap(),
            r#"{"type":"loginMessage","id":"i","username":"u","location":"l","secret":"s"}"#
        );
    }

    #[test]
    fn server_messages_round_trip_and_unknown_codes_decode() {
        let msg = ServerMessage::TextBroadcast {
            id: "i".into(),
            username: "u".into(),
            message: "héllo \"quoted\"".into(),
        };
        assert_eq!(ServerMessage::decode(&msg.encode()), Ok(msg));
        assert_eq!(
            ServerMessage::decode(br#"{"type":"errorMessage","error":"rateLimited","id":"i"}"#),
            Ok(ServerMessage::ErrorMessage {
                error: ErrorCode::Unknown,
                id: "i".into(),
                description: None
            })
        );
    }
}
