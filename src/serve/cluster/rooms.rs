//! Every room's entries reach the core in that room's `seq` order, each
//! once: one [`Sequencer`] per room (the lobby's stays the link's own), and
//! each room write another node made in its place among that room's
//! entries. What pub/sub lost of a room is fetched from its log
//! ([`Command::FillRoom`](super::commands::Command::FillRoom)), one room at
//! a time, while no batch of this node is in flight (as for the lobby).
//!
//! A room's sequencer is made when the room is loaded at start, when its
//! creation is heard, or at its first entry heard or appended (from 0: a
//! room created after start); it goes when its drop is heard and all it
//! held is handed on.
//!
//! When Redis refuses this node's creation of a room because another node
//! made it first, the refusal is held until that creation is heard (it
//! was published before the refusal was sent, but on another connection):
//! the core then knows the room when it takes its creation back, and makes
//! the creation a join of it, as a single node would have.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::commands::CommandId;
use super::events::text;
use super::requests::{Answer, Append, Remote, StoredMessage, Ticket, ToCore};
use super::room_events::{room_reads, stored_room};
use super::room_scripts::{LOBBY, ROOMS, room_key};
use super::scripts::name_key;
use super::sequencer::Sequencer;
use crate::server::{SecretHash, StoredName, StoredRead, StoredRoom, Write};

#[derive(Debug, Default)]
pub(crate) struct RoomSequencers {
    by_room: HashMap<Arc<str>, Track>,
    /// Rooms that may have something to hand on (or to fetch).
    dirty: BTreeSet<Arc<str>>,
    /// The fetch under way: its command, room and range.
    fill: Option<(CommandId, Arc<str>, u64, u64)>,
    /// Every room's latest `seq`, asked after a reconnect.
    seqs: Option<CommandId>,
    /// Refusals of this node's creations, by room, until the winning
    /// creation is heard.
    refusals: HashMap<Arc<str>, Refusal>,
}

/// How long a refused creation waits for the winning one to be heard at
/// most (it is on its way: a lost publish is what this bounds).
pub(crate) const REFUSAL_HOLD: Duration = Duration::from_secs(1);

/// The answers to a refused creation of a room (its run of writes).
#[derive(Debug)]
struct Refusal {
    /// This node's epoch for the room, refused.
    ours: Arc<str>,
    answers: Vec<Answer>,
    until: Instant,
}

#[derive(Debug)]
struct Track {
    /// The room's epoch, once known: another one is another room of the
    /// same key (dropped and made again), numbered from 0.
    epoch: Option<Arc<str>>,
    sequencer: Sequencer,
    dropped: bool,
}

impl RoomSequencers {
    /// The rooms the core starts with, each after its latest entry.
    pub(crate) fn load(&mut self, rooms: &[StoredRoom]) {
        for room in rooms.iter().filter(|r| r.key != LOBBY) {
            let key: Arc<str> = room.key.as_str().into();
            let track = Track {
                epoch: Some(room.epoch.as_str().into()),
                sequencer: Sequencer::for_room(key.clone(), room.last_seq),
                dropped: false,
            };
            self.by_room.insert(key, track);
        }
    }

    fn track(&mut self, room: &Arc<str>) -> &mut Track {
        self.dirty.insert(room.clone());
        self.by_room.entry(room.clone()).or_insert_with(|| Track {
            epoch: None,
            sequencer: Sequencer::for_room(room.clone(), 0),
            dropped: false,
        })
    }

    /// An entry of `room` heard; `own` when this node appended it.
    pub(crate) fn published(&mut self, room: &Arc<str>, message: StoredMessage, own: bool) {
        self.track(room).sequencer.published(message, own);
    }

    /// This node's entry `ticket` of `room` took `seq`.
    pub(crate) fn appended(
        &mut self,
        room: &Arc<str>,
        ticket: Ticket<Append>,
        seq: u64,
        out: &mut VecDeque<ToCore>,
    ) {
        self.track(room).sequencer.appended(ticket, seq, out);
    }

    /// A write of `room` heard on the channel (this node's own too, which
    /// only keeps the sequencers right); another node's goes to the core
    /// in its place among the room's entries.
    pub(crate) fn heard(&mut self, room: &Arc<str>, write: Write, own: bool) {
        let track = self.track(room);
        match &write {
            Write::Room { epoch, .. } => {
                if track.epoch.as_ref().is_some_and(|e| e != epoch) && track.sequencer.idle() {
                    track.sequencer = Sequencer::for_room(room.clone(), 0);
                }
                track.epoch = Some(epoch.clone());
                track.dropped = false;
            }
            Write::DropRoom { .. } => track.dropped = true,
            _ => {}
        }
        let created = match &write {
            Write::Room { epoch, .. } => Some(epoch.clone()),
            _ => None,
        };
        if !own {
            track.sequencer.event(Remote::Write(write));
        }
        if let Some(epoch) = created
            && self.refusals.get(room).is_some_and(|r| r.ours != epoch)
            && let Some(refusal) = self.refusals.remove(room)
        {
            let track = self.track(room);
            for answer in refusal.answers {
                track.sequencer.answer_after_heard(answer);
            }
        }
    }

