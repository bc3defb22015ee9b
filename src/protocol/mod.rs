//! The wire protocol: v1, the JSON messages of the original chat server; v2,
//! which adds to them (the `wschat.v2` subprotocol); and v3, rooms and direct
//! messages (`wschat.v3`; docs/PROTOCOL.md).
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

use fault::Fault;
pub use v3::{Act, Change, MemberEntry, Role, RoomChange, RoomSince, RoomState};

mod fault;
mod v3;

/// The protocol a connection speaks, chosen in the WebSocket handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Version {
    /// The original protocol; what a client that offers no subprotocol gets.
    #[default]
    V1,
    /// v1 plus timestamps, `seq`, `replyTo`, history, presence and logout;
    /// selected when the client offers [`SUBPROTOCOL_V2`].
    V2,
    /// v2 plus rooms and direct messages; selected when the client offers
    /// [`SUBPROTOCOL_V3`].
    V3,
}

/// The `Sec-WebSocket-Protocol` value that selects [`Version::V2`].
pub const SUBPROTOCOL_V2: &str = "wschat.v2";
/// The `Sec-WebSocket-Protocol` value that selects [`Version::V3`].
pub const SUBPROTOCOL_V3: &str = "wschat.v3";

impl Version {
    /// The version to speak given the subprotocols a client offered (the
    /// comma-separated values of its `Sec-WebSocket-Protocol` headers), and
    /// the subprotocol to select in the response, if any.
    pub fn negotiate<'a>(
        offered: impl IntoIterator<Item = &'a str>,
    ) -> (Version, Option<&'static str>) {
        Version::negotiate_up_to(offered, Version::V3)
    }

    /// As [`negotiate`](Self::negotiate), by a server that speaks no version
    /// above `max` (a node of a cluster speaks v2 at most, for now).
    pub fn negotiate_up_to<'a>(
        offered: impl IntoIterator<Item = &'a str>,
        max: Version,
    ) -> (Version, Option<&'static str>) {
        let best = offered
            .into_iter()
            .flat_map(|header| header.split(','))
            .filter_map(|p| match p.trim() {
                SUBPROTOCOL_V2 => Some(Version::V2),
                SUBPROTOCOL_V3 => Some(Version::V3),
                _ => None,
            })
            .filter(|&version| version <= max)
            .max();
        match best {
            Some(Version::V3) => (Version::V3, Some(SUBPROTOCOL_V3)),
            Some(Version::V2) => (Version::V2, Some(SUBPROTOCOL_V2)),
            _ => (Version::V1, None),
        }
    }
}

