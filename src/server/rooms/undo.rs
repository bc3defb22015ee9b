//! Taking back a change whose writes were not saved. The one who asked is
//! told `unavailable`, so the change must not stand in memory either: what
//! the core serves is what the store would give back after a restart.
//!
//! A change is applied in memory at once (so that what follows it, such as
//! a message after a join, sees it) and taken back if the last of its
//! writes fails: a store saves a change's writes together, in order, so
//! the last one's answer is the whole change's.

use std::sync::Arc;

use rand::CryptoRng;

use super::{LOBBY, Member, Removal};
use crate::server::Server;

/// A change to take back if it could not be saved.
#[derive(Debug)]
pub(crate) enum Undo {
    /// `name` joined `room`, which existed, numbered under `epoch` (a
    /// cluster: a room this node was creating meanwhile, whose creation
    /// lost to another node's; then the join is made again, of that room,
    /// as `display` asked with the room written `written`).
    Joined {
        room: Arc<str>,
        name: Arc<str>,
        display: Arc<str>,
        written: Arc<str>,
        epoch: Arc<str>,
    },
    /// `name` created `room`, numbered under `epoch` (a cluster: another
    /// node's room of that name, made meanwhile, may stand in its place;
    /// then the creation becomes a join of it, as `display` asked with the
    /// room written `written`).
    Created {
        room: Arc<str>,
        name: Arc<str>,
        display: Arc<str>,
        written: Arc<str>,
        epoch: Arc<str>,
    },
    /// `name` left `room`, where it was `member`.
    Left {
        room: Arc<str>,
        name: Arc<str>,
        member: Member,
    },
    /// `name` left the lobby.
    LeftLobby { name: Arc<str> },
    /// `name` marked `room` read; it had read up to `was`.
    Read {
        name: Arc<str>,
        room: Arc<str>,
        was: Option<u64>,
    },
    /// `name` came back to the lobby.
    BackInLobby { name: Arc<str> },
    /// The DM `room` was started (by its first message) by the name `by`,
    /// numbered under `epoch`.
    Started {
        room: Arc<str>,
        by: Arc<str>,
        epoch: Arc<str>,
    },
    /// An act in a room or the lobby: what it changed, as it was before.
    Acted(Box<Before>),
}

/// What an act may change, as it was before it: the room's settings, and
/// everything of the name it acted on.
#[derive(Debug)]
pub(crate) struct Before {
    pub(crate) room: Arc<str>,
    pub(crate) topic: Option<Arc<str>>,
    pub(crate) invite_only: bool,
    pub(crate) on: Option<NameBefore>,
}

/// A name acted on, as it was in the room before the act.
#[derive(Debug)]
pub(crate) struct NameBefore {
    pub(crate) name: Arc<str>,
    /// In the room, and how (the lobby: `Some` if in it, with its mute).
    pub(crate) member: Option<Member>,
    pub(crate) ban: Option<Option<u64>>,
    pub(crate) invited: bool,
    pub(crate) removal: Option<Removal>,
}

impl<R: CryptoRng> Server<R> {
    /// What `room` and the name keyed `on` are now, to take back an act.
    pub(in crate::server) fn before_act(&self, room: &Arc<str>, on: Option<&Arc<str>>) -> Before {
        let removal = |name: &str| {
            self.rooms
                .removals
                .get(name)
                .and_then(|r| r.get(room))
                .cloned()
        };
        if **room == *LOBBY {
            return Before {
                room: room.clone(),
                topic: self.rooms.lobby_topic.clone(),
                invite_only: false,
                on: on.map(|name| NameBefore {
                    name: name.clone(),
                    member: (!self.rooms.left_lobby.contains(name)).then(|| Member {
                        display: name.clone(),
                        role: crate::protocol::Role::Member,
                        muted_until: self.rooms.lobby_mutes.get(name).copied(),
                    }),
                    ban: self.rooms.lobby_bans.get(name).copied(),
                    invited: false,
                    removal: removal(name),
                }),
            };
        }
        let stored = self.rooms.by_key.get(room);
        Before {
            room: room.clone(),
            topic: stored.and_then(|r| r.topic.clone()),
            invite_only: stored.is_some_and(|r| r.invite_only),
            on: on.map(|name| NameBefore {
                name: name.clone(),
                member: stored.and_then(|r| r.members.get(name)).cloned(),
                ban: stored.and_then(|r| r.bans.get(name)).copied(),
                invited: stored.is_some_and(|r| r.invites.contains(name)),
                removal: removal(name),
            }),
        }
    }

    /// Takes back a change whose write failed (nothing is written: the
    /// store did not make the change).
    pub(in crate::server) fn undo(&mut self, undo: Undo) {
        let (room, name, member) = match undo {
            Undo::Joined { room, name, .. } => (room, name, None),
            Undo::Left { room, name, member } => (room, name, Some(member)),
            Undo::LeftLobby { name } => {
                if self.rooms.left_lobby.remove(&name) {
                    self.set_in_lobby(&name, true);
                }
                if let Some(removals) = self.rooms.removals.get_mut(&name) {
                    removals.remove(LOBBY);
                }
                return;
            }
            Undo::BackInLobby { name } => {
                if self.rooms.left_lobby.insert(name.clone()) {
                    self.set_in_lobby(&name, false);
                }
                return;
            }
            Undo::Read { name, room, was } => {
                let reads = self.rooms.reads.entry(name.clone()).or_default();
                match was {
                    Some(seq) => reads.insert(room, seq),
                    None => reads.remove(&room),
                };
                if reads.is_empty() {
                    self.rooms.reads.remove(&name);
                }
                return;
            }
            Undo::Started { room, by, epoch } => {
                // Nobody started anything: the start does not count
                // against --new-dms-per-minute either.
                self.rooms.new_dms.gave_back(&by);
                if self.is_epoch_of(&room, &epoch) {
                    self.drop_unsaved_room(&room);
                }
                return;
            }
            Undo::Acted(before) => return self.undo_act(*before),
            Undo::Created {
                room, name, epoch, ..
            } => {
                if self.is_epoch_of(&room, &epoch) {
                    self.drop_unsaved_room(&room);
                }
                if let Some(owned) = self.rooms.owned.get_mut(&name) {
                    owned.remove(&room);
                }
                (room, name, None)
            }
        };
        self.set_member(&room, &name, member);
    }

