//! v3: the room commands a user types (`/join`, `/part`, `/msg`, `/query`,
//! `/rooms`, `/names`, `/unread`, `/topic`, moderation, `/mode`), and what
//! they say on a server without rooms.

use rand::Rng;

use super::command::{Effect, Moderation};
use super::rooms::{LOBBY, is_lobby};
use super::v3::Request;
use super::{Client, Line};
use crate::id;
use crate::protocol::{ClientMessage, Version};

/// Most room requests remembered at once (see `request`).
const REQUESTS_KEPT: usize = 64;

impl<R: Rng> Client<R> {
    // ---- the user's commands ----

    /// A room command typed; `true` if `effect` was one.
    pub(super) fn room_command(&mut self, effect: Effect) -> bool {
        let name = match &effect {
            Effect::Join(_) => "/join",
            Effect::Part { .. } => "/part",
            Effect::Msg { .. } => "/msg",
            Effect::Query(_) => "/query",
            Effect::Rooms => "/rooms",
            Effect::Names => "/names",
            Effect::Unread => "/unread",
            Effect::Topic(_) => "/topic",
            Effect::Moderate(_) => "this command",
            Effect::Mode(_) => "/mode",
            _ => return false,
        };
        if let Some(why) = self.rooms_unavailable(name) {
            self.show(Line::Info(why));
            return true;
        }
        match effect {
            Effect::Join(room) => self.join(&room),
            Effect::Part { room, reason } => self.part(room, reason),
            Effect::Msg { to, text } => self.say_to(text, Some(format!("@{to}"))),
            Effect::Query(name) => {
                self.rooms.switch(&format!("@{name}"));
                self.show(Line::Status(format!(
                    "talking to {name} in direct messages; /join #ROOM or /join {LOBBY} to go back"
                )));
            }
            Effect::Rooms => {
                // What was read here counts in the answer.
                self.send_reads();
                self.request(ClientMessage::ListRooms { id: String::new() }, "/rooms");
            }
            Effect::Names => self.names(),
            Effect::Unread => self.show_unread(),
            Effect::Topic(topic) => self.topic(topic),
            Effect::Moderate(act) => self.moderate(act),
            Effect::Mode(invite_only) => {
                let room = self.rooms.current_name().to_owned();
                self.request(
                    ClientMessage::Mode {
                        id: String::new(),
                        room,
                        invite_only,
                    },
                    "/mode",
                );
            }
            _ => {}
        }
        true
    }

    /// Why a room command cannot run now, if it cannot.
    fn rooms_unavailable(&self, what: &str) -> Option<String> {
        if !self.is_online() {
            return Some(format!(
                "not connected: {what} works once the connection is back"
            ));
        }
        let version = match self.version {
            Version::V3 => return None,
            Version::V2 => "v2",
            Version::V1 => "v1",
        };
        Some(format!(
            "this server has no rooms or direct messages (it speaks protocol {version}): \
             {what} needs a server that speaks protocol v3"
        ))
    }

    /// Sends `message` under a fresh id, its answer (or refusal) said as
    /// `what`'s.
    fn request(&mut self, mut message: ClientMessage, what: &'static str) {
        let id = id::message_id(&mut self.rng);
        *message.id_mut() = id.clone();
        // An act is answered by the room's notice, which names no request:
        // only the latest few are remembered.
        if self.requests.len() >= REQUESTS_KEPT {
            self.requests.remove(0);
        }
        self.requests.push((id, Request::Shown(what)));
        self.send(&message);
    }

    /// `/join #room`: switches to it if already in it, else joins it (the
    /// prompt shows it at once; a refusal goes back).
    pub(super) fn join(&mut self, room: &str) {
        let before = self.rooms.current_name().to_owned();
        if self.rooms.get(room).is_some_and(|r| r.epoch.is_some()) || is_lobby(Some(room)) {
            let in_lobby = is_lobby(Some(room));
            if !in_lobby || self.rooms.get(LOBBY).is_some() {
                self.rooms.switch(room);
                let last = self.rooms.get(room).map_or(0, |r| r.last_seq);
                if last > 0 {
                    self.mark_read(self.rooms.current_name().to_owned().as_str(), last);
                }
                let name = self.rooms.current_name().to_owned();
                let topic = match self.rooms.get(&name).and_then(|r| r.topic.clone()) {
                    Some(topic) => format!(" (topic: {topic})"),
                    None => String::new(),
                };
                return self.show(Line::Status(format!("now talking in {name}{topic}")));
            }
        }
        self.rooms.switch(room);
        let id = id::message_id(&mut self.rng);
        self.requests.push((
            id.clone(),
            Request::Join {
                room: room.to_owned(),
                before,
            },
        ));
        self.send(&ClientMessage::Join {
            id,
            room: room.to_owned(),
            invite_only: None,
        });
    }

