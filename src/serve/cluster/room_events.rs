//! Rooms as the scripts keep and publish them (see `room_scripts`): the
//! core's room writes as script arguments and as the JSON every node hears
//! (`["W", node, [write, …]]`), room entries (`["R", node, [[room, first,
//! [entry, …]], …]]`), and a room's keys read back into what the core
//! starts from. Everything read is checked, never trusted.

use std::sync::Arc;

use redis::Value;
use serde_json::{Value as Json, json};

use super::events::text;
use crate::protocol::Role;
use crate::server::{StoredMember, StoredMessage, StoredRead, StoredRoom, Write};

/// The room a write is of, if it is a room write (`Release` is a name's).
pub(crate) fn room_of(write: &Write) -> Option<&Arc<str>> {
    match write {
        Write::Room { room, .. }
        | Write::Member { room, .. }
        | Write::Unmember { room, .. }
        | Write::Ban { room, .. }
        | Write::Unban { room, .. }
        | Write::Invite { room, .. }
        | Write::Uninvite { room, .. }
        | Write::Read { room, .. }
        | Write::DropRoom { room } => Some(room),
        _ => None,
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Member => "member",
        Role::Operator => "operator",
        Role::Owner => "owner",
    }
}

fn role_of(name: &str) -> Option<Role> {
    match name {
        "member" => Some(Role::Member),
        "operator" => Some(Role::Operator),
        "owner" => Some(Role::Owner),
        _ => None,
    }
}

fn or_empty(text: Option<&Arc<str>>) -> String {
    text.map(|t| t.to_string()).unwrap_or_default()
}

fn number_or_empty(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

/// A room write as ROOM_WRITES's arguments (its room aside).
pub(crate) fn script_args(write: &Write) -> Vec<String> {
    let s = |t: &Arc<str>| t.to_string();
    match write {
        Write::Room {
            display,
            owner,
            invite_only,
            topic,
            epoch,
            ..
        } => vec![
            "room".into(),
            s(display),
            or_empty(owner.as_ref()),
            if *invite_only { "1" } else { "0" }.into(),
            or_empty(topic.as_ref()),
            s(epoch),
        ],
        Write::Member {
            name,
            role,
            muted_until,
            ..
        } => vec![
            "member".into(),
            s(name),
            role_name(*role).into(),
            number_or_empty(*muted_until),
        ],
        Write::Unmember { name, .. } => vec!["unmember".into(), s(name)],
        Write::Ban { name, until, .. } => vec!["ban".into(), s(name), number_or_empty(*until)],
        Write::Unban { name, .. } => vec!["unban".into(), s(name)],
        Write::Invite { name, .. } => vec!["invite".into(), s(name)],
        Write::Uninvite { name, .. } => vec!["uninvite".into(), s(name)],
        Write::Read { name, seq, .. } => vec!["read".into(), s(name), seq.to_string()],
        Write::DropRoom { .. } => vec!["drop".into()],
        _ => Vec::new(),
    }
}

/// A write as every node hears it: `["room", KEY, DISPLAY, OWNER|null,
/// INVITE_ONLY, TOPIC|null, EPOCH]`, `["member", ROOM, NAME, ROLE,
/// MUTED|null]`, `["unmember", ROOM, NAME, BY|null, REASON|null]` (`BY`: who
/// kicked or banned the name), `["ban", ROOM, NAME,
/// UNTIL|null]`, `["unban", ROOM, NAME]`, `["invite", ROOM, NAME]`,
/// `["uninvite", ROOM, NAME]`, `["read", NAME, ROOM, SEQ]`, `["drop",
/// ROOM]`, `["release", NAME]`.
pub(crate) fn write_json(write: &Write) -> Option<Json> {
    let s = |t: &Arc<str>| Json::from(&**t);
    Some(match write {
        Write::Room {
            room,
            display,
            owner,
            invite_only,
            topic,
            epoch,
        } => json!([
            "room",
            s(room),
            s(display),
            owner.as_ref().map(s),
            invite_only,
            topic.as_ref().map(s),
            s(epoch)
        ]),
        Write::Member {
            room,
            name,
            role,
            muted_until,
        } => json!(["member", s(room), s(name), role_name(*role), muted_until]),
        Write::Unmember {
            room,
            name,
            by,
            reason,
        } => json!([
            "unmember",
            s(room),
            s(name),
            by.as_ref().map(s),
            reason.as_ref().map(s)
        ]),
        Write::Ban { room, name, until } => json!(["ban", s(room), s(name), until]),
        Write::Unban { room, name } => json!(["unban", s(room), s(name)]),
        Write::Invite { room, name } => json!(["invite", s(room), s(name)]),
        Write::Uninvite { room, name } => json!(["uninvite", s(room), s(name)]),
        Write::Read { name, room, seq } => json!(["read", s(name), s(room), seq]),
        Write::DropRoom { room } => json!(["drop", s(room)]),
        Write::Release { key } => json!(["release", s(key)]),
        _ => return None,
    })
}

/// The event of a run of writes: `["W", node, [write, …]]`.
pub(crate) fn writes_event<'w>(node: &str, writes: impl IntoIterator<Item = &'w Write>) -> String {
    let writes: Vec<Json> = writes.into_iter().filter_map(write_json).collect();
    json!(["W", node, writes]).to_string()
}

