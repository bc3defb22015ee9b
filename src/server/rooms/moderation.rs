//! The acts of owners and operators (and of server operators, who are
//! operators of every room): each changes the room at once (its writes
//! leave first), then is told to the room as a `notice` numbered in the
//! room's sequence and kept in its history, sent once saved; the name it
//! removes gets `membership` kicked or banned after the notice. An act
//! whose notice is not saved (nor, then, its writes) is taken back: its
//! actor is told `unavailable`, and that must be true.
//!
//! Ranks: server operator > owner > operator > member. Acts on a name
//! (kick, ban, mute, unmute, deop) need a rank above the target's, counting
//! only the owner and server operators as ranked: so an operator cannot act
//! on the owner or a server operator, but may act on another operator.
//! Only the owner (or a server operator) may `op` and `deop`. The lobby is
//! moderated by server operators only (see `lobby`).

use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use super::super::seam::{PendingMessage, RoomMessage, To};
use super::{Me, NoticeBody, Removal, Target, Undo, seconds_ms};
use crate::protocol::{Act, Change, ClientMessage, ErrorCode, Role};
use crate::server::{Server, Write};
use crate::username::Username;
use crate::{id, text};

/// The longest topic, in characters.
const TOPIC_MAX_CHARS: usize = 500;

/// An act, as asked.
pub(super) struct Asked {
    pub(super) act: Act,
    pub(super) username: Option<String>,
    pub(super) reason: Option<String>,
    pub(super) seconds: Option<u64>,
    pub(super) topic: Option<String>,
    pub(super) invite_only: Option<bool>,
}

impl Asked {
    fn of(message: ClientMessage) -> Option<Asked> {
        let asked = |act, username| Asked {
            act,
            username: Some(username),
            reason: None,
            seconds: None,
            topic: None,
            invite_only: None,
        };
        Some(match message {
            ClientMessage::Topic { topic, .. } => Asked {
                topic: Some(topic),
                username: None,
                ..asked(Act::Topic, String::new())
            },
            ClientMessage::Mode { invite_only, .. } => Asked {
                invite_only: Some(invite_only),
                username: None,
                ..asked(Act::Mode, String::new())
            },
            ClientMessage::Invite { username, .. } => asked(Act::Invite, username),
            ClientMessage::Kick {
                username, reason, ..
            } => Asked {
                reason,
                ..asked(Act::Kick, username)
            },
            ClientMessage::Ban {
                username,
                seconds,
                reason,
                ..
            } => Asked {
                reason,
                seconds,
                ..asked(Act::Ban, username)
            },
            ClientMessage::Unban { username, .. } => asked(Act::Unban, username),
            ClientMessage::Mute {
                username, seconds, ..
            } => Asked {
                seconds,
                ..asked(Act::Mute, username)
            },
            ClientMessage::Unmute { username, .. } => asked(Act::Unmute, username),
            ClientMessage::Op { username, .. } => asked(Act::Op, username),
            ClientMessage::Deop { username, .. } => asked(Act::Deop, username),
            _ => return None,
        })
    }
}

/// Ranks of who acts and who is acted on.
const SERVER_OPERATOR: u8 = 3;
const OWNER: u8 = 2;
const OPERATOR: u8 = 1;

impl<R: CryptoRng> Server<R> {
    pub(in crate::server) fn moderate(
        &mut self,
        me: &Me,
        target: Target,
        message: ClientMessage,
        now: Instant,
    ) {
        let Some(asked) = Asked::of(message) else {
            return;
        };
        let key = match &target {
            Target::Lobby => return self.moderate_lobby(me, asked, now),
            Target::Dm { key, .. } => {
                if !self.rooms.is_member(&me.key, key) {
                    return self.not_a_member(me, &target, false);
                }
                return self.refuse(
                    me,
                    ErrorCode::Forbidden,
                    "a direct conversation has no operators",
                );
            }
            Target::Room { key, .. } => key.clone(),
        };
        let server_operator = self.rooms.is_operator(&me.key);
        let Some(room) = self.rooms.by_key.get(&key) else {
            return self.not_a_member(me, &target, false);
        };
        let member = room.members.get(&me.key);
        if member.is_none() && room.invite_only && !server_operator {
            return self.not_a_member(me, &target, false);
        }
        let shown = room.display.clone();
        let rank = if server_operator {
            SERVER_OPERATOR
        } else {
            match member.map(|m| m.role) {
                Some(Role::Owner) => OWNER,
                Some(Role::Operator) => OPERATOR,
                _ => 0,
            }
        };
        let needed = match asked.act {
            Act::Op | Act::Deop => OWNER,
            _ => OPERATOR,
        };
        if rank < needed {
            let who = if needed == OWNER {
                "the owner"
            } else {
                "an operator"
            };
            return self.refuse(
                me,
                ErrorCode::Forbidden,
                &format!("only {who} of {shown} may do that"),
            );
        }
        // The name acted on, if any: its key and name as shown.
        let on = match &asked.username {
            None => None,
            Some(raw) => match Username::parse(raw, self.config.max_username_chars) {
                Ok(name) => {
                    let key: Arc<str> = name.key.into();
                    let display = self.display_of(&key).unwrap_or_else(|| name.display.into());
                    Some((key, display))
                }
                Err(e) => {
                    return self.refuse(me, ErrorCode::InvalidUsername, &e.to_string());
                }
            },
        };
        self.act(me, key, shown, rank, asked, on, now);
    }

