//! Server operators moderate the lobby: its topic, and kicking, banning
//! and muting names in it. The lobby is v2's room, so v1 and v2 connections
//! see nothing of it and are held to none of it (they never get a v3 frame
//! or error code): a lobby notice goes to the v3 devices in the lobby only,
//! and is neither numbered nor kept (its `seq` is the lobby's latest
//! message's), so that v2's numbering and history stay exactly as they
//! were. Its topic, bans and mutes are saved as seam.rs says (the room
//! `#lobby`; a kick leaves as `Unmember`, as a `part` does), and an act
//! not saved is taken back (its actor is told `unavailable`).

use std::sync::Arc;
use std::time::Instant;

use rand::CryptoRng;

use super::super::seam::To;
use super::moderation::Asked;
use super::{LOBBY, Me, Removal, Undo, seconds_ms};
use crate::protocol::{Act, Change, ErrorCode, Role, ServerMessage};
use crate::server::{Frame, Server, Write};
use crate::username::Username;
use crate::{id, text};

impl<R: CryptoRng> Server<R> {
    pub(super) fn moderate_lobby(&mut self, me: &Me, asked: Asked, now: Instant) {
        if !self.rooms.is_operator(&me.key) {
            return self.refuse(
                me,
                ErrorCode::Forbidden,
                "only a server operator may moderate #lobby",
            );
        }
        if matches!(asked.act, Act::Mode | Act::Invite | Act::Op | Act::Deop) {
            return self.refuse(
                me,
                ErrorCode::Forbidden,
                "#lobby is open to every name and has no operators but the server's",
            );
        }
        let on = match &asked.username {
            None => None,
            Some(raw) => match Username::parse(raw, self.config.max_username_chars) {
                Ok(name) => {
                    let Some(display) = self.display_of(&name.key) else {
                        return self.refuse(
                            me,
                            ErrorCode::NoSuchUser,
                            &format!("no one holds the name \"{}\"", name.display),
                        );
                    };
                    Some((Arc::<str>::from(name.key), display))
                }
                Err(e) => return self.refuse(me, ErrorCode::InvalidUsername, &e.to_string()),
            },
        };
        let (on_key, on_name) = on.clone().unwrap_or_default();
        if on.is_some() && self.rooms.is_operator(&on_key) {
            return self.refuse(
                me,
                ErrorCode::Forbidden,
                &format!("{on_name} is a server operator: you cannot do that"),
            );
        }
        let now_ms = self.wall_ms(now);
        let until = asked.seconds.map(|s| now_ms.saturating_add(seconds_ms(s)));
        let in_lobby = !self.rooms.left_lobby.contains(&on_key);
        let by: Option<Arc<str>> = Some(me.display.clone());
        let reason: Option<Arc<str>> = asked.reason.as_deref().map(Arc::from);
        let before = self.before_act(&LOBBY.into(), on.as_ref().map(|(k, _)| k));
        let mut topic = None;
        let mut then = Vec::new();
        // Every act but a kick writes the lobby's row first: its bans and
        // mutes are loaded with it.
        let mut writes = Vec::new();
        if asked.act != Act::Kick {
            writes.push(Write::Room {
                room: LOBBY.into(),
                display: LOBBY.into(),
                owner: None,
                invite_only: false,
                topic: self.rooms.lobby_topic.clone(),
                epoch: self.epoch.clone(),
            });
        }
        let mute = |until: u64| Write::Member {
            room: LOBBY.into(),
            name: on_key.clone(),
            role: Role::Member,
            muted_until: Some(until),
        };
        match asked.act {
            Act::Topic => {
                let written = asked.topic.unwrap_or_default();
                let written = written.trim();
                let new: Option<Arc<str>> =
                    (!written.is_empty()).then(|| text::neutralise(written).into());
                topic = new.clone();
                if let Some(Write::Room { topic, .. }) = writes.first_mut() {
                    topic.clone_from(&new);
                }
                self.rooms.lobby_topic = new;
            }
            Act::Kick | Act::Ban => {
                let change = if asked.act == Act::Ban {
                    self.rooms.lobby_bans.insert(on_key.clone(), until);
                    writes.push(Write::Ban {
                        room: LOBBY.into(),
                        name: on_key.clone(),
                        until,
                    });
                    Change::Banned
                } else if in_lobby {
                    Change::Kicked
                } else {
                    return self.refuse(
                        me,
                        ErrorCode::NotAMember,
                        &format!("{on_name} is not in #lobby"),
                    );
                };
                if in_lobby {
                    self.rooms.left_lobby.insert(on_key.clone());
                    self.set_in_lobby(&on_key, false);
                    let removal = Removal {
                        change,
                        by: by.clone(),
                        reason: reason.clone(),
                    };
                    self.rooms
                        .removals
                        .entry(on_key.clone())
                        .or_default()
                        .insert(LOBBY.into(), removal);
                    writes.push(Write::Unmember {
                        room: LOBBY.into(),
                        name: on_key.clone(),
                        by: by.clone(),
                        reason: reason.clone(),
                    });
                }
                let until = if change == Change::Banned {
                    until
                } else {
                    None
                };
                let frame =
                    self.membership_frame(LOBBY, &on_key, change, &by, &reason, until, None);
                then.push((To::Name(on_key.clone()), frame));
            }
            Act::Unban => {
                if self.rooms.lobby_bans.remove(&on_key).is_none() {
                    return self.refuse(
                        me,
                        ErrorCode::Forbidden,
                        &format!("{on_name} is not banned from #lobby"),
                    );
                }
                writes.push(Write::Unban {
                    room: LOBBY.into(),
                    name: on_key.clone(),
                });
            }
            Act::Mute => {
                let until = until.unwrap_or(u64::MAX);
                self.rooms.lobby_mutes.insert(on_key.clone(), until);
                writes.push(mute(until));
            }
            Act::Unmute => {
                self.rooms.lobby_mutes.remove(&on_key);
                writes.push(mute(0));
            }
            _ => return,
        }
        let ticket = self.record_all(writes);
        let id = id::message_id(&mut self.rng);
        let frame = Frame::encode(&ServerMessage::Notice {
            id: id.into(),
            room: LOBBY.into(),
            seq: self.history.next_seq() - 1,
            timestamp: now_ms,
            act: asked.act,
            by: (*me.display).into(),
            username: on.as_ref().map(|(_, d)| (**d).into()),
            reason: asked.reason.as_deref().map(Into::into),
            until: if matches!(asked.act, Act::Ban | Act::Mute) {
                until
            } else {
                None
            },
            topic: topic.as_deref().map(Into::into),
            invite_only: None,
        });
        let mut frames = Vec::new();
        let mut told_actor = false;
        for (name, devices) in &self.rooms.devices {
            if self.rooms.left_lobby.contains(name) {
                continue;
            }
            told_actor |= devices.contains(&me.conn);
            frames.push((To::Name(name.clone()), frame.clone()));
        }
        if !told_actor {
            frames.push((To::Conn(me.conn), frame));
        }
        frames.extend(then);
        self.send_when_saved(ticket, Some(me), frames);
        self.undo_if_unsaved(ticket, Undo::Acted(Box::new(before)));
    }

    /// Until when the name keyed `name` is muted in the lobby, at `now_ms`.
    pub(in crate::server) fn lobby_muted_until(&self, name: &str, now_ms: u64) -> Option<u64> {
        self.rooms
            .lobby_mutes
            .get(name)
            .copied()
            .filter(|&until| until > now_ms)
    }

    /// Whether (and until when) the name keyed `name` is banned from the
    /// lobby, at `now_ms`.
    pub(in crate::server) fn lobby_ban(&self, name: &str, now_ms: u64) -> Option<Option<u64>> {
        self.rooms
            .lobby_bans
            .get(name)
            .copied()
            .filter(|until| until.is_none_or(|until| until > now_ms))
    }
}
