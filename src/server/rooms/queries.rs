//! Questions about rooms: `listRooms`, `listMembers`, `history` pages, and
//! `read` markers. Every reply built from what users chose is bounded by
//! `reply_max_bytes`.

use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use super::super::seam::To;
use super::room::{Bound, page};
use super::{LOBBY, Me, Target, Undo, wire_name};
use crate::id;
use crate::protocol::{self, MemberEntry, Role, RoomState, ServerMessage};
use crate::server::{Frame, Server, Write};

/// A page's default length, and its most.
const PAGE_DEFAULT: usize = 50;
const PAGE_MAX: usize = 500;

impl<R: CryptoRng> Server<R> {
    /// `listRooms`: the name's own rooms and DMs (the lobby first), then
    /// the public rooms it is not in, by key, as many as one reply holds.
    pub(in crate::server) fn list_rooms(&mut self, me: &Me) {
        let mut own: Vec<Arc<str>> = self
            .rooms
            .of_name
            .get(&me.key)
            .map(|rooms| rooms.iter().cloned().collect())
            .unwrap_or_default();
        own.sort_unstable();
        let mut public: Vec<&Arc<str>> = self
            .rooms
            .by_key
            .iter()
            .filter(|(key, room)| {
                key.starts_with('#') && !room.invite_only && !room.members.contains_key(&me.key)
            })
            .map(|(key, _)| key)
            .collect();
        public.sort_unstable();
        // The lobby is public: listed to a name that left it too.
        let keys: Vec<Arc<str>> = std::iter::once(Arc::from(LOBBY))
            .chain(own)
            .chain(public.into_iter().cloned())
            .collect();
        let mut bytes = 0;
        let mut rooms: Vec<RoomState<'static>> = Vec::new();
        for key in keys {
            let Some(state) = self.room_state(&key, &me.key) else {
                continue;
            };
            bytes += protocol::encoded_len(&state) + 1;
            if bytes > self.config.reply_max_bytes {
                break;
            }
            rooms.push(state);
        }
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::RoomList {
            id: id.into(),
            reply_to: me.reply_to.as_deref().unwrap_or_default().into(),
            rooms,
        });
        self.actions.send_new(me.conn, frame);
    }

    /// `listMembers`: of a room one is in, or of a public room.
    pub(in crate::server) fn list_members(&mut self, me: &Me, target: Target, now: Instant) {
        let now_ms = self.wall_ms(now);
        let key = target.key();
        let mut members: Vec<(Arc<str>, Role, bool, bool)> = match &target {
            Target::Lobby => {
                let operators = &self.rooms.operators;
                self.held_names_online()
                    .filter(|(key, ..)| !self.rooms.left_lobby.contains(*key))
                    .map(|(key, display, online)| {
                        let role = if operators.contains(&**key) {
                            Role::Operator
                        } else {
                            Role::Member
                        };
                        let muted = self
                            .rooms
                            .lobby_mutes
                            .get(&**key)
                            .is_some_and(|&u| u > now_ms);
                        (display.clone(), role, online, muted)
                    })
                    .collect()
            }
            _ => {
                let visible = self.rooms.by_key.get(key).is_some_and(|room| {
                    room.members.contains_key(&me.key)
                        || (key.starts_with('#') && !room.invite_only)
                });
                if !visible {
                    return self.not_a_member(me, &target, false);
                }
                let Some(room) = self.rooms.by_key.get(key) else {
                    return;
                };
                room.members
                    .iter()
                    .map(|(name, member)| {
                        let online = self.is_online(name);
                        let muted = member.is_muted(now_ms);
                        let role = self.rooms.shown_role(key, name, member.role);
                        (member.display.clone(), role, online, muted)
                    })
                    .collect()
            }
        };
        // Owners first, then operators, then by name as readers expect.
        members.sort_by_cached_key(|(display, role, ..)| {
            (std::cmp::Reverse(*role), crate::username::fold(display))
        });
        let mut bytes = 0;
        let entries: Vec<MemberEntry<'_>> = members
            .iter()
            .map(|(display, role, online, muted)| MemberEntry {
                username: (**display).into(),
                role: *role,
                online: *online,
                muted: *muted,
            })
            .take_while(|entry| {
                bytes += protocol::encoded_len(entry) + 1;
                bytes <= self.config.reply_max_bytes
            })
            .collect();
        let more = members.len() - entries.len();
        let room = self.shown_name(&target);
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::MemberList {
            id: id.into(),
            reply_to: me.reply_to.as_deref().unwrap_or_default().into(),
            room: (*room).into(),
            members: entries,
            more,
        });
        self.actions.send_new(me.conn, frame);
    }

    /// A `history` page of a room one is in.
    pub(in crate::server) fn history_page(
        &mut self,
        me: &Me,
        target: Target,
        before: Option<u64>,
        after: Option<u64>,
        limit: Option<usize>,
    ) {
        let key = target.key();
        if !self.rooms.is_member(&me.key, key) {
            return self.not_a_member(me, &target, false);
        }
        let limit = limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX);
        let bound = match (before, after) {
            (Some(before), _) => Bound::Before(before),
            (None, Some(after)) => Bound::After(after),
            (None, None) => Bound::Latest,
        };
        let max_bytes = self.config.reply_max_bytes;
        let reply_to = me.reply_to.as_deref().unwrap_or_default();
        let id = id::message_id(&mut self.rng);
        let frame = if key == LOBBY {
            let ring = self.history.ring();
            let page = page(
                ring.len(),
                |i| ring[i].seq,
                |i| ring[i].encoded_len,
                bound,
                limit,
                max_bytes,
            );
            Frame::encode(&ServerMessage::History {
                id: id.into(),
                reply_to: reply_to.into(),
                epoch: Some((*self.epoch).into()),
                messages: ring
                    .range(page.range)
                    .map(|said| said.message(None, true))
                    .collect(),
                complete: page.complete,
                room: Some(LOBBY.into()),
            })
        } else {
            let Some(room) = self.rooms.by_key.get(key) else {
                return;
            };
            let shown = wire_name(key, room, &me.key);
            let entries = room.log.entries();
            let page = page(
                entries.len(),
                |i| entries[i].said.seq,
                |i| entries[i].said.encoded_len + shown.len(),
                bound,
                limit,
                max_bytes,
            );
            Frame::encode(&ServerMessage::History {
                id: id.into(),
                reply_to: reply_to.into(),
                epoch: Some((*room.epoch).into()),
                messages: entries
                    .range(page.range)
                    .map(|entry| entry.message(&shown, None))
                    .collect(),
                complete: page.complete,
                room: Some((*shown).into()),
            })
        };
        self.actions.send_new(me.conn, frame);
    }

    /// `read`: the last `seq` read (at most the room's latest), kept per
    /// name and told to all its devices once saved.
    pub(in crate::server) fn read(&mut self, me: &Me, target: Target, seq: u64) {
        let key: Arc<str> = target.key().into();
        if !self.rooms.is_member(&me.key, &key) {
            return self.not_a_member(me, &target, false);
        }
        let last_seq = match self.rooms.by_key.get(&key) {
            Some(room) => room.log.last_seq,
            None => self.history.next_seq() - 1,
        };
        let seq = seq.min(last_seq);
        let was = self
            .rooms
            .reads
            .entry(me.key.clone())
            .or_default()
            .insert(key.clone(), seq);
        let ticket = self.record(Write::Read {
            name: me.key.clone(),
            room: key.clone(),
            seq,
        });
        let room = self.shown_name(&target);
        let mut frames = Vec::with_capacity(2);
        for (to, reply_to) in [
            (To::Conn(me.conn), me.reply_to.as_deref()),
            (To::Others(me.key.clone(), me.conn), None),
        ] {
            let id = id::message_id(&mut self.rng);
            let frame = Frame::encode(&ServerMessage::ReadMarker {
                id: id.into(),
                reply_to: reply_to.map(Into::into),
                room: (*room).into(),
                seq,
            });
            frames.push((to, frame));
        }
        self.send_when_saved(ticket, Some(me), frames);
        let name = me.key.clone();
        self.undo_if_unsaved(
            ticket,
            Undo::Read {
                name,
                room: key,
                was,
            },
        );
    }
}
