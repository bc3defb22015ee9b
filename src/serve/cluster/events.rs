//! What nodes tell each other through Redis, as the scripts write it: the
//! events published on the channel (JSON arrays of strings, made by the
//! scripts with `cjson`) and the messages of the history stream.
//!
//! Anything else on the channel (another program publishing there) is
//! ignored with a debug line, never trusted.

use redis::Value;

use super::requests::Call;
use crate::protocol::LeaveReason;
use crate::server::{Remote, StoredMessage};

/// An event heard on the channel, with the node it came from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Heard {
    pub(crate) origin: String,
    pub(crate) what: What,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum What {
    /// A run of messages of one node, in `seq` order (one, from a node
    /// older than runs).
    Messages(Vec<StoredMessage>),
    /// A logout, and the secret (hash) it freed: `None` from a node
    /// older than that field.
    LoggedOut {
        key: String,
        username: String,
        secret: Option<String>,
    },
    Other(Remote),
    /// A run of room writes of one node, in the order Redis ran them.
    Writes(Vec<crate::server::Write>),
    /// A run of room entries of one node, each room's in its `seq` order.
    RoomEntries(Vec<super::room_events::RoomRun>),
}

/// A message of an append (`Call::Append`) as the APPEND script keeps and
/// publishes it: `[id, timestamp, username, text]`.
pub(crate) fn message_json(call: &Call) -> Option<String> {
    let Call::Append {
        id,
        timestamp,
        username,
        text,
        ..
    } = call
    else {
        return None;
    };
    serde_json::to_string(&(&**id, *timestamp, &**username, &**text)).ok()
}

pub(crate) fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// Decodes one published event:
/// `["M", node, FIRST, [[id, timestamp, username, text], …]]`,
/// `["W", node, [write, …]]` and `["R", node, [[room, FIRST, [entry, …]],
/// …]]` (rooms: see `room_events`),
/// `["m", node, seq, id, timestamp, username, text]` (older nodes),
/// `["j", node, username, location, timestamp]`,
/// `["l", node, username, reason]`, `["o", node, key, username, secret]`.
pub(crate) fn decode(payload: &[u8]) -> Result<Heard, String> {
    if payload.starts_with(br#"["M","#) {
        return decode_messages(payload);
    }
    if payload.starts_with(br#"["W","#) {
        let (origin, writes) = super::room_events::decode_writes(payload)?;
        let what = What::Writes(writes);
        return Ok(Heard { origin, what });
    }
    if payload.starts_with(br#"["R","#) {
        let (origin, runs) = super::room_events::decode_entries(payload)?;
        let what = What::RoomEntries(runs);
        return Ok(Heard { origin, what });
    }
    let fields: Vec<String> =
        serde_json::from_slice(payload).map_err(|e| format!("not an event: {e}"))?;
    let number = |text: &str| {
        text.parse::<u64>()
            .map_err(|_| format!("not a number: {text:?}"))
    };
    let [kind, origin, rest @ ..] = fields.as_slice() else {
        return Err("an event without a kind and an origin".into());
    };
    let what = match (kind.as_str(), rest) {
        ("m", [seq, id, timestamp, username, text]) => What::Messages(vec![StoredMessage {
            seq: number(seq)?,
            id: id.clone(),
            timestamp: number(timestamp)?,
            username: username.clone(),
            text: text.clone(),
            notice: false,
        }]),
        ("j", [username, location, timestamp]) => What::Other(Remote::Joined {
            username: username.as_str().into(),
            location: location.as_str().into(),
            timestamp: number(timestamp)?,
        }),
        ("l", [username, reason]) => What::Other(Remote::Left {
            username: username.as_str().into(),
            reason: leave_reason(reason)?,
        }),
        ("o", [key, username, secret @ ..]) if secret.len() <= 1 => What::LoggedOut {
            key: key.clone(),
            username: username.clone(),
            secret: secret.first().cloned(),
        },
        _ => {
            return Err(format!(
                "an unknown event: {kind:?} with {} fields",
                rest.len()
            ));
        }
    };
    Ok(Heard {
        origin: origin.clone(),
        what,
    })
}

/// `["M", node, FIRST, [[id, timestamp, username, text], …]]`.
/// A message as the APPEND script keeps and publishes it.
type Message = (String, u64, String, String);