/// A message a client sends to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    /// Take a free name, or reclaim a reserved one with its secret.
    Login {
        /// Client-chosen message id; v2 replies echo it as `replyTo`.
        id: String,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// v2: the last `seq` the client saw; the reply's `history` holds
        /// what came after it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        /// v2: the numbering `since` belongs to, as the `epoch` of the
        /// `history` that gave it; a server whose epoch differs ignores
        /// `since`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        /// v3: the rooms the client knows, each with its epoch and last
        /// `seq`; the reply catches up on each.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rooms: Option<Vec<RoomSince>>,
    },
    /// Say something to everyone (v3: in `room`, the lobby by default).
    TextFromUser {
        id: String,
        text: String,
        /// v3: `#name`, or `@name` for a direct message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    /// v2: who is online.
    ListUsers { id: String },
    /// v2: release my name now.
    Logout { id: String },
    /// v3: join a room, creating it if it does not exist.
    #[serde(rename_all = "camelCase")]
    Join {
        id: String,
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite_only: Option<bool>,
    },
    /// v3: leave a room.
    Part {
        id: String,
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// v3: the public rooms, and this name's own.
    ListRooms { id: String },
    /// v3: a room's members and their roles.
    ListMembers { id: String, room: String },
    /// v3: a page of a room's messages, before or after a `seq`, or the
    /// latest.
    History {
        id: String,
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// v3: the last `seq` read in a room.
    Read { id: String, room: String, seq: u64 },
    /// v3 (operator): set a room's topic.
    Topic {
        id: String,
        room: String,
        topic: String,
    },
    /// v3 (operator): make a room invite-only, or public.
    #[serde(rename_all = "camelCase")]
    Mode {
        id: String,
        room: String,
        invite_only: bool,
    },
    /// v3 (operator): let a name join an invite-only room.
    Invite {
        id: String,
        room: String,
        username: String,
    },
    /// v3 (operator): remove a member.
    Kick {
        id: String,
        room: String,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// v3 (operator): remove a name and keep it out, for `seconds` or for
    /// good.
    Ban {
        id: String,
        room: String,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// v3 (operator): lift a ban.
    Unban {
        id: String,
        room: String,
        username: String,
    },
    /// v3 (operator): the member may read but not say, for `seconds` or
    /// for good.
    Mute {
        id: String,
        room: String,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
    },
    /// v3 (operator): lift a mute.
    Unmute {
        id: String,
        room: String,
        username: String,
    },
    /// v3 (owner): make a member an operator.
    Op {
        id: String,
        room: String,
        username: String,
    },
    /// v3 (owner): undo `op`.
    Deop {
        id: String,
        room: String,
        username: String,
    },
}

/// The `id` field of any client message, borrowed as `$message` is (every
/// message has one: one list of them for reading and for setting it).
macro_rules! id_of {
    ($message:expr) => {
        match $message {
            ClientMessage::Login { id, .. }
            | ClientMessage::TextFromUser { id, .. }
            | ClientMessage::ListUsers { id }
            | ClientMessage::Logout { id }
            | ClientMessage::Join { id, .. }
            | ClientMessage::Part { id, .. }
            | ClientMessage::ListRooms { id }
            | ClientMessage::ListMembers { id, .. }
            | ClientMessage::History { id, .. }
            | ClientMessage::Read { id, .. }
            | ClientMessage::Topic { id, .. }
            | ClientMessage::Mode { id, .. }
            | ClientMessage::Invite { id, .. }
            | ClientMessage::Kick { id, .. }
            | ClientMessage::Ban { id, .. }
            | ClientMessage::Unban { id, .. }
            | ClientMessage::Mute { id, .. }
            | ClientMessage::Unmute { id, .. }
            | ClientMessage::Op { id, .. }
            | ClientMessage::Deop { id, .. } => id,
        }
    };
}

impl ClientMessage {
    /// The client's message id.
    pub fn id(&self) -> &str {
        id_of!(self)
    }

    /// The client's message id, to set.
    pub fn id_mut(&mut self) -> &mut String {
        id_of!(self)
    }

    /// The message's `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Login { .. } => "login",
            ClientMessage::TextFromUser { .. } => "textFromUser",
            ClientMessage::ListUsers { .. } => "listUsers",
            ClientMessage::Logout { .. } => "logout",
            ClientMessage::Join { .. } => "join",
            ClientMessage::Part { .. } => "part",
            ClientMessage::ListRooms { .. } => "listRooms",
            ClientMessage::ListMembers { .. } => "listMembers",
            ClientMessage::History { .. } => "history",
            ClientMessage::Read { .. } => "read",
            ClientMessage::Topic { .. } => "topic",
            ClientMessage::Mode { .. } => "mode",
            ClientMessage::Invite { .. } => "invite",
            ClientMessage::Kick { .. } => "kick",
            ClientMessage::Ban { .. } => "ban",
            ClientMessage::Unban { .. } => "unban",
            ClientMessage::Mute { .. } => "mute",
            ClientMessage::Unmute { .. } => "unmute",
            ClientMessage::Op { .. } => "op",
            ClientMessage::Deop { .. } => "deop",
        }
    }

    /// The oldest version that has this message.
    pub fn since_version(&self) -> Version {
        match self {
            ClientMessage::Login { .. } | ClientMessage::TextFromUser { .. } => Version::V1,
            ClientMessage::ListUsers { .. } | ClientMessage::Logout { .. } => Version::V2,
            _ => Version::V3,
        }
    }

    /// Whether a connection speaking `version` may send this message.
    pub fn allowed_in(&self, version: Version) -> bool {
        self.since_version() <= version
    }
}

/// A message the server sends to a client.
///
/// Borrowed fields on encode, owned ones when a client decodes it. Fields
/// marked v2 are `None` on v1 connections and then left out entirely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage<'a> {
    /// Someone logged in; sent to every open connection.
    LoginBroadcast {
        id: Cow<'a, str>,
        username: Cow<'a, str>,
        location: Cow<'a, str>,
        /// v2: milliseconds since the Unix epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp: Option<u64>,
    },
    /// Your login succeeded; keep the secret to reclaim the name later.
    #[serde(rename_all = "camelCase")]
    LoginMessage {
        id: Cow<'a, str>,
        /// v2: the `id` of the `login` this answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<Cow<'a, str>>,
        username: Cow<'a, str>,
        location: Cow<'a, str>,
        secret: Cow<'a, str>,
    },
    /// Someone said something; sent to every open connection.
    #[serde(rename_all = "camelCase")]
    TextBroadcast {
        id: Cow<'a, str>,
        /// v2, on the sender's own copy only: the `id` of its `textFromUser`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<Cow<'a, str>>,
        username: Cow<'a, str>,
        message: Cow<'a, str>,
        /// v2: server-wide message number, +1 per message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// v2: milliseconds since the Unix epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp: Option<u64>,
        /// v3: the room (`#name`, or `@name` for a DM: the other party);
        /// `seq` is this room's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<Cow<'a, str>>,
    },
    /// Your last message was refused.
    #[serde(rename_all = "camelCase")]
    ErrorMessage {
        error: ErrorCode,
        id: Cow<'a, str>,
        /// v2: the `id` of the message refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<Cow<'a, str>>,
    },
    /// v2: the messages said after the `since` of a login (or the latest
    /// few), oldest first; sent right after `loginMessage`.
    #[serde(rename_all = "camelCase")]
    History {
        id: Cow<'a, str>,
        reply_to: Cow<'a, str>,
        /// Which numbering the `seq` numbers belong to (opaque, at most
        /// [`EPOCH_MAX_CHARS`] characters); it changes only when the
        /// server's message store is new. Older servers send none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<Cow<'a, str>>,
        messages: Vec<ServerMessage<'a>>,
        /// False when messages the client asked for were no longer held.
        complete: bool,
        /// v3: the room these messages are of.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<Cow<'a, str>>,
    },
    /// v2: the answer to `listUsers`.
    #[serde(rename_all = "camelCase")]
    UserList {
        id: Cow<'a, str>,
        reply_to: Cow<'a, str>,
        users: Vec<UserPresence<'a>>,
        /// Users online but left out of `users`, which is bounded in bytes
        /// (the first by name are listed); absent when 0.
        #[serde(default, skip_serializing_if = "is_zero")]
        more: usize,
    },
    /// v2: a user left: their last connection closed (`disconnected`), was
    /// evicted (`evicted`), or they logged out (`logout`).
    LogoutBroadcast {
        id: Cow<'a, str>,
        username: Cow<'a, str>,
        reason: LeaveReason,
        timestamp: u64,
    },
    /// v2: joins and leaves past the server's presence budget, summarised in
    /// one frame instead of one `loginBroadcast` or `logoutBroadcast` each.
    /// `joined` and `left` hold the most recent names (oldest first, at most
    /// [`PRESENCE_NAMES`]); the counts say how many there were in all.
    #[serde(rename_all = "camelCase")]
    Presence {
        id: Cow<'a, str>,
        /// v3: the room whose `member` notices these are (sent only to its
        /// members); absent: v2's presence (who logged in or out).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<Cow<'a, str>>,
        joined: Vec<Cow<'a, str>>,
        joined_count: u64,
        left: Vec<Cow<'a, str>>,
        left_count: u64,
        timestamp: u64,
    },
    /// v3: a moderation act, told to the room and kept in its history
    /// (numbered with its messages).
    #[serde(rename_all = "camelCase")]
    Notice {
        id: Cow<'a, str>,
        room: Cow<'a, str>,
        seq: u64,
        timestamp: u64,
        act: Act,
        /// Who did it.
        by: Cow<'a, str>,
        /// Whom it was done to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Cow<'a, str>>,
        /// When a ban or mute ends (ms since the Unix epoch); absent: for
        /// good.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite_only: Option<bool>,
    },
    /// v3: someone joined or left a room this connection's name is in
    /// (paced like v2 presence).
    Member {
        id: Cow<'a, str>,
        room: Cow<'a, str>,
        username: Cow<'a, str>,
        change: Change,
        timestamp: u64,
    },
    /// v3: this name's own membership of a room changed (on this device or
    /// another).
    #[serde(rename_all = "camelCase")]
    Membership {
        id: Cow<'a, str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<Cow<'a, str>>,
        room: Cow<'a, str>,
        change: Change,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
        /// The room as it is now, when the name is in it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<RoomState<'a>>,
    },
    /// v3: the answer to `listRooms`.
    #[serde(rename_all = "camelCase")]
    RoomList {
        id: Cow<'a, str>,
        reply_to: Cow<'a, str>,
        rooms: Vec<RoomState<'a>>,
    },
    /// v3: the answer to `listMembers`.
    #[serde(rename_all = "camelCase")]
    MemberList {
        id: Cow<'a, str>,
        reply_to: Cow<'a, str>,
        room: Cow<'a, str>,
        members: Vec<MemberEntry<'a>>,
        /// Members left out of `members`, which is bounded in bytes.
        #[serde(default, skip_serializing_if = "is_zero")]
        more: usize,
    },
    /// v3: after `loginMessage`, the name's rooms and what changed while
    /// this client was away.
    #[serde(rename_all = "camelCase")]
    Rooms {
        id: Cow<'a, str>,
        reply_to: Cow<'a, str>,
        rooms: Vec<RoomState<'a>>,
        changes: Vec<RoomChange<'a>>,
    },
    /// v3: the last `seq` this name has read in a room (from any device).
    #[serde(rename_all = "camelCase")]
    ReadMarker {
        id: Cow<'a, str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<Cow<'a, str>>,
        room: Cow<'a, str>,
        seq: u64,
    },
}

/// The longest `epoch` a `history` may carry.
pub const EPOCH_MAX_CHARS: usize = 32;

/// The most names a `presence` summary lists of those who joined (and as
/// many of those who left).
pub const PRESENCE_NAMES: usize = 20;

/// One online user in a `userList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPresence<'a> {
    pub username: Cow<'a, str>,
    /// How many open connections hold this login (devices).
    pub connections: usize,
}