    /// An act `me` (of `rank`) may do in `key` (shown as `shown`), on `on`.
    #[allow(clippy::too_many_arguments)]
    fn act(
        &mut self,
        me: &Me,
        key: Arc<str>,
        shown: Arc<str>,
        rank: u8,
        asked: Asked,
        on: Option<(Arc<str>, Arc<str>)>,
        now: Instant,
    ) {
        let now_ms = self.wall_ms(now);
        let Some(room) = self.rooms.by_key.get(&key) else {
            return;
        };
        let target_member = on.as_ref().and_then(|(k, _)| room.members.get(k)).cloned();
        let target_rank = on.as_ref().map_or(0, |(k, _)| {
            if self.rooms.is_operator(k) {
                SERVER_OPERATOR
            } else if room.owner.as_deref() == Some(&**k) {
                OWNER
            } else {
                0
            }
        });
        let held = on
            .as_ref()
            .is_some_and(|(k, _)| self.display_of(k).is_some());
        let on_name = on.as_ref().map(|(_, d)| d.clone()).unwrap_or_default();
        let acts_on_rank = matches!(
            asked.act,
            Act::Kick | Act::Ban | Act::Mute | Act::Unmute | Act::Deop | Act::Op
        );
        if acts_on_rank && target_rank >= rank && target_rank > 0 {
            let whom = if target_rank == OWNER {
                format!("{on_name} owns {shown}")
            } else {
                format!("{on_name} is a server operator")
            };
            return self.refuse(
                me,
                ErrorCode::Forbidden,
                &format!("{whom}: you cannot do that"),
            );
        }
        if asked.act == Act::Op && target_rank == OWNER {
            return self.refuse(
                me,
                ErrorCode::Forbidden,
                &format!("{on_name} owns {shown}, which is more than an operator"),
            );
        }
        // Every act naming a name needs it held (a released name's bans
        // stay, but no one can be told of them).
        if on.is_some() && !held {
            return self.refuse(
                me,
                ErrorCode::NoSuchUser,
                &format!("no one holds the name \"{on_name}\""),
            );
        }
        let needs_member = matches!(
            asked.act,
            Act::Kick | Act::Mute | Act::Unmute | Act::Op | Act::Deop
        );
        if needs_member && target_member.is_none() {
            return self.refuse(
                me,
                ErrorCode::NotAMember,
                &format!("{on_name} is not in {shown}"),
            );
        }
        let mut body = NoticeBody {
            act: asked.act,
            by: me.display.to_string(),
            username: on.as_ref().map(|(_, d)| d.to_string()),
            reason: asked.reason.clone(),
            until: None,
            topic: None,
            invite_only: None,
        };
        let until_ms = asked.seconds.map(|s| now_ms.saturating_add(seconds_ms(s)));
        // Done in memory now (what follows sees it), taken back if its
        // notice is not saved: the notice is appended after the act's
        // writes, in the same commit, so its answer is the act's.
        let before = self.before_act(&key, on.as_ref().map(|(k, _)| k));
        let mut then = Vec::new();
        let (on_key, _) = on.clone().unwrap_or_default();
        match asked.act {
            Act::Topic => {
                let topic = asked.topic.unwrap_or_default();
                let topic = topic.trim();
                if topic.chars().count() > TOPIC_MAX_CHARS {
                    return self.refuse(
                        me,
                        ErrorCode::MessageTooLong,
                        &format!("a topic is at most {TOPIC_MAX_CHARS} characters"),
                    );
                }
                let topic: Option<Arc<str>> =
                    (!topic.is_empty()).then(|| text::neutralise(topic).into());
                body.topic = topic.as_deref().map(str::to_owned);
                if let Some(room) = self.rooms.by_key.get_mut(&key) {
                    room.topic = topic;
                }
                self.record_room(&key);
            }
            Act::Mode => {
                let invite_only = asked.invite_only.unwrap_or(false);
                body.invite_only = Some(invite_only);
                if let Some(room) = self.rooms.by_key.get_mut(&key) {
                    room.invite_only = invite_only;
                }
                self.record_room(&key);
            }
            Act::Invite => {
                if target_member.is_some() {
                    return self.refuse(
                        me,
                        ErrorCode::Forbidden,
                        &format!("{on_name} is in {shown} already"),
                    );
                }
                let max = self.config.max_room_members;
                let members = self.rooms.by_key.get(&key).map_or(0, |r| r.members.len());
                if max > 0 && members >= max {
                    return self.refuse(
                        me,
                        ErrorCode::LimitReached,
                        &format!(
                            "{shown} is full: at most {max} members a room (--max-room-members)"
                        ),
                    );
                }
                if let Some(room) = self.rooms.by_key.get_mut(&key) {
                    room.invites.insert(on_key.clone());
                }
                self.rooms
                    .invited
                    .entry(on_key.clone())
                    .or_default()
                    .insert(key.clone());
                self.record(Write::Invite {
                    room: key.clone(),
                    name: on_key.clone(),
                });
                let by = Some(me.display.clone());
                let frame =
                    self.membership_frame(&key, &on_key, Change::Invited, &by, &None, None, None);
                then.push((To::Name(on_key.clone()), frame));
            }
            Act::Kick | Act::Ban => {
                let (change, until) = if asked.act == Act::Ban {
                    (Change::Banned, until_ms)
                } else {
                    (Change::Kicked, None)
                };
                let by: Option<Arc<str>> = Some(me.display.clone());
                let reason: Option<Arc<str>> = asked.reason.as_deref().map(Arc::from);
                if target_member.is_some() {
                    let removal = Removal {
                        change,
                        by: by.clone(),
                        reason: reason.clone(),
                    };
                    self.remove_member(&key, &on_key, removal);
                }
                if asked.act == Act::Ban {
                    body.until = until;
                    if let Some(room) = self.rooms.by_key.get_mut(&key) {
                        room.bans.insert(on_key.clone(), until);
                        if room.invites.remove(&on_key) {
                            self.record(Write::Uninvite {
                                room: key.clone(),
                                name: on_key.clone(),
                            });
                        }
                    }
                    if let Some(invited) = self.rooms.invited.get_mut(&on_key) {
                        invited.remove(&key);
                    }
                    self.record(Write::Ban {
                        room: key.clone(),
                        name: on_key.clone(),
                        until,
                    });
                }
                if target_member.is_some() || asked.act == Act::Ban {
                    let frame =
                        self.membership_frame(&key, &on_key, change, &by, &reason, until, None);
                    then.push((To::Name(on_key.clone()), frame));
                }
                if let Some(member) = &target_member {
                    then.extend(self.member_notice(
                        &key,
                        &on_key,
                        &member.display,
                        Change::Left,
                        now,
                    ));
                }
            }
            Act::Unban => {
                if let Some(room) = self.rooms.by_key.get_mut(&key)
                    && room.bans.remove(&on_key).is_none()
                {
                    return self.refuse(
                        me,
                        ErrorCode::Forbidden,
                        &format!("{on_name} is not banned from {shown}"),
                    );
                }
                self.record(Write::Unban {
                    room: key.clone(),
                    name: on_key.clone(),
                });
            }
            Act::Mute | Act::Unmute | Act::Op | Act::Deop => {
                let Some(mut member) = target_member else {
                    return;
                };
                match asked.act {
                    Act::Mute => {
                        member.muted_until = Some(until_ms.unwrap_or(u64::MAX));
                        body.until = until_ms;
                    }
                    Act::Unmute => member.muted_until = None,
                    Act::Op => member.role = Role::Operator,
                    _ => member.role = Role::Member,
                }
                self.record(Write::Member {
                    room: key.clone(),
                    name: on_key.clone(),
                    role: member.role,
                    muted_until: member.muted_until,
                });
                if let Some(room) = self.rooms.by_key.get_mut(&key) {
                    room.members.insert(on_key.clone(), member);
                }
            }
            _ => return,
        }
        let text = serde_json::to_string(&body).unwrap_or_default();
        let pending = PendingMessage {
            conn: me.conn,
            // Not for an own copy (a notice has none): for the refusal if
            // the notice cannot be saved.
            reply_to: me.reply_to.clone(),
            id: id::message_id(&mut self.rng).into(),
            timestamp: now_ms,
            username: me.display.clone(),
            text: text.into(),
            room: Some(Box::new(RoomMessage {
                key,
                notice: Some(Box::new(body)),
                then,
                undo: Some(Undo::Acted(Box::new(before))),
            })),
        };
        self.append_room(pending);
    }

    /// Writes `key`'s settings (an upsert).
    fn record_room(&mut self, key: &Arc<str>) {
        let Some(room) = self.rooms.by_key.get(key) else {
            return;
        };
        let write = Write::Room {
            room: key.clone(),
            display: room.display.clone(),
            owner: room.owner.clone(),
            invite_only: room.invite_only,
            topic: room.topic.clone(),
            epoch: room.epoch.clone(),
        };
        self.record(write);
    }
}