/// One write as [`write_json`] makes it.
pub(crate) fn write_of(value: &Json) -> Result<Write, String> {
    let bad = || format!("not a room write: {value}");
    let fields = value.as_array().ok_or_else(bad)?;
    let text = |i: usize| -> Result<Arc<str>, String> {
        fields
            .get(i)
            .and_then(Json::as_str)
            .map(Arc::from)
            .ok_or_else(bad)
    };
    let optional_text = |i: usize| -> Result<Option<Arc<str>>, String> {
        match fields.get(i) {
            Some(Json::Null) => Ok(None),
            Some(Json::String(t)) => Ok(Some(t.as_str().into())),
            _ => Err(bad()),
        }
    };
    let optional_number = |i: usize| -> Result<Option<u64>, String> {
        match fields.get(i) {
            Some(Json::Null) => Ok(None),
            Some(n) => n.as_u64().map(Some).ok_or_else(bad),
            None => Err(bad()),
        }
    };
    let arity = |n: usize| {
        if fields.len() == n {
            Ok(())
        } else {
            Err(bad())
        }
    };
    let kind = fields.first().and_then(Json::as_str).ok_or_else(bad)?;
    let write = match kind {
        "room" => {
            arity(7)?;
            Write::Room {
                room: text(1)?,
                display: text(2)?,
                owner: optional_text(3)?,
                invite_only: fields[4].as_bool().ok_or_else(bad)?,
                topic: optional_text(5)?,
                epoch: text(6)?,
            }
        }
        "member" => {
            arity(5)?;
            Write::Member {
                room: text(1)?,
                name: text(2)?,
                role: role_of(&text(3)?).ok_or_else(bad)?,
                muted_until: optional_number(4)?,
            }
        }
        "ban" => {
            arity(4)?;
            Write::Ban {
                room: text(1)?,
                name: text(2)?,
                until: optional_number(3)?,
            }
        }
        "read" => {
            arity(4)?;
            Write::Read {
                name: text(1)?,
                room: text(2)?,
                seq: fields[3].as_u64().ok_or_else(bad)?,
            }
        }
        "drop" => {
            arity(2)?;
            Write::DropRoom { room: text(1)? }
        }
        "release" => {
            arity(2)?;
            Write::Release { key: text(1)? }
        }
        "unmember" => {
            arity(5)?;
            Write::Unmember {
                room: text(1)?,
                name: text(2)?,
                by: optional_text(3)?,
                reason: optional_text(4)?,
            }
        }
        pair => {
            arity(3)?;
            let (room, name) = (text(1)?, text(2)?);
            match pair {
                "unban" => Write::Unban { room, name },
                "invite" => Write::Invite { room, name },
                "uninvite" => Write::Uninvite { room, name },
                _ => return Err(bad()),
            }
        }
    };
    Ok(write)
}

/// `["W", node, [write, …]]`: the origin and its writes.
pub(crate) fn decode_writes(payload: &[u8]) -> Result<(String, Vec<Write>), String> {
    let (_, origin, writes): (String, String, Vec<Json>) =
        serde_json::from_slice(payload).map_err(|e| format!("not a run of room writes: {e}"))?;
    let writes = writes.iter().map(write_of).collect::<Result<Vec<_>, _>>()?;
    if writes.is_empty() {
        return Err("a run of no writes".into());
    }
    Ok((origin, writes))
}

/// A room entry as ROOM_APPEND keeps and publishes it.
type Entry = (String, u64, String, String, bool);

/// A room entry as kept and published: `[id, timestamp, username, text,
/// notice]`.
pub(crate) fn entry_json(
    id: &str,
    timestamp: u64,
    username: &str,
    text: &str,
    notice: bool,
) -> String {
    json!([id, timestamp, username, text, notice]).to_string()
}

fn entry_of(seq: u64, (id, timestamp, username, text, notice): Entry) -> StoredMessage {
    StoredMessage {
        seq,
        id,
        timestamp,
        username,
        text,
        notice,
    }
}

/// A room's entries of one run.
pub(crate) type RoomRun = (Arc<str>, Vec<StoredMessage>);

/// `["R", node, [[room, first, [entry, …]], …]]`: the origin and each
/// room's entries, numbered from its first.
pub(crate) fn decode_entries(payload: &[u8]) -> Result<(String, Vec<RoomRun>), String> {
    type Run = (String, String, Vec<(String, u64, Vec<Entry>)>);
    let (_, origin, rooms): Run =
        serde_json::from_slice(payload).map_err(|e| format!("not a run of room entries: {e}"))?;
    if rooms.is_empty() || rooms.iter().any(|(_, _, entries)| entries.is_empty()) {
        return Err("a run of no entries".into());
    }
    let rooms = rooms
        .into_iter()
        .map(|(room, first, entries)| {
            let entries = (first..)
                .zip(entries)
                .map(|(seq, e)| entry_of(seq, e))
                .collect();
            (Arc::from(room), entries)
        })
        .collect();
    Ok((origin, rooms))
}

