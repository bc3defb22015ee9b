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

    /// A room or DM as stored (its settings, latest entries, members, bans
    /// and invites), kept for the names still held.
    fn restore_room(&mut self, mut stored: StoredRoom) {
        if let Some((a, b)) = dm_parties(&stored.key)
            && (self.display_of(a).is_none() || self.display_of(b).is_none())
        {
            // Its party's release dropped it; the store kept it anyway.
            self.record(Write::DropRoom {
                room: stored.key.into(),
            });
            return;
        }
        stored.owner = stored
            .owner
            .filter(|owner| self.display_of(owner).is_some());
        self.put_room(stored);
    }

    /// `stored` in place of any room of its key (a remote `Write::Room` of
    /// a room not known here is one with its settings only): its members
    /// and invites whose names are held.
    pub(in crate::server) fn put_room(&mut self, stored: StoredRoom) {
        let key: Arc<str> = stored.key.into();
        let mut room = Room::new(
            stored.display.into(),
            stored.epoch.into(),
            self.config.room_history,
        );
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
        if key.starts_with('#') {
            self.rooms.room_count += 1;
        }
        self.rooms.by_key.insert(key.clone(), room);
        self.set_owner(&key, stored.owner.map(Arc::from));
        for member in stored.members {
            let Some(display) = self.display_of(&member.name) else {
                continue;
            };
            let stored = Member {
                display,
                role: member.role,
                muted_until: member.muted_until,
            };
            self.restore_member(&key, member.name.into(), stored);
        }
        for (name, until) in stored.bans {
            if let Some(room) = self.rooms.by_key.get_mut(&key) {
                room.bans.insert(name.into(), until);
            }
        }
        for name in stored.invites {
            if self.display_of(&name).is_some() {
                self.restore_invite(&key, name.into());
            }
        }
    }

    /// `key`'s owner is `owner`.
    pub(in crate::server) fn set_owner(&mut self, key: &Arc<str>, owner: Option<Arc<str>>) {
        let Some(room) = self.rooms.by_key.get_mut(key) else {
            return;
        };
        let was = std::mem::replace(&mut room.owner, owner.clone());
        if let Some(was) = was
            && let Some(owned) = self.rooms.owned.get_mut(&was)
        {
            owned.remove(key);
            if owned.is_empty() {
                self.rooms.owned.remove(&was);
            }
        }
        if let Some(owner) = owner {
            self.rooms
                .owned
                .entry(owner)
                .or_default()
                .insert(key.clone());
        }
    }

    /// `name` is `member` of `key` (an upsert).
    pub(in crate::server) fn restore_member(
        &mut self,
        key: &Arc<str>,
        name: Arc<str>,
        member: Member,
    ) {
        let Some(room) = self.rooms.by_key.get_mut(key) else {
            return;
        };
        room.members.insert(name.clone(), member);
        self.rooms
            .of_name
            .entry(name)
            .or_default()
            .insert(key.clone());
    }

    /// `name` is invited to `key`.
    pub(in crate::server) fn restore_invite(&mut self, key: &Arc<str>, name: Arc<str>) {
        let Some(room) = self.rooms.by_key.get_mut(key) else {
            return;
        };
        room.invites.insert(name.clone());
        self.rooms
            .invited
            .entry(name)
            .or_default()
            .insert(key.clone());
    }
}
