//! The cluster's shared store: Redis (`--redis-url`), the other backend of
//! the core's seam beside the embedded store (see `seam`).
//!
//! The protocol is [`machine::RedisLink`], sans IO: the core's requests as
//! pipelines of script calls, the [`sequencer`] of every node's messages,
//! the heartbeat and the sweep of dead nodes, reconnecting with backoff and
//! registering again what this node holds. This module is its driver, one
//! task ([`Cluster::run`]): it moves the core's requests, Redis's replies,
//! what is published and the time into the machine, and its commands to
//! Redis and its answers to the core out. Each command runs on a task of
//! its own on the one multiplexed connection; the subscription is another.
//! [`requests`] is the one place that speaks the core's seam types.
//!
//! With several Redis shards (`--redis-url` more than once, see
//! [`shards`]) there is one link per shard, each with its own connection,
//! subscription and backoff: the home's holds names, presence and the
//! lobby; the others' hold rooms only. Each request of the core goes to
//! its room's shard, anything else home; a name released on the home is
//! released on the others too.
//!
//! Redis work per chat message: a share of one EVALSHA of the append script
//! (the lobby's [`scripts::APPEND`], or ROOM_APPEND) carrying every message
//! the node took since its last pipeline (a busy node sends one pipeline of
//! appends per 10 ms at most: see `machine::outbox`); inside, one XADD per
//! message, the numbering once per room and one PUBLISH per call; every
//! node receives that event once. Nothing per recipient or per node.

mod commands;
mod connection;
mod encode;
mod events;
mod machine;
mod requests;
mod room_events;
#[cfg(test)]
mod room_script_tests;
mod room_scripts;
#[cfg(test)]
mod room_tests;
mod rooms;
mod scripts;
mod secrets;
mod sequencer;
mod shards;
mod start;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Cmd;
use smol::channel::{self, Receiver, Sender};
use smol::{Timer, future};
use tracing::{debug, info, warn};

use super::readiness::{Check, Readiness};
use super::seam::Reply;
use crate::server::{Answer, Request, Write};
#[cfg(test)]
use connection::load;
use connection::{Connection, Event, run_batch};
use encode::Encoder;
use machine::{Command, CommandId, RedisLink, Status};
use requests::{HeldName, ToCore};
use scripts::{CHANNEL, NODES, PREFIX};
use shards::{HOME, Placement};
pub(crate) use start::Connecting;

/// At shutdown, how long the last requests and leaving may take.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks a `--redis-url` as the redis crate reads it.
pub(crate) fn check_url(text: &str) -> Result<(), String> {
    let scheme = text.split_once("://").map(|(scheme, _)| scheme);
    if !matches!(scheme, Some("redis" | "rediss")) {
        return Err("expected redis://HOST:PORT/DB or rediss://HOST:PORT/DB".into());
    }
    redis::Client::open(text)
        .map(drop)
        .map_err(|e| e.to_string())
}
/// What the nodes of one cluster must agree on (README, "Running several
/// nodes": give every node the same values).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) history_size: usize,
    pub(crate) login_ttl: Duration,
    pub(crate) node_timeout: Duration,
}

/// What the nodes of one cluster must agree on about rooms (give every
/// node the same `--room-history` and `--max-room-members`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RoomSettings {
    /// Entries kept in each room's log (`MAXLEN ~`), and loaded at start.
    pub(crate) history: usize,
    /// Members of a room at most: a join past it is refused by Redis.
    pub(crate) max_members: usize,
}

impl Default for RoomSettings {
    fn default() -> RoomSettings {
        let config = crate::config::Config::default();
        RoomSettings {
            history: config.room_history,
            max_members: config.max_room_members,
        }
    }
}

/// This node's links to Redis, connected, with its share of the chat.
pub(crate) struct Cluster {
    encoder: Arc<Encoder>,
    /// One per `--redis-url`, the home first.
    shards: Vec<Shard>,
    placement: Placement,
    events_tx: Sender<(usize, Event)>,
    events: Receiver<(usize, Event)>,
    /// Answers given here rather than by a link: requests for a room on a
    /// shard out of reach.
    answers: VecDeque<Answer>,
}

/// One shard: its link, and the connection it uses.
struct Shard {
    client: redis::Client,
    link: RedisLink,
    /// The connection in use, named by the command that opened it.
    connection: Option<(CommandId, Connection)>,
    /// How `/readyz` and the log name it ("" with one shard: "Redis at …").
    name: String,
    /// Names released on the home whose rows here are still to go (sent
    /// once this shard is reached).
    owed: BTreeSet<Arc<str>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let links: Vec<_> = self.shards.iter().map(|s| &s.link).collect();
        f.debug_struct("Cluster")
            .field("links", &links)
            .finish_non_exhaustive()
    }
}