    /// `name` is `member` of `room`, or (`None`) not in it (in memory).
    pub(in crate::server) fn set_member(
        &mut self,
        room: &Arc<str>,
        name: &Arc<str>,
        member: Option<Member>,
    ) {
        let rooms = self.rooms.of_name.entry(name.clone()).or_default();
        match member {
            Some(member) => {
                rooms.insert(room.clone());
                if let Some(r) = self.rooms.by_key.get_mut(room) {
                    r.members.insert(name.clone(), member);
                }
                if let Some(removals) = self.rooms.removals.get_mut(name) {
                    removals.remove(room);
                }
            }
            None => {
                rooms.remove(room);
                if let Some(r) = self.rooms.by_key.get_mut(room) {
                    r.members.remove(name);
                }
            }
        }
        if self.rooms.of_name.get(name).is_some_and(|r| r.is_empty()) {
            self.rooms.of_name.remove(name);
        }
    }

    /// Whether `room` is (still) the one numbered under `epoch`: on a
    /// cluster, the store refuses a room another node made first, and that
    /// one stands here by the time the refusal comes.
    fn is_epoch_of(&self, room: &str, epoch: &str) -> bool {
        self.rooms
            .by_key
            .get(room)
            .is_some_and(|known| *known.epoch == *epoch)
    }

    /// A room or DM the store never saved is gone, with whoever joined it
    /// meanwhile.
    pub(in crate::server) fn drop_unsaved_room(&mut self, room: &Arc<str>) {
        let Some(gone) = self.rooms.by_key.remove(room) else {
            return;
        };
        if room.starts_with('#') {
            self.rooms.room_count = self.rooms.room_count.saturating_sub(1);
        }
        for other in gone.members.keys() {
            if let Some(rooms) = self.rooms.of_name.get_mut(other) {
                rooms.remove(room);
                if rooms.is_empty() {
                    self.rooms.of_name.remove(other);
                }
            }
            if let Some(reads) = self.rooms.reads.get_mut(other) {
                reads.remove(room);
            }
        }
        for other in gone.invites {
            if let Some(rooms) = self.rooms.invited.get_mut(&other) {
                rooms.remove(room);
            }
        }
    }

    /// An act that was not saved is taken back.
    fn undo_act(&mut self, before: Before) {
        let Before {
            room,
            topic,
            invite_only,
            on,
        } = before;
        if *room == *LOBBY {
            self.rooms.lobby_topic = topic;
        } else if let Some(r) = self.rooms.by_key.get_mut(&room) {
            r.topic = topic;
            r.invite_only = invite_only;
        } else {
            return; // gone meanwhile (a DM whose party was released)
        }
        let Some(mut on) = on else {
            return;
        };
        let removal = on.removal.take();
        let name = on.name.clone();
        self.undo_act_on(&room, on);
        // Last: taking a membership back clears how the name left.
        let removals = self.rooms.removals.entry(name.clone()).or_default();
        match removal {
            Some(removal) => {
                removals.insert(room, removal);
            }
            None => {
                removals.remove(&room);
            }
        }
        if self.rooms.removals.get(&name).is_some_and(|r| r.is_empty()) {
            self.rooms.removals.remove(&name);
        }
    }

    /// What an act not saved did to the name it acted on, taken back.
    fn undo_act_on(&mut self, room: &Arc<str>, on: NameBefore) {
        let name = on.name;
        if **room == *LOBBY {
            let in_lobby = on.member.is_some();
            if in_lobby == self.rooms.left_lobby.contains(&name) {
                if in_lobby {
                    self.rooms.left_lobby.remove(&name);
                } else {
                    self.rooms.left_lobby.insert(name.clone());
                }
                self.set_in_lobby(&name, in_lobby);
            }
            match on.member.and_then(|m| m.muted_until) {
                Some(until) => self.rooms.lobby_mutes.insert(name.clone(), until),
                None => self.rooms.lobby_mutes.remove(&name),
            };
            match on.ban {
                Some(until) => self.rooms.lobby_bans.insert(name, until),
                None => self.rooms.lobby_bans.remove(&name),
            };
            return;
        }
        self.set_member(room, &name, on.member);
        if let Some(r) = self.rooms.by_key.get_mut(room) {
            match on.ban {
                Some(until) => r.bans.insert(name.clone(), until),
                None => r.bans.remove(&name),
            };
            if on.invited {
                r.invites.insert(name.clone());
            } else {
                r.invites.remove(&name);
            }
        }
        let invited = self.rooms.invited.entry(name.clone()).or_default();
        if on.invited {
            invited.insert(room.clone());
        } else {
            invited.remove(room);
        }
        if self.rooms.invited.get(&name).is_some_and(|r| r.is_empty()) {
            self.rooms.invited.remove(&name);
        }
    }
}
