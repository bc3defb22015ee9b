//! The seam between the core and whatever keeps what must outlive the
//! process: requests out, answers in, each answer's type fixed by its
//! request.
//!
//! The core does no I/O, so durability is a conversation with the driver:
//!
//! - every fact that must survive a restart leaves as a [`Request`]
//!   (`Server::poll_request`), in order;
//! - the driver makes writes durable, in order (a store commits them in
//!   groups), and answers each (`Server::handle_answer`): a message
//!   appended gets its `seq` there, decided by the store, so that the
//!   numbering has no gaps even when a write fails;
//! - a login and a message are answered only once their write is durable:
//!   "acknowledged" means "saved". Until then a connection whose login is
//!   being saved has its further frames held, so it is answered in order;
//! - at start-up the core is given what the store holds (`Snapshot`,
//!   `Server::restore`).
//!
//! A store that decides more than it is told (a cluster's shared store,
//! which decides who gets a name and which `seq` a message takes) fits the
//! same shape: a request out, its answer in. `Server::new` keeps nothing:
//! each write is settled at once, inside the core, and none is handed out.
//!
//! The seam is typed. Each request carries a [`Ticket`] of its own kind
//! (`Ticket<Append>`, `Ticket<Reserve>`, …), and an [`Answer`] is built from
//! a ticket and the result of that kind only: an append is answered with
//! its `seq`, a reservation with the store's decision, a plain write with
//! `()`. Answering a request with another's result does not compile; an
//! answer whose ticket the core no longer knows is ignored.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use super::ConnectionId;
use super::Frame;
use super::logins::{Claim, SecretHash};
use crate::protocol::{LeaveReason, Role};

/// Names one request of kind `K`, so that its answer can be matched to it
/// and can only be an answer of that kind. Only the core makes tickets.
pub struct Ticket<K> {
    number: u64,
    kind: PhantomData<fn() -> K>,
}

impl<K> Ticket<K> {
    pub(super) fn new(number: u64) -> Self {
        Ticket {
            number,
            kind: PhantomData,
        }
    }

    /// A ticket for a test of a driver, which must answer requests it
    /// makes up.
    #[cfg(test)]
    pub(crate) fn for_tests(number: u64) -> Self {
        Ticket::new(number)
    }

    /// The ticket's number: tickets of every kind are numbered 1, 2, 3… in
    /// the order their requests were made.
    pub fn get(self) -> u64 {
        self.number
    }
}

impl Ticket<Write> {
    /// The answer to a plain write: whether it is durable.
    pub fn answer(self, result: Result<(), Failed>) -> Answer {
        Answer::Written(self, result)
    }
}

impl Ticket<Append> {
    /// The answer to an append: the `seq` the message took.
    pub fn answer(self, result: Result<u64, Failed>) -> Answer {
        Answer::Appended(self, result)
    }
}

impl Ticket<Reserve> {
    /// The answer to a reservation: the store's decision, and the name as
    /// everyone sees it.
    pub fn answer(self, result: Result<(Claim, Arc<str>), Failed>) -> Answer {
        Answer::Claimed(self, result)
    }
}

impl Ticket<Disconnect> {
    /// The answer to a disconnect: whether no connection on any node holds
    /// the name any more.
    pub fn answer(self, result: Result<bool, Failed>) -> Answer {
        Answer::Released(self, result)
    }
}

impl Ticket<Online> {
    /// The answer to `Online`: everyone with an open connection on any
    /// node, with how many, in any order.
    pub fn answer(self, result: Result<Vec<(Arc<str>, usize)>, Failed>) -> Answer {
        Answer::Online(self, result)
    }
}

// Written by hand: derived, they would ask `K` for the same traits.
impl<K> Clone for Ticket<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Ticket<K> {}
impl<K> PartialEq for Ticket<K> {
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number
    }
}
impl<K> Eq for Ticket<K> {}
impl<K> PartialOrd for Ticket<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Ticket<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.number.cmp(&other.number)
    }
}
impl<K> Hash for Ticket<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.number.hash(state);
    }
}
impl<K> fmt::Debug for Ticket<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = std::any::type_name::<K>()
            .rsplit("::")
            .next()
            .unwrap_or("?");
        write!(f, "Ticket<{kind}>({})", self.number)
    }
}

