//! Saying something in a room or a DM: checked, numbered in the room's own
//! sequence (by the store once saved, or here without one), then sent to
//! every v3 device of every member, each distinct frame encoded once.
//! A DM needs no join: its first message creates it (within the limit of
//! new DMs per name) if the other name is held.

use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use super::super::history::Said;
use super::super::seam::{Append, PendingMessage, RoomMessage, To};
use super::{Entry, Me, Member, Room, Target, Undo, dm_display, wire_name};
use crate::protocol::{Change, ErrorCode, Role, Version};
use crate::server::{ConnectionId, Frame, Server, Write};
use crate::{id, text};

impl<R: CryptoRng> Server<R> {
    /// A `textFromUser` without `room`: the lobby, unless a v3 client's
    /// name left it.
    pub(in crate::server) fn lobby_text(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        text: &str,
        now: Instant,
    ) {
        // Only v3 knows of leaving the lobby: a v1 or v2 device of the same
        // name lives in it as before.
        if let Some(connection) = self.connections.get(conn)
            && connection.version == Version::V3
            && let Some((key, _)) = &connection.login
            && self.rooms.left_lobby.contains(key)
        {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::NotAMember,
                "you are not in #lobby; join it first",
            );
        }
        let now_ms = self.wall_ms(now);
        if let Some(connection) = self.connections.get(conn)
            && connection.version == Version::V3
            && let Some((key, _)) = &connection.login
            && let Some(until) = self.lobby_muted_until(key, now_ms)
        {
            let description = if until == u64::MAX {
                "you are muted in #lobby".to_owned()
            } else {
                format!(
                    "you are muted in #lobby until {until} (ms since the Unix epoch; another {} s)",
                    (until - now_ms).div_ceil(1000)
                )
            };
            return self.send_error(conn, reply_to, ErrorCode::Muted, &description);
        }
        self.text(conn, reply_to, text, now)
    }

    /// A v3 `textFromUser` with `room`.
    pub(in crate::server) fn room_text(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        room: &str,
        text: &str,
        now: Instant,
    ) {
        let Some((key, display)) = self.announced_login(conn) else {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::MessagingWhileNotLoggedIn,
                "log in before sending messages",
            );
        };
        let me = Me {
            conn,
            reply_to: reply_to.map(str::to_owned),
            key,
            display,
        };
        let Some(target) = self.target(&me, room) else {
            return;
        };
        let room_key: Arc<str> = match &target {
            Target::Lobby => return self.lobby_text(conn, reply_to, text, now),
            Target::Room { key, .. } => {
                if !self.rooms.is_member(&me.key, key) {
                    return self.not_a_member(&me, &target, true);
                }
                key.clone()
            }
            Target::Dm { key, .. } => key.clone(),
        };
        if !self.text_is_valid(conn, reply_to, text) {
            return;
        }
        let now_ms = self.wall_ms(now);
        if let Some(member) = self
            .rooms
            .by_key
            .get(&room_key)
            .and_then(|room| room.members.get(&me.key))
            && member.is_muted(now_ms)
        {
            let name = self.shown_name(&target);
            let description = match member.muted_until {
                Some(u64::MAX) | None => format!("you are muted in {name}"),
                Some(until) => format!(
                    "you are muted in {name} until {until} (ms since the Unix epoch; another {} s)",
                    (until - now_ms).div_ceil(1000)
                ),
            };
            return self.refuse(&me, ErrorCode::Muted, &description);
        }
        if let Target::Dm {
            key,
            other,
            other_display,
        } = &target
            && !self.rooms.by_key.contains_key(key)
            && !self.start_dm(&me, key, other, other_display, now)
        {
            return;
        }
        let pending = PendingMessage {
            conn,
            reply_to: me.reply_to.clone(),
            id: id::message_id(&mut self.rng).into(),
            timestamp: now_ms,
            username: me.display.clone(),
            text: text::neutralise(text).into(),
            room: Some(Box::new(RoomMessage {
                key: room_key.clone(),
                notice: None,
                then: Vec::new(),
                undo: None,
            })),
        };
        self.append_room(pending);
    }

    /// Numbers `pending` in its room: through the store, or here.
    pub(in crate::server) fn append_room(&mut self, pending: PendingMessage) {
        let Some(key) = pending.room.as_ref().map(|r| r.key.clone()) else {
            return;
        };
        let Some(seam) = self.names.seam_mut() else {
            let seq = self.rooms.by_key.get(&key).map_or(1, |r| r.log.next_seq());
            return self.accept_room_message(pending, seq);
        };
        let append = Append {
            room: Some(key),
            id: pending.id.clone(),
            timestamp: pending.timestamp,
            username: pending.username.clone(),
            text: pending.text.clone(),
            notice: pending.room.as_ref().is_some_and(|r| r.notice.is_some()),
        };
        seam.append(append, pending);
    }

    /// The first message of the DM `key` between `me` and `other`: the DM is
    /// created, if `other` is held and `me` may start another. `false`
    /// once refused.
    fn start_dm(
        &mut self,
        me: &Me,
        key: &Arc<str>,
        other: &Arc<str>,
        other_display: &str,
        now: Instant,
    ) -> bool {
        let held = self.is_held(other, now);
        let Some(other_shown) = self.display_of(other).filter(|_| held) else {
            self.refuse(
                me,
                ErrorCode::NoSuchUser,
                &format!("no one holds the name \"{other_display}\""),
            );
            return false;
        };
        if let Err(wait) = self.rooms.new_dms.check(&me.key, now) {
            let per_minute = self.config.new_dms_per_minute;
            self.refuse(
                me,
                ErrorCode::LimitReached,
                &format!(
                    "too many new direct conversations: at most {per_minute} a minute \
                     (--new-dms-per-minute); retry in {} s",
                    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
                ),
            );
            return false;
        }
        self.rooms.new_dms.took(&me.key, now);
        let display = dm_display(&me.key, &me.display, other, &other_shown);
        let epoch = self.new_epoch();
        let mut room = Room::new(display.clone(), epoch.clone(), self.config.room_history);
        room.invite_only = true;
        for (name, shown) in [(&me.key, &me.display), (other, &other_shown)] {
            room.members.insert(
                name.clone(),
                Member {
                    display: shown.clone(),
                    role: Role::Member,
                    muted_until: None,
                },
            );
            self.rooms
                .of_name
                .entry(name.clone())
                .or_default()
                .insert(key.clone());
        }
        self.rooms.by_key.insert(key.clone(), room);
        let mut writes = vec![Write::Room {
            room: key.clone(),
            display,
            owner: None,
            invite_only: true,
            topic: None,
            epoch: epoch.clone(),
        }];
        for name in [&me.key, other] {
            writes.push(Write::Member {
                room: key.clone(),
                name: name.clone(),
                role: Role::Member,
                muted_until: None,
            });
        }
        let ticket = self.record_all(writes);
        // Both parties' devices learn of the conversation (and its epoch).
        let mut frames = Vec::new();
        for name in [&me.key, other] {
            let frame = self.membership_frame(key, name, Change::Joined, &None, &None, None, None);
            frames.push((To::Name(name.clone()), frame));
        }
        self.send_when_saved(ticket, None, frames);
        // Not saved, it is not started: its first message fails with it
        // (the store keeps nothing for a room it has no row of), and the
        // next one starts it again.
        let room = key.clone();
        let by = me.key.clone();
        self.undo_if_unsaved(ticket, Undo::Started { room, by, epoch });
        true
    }

    /// A room's message or notice is saved as number `seq`: every device of
    /// every member gets it (the sender's own connection its copy with
    /// `replyTo`), then what waited for it, and it joins the room's log.
    pub(in crate::server) fn accept_room_message(&mut self, pending: PendingMessage, seq: u64) {
        let PendingMessage {
            conn,
            reply_to,
            id,
            timestamp,
            username,
            text,
            room,
        } = pending;
        let Some(RoomMessage {
            key, notice, then, ..
        }) = room.map(|r| *r)
        else {
            return;
        };
        let entry = Entry {
            said: Said {
                id,
                username,
                message: text,
                seq,
                timestamp,
                encoded_len: 0,
            },
            notice,
        };
        if self.rooms.by_key.contains_key(&key) {
            self.deliver_room_entry(&key, entry, Some((conn, reply_to)));
        } // else the room went meanwhile (a DM)
        self.send_saved(then);
    }

    /// A room's entry goes to every v3 device of every member here (the
    /// connection that said it, `sender`, gets its copy with `replyTo`),
    /// and joins the room's log: this node's own, once saved, and another
    /// node's (a cluster) as the store tells it.
    pub(in crate::server) fn deliver_room_entry(
        &mut self,
        key: &Arc<str>,
        entry: Entry,
        sender: Option<(ConnectionId, Option<String>)>,
    ) {
        let Some(room) = self.rooms.by_key.get(key) else {
            return;
        };
        let (conn, reply_to) = match sender {
            Some((conn, reply_to)) => (Some(conn), reply_to),
            None => (None, None),
        };
        // One frame per name the room goes by (one, or a DM's two): only a
        // DM's depends on who reads it.
        let dm = key.starts_with('@');
        let mut names: Vec<(Arc<str>, Arc<str>)> = room
            .members
            .keys()
            .map(|name| {
                let shown = if dm {
                    wire_name(key, room, name)
                } else {
                    room.display.clone()
                };
                (name.clone(), shown)
            })
            .collect();
        if dm {
            // A room goes by one name for everyone; a DM by two.
            names.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        }
        let mut frames: Vec<(Arc<str>, super::super::outbound::FrameRef)> = Vec::new();
        let mut own = None;
        for (_, shown) in &names {
            if frames.last().is_some_and(|(last, _)| last == shown) {
                continue;
            }
            let frame = self.actions.add(Frame::encode(&entry.message(shown, None)));
            frames.push((shown.clone(), frame));
        }
        let sender = conn
            .and_then(|conn| self.connections.get(conn))
            .and_then(|c| c.login.as_ref())
            .map(|(key, _)| key.clone());
        // A notice has no own copy: its `reply_to` only answers a failure.
        let reply_to = reply_to.filter(|_| entry.notice.is_none());
        if let (Some(reply_to), Some(sender)) = (&reply_to, sender)
            && let Some((_, shown)) = names.iter().find(|(name, _)| *name == sender)
        {
            let frame = Frame::encode(&entry.message(shown, Some(reply_to)));
            own = Some(self.actions.add(frame));
        }
        let mut told_sender = false;
        for (name, shown) in &names {
            let Some(devices) = self.rooms.devices.get(name) else {
                continue;
            };
            let Some(&(_, frame)) = frames.iter().find(|(s, _)| s == shown) else {
                continue;
            };
            for &device in devices {
                told_sender |= Some(device) == conn;
                match own {
                    Some(own) if Some(device) == conn => self.actions.send(device, own),
                    _ => self.actions.send(device, frame),
                }
            }
        }
        // A server operator acting in a room it is not in hears its notice.
        if !told_sender
            && entry.notice.is_some()
            && let Some(&(_, frame)) = frames.first()
            && let Some(conn) = conn.filter(|&conn| self.is_open(conn))
        {
            self.actions.send(conn, frame);
        }
        if let Some(room) = self.rooms.by_key.get_mut(key) {
            room.log.push(entry);
        }
        self.stats.messages += 1;
    }
}
