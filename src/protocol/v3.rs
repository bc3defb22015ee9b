//! The parts of protocol v3 (rooms and direct messages) that are not
//! variants of [`ClientMessage`](super::ClientMessage) or
//! [`ServerMessage`](super::ServerMessage): what a room's state, a member, a
//! change of membership and a moderation act look like on the wire.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A room a v3 client knows, in its `login`: the numbering its `since`
/// belongs to, and the last `seq` it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSince {
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    #[serde(default)]
    pub since: u64,
}

/// A member's standing in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Member,
    Operator,
    /// Its creator; there is at most one, and the lobby has none.
    Owner,
}

/// A room or DM as one client sees it (`roomList`, `rooms`, `membership`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomState<'a> {
    /// `#name`, or `@name` (the other party) for a DM.
    pub room: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Cow<'a, str>>,
    pub invite_only: bool,
    /// How many names are in it.
    pub members: usize,
    /// This name's role; absent when it is not in the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    pub epoch: Cow<'a, str>,
    pub last_seq: u64,
    /// The last `seq` this name has read (see `read`).
    pub read_seq: u64,
    /// Messages after `read_seq`.
    pub unread: u64,
    /// Whether one of them mentions this name.
    pub mentioned: bool,
    /// In `rooms` only: whether every message after the client's `since`
    /// follows (or can be paged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
}

/// One member in a `memberList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberEntry<'a> {
    pub username: Cow<'a, str>,
    pub role: Role,
    /// Whether the name has an open connection.
    pub online: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
}

/// How a name's membership of a room changed (`membership`, `rooms.changes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Change {
    Joined,
    Left,
    Invited,
    Kicked,
    Banned,
    /// A change this version does not know (a newer server); clients only.
    #[serde(other)]
    Unknown,
}

/// A change of membership that happened while a client was away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomChange<'a> {
    pub room: Cow<'a, str>,
    pub change: Change,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'a, str>>,
}

/// A moderation act (`notice.act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Act {
    Topic,
    Mode,
    Invite,
    Kick,
    Ban,
    Unban,
    Mute,
    Unmute,
    Op,
    Deop,
    /// An act this version does not know (a newer server); clients only.
    #[serde(other)]
    Unknown,
}
