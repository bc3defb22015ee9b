//! Rooms and direct messages (protocol v3): see docs/PROTOCOL.md.
//!
//! Rooms are data in the core, next to the lobby (v2's one room, which
//! keeps its own `History` and numbering): one module per concept.
//! - `room`: a room as data (settings, members, bans, invites, its log);
//! - `membership`: join and part, who is told, and what a released name
//!   leaves behind;
//! - `messages`: saying something in a room or a DM;
//! - `catch_up`: what a v3 login is sent after `loginMessage`;
//! - `queries`: `listRooms`, `listMembers`, `history` pages, `read`;
//! - `moderation`: the acts of owners and operators (`lobby`: of server
//!   operators in the lobby);
//! - `state`: a room as one name sees it (unread, mentioned);
//! - `release`: each name's v3 devices, and what a released name leaves;
//! - `restore`: rooms back from a store's snapshot;
//! - `remote`: a cluster's other nodes' writes and entries, applied here;
//! - `undo`: a change whose writes failed, taken back.
//!
//! Membership belongs to the name: rooms keep name keys, and `devices`
//! maps a name to its v3 connections (only v3 connections hear of rooms).
//!
//! What must outlive the process leaves as `Write`s, in order. A store
//! makes writes durable in order, so a frame that waits for the answer to
//! the last write of a change (`send_when_saved`) is sent only once the
//! whole change is saved; a message or notice is sent once its `Append`
//! is answered.

mod catch_up;
mod lobby;
mod membership;
mod messages;
mod moderation;
mod queries;
mod release;
mod remote;
mod restore;
mod room;
mod state;
#[cfg(test)]
mod tests;
mod undo;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::CryptoRng;

use super::names::Names;
use super::new_names::NewNames;
use super::seam::{PendingFrames, Ticket, To};
use super::{ConnectionId, Frame, Server, Write};
use crate::Config;
use crate::protocol::{Change, ClientMessage, ErrorCode, Role};
use crate::username::{self, Username};
pub(crate) use remote::Departing;
pub(crate) use room::{Entry, Member, NoticeBody, Room};
pub(crate) use undo::Undo;

/// The lobby's key: the room every name is in unless it left it, whose
/// messages are v2's.
pub(crate) const LOBBY: &str = "#lobby";

/// Every room and DM, who is in which, and what each name read.
#[derive(Debug)]
pub(crate) struct Rooms {
    pub(crate) by_key: HashMap<Arc<str>, Room>,
    /// Name key → the rooms and DMs it is in (the lobby apart).
    pub(crate) of_name: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// Name key → the rooms it owns (so that its release finds them).
    pub(crate) owned: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// Name key → the rooms it is invited to.
    pub(crate) invited: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// Names that left the lobby.
    pub(crate) left_lobby: HashSet<Arc<str>>,
    /// The lobby's moderation (see `lobby`), in memory: name key → muted
    /// until (`u64::MAX`: for good); name key → banned until (`None`: for
    /// good); its topic.
    pub(crate) lobby_mutes: HashMap<Arc<str>, u64>,
    pub(crate) lobby_bans: HashMap<Arc<str>, Option<u64>>,
    pub(crate) lobby_topic: Option<Arc<str>>,
    /// Name key → room key → the last `seq` it read.
    pub(crate) reads: HashMap<Arc<str>, HashMap<Arc<str>, u64>>,
    /// Name key → room key → how it last left that room (kept in memory,
    /// to tell a client that was away whether it was kicked or banned).
    pub(crate) removals: HashMap<Arc<str>, HashMap<Arc<str>, Removal>>,
    /// A cluster: (room key, name key) → a name another node's act removed
    /// from a room, whose `membership` frames wait for the act's notice.
    pub(crate) departing: HashMap<(Arc<str>, Arc<str>), Departing>,
    /// Name key → its announced v3 connections.
    pub(crate) devices: HashMap<Arc<str>, Vec<ConnectionId>>,
    /// Server operators' name keys.
    pub(crate) operators: HashSet<String>,
    /// Rooms (not DMs) in all.
    pub(crate) room_count: usize,
    /// Rooms created per address.
    pub(crate) creations: NewNames,
    /// DMs started per name key.
    pub(crate) new_dms: NewNames,
}

/// How a name last left a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Removal {
    pub(crate) change: Change,
    pub(crate) by: Option<Arc<str>>,
    pub(crate) reason: Option<Arc<str>>,
}

