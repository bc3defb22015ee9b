//! This node's side of the cluster protocol, sans IO: no socket, no task,
//! no clock. The driver (`Cluster::run`) feeds it the core's requests,
//! Redis's replies, what is published, the link going up or down and the
//! time (`handle_*`, each with `now`), and carries out what it asks
//! (`poll_command`, `poll_to_core`, `poll_status`) until `poll_timeout`.
//!
//! - Requests: a batch of the core's requests goes out as one pipeline of
//!   script calls ([`Command::Calls`]), one batch in flight at a time, so
//!   that Redis runs this node's requests in the order the core asked.
//! - Messages reach the core through the [`Sequencer`], in `seq` order,
//!   each once; what pub/sub lost is fetched from the history
//!   ([`Command::Fill`]) while nothing is in flight.
//! - A heartbeat every fifth of `--node-timeout` keeps this node alive in
//!   Redis and sweeps dead nodes.
//! - When Redis cannot be reached, every request fails at once, the outage
//!   is said once, and the link is made again with backoff. Once it is
//!   back, and whenever Redis forgot this node, its presence is made
//!   exactly what the core says it holds ([`Command::Join`]): the core is
//!   asked ([`ToCore::HeldNamesWanted`]), and nothing else is sent until
//!   the JOIN has run (see [`RedisLink::handle_held_names`]).
//! - A script answering [`LOST`] (Redis lost the cluster's keys, or swept
//!   this node) did nothing: its request fails, and this node registers
//!   again the same way. While the cluster rebuilds (see `scripts`),
//!   Redis refuses new names and messages (`REBUILDING`), and this node
//!   is not ready.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use tracing::{debug, info, warn};

use super::Settings;
pub(crate) use super::commands::{Command, CommandId, Join, JoinName, Status};
use super::events::{self, What, single};
use super::requests::{Answer, Call, Failed, HeldName, Remote, ToCore, hex};
use super::room_events::{self, room_of};
use super::room_scripts::LOBBY;
use super::rooms::RoomSequencers;
use super::scripts::LOST;
use super::secrets::Secrets;
use super::sequencer::Sequencer;
use crate::server::StoredRoom;

mod answers;
mod outbox;
mod role;

use answers::is_error;
use outbox::{APPEND_PACE, Outbox};

/// Between reconnection attempts: doubling from the first to the last.
pub(crate) const BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(2));

pub(crate) struct RedisLink {
    /// Where Redis is, for the log (never the password).
    place: String,
    node: Arc<str>,
    epoch: String,
    settings: Settings,
    sequencer: Sequencer,
    /// Each room's entries, in its own numbering.
    rooms: RoomSequencers,
    /// What LOGOUT and JOIN need, and the core keeps none of.
    secrets: Secrets,
    /// The question to the core that will prune `secrets`, if asked.
    pruning: Option<u64>,
    /// Questions asked of the core so far.
    questions: u64,
    state: State,
    /// The core's requests waiting for their pipeline, and when they go.
    outbox: Outbox,
    next_id: u64,
    backoff: Duration,
    next_beat: Instant,
    /// When the current outage began, and why.
    outage: Option<(Instant, String)>,
    /// Redis refused some of the last batch's requests (said once).
    failing_calls: bool,
    /// The other epoch found in Redis on rejoining, once it has been said.
    other_epoch: Option<String>,
    /// Redis answered [`LOST`]: said once, until registered again.
    forgotten: bool,
    /// A shard of rooms only (see `shards`): no names, no lobby, no releases.
    rooms_only: bool,
    /// Names this node must release on the other shards (see `role`).
    releases: VecDeque<Arc<str>>,
    /// When the cluster's rebuilding window ends, after Redis lost its keys.
    rebuilt_at: Option<Instant>,
    commands: VecDeque<Command>,
    to_core: VecDeque<ToCore>,
    status: VecDeque<Status>,
}

enum State {
    /// No connection: requests fail at once.
    Down {
        /// When to try connecting again, unless trying already.
        retry_at: Option<Instant>,
        connecting: Option<CommandId>,
    },
    Up {
        connection: CommandId,
        beat: Option<CommandId>,
        fill: Option<(CommandId, u64, u64)>,
        phase: Phase,
    },
}

