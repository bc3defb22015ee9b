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
use crate::protocol::LeaveReason;

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

    // ---- asked of a shared store, which decides (a cluster) ----
    /// One of this node's connections wants `key`. The store decides, for
    /// every node at once: a free name (never held, its TTL run out, or
    /// released) is reserved with `fresh`, the hash of a new secret; a held
    /// one is reclaimed if `offered` is its secret's hash, and otherwise
    /// taken ([`Outcome::Claimed`]). A name claimed gains one connection of
    /// this node, and the other nodes are told `display` joined from
    /// `location` at `timestamp`.
    Reserve {
        key: Arc<str>,
        display: Arc<str>,
        offered: Option<SecretHash>,
        fresh: SecretHash,
        location: Arc<str>,
        timestamp: u64,
    },
    /// One of this node's connections holding `key` went away, for
    /// `reason` ([`Outcome::Released`]). If none on any node holds it any
    /// more, it waits out the login TTL from now, and the other nodes are
    /// told that `display` left.
    Disconnect {
        key: Arc<str>,
        display: Arc<str>,
        reason: LeaveReason,
    },
    /// Free `key` everywhere at once (a v2 `logout`); the other nodes are
    /// told, and log their own holders of it out.
    Logout { key: Arc<str>, display: Arc<str> },
    /// Who is online on every node ([`Outcome::Online`]).
    Online,
}

/// A request that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// An [`Request::Append`], numbered `seq`.
    Appended {
        seq: u64,
    },
    /// A [`Request::Reserve`]: the store's decision, and the name as
    /// everyone sees it.
    Claimed {
        claim: Claim,
        display: Arc<str>,
    },
    /// A [`Request::Disconnect`]: whether no connection on any node holds
    /// the name any more.
    Released {
        gone: bool,
    },
    /// A [`Request::Online`]: everyone with an open connection on any node,
    /// with how many, in any order.
    Online(Vec<(Arc<str>, usize)>),
}

/// What a shared store decided of a name ([`Request::Reserve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// It was free: reserved now, with the new secret.
    Fresh,
    /// It was held, and the secret offered was its own.
    Reclaimed,
    /// It is held, and no secret or a wrong one was offered.
    Taken,
}

/// What the other nodes of a cluster did, as the shared store tells it
/// (`Server::handle_remote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A message said on another node. The driver delivers messages in
    /// `seq` order, this node's own (as [`Outcome::Appended`]) among them,
    /// each once.
    Message(StoredMessage),
    /// Someone logged in on another node.
    Joined {
        username: Arc<str>,
        location: Arc<str>,
        timestamp: u64,
    },
    /// Someone's last connection on any node went away.
    Left {
        username: Arc<str>,
        reason: LeaveReason,
    },
    /// Someone logged out on another node: the name is free everywhere,
    /// and this node's connections holding it are logged out too.
    LoggedOut { key: Arc<str>, username: Arc<str> },
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

/// A cluster login waiting for the shared store's decision.
#[derive(Debug)]
pub(crate) struct PendingReserve {
    pub(crate) conn: super::ConnectionId,
    pub(crate) reply_to: Option<String>,
    pub(crate) since: Option<u64>,
    pub(crate) key: Arc<str>,
    /// The secret the client gave, if any.
    pub(crate) offered: Option<String>,
    /// The secret it is told if the name was free.
    pub(crate) fresh: String,
}

/// What waits on a ticket.
#[derive(Debug)]
pub(crate) enum Waiting {
    Login(PendingLogin),
    Message(PendingMessage),
    Reserve(PendingReserve),
    /// A connection of this node left; its user may have left everywhere.
    Disconnect {
        display: Arc<str>,
        location: Arc<str>,
        reason: LeaveReason,
    },
    /// A `listUsers` of `conn`.
    Online {
        conn: super::ConnectionId,
        reply_to: Option<String>,
    },
}