impl Rooms {
    pub(in crate::server) fn new(config: &Config) -> Rooms {
        let per_minute = |count: u32| NewNames::new(count, count, config.login_failure_addresses);
        Rooms {
            by_key: HashMap::new(),
            of_name: HashMap::new(),
            owned: HashMap::new(),
            invited: HashMap::new(),
            left_lobby: HashSet::new(),
            lobby_mutes: HashMap::new(),
            lobby_bans: HashMap::new(),
            lobby_topic: None,
            reads: HashMap::new(),
            removals: HashMap::new(),
            departing: HashMap::new(),
            devices: HashMap::new(),
            operators: config
                .operators
                .iter()
                .map(|name| username::key(name.trim()))
                .collect(),
            room_count: 0,
            creations: per_minute(config.rooms_per_address_per_minute),
            new_dms: per_minute(config.new_dms_per_minute),
        }
    }

    pub(in crate::server) fn is_operator(&self, key: &str) -> bool {
        self.operators.contains(key)
    }

    /// The role `name` is shown with in the room `room` where it is
    /// `role`: a server operator is an operator of every room (not of a DM),
    /// unless it owns it.
    pub(in crate::server) fn shown_role(&self, room: &str, name: &str, role: Role) -> Role {
        if role == Role::Member && room.starts_with('#') && self.is_operator(name) {
            Role::Operator
        } else {
            role
        }
    }

    pub(in crate::server) fn read_seq(&self, name: &str, room: &str) -> u64 {
        self.reads
            .get(name)
            .and_then(|reads| reads.get(room))
            .copied()
            .unwrap_or(0)
    }

    /// Whether `name` is in `room` (the lobby included).
    pub(in crate::server) fn is_member(&self, name: &str, room: &str) -> bool {
        if room == LOBBY {
            return !self.left_lobby.contains(name);
        }
        self.by_key
            .get(room)
            .is_some_and(|r| r.members.contains_key(name))
    }

    /// Rooms (not DMs) `name` is in.
    pub(in crate::server) fn rooms_of(&self, name: &str) -> usize {
        self.of_name.get(name).map_or(0, |rooms| {
            rooms.iter().filter(|r| r.starts_with('#')).count()
        })
    }
}

/// What a `room` field names, for the name asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Lobby,
    /// `#name`: its key and its name as written (NFC).
    Room {
        key: Arc<str>,
        display: Arc<str>,
    },
    /// `@name`: the DM's key, and the other party's key and name as written.
    Dm {
        key: Arc<str>,
        other: Arc<str>,
        other_display: Arc<str>,
    },
}

impl Target {
    pub(in crate::server) fn key(&self) -> &str {
        match self {
            Target::Lobby => LOBBY,
            Target::Room { key, .. } | Target::Dm { key, .. } => key,
        }
    }
}

/// `target` as its `room` field was written (NFC).
pub(in crate::server) fn as_written(target: &Target) -> Arc<str> {
    match target {
        Target::Lobby => LOBBY.into(),
        Target::Room { display, .. } => display.clone(),
        Target::Dm { other_display, .. } => format!("@{other_display}").into(),
    }
}

/// The key of the DM between the names keyed `a` and `b`.
pub(in crate::server) fn dm_key(a: &str, b: &str) -> Arc<str> {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("@{low}\n{high}").into()
}

/// The parties' keys of a DM's key.
pub(in crate::server) fn dm_parties(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix('@')?.split_once('\n')
}

/// A DM's stored display (`@A\nB`, in the order of the keys) for names
/// keyed `a` and `b` shown as `a_display` and `b_display`.
pub(in crate::server) fn dm_display(
    a: &str,
    a_display: &str,
    b: &str,
    b_display: &str,
) -> Arc<str> {
    if a <= b {
        format!("@{a_display}\n{b_display}").into()
    } else {
        format!("@{b_display}\n{a_display}").into()
    }
}

/// What `room` is called on the wire for the name keyed `me`: `#Name`, or
/// for a DM `@` and the other party's name.
pub(in crate::server) fn wire_name(key: &str, room: &Room, me: &str) -> Arc<str> {
    if key == LOBBY {
        return LOBBY.into();
    }
    match (dm_parties(key), dm_parties(&room.display)) {
        (Some((low, _)), Some((low_display, high_display))) => {
            let other = if low == me { high_display } else { low_display };
            format!("@{other}").into()
        }
        _ => room.display.clone(),
    }
}