enum Phase {
    Ready {
        in_flight: Option<InFlight>,
        /// Redis forgot this node: it registers again once nothing is in
        /// flight.
        rejoin: bool,
    },
    /// The core was asked which names it holds; nothing goes out meanwhile.
    Asking {
        question: u64,
    },
    /// The requests the core asked for before it answered run first; the
    /// JOIN waits for them, and counts the names they were given.
    Settling {
        in_flight: InFlight,
        names: Vec<JoinName>,
    },
    Joining {
        id: CommandId,
        names: Vec<JoinName>,
    },
}

struct InFlight {
    id: CommandId,
    batch: Vec<Call>,
}

impl RedisLink {
    /// Connected (as `connection`) and joined: the core has every message
    /// up to `last_seq`, and the cluster's `epoch`.
    pub(crate) fn joined(
        place: String,
        node: Arc<str>,
        epoch: String,
        settings: Settings,
        last_seq: u64,
        now: Instant,
    ) -> (RedisLink, CommandId) {
        let connection = CommandId(0);
        let link = RedisLink {
            place,
            node,
            epoch,
            next_beat: now + settings.node_timeout / 5,
            settings,
            sequencer: Sequencer::new(last_seq),
            rooms: RoomSequencers::default(),
            secrets: Secrets::new(),
            pruning: None,
            questions: 0,
            state: State::Up {
                connection,
                beat: None,
                fill: None,
                phase: Phase::Ready {
                    in_flight: None,
                    rejoin: false,
                },
            },
            outbox: Outbox::new(APPEND_PACE),
            next_id: 0,
            backoff: BACKOFF.0,
            outage: None,
            failing_calls: false,
            other_epoch: None,
            forgotten: false,
            rooms_only: false,
            releases: VecDeque::new(),
            rebuilt_at: None,
            commands: VecDeque::new(),
            to_core: VecDeque::new(),
            status: VecDeque::new(),
        };
        (link, connection)
    }

    /// The rooms the core starts with (read after the first JOIN).
    pub(crate) fn load_rooms(&mut self, rooms: &[StoredRoom]) {
        self.rooms.load(rooms);
    }

    /// The JOIN of a node starting (nothing held, nothing delivered).
    pub(crate) fn first_join(epoch: &str) -> Join {
        Join {
            epoch: epoch.to_owned(),
            rejoining: false,
            delivered: 0,
            names: Vec::new(),
        }
    }

    /// Requests of the core, in the order it asked.
    pub(crate) fn handle_requests(
        &mut self,
        requests: impl IntoIterator<Item = Result<Call, Answer>>,
        now: Instant,
    ) {
        let mut batch = Vec::new();
        for call in requests {
            match call {
                Ok(mut call) => {
                    // A logout frees the name with the secret it had.
                    if let Call::Logout { key, secret, .. } = &mut call {
                        *secret = self.secrets.take(key).unwrap_or_default();
                    }
                    batch.push(call);
                }
                Err(answer) => self.to_core.push_back(ToCore::Answer(answer)),
            }
        }
        match &self.state {
            State::Down { .. } => {
                let reason = self
                    .outage
                    .as_ref()
                    .map_or("not connected", |o| o.1.as_str());
                let reason = reason.to_owned();
                self.fail(batch, &reason);
            }
            State::Up { .. } => self.outbox.push(batch, now),
        }
        self.progress(now);
    }

