//! A cluster: what the other nodes' cores did to rooms, as the shared store
//! tells it ([`Remote::Write`](crate::server::Remote::Write) and
//! [`Remote::RoomEntry`](crate::server::Remote::RoomEntry)), applied to this
//! node's rooms with the code a restore and a delivery use, nothing written.
//!
//! This node's connections see what they would on a single node: a name
//! joining or leaving tells its own devices here (`membership`) and the
//! room's other members (`member`); an act's notice is delivered as any
//! entry, and what follows it on a single node (the `membership` kicked,
//! banned or invited of the name acted on, the `member` left of a name
//! removed) follows it here. A name an act removed is removed at once (its
//! `Unmember` carries `by`), but its frames wait for the act's notice,
//! which comes next in the room's order.

use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use super::super::seam::To;
use super::{Entry, LOBBY, Member, NoticeBody, Removal, Undo, wire_name};
use crate::protocol::{Act, Change, Role, ServerMessage};
use crate::server::{Frame, Server, StoredMessage, StoredRoom, Write};
use crate::{id, username};

/// A name another node's act removed from a room, until the act's notice.
#[derive(Debug)]
pub(crate) struct Departing {
    /// The name as the room showed it.
    display: Arc<str>,
}

impl<R: CryptoRng> Server<R> {
    /// Another node's core wrote `write`.
    pub(in crate::server) fn remote_write(&mut self, write: Write, now: Instant) {
        match write {
            Write::Room {
                room,
                display,
                owner,
                invite_only,
                topic,
                epoch,
            } => {
                if *room == *LOBBY {
                    self.rooms.lobby_topic = topic;
                    return;
                }
                let known = self.rooms.by_key.get_mut(&room);
                match known {
                    Some(known) if known.epoch == epoch => {
                        known.invite_only = invite_only;
                        known.topic = topic;
                        self.set_owner(&room, owner);
                    }
                    _ => {
                        // New here, or made anew (another epoch) meanwhile.
                        let saved = self.saved_joins_of_losing_creation(&room);
                        self.drop_room(&room);
                        self.put_room(StoredRoom {
                            key: room.to_string(),
                            display: display.to_string(),
                            owner: owner.as_deref().map(str::to_owned),
                            invite_only,
                            topic: topic.as_deref().map(str::to_owned),
                            epoch: epoch.to_string(),
                            ..StoredRoom::default()
                        });
                        for (name, member) in saved {
                            self.set_member(&room, &name, Some(member));
                        }
                    }
                }
            }
            Write::Member {
                room,
                name,
                role,
                muted_until,
            } => self.remote_member(&room, name, role, muted_until, now),
            Write::Unmember {
                room,
                name,
                by,
                reason,
            } => self.remote_unmember(&room, name, by, reason, now),
            Write::Ban { room, name, until } => {
                if *room == *LOBBY {
                    self.rooms.lobby_bans.insert(name, until);
                    return;
                }
                if let Some(known) = self.rooms.by_key.get_mut(&room) {
                    known.bans.insert(name.clone(), until);
                }
                // The act removing it was a ban.
                if self
                    .rooms
                    .departing
                    .contains_key(&(room.clone(), name.clone()))
                    && let Some(removal) = self
                        .rooms
                        .removals
                        .get_mut(&name)
                        .and_then(|removals| removals.get_mut(&room))
                {
                    removal.change = Change::Banned;
                }
            }
            Write::Unban { room, name } => {
                if *room == *LOBBY {
                    self.rooms.lobby_bans.remove(&name);
                } else if let Some(known) = self.rooms.by_key.get_mut(&room) {
                    known.bans.remove(&name);
                }
            }
            Write::Invite { room, name } => self.restore_invite(&room, name),
            Write::Uninvite { room, name } => {
                if let Some(known) = self.rooms.by_key.get_mut(&room) {
                    known.invites.remove(&name);
                }
                if let Some(invited) = self.rooms.invited.get_mut(&name) {
                    invited.remove(&room);
                    if invited.is_empty() {
                        self.rooms.invited.remove(&name);
                    }
                }
            }
            Write::Read { name, room, seq } => self.remote_read(name, room, seq),
            Write::DropRoom { room } => self.drop_room(&room),
            Write::Release { key } => self.forget_shared_name(&key, now),
            // Names, presence and liveness are the store's, not rooms'.
            Write::Claim { .. }
            | Write::InUse { .. }
            | Write::Idle { .. }
            | Write::Alive { .. }
            | Write::Logout { .. } => {}
        }
    }