/// A room's log entries (`XRANGE`/`XREVRANGE`'s reply, in its order): each
/// entry with the node that appended it; anything else skipped.
pub(crate) fn room_log(reply: &Value) -> Vec<(StoredMessage, String)> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries.iter().filter_map(log_entry).collect()
}

fn log_entry(entry: &Value) -> Option<(StoredMessage, String)> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return None;
    };
    let id = text(id)?;
    let seq = id
        .split_once('-')
        .map_or(id.as_str(), |(seq, _)| seq)
        .parse()
        .ok()?;
    let (mut node, mut entry) = (None, None);
    for pair in fields.chunks_exact(2) {
        match text(&pair[0])?.as_str() {
            "n" => node = text(&pair[1]),
            "d" => entry = serde_json::from_str::<Entry>(&text(&pair[1])?).ok(),
            _ => {}
        }
    }
    Some((entry_of(seq, entry?), node?))
}

/// ROOM_SEQS's answer: each room and its latest `seq`.
pub(crate) fn seqs(value: &Value) -> Vec<(String, u64)> {
    pairs(value)
        .into_iter()
        .filter_map(|(room, seq)| Some((room, seq.parse().ok()?)))
        .collect()
}

/// A flat `HGETALL` reply as pairs.
fn pairs(value: &Value) -> Vec<(String, String)> {
    let Value::Array(flat) = value else {
        return Vec::new();
    };
    flat.chunks_exact(2)
        .filter_map(|pair| Some((text(&pair[0])?, text(&pair[1])?)))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

/// A member's value in `:members`: `ROLE` or `ROLE UNTIL`.
fn member_of(name: String, value: &str) -> Option<StoredMember> {
    let (role, muted) = match value.split_once(' ') {
        Some((role, until)) => (role, Some(until.parse().ok()?)),
        None => (value, None),
    };
    Some(StoredMember {
        name,
        role: role_of(role)?,
        muted_until: muted,
    })
}

/// What a room's keys held, as read at start (see [`room_reads`]): its
/// meta, members, bans, invites, reads and latest log entries, newest
/// first. `None` for a room with no meta (dropped meanwhile).
pub(crate) fn stored_room(key: &str, replies: &[Value]) -> Option<(StoredRoom, Vec<StoredRead>)> {
    let [meta, members, bans, invites, reads, log] = replies else {
        return None;
    };
    let meta: std::collections::HashMap<String, String> = pairs(meta).into_iter().collect();
    let epoch = meta.get("epoch")?.clone();
    let mut members: Vec<StoredMember> = pairs(members)
        .into_iter()
        .filter_map(|(name, value)| member_of(name, &value))
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let mut bans: Vec<(String, Option<u64>)> = pairs(bans)
        .into_iter()
        .map(|(name, until)| (name, until.parse().ok()))
        .collect();
    bans.sort();
    let mut invites = strings(invites);
    invites.sort();
    let mut reads: Vec<StoredRead> = pairs(reads)
        .into_iter()
        .filter_map(|(name, seq)| {
            Some(StoredRead {
                name,
                room: key.to_owned(),
                seq: seq.parse().ok()?,
            })
        })
        .collect();
    reads.sort_by(|a, b| a.name.cmp(&b.name));
    let mut messages: Vec<StoredMessage> = room_log(log).into_iter().map(|(m, _)| m).collect();
    messages.reverse();
    let last_seq = meta
        .get("seq")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
        .max(messages.last().map_or(0, |m| m.seq));
    let room = StoredRoom {
        key: key.to_owned(),
        display: meta
            .get("display")
            .cloned()
            .unwrap_or_else(|| key.to_owned()),
        owner: meta.get("owner").cloned(),
        invite_only: meta.get("invite_only").map(String::as_str) == Some("1"),
        topic: meta.get("topic").cloned(),
        epoch,
        last_seq,
        messages,
        members,
        bans,
        invites,
    };
    Some((room, reads))
}

/// The commands reading one room for [`stored_room`], its latest `history`
/// entries included.
pub(crate) fn room_reads(room: &str, history: usize) -> Vec<redis::Cmd> {
    use super::room_scripts::room_key;
    let mut cmds = Vec::new();
    for (verb, part) in [
        ("HGETALL", "meta"),
        ("HGETALL", "members"),
        ("HGETALL", "bans"),
        ("SMEMBERS", "invites"),
        ("HGETALL", "reads"),
    ] {
        let mut cmd = redis::cmd(verb);
        cmd.arg(room_key(room, part));
        cmds.push(cmd);
    }
    let mut log = redis::cmd("XREVRANGE");
    log.arg(room_key(room, "log"))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(history.max(1));
    cmds.push(log);
    cmds
}