    /// Redis refused this node's creation of `room` as epoch `ours` (and
    /// the rest of its run of writes): `answers` go to the core after the
    /// winning creation, once heard, or at `now` + [`REFUSAL_HOLD`].
    pub(crate) fn refused_creation(
        &mut self,
        room: &Arc<str>,
        ours: Arc<str>,
        answers: Vec<Answer>,
        now: Instant,
    ) {
        let track = self.track(room);
        if track.epoch.as_ref().is_some_and(|e| *e != ours) {
            // Heard already: after it.
            for answer in answers {
                track.sequencer.answer_after_heard(answer);
            }
            return;
        }
        let refusal = self.refusals.entry(room.clone()).or_insert(Refusal {
            ours,
            answers: Vec::new(),
            until: now + REFUSAL_HOLD,
        });
        refusal.answers.extend(answers);
    }

    /// The refusals held past their time go to the core as they are.
    pub(crate) fn handle_timeout(&mut self, now: Instant, out: &mut VecDeque<ToCore>) {
        let due: Vec<Arc<str>> = self
            .refusals
            .iter()
            .filter(|(_, r)| r.until <= now)
            .map(|(room, _)| room.clone())
            .collect();
        for room in due {
            if let Some(refusal) = self.refusals.remove(&room) {
                out.extend(refusal.answers.into_iter().map(ToCore::Answer));
            }
        }
    }

    /// When a held refusal is due, if any.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.refusals.values().map(|r| r.until).min()
    }

    /// Hands on what can go, room by room (see [`Sequencer::release`]).
    pub(crate) fn release(&mut self, in_flight: bool, out: &mut VecDeque<ToCore>) {
        let dirty = std::mem::take(&mut self.dirty);
        for room in dirty {
            let Some(track) = self.by_room.get_mut(&room) else {
                continue;
            };
            track.sequencer.release(in_flight, out);
            if !track.sequencer.idle() || track.sequencer.gap().is_some() {
                self.dirty.insert(room);
            } else if track.dropped {
                self.by_room.remove(&room);
            }
        }
    }

    /// A room's entries to fetch, if pub/sub lost some and no fetch is
    /// under way.
    pub(crate) fn gap(&self) -> Option<(Arc<str>, u64, u64)> {
        if self.fill.is_some() {
            return None;
        }
        self.dirty.iter().find_map(|room| {
            let (from, to) = self.by_room.get(room)?.sequencer.gap()?;
            Some((room.clone(), from, to))
        })
    }

    /// A fetch went out as `id`.
    pub(crate) fn filling(&mut self, id: CommandId, room: Arc<str>, from: u64, to: u64) {
        self.fill = Some((id, room, from, to));
    }

    /// The fetch `id` answered, if it is the one under way.
    pub(crate) fn take_fill(&mut self, id: CommandId) -> Option<(Arc<str>, u64, u64)> {
        let (_, room, from, to) = self.fill.take_if(|fill| fill.0 == id)?;
        Some((room, from, to))
    }

    /// The connection went: the fetch under way will not answer.
    pub(crate) fn forget_fill(&mut self) {
        self.fill = None;
        self.seqs = None;
    }

    /// Whether any room is known.
    pub(crate) fn any(&self) -> bool {
        !self.by_room.is_empty()
    }

    /// Every room's latest `seq` was asked as `id`.
    pub(crate) fn asking_seqs(&mut self, id: CommandId) {
        self.seqs = Some(id);
    }

    /// Whether `id` answers [`asking_seqs`](Self::asking_seqs).
    pub(crate) fn take_seqs(&mut self, id: CommandId) -> bool {
        self.seqs.take_if(|asked| *asked == id).is_some()
    }

    /// Each known room's entries up to its `seq` were published (read after
    /// a reconnect): what was not heard is fetched. A room made while this
    /// node was cut off is not known here, and stays unknown.
    pub(crate) fn published_up_to(&mut self, seqs: &[(String, u64)]) {
        for (room, seq) in seqs {
            if let Some(track) = self.by_room.get_mut(room.as_str()) {
                track.sequencer.published_up_to(*seq);
                self.dirty.insert(room.as_str().into());
            }
        }
    }

    /// What `room`'s log held from `from` to `to`; `own` tells this node's.
    pub(crate) fn filled(
        &mut self,
        room: &Arc<str>,
        from: u64,
        to: u64,
        messages: Vec<(StoredMessage, bool)>,
    ) {
        self.track(room).sequencer.filled(from, to, messages);
    }
}

