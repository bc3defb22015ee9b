//! What a store holds, to start the core from (`Server::restore`,
//! `Server::cluster`).

use super::logins::SecretHash;

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
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: u64,
    pub id: String,
    pub timestamp: u64,
    pub username: String,
    pub text: String,
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