/// Why a user left (`logoutBroadcast.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum LeaveReason {
    Disconnected,
    Evicted,
    Logout,
    /// A reason this version does not know (a newer server); clients only.
    #[serde(other)]
    Unknown,
}

/// The length of `value` encoded as JSON, counted without keeping it.
pub fn encoded_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Cannot fail, as in `encode`.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ServerMessage<'_> {
    /// Encodes the message as the JSON text of one frame.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain structs into a Vec cannot fail: every key is
        // a string and no value has a fallible `Serialize` impl.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The length of [`encode`](Self::encode)'s output, without keeping it.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self)
    }

    /// Decodes a server message (what a client does).
    pub fn decode(bytes: &[u8]) -> Result<ServerMessage<'static>, DecodeError> {
        decode_object(bytes)
    }
}

/// The `error` codes of `errorMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
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
    /// Too many messages from this connection, or too many wrong secrets
    /// from its address. Nothing was done; the description says when to try
    /// again (after a few hundred milliseconds for messages, within a minute
    /// for secrets).
    RateLimited,
    /// The server could not do it now (its store failed to save a login or
    /// a message). Nothing was done; try again in a moment.
    Unavailable,
    /// v3: not a valid room name.
    InvalidRoom,
    /// v3: a DM or an act names a name that is not held.
    NoSuchUser,
    /// v3: the name is not in that room (or the room is invite-only, or
    /// does not exist: a non-member cannot tell).
    NotAMember,
    /// v3: an act this name may not do, or an invite-only room without an
    /// invite.
    Forbidden,
    /// v3: the name is banned from the room; the description says until
    /// when.
    Banned,
    /// v3: the name is muted in the room.
    Muted,
    /// v3: a limit of the server's was reached; the description says which.
    LimitReached,
    /// A code this version does not know (a newer server); clients only.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code a server sends.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::MessagingWhileNotLoggedIn,
        ErrorCode::LoginTaken,
        ErrorCode::AlreadyLoggedIn,
        ErrorCode::BytesReceived,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidUsername,
        ErrorCode::EmptyMessage,
        ErrorCode::MessageTooLong,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::InvalidRoom,
        ErrorCode::NoSuchUser,
        ErrorCode::NotAMember,
        ErrorCode::Forbidden,
        ErrorCode::Banned,
        ErrorCode::Muted,
        ErrorCode::LimitReached,
    ];

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
            ErrorCode::RateLimited => "rateLimited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InvalidRoom => "invalidRoom",
            ErrorCode::NoSuchUser => "noSuchUser",
            ErrorCode::NotAMember => "notAMember",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Banned => "banned",
            ErrorCode::Muted => "muted",
            ErrorCode::LimitReached => "limitReached",
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
pub struct DecodeError(String, Option<Fault>);