    /// `/part [#room] [reason]`: leaves a room (a DM is only closed here).
    fn part(&mut self, room: Option<String>, reason: Option<String>) {
        let room = room.unwrap_or_else(|| self.rooms.current_name().to_owned());
        if let Some(other) = room.strip_prefix('@') {
            // A DM has no membership to leave: it is only not current.
            if self.rooms.is_current(Some(&room)) {
                self.rooms.switch(LOBBY);
            }
            return self.show(Line::Status(format!(
                "back in {LOBBY}; direct messages from {other} still reach you"
            )));
        }
        let id = id::message_id(&mut self.rng);
        self.requests
            .push((id.clone(), Request::Part(room.clone())));
        if self.rooms.is_current(Some(&room)) {
            self.rooms.switch(LOBBY);
        }
        self.send(&ClientMessage::Part { id, room, reason });
    }

    /// `/names` (and `/who` in a room): the current room's members; in the
    /// lobby, who is online.
    pub(super) fn names(&mut self) {
        match self.rooms.target() {
            None => self.who(),
            Some(room) if room.starts_with('@') => self.show(Line::Info(format!(
                "{room} is a direct message between you and {}",
                room.trim_start_matches('@')
            ))),
            Some(room) => self.request(
                ClientMessage::ListMembers {
                    id: String::new(),
                    room,
                },
                "/names",
            ),
        }
    }

    /// `/unread`: where unread messages wait.
    fn show_unread(&mut self) {
        let unread = self.rooms.unread();
        if unread.is_empty() {
            return self.show(Line::Info("nothing unread".into()));
        }
        let listed: Vec<String> = unread
            .iter()
            .map(|(room, count, mentioned)| {
                let mention = if *mentioned { ", mentions you" } else { "" };
                format!("{room} {count}{mention}")
            })
            .collect();
        self.show(Line::Info(format!("unread: {}", listed.join("; "))));
    }

    /// `/topic [TEXT]`: shows the current room's topic, or sets it.
    fn topic(&mut self, topic: Option<String>) {
        let room = self.rooms.current_name().to_owned();
        let Some(topic) = topic else {
            let line = match self.rooms.get(&room).and_then(|r| r.topic.clone()) {
                Some(topic) => format!("{room}'s topic: {topic}"),
                None => format!("{room} has no topic; /topic TEXT sets one"),
            };
            return self.show(Line::Info(line));
        };
        self.request(
            ClientMessage::Topic {
                id: String::new(),
                room,
                topic,
            },
            "/topic",
        );
    }

    /// A moderation act on a name in the current room.
    fn moderate(&mut self, act: Moderation) {
        let room = self.rooms.current_name().to_owned();
        if room.starts_with('@') {
            return self.show(Line::Info(
                "a direct message has no operators: /join a room first".into(),
            ));
        }
        let id = String::new();
        let (message, what) = match act {
            Moderation::Invite(username) => {
                (ClientMessage::Invite { id, room, username }, "/invite")
            }
            Moderation::Kick { name, reason } => (
                ClientMessage::Kick {
                    id,
                    room,
                    username: name,
                    reason,
                },
                "/kick",
            ),
            Moderation::Ban { name, seconds } => (
                ClientMessage::Ban {
                    id,
                    room,
                    username: name,
                    seconds,
                    reason: None,
                },
                "/ban",
            ),
            Moderation::Unban(username) => (ClientMessage::Unban { id, room, username }, "/unban"),
            Moderation::Mute { name, seconds } => (
                ClientMessage::Mute {
                    id,
                    room,
                    username: name,
                    seconds,
                },
                "/mute",
            ),
            Moderation::Unmute(username) => {
                (ClientMessage::Unmute { id, room, username }, "/unmute")
            }
            Moderation::Op(username) => (ClientMessage::Op { id, room, username }, "/op"),
            Moderation::Deop(username) => (ClientMessage::Deop { id, room, username }, "/deop"),
        };
        self.request(message, what);
    }
}