/// What woke the driver.
enum Woken {
    Requests(Option<Vec<Request>>),
    Event(usize, Event),
    HeldNames(Vec<HeldName>, u64),
    Timer,
}

impl Cluster {
    /// Serves the core task until it stops (`requests` closes): its
    /// requests go to Redis, their outcomes and the other nodes' doings
    /// come back on `replies`. Then this node leaves Redis.
    /// `readiness` hears when a shard cannot be reached ([`Check::Redis`]).
    pub(crate) async fn run(
        mut self,
        requests: Receiver<Vec<Request>>,
        replies: Sender<Vec<Reply>>,
        readiness: Arc<Readiness>,
    ) {
        let (held_tx, held_rx) = channel::unbounded();
        // The questions asked of the core, answered in order.
        let mut asked = VecDeque::new();
        let mut timer = Timer::never();
        let mut armed = None;
        loop {
            self.carry_out();
            let mut out: Vec<Reply> = self.answers.drain(..).map(Reply::Answer).collect();
            for index in 0..self.shards.len() {
                // Before the answers that follow: the name's rows on the
                // other shards go before its new holder asks anything.
                while let Some(key) = self.shards[index].link.poll_released() {
                    self.owe_release(&key);
                }
                while let Some(to_core) = self.shards[index].link.poll_to_core() {
                    if let ToCore::HeldNamesWanted(question) = &to_core {
                        asked.push_back(*question);
                    }
                    out.push(to_core.into_reply(&held_tx));
                }
            }
            if !out.is_empty() && replies.send(out).await.is_err() {
                break; // the core task is gone
            }
            for index in 0..self.shards.len() {
                while let Some(status) = self.shards[index].link.poll_status() {
                    match status {
                        Status::Reachable => {
                            readiness.pass(Check::Redis(index));
                            self.pay_releases(index);
                        }
                        // Without the home nothing is served; without
                        // another shard only its rooms.
                        Status::Unreachable(reason) | Status::Rebuilding(reason)
                            if index == HOME =>
                        {
                            readiness.fail(Check::Redis(index), self.shards[index].named(&reason))
                        }
                        Status::Unreachable(reason) | Status::Rebuilding(reason) => readiness
                            .degrade(Check::Redis(index), self.shards[index].named(&reason)),
                    }
                }
            }
            let deadline = self
                .shards
                .iter()
                .filter_map(|s| s.link.poll_timeout())
                .min();
            if deadline != armed {
                match deadline {
                    Some(at) => timer.set_at(at),
                    None => timer = Timer::never(),
                }
                armed = deadline;
            }
            let woken = {
                let requests = async { Woken::Requests(requests.recv().await.ok()) };
                let events = async {
                    match self.events.recv().await {
                        Ok((index, event)) => Woken::Event(index, event),
                        Err(_) => future::pending().await, // never: we hold a sender
                    }
                };
                let held = async {
                    match held_rx.recv().await {
                        Ok((names, as_of)) => Woken::HeldNames(names, as_of),
                        Err(_) => future::pending().await, // never: we hold a sender
                    }
                };
                let timed_out = async {
                    (&mut timer).await;
                    Woken::Timer
                };
                future::or(requests, future::or(events, future::or(held, timed_out))).await
            };
            let now = Instant::now();
            match woken {
                Woken::Requests(None) => break,
                Woken::Requests(Some(batch)) => {
                    self.feed(batch, now);
                    while let Ok(more) = requests.try_recv() {
                        self.feed(more, now);
                    }
                }
                Woken::HeldNames(names, as_of) => {
                    // The core handed on every request it had asked before
                    // answering: all are in the channel by now.
                    while let Ok(more) = requests.try_recv() {
                        self.feed(more, now);
                    }
                    if let Some(question) = asked.pop_front() {
                        let home = &mut self.shards[HOME].link;
                        home.handle_held_names(question, names, as_of, now);
                    }
                }
                Woken::Event(index, event) => self.handle(index, event, now),
                Woken::Timer => armed = None, // fired: re-arm even for the same instant
            }
            for shard in &mut self.shards {
                shard.link.handle_timeout(now);
            }
        }
        self.finish().await;
        self.leave().await;
    }