impl<R: CryptoRng> Server<R> {
    /// A v3 message about rooms.
    pub(super) fn rooms_message(
        &mut self,
        conn: ConnectionId,
        reply_to: Option<&str>,
        message: ClientMessage,
        now: Instant,
    ) {
        let Some((me, my_display)) = self.announced_login(conn) else {
            return self.send_error(
                conn,
                reply_to,
                ErrorCode::MessagingWhileNotLoggedIn,
                "log in first",
            );
        };
        let me = Me {
            conn,
            reply_to: reply_to.map(str::to_owned),
            key: me,
            display: my_display,
        };
        let room = match &message {
            ClientMessage::ListRooms { .. } => return self.list_rooms(&me),
            ClientMessage::Join { room, .. }
            | ClientMessage::Part { room, .. }
            | ClientMessage::ListMembers { room, .. }
            | ClientMessage::History { room, .. }
            | ClientMessage::Read { room, .. }
            | ClientMessage::Topic { room, .. }
            | ClientMessage::Mode { room, .. }
            | ClientMessage::Invite { room, .. }
            | ClientMessage::Kick { room, .. }
            | ClientMessage::Ban { room, .. }
            | ClientMessage::Unban { room, .. }
            | ClientMessage::Mute { room, .. }
            | ClientMessage::Unmute { room, .. }
            | ClientMessage::Op { room, .. }
            | ClientMessage::Deop { room, .. } => room,
            _ => return,
        };
        let Some(target) = self.target(&me, room) else {
            return;
        };
        match message {
            ClientMessage::Join { invite_only, .. } => {
                self.join(&me, target, invite_only.unwrap_or(false), now)
            }
            ClientMessage::Part { reason, .. } => self.part(&me, target, reason, now),
            ClientMessage::ListMembers { .. } => self.list_members(&me, target, now),
            ClientMessage::History {
                before,
                after,
                limit,
                ..
            } => self.history_page(&me, target, before, after, limit),
            ClientMessage::Read { seq, .. } => self.read(&me, target, seq),
            other => self.moderate(&me, target, other, now),
        }
    }

    /// The key and name `conn` holds, once its login is announced.
    pub(in crate::server) fn announced_login(
        &self,
        conn: ConnectionId,
    ) -> Option<(Arc<str>, Arc<str>)> {
        let connection = self.connections.get(conn)?;
        if connection.login_pending {
            return None;
        }
        connection.login.clone()
    }

    /// What `raw` names for `me`, or `None` once `invalidRoom` is sent.
    pub(in crate::server) fn target(&mut self, me: &Me, raw: &str) -> Option<Target> {
        let max = self.config.max_username_chars;
        let refuse = |server: &mut Self, why: &str| {
            server.send_error(me.conn, me.reply_to.as_deref(), ErrorCode::InvalidRoom, why);
            None
        };
        if let Some(name) = raw.strip_prefix('#') {
            return match Username::parse(name, max) {
                Ok(name) if format!("#{}", name.key) == LOBBY => Some(Target::Lobby),
                Ok(name) => Some(Target::Room {
                    key: format!("#{}", name.key).into(),
                    display: format!("#{}", name.display).into(),
                }),
                Err(e) => refuse(self, &format!("{raw:?} is not a valid room name: {e}")),
            };
        }
        if let Some(name) = raw.strip_prefix('@') {
            return match Username::parse(name, max) {
                Ok(name) if *name.key == *me.key => {
                    refuse(self, "a direct conversation is with someone else")
                }
                Ok(name) => Some(Target::Dm {
                    key: dm_key(&me.key, &name.key),
                    other: name.key.into(),
                    other_display: name.display.into(),
                }),
                Err(e) => refuse(self, &format!("{raw:?} is not a valid name: {e}")),
            };
        }
        refuse(
            self,
            &format!("{raw:?} is not a room: write #name for a room, @name for a direct message"),
        )
    }

    /// `notAMember` for `target`, in the words a non-member may hear: the
    /// room named as it was written (not as its creator wrote it, which
    /// would tell that it exists).
    pub(in crate::server) fn not_a_member(&mut self, me: &Me, target: &Target, first: bool) {
        let name = as_written(target);
        let description = if first {
            format!("you are not in {name}; join it first")
        } else {
            format!("you are not in {name}")
        };
        self.send_error(
            me.conn,
            me.reply_to.as_deref(),
            ErrorCode::NotAMember,
            &description,
        );
    }