    /// Another node appended `message` to `room`.
    pub(in crate::server) fn remote_entry(
        &mut self,
        room: Arc<str>,
        message: StoredMessage,
        now: Instant,
    ) {
        if !self.rooms.by_key.contains_key(&room) {
            return;
        }
        let Some(entry) = Entry::restore(message) else {
            return;
        };
        let notice = entry.notice.clone();
        self.deliver_room_entry(&room, entry, None);
        if let Some(body) = notice {
            self.after_remote_notice(&room, &body, now);
        }
    }

    /// `name` is in `room` as `role`, muted until `muted_until` (for the
    /// lobby: see `Write::Member`).
    fn remote_member(
        &mut self,
        room: &Arc<str>,
        name: Arc<str>,
        role: Role,
        muted_until: Option<u64>,
        now: Instant,
    ) {
        if **room == *LOBBY {
            match muted_until {
                None => {
                    if self.rooms.left_lobby.remove(&name) {
                        self.set_in_lobby(&name, true);
                        let frame = self.membership_frame(
                            LOBBY,
                            &name,
                            Change::Joined,
                            &None,
                            &None,
                            None,
                            None,
                        );
                        self.send_to_name(&name, frame);
                    }
                }
                Some(0) => {
                    self.rooms.lobby_mutes.remove(&name);
                }
                Some(until) => {
                    self.rooms.lobby_mutes.insert(name, until);
                }
            }
            return;
        }
        let Some(known) = self.rooms.by_key.get(room) else {
            return;
        };
        let was = known.members.get(&name).map(|m| m.display.clone());
        let joined = was.is_none();
        let display = was
            .or_else(|| self.display_of(&name))
            .unwrap_or_else(|| name.clone());
        let member = Member {
            display: display.clone(),
            role,
            muted_until,
        };
        self.restore_member(room, name.clone(), member);
        if !joined {
            return; // a role or a mute: its notice tells
        }
        if let Some(removals) = self.rooms.removals.get_mut(&name) {
            removals.remove(room);
        }
        let mut frames = Vec::new();
        if room.starts_with('@') {
            // A DM's two parties learn of it together, once both are in.
            let parties: Vec<Arc<str>> = match self.rooms.by_key.get(room) {
                Some(dm) if dm.members.len() == 2 => dm
                    .members
                    .keys()
                    .filter(|party| **party != name)
                    .cloned()
                    .chain([name.clone()])
                    .collect(),
                _ => Vec::new(),
            };
            for party in parties {
                let frame =
                    self.membership_frame(room, &party, Change::Joined, &None, &None, None, None);
                frames.push((To::Name(party), frame));
            }
        } else {
            let frame =
                self.membership_frame(room, &name, Change::Joined, &None, &None, None, None);
            frames.push((To::Name(name.clone()), frame));
            frames.extend(self.member_notice(room, &name, &display, Change::Joined, now));
        }
        self.send_saved(frames);
    }

    /// `name` is no longer in `room`: removed by `by`'s act (its frames
    /// wait for the act's notice), or gone on its own.
    fn remote_unmember(
        &mut self,
        room: &Arc<str>,
        name: Arc<str>,
        by: Option<Arc<str>>,
        reason: Option<Arc<str>>,
        now: Instant,
    ) {
        let removal = |change| Removal {
            change,
            by: by.clone(),
            reason: reason.clone(),
        };
        if **room == *LOBBY {
            if !self.rooms.left_lobby.insert(name.clone()) {
                return;
            }
            self.set_in_lobby(&name, false);
            // A lobby ban writes its ban first; its notice is not numbered,
            // so the name's devices are told now.
            let (change, until) = match (&by, self.rooms.lobby_bans.get(&name)) {
                (Some(_), Some(&until)) => (Change::Banned, until),
                (Some(_), None) => (Change::Kicked, None),
                (None, _) => (Change::Left, None),
            };
            self.rooms
                .removals
                .entry(name.clone())
                .or_default()
                .insert(room.clone(), removal(change));
            let frame = self.membership_frame(LOBBY, &name, change, &by, &reason, until, None);
            return self.send_to_name(&name, frame);
        }
        let Some(member) = self
            .rooms
            .by_key
            .get(room)
            .and_then(|known| known.members.get(&name))
            .cloned()
        else {
            return;
        };
        self.set_member(room, &name, None);
        let change = if by.is_some() {
            Change::Kicked
        } else {
            Change::Left
        };
        self.rooms
            .removals
            .entry(name.clone())
            .or_default()
            .insert(room.clone(), removal(change));
        if by.is_some() {
            // Only if someone here is to be told (a node that hears no
            // entry of the room never hears the notice either).
            let devices = &self.rooms.devices;
            let anyone_here = devices.contains_key(&name)
                || self.rooms.by_key.get(room).is_some_and(|known| {
                    known
                        .members
                        .keys()
                        .any(|other| devices.contains_key(other))
                });
            if anyone_here {
                let departing = Departing {
                    display: member.display,
                };
                self.rooms.departing.insert((room.clone(), name), departing);
            }
            return;
        }
        let frame = self.membership_frame(room, &name, Change::Left, &None, &reason, None, None);
        let mut frames = vec![(To::Name(name.clone()), frame)];
        frames.extend(self.member_notice(room, &name, &member.display, Change::Left, now));
        self.send_saved(frames);
    }