    /// The core has stopped: what it handed on and is not in Redis yet
    /// goes there (the embedded store saves all it was handed, too), each
    /// shard's replies waited for until `LEAVE_TIMEOUT`. Nobody is answered
    /// any more: other nodes deliver those messages.
    async fn finish(&mut self) {
        let deadline = Instant::now() + LEAVE_TIMEOUT;
        for shard in &mut self.shards {
            shard.link.handle_finish(Instant::now());
        }
        loop {
            self.carry_out();
            if !self.shards.iter().any(|s| s.link.is_up() && s.link.busy()) {
                return;
            }
            match super::timeouts::with_deadline(deadline, self.events.recv()).await {
                Some(Ok((index, event))) => self.handle(index, event, Instant::now()),
                _ => return,
            }
        }
    }

    /// The core's requests, each to its shard's link (in the order asked,
    /// per shard: the core needs no order of answers across shards, whose
    /// rooms share nothing). A room on a shard out of reach is refused at
    /// once, saying so.
    fn feed(&mut self, batch: Vec<Request>, now: Instant) {
        let calls = batch.into_iter().map(requests::call_of);
        let reachable: Vec<Option<&str>> = self
            .shards
            .iter()
            .map(|s| (!s.link.is_up()).then_some(s.name.as_str()))
            .collect();
        let routed = self.placement.route_batch(calls, &reachable);
        self.answers.extend(routed.refused);
        for key in routed.released {
            self.owe_release(&key);
        }
        for (shard, calls) in self.shards.iter_mut().zip(routed.per_shard) {
            if !calls.is_empty() {
                shard.link.handle_requests(calls, now);
            }
        }
    }

    fn handle(&mut self, index: usize, event: Event, now: Instant) {
        let Some(shard) = self.shards.get_mut(index) else {
            return;
        };
        let link = &mut shard.link;
        match event {
            Event::Published {
                connection,
                payload,
            } => link.handle_published(connection, &payload, now),
            Event::Unsubscribed { connection } => link.handle_unsubscribed(connection, now),
            Event::Replied { id, result } => link.handle_reply(id, result, now),
            Event::Connected { id, result } => match result {
                Ok(connection) => {
                    shard.connection = Some((id, connection));
                    link.handle_connected(id, now);
                }
                Err(e) => link.handle_connect_failed(id, &e.to_string(), now),
            },
            Event::ReleaseFailed { key } => {
                shard.owed.insert(key);
            }
        }
    }

    /// `key` was released: its rows on every shard but the home go too
    /// (the home's scripts released its own).
    fn owe_release(&mut self, key: &Arc<str>) {
        for index in 1..self.shards.len() {
            self.shards[index].owed.insert(key.clone());
            if self.shards[index].link.is_up() {
                self.pay_releases(index);
            }
        }
    }

    /// Sends shard `index` the releases it is owed, each on a task of its
    /// own; one that fails is owed again. Nobody's core hears of them: the
    /// home told every core already (see `RedisLink::rooms_only`).
    fn pay_releases(&mut self, index: usize) {
        let encoder = self.encoder.clone();
        let shard = &mut self.shards[index];
        let Some(conn) = shard.connection.as_ref().map(|(_, c)| c.conn.clone()) else {
            return;
        };
        for key in std::mem::take(&mut shard.owed) {
            let cmd = release(&encoder, &key);
            let (mut conn, scripts) = (conn.clone(), encoder.scripts.clone());
            let events = self.events_tx.clone();
            smol::spawn(async move {
                let done = run_batch(&mut conn, &scripts, vec![cmd]).await;
                if !matches!(done.as_deref(), Ok([redis::Value::Int(1)])) {
                    debug!(
                        "the release of {key} on shard {} failed: {done:?}",
                        index + 1
                    );
                    let _ = events.send((index, Event::ReleaseFailed { key })).await;
                }
            })
            .detach();
        }
    }

    /// Carries out the machines' commands, each on a task of its own; the
    /// answers come back as [`Event`]s.
    fn carry_out(&mut self) {
        for index in 0..self.shards.len() {
            while let Some(command) = self.shards[index].link.poll_command() {
                self.carry_out_one(index, command);
            }
        }
    }

