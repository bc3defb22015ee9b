//! v3: what the server says of rooms and direct messages (their state at
//! login, memberships, joins and leaves, moderation, member and room
//! lists, read markers), each room's catch-up, the labels of lines and the
//! read markers to send. The commands are in `room_commands`.

use std::time::Instant;

use rand::Rng;

use super::link::Link;
use super::room_text::{because, notice_text, room_summary};
use super::rooms::{self, LOBBY, is_lobby};
use super::{Client, Event, Exit, Line, Mode, Output, describe, outbox, plural};
use crate::id;
use crate::protocol::{
    Act, Change, ClientMessage, ErrorCode, MemberEntry, Role, RoomChange, RoomState, ServerMessage,
    Version,
};

/// What a v3 login's `rooms` said, kept until the login completes.
#[derive(Debug)]
pub(super) struct LoginRooms {
    pub(super) rooms: Vec<RoomState<'static>>,
    pub(super) changes: Vec<RoomChange<'static>>,
}

/// A room request sent and not answered yet, by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// `/join`: the room that was current before, to go back to if refused.
    Join {
        room: String,
        before: String,
    },
    Part(String),
    /// Whose answer is shown (a `/rooms`, `/names`, or an act).
    Shown(&'static str),
}

impl<R: Rng> Client<R> {
    // ---- getters ----

    /// What the prompt shows: the current room or DM (`#dev> `, `@bob> `),
    /// or the name in the lobby (`alice> `).
    pub fn prompt(&self) -> String {
        match self.rooms.target() {
            Some(room) => format!("{room}> "),
            None => format!("{}> ", self.username()),
        }
    }