    /// The core's answer to [`ToCore::HeldNamesWanted`]`(question)`: the
    /// names it holds, counting every request it asked up to `as_of`. The
    /// driver hands this node every such request before the answer.
    pub(crate) fn handle_held_names(
        &mut self,
        question: u64,
        names: Vec<HeldName>,
        as_of: u64,
        now: Instant,
    ) {
        if self.pruning == Some(question) {
            self.pruning = None;
            self.secrets.prune(question, &names);
        }
        let State::Up { phase, .. } = &mut self.state else {
            return;
        };
        if !matches!(phase, Phase::Asking { question: q } if *q == question) {
            return; // the link was lost meanwhile
        }
        self.secrets.prune(question, &names);
        let questions = self.questions;
        let names = names
            .into_iter()
            .map(|held| {
                // The core's hash of the secret when this link never saw
                // the reserve (learnt before a restart of the link's
                // memory of secrets, or pruned); kept, so that a logout
                // of the name frees it with that secret.
                let secret = match self.secrets.get(&held.key) {
                    Some(secret) => secret.to_owned(),
                    None => {
                        let secret = hex(&held.secret);
                        self.secrets
                            .learn(held.key.clone(), secret.clone(), questions);
                        secret
                    }
                };
                JoinName {
                    key: held.key,
                    display: held.display,
                    secret,
                    connections: held.connections,
                }
            })
            .collect();
        // What the core asked before it answered is counted in its answer
        // and must run before the JOIN; what it asked after, after.
        let before = self.outbox.take_up_to(as_of);
        let id = self.next_id();
        let phase = if before.is_empty() {
            self.join_phase(id, names)
        } else {
            let calls = before.to_vec();
            self.commands.push_back(Command::Calls { id, calls });
            let in_flight = InFlight { id, batch: before };
            Phase::Settling { in_flight, names }
        };
        self.set_phase(phase);
        self.progress(now);
    }

    /// The reply to command `id`: one value per command of its pipeline, or
    /// why the connection failed.
    pub(crate) fn handle_reply(
        &mut self,
        id: CommandId,
        reply: Result<Vec<Value>, String>,
        now: Instant,
    ) {
        let State::Up {
            beat, fill, phase, ..
        } = &mut self.state
        else {
            return;
        };
        if self.rooms.take_seqs(id) {
            match reply.and_then(single) {
                Ok(value) => self.rooms.published_up_to(&room_events::seqs(&value)),
                Err(why) => self.lost(why, self.backoff, now),
            }
        } else if let Some((room, from, to)) = self.rooms.take_fill(id) {
            match reply.and_then(single) {
                Ok(value) => {
                    let entries = room_events::room_log(&value)
                        .into_iter()
                        .map(|(entry, origin)| (entry, origin == *self.node))
                        .collect();
                    self.rooms.filled(&room, from, to, entries);
                }
                Err(why) => self.lost(why, self.backoff, now),
            }
        } else if *beat == Some(id) {
            *beat = None;
            match reply {
                Ok(values) if values.iter().any(|v| is_error(v, LOST)) => self.forgot(),
                reply => match reply.and_then(single) {
                    Ok(value) => self.beaten(value),
                    Err(why) => self.lost(why, self.backoff, now),
                },
            }
        } else if let Some((_, from, to)) = (*fill).filter(|f| f.0 == id) {
            *fill = None;
            match reply.and_then(single) {
                Ok(value) => {
                    let messages = events::history(&value)
                        .into_iter()
                        .map(|(message, origin)| (message, origin == *self.node))
                        .collect();
                    self.sequencer.filled(from, to, messages);
                }
                Err(why) => self.lost(why, self.backoff, now),
            }
        } else {
            let phase = std::mem::replace(
                phase,
                Phase::Ready {
                    in_flight: None,
                    rejoin: false,
                },
            );
            match (phase, reply) {
                (
                    Phase::Ready {
                        in_flight: Some(f),
                        rejoin,
                    },
                    Ok(values),
                ) if f.id == id => {
                    self.set_phase(Phase::Ready {
                        in_flight: None,
                        rejoin,
                    });
                    self.replied(f.batch, values, None, now);
                }
                (
                    Phase::Settling {
                        in_flight,
                        mut names,
                    },
                    Ok(values),
                ) if in_flight.id == id => {
                    self.replied(in_flight.batch, values, Some(&mut names), now);
                    let id = self.next_id();
                    let phase = self.join_phase(id, names);
                    self.set_phase(phase);
                }
                (Phase::Joining { id: joining, names }, Ok(mut values)) if joining == id => {
                    match self.rejoined(values.pop(), names) {
                        Ok(rebuilding) => {
                            if let Some((since, why)) = self.outage.take() {
                                info!(
                                    "Redis at {} is back after {:.1?} ({why}): {} are taken \
                                     again",
                                    self.place,
                                    now.saturating_duration_since(since),
                                    self.what_it_takes()
                                );
                            }
                            self.backoff = BACKOFF.0;
                            self.forgotten = false;
                            if self.rooms.any() {
                                // What pub/sub lost of the rooms meanwhile.
                                let id = self.next_id();
                                self.rooms.asking_seqs(id);
                                self.commands.push_back(Command::RoomSeqs { id });
                            }
                            if rebuilding.is_zero() {
                                self.status.push_back(Status::Reachable);
                            } else {
                                self.rebuilding(rebuilding, now);
                            }
                        }
                        Err(why) => self.lost(why, BACKOFF.1, now),
                    }
                }
                (phase, Ok(_)) => self.set_phase(phase), // not awaited: stale
                (phase, Err(why)) => {
                    let awaited = match &phase {
                        Phase::Ready { in_flight, .. } => {
                            in_flight.as_ref().is_some_and(|f| f.id == id)
                        }
                        Phase::Settling { in_flight, .. } => in_flight.id == id,
                        Phase::Joining { id: joining, .. } => *joining == id,
                        Phase::Asking { .. } => false,
                    };
                    self.set_phase(phase);
                    if awaited {
                        self.lost(why, self.backoff, now);
                    }
                }
            }
        }
        self.progress(now);
    }