fn decode_messages(payload: &[u8]) -> Result<Heard, String> {
    type Run = (String, String, u64, Vec<Message>);
    let (_, origin, first, run): Run =
        serde_json::from_slice(payload).map_err(|e| format!("not a run of messages: {e}"))?;
    if run.is_empty() {
        return Err("a run of no messages".into());
    }
    let messages = (first..)
        .zip(run)
        .map(|(seq, (id, timestamp, username, text))| StoredMessage {
            seq,
            id,
            timestamp,
            username,
            text,
            notice: false,
        })
        .collect();
    Ok(Heard {
        origin,
        what: What::Messages(messages),
    })
}

/// A [`LeaveReason`] as the scripts write it.
pub(crate) fn reason_name(reason: LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Evicted => "evicted",
        LeaveReason::Logout => "logout",
        _ => "disconnected",
    }
}

fn leave_reason(name: &str) -> Result<LeaveReason, String> {
    match name {
        "disconnected" => Ok(LeaveReason::Disconnected),
        "evicted" => Ok(LeaveReason::Evicted),
        "logout" => Ok(LeaveReason::Logout),
        other => Err(format!("an unknown leave reason {other:?}")),
    }
}

/// The entries of the history stream (`XRANGE`'s reply): each message,
/// with the node that said it. Entries that are not messages are skipped.
pub(crate) fn history(reply: &Value) -> Vec<(StoredMessage, String)> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries.iter().filter_map(history_entry).collect()
}

/// One stream entry: `[ "SEQ-0", [field, value, …] ]` with the fields
/// `n` (node) and `d` (the message: see [`message_json`]), or, written by
/// older nodes, `n`, `i` (id), `t` (timestamp), `u` (username), `x` (text).
fn history_entry(entry: &Value) -> Option<(StoredMessage, String)> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return None;
    };
    let id = text(id)?;
    let seq = id.split_once('-').map_or(id.as_str(), |(ms, _)| ms);
    let seq = seq.parse().ok()?;
    let (mut node, mut message_id, mut timestamp, mut username, mut said) =
        (None, None, None, None, None);
    for pair in fields.chunks_exact(2) {
        let value = text(&pair[1])?;
        match text(&pair[0])?.as_str() {
            "n" => node = Some(value),
            "i" => message_id = Some(value),
            "t" => timestamp = value.parse().ok(),
            "u" => username = Some(value),
            "x" => said = Some(value),
            "d" => {
                let (i, t, u, x): Message = serde_json::from_str(&value).ok()?;
                (message_id, timestamp, username, said) = (Some(i), Some(t), Some(u), Some(x));
            }
            _ => {}
        }
    }
    let message = StoredMessage {
        seq,
        id: message_id?,
        timestamp: timestamp?,
        username: username?,
        text: said?,
        notice: false,
    };
    Some((message, node?))
}

/// A string reply as text (lossy: Redis only ever holds what wschat wrote).
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number reply (Redis's integers, or numbers as strings).
pub(crate) fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    }
}

/// What the JOIN script answered.
pub(crate) struct Joined {
    pub(crate) epoch: String,
    pub(crate) seq: u64,
    pub(crate) conflicts: Vec<String>,
    pub(crate) gone: Vec<String>,
    pub(crate) entries: Value,
    /// How long the cluster is still rebuilding after Redis lost its keys
    /// (ms; 0 when it is not).
    pub(crate) rebuilding: u64,
}

impl Joined {
    pub(crate) fn read(value: &Value) -> Option<Joined> {
        let Value::Array(parts) = value else {
            return None;
        };
        let strings = |value: &Value| match value {
            Value::Array(items) => items.iter().filter_map(text).collect(),
            _ => Vec::new(),
        };
        Some(Joined {
            epoch: text(parts.first()?)?,
            seq: number(parts.get(1)?)?,
            conflicts: strings(parts.get(2)?),
            gone: strings(parts.get(3)?),
            entries: parts.get(4).cloned().unwrap_or(Value::Nil),
            rebuilding: parts.get(5).and_then(number).unwrap_or(0),
        })
    }
}