    /// The rooms Tab completes after `#`: `None` when the server has none.
    fn completable_rooms(&self) -> Option<Vec<String>> {
        (self.version == Version::V3).then(|| {
            self.rooms
                .completable()
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
    }

    /// Keeps the rooms of the completion current.
    pub(super) fn share_rooms(&mut self) {
        let rooms = self.completable_rooms();
        self.roster
            .set_rooms(rooms.as_ref().map(|r| r.iter().map(String::as_str)));
    }

    // ---- the login ----

    /// `rooms`, after `loginMessage`: kept until the login completes; if
    /// the name left the lobby, no lobby `history` follows and this
    /// completes it.
    pub(super) fn on_rooms(
        &mut self,
        rooms: Vec<RoomState<'static>>,
        changes: Vec<RoomChange<'static>>,
        now: Instant,
    ) {
        let Link::LoggingIn(login) = &mut self.link else {
            return;
        };
        let in_lobby = rooms.iter().any(|state| is_lobby(Some(&state.room)));
        login.rooms = Some(LoginRooms { rooms, changes });
        if !in_lobby {
            let epoch = self.seen.epoch.clone();
            self.on_history(Vec::new(), true, epoch.as_deref(), None, now);
        }
    }

    /// Once logged in: the rooms the server says this name is in, what
    /// changed while away, and what the user asked for (`--room`).
    pub(super) fn rooms_after_login(&mut self, login: Option<LoginRooms>, returning: bool) {
        if self.version != Version::V3 {
            if let Some(room) = self.config.room.clone() {
                self.no_rooms_for(&room);
            }
            return;
        }
        let LoginRooms { rooms, changes } = login.unwrap_or(LoginRooms {
            rooms: Vec::new(),
            changes: Vec::new(),
        });
        for state in &rooms {
            self.rooms.update(state);
        }
        self.resend_to_quiet_rooms();
        let known: Vec<String> = self.rooms.all().map(|room| room.name.clone()).collect();
        for room in known {
            if !rooms
                .iter()
                .any(|s| rooms::key(&s.room) == rooms::key(&room))
                && !self.rooms.is_current(Some(&room))
            {
                self.rooms.remove(&room);
            }
        }
        if returning {
            for change in changes {
                self.said_away(&change);
            }
        } else if self.config.mode == Mode::Interactive {
            let mine: Vec<String> = rooms
                .iter()
                .filter(|state| !is_lobby(Some(&state.room)))
                .map(|state| match state.unread {
                    0 => state.room.to_string(),
                    n => format!("{} ({n} unread)", state.room),
                })
                .collect();
            if !mine.is_empty() {
                self.show(Line::Status(format!("your rooms: {}", mine.join(", "))));
            }
            for change in changes.iter().filter(|c| c.change == Change::Invited) {
                self.said_away(change);
            }
        }
        if !returning && let Some(room) = self.config.room.clone() {
            self.open(&room);
        }
        self.share_rooms();
    }

    /// `--room`/`--to` on a server without rooms.
    fn no_rooms_for(&mut self, room: &str) {
        let why = format!(
            "this server speaks protocol {}, which has no rooms or direct messages: {room} \
             needs a server that speaks protocol v3",
            if self.version == Version::V1 {
                "v1"
            } else {
                "v2"
            }
        );
        self.rooms.clear();
        match self.config.mode {
            Mode::Script => self.leave(Exit::Failure(why)),
            Mode::Interactive => self.show(Line::Error(why)),
        }
    }

    /// Opens `room` given on the command line: joins a `#room`, talks to
    /// an `@name`.
    fn open(&mut self, room: &str) {
        if room.starts_with('#') {
            self.join(room);
        } else {
            self.rooms.switch(room);
        }
    }

    /// A change of membership that happened while this client was away.
    fn said_away(&mut self, change: &RoomChange<'_>) {
        let room = &change.room;
        let line = match change.change {
            Change::Joined if room.starts_with('@') => return,
            Change::Joined => Line::Status(format!("you joined {room} on another device")),
            Change::Left => Line::Status(format!("you left {room} on another device")),
            Change::Invited => Line::Status(format!(
                "you are invited to {room}: /join {room} to join it"
            )),
            Change::Kicked | Change::Banned => {
                let by = change.by.as_deref().unwrap_or("an operator");
                let verb = match change.change {
                    Change::Kicked => "removed",
                    _ => "banned",
                };
                let reason = because(change.reason.as_deref());
                Line::Error(format!("{by} {verb} you from {room}{reason}"))
            }
            Change::Unknown => return,
        };
        self.show_server(line);
    }

    /// A room's `history`: its catch-up after a login (one divider per
    /// room, then its messages, each once).
    pub(super) fn on_room_history(
        &mut self,
        room: &str,
        messages: Vec<ServerMessage<'_>>,
        complete: bool,
        epoch: Option<&str>,
    ) {
        if let Some(known) = self.rooms.get_mut(room)
            && let Some(epoch) = epoch
            && known.epoch.as_deref() != Some(epoch)
        {
            known.epoch = Some(epoch.to_owned());
            known.shown = None;
        }
        let returning = self.returning;
        self.check_room_messages(room, &messages, complete);
        // Where the server's read marker is: a newcomer's context shows
        // where the unread part begins.
        let read = self
            .rooms
            .get(room)
            .map_or(0, |known| known.last_seq.saturating_sub(known.unread));
        let mut lines = Vec::new();
        let mut first_unread = None;
        for message in messages {
            if let Some((seq, said)) = self.room_line(room, message)
                && self.rooms.fresh(room, seq)
            {
                if first_unread.is_none() && seq.is_some_and(|seq| seq > read) {
                    first_unread = Some(lines.len());
                }
                lines.push(said);
            }
        }
        if lines.is_empty() {
            return;
        }
        // A script prints what is said while it takes part.
        if self.config.mode == Mode::Script && !returning {
            return;
        }
        let divide = self.config.mode == Mode::Interactive && !self.config.output.is_json();
        if divide {
            let count = lines.len();
            self.show(Line::Divider(if returning {
                format!(
                    "{} in {room} while you were away",
                    plural(count, "message", "messages")
                )
            } else {
                format!(
                    "{} in {room}",
                    plural(count, "earlier message", "earlier messages")
                )
            }));
        }
        let unread = first_unread.filter(|&at| divide && !returning && at > 0);
        let unread_count = unread.map(|at| lines.len() - at);
        for (at, (from, line)) in lines.into_iter().enumerate() {
            if unread == Some(at)
                && let Some(count) = unread_count
            {
                self.show(Line::Divider(format!("{count} unread")));
            }
            let line = self.labelled(Some(room), from, line);
            self.show_server(line);
        }
    }

    /// Settles the user's messages to `room` that a dropped connection
    /// left unconfirmed, against the room's catch-up (`messages`).
    fn check_room_messages(&mut self, room: &str, messages: &[ServerMessage<'_>], complete: bool) {
        let me = rooms::key(self.username());
        let own = messages.iter().filter_map(|message| match message {
            ServerMessage::TextBroadcast {
                username, message, ..
            } if rooms::key(username) == me => Some(&**message),
            _ => None,
        });
        let room_key = rooms::key(room);
        let checked =
            self.outbox
                .check_room(|sent_to| rooms::key(sent_to) == room_key, own, complete);
        self.report_checked(checked);
    }

    /// After a login: the user's messages to rooms where nothing was said
    /// since they were sent never reached the server (no catch-up will
    /// come for them): sent again.
    fn resend_to_quiet_rooms(&mut self) {
        for room in self.outbox.unchecked_rooms() {
            let quiet = self
                .rooms
                .get(&room)
                .is_none_or(|known| known.last_seq <= known.shown.unwrap_or(0));
            if quiet {
                let key = rooms::key(&room);
                let checked =
                    self.outbox
                        .check_room(|sent_to| rooms::key(sent_to) == key, [], true);
                self.report_checked(checked);
            }
        }
    }

    /// Says what became of messages a dropped connection left unconfirmed.
    fn report_checked(&mut self, checked: outbox::Checked) {
        if checked.resent.is_empty() && checked.unknown.is_empty() {
            return;
        }
        self.show_checked(checked);
        self.flush();
        self.check_ending();
    }

    /// The line of a message in a room's history, with its `seq` and who
    /// said it.
    fn room_line(
        &self,
        room: &str,
        message: ServerMessage<'_>,
    ) -> Option<(Option<u64>, (String, Line))> {
        match message {
            ServerMessage::TextBroadcast {
                username,
                message,
                seq,
                timestamp,
                ..
            } => {
                let own = rooms::key(&username) == rooms::key(self.username());
                let line = Line::from_text(&username, &message, own, timestamp)
                    .mentioning(self.username());
                Some((seq, (username.into_owned(), line)))
            }
            ServerMessage::Notice { seq, timestamp, .. } => {
                let text = notice_text(room, &message);
                Some((Some(seq), (String::new(), notice(text, Some(timestamp)))))
            }
            _ => None,
        }
    }

    /// `line` of `room` (absent: the lobby), said by `from`, with the
    /// room's label when it is not the current one (a script that named a
    /// room labels every line of every room).
    pub(super) fn labelled(&self, room: Option<&str>, from: String, line: Line) -> Line {
        let every = self.config.mode == Mode::Script && self.config.room.is_some();
        if !every && self.rooms.is_current(room) {
            return line;
        }
        line.in_room(rooms::label(room.unwrap_or(LOBBY), &from, self.username()))
    }

    // ---- live ----

    /// A message said in a room or DM (not the lobby) just now.
    pub(super) fn on_room_text(&mut self, room: &str, seq: Option<u64>, from: &str, line: Line) {
        if !self.rooms.fresh(room, seq) {
            return;
        }
        let own = line_is_own(&line);
        let mention = line.is_mention();
        self.rooms.arrived(Some(room), own, mention);
        if let Some(seq) = seq
            && self.rooms.is_current(Some(room))
        {
            self.mark_read(room, seq);
        }
        let dm = room.starts_with('@');
        let line = self.labelled(Some(room), from.to_owned(), line);
        if let Output::Lines { bell: true } = self.config.output
            && dm
            && !own
            && !mention
        {
            self.events.push_back(Event::Bell);
        }
        self.show_now(line);
    }

    /// A lobby message as shown: labelled when another room is current,
    /// counted unread there, and read when the lobby is current.
    pub(super) fn lobby_line(&mut self, seq: Option<u64>, from: &str, line: Line) -> Line {
        if self.version != Version::V3 {
            return line;
        }
        let own = line_is_own(&line);
        if let Some(seq) = seq
            && let Some(lobby) = self.rooms.get_mut(LOBBY)
        {
            lobby.last_seq = lobby.last_seq.max(seq);
        }
        self.rooms.arrived(None, own, line.is_mention());
        if let Some(seq) = seq
            && self.rooms.is_current(None)
            && self.is_online()
        {
            self.mark_read(LOBBY, seq);
        }
        self.labelled(None, from.to_owned(), line)
    }

    /// Notes that the user has seen `room` up to `seq`, to tell the server
    /// (and the user's other devices) soon: interactive only, where a
    /// person reads.
    pub(super) fn mark_read(&mut self, room: &str, seq: u64) {
        if self.config.mode != Mode::Interactive || self.config.output.is_json() {
            return;
        }
        let read = self.reads.entry(room.to_owned()).or_default();
        *read = (*read).max(seq);
    }

    /// Read markers noted wait [`READ_DELAY`](super::READ_DELAY) from now
    /// at most, gathered.
    pub(super) fn schedule_reads(&mut self, now: Instant) {
        if !self.reads.is_empty() && self.read_due.is_none() {
            self.read_due = Some(now + super::READ_DELAY);
        }
    }

    /// Sends the read markers noted, one per room.
    pub(super) fn send_reads(&mut self) {
        self.read_due = None;
        if !self.is_online() {
            return; // the next login's state will tell
        }
        for (room, seq) in std::mem::take(&mut self.reads) {
            let id = id::message_id(&mut self.rng);
            self.send(&ClientMessage::Read { id, room, seq });
        }
    }

    /// `readMarker`: read up to `seq` (here or on another device).
    pub(super) fn on_read_marker(&mut self, room: &str, seq: u64) {
        self.rooms.read(room, seq);
    }

    /// `member`: someone joined or left a room this name is in.
    pub(super) fn on_member(&mut self, room: &str, username: &str, change: Change, at: u64) {
        let verb = match change {
            Change::Joined => "joined",
            Change::Left => "left",
            _ => return,
        };
        if let Some(known) = self.rooms.get_mut(room) {
            known.members = match change {
                Change::Joined => known.members + 1,
                _ => known.members.saturating_sub(1),
            };
        }
        let line = notice(format!("{username} {verb} {room}"), Some(at));
        let line = self.labelled(Some(room), String::new(), line);
        self.show_server(line);
    }

    /// `presence` of a room: its joins and leaves past the budget.
    pub(super) fn on_room_presence(&mut self, room: &str, line: Line) {
        let line = self.labelled(Some(room), String::new(), line);
        self.show_server(line);
    }

    /// `notice`: a moderation act in a room (numbered with its messages).
    pub(super) fn on_notice(&mut self, message: ServerMessage<'_>) {
        let ServerMessage::Notice {
            room,
            seq,
            timestamp,
            act,
            topic,
            invite_only,
            ..
        } = &message
        else {
            return;
        };
        let room = room.to_string();
        if !is_lobby(Some(&room)) && !self.rooms.fresh(&room, Some(*seq)) {
            return;
        }
        if let Some(known) = self.rooms.get_mut(&room) {
            match act {
                Act::Topic => known.topic = topic.as_ref().map(|t| t.to_string()),
                Act::Mode => known.invite_only = invite_only.unwrap_or(known.invite_only),
                _ => {}
            }
        }
        if self.rooms.is_current(Some(&room)) {
            self.mark_read(&room, *seq);
        }
        let line = notice(notice_text(&room, &message), Some(*timestamp));
        let line = self.labelled(Some(&room), String::new(), line);
        self.show_server(line);
    }

    /// `membership`: this name's own membership of a room changed, on this
    /// device or another.
    pub(super) fn on_membership(&mut self, message: ServerMessage<'static>) {
        let ServerMessage::Membership {
            reply_to,
            room,
            change,
            by,
            reason,
            until,
            state,
            ..
        } = message
        else {
            return;
        };
        let asked = reply_to.as_deref().and_then(|id| self.answered(id));
        let room = room.into_owned();
        match change {
            Change::Joined => {
                let existed = self.rooms.get(&room).is_some_and(|r| r.epoch.is_some());
                if let Some(state) = &state {
                    self.rooms.update(state);
                }
                let line = match (&asked, state.as_ref()) {
                    (Some(Request::Join { .. }), Some(state)) => {
                        let role = match state.role {
                            Some(Role::Owner) => "you own it; ",
                            Some(Role::Operator) => "you are an operator; ",
                            _ => "",
                        };
                        let topic = match &state.topic {
                            Some(topic) => format!("; topic: {topic}"),
                            None => String::new(),
                        };
                        Line::Status(format!(
                            "joined {room} ({role}{}){topic}",
                            plural(state.members, "member", "members")
                        ))
                    }
                    _ if room.starts_with('@') || existed => return self.share_rooms(),
                    _ => Line::Status(format!("you joined {room} on another device")),
                };
                self.show_server(line);
            }
            Change::Left => {
                let hint = self.no_longer_in(&room);
                let line = match asked {
                    Some(Request::Part(_)) => format!("you left {room}{hint}"),
                    _ => format!("you left {room} on another device{hint}"),
                };
                self.show_server(Line::Status(line));
            }
            Change::Kicked | Change::Banned => {
                let hint = self.no_longer_in(&room);
                let by = by.as_deref().unwrap_or("an operator");
                let how = match (change, until) {
                    (Change::Kicked, _) => "removed you from".to_owned(),
                    (_, None) => "banned you for good from".to_owned(),
                    (_, Some(_)) => "banned you for a while from".to_owned(),
                };
                let reason = because(reason.as_deref());
                self.show_server(Line::Error(format!("{by} {how} {room}{reason}{hint}")));
            }
            Change::Invited => {
                let by = by.as_deref().unwrap_or("an operator");
                self.show_server(Line::Status(format!(
                    "{by} invited you to {room}: /join {room} to join it"
                )));
            }
            Change::Unknown => {}
        }
        self.share_rooms();
    }

    /// This name is no longer in `room`. If it was the current one, it
    /// stays current, so that a line typed at its prompt goes nowhere else
    /// (the server refuses it): what to tell the user then.
    fn no_longer_in(&mut self, room: &str) -> &'static str {
        match self.rooms.remove(room) {
            Some((_, true)) => {
                self.rooms.switch(room);
                "; /join a room (or /join #lobby) to talk elsewhere"
            }
            _ => "",
        }
    }

    /// `roomList`: the answer to `/rooms`.
    pub(super) fn on_room_list(&mut self, reply_to: &str, listed: Vec<RoomState<'_>>) {
        if self.answered(reply_to).is_none() {
            return;
        }
        self.rooms.listed(
            listed
                .iter()
                .filter(|s| s.room.starts_with('#'))
                .map(|s| s.room.to_string()),
        );
        self.share_rooms();
        let mut text = format!("rooms ({}):", listed.len());
        for state in &listed {
            text.push_str(&format!("\n  {}", room_summary(state)));
        }
        if listed.is_empty() {
            text.push_str(" none yet; /join #NAME creates one");
        }
        self.show_server(Line::Info(text));
    }

    /// `memberList`: the answer to `/names` or `/who` in a room.
    pub(super) fn on_member_list(
        &mut self,
        reply_to: &str,
        room: &str,
        members: Vec<MemberEntry<'_>>,
        more: usize,
    ) {
        if self.answered(reply_to).is_none() {
            return;
        }
        let me = rooms::key(self.username());
        let shown: Vec<String> = members
            .iter()
            .map(|member| {
                let mut marks = Vec::new();
                match member.role {
                    Role::Owner => marks.push("owner"),
                    Role::Operator => marks.push("operator"),
                    Role::Member => {}
                }
                if rooms::key(&member.username) == me {
                    marks.push("you");
                }
                if member.muted {
                    marks.push("muted");
                }
                if !member.online {
                    marks.push("away");
                }
                match marks.is_empty() {
                    true => member.username.to_string(),
                    false => format!("{} ({})", member.username, marks.join(", ")),
                }
            })
            .collect();
        let count = members.len() + more;
        let more = match more {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        self.show_server(Line::Info(format!(
            "{room} ({count}): {}{more}",
            shown.join(", ")
        )));
    }

    /// The server refused a room request of ours; whether it was one.
    pub(super) fn room_request_refused(
        &mut self,
        code: ErrorCode,
        reply_to: Option<&str>,
        description: Option<&str>,
    ) -> bool {
        let Some(request) = reply_to.and_then(|id| self.answered(id)) else {
            return false;
        };
        let why = describe(code, description);
        let line = match request {
            Request::Join { room, before } => {
                if self.rooms.is_current(Some(&room)) {
                    self.rooms.remove(&room);
                    self.rooms.switch(&before);
                }
                if self.config.mode == Mode::Script && self.config.room.is_some() {
                    self.leave(Exit::Failure(format!("could not join {room}: {why}")));
                    return true;
                }
                format!("could not join {room}: {why}")
            }
            Request::Part(room) => format!("could not leave {room}: {why}"),
            Request::Shown(what) => format!("{what}: {why}"),
        };
        self.show_server(Line::Error(line));
        true
    }

    /// Takes the request answered by `id`, if it is ours.
    fn answered(&mut self, id: &str) -> Option<Request> {
        let at = self.requests.iter().position(|(sent, _)| sent == id)?;
        Some(self.requests.remove(at).1)
    }
}

/// Whether `line` is the user's own message.
fn line_is_own(line: &Line) -> bool {
    matches!(
        line,
        Line::Message { own: true, .. } | Line::Action { own: true, .. }
    )
}

fn notice(text: String, at: Option<u64>) -> Line {
    Line::RoomNotice { text, at }
}
