//! Joining and leaving rooms (the lobby too), who is told, the devices of
//! each name, and what a released name leaves behind.
//!
//! `member` notices (who joined or left a room) are paced per room exactly
//! as v2 presence is (`presence_rate` a second, `presence_burst` at once):
//! past the budget they are held, and when it allows the next notice,
//! everything held goes out to the room's members as one `presence` frame
//! with `room`, so a storm costs each member a few frames a second at most.

use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use super::super::notices::listed;
use super::super::presence::{Notice, Presence, Summary};
use super::super::seam::To;
use super::super::timers::Timer;
use super::{LOBBY, Me, Member, Removal, Room, Target, Undo};
use crate::id;
use crate::protocol::{Change, ErrorCode, Role, ServerMessage};
use crate::server::{Frame, Server, Write};

impl<R: CryptoRng> Server<R> {
    pub(in crate::server) fn join(
        &mut self,
        me: &Me,
        target: Target,
        invite_only: bool,
        now: Instant,
    ) {
        match target {
            Target::Lobby => self.join_lobby(me, now),
            Target::Dm { other_display, .. } => self.refuse(
                me,
                ErrorCode::Forbidden,
                &format!("a direct conversation needs no join: just write to @{other_display}"),
            ),
            Target::Room { key, display } => {
                if self.rooms.by_key.contains_key(&key) {
                    self.join_room(me, key, display, now)
                } else {
                    self.create_room(me, key, display, invite_only, now)
                }
            }
        }
    }

    fn join_lobby(&mut self, me: &Me, now: Instant) {
        let now_ms = self.wall_ms(now);
        if let Some(until) = self.lobby_ban(&me.key, now_ms) {
            let description = match until {
                Some(until) => format!(
                    "you are banned from #lobby until {until} (ms since the Unix epoch; \
                     another {} s)",
                    (until - now_ms).div_ceil(1000)
                ),
                None => "you are banned from #lobby for good".to_owned(),
            };
            return self.refuse(me, ErrorCode::Banned, &description);
        }
        let back = self.rooms.left_lobby.remove(&me.key);
        let ticket = if back {
            self.set_in_lobby(&me.key, true);
            self.record(Write::Member {
                room: LOBBY.into(),
                name: me.key.clone(),
                role: Role::Member,
                muted_until: None,
            })
        } else {
            None
        };
        let frames = self.membership_frames(me, LOBBY, Change::Joined, None, None, None, back);
        self.send_when_saved(ticket, Some(me), frames);
        let name = me.key.clone();
        self.undo_if_unsaved(ticket, Undo::BackInLobby { name });
    }

    /// Joins `key`, which exists; `written` is its name as `me` wrote it
    /// (what a refusal says, so that it tells nothing of the room).
    pub(in crate::server) fn join_room(
        &mut self,
        me: &Me,
        key: Arc<str>,
        written: Arc<str>,
        now: Instant,
    ) {
        let now_ms = self.wall_ms(now);
        let limits = (self.config.max_room_members, self.config.max_rooms_per_name);
        let rooms_of = self.rooms.rooms_of(&me.key);
        let invited = self
            .rooms
            .invited
            .get(&me.key)
            .is_some_and(|rooms| rooms.contains(&key));
        let server_operator = self.rooms.is_operator(&me.key);
        let Some(room) = self.rooms.by_key.get(&key) else {
            return;
        };
        if room.members.contains_key(&me.key) {
            // Joined already: the answer is the room as it is.
            let frames = self.membership_frames(me, &key, Change::Joined, None, None, None, false);
            return self.send_saved(frames);
        }
        let epoch = room.epoch.clone();
        let display = written.clone();
        if let Some(until) = room.ban_of(&me.key, now_ms) {
            let description = match until {
                Some(until) => format!(
                    "you are banned from {display} until {until} (ms since the Unix epoch; \
                     another {} s)",
                    (until - now_ms).div_ceil(1000)
                ),
                None => format!("you are banned from {display} for good"),
            };
            return self.refuse(me, ErrorCode::Banned, &description);
        }
        let owner = room.owner.as_deref() == Some(&*me.key);
        if room.invite_only && !invited && !server_operator && !owner {
            return self.refuse(
                me,
                ErrorCode::Forbidden,
                &format!("{display} is invite-only"),
            );
        }
        if limits.0 > 0 && room.members.len() >= limits.0 {
            return self.refuse(
                me,
                ErrorCode::LimitReached,
                &format!(
                    "{display} is full: at most {} members a room (--max-room-members)",
                    limits.0
                ),
            );
        }
        if limits.1 > 0 && rooms_of >= limits.1 {
            return self.refuse(
                me,
                ErrorCode::LimitReached,
                &format!(
                    "you are in {} rooms already: at most {} a name (--max-rooms-per-name)",
                    rooms_of, limits.1
                ),
            );
        }
        let role = if owner { Role::Owner } else { Role::Member };
        let mut writes = Vec::new();
        if invited {
            writes.push(Write::Uninvite {
                room: key.clone(),
                name: me.key.clone(),
            });
        }
        writes.push(Write::Member {
            room: key.clone(),
            name: me.key.clone(),
            role,
            muted_until: None,
        });
        self.add_member(&key, me, role);
        let ticket = self.record_all(writes);
        let mut frames = self.membership_frames(me, &key, Change::Joined, None, None, None, true);
        frames.extend(self.member_notice(&key, &me.key, &me.display, Change::Joined, now));
        self.send_when_saved(ticket, Some(me), frames);
        let undo = Undo::Joined {
            room: key,
            name: me.key.clone(),
            display: me.display.clone(),
            written,
            epoch,
        };
        self.undo_if_unsaved(ticket, undo);
    }

