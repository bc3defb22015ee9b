//! A frame's way in: the message limit, frames held while a login is being
//! saved, decoding, and pings.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::CryptoRng;

use super::connections::Held;
use super::{CloseCode, ConnectionId, Event, Inbound, Limit, Server};
use crate::protocol::{ClientMessage, ErrorCode, LeaveReason, Version};

/// The most frames a connection may send while its login is being saved
/// (a few milliseconds); past it, `rateLimited`.
const MAX_HELD_FRAMES: usize = 64;

impl<R: CryptoRng> Server<R> {
    /// A frame arrived on `conn`: counted against its limit, then handled,
    /// or held while its login is being saved.
    pub(super) fn take_frame(&mut self, conn: ConnectionId, frame: Inbound<'_>, now: Instant) {
        let Some(connection) = self.connections.get_mut(conn) else {
            return;
        };
        connection.heartbeat.on_activity(now);
        if let (Inbound::Text(_) | Inbound::Binary(_), Some(rate)) = (frame, &self.message_rate)
            && let Err(wait) = connection.messages.try_take(rate, now)
        {
            return self.refuse_message(conn, frame, wait);
        }
        if connection.login_pending {
            let held = match frame {
                Inbound::Text(bytes) => Some(Held::Text(bytes.to_vec())),
                Inbound::Binary(_) => Some(Held::Binary),
                Inbound::Ping(_) | Inbound::Pong(_) => None,
            };
            if let Some(held) = held {
                if connection.held.len() < MAX_HELD_FRAMES {
                    connection.held.push_back(held);
                    return;
                }
                return self.send_error(
                    conn,
                    None,
                    ErrorCode::RateLimited,
                    "too many messages while your login is being saved; send again in a moment",
                );
            }
        }
        self.handle_inbound(conn, frame, now);
    }

    /// A frame that is `conn`'s turn to be handled.
    fn handle_inbound(&mut self, conn: ConnectionId, frame: Inbound<'_>, now: Instant) {
        let Some(version) = self.version(conn) else {
            return;
        };
        match frame {
            Inbound::Text(bytes) => match ClientMessage::decode_for(bytes, version) {
                Ok(message) => self.dispatch(conn, message, now),
                Err(e) => {
                    let reply_to = (version >= Version::V2)
                        .then(|| salvage_id(bytes))
                        .flatten();
                    self.send_error(
                        conn,
                        reply_to.as_deref(),
                        ErrorCode::InvalidJson,
                        e.description(),
                    )
                }
            },
            Inbound::Binary(_) => self.send_error(
                conn,
                None,
                ErrorCode::BytesReceived,
                "binary frames are not part of the protocol; send JSON in text frames",
            ),
            Inbound::Ping(payload) => self.ping(conn, payload, now),
            Inbound::Pong(_) => {}
        }
    }

    /// Handles, in order, the frames `conn` sent while its login was being
    /// saved, until none is left or another login is.
    pub(super) fn release_held(&mut self, conn: ConnectionId, now: Instant) {
        loop {
            let Some(connection) = self.connections.get_mut(conn) else {
                return;
            };
            if connection.login_pending {
                return;
            }
            let Some(held) = connection.held.pop_front() else {
                connection.held = Default::default(); // free its memory
                return;
            };
            match held {
                Held::Text(bytes) => self.handle_inbound(conn, Inbound::Text(&bytes), now),
                Held::Binary => self.handle_inbound(conn, Inbound::Binary(&[]), now),
            }
        }
    }

    /// `id` echoed as `replyTo` to v2 connections only.
    fn reply_to<'a>(&self, conn: ConnectionId, id: &'a str) -> Option<&'a str> {
        (self.version(conn)? >= Version::V2).then_some(id)
    }

    fn dispatch(&mut self, conn: ConnectionId, message: ClientMessage, now: Instant) {
        let reply_to = self.reply_to(conn, message.id()).map(str::to_owned);
        let reply_to = reply_to.as_deref();
        match &message {
            ClientMessage::Login {
                username,
                secret,
                since,
                epoch,
                rooms,
                ..
            } => {
                if let Some(connection) = self.connections.get_mut(conn)
                    && connection.login.is_none()
                {
                    connection.catch_up = rooms.clone();
                }
                // A `since` of another numbering (a store that is new since
                // the client last heard from it) means nothing here: the
                // client has seen none of this numbering's messages.
                let since = match (since, epoch) {
                    (Some(_), Some(epoch)) if **epoch != *self.epoch => Some(0),
                    _ => *since,
                };
                self.login(conn, reply_to, username, secret.as_deref(), since, now)
            }
            ClientMessage::TextFromUser { text, room, .. } => match room {
                Some(room) => self.room_text(conn, reply_to, room, text, now),
                None => self.lobby_text(conn, reply_to, text, now),
            },
            ClientMessage::ListUsers { .. } => self.list_users(conn, reply_to),
            ClientMessage::Logout { .. } => self.logout(conn, reply_to, now),
            // v3: rooms, direct messages and moderation (see `rooms`).
            _ => self.rooms_message(conn, reply_to, message, now),
        }
    }

    /// A ping within the limit is answered; past it, ignored; and past it by
    /// another burst, the connection is closed. Every ping counts, answered
    /// or not, so only a peer that slows down to the rate gets pongs again.
    fn ping(&mut self, conn: ConnectionId, payload: &[u8], now: Instant) {
        let Some(rate) = self.ping_rate else {
            return self.pong(conn, payload);
        };
        let Some(connection) = self.connections.get_mut(conn) else {
            return;
        };
        let wait = connection.pings.wait(&rate, now);
        connection.pings.take(&rate, now);
        if wait.is_zero() {
            self.pong(conn, payload);
        } else if wait > rate.span() {
            self.events.push_back(Event::PingFlood { conn });
            self.close(
                conn,
                CloseCode::POLICY,
                "ping flood",
                LeaveReason::Disconnected,
                now,
            );
        }
    }

    fn pong(&mut self, conn: ConnectionId, payload: &[u8]) {
        self.actions.pong(conn, Bytes::copy_from_slice(payload));
    }

    /// A text or binary frame past `message_rate`: `rateLimited`, saying how
    /// long to wait, and nothing else. It is not even decoded (but for the
    /// `id` a v2 client needs to know which message to send again).
    fn refuse_message(&mut self, conn: ConnectionId, frame: Inbound<'_>, wait: Duration) {
        let reply_to = match frame {
            Inbound::Text(bytes) if self.version(conn) >= Some(Version::V2) => salvage_id(bytes),
            _ => None,
        };
        let description = format!(
            "too many messages: at most {} a second, {} at once; retry in {} ms",
            self.config.message_rate,
            self.config.message_burst,
            wait.as_millis() + u128::from(!wait.subsec_nanos().is_multiple_of(1_000_000))
        );
        self.events.push_back(Event::RateLimited {
            conn,
            limit: Limit::Messages,
        });
        self.send_error(
            conn,
            reply_to.as_deref(),
            ErrorCode::RateLimited,
            &description,
        );
    }
}

/// The `id` of a message that failed to decode, if one can be made out, so
/// a v2 client can match the error to what it sent.
fn salvage_id(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_slice::<IdOnly>(bytes).ok().map(|m| m.id)
}