/// The XRANGE of `room`'s log from `from` to `to`.
pub(crate) fn fill(room: &str, from: u64, to: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(room_key(room, "log"))
        .arg(from)
        .arg(to)
        .arg("COUNT")
        .arg(to - from + 1);
    cmd
}

/// Every room as read at start.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub(crate) rooms: Vec<StoredRoom>,
    pub(crate) reads: Vec<StoredRead>,
    pub(crate) left_lobby: Vec<String>,
    /// The names the rooms speak of that Redis still holds (held, or
    /// waiting out their TTL): so that a core can show a member's display
    /// name when no connection of its own holds it.
    pub(crate) names: Vec<StoredName>,
}

/// Rooms read in one pipeline.
const ROOMS_PER_PIPELINE: usize = 64;

/// Reads every room (its latest `history` entries too), the read markers
/// and who left the lobby. Not one snapshot: what changes meanwhile is
/// heard on the channel, subscribed before, and applied again on top
/// (every write is an upsert or a removal).
#[cfg(test)]
pub(crate) async fn load(
    conn: &mut MultiplexedConnection,
    history: usize,
) -> Result<Loaded, String> {
    let mut loaded = load_rooms(conn, history).await?;
    load_names(conn, &mut loaded).await?;
    Ok(loaded)
}

/// [`load`] without the names (a shard's rooms: the names are the home's,
/// read with [`load_names`] once every shard's rooms are).
pub(crate) async fn load_rooms(
    conn: &mut MultiplexedConnection,
    history: usize,
) -> Result<Loaded, String> {
    let mut keys: Vec<String> = redis::cmd("SMEMBERS")
        .arg(ROOMS)
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    keys.sort_unstable();
    let mut loaded = Loaded::default();
    for chunk in keys.chunks(ROOMS_PER_PIPELINE) {
        let mut pipe = redis::pipe();
        for key in chunk {
            for cmd in room_reads(key, history) {
                pipe.add_command(cmd);
            }
        }
        let values: Vec<Value> = pipe.query_async(conn).await.map_err(|e| e.to_string())?;
        loaded.add(chunk, &values);
    }
    let mut left: Vec<String> = redis::cmd("SMEMBERS")
        .arg(room_key(LOBBY, "left"))
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    left.sort_unstable();
    loaded.left_lobby = left;
    Ok(loaded)
}

/// The names `loaded`'s rooms speak of, as Redis (the home) holds them.
pub(crate) async fn load_names(
    conn: &mut MultiplexedConnection,
    loaded: &mut Loaded,
) -> Result<(), String> {
    let keys = loaded.name_keys();
    for chunk in keys.chunks(ROOMS_PER_PIPELINE * 8) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("HMGET")
                .arg(name_key(key))
                .arg("display")
                .arg("secret")
                .arg("expires");
        }
        let values: Vec<Value> = pipe.query_async(conn).await.map_err(|e| e.to_string())?;
        loaded.names.extend(
            chunk
                .iter()
                .zip(&values)
                .filter_map(|(key, v)| stored_name(key, v)),
        );
    }
    Ok(())
}

impl Loaded {
    /// Every name key the rooms speak of, once, ordered.
    fn name_keys(&self) -> Vec<String> {
        let mut keys = BTreeSet::new();
        for room in &self.rooms {
            keys.extend(room.members.iter().map(|m| m.name.clone()));
            keys.extend(room.invites.iter().cloned());
            keys.extend(room.owner.iter().cloned());
        }
        keys.extend(self.reads.iter().map(|r| r.name.clone()));
        keys.into_iter().collect()
    }

    /// The replies of [`room_reads`] for each of `keys`, in order.
    pub(crate) fn add(&mut self, keys: &[String], values: &[Value]) {
        let per_room = values.len() / keys.len().max(1);
        for (key, replies) in keys.iter().zip(values.chunks(per_room.max(1))) {
            if let Some((room, reads)) = stored_room(key, replies) {
                self.rooms.push(room);
                self.reads.extend(reads);
            }
        }
    }
}

/// A name's `HMGET display secret expires`, if Redis holds it.
fn stored_name(key: &str, value: &Value) -> Option<StoredName> {
    let Value::Array(fields) = value else {
        return None;
    };
    let [display, secret, expires] = fields.as_slice() else {
        return None;
    };
    let secret = text(secret)?;
    let mut hash = [0u8; 32];
    if secret.len() != 64 {
        return None;
    }
    for (byte, pair) in hash.iter_mut().zip(secret.as_bytes().chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    let expires = text(expires)
        .and_then(|e| e.parse::<u64>().ok())
        .unwrap_or(0);
    Some(StoredName {
        key: key.to_owned(),
        display: text(display)?,
        secret: SecretHash(hash),
        expires_at: (expires != 0).then_some(expires),
    })
}