/// Something the core asks of its store, with the ticket to answer it by
/// (see [`Answer`]). Times are wall-clock milliseconds since the Unix epoch,
/// so that they mean the same after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A fact to record: answered [`Answer::Written`].
    Write(Ticket<Write>, Write),
    /// A message to number and keep: answered [`Answer::Appended`].
    Append(Ticket<Append>, Append),
    /// A name wanted (a cluster): answered [`Answer::Claimed`].
    Reserve(Ticket<Reserve>, Reserve),
    /// A connection holding a name went away (a cluster): answered
    /// [`Answer::Released`].
    Disconnect(Ticket<Disconnect>, Disconnect),
    /// Who is online on every node (a cluster): answered [`Answer::Online`].
    Online(Ticket<Online>),
}

impl Request {
    /// The number of the request's ticket (see [`Ticket::get`]).
    pub fn ticket(&self) -> u64 {
        match self {
            Request::Write(ticket, _) => ticket.get(),
            Request::Append(ticket, _) => ticket.get(),
            Request::Reserve(ticket, _) => ticket.get(),
            Request::Disconnect(ticket, _) => ticket.get(),
            Request::Online(ticket) => ticket.get(),
        }
    }

    /// The answer that says this request failed, whatever its kind.
    pub fn fail(&self, error: Failed) -> Answer {
        match self {
            Request::Write(ticket, _) => Answer::Written(*ticket, Err(error)),
            Request::Append(ticket, _) => Answer::Appended(*ticket, Err(error)),
            Request::Reserve(ticket, _) => Answer::Claimed(*ticket, Err(error)),
            Request::Disconnect(ticket, _) => Answer::Released(*ticket, Err(error)),
            Request::Online(ticket) => Answer::Online(*ticket, Err(error)),
        }
    }
}

/// A fact to make durable, whose answer says only whether it was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
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
    /// released early): the name is free and its secret worthless. Its
    /// memberships (its lobby "left" mark too), invites and read markers
    /// are forgotten with it, and every direct conversation it is a party
    /// of is dropped; its bans stay, and a room it owned has no owner.
    Release { key: Arc<str> },
    /// The server was alive at `at`. Names held by connections open at a
    /// crash count as released at the last such instant saved.
    Alive { at: u64 },
    /// Asked of a shared store (a cluster): free `key` everywhere at once
    /// (a v2 `logout`); the other nodes are told, and log their own
    /// holders of it out.
    Logout { key: Arc<str>, display: Arc<str> },
    /// v3: a room's settings, on creation and on every change of topic or
    /// mode (an upsert). `room` is its key (see `rooms`). For the lobby
    /// (`#lobby`): its topic (the rest as the lobby always is), written
    /// before each of its acts, so that its bans and mutes have a room to
    /// be loaded with; it is never an ordinary room.
    Room {
        room: Arc<str>,
        display: Arc<str>,
        owner: Option<Arc<str>>,
        invite_only: bool,
        topic: Option<Arc<str>>,
        epoch: Arc<str>,
    },
    /// v3: `name` is in `room` with `role`, muted until `muted_until` (ms
    /// since the Unix epoch; `Some(u64::MAX)` for good); an upsert. For the
    /// lobby, two meanings told apart by `muted_until`: `None`, the name is
    /// back in it (its mute untouched); `Some(until)`, the name is muted in
    /// it until then (`Some(0)`: no longer muted), in it or not (which this
    /// does not change). A snapshot gives the lobby back as the room
    /// `#lobby`, whose members are the names with a lobby mute.
    Member {
        room: Arc<str>,
        name: Arc<str>,
        role: Role,
        muted_until: Option<u64>,
    },
    /// v3: `name` is no longer in `room`. For the lobby: the name left it.
    /// `by`: who removed it (as everyone sees that name), when an act did
    /// (a kick or a ban, whose notice follows); `None` when it left on its
    /// own. `reason`: as given with the part or the act. A store keeps
    /// neither: they tell the other nodes of a cluster which `membership`
    /// frames to send.
    Unmember {
        room: Arc<str>,
        name: Arc<str>,
        by: Option<Arc<str>>,
        reason: Option<Arc<str>>,
    },
    /// v3: `name` is banned from `room` until `until` (`None`: for good);
    /// the lobby's bans too (room `#lobby`).
    Ban {
        room: Arc<str>,
        name: Arc<str>,
        until: Option<u64>,
    },
    /// v3: a ban is lifted.
    Unban { room: Arc<str>, name: Arc<str> },
    /// v3: `name` may join the invite-only `room`.
    Invite { room: Arc<str>, name: Arc<str> },
    /// v3: an invite is used or withdrawn.
    Uninvite { room: Arc<str>, name: Arc<str> },
    /// v3: the last `seq` `name` has read in `room`.
    Read {
        name: Arc<str>,
        room: Arc<str>,
        seq: u64,
    },
    /// v3: a room and everything of it is gone.
    DropRoom { room: Arc<str> },
}

