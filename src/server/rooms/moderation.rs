//! The acts of owners and operators (and server operators, who are
//! operators of every room).

use std::time::Instant;

use rand::CryptoRng;

use super::{Me, Target};
use crate::protocol::{ClientMessage, ErrorCode};
use crate::server::Server;

impl<R: CryptoRng> Server<R> {
    pub(in crate::server) fn moderate(
        &mut self,
        me: &Me,
        _target: Target,
        act: ClientMessage,
        _now: Instant,
    ) {
        let description = format!("{} is not served yet", act.kind());
        self.refuse(me, ErrorCode::Forbidden, &description);
    }
}