    fn carry_out_one(&mut self, index: usize, command: Command) {
        let shard = &mut self.shards[index];
        let conn = shard.connection.as_ref().map(|(_, c)| c.conn.clone());
        let (scripts, events) = (self.encoder.scripts.clone(), self.events_tx.clone());
        let (id, cmds) = match command {
            Command::Connect { id } => {
                let client = shard.client.clone();
                smol::spawn(async move {
                    let result =
                        connection::open(&client, &scripts, index, id, events.clone()).await;
                    let _ = events.send((index, Event::Connected { id, result })).await;
                })
                .detach();
                return;
            }
            Command::Close => {
                shard.connection = None;
                return;
            }
            Command::Fill { id, from, to } => {
                return query(conn, index, id, Encoder::fill(from, to), events);
            }
            Command::FillRoom { id, room, from, to } => {
                return query(conn, index, id, rooms::fill(&room, from, to), events);
            }
            Command::Calls { id, calls } => {
                let pipeline = self.encoder.calls(&calls);
                smol::spawn(async move {
                    let result = match conn {
                        Some(mut conn) => run_batch(&mut conn, &scripts, pipeline.cmds.clone())
                            .await
                            .map(|values| pipeline.answers(values))
                            .map_err(|e| e.to_string()),
                        None => Err("not connected".to_owned()),
                    };
                    let _ = events.send((index, Event::Replied { id, result })).await;
                })
                .detach();
                return;
            }
            Command::Join { id, join } => (id, vec![self.encoder.join(&join)]),
            Command::Heartbeat { id } => (id, vec![self.encoder.heartbeat()]),
            Command::RoomSeqs { id } => (id, vec![self.encoder.room_seqs()]),
        };
        smol::spawn(async move {
            let result = match conn {
                Some(mut conn) => run_batch(&mut conn, &scripts, cmds)
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("not connected".to_owned()),
            };
            let _ = events.send((index, Event::Replied { id, result })).await;
        })
        .detach();
    }

    /// The core task has stopped: the last requests are answered, and this
    /// node's remaining presence is released at once, on every shard.
    async fn leave(mut self) {
        let deadline = Instant::now() + LEAVE_TIMEOUT;
        for shard in &mut self.shards {
            let Some((_, connection)) = shard.connection.take().filter(|_| shard.link.is_up())
            else {
                continue;
            };
            let mut conn = connection.conn;
            if shard.link.busy() {
                // Its answer is among the next replies.
                let _ = super::timeouts::with_deadline(deadline, self.events.recv()).await;
            }
            let cmd = self.encoder.leave();
            let left = super::timeouts::with_deadline(
                deadline,
                run_batch(&mut conn, &self.encoder.scripts, vec![cmd]),
            )
            .await;
            let place = shard.link.place();
            match left {
                Some(Ok(_)) => info!("left Redis at {place}"),
                _ => warn!(
                    "could not leave Redis at {place}: this node's users leave presence when the \
                     other nodes sweep it ({:?})",
                    self.encoder.settings.node_timeout
                ),
            }
        }
    }
}

impl Shard {
    /// `reason` (the link's, naming its Redis) as `/readyz` says it: with
    /// the shard's number when there are several.
    fn named(&self, reason: &str) -> String {
        if self.name.is_empty() {
            return reason.to_owned();
        }
        let place = self.link.place();
        let reason = reason
            .strip_prefix(&format!("Redis at {place} "))
            .unwrap_or(reason);
        format!("{}: {reason}", self.name)
    }
}

/// Runs `cmd` (no script) on a task of its own; its reply comes back as
/// command `id`'s of shard `index`.
fn query(
    conn: Option<redis::aio::MultiplexedConnection>,
    index: usize,
    id: CommandId,
    cmd: Cmd,
    events: Sender<(usize, Event)>,
) {
    smol::spawn(async move {
        let result = match conn {
            Some(mut conn) => cmd
                .query_async(&mut conn)
                .await
                .map(|value| vec![value])
                .map_err(|e| e.to_string()),
            None => Err("not connected".to_owned()),
        };
        let _ = events.send((index, Event::Replied { id, result })).await;
    })
    .detach();
}

/// ROOM_RELEASE of `key` on a shard of rooms: its event is heard by no
/// core there (the home told them).
fn release(encoder: &Encoder, key: &str) -> Cmd {
    let write = Write::Release { key: key.into() };
    let event = room_events::writes_event(&encoder.node, [&write]);
    let ties = room_scripts::name_rooms_key(key);
    let script = &encoder.scripts.room_release;
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&script.hash)
        .arg(3)
        .arg(NODES)
        .arg(room_scripts::ROOMS)
        .arg(ties)
        .arg(&*encoder.node)
        .arg(key)
        .arg(PREFIX)
        .arg(CHANNEL)
        .arg(event);
    cmd
}
