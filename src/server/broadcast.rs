//! Chat messages and the history: a message is checked, numbered (by the
//! core, or by the store once it is durable), then broadcast with each
//! distinct frame encoded once and its bytes shared by every recipient; a
//! v2 client catches up from the history when it logs in.

use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use super::history::Said;
use super::outbound::FrameRef;
use super::seam::{Append, PendingMessage};
use super::{ConnectionId, Frame, Server};
use crate::protocol::{ErrorCode, ServerMessage, Version};
use crate::{id, text};

/// Frames of one broadcast, each encoded at most once.
pub(super) struct Encoded<'m> {
    pub(super) v1: &'m ServerMessage<'m>,
    /// `None`: v2 connections get nothing (a join past the presence budget).
    pub(super) v2: Option<&'m ServerMessage<'m>>,
    /// A different v2 frame for this connection (its own acknowledgement).
    pub(super) own: Option<(ConnectionId, &'m ServerMessage<'m>)>,
    /// A message of the lobby: not for v3 connections whose name left it.
    pub(super) lobby: bool,
}

impl<R: CryptoRng> Server<R> {
    pub(super) fn text(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        text: &str,
        now: Instant,
    ) {
        let Some(username) = self.username(conn).map(Arc::<str>::from) else {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::MessagingWhileNotLoggedIn,
                "log in before sending messages",
            );
        };
        if !self.text_is_valid(conn, reply_to, text) {
            return;
        }
        let pending = PendingMessage {
            conn,
            reply_to: reply_to.map(str::to_owned),
            id: id::message_id(&mut self.rng).into(),
            timestamp: self.timestamp(now),
            username,
            text: text::neutralise(text).into(),
            room: None,
        };
        let Some(seam) = self.names.seam_mut() else {
            // Nothing is kept: the message is numbered here, and goes now.
            let seq = self.history.next_seq();
            return self.accept_message(pending, seq);
        };
        let append = Append {
            id: pending.id.clone(),
            timestamp: pending.timestamp,
            username: pending.username.clone(),
            text: pending.text.clone(),
            notice: false,
            room: None,
        };
        seam.append(append, pending);
    }

    /// Whether `text` may be said; if not, `conn` is told why.
    pub(super) fn text_is_valid(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        text: &str,
    ) -> bool {
        if text.trim().is_empty() {
            self.send_error(
                conn,
                reply_to,
                ErrorCode::EmptyMessage,
                "the message is empty",
            );
            return false;
        }
        let max = self.config.max_message_chars;
        // Counting stops at the first character past the limit, so a huge
        // text costs no more than a legal one.
        let chars = text.chars().take(max + 1).count();
        if chars > max {
            let description = format!("the message is longer than {max} characters");
            self.send_error(conn, reply_to, ErrorCode::MessageTooLong, &description);
            return false;
        }
        true
    }

    /// A message is saved as number `seq`: everyone gets it, the sender its
    /// acknowledgement (v2), and it joins the history.
    pub(super) fn accept_message(&mut self, pending: PendingMessage, seq: u64) {
        if pending.room.is_some() {
            return self.accept_room_message(pending, seq);
        }
        let PendingMessage {
            conn,
            reply_to,
            id,
            timestamp,
            username,
            text,
            room: _,
        } = pending;
        let own = reply_to.map(|reply_to| (conn, reply_to));
        self.deliver_message(seq, id, timestamp, username, text, own);
        self.stats.messages += 1;
    }

    /// A message could not be saved: it was not sent, and its sender is
    /// told, if it is still there to hear it; an act it announced is
    /// taken back.
    /// `told`: why, when the store says (a shard out of reach).
    pub(super) fn refuse_unsaved(&mut self, mut message: PendingMessage, told: Option<&str>) {
        if let Some(undo) = message.room.as_mut().and_then(|r| r.undo.take()) {
            self.undo(undo);
        }
        let notice = message.room.as_ref().is_some_and(|r| r.notice.is_some());
        let description = match (notice, told) {
            (true, None) => {
                "the server could not save that act; nobody was told of it, try again in a moment"
                    .to_owned()
            }
            (false, None) => {
                "the server could not save the message; it was not sent, try again in a moment"
                    .to_owned()
            }
            (true, Some(told)) => format!("{told}: nobody was told of that act, try again later"),
            (false, Some(told)) => format!("{told}: the message was not sent, try again later"),
        };
        if self.is_open(message.conn) {
            self.send_error(
                message.conn,
                message.reply_to.as_deref(),
                ErrorCode::Unavailable,
                &description,
            );
        }
    }

    /// Message `seq` goes to everyone (with the sender's `own` copy, which
    /// acknowledges it on v2) and joins the history.
    pub(super) fn deliver_message(
        &mut self,
        seq: u64,
        id: Arc<str>,
        timestamp: u64,
        username: Arc<str>,
        text: Arc<str>,
        own: Option<(ConnectionId, String)>,
    ) {
        let mut said = Said {
            id,
            username,
            message: text,
            seq,
            timestamp,
            encoded_len: 0,
        };
        let (v1, v2) = (said.message(None, false), said.message(None, true));
        let own_copy = own
            .as_ref()
            .map(|(conn, reply_to)| (*conn, said.message(Some(reply_to), true)));
        let v2_len = self.broadcast(Encoded {
            v1: &v1,
            v2: Some(&v2),
            own: own_copy.as_ref().map(|(conn, own)| (*conn, own)),
            lobby: true,
        });
        // What the message adds to a `history`: its v2 frame, encoded once
        // already for the broadcast unless nobody speaks v2.
        let encoded_len = v2_len.unwrap_or_else(|| v2.encoded_len());
        said.encoded_len = encoded_len;
        self.history.push(said);
    }

    /// The catch-up of a v2 login: the messages after `since`, or the
    /// latest few, within the reply budget.
    pub(super) fn send_history(&mut self, conn: ConnectionId, reply_to: &str, since: Option<u64>) {
        let max_bytes = self.config.reply_max_bytes;
        let catch_up = match since {
            Some(since) => self.history.after(since, max_bytes),
            None => self.history.latest(self.config.history_on_join, max_bytes),
        };
        let messages = catch_up
            .messages
            .iter()
            .map(|said| said.message(None, true))
            .collect();
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::History {
            id: id.into(),
            reply_to: reply_to.into(),
            epoch: Some((*self.epoch).into()),
            messages,
            complete: catch_up.complete,
            room: None,
        });
        self.actions.send_new(conn, frame);
    }

    pub(super) fn send_error(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        error: ErrorCode,
        description: &str,
    ) {
        self.stats.count_error(error);
        let id = id::message_id(&mut self.rng);
        self.send(
            conn,
            &ServerMessage::ErrorMessage {
                error,
                id: id.into(),
                reply_to: reply_to.map(Into::into),
                description: Some(description.into()),
            },
        );
    }

    pub(super) fn send(&mut self, to: ConnectionId, message: &ServerMessage<'_>) {
        self.actions.send_new(to, Frame::encode(message));
    }

    /// Every open connection gets the frame of its version; each distinct
    /// frame is encoded once and its bytes shared by all its recipients.
    /// Returns the v2 frame's length, if it was encoded.
    pub(super) fn broadcast(&mut self, message: Encoded<'_>) -> Option<usize> {
        let v2_connections = self.connections.v2_len();
        // A join past the presence budget, with only v2 connections open,
        // is for nobody: skip walking every recipient for it.
        let v1_connections = self.connections.len() - v2_connections;
        if message.v2.is_none() && message.own.is_none() && v1_connections == 0 {
            return None;
        }
        let v1 = self.actions.add(Frame::encode(message.v1));
        let mut v2_len = None;
        let v2 = match message.v2 {
            Some(v2) if v2_connections > 0 => {
                let frame = Frame::encode(v2);
                v2_len = Some(frame.0.len());
                Some(self.actions.add(frame))
            }
            _ => None,
        };
        let own: Option<(ConnectionId, FrameRef)> = message
            .own
            .map(|(conn, own)| (conn, self.actions.add(Frame::encode(own))));
        self.actions.reserve(self.connections.len());
        for &(id, version, in_lobby) in self.connections.recipients() {
            let frame = match (own, version) {
                (_, Version::V1) => v1,
                (Some((conn, own)), _) if conn == id => own,
                _ => match v2 {
                    Some(v2) => v2,
                    None => continue,
                },
            };
            // Only a v3 connection whose name left the lobby is out of it.
            if !in_lobby && message.lobby {
                continue;
            }
            self.actions.send(id, frame);
        }
        v2_len
    }
}