    /// How `target` is written back to the one who named it.
    pub(in crate::server) fn shown_name(&self, target: &Target) -> Arc<str> {
        match target {
            Target::Lobby => LOBBY.into(),
            Target::Room { key, display } => self
                .rooms
                .by_key
                .get(key)
                .map_or_else(|| display.clone(), |room| room.display.clone()),
            Target::Dm { other_display, .. } => format!("@{other_display}").into(),
        }
    }

    pub(in crate::server) fn refuse(&mut self, me: &Me, error: ErrorCode, description: &str) {
        self.send_error(me.conn, me.reply_to.as_deref(), error, description);
    }

    /// The name keyed `key` as everyone sees it, if it is held.
    pub(in crate::server) fn display_of(&self, key: &str) -> Option<Arc<str>> {
        match &self.names {
            Names::Local(local) => local.logins.display(key),
            Names::Shared(shared) => shared.names.get(key).cloned(),
        }
    }

    /// Whether a connection holds the name keyed `key` (on a cluster: on
    /// some node).
    pub(in crate::server) fn is_online(&self, key: &str) -> bool {
        match &self.names {
            Names::Local(local) => local.logins.is_online(key),
            Names::Shared(shared) => shared.online.contains(key),
        }
    }

    /// Every name held: its key, display, and whether it is online.
    pub(in crate::server) fn held_names_online(
        &self,
    ) -> Box<dyn Iterator<Item = (&Arc<str>, &Arc<str>, bool)> + '_> {
        match &self.names {
            Names::Local(local) => Box::new(local.logins.all()),
            Names::Shared(shared) => Box::new(
                shared
                    .names
                    .iter()
                    .map(|(key, display)| (key, display, shared.online.contains(key))),
            ),
        }
    }

    /// Names held (on a cluster: on any node, as far as this node heard).
    pub(in crate::server) fn held_count(&self) -> usize {
        match &self.names {
            Names::Local(local) => local.logins.len(),
            Names::Shared(shared) => shared.names.len(),
        }
    }

    /// Whether the name keyed `key` is held (on a cluster: on some node, as
    /// far as this node heard).
    pub(in crate::server) fn is_held(&self, key: &str, now: Instant) -> bool {
        match &self.names {
            Names::Local(local) => local.logins.is_held(key, now),
            Names::Shared(shared) => shared.names.contains_key(key),
        }
    }

    /// Sends `frame` to every v3 device of the name keyed `name`.
    pub(in crate::server) fn send_to_name(&mut self, name: &str, frame: Frame) {
        let Some(devices) = self.rooms.devices.get(name) else {
            return;
        };
        let frame = self.actions.add(frame);
        for &conn in devices {
            self.actions.send(conn, frame);
        }
    }

    /// Sends `frames` once the write of `ticket` is saved (at once without
    /// a store); if it fails, `me` is told `unavailable` instead.
    pub(in crate::server) fn send_when_saved(
        &mut self,
        ticket: Option<Ticket<Write>>,
        me: Option<&Me>,
        frames: Vec<(To, Frame)>,
    ) {
        let (Some(ticket), Some(seam)) = (ticket, self.names.seam_mut()) else {
            return self.send_saved(frames);
        };
        seam.after.insert(
            ticket,
            PendingFrames {
                conn: me.map(|me| (me.conn, me.reply_to.clone())),
                frames,
                undo: None,
            },
        );
    }

    /// What to take back of a change (in memory) if the write of `ticket`
    /// (its last) fails: the one who asked was told `unavailable`, so the
    /// change must not stand.
    pub(in crate::server) fn undo_if_unsaved(&mut self, ticket: Option<Ticket<Write>>, undo: Undo) {
        if let (Some(ticket), Some(seam)) = (ticket, self.names.seam_mut())
            && let Some(pending) = seam.after.get_mut(&ticket)
        {
            pending.undo = Some(undo);
        }
    }

    /// Frames whose writes are saved go out.
    pub(in crate::server) fn send_saved(&mut self, frames: Vec<(To, Frame)>) {
        for (to, frame) in frames {
            match to {
                // Closed meanwhile: nothing is ever addressed to it.
                To::Conn(conn) if !self.is_open(conn) => {}
                To::Conn(conn) => self.actions.send_new(conn, frame),
                To::Name(name) => self.send_to_name(&name, frame),
                To::Others(name, except) => {
                    let Some(devices) = self.rooms.devices.get(&name) else {
                        continue;
                    };
                    if devices.iter().all(|&c| c == except) {
                        continue;
                    }
                    let frame = self.actions.add(frame);
                    for &conn in devices.iter().filter(|&&c| c != except) {
                        self.actions.send(conn, frame);
                    }
                }
            }
        }
    }

    /// The answer to a write whose frames waited for it.
    /// `told`: why it failed, when the store says (a shard out of reach).
    pub(in crate::server) fn frames_saved(
        &mut self,
        pending: PendingFrames,
        saved: bool,
        told: Option<String>,
        now: Instant,
    ) {
        if saved {
            if let Some(Undo::Joined {
                room,
                name,
                display,
                epoch,
                ..
            }) = &pending.undo
            {
                self.joined_the_winner(room, name, display, epoch);
            }
            return self.send_saved(pending.frames);
        }
        if let Some(undo) = pending.undo {
            let asked = match &undo {
                Undo::Created {
                    room,
                    name,
                    display,
                    written,
                    epoch,
                }
                | Undo::Joined {
                    room,
                    name,
                    display,
                    written,
                    epoch,
                } => Some((
                    room.clone(),
                    name.clone(),
                    display.clone(),
                    written.clone(),
                    epoch.clone(),
                )),
                _ => None,
            };
            self.undo(undo);
            // On a cluster the store refuses a room another node made first
            // (and a join of this node's losing creation of it, saved with
            // it); that one stands here once its creation was heard: the
            // creation or join becomes a join of it, as on a single node.
            // Once only: it is another epoch than the one asked.
            if let (Some((room, key, display, written, epoch)), Some((conn, reply_to))) =
                (asked, &pending.conn)
                && self.is_open(*conn)
                && self
                    .rooms
                    .by_key
                    .get(&room)
                    .is_some_and(|known| known.epoch != epoch)
            {
                let me = Me {
                    conn: *conn,
                    reply_to: reply_to.clone(),
                    key,
                    display,
                };
                return self.join_room(&me, room, written, now);
            }
        }
        if let Some((conn, reply_to)) = pending.conn
            && self.is_open(conn)
        {
            let description = match told {
                Some(told) => format!("{told}: try again later"),
                None => "the server could not save that; try again in a moment".to_owned(),
            };
            self.send_error(
                conn,
                reply_to.as_deref(),
                ErrorCode::Unavailable,
                &description,
            );
        }
    }

    /// A join of this node's room `room` (numbered under `epoch`) was
    /// saved, but meanwhile another node's creation of the room won and
    /// replaced it here (Redis refuses this node's creation, not a join
    /// sent apart from it): the store has `name` in the winner, so it is
    /// in it here too.
    fn joined_the_winner(
        &mut self,
        room: &Arc<str>,
        name: &Arc<str>,
        display: &Arc<str>,
        epoch: &str,
    ) {
        let replaced = self
            .rooms
            .by_key
            .get(room)
            .is_some_and(|known| *known.epoch != *epoch && !known.members.contains_key(name));
        if replaced {
            let member = Member {
                display: display.clone(),
                role: Role::Member,
                muted_until: None,
            };
            self.set_member(room, name, Some(member));
        }
    }

    /// Records every write, returning the last one's ticket.
    pub(in crate::server) fn record_all(&mut self, writes: Vec<Write>) -> Option<Ticket<Write>> {
        let mut last = None;
        for write in writes {
            last = self.record(write);
        }
        last
    }

    /// Wall-clock ms at `now`.
    pub(in crate::server) fn wall_ms(&self, now: Instant) -> u64 {
        self.timestamp(now)
    }

    /// A new epoch for a room's numbering.
    pub(in crate::server) fn new_epoch(&mut self) -> Arc<str> {
        crate::id::epoch(&mut self.rng).into()
    }
}

/// The name asking, and where to answer.
#[derive(Debug, Clone)]
pub(crate) struct Me {
    pub(crate) conn: ConnectionId,
    pub(crate) reply_to: Option<String>,
    pub(crate) key: Arc<str>,
    pub(crate) display: Arc<str>,
}

/// A duration in seconds as `Duration`, saturating.
pub(in crate::server) fn seconds_ms(seconds: u64) -> u64 {
    Duration::from_secs(seconds)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}