/// A chat message was accepted. The store gives it the next `seq`
/// ([`Answer::Appended`]) and keeps the latest `history_size` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// v3: the room's key; `None`: the lobby (v2's numbering). The answer's
    /// `seq` is in this room's numbering.
    pub room: Option<Arc<str>>,
    pub id: Arc<str>,
    pub timestamp: u64,
    pub username: Arc<str>,
    pub text: Arc<str>,
    /// A moderation notice: `text` is the notice's JSON object as the core
    /// encodes it, and `username` who did it.
    pub notice: bool,
}

/// Asked of a shared store (a cluster): one of this node's connections
/// wants `key`. The store decides, for every node at once: a free name
/// (never held, its TTL run out, or released) is reserved with `fresh`, the
/// hash of a new secret; a held one is reclaimed if `offered` is its
/// secret's hash, and otherwise taken ([`Answer::Claimed`]). A name claimed
/// gains one connection of this node, and the other nodes are told
/// `display` joined from `location` at `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserve {
    pub key: Arc<str>,
    pub display: Arc<str>,
    pub offered: Option<SecretHash>,
    pub fresh: SecretHash,
    pub location: Arc<str>,
    pub timestamp: u64,
}

/// Asked of a shared store (a cluster): one of this node's connections
/// holding `key` went away, for `reason` ([`Answer::Released`]). If none
/// on any node holds it any more, it waits out the login TTL from now, and
/// the other nodes are told that `display` left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    pub key: Arc<str>,
    pub display: Arc<str>,
    pub reason: LeaveReason,
}

/// Asked of a shared store (a cluster): who is online on every node
/// ([`Answer::Online`]). Only names the kind of [`Request::Online`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Online;

/// The answer to one [`Request`], given to `Server::handle_answer`. Each
/// variant takes the ticket of its own kind of request and that kind's
/// result (build one with the ticket's `answer`, or [`Request::fail`]).
///
/// ```
/// use wschat::server::{Answer, Request};
///
/// /// A store that numbers appends and keeps plain writes.
/// fn answer(request: &Request, next_seq: u64) -> Answer {
///     match request {
///         Request::Write(ticket, _) => ticket.answer(Ok(())),
///         Request::Append(ticket, _) => ticket.answer(Ok(next_seq)),
///         other => other.fail(wschat::server::Failed("no shared store here".into())),
///     }
/// }
/// ```
///
/// An append answered as if it were a plain write does not compile:
///
/// ```compile_fail
/// use wschat::server::{Answer, Request};
///
/// fn answer(request: &Request) -> Option<Answer> {
///     match request {
///         Request::Append(ticket, _) => Some(Answer::Written(*ticket, Ok(()))),
///         _ => None,
///     }
/// }
/// ```
///
/// nor does an append answered without its `seq`:
///
/// ```compile_fail
/// use wschat::server::{Answer, Request};
///
/// fn answer(request: &Request) -> Option<Answer> {
///     match request {
///         Request::Append(ticket, _) => Some(ticket.answer(Ok(()))),
///         _ => None,
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A [`Write`] is durable, or failed.
    Written(Ticket<Write>, Result<(), Failed>),
    /// An [`Append`] is durable, numbered `seq`.
    Appended(Ticket<Append>, Result<u64, Failed>),
    /// A [`Reserve`]: the store's decision, and the name as everyone sees
    /// it.
    Claimed(Ticket<Reserve>, Result<(Claim, Arc<str>), Failed>),
    /// A [`Disconnect`]: whether no connection on any node holds the name
    /// any more.
    Released(Ticket<Disconnect>, Result<bool, Failed>),
    /// [`Online`]: everyone with an open connection on any node, with how
    /// many, in any order.
    Online(Ticket<Online>, Result<Vec<(Arc<str>, usize)>, Failed>),
}

