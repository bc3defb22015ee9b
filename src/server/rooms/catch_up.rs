//! What a v3 login is sent after `loginMessage`: `rooms` (the state of
//! every room and DM the name is in, the lobby included, and what changed
//! while this client was away), the lobby's `history` as v2 has it (unless
//! the name left the lobby), then one `history` per room with something
//! to send.

use std::collections::HashMap;
use std::sync::Arc;

use rand::CryptoRng;

use super::room::{Bound, page};
use super::{LOBBY, dm_key, wire_name};
use crate::id;
use crate::protocol::{Change, RoomChange, RoomSince, ServerMessage};
use crate::server::{ConnectionId, Frame, Server};
use crate::username::Username;

/// The most rooms of a `login` that are looked at.
const LISTED_MAX: usize = 1000;

impl<R: CryptoRng> Server<R> {
    pub(in crate::server) fn catch_up(
        &mut self,
        conn: ConnectionId,
        reply_to: &str,
        me: &Arc<str>,
        since: Option<u64>,
        listed: Vec<RoomSince>,
    ) {
        // The rooms the client listed, by key: (epoch, since, as listed).
        let mut known: HashMap<Arc<str>, (Option<String>, u64, String)> = HashMap::new();
        // A client knows at most its rooms and DMs: past this many, what it
        // lists is ignored (each costs the reply a change).
        for room in listed.into_iter().take(LISTED_MAX) {
            if let Some(key) = self.key_of_listed(me, &room.room) {
                known.insert(key, (room.epoch, room.since, room.room));
            }
        }
        let in_lobby = !self.rooms.left_lobby.contains(me);
        let mut keys: Vec<Arc<str>> = self
            .rooms
            .of_name
            .get(me)
            .map(|rooms| rooms.iter().cloned().collect())
            .unwrap_or_default();
        keys.sort_unstable();
        let mut states = Vec::with_capacity(keys.len() + 1);
        if in_lobby {
            let mut lobby = self.room_state(LOBBY, me);
            if let Some(state) = &mut lobby {
                let last = self.history.next_seq() - 1;
                let first = self.history.ring().front().map_or(last + 1, |s| s.seq);
                // As v2 has it: a `since` beyond the latest was not caught up.
                state.recovered =
                    Some(since.is_some_and(|s| s == last || (s < last && s + 1 >= first)));
            }
            states.extend(lobby);
        }
        // What each room sends: after the client's `since`, or the latest.
        let mut sends = Vec::with_capacity(keys.len());
        let mut changes = Vec::new();
        for key in &keys {
            let Some(mut state) = self.room_state(key, me) else {
                continue;
            };
            let Some(room) = self.rooms.by_key.get(key) else {
                continue;
            };
            let recovered = match known.get(key) {
                Some((epoch, since, _)) if epoch.as_deref() == Some(&*room.epoch) => {
                    let first = room.log.first_held().unwrap_or(room.log.last_seq + 1);
                    // A `since` beyond the latest (the client has more than
                    // the server holds) is not recovered: it reloads.
                    let last = room.log.last_seq;
                    (*since == last || (*since < last && since + 1 >= first)).then_some(*since)
                }
                Some(_) => None,
                None => {
                    changes.push(RoomChange {
                        room: state.room.to_string().into(),
                        change: Change::Joined,
                        by: None,
                        reason: None,
                    });
                    None
                }
            };
            state.recovered = Some(recovered.is_some());
            sends.push((key.clone(), recovered));
            states.push(state);
        }
        // Rooms listed that the name is no longer in, named as listed: one
        // that does not exist (or never had this name in it) is `left` too,
        // so that listing names cannot tell which private rooms exist.
        let mut gone: Vec<(&Arc<str>, &str)> = known
            .iter()
            .filter(|(key, _)| !self.rooms.is_member(me, key))
            .map(|(key, (_, _, listed))| (key, listed.as_str()))
            .collect();
        gone.sort_unstable();
        for (key, listed) in gone {
            let removal = self.rooms.removals.get(me).and_then(|r| r.get(key));
            // A ban outlives the memory of who banned (a restart).
            let banned = self
                .rooms
                .by_key
                .get(key)
                .is_some_and(|room| room.bans.contains_key(me));
            let (change, by, reason) = match removal {
                Some(removal) => (removal.change, removal.by.clone(), removal.reason.clone()),
                None if banned => (Change::Banned, None, None),
                None => (Change::Left, None, None),
            };
            changes.push(RoomChange {
                room: listed.to_owned().into(),
                change,
                by: by.map(|by| by.to_string().into()),
                reason: reason.map(|r| r.to_string().into()),
            });
        }
        let mut invited: Vec<&Arc<str>> = self
            .rooms
            .invited
            .get(me)
            .map(|rooms| rooms.iter().collect())
            .unwrap_or_default();
        invited.sort_unstable();
        for key in invited {
            if let Some(room) = self.rooms.by_key.get(key) {
                changes.push(RoomChange {
                    room: room.display.to_string().into(),
                    change: Change::Invited,
                    by: None,
                    reason: None,
                });
            }
        }
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::Rooms {
            id: id.into(),
            reply_to: reply_to.into(),
            rooms: states,
            changes,
        });
        self.actions.send_new(conn, frame);
        if in_lobby {
            self.send_history(conn, reply_to, since);
        }
        for (key, recovered) in sends {
            self.send_room_history(conn, reply_to, me, &key, recovered);
        }
    }

    /// The key of a room a client listed, if it names one.
    fn key_of_listed(&self, me: &str, room: &str) -> Option<Arc<str>> {
        let max = self.config.max_username_chars;
        if let Some(name) = room.strip_prefix('#') {
            let name = Username::parse(name, max).ok()?;
            return Some(format!("#{}", name.key).into());
        }
        let name = Username::parse(room.strip_prefix('@')?, max).ok()?;
        Some(dm_key(me, &name.key))
    }

    /// The catch-up of one room: the messages after `since` (oldest first,
    /// as many as one reply holds), or, without one, the latest few.
    /// Nothing is sent when there is nothing to send.
    fn send_room_history(
        &mut self,
        conn: ConnectionId,
        reply_to: &str,
        me: &str,
        key: &str,
        since: Option<u64>,
    ) {
        let Some(room) = self.rooms.by_key.get(key) else {
            return;
        };
        let shown = wire_name(key, room, me);
        let entries = room.log.entries();
        let (bound, limit) = match since {
            Some(since) => (Bound::After(since), usize::MAX),
            None => (Bound::Latest, self.config.history_on_join),
        };
        let page = page(
            entries.len(),
            |i| entries[i].said.seq,
            |i| entries[i].said.encoded_len + shown.len(),
            bound,
            limit,
            self.config.reply_max_bytes,
        );
        if page.range.is_empty() {
            return;
        }
        let complete = match since {
            Some(_) => page.complete,
            // The latest few: complete unless the byte budget cut them.
            None => page.complete || page.range.len() == limit,
        };
        let messages = entries
            .range(page.range)
            .map(|entry| entry.message(&shown, None))
            .collect();
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::History {
            id: id.into(),
            reply_to: reply_to.into(),
            epoch: Some((*room.epoch).into()),
            messages,
            complete,
            room: Some((*shown).into()),
        });
        self.actions.send_new(conn, frame);
    }
}
