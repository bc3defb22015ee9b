//! What crosses the core's edge for each connection: ids, frames in,
//! actions out.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::protocol::ServerMessage;

/// Names one connection for as long as it is open. Never reused: a handle to
/// a closed connection stays dead even after its slot is taken again.
///
/// Ids order as their connections opened (`serial` comes first), so things
/// due at the same instant happen to connections in that order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    pub(super) serial: u32,
    pub(super) slot: u32,
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.serial)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A frame received on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A text frame (or reassembled message). The bytes need not be valid
    /// UTF-8: the core answers anything with a documented error.
    Text(&'a [u8]),
    /// A binary frame; answered with `bytesReceived`.
    Binary(&'a [u8]),
    /// A WebSocket ping, with its payload.
    Ping(&'a [u8]),
    /// A WebSocket pong, with its payload.
    Pong(&'a [u8]),
}

/// The JSON text of one outbound frame. Cloning shares the bytes: a
/// broadcast is encoded once and every recipient gets the same allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame(pub(super) Bytes);

impl Frame {
    pub(super) fn encode(message: &ServerMessage<'_>) -> Frame {
        Frame(Bytes::from(message.encode()))
    }

    /// The frame's bytes (UTF-8 JSON text).
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The frame's text.
    pub fn as_str(&self) -> &str {
        // Frames are only ever built from serde_json output, which is UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WebSocket close code (RFC 6455, section 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled (used for eviction,
    /// as the original did).
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is going away.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1007: a text frame that is not UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: the peer broke a policy (too slow, no login in time…).
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a frame or message over the size limit.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
}

/// Something the driver must do.
///
/// A frame is lent out of the core (`Cow::Borrowed`): every recipient of a
/// broadcast is handed the same frame and the core keeps no reference count
/// per recipient. A driver that queues the bytes clones them (`frame.bytes()`);
/// [`Action::into_owned`] keeps a whole action past the next `poll_action`.
///
/// Deliberately not `#[non_exhaustive]`: every action is a duty of the
/// driver, so a new one must break a driver's `match` at compile time
/// rather than fall into a `_ => {}` arm and be silently dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send this text frame on the connection.
    Send {
        to: ConnectionId,
        frame: Cow<'a, Frame>,
    },
    /// Send a WebSocket ping with this payload.
    Ping { to: ConnectionId, payload: Bytes },
    /// Answer a ping. A driver whose WebSocket library already answers pings
    /// by itself (tungstenite does) must skip this, or the peer gets two.
    Pong { to: ConnectionId, payload: Bytes },
    /// Send a Close frame with this code and reason, then drop the
    /// connection. The core has already forgotten it: do not report its
    /// closing back (doing so is harmless).
    Close {
        to: ConnectionId,
        code: CloseCode,
        reason: &'static str,
    },
}

impl Action<'_> {
    /// The connection the action is for.
    pub fn to(&self) -> ConnectionId {
        match self {
            Action::Send { to, .. }
            | Action::Ping { to, .. }
            | Action::Pong { to, .. }
            | Action::Close { to, .. } => *to,
        }
    }

    /// The same action, owning its frame.
    pub fn into_owned(self) -> Action<'static> {
        match self {
            Action::Send { to, frame } => Action::Send {
                to,
                frame: Cow::Owned(frame.into_owned()),
            },
            Action::Ping { to, payload } => Action::Ping { to, payload },
            Action::Pong { to, payload } => Action::Pong { to, payload },
            Action::Close { to, code, reason } => Action::Close { to, code, reason },
        }
    }
}
