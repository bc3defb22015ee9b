//! What a store holds, to start the core from (`Server::restore`,
//! `Server::cluster`).

use super::logins::SecretHash;
use crate::protocol::Role;

/// What a store holds, to start the core from (`Server::restore`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Names the numbering of `seq`: it changes only when the store is new.
    pub epoch: String,
    /// The `seq` of the latest message ever appended (0 before the first).
    pub last_seq: u64,
    /// The latest messages, oldest first.
    pub messages: Vec<StoredMessage>,
    pub names: Vec<StoredName>,
    /// The latest [`Write::Alive`](super::Write::Alive) saved.
    pub alive_at: Option<u64>,
    /// v3: every room and direct conversation (the lobby is not one).
    pub rooms: Vec<StoredRoom>,
    /// v3: read markers.
    pub reads: Vec<StoredRead>,
    /// v3: the keys of the names that left the lobby.
    pub left_lobby: Vec<String>,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: u64,
    pub id: String,
    pub timestamp: u64,
    pub username: String,
    pub text: String,
    /// v3: a moderation notice (`text` is its JSON object).
    pub notice: bool,
}

/// A reserved name as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredName {
    /// The name's key (see `Username::key`).
    pub key: String,
    pub display: String,
    pub secret: SecretHash,
    /// When it is released, if no connection holds it; `None`: in use when
    /// last saved.
    pub expires_at: Option<u64>,
}

/// A room or direct conversation as stored (v3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRoom {
    /// Its key (see `rooms`).
    pub key: String,
    pub display: String,
    /// The owner's name key.
    pub owner: Option<String>,
    pub invite_only: bool,
    pub topic: Option<String>,
    pub epoch: String,
    /// The `seq` of its latest message (0 before the first).
    pub last_seq: u64,
    /// The latest `room_history` messages, oldest first.
    pub messages: Vec<StoredMessage>,
    pub members: Vec<StoredMember>,
    /// (name key, until; `None`: for good).
    pub bans: Vec<(String, Option<u64>)>,
    /// Name keys invited.
    pub invites: Vec<String>,
}

/// A member of a room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    /// The name's key.
    pub name: String,
    pub role: Role,
    /// Until when it may not speak (`Some(u64::MAX)`: for good).
    pub muted_until: Option<u64>,
}

/// A read marker as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRead {
    /// The name's key.
    pub name: String,
    /// The room's key.
    pub room: String,
    pub seq: u64,
}