    /// What follows an act's notice on a single node, for the name it
    /// acted on and the room's other members.
    fn after_remote_notice(&mut self, room: &Arc<str>, body: &NoticeBody, now: Instant) {
        let Some(on) = body.username.as_deref() else {
            return;
        };
        let on: Arc<str> = username::key(on).into();
        let by: Option<Arc<str>> = Some(body.by.as_str().into());
        let reason: Option<Arc<str>> = body.reason.as_deref().map(Arc::from);
        let departed = self.rooms.departing.remove(&(room.clone(), on.clone()));
        let mut frames = Vec::new();
        match body.act {
            Act::Kick | Act::Ban => {
                let (change, until) = if body.act == Act::Ban {
                    (Change::Banned, body.until)
                } else {
                    (Change::Kicked, None)
                };
                if departed.is_some() || body.act == Act::Ban {
                    let frame = self.membership_frame(room, &on, change, &by, &reason, until, None);
                    frames.push((To::Name(on.clone()), frame));
                }
                if let Some(departed) = departed {
                    frames.extend(self.member_notice(
                        room,
                        &on,
                        &departed.display,
                        Change::Left,
                        now,
                    ));
                }
            }
            Act::Invite => {
                let frame =
                    self.membership_frame(room, &on, Change::Invited, &by, &None, None, None);
                frames.push((To::Name(on), frame));
            }
            _ => {}
        }
        self.send_saved(frames);
    }

    /// `name` read `room` up to `seq`: its devices here are told.
    fn remote_read(&mut self, name: Arc<str>, room: Arc<str>, seq: u64) {
        let shown: Arc<str> = if *room == *LOBBY {
            LOBBY.into()
        } else {
            match self.rooms.by_key.get(&room) {
                Some(known) => wire_name(&room, known, &name),
                None => return,
            }
        };
        self.rooms
            .reads
            .entry(name.clone())
            .or_default()
            .insert(room, seq);
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::ReadMarker {
            id: id.into(),
            reply_to: None,
            room: (*shown).into(),
            seq,
        });
        self.send_to_name(&name, frame);
    }

    /// When this node's creation of `room` is not saved yet (another
    /// node's creation of it has just been heard: Redis refuses this one),
    /// the names whose joins of it were saved already, as plain members:
    /// each went to Redis apart from the creation and joined the winner
    /// there. (The creator and joins still unanswered are settled by
    /// their answers: see `frames_saved`.)
    fn saved_joins_of_losing_creation(&self, room: &Arc<str>) -> Vec<(Arc<str>, Member)> {
        let (Some(known), Some(seam)) = (self.rooms.by_key.get(room), self.names.seam()) else {
            return Vec::new();
        };
        let mut creator = None;
        let mut unanswered = Vec::new();
        for pending in seam.after.values() {
            match &pending.undo {
                Some(Undo::Created {
                    room: r,
                    name,
                    epoch,
                    ..
                }) if r == room && *epoch == known.epoch => creator = Some(name),
                Some(Undo::Joined {
                    room: r,
                    name,
                    epoch,
                    ..
                }) if r == room && *epoch == known.epoch => unanswered.push(name),
                _ => {}
            }
        }
        let Some(creator) = creator else {
            return Vec::new();
        };
        known
            .members
            .iter()
            .filter(|(name, _)| *name != creator && !unanswered.contains(name))
            .map(|(name, member)| {
                let member = Member {
                    role: Role::Member,
                    ..member.clone()
                };
                (name.clone(), member)
            })
            .collect()
    }

    /// `room` and everything of it is gone (in memory).
    fn drop_room(&mut self, room: &Arc<str>) {
        let owner = self.rooms.by_key.get(room).and_then(|r| r.owner.clone());
        if let Some(owner) = owner
            && let Some(owned) = self.rooms.owned.get_mut(&owner)
        {
            owned.remove(room);
            if owned.is_empty() {
                self.rooms.owned.remove(&owner);
            }
        }
        self.rooms.departing.retain(|(key, _), _| key != room);
        self.drop_unsaved_room(room);
    }
}
