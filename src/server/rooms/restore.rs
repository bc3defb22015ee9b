//! Rooms back from what a store holds (`Server::restore`), after the names:
//! only held names keep memberships, invites, read markers and their lobby
//! mark (a released name's were forgotten with it, as `Write::Release`
//! means), and a DM with a party no longer held is dropped. The room
//! `#lobby` is the lobby's topic, bans and mutes.

use std::sync::Arc;

use rand::CryptoRng;

use super::{Entry, LOBBY, Member, Room, dm_parties};
use crate::server::{Server, StoredRead, StoredRoom, Write};

impl<R: CryptoRng> Server<R> {
    pub(in crate::server) fn restore_rooms(
        &mut self,
        rooms: Vec<StoredRoom>,
        reads: Vec<StoredRead>,
        left_lobby: Vec<String>,
    ) {
        for stored in rooms {
            if stored.key == LOBBY {
                self.restore_lobby(stored);
            } else {
                self.restore_room(stored);
            }
        }
        for name in left_lobby {
            if self.display_of(&name).is_some() {
                self.rooms.left_lobby.insert(name.into());
            }
        }
        for read in reads {
            let in_it = self.display_of(&read.name).is_some()
                && (read.room == LOBBY || self.rooms.is_member(&read.name, &read.room));
            if in_it {
                self.rooms
                    .reads
                    .entry(read.name.into())
                    .or_default()
                    .insert(read.room.into(), read.seq);
            }
        }
    }

    /// The lobby's topic, bans and mutes (its members: the names with a
    /// mute; a released name's mute went with it, its bans stay).
    fn restore_lobby(&mut self, stored: StoredRoom) {
        self.rooms.lobby_topic = stored.topic.map(Arc::from);
        for (name, until) in stored.bans {
            self.rooms.lobby_bans.insert(name.into(), until);
        }
        for member in stored.members {
            if let Some(until) = member.muted_until.filter(|&until| until > 0)
                && self.display_of(&member.name).is_some()
            {
                self.rooms.lobby_mutes.insert(member.name.into(), until);
            }
        }
    }

    fn restore_room(&mut self, stored: StoredRoom) {
        let key: Arc<str> = stored.key.into();
        if let Some((a, b)) = dm_parties(&key)
            && (self.display_of(a).is_none() || self.display_of(b).is_none())
        {
            // Its party's release dropped it; the store kept it anyway.
            self.record(Write::DropRoom { room: key });
            return;
        }
        let mut room = Room::new(
            stored.display.into(),
            stored.epoch.into(),
            self.config.room_history,
        );
        room.owner = stored
            .owner
            .filter(|owner| self.display_of(owner).is_some())
            .map(Arc::from);
        if let Some(owner) = &room.owner {
            self.rooms
                .owned
                .entry(owner.clone())
                .or_default()
                .insert(key.clone());
        }
        room.invite_only = stored.invite_only;
        room.topic = stored.topic.map(Arc::from);
        let keep = stored
            .messages
            .len()
            .saturating_sub(self.config.room_history);
        for message in stored.messages.into_iter().skip(keep) {
            if let Some(entry) = Entry::restore(message) {
                room.log.push(entry);
            }
        }
        room.log.last_seq = room.log.last_seq.max(stored.last_seq);
        for member in stored.members {
            let Some(display) = self.display_of(&member.name) else {
                continue;
            };
            let name: Arc<str> = member.name.into();
            self.rooms
                .of_name
                .entry(name.clone())
                .or_default()
                .insert(key.clone());
            room.members.insert(
                name,
                Member {
                    display,
                    role: member.role,
                    muted_until: member.muted_until,
                },
            );
        }
        for (name, until) in stored.bans {
            room.bans.insert(name.into(), until);
        }
        for name in stored.invites {
            if self.display_of(&name).is_none() {
                continue;
            }
            let name: Arc<str> = name.into();
            self.rooms
                .invited
                .entry(name.clone())
                .or_default()
                .insert(key.clone());
            room.invites.insert(name);
        }
        if key.starts_with('#') {
            self.rooms.room_count += 1;
        }
        self.rooms.by_key.insert(key, room);
    }
}
