//! What the Redis link asks of Redis and says of it, as plain data: the
//! driver turns each [`Command`] into Redis commands (see `encode`).

use std::sync::Arc;

use super::requests::Call;

/// Names a command, so that its reply finds what asked it. A connection is
/// named by its [`Command::Connect`]: what an older one reports is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CommandId(pub(crate) u64);

/// What to do with Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Open a connection and its subscription to the events channel:
    /// [`RedisLink::handle_connected`] or `handle_connect_failed`.
    Connect { id: CommandId },
    /// Drop the connection (given up: every reply still due is stale).
    Close,
    /// One pipeline: an EVALSHA per call, in order.
    Calls { id: CommandId, calls: Vec<Call> },
    /// Make this node's registration what it holds (the JOIN script).
    Join { id: CommandId, join: Join },
    /// This node's heartbeat, which sweeps dead nodes (HEARTBEAT).
    Heartbeat { id: CommandId },
    /// The history's messages `from..=to` (XRANGE).
    Fill { id: CommandId, from: u64, to: u64 },
    /// Every room's latest `seq` (ROOM_SEQS), after a reconnect.
    RoomSeqs { id: CommandId },
    /// A room's log entries `from..=to` (XRANGE).
    FillRoom {
        id: CommandId,
        room: Arc<str>,
        from: u64,
        to: u64,
    },
}

/// The JOIN script's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Join {
    pub(crate) epoch: String,
    pub(crate) rejoining: bool,
    /// The latest `seq` handed to the core.
    pub(crate) delivered: u64,
    pub(crate) names: Vec<JoinName>,
}

/// A name this node holds, as JOIN registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinName {
    pub(crate) key: Arc<str>,
    pub(crate) display: Arc<str>,
    /// The SHA-256 of its secret, in hex.
    pub(crate) secret: String,
    pub(crate) connections: usize,
}

/// Whether Redis can be reached (`/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Reachable,
    Unreachable(String),
    /// Reachable, but the cluster's state is being registered again after
    /// Redis lost it: not ready.
    Rebuilding(String),
}