    /// Connection `id` is up, subscribed, its scripts loaded.
    pub(crate) fn handle_connected(&mut self, id: CommandId, now: Instant) {
        if !matches!(self.state, State::Down { connecting: Some(c), .. } if c == id) {
            return; // never: one connection is tried at a time
        }
        self.state = State::Up {
            connection: id,
            beat: None,
            fill: None,
            phase: Phase::Asking { question: 0 },
        };
        self.ask_held_names(now);
    }

    /// Asks the core which names it holds, before (re)joining; a shard of
    /// rooms only holds none, and joins at once, before what waits.
    fn ask_held_names(&mut self, now: Instant) {
        self.questions += 1;
        let question = self.questions;
        self.set_phase(Phase::Asking { question });
        if self.rooms_only {
            return self.handle_held_names(question, Vec::new(), 0, now);
        }
        self.to_core.push_back(ToCore::HeldNamesWanted(question));
        self.progress(now);
    }

    /// Connecting as `id` failed.
    pub(crate) fn handle_connect_failed(&mut self, id: CommandId, why: &str, now: Instant) {
        if let State::Down {
            retry_at,
            connecting,
        } = &mut self.state
            && *connecting == Some(id)
        {
            debug!("Redis at {}: {why}", self.place);
            *connecting = None;
            *retry_at = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(BACKOFF.1);
        }
    }

    /// An event published on the channel, heard on connection `connection`.
    pub(crate) fn handle_published(&mut self, connection: CommandId, payload: &[u8], now: Instant) {
        if !self.is_current(connection) {
            return;
        }
        let heard = match events::decode(payload) {
            Ok(heard) => heard,
            Err(e) => return debug!("ignoring an event on {}: {e}", super::scripts::CHANNEL),
        };
        let own = heard.origin == *self.node;
        match heard.what {
            What::Writes(writes) => {
                for write in writes {
                    match room_of(&write).filter(|room| ***room != *LOBBY).cloned() {
                        Some(room) => self.rooms.heard(&room, write, own),
                        // The lobby's, and releases: among the lobby's
                        // messages, in the order heard.
                        None if !own => self.heard_nameful(write, &heard.origin),
                        None => {}
                    }
                }
            }
            What::RoomEntries(runs) => {
                for (room, entries) in runs {
                    for entry in entries {
                        self.rooms.published(&room, entry, own);
                    }
                }
            }
            What::Messages(messages) => {
                for message in messages {
                    self.sequencer.published(message, own);
                }
            }
            What::Other(_) | What::LoggedOut { .. } if own => {}
            What::LoggedOut {
                key,
                username,
                secret,
            } => {
                // A logout of the secret this node's holders were given;
                // one of another secret is older than their fresh claim
                // (the name was freed, then claimed here): it is not theirs.
                let held = self.secrets.get(&key);
                if let (Some(freed), Some(held)) = (&secret, held)
                    && freed != held
                {
                    debug!("{username} logged out elsewhere before it was claimed here: ignored");
                } else {
                    self.secrets.take(&key);
                    self.sequencer.event(Remote::LoggedOut {
                        key: key.into(),
                        username: username.into(),
                    });
                }
            }
            What::Other(remote) => self.sequencer.event(remote),
        }
        self.progress(now);
    }