impl Answer {
    /// Why the request failed, if it did.
    pub fn error(&self) -> Option<&Failed> {
        match self {
            Answer::Written(_, Err(e))
            | Answer::Appended(_, Err(e))
            | Answer::Claimed(_, Err(e))
            | Answer::Released(_, Err(e))
            | Answer::Online(_, Err(e)) => Some(e),
            _ => None,
        }
    }
}

/// A request that failed; its text says why (for the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

impl Failed {
    /// Between the log's text and the user's in [`Failed::telling`].
    const TOLD: &'static str = "; the user is told: ";

    /// Failed for `why` (for the log), with what the user who asked is
    /// told (a cluster: the room is on a Redis shard out of reach).
    pub fn telling(why: &str, told: &str) -> Failed {
        Failed(format!("{why}{}{told}", Failed::TOLD))
    }

    /// What the user is told, if the failure says (see [`Failed::telling`]).
    pub fn told(&self) -> Option<&str> {
        self.0.rsplit_once(Failed::TOLD).map(|(_, told)| told)
    }
}

/// The core's side of the seam: the requests not yet handed out, and what
/// waits on each ticket, one table per kind, so that an answer can only
/// find what waits for its kind.
#[derive(Debug, Default)]
pub(super) struct Seam {
    last_ticket: u64,
    requests: VecDeque<Request>,
    /// Logins waiting for their claim (or `InUse`) to be durable.
    pub(super) logins: HashMap<Ticket<Write>, PendingLogin>,
    pub(super) messages: HashMap<Ticket<Append>, PendingMessage>,
    pub(super) reserves: HashMap<Ticket<Reserve>, PendingReserve>,
    pub(super) disconnects: HashMap<Ticket<Disconnect>, PendingDisconnect>,
    pub(super) online: HashMap<Ticket<Online>, PendingOnline>,
    /// v3: frames that wait for the last write of a change (a join, a
    /// part, a read marker) to be saved.
    pub(super) after: HashMap<Ticket<Write>, PendingFrames>,
}

impl Seam {
    /// The number of the latest ticket handed out (0 before the first).
    pub(super) fn last_ticket(&self) -> u64 {
        self.last_ticket
    }

    fn ticket<K>(&mut self) -> Ticket<K> {
        self.last_ticket += 1;
        Ticket::new(self.last_ticket)
    }

    /// Asks for `write`, which nothing waits on (but maybe a login: see
    /// [`Seam::logins`]).
    pub(super) fn write(&mut self, write: Write) -> Ticket<Write> {
        let ticket = self.ticket();
        self.requests.push_back(Request::Write(ticket, write));
        ticket
    }

    pub(super) fn append(&mut self, append: Append, message: PendingMessage) {
        let ticket = self.ticket();
        self.requests.push_back(Request::Append(ticket, append));
        self.messages.insert(ticket, message);
    }