    fn create_room(
        &mut self,
        me: &Me,
        key: Arc<str>,
        display: Arc<str>,
        invite_only: bool,
        now: Instant,
    ) {
        let config = &self.config;
        let (per_name, max_rooms) = (config.max_rooms_per_name, config.max_rooms);
        let per_address = config.rooms_per_address_per_minute;
        let rooms_of = self.rooms.rooms_of(&me.key);
        if per_name > 0 && rooms_of >= per_name {
            return self.refuse(
                me,
                ErrorCode::LimitReached,
                &format!(
                    "you are in {rooms_of} rooms already: at most {per_name} a name \
                     (--max-rooms-per-name)"
                ),
            );
        }
        if max_rooms > 0 && self.rooms.room_count >= max_rooms {
            return self.refuse(
                me,
                ErrorCode::LimitReached,
                &format!("the server has {max_rooms} rooms, its most (--max-rooms)"),
            );
        }
        let Some(address) = self.connections.get(me.conn).map(|c| c.address.clone()) else {
            return;
        };
        if let Err(wait) = self.rooms.creations.check(&address, now) {
            return self.refuse(
                me,
                ErrorCode::LimitReached,
                &format!(
                    "too many new rooms from your address: at most {per_address} a minute \
                     (--rooms-per-address-per-minute); retry in {} s",
                    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
                ),
            );
        }
        self.rooms.creations.took(&address, now);
        let epoch = self.new_epoch();
        let written_as = display.clone();
        let mut room = Room::new(display.clone(), epoch.clone(), self.config.room_history);
        room.owner = Some(me.key.clone());
        room.invite_only = invite_only;
        self.rooms.by_key.insert(key.clone(), room);
        self.rooms.room_count += 1;
        self.rooms
            .owned
            .entry(me.key.clone())
            .or_default()
            .insert(key.clone());
        self.add_member(&key, me, Role::Owner);
        let ticket = self.record_all(vec![
            Write::Room {
                room: key.clone(),
                display,
                owner: Some(me.key.clone()),
                invite_only,
                topic: None,
                epoch: epoch.clone(),
            },
            Write::Member {
                room: key.clone(),
                name: me.key.clone(),
                role: Role::Owner,
                muted_until: None,
            },
        ]);
        let frames = self.membership_frames(me, &key, Change::Joined, None, None, None, true);
        self.send_when_saved(ticket, Some(me), frames);
        self.undo_if_unsaved(
            ticket,
            Undo::Created {
                room: key,
                name: me.key.clone(),
                display: me.display.clone(),
                written: written_as,
                epoch,
            },
        );
    }

