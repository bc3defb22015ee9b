//! The v3 devices of each name, and what a released name leaves behind.

use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use crate::id;
use crate::protocol::{Change, ServerMessage};
use crate::server::{ConnectionId, Frame, Server};

impl<R: CryptoRng> Server<R> {
    /// Whether lobby messages reach the v3 devices of `name`.
    pub(in crate::server) fn set_in_lobby(&mut self, name: &str, in_lobby: bool) {
        if let Some(devices) = self.rooms.devices.get(name) {
            for &conn in devices {
                self.connections.set_in_lobby(conn, in_lobby);
            }
        }
    }

    /// A v3 connection's login was announced: it hears of its name's rooms.
    pub(in crate::server) fn add_device(&mut self, conn: ConnectionId, name: &Arc<str>) {
        self.rooms
            .devices
            .entry(name.clone())
            .or_default()
            .push(conn);
        let in_lobby = !self.rooms.left_lobby.contains(name);
        self.connections.set_in_lobby(conn, in_lobby);
    }

    /// A v3 connection no longer holds `name` (closed or logged out).
    pub(in crate::server) fn remove_device(&mut self, conn: ConnectionId, name: &str) {
        if let Some(devices) = self.rooms.devices.get_mut(name) {
            devices.retain(|&c| c != conn);
            if devices.is_empty() {
                self.rooms.devices.remove(name);
            }
        }
        self.connections.set_in_lobby(conn, true);
    }

    /// The name keyed `name` was released: its memberships, invites, read
    /// markers and lobby mark are forgotten, and its DMs dropped, as
    /// `Write::Release` means to the store too (nothing more is written).
    /// Rooms it owns keep no owner; its bans stay.
    pub(in crate::server) fn forget_name(&mut self, name: &Arc<str>, now: Instant) {
        self.rooms.left_lobby.remove(name);
        self.rooms.lobby_mutes.remove(name);
        self.rooms.reads.remove(name);
        self.rooms.removals.remove(name);
        self.rooms
            .departing
            .retain(|(_, departing), _| departing != name);
        if let Some(invited) = self.rooms.invited.remove(name) {
            for key in invited {
                if let Some(room) = self.rooms.by_key.get_mut(&key) {
                    room.invites.remove(name);
                }
            }
        }
        let rooms = self.rooms.of_name.remove(name).unwrap_or_default();
        let mut frames = Vec::new();
        for key in rooms {
            if key.starts_with('@') {
                self.drop_dm(&key, name);
                continue;
            }
            let Some(room) = self.rooms.by_key.get_mut(&key) else {
                continue;
            };
            let display = room.members.remove(name).map(|m| m.display);
            if let Some(display) = display {
                frames.extend(self.member_notice(&key, name, &display, Change::Left, now));
            }
        }
        for key in self.rooms.owned.remove(name).unwrap_or_default() {
            if let Some(room) = self.rooms.by_key.get_mut(&key) {
                room.owner = None;
            }
        }
        self.send_saved(frames);
    }

    /// A DM whose party `gone` was released is dropped; the other party's
    /// devices are told it left.
    fn drop_dm(&mut self, key: &Arc<str>, gone: &str) {
        let Some(room) = self.rooms.by_key.remove(key) else {
            return;
        };
        for (name, _) in room.members.iter().filter(|(name, _)| ***name != *gone) {
            if let Some(rooms) = self.rooms.of_name.get_mut(name) {
                rooms.remove(key);
            }
            if let Some(reads) = self.rooms.reads.get_mut(name) {
                reads.remove(key);
            }
            let wire = super::wire_name(key, &room, name);
            let id = id::message_id(&mut self.rng);
            let frame = Frame::encode(&ServerMessage::Membership {
                id: id.into(),
                reply_to: None,
                room: (*wire).into(),
                change: Change::Left,
                by: None,
                reason: Some("the other party's name was released".into()),
                until: None,
                state: None,
            });
            self.send_to_name(&name.clone(), frame);
        }
    }
}