    pub(super) fn reserve(&mut self, reserve: Reserve, login: PendingReserve) {
        let ticket = self.ticket();
        self.requests.push_back(Request::Reserve(ticket, reserve));
        self.reserves.insert(ticket, login);
    }

    pub(super) fn disconnect(&mut self, disconnect: Disconnect, left: PendingDisconnect) {
        let ticket = self.ticket();
        self.requests
            .push_back(Request::Disconnect(ticket, disconnect));
        self.disconnects.insert(ticket, left);
    }

    pub(super) fn online(&mut self, asked: PendingOnline) {
        let ticket = self.ticket();
        self.requests.push_back(Request::Online(ticket));
        self.online.insert(ticket, asked);
    }

    /// The next request to hand out.
    pub(super) fn pop(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// Requests not handed out yet, plus what waits for an answer.
    pub(super) fn in_flight(&self) -> usize {
        self.requests.len()
            + self.logins.len()
            + self.messages.len()
            + self.reserves.len()
            + self.disconnects.len()
            + self.online.len()
            + self.after.len()
    }
}

/// A login waiting for its write, to be announced once it is durable.
#[derive(Debug)]
pub(super) struct PendingLogin {
    pub(super) conn: ConnectionId,
    pub(super) reply_to: Option<String>,
    pub(super) since: Option<u64>,
    pub(super) fresh: bool,
    pub(super) key: Arc<str>,
    pub(super) display: Arc<str>,
    /// The secret to tell the client.
    pub(super) secret: String,
}

/// A message waiting for its write (and its `seq`).
#[derive(Debug)]
pub(super) struct PendingMessage {
    pub(super) conn: ConnectionId,
    pub(super) reply_to: Option<String>,
    pub(super) id: Arc<str>,
    pub(super) timestamp: u64,
    pub(super) username: Arc<str>,
    pub(super) text: Arc<str>,
    /// v3: the room's key (`None`: the lobby), and what else waits for the
    /// message to be saved.
    pub(super) room: Option<Box<RoomMessage>>,
}

/// What a v3 message or notice of a room carries besides a lobby message's.
#[derive(Debug)]
pub(super) struct RoomMessage {
    pub(super) key: Arc<str>,
    /// A moderation notice.
    pub(super) notice: Option<Box<super::rooms::NoticeBody>>,
    /// Frames sent once it is (the `membership` of a kicked name).
    pub(super) then: Vec<(To, Frame)>,
    /// What to take back if it is not saved (an act, done in memory).
    pub(super) undo: Option<super::rooms::Undo>,
}

/// Whom a v3 frame goes to.
#[derive(Debug, Clone)]
pub(super) enum To {
    Conn(ConnectionId),
    /// Every v3 device of the name with this key.
    Name(Arc<str>),
    /// Every v3 device of the name but this connection.
    Others(Arc<str>, ConnectionId),
}

/// Frames waiting for a write to be saved, who to tell if it fails, and
/// what to take back then.
#[derive(Debug)]
pub(super) struct PendingFrames {
    pub(super) conn: Option<(ConnectionId, Option<String>)>,
    pub(super) frames: Vec<(To, Frame)>,
    pub(super) undo: Option<super::rooms::Undo>,
}

/// A cluster login waiting for the shared store's decision.
#[derive(Debug)]
pub(super) struct PendingReserve {
    pub(super) conn: ConnectionId,
    pub(super) reply_to: Option<String>,
    pub(super) since: Option<u64>,
    pub(super) key: Arc<str>,
    /// The secret the client gave, if any.
    pub(super) offered: Option<String>,
    /// The secret it is told if the name was free.
    pub(super) fresh: String,
}

/// A connection of this node left; its user may have left everywhere.
#[derive(Debug)]
pub(super) struct PendingDisconnect {
    pub(super) display: Arc<str>,
    pub(super) location: Arc<str>,
    pub(super) reason: LeaveReason,
}

/// A `listUsers` of `conn`, asked of the shared store.
#[derive(Debug)]
pub(super) struct PendingOnline {
    pub(super) conn: ConnectionId,
    pub(super) reply_to: Option<String>,
}