    /// `me` joins `key` as `role` (in memory).
    fn add_member(&mut self, key: &Arc<str>, me: &Me, role: Role) {
        let Some(room) = self.rooms.by_key.get_mut(key) else {
            return;
        };
        room.members.insert(
            me.key.clone(),
            Member {
                display: me.display.clone(),
                role,
                muted_until: None,
            },
        );
        room.invites.remove(&me.key);
        if let Some(invited) = self.rooms.invited.get_mut(&me.key) {
            invited.remove(key);
            if invited.is_empty() {
                self.rooms.invited.remove(&me.key);
            }
        }
        if let Some(removals) = self.rooms.removals.get_mut(&me.key) {
            removals.remove(key);
        }
        self.rooms
            .of_name
            .entry(me.key.clone())
            .or_default()
            .insert(key.clone());
    }

    pub(in crate::server) fn part(
        &mut self,
        me: &Me,
        target: Target,
        reason: Option<String>,
        now: Instant,
    ) {
        match &target {
            Target::Lobby => {
                if !self.rooms.left_lobby.insert(me.key.clone()) {
                    return self.not_a_member(me, &target, false);
                }
                self.set_in_lobby(&me.key, false);
                let ticket = self.record(Write::Unmember {
                    room: LOBBY.into(),
                    name: me.key.clone(),
                    by: None,
                    reason: None,
                });
                let frames =
                    self.membership_frames(me, LOBBY, Change::Left, None, None, None, true);
                self.send_when_saved(ticket, Some(me), frames);
                let name = me.key.clone();
                self.undo_if_unsaved(ticket, Undo::LeftLobby { name });
            }
            Target::Dm { .. } => self.refuse(
                me,
                ErrorCode::Forbidden,
                "a direct conversation cannot be left",
            ),
            Target::Room { key, .. } => {
                if !self.rooms.is_member(&me.key, key) {
                    return self.not_a_member(me, &target, false);
                }
                let reason = reason.map(Arc::from);
                let removal = Removal {
                    change: Change::Left,
                    by: None,
                    reason: reason.clone(),
                };
                let member = self
                    .rooms
                    .by_key
                    .get(key)
                    .and_then(|room| room.members.get(&me.key))
                    .cloned();
                let ticket = self.remove_member(key, &me.key, removal);
                let mut frames =
                    self.membership_frames(me, key, Change::Left, None, reason, None, true);
                frames.extend(self.member_notice(key, &me.key, &me.display, Change::Left, now));
                self.send_when_saved(ticket, Some(me), frames);
                if let Some(member) = member {
                    let (room, name) = (key.clone(), me.key.clone());
                    self.undo_if_unsaved(ticket, Undo::Left { room, name, member });
                }
            }
        }
    }

    /// `name` is no longer in `key` (in memory, and its write); returns the
    /// write's ticket.
    pub(in crate::server) fn remove_member(
        &mut self,
        key: &Arc<str>,
        name: &Arc<str>,
        removal: Removal,
    ) -> Option<super::super::seam::Ticket<Write>> {
        if let Some(room) = self.rooms.by_key.get_mut(key) {
            room.members.remove(name);
        }
        if let Some(rooms) = self.rooms.of_name.get_mut(name) {
            rooms.remove(key);
            if rooms.is_empty() {
                self.rooms.of_name.remove(name);
            }
        }
        let (by, reason) = (removal.by.clone(), removal.reason.clone());
        self.rooms
            .removals
            .entry(name.clone())
            .or_default()
            .insert(key.clone(), removal);
        self.record(Write::Unmember {
            room: key.clone(),
            name: name.clone(),
            by,
            reason,
        })
    }

