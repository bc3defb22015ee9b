//! What must outlive the process, and how it leaves and re-enters the core.
//!
//! The core does no I/O, so durability is a conversation with the driver:
//!
//! - every fact that must survive a restart leaves as a [`Request`]
//!   (`Server::poll_request`), numbered by a [`Ticket`];
//! - the driver makes writes durable, in order (a store commits them in
//!   groups), and reports each outcome (`Server::handle_outcome`): a message
//!   appended gets its `seq` there, decided by the store, so that the
//!   numbering has no gaps even when a write fails;
//! - a login and a message are answered only once their write is durable:
//!   "acknowledged" means "saved". Until then a connection whose login is
//!   being saved has its further frames held, so it is answered in order;
//! - at start-up the core is given what the store holds ([`Snapshot`],
//!   `Server::restore`).
//!
//! A store that decides more than it is told (a cluster's shared store,
//! which decides who gets a name and which `seq` a message takes) fits the
//! same shape: a request out, its outcome in. `Server::new` keeps nothing:
//! each write is settled at once, inside the core, and none is handed out.

use std::sync::Arc;

use super::logins::SecretHash;

/// Names one [`Request`], so that its outcome can be matched to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub(crate) u64);

impl Ticket {
    /// The ticket's number: tickets are numbered 1, 2, 3… in the order their
    /// writes were asked for.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A fact to make durable. Times are wall-clock milliseconds since the Unix
/// epoch, so that they mean the same after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A free name was reserved, by a connection that holds it now.
    Claim {
        key: Arc<str>,
        display: Arc<str>,
        secret: SecretHash,
    },
    /// A held name is in use again (reclaimed with its secret).
    InUse { key: Arc<str> },
    /// A name's last connection closed: it is held until `expires_at`.
    Idle { key: Arc<str>, expires_at: u64 },
    /// A name was released (its TTL ran out, it was logged out, or it was
    /// released early): the name is free and its secret worthless.
    Release { key: Arc<str> },
    /// A chat message was accepted. The store gives it the next `seq`
    /// (reported in [`Outcome::Appended`]) and keeps the latest
    /// `history_size` messages.
    Append {
        id: Arc<str>,
        timestamp: u64,
        username: Arc<str>,
        text: Arc<str>,
    },
    /// The server was alive at `at`. Names held by connections open at a
    /// crash count as released at the last such instant saved.
    Alive { at: u64 },
}

/// A write that succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// An [`Request::Append`], numbered `seq`.
    Appended {
        seq: u64,
    },
}

/// A write that failed; its text says why (for the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

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
    /// The latest [`Request::Alive`] saved.
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

/// A login waiting for its write, to be announced once it is durable.
#[derive(Debug)]
pub(crate) struct PendingLogin {
    pub(crate) conn: super::ConnectionId,
    pub(crate) reply_to: Option<String>,
    pub(crate) since: Option<u64>,
    pub(crate) fresh: bool,
    pub(crate) key: Arc<str>,
    pub(crate) display: Arc<str>,
    /// The secret to tell the client.
    pub(crate) secret: String,
}

/// A message waiting for its write (and its `seq`).
#[derive(Debug)]
pub(crate) struct PendingMessage {
    pub(crate) conn: super::ConnectionId,
    pub(crate) reply_to: Option<String>,
    pub(crate) id: Arc<str>,
    pub(crate) timestamp: u64,
    pub(crate) username: Arc<str>,
    pub(crate) text: Arc<str>,
}

/// What waits on a ticket.
#[derive(Debug)]
pub(crate) enum Waiting {
    Login(PendingLogin),
    Message(PendingMessage),
}