/// The only answer of a one-command pipeline, its error as an `Err`.
pub(crate) fn single(mut values: Vec<Value>) -> Result<Value, String> {
    match values.pop() {
        Some(Value::ServerError(e)) => Err(redis::RedisError::from(e).to_string()),
        Some(value) => Ok(value),
        None => Err("no answer".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn events_decode_as_the_scripts_write_them() {
        let m = decode(br#"["m","n1","7","id7","1700","bob","hi \/ \"there\""]"#).unwrap();
        assert_eq!(m.origin, "n1");
        assert_eq!(
            m.what,
            What::Messages(vec![StoredMessage {
                seq: 7,
                id: "id7".into(),
                timestamp: 1700,
                username: "bob".into(),
                text: "hi / \"there\"".into(),
                notice: false
            }])
        );
        let j = decode(br#"["j","n2","Bob","127.0.0.1","1700"]"#).unwrap();
        assert_eq!(
            j.what,
            What::Other(Remote::Joined {
                username: "Bob".into(),
                location: "127.0.0.1".into(),
                timestamp: 1700
            })
        );
        let l = decode(br#"["l","n2","Bob","evicted"]"#).unwrap();
        assert_eq!(
            l.what,
            What::Other(Remote::Left {
                username: "Bob".into(),
                reason: LeaveReason::Evicted
            })
        );
        let o = decode(br#"["o","n3","bob","Bob","ab12"]"#).unwrap();
        assert_eq!(
            o.what,
            What::LoggedOut {
                key: "bob".into(),
                username: "Bob".into(),
                secret: Some("ab12".into()),
            }
        );
        let older = decode(br#"["o","n3","bob","Bob"]"#).unwrap();
        assert_eq!(
            older.what,
            What::LoggedOut {
                key: "bob".into(),
                username: "Bob".into(),
                secret: None,
            }
        );
    }

    #[test]
    fn a_run_of_messages_is_numbered_from_its_first_seq() {
        let call = |id: &str, text: &str| Call::Append {
            ticket: crate::server::Ticket::for_tests(0),
            id: id.into(),
            timestamp: 1700,
            username: "Bob".into(),
            text: text.into(),
        };
        let run = [call("a", "one \"quoted\""), call("b", "two\nlines")];
        let messages: Vec<_> = run.iter().filter_map(message_json).collect();
        // What the APPEND script publishes.
        let event = format!(
            r#"["M",{},41,[{}]]"#,
            json_string("n\"1"),
            messages.join(",")
        );
        let message = |seq, id: &str, text: &str| StoredMessage {
            seq,
            id: id.into(),
            timestamp: 1700,
            username: "Bob".into(),
            text: text.into(),
            notice: false,
        };
        assert_eq!(
            decode(event.as_bytes()).unwrap(),
            Heard {
                origin: "n\"1".into(),
                what: What::Messages(vec![
                    message(41, "a", "one \"quoted\""),
                    message(42, "b", "two\nlines"),
                ]),
            }
        );
        // And as the history keeps each.
        let entry = Value::Array(vec![
            bulk("42-0"),
            Value::Array(vec![bulk("n"), bulk("n1"), bulk("d"), bulk(&messages[1])]),
        ]);
        assert_eq!(
            history(&Value::Array(vec![entry])),
            [(message(42, "b", "two\nlines"), "n1".to_owned())]
        );
    }

    #[test]
    fn anything_else_on_the_channel_is_refused_not_trusted() {
        for bad in [
            &b"hello"[..],
            br#"{"type":"m"}"#,
            br#"["m","n1","seven","id","1","u","t"]"#,
            br#"["m","n1","7"]"#,
            br#"["l","n1","Bob","sulked"]"#,
            br#"["x","n1"]"#,
            br#"["m"]"#,
            br#"[1,2,3]"#,
            br#"["M","n1",7,[]]"#,
            br#"["M","n1","7",[["id",1,"u","t"]]]"#,
            br#"["M","n1",7,[["id","1","u","t"]]]"#,
            br#"["M","n1",7,[["id",1,"u"]]]"#,
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn history_entries_carry_their_seq_in_the_id() {
        let entry = |id: &str, fields: &[&str]| {
            Value::Array(vec![
                bulk(id),
                Value::Array(fields.iter().map(|f| bulk(f)).collect()),
            ])
        };
        let reply = Value::Array(vec![
            entry(
                "41-0",
                &["n", "a", "i", "x1", "t", "5", "u", "bob", "x", "hi"],
            ),
            entry("42-0", &["n", "a", "i", "x2"]), // incomplete: skipped
            entry("43-0", &["n", "b", "i", "x3", "t", "6", "u", "al", "x", ""]),
        ]);
        let got = history(&reply);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].0.seq, got[0].0.text.as_str(), got[0].1.as_str()),
            (41, "hi", "a")
        );
        assert_eq!(
            (got[1].0.seq, got[1].0.username.as_str(), got[1].1.as_str()),
            (43, "al", "b")
        );
    }
}
