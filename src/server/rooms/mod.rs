//! Rooms and direct messages (protocol v3): see docs/PROTOCOL.md.

use std::time::Instant;

use rand::CryptoRng;

use super::{ConnectionId, Server};
use crate::protocol::{ClientMessage, ErrorCode};

/// The lobby's key: the room every name is in unless it left it, whose
/// messages are v2's.
#[allow(dead_code)]
pub(crate) const LOBBY: &str = "#lobby";

impl<R: CryptoRng> Server<R> {
    /// A v3 message about rooms.
    pub(super) fn rooms_message(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        message: ClientMessage,
        _now: Instant,
    ) {
        let description = format!("{} is not served yet", message.kind());
        self.send_error(conn, reply_to, ErrorCode::Forbidden, &description);
    }
}