impl DecodeError {
    /// The human-readable reason.
    pub fn description(&self) -> &str {
        &self.0
    }

    /// A frame that is JSON but not a message, for the `fault` found.
    fn of_data(fault: Option<Fault>) -> DecodeError {
        // serde_json refused what the second decoder took: never expected,
        // but a description must still be given.
        let fault = fault.unwrap_or_else(|| Fault::Other("not a message of this protocol".into()));
        DecodeError(fault.to_string(), Some(fault))
    }
}

impl ClientMessage {
    /// Decodes one text frame. Total: never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<ClientMessage, DecodeError> {
        decode_object(bytes)
    }

    /// Decodes one text frame from a connection speaking `version`: a
    /// connection is told of its version's message types only (a v2-only
    /// type is as unknown to v1 as to the original server, a v3 one to v1
    /// and v2), and the fields of later versions are unknown fields to it,
    /// ignored whatever they hold.
    pub fn decode_for(bytes: &[u8], version: Version) -> Result<ClientMessage, DecodeError> {
        let decoded = match ClientMessage::decode(bytes) {
            // Only a failure pays for the retry without the later fields.
            Err(_) if version < Version::V3 => {
                without_later_fields(bytes, version).unwrap_or_else(|| ClientMessage::decode(bytes))
            }
            decoded => decoded,
        };
        let types = || match version {
            Version::V1 => fault::one_of(&["login", "textFromUser"]),
            _ => fault::one_of(&["login", "textFromUser", "listUsers", "logout"]),
        };
        match decoded {
            Ok(message) if !message.allowed_in(version) => Err(DecodeError(
                format!(r#"unknown variant "{}", {}"#, message.kind(), types()),
                None,
            )),
            Ok(message) if version < Version::V3 => Ok(message.without_v3_fields()),
            Err(DecodeError(_, Some(fault))) if version < Version::V3 => {
                let text = fault.describe_with_types(&types());
                Err(DecodeError(text, Some(fault)))
            }
            other => other,
        }
    }

    /// The message as a v1 or v2 connection means it: its v3 fields unread.
    fn without_v3_fields(self) -> ClientMessage {
        match self {
            ClientMessage::Login {
                id,
                username,
                secret,
                since,
                epoch,
                ..
            } => ClientMessage::Login {
                id,
                username,
                secret,
                since,
                epoch,
                rooms: None,
            },
            ClientMessage::TextFromUser { id, text, .. } => ClientMessage::TextFromUser {
                id,
                text,
                room: None,
            },
            other => other,
        }
    }

    /// Encodes the message as the JSON text of one frame (what a client does).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `bytes` decoded as a message without the fields that only versions after
/// `version` read, if they were there.
fn without_later_fields(
    bytes: &[u8],
    version: Version,
) -> Option<Result<ClientMessage, DecodeError>> {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).ok()?;
    let later: &[&str] = match version {
        Version::V1 => &["since", "epoch", "room", "rooms"],
        _ => &["room", "rooms"],
    };
    let removed = later
        .iter()
        .filter(|field| object.remove(**field).is_some())
        .count();
    if removed == 0 {
        return None;
    }
    Some(
        serde_json::from_value(serde_json::Value::Object(object.clone()))
            .map_err(|_| DecodeError::of_data(Fault::of_value::<ClientMessage>(object.into()))),
    )
}

fn decode_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    // serde's message for a non-object ("invalid type: null, expected
    // internally tagged enum") means nothing to a client author; say it plainly.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
            return Err(DecodeError(
                "expected a JSON object with a \"type\" field".into(),
                None,
            ));
        }
        Some(_) => {}
        None => {
            return Err(DecodeError(
                "empty frame: expected a JSON object".into(),
                None,
            ));
        }
    }
    serde_json::from_slice(bytes).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => DecodeError::of_data(Fault::of::<T>(bytes)),
        _ => DecodeError(fault::syntax(&error, bytes), None),
    })
}

#[cfg(test)]
mod tests;