    /// The `membership` frames of a change of `me`'s membership of `key`:
    /// its own connection's (with `replyTo`), and, when `others`, its
    /// other devices'. The room's state rides along while the name is in
    /// it.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::server) fn membership_frames(
        &mut self,
        me: &Me,
        key: &str,
        change: Change,
        by: Option<Arc<str>>,
        reason: Option<Arc<str>>,
        until: Option<u64>,
        others: bool,
    ) -> Vec<(To, Frame)> {
        let mut frames = Vec::with_capacity(2);
        let own = self.membership_frame(
            key,
            &me.key,
            change,
            &by,
            &reason,
            until,
            me.reply_to.as_deref(),
        );
        frames.push((To::Conn(me.conn), own));
        if others {
            let rest = self.membership_frame(key, &me.key, change, &by, &reason, until, None);
            frames.push((To::Others(me.key.clone(), me.conn), rest));
        }
        frames
    }

    /// One `membership` frame for the name keyed `name`.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::server) fn membership_frame(
        &mut self,
        key: &str,
        name: &str,
        change: Change,
        by: &Option<Arc<str>>,
        reason: &Option<Arc<str>>,
        until: Option<u64>,
        reply_to: Option<&str>,
    ) -> Frame {
        let in_it = self.rooms.is_member(name, key);
        let state = if in_it {
            self.room_state(key, name)
        } else {
            None
        };
        let room = match (self.rooms.by_key.get(key), key == LOBBY) {
            (Some(room), false) => super::wire_name(key, room, name),
            _ => LOBBY.into(),
        };
        let id = id::message_id(&mut self.rng);
        Frame::encode(&ServerMessage::Membership {
            id: id.into(),
            reply_to: reply_to.map(Into::into),
            room: (*room).into(),
            change,
            by: by.as_deref().map(Into::into),
            reason: reason.as_deref().map(Into::into),
            until,
            state,
        })
    }

    /// A `member` notice of `who` (`display`) joining or leaving `key`, for
    /// its other members, within the room's budget (held for a summary past
    /// it: see [`send_room_presence`](Self::send_room_presence)).
    pub(in crate::server) fn member_notice(
        &mut self,
        key: &str,
        who: &str,
        display: &str,
        change: Change,
        now: Instant,
    ) -> Vec<(To, Frame)> {
        let (per_second, burst) = (self.config.presence_rate, self.config.presence_burst);
        let timestamp = self.wall_ms(now);
        let Some(room) = self.rooms.by_key.get_mut(key) else {
            return Vec::new();
        };
        let pacing = room
            .member_notices
            .get_or_insert_with(|| Presence::new(per_second, burst));
        let notice = if change == Change::Left {
            pacing.left(display.into(), now)
        } else {
            pacing.joined(display.into(), now)
        };
        match notice {
            Notice::Send => {}
            Notice::Held => return Vec::new(),
            Notice::HeldUntil(at) => {
                let room = key.into();
                self.timers.schedule(at, Timer::RoomPresence { room });
                return Vec::new();
            }
        }
        let others: Vec<Arc<str>> = room
            .members
            .keys()
            .filter(|name| ***name != *who)
            .cloned()
            .collect();
        if others.is_empty() {
            return Vec::new();
        }
        let display_room = room.display.clone();
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::Member {
            id: id.into(),
            room: (*display_room).into(),
            username: display.into(),
            change,
            timestamp,
        });
        others
            .into_iter()
            .map(|name| (To::Name(name), frame.clone()))
            .collect()
    }

    /// `key`'s budget may allow a notice again: its current members (and
    /// only they) get the summary of the `member` notices held, as one
    /// `presence` frame with `room`. A room gone by then tells nobody.
    pub(in crate::server) fn send_room_presence(&mut self, key: &Arc<str>, now: Instant) {
        let timestamp = self.wall_ms(now);
        let Some(room) = self.rooms.by_key.get_mut(key) else {
            return;
        };
        let Some(pacing) = &mut room.member_notices else {
            return;
        };
        let summary = match pacing.due(now) {
            Ok(summary) => summary,
            Err(later) => {
                if let Some(at) = later {
                    let room = key.clone();
                    self.timers.schedule(at, Timer::RoomPresence { room });
                }
                return;
            }
        };
        // Nobody needs to hear of their own join alone.
        let members: Vec<Arc<str>> = room
            .members
            .iter()
            .filter(|(_, member)| !only_joined(&summary, &member.display))
            .map(|(name, _)| name.clone())
            .collect();
        if members.is_empty() {
            return;
        }
        let display_room = room.display.clone();
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::Presence {
            id: id.into(),
            room: Some((*display_room).into()),
            joined: listed(&summary.joined),
            joined_count: summary.joined_count,
            left: listed(&summary.left),
            left_count: summary.left_count,
            timestamp,
        });
        for name in members {
            self.send_to_name(&name, frame.clone());
        }
    }
}

/// Whether `summary` tells nothing but `display`'s own join.
fn only_joined(summary: &Summary, display: &str) -> bool {
    summary.joined_count == 1
        && summary.left_count == 0
        && summary
            .joined
            .front()
            .is_some_and(|name| **name == *display)
}