    /// The subscription of `connection` ended.
    pub(crate) fn handle_unsubscribed(&mut self, connection: CommandId, now: Instant) {
        if self.is_current(connection) {
            self.lost("the subscription ended".to_owned(), self.backoff, now);
            self.progress(now);
        }
    }

    /// Time passed: a heartbeat, a reconnection or waiting appends may be
    /// due. Early calls do nothing.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.rooms.handle_timeout(now, &mut self.to_core);
        if self.sending_due().is_some_and(|at| at <= now) {
            self.progress(now);
        }
        if let Some(at) = self.rebuilt_at
            && at <= now
        {
            self.rebuilt_at = None;
            if matches!(self.state, State::Up { .. }) && !self.forgotten {
                info!(
                    "the cluster's state in Redis at {} is rebuilt: new names and messages are \
                     taken again",
                    self.place
                );
                self.status.push_back(Status::Reachable);
            }
        }
        if self.next_beat <= now {
            let period = self.settings.node_timeout / 5;
            while self.next_beat <= now {
                self.next_beat += period;
            }
            if let State::Up {
                beat: beat @ None, ..
            } = &mut self.state
            {
                self.next_id += 1;
                let id = CommandId(self.next_id);
                *beat = Some(id);
                self.commands.push_back(Command::Heartbeat { id });
            }
        }
        if let State::Down {
            retry_at: Some(at),
            connecting: connecting @ None,
        } = &mut self.state
            && *at <= now
        {
            self.next_id += 1;
            let id = CommandId(self.next_id);
            *connecting = Some(id);
            self.commands.push_back(Command::Connect { id });
            if let State::Down { retry_at, .. } = &mut self.state {
                *retry_at = None;
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let next = match self.state {
            State::Down {
                retry_at: Some(at),
                connecting: None,
            } => at.min(self.next_beat),
            _ => self.next_beat,
        };
        let next = self.rooms.poll_timeout().map_or(next, |at| at.min(next));
        let next = self.sending_due().map_or(next, |at| at.min(next));
        Some(self.rebuilt_at.map_or(next, |at| at.min(next)))
    }

    /// When the waiting requests go, if they can go when due (nothing in
    /// flight, not rejoining).
    fn sending_due(&self) -> Option<Instant> {
        match &self.state {
            State::Up {
                phase:
                    Phase::Ready {
                        in_flight: None,
                        rejoin: false,
                    },
                ..
            } => self.outbox.due_at(),
            _ => None,
        }
    }

    #[must_use]
    pub(crate) fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    #[must_use]
    pub(crate) fn poll_to_core(&mut self) -> Option<ToCore> {
        self.to_core.pop_front()
    }

    #[must_use]
    pub(crate) fn poll_status(&mut self) -> Option<Status> {
        self.status.pop_front()
    }

    /// The core has stopped: what it handed on and still waits (for its
    /// pace, or behind the pipeline in flight) goes to Redis without
    /// waiting for company.
    pub(crate) fn handle_finish(&mut self, now: Instant) {
        self.outbox.hurry();
        self.progress(now);
    }

    /// Whether a batch or a JOIN is in flight, or requests wait to be sent
    /// (at shutdown, they are sent and their replies waited for before
    /// leaving).
    pub(crate) fn busy(&self) -> bool {
        match &self.state {
            State::Up { phase, .. } => match phase {
                Phase::Ready { in_flight, .. } => in_flight.is_some() || !self.outbox.is_empty(),
                Phase::Asking { .. } => false,
                Phase::Settling { .. } | Phase::Joining { .. } => true,
            },
            State::Down { .. } => false,
        }
    }

    /// Whether connected (at shutdown, leaving is worth trying).
    pub(crate) fn is_up(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    /// Where Redis is, for the log.
    pub(crate) fn place(&self) -> &str {
        &self.place
    }

    fn is_current(&self, connection: CommandId) -> bool {
        matches!(self.state, State::Up { connection: c, .. } if c == connection)
    }

    fn next_id(&mut self) -> CommandId {
        self.next_id += 1;
        CommandId(self.next_id)
    }

    fn set_phase(&mut self, new: Phase) {
        if let State::Up { phase, .. } = &mut self.state {
            *phase = new;
        }
    }

    fn join_phase(&mut self, id: CommandId, names: Vec<JoinName>) -> Phase {
        let join = Join {
            epoch: self.epoch.clone(),
            rejoining: true,
            delivered: self.sequencer.delivered(),
            names: names.clone(),
        };
        self.commands.push_back(Command::Join { id, join });
        Phase::Joining { id, names }
    }

    /// After every input: the next batch (when due) or JOIN goes out,
    /// messages that can go reach the core, and a gap is fetched while
    /// nothing is in flight.
    fn progress(&mut self, now: Instant) {
        if self.pruning.is_none() && self.secrets.wants_pruning() {
            self.questions += 1;
            self.pruning = Some(self.questions);
            self.to_core
                .push_back(ToCore::HeldNamesWanted(self.questions));
        }
        if let State::Up {
            phase:
                Phase::Ready {
                    in_flight: in_flight @ None,
                    rejoin,
                },
            ..
        } = &mut self.state
        {
            if *rejoin {
                return self.ask_held_names(now);
            } else if let Some(batch) = self.outbox.take_due(now) {
                self.next_id += 1;
                let id = CommandId(self.next_id);
                let calls = batch.clone();
                self.commands.push_back(Command::Calls { id, calls });
                *in_flight = Some(InFlight { id, batch });
            }
        }
        let busy = self.busy();
        self.sequencer.release(busy, &mut self.to_core);
        if let State::Up {
            fill: fill @ None, ..
        } = &mut self.state
            && !busy
            && let Some((from, to)) = self.sequencer.gap()
        {
            self.next_id += 1;
            let id = CommandId(self.next_id);
            *fill = Some((id, from, to));
            self.commands.push_back(Command::Fill { id, from, to });
        }
        self.rooms.release(busy, &mut self.to_core);
        if matches!(self.state, State::Up { .. })
            && !busy
            && let Some((room, from, to)) = self.rooms.gap()
        {
            let id = self.next_id();
            self.rooms.filling(id, room.clone(), from, to);
            self.commands
                .push_back(Command::FillRoom { id, room, from, to });
        }
    }

    /// Redis cannot be reached: every request in flight or waiting fails
    /// (never acknowledged), and so does every new one until it is back;
    /// a connection is tried again after `retry`. Said once per outage.
    fn lost(&mut self, why: String, retry: Duration, now: Instant) {
        if !matches!(self.state, State::Up { .. }) {
            return;
        }
        if self.outage.is_none() {
            warn!(
                "lost Redis at {}: {why}; refusing {} until it is back (reconnecting)",
                self.place,
                self.what_it_takes()
            );
            self.outage = Some((now, why.clone()));
        }
        let reason = format!("Redis at {} cannot be reached: {why}", self.place);
        self.status.push_back(Status::Unreachable(reason));
        self.commands.push_back(Command::Close);
        self.rooms.forget_fill();
        let state = std::mem::replace(
            &mut self.state,
            State::Down {
                retry_at: Some(now + retry),
                connecting: None,
            },
        );
        if let State::Up {
            phase:
                Phase::Ready {
                    in_flight: Some(InFlight { batch, .. }),
                    ..
                }
                | Phase::Settling {
                    in_flight: InFlight { batch, .. },
                    ..
                },
            ..
        } = state
        {
            self.fail(batch, &why);
        }
        let waiting = self.outbox.take_all();
        self.fail(waiting, &why);
    }

    fn fail(&mut self, batch: Vec<Call>, why: &str) {
        let error = Failed(format!("Redis is unreachable: {why}"));
        for call in batch {
            self.to_core
                .push_back(ToCore::Answer(call.fail(error.clone())));
        }
    }
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("place", &self.place)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}
