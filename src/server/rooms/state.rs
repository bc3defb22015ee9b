//! A room's state as one name sees it (`roomState`): its numbering, the
//! name's role and read marker, how many messages it has not read, and
//! whether one of them mentions it.

use rand::CryptoRng;

use super::{LOBBY, wire_name};
use crate::protocol::{Role, RoomState};
use crate::server::Server;

impl<R: CryptoRng> Server<R> {
    /// The state of `key` as the name keyed `me` sees it.
    pub(in crate::server) fn room_state(&self, key: &str, me: &str) -> Option<RoomState<'static>> {
        if key == LOBBY {
            return Some(self.lobby_state(me));
        }
        let room = self.rooms.by_key.get(key)?;
        let role = room
            .members
            .get(me)
            .map(|m| self.rooms.shown_role(key, me, m.role));
        let read_seq = self.rooms.read_seq(me, key);
        let last_seq = room.log.last_seq;
        let (unread, mentioned) = match role {
            Some(_) => {
                let display = room.members.get(me).map(|m| m.display.clone());
                let mentioned = display.is_some_and(|display| {
                    // Only the unread ones, newest first.
                    let entries = room.log.entries().iter().rev();
                    entries.take_while(|e| e.said.seq > read_seq).any(|e| {
                        e.notice.is_none()
                            && *e.said.username != *display
                            && mentions(&e.said.message, &display)
                    })
                });
                (last_seq.saturating_sub(read_seq), mentioned)
            }
            None => (0, false),
        };
        Some(RoomState {
            room: wire_name(key, room, me).to_string().into(),
            topic: room.topic.as_deref().map(|t| t.to_owned().into()),
            invite_only: room.invite_only,
            members: room.members.len(),
            role,
            epoch: room.epoch.to_string().into(),
            last_seq,
            read_seq,
            unread,
            mentioned,
            recovered: None,
        })
    }

    /// The lobby as the name keyed `me` sees it.
    fn lobby_state(&self, me: &str) -> RoomState<'static> {
        let in_lobby = !self.rooms.left_lobby.contains(me);
        let held = self.held_count();
        let read_seq = self.rooms.read_seq(me, LOBBY);
        let last_seq = self.history.next_seq() - 1;
        let display = self.display_of(me);
        let mentioned = in_lobby
            && display.is_some_and(|display| {
                self.history
                    .said_after(read_seq)
                    .any(|said| *said.username != *display && mentions(&said.message, &display))
            });
        let role = if self.rooms.is_operator(me) {
            Role::Operator
        } else {
            Role::Member
        };
        RoomState {
            room: LOBBY.into(),
            topic: self
                .rooms
                .lobby_topic
                .as_deref()
                .map(|t| t.to_owned().into()),
            invite_only: false,
            members: held.saturating_sub(self.rooms.left_lobby.len()),
            role: in_lobby.then_some(role),
            epoch: self.epoch.to_string().into(),
            last_seq,
            read_seq,
            unread: if in_lobby {
                last_seq.saturating_sub(read_seq)
            } else {
                0
            },
            mentioned,
            recovered: None,
        }
    }
}

/// Whether `text` mentions `name`: `@name`, or the name as a word, in any
/// case.
pub(in crate::server) fn mentions(text: &str, name: &str) -> bool {
    let name = name.to_lowercase();
    if name.is_empty() {
        return false;
    }
    let text = text.to_lowercase();
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '\'';
    text.match_indices(&name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}
