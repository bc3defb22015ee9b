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
//! Redis work per chat message: one EVALSHA of [`scripts::APPEND`] by the
//! node that took it (HGET + XADD with MAXLEN + HSET + PUBLISH inside, sent
//! in the pipeline of its batch), and one published event received by every
//! node; nothing per recipient or per node.

mod commands;
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
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, ServerErrorKind, Value};
use smol::channel::{self, Receiver, Sender};
use smol::{Task, Timer, future};
use tracing::{debug, error, info, warn};

use super::readiness::{Check, Readiness};
use super::seam::Reply;
use super::timeouts::with_timeout;
use crate::server::{Request, Snapshot};
use encode::Encoder;
use events::Joined;
use machine::{BACKOFF, Command, CommandId, RedisLink, Status};
use requests::HeldName;
use scripts::{CHANNEL, Scripts};

/// A connection attempt (TCP, TLS, the handshake) longer than this failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A reply later than this means Redis is unreachable (or stuck).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
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

/// This node's link to Redis, connected, with its share of the chat.
pub(crate) struct Cluster {
    client: redis::Client,
    encoder: Arc<Encoder>,
    link: RedisLink,
    /// The connection in use, named by the command that opened it.
    connection: Option<(CommandId, Connection)>,
    events_tx: Sender<Event>,
    events: Receiver<Event>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

/// One connection to Redis (commands) and its subscription.
struct Connection {
    conn: MultiplexedConnection,
    /// Forwards what is published; dropped with the connection.
    _subscription: Task<()>,
}

/// What the driver's helper tasks report.
enum Event {
    Published {
        connection: CommandId,
        payload: Vec<u8>,
    },
    Unsubscribed {
        connection: CommandId,
    },
    Replied {
        id: CommandId,
        result: Result<Vec<Value>, String>,
    },
    Connected {
        id: CommandId,
        result: redis::RedisResult<Connection>,
    },
}

/// What woke the driver.
enum Woken {
    Requests(Option<Vec<Request>>),
    Event(Event),
    HeldNames(Vec<HeldName>, u64),
    Timer,
}

/// A cluster's Redis, named but not reached yet: [`Connecting::start`]
/// waits for it.
pub(crate) struct Connecting {
    client: redis::Client,
    settings: Settings,
    rooms: RoomSettings,
    /// `redis://HOST:PORT` or `rediss://…`, for the log and `/readyz`.
    place: String,
}

impl std::fmt::Debug for Connecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connecting")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl Connecting {
    /// Reads `url` (refusing a bad one); nothing is connected yet.
    pub(crate) fn new(url: &str, settings: Settings) -> Result<Connecting, String> {
        let client = redis::Client::open(url).map_err(|e| format!("--redis-url: {e}"))?;
        let tls = url.starts_with("rediss:");
        let place = format!(
            "{}{}",
            if tls { "rediss://" } else { "redis://" },
            client.get_connection_info().addr()
        );
        Ok(Connecting {
            client,
            settings,
            rooms: RoomSettings::default(),
            place,
        })
    }

    /// The rooms' settings (the defaults' until set).
    pub(crate) fn with_rooms(self, rooms: RoomSettings) -> Connecting {
        Connecting { rooms, ..self }
    }

    /// Where Redis is looked for, as the log names it.
    pub(crate) fn place(&self) -> &str {
        &self.place
    }

    /// Connects and reads what the core starts from, waiting (and saying
    /// so, once) for as long as Redis cannot be reached. The node listens
    /// meanwhile; dropping this future gives up (a shutdown while waiting).
    pub(crate) async fn start(self) -> (Cluster, Snapshot) {
        let Connecting {
            client,
            settings,
            rooms,
            place,
        } = self;
        let (node, candidate) = {
            let mut rng = rand::rng();
            let node: Arc<str> = crate::id::epoch(&mut rng)[..8].into();
            (node, crate::id::epoch(&mut rng))
        };
        let encoder = Encoder {
            node: node.clone(),
            settings: settings.clone(),
            rooms,
            scripts: Arc::new(Scripts::new()),
        };
        let (events_tx, events) = channel::unbounded();
        let mut backoff = BACKOFF.0;
        let mut waiting = false;
        loop {
            match first_join(&client, &encoder, &candidate, events_tx.clone()).await {
                Ok((connection, joined, loaded)) => {
                    let mut messages: Vec<_> = events::history(&joined.entries)
                        .into_iter()
                        .map(|(message, _)| message)
                        .collect();
                    messages.reverse(); // XREVRANGE: newest first
                    info!(
                        "Redis at {place}: this is node {node} ({} messages, last seq {}, epoch \
                         {})",
                        messages.len(),
                        joined.seq,
                        joined.epoch,
                    );
                    let (mut link, id) = RedisLink::joined(
                        place,
                        node,
                        joined.epoch.clone(),
                        settings,
                        joined.seq,
                        Instant::now(),
                    );
                    link.load_rooms(&loaded.rooms);
                    info!(
                        "Redis at {}: {} loaded",
                        link.place(),
                        crate::serve::counted(loaded.rooms.len() as u64, "room")
                    );
                    let cluster = Cluster {
                        client,
                        encoder: Arc::new(encoder),
                        link,
                        connection: Some((id, connection)),
                        events_tx,
                        events,
                    };
                    let snapshot = Snapshot {
                        epoch: joined.epoch,
                        last_seq: joined.seq,
                        messages,
                        rooms: loaded.rooms,
                        reads: loaded.reads,
                        left_lobby: loaded.left_lobby,
                        names: loaded.names,
                        ..Snapshot::default()
                    };
                    return (cluster, snapshot);
                }
                Err(e) => {
                    if !waiting {
                        warn!("waiting for Redis at {place}: {e}; retrying until it answers");
                        waiting = true;
                    } else {
                        debug!("Redis at {place}: {e}");
                    }
                    Timer::after(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        }
    }
}

impl Cluster {
    /// Serves the core task until it stops (`requests` closes): its
    /// requests go to Redis, their outcomes and the other nodes' doings
    /// come back on `replies`. Then this node leaves Redis.
    /// `readiness` hears when Redis cannot be reached ([`Check::Redis`]).
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
            let mut out = Vec::new();
            while let Some(to_core) = self.link.poll_to_core() {
                if let requests::ToCore::HeldNamesWanted(question) = to_core {
                    asked.push_back(question);
                }
                out.push(to_core.into_reply(&held_tx));
            }
            if !out.is_empty() && replies.send(out).await.is_err() {
                break; // the core task is gone
            }
            while let Some(status) = self.link.poll_status() {
                match status {
                    Status::Reachable => readiness.pass(Check::Redis),
                    Status::Unreachable(reason) | Status::Rebuilding(reason) => {
                        readiness.fail(Check::Redis, reason)
                    }
                }
            }
            let deadline = self.link.poll_timeout();
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
                        Ok(event) => Woken::Event(event),
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
                        self.link.handle_held_names(question, names, as_of, now);
                    }
                }
                Woken::Event(event) => self.handle(event, now),
                Woken::Timer => armed = None, // fired: re-arm even for the same instant
            }
            self.link.handle_timeout(now);
        }
        self.leave().await;
    }

    fn feed(&mut self, batch: Vec<Request>, now: Instant) {
        let calls = batch.into_iter().map(requests::call_of);
        self.link.handle_requests(calls, now);
    }

    fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Published {
                connection,
                payload,
            } => self.link.handle_published(connection, &payload, now),
            Event::Unsubscribed { connection } => self.link.handle_unsubscribed(connection, now),
            Event::Replied { id, result } => self.link.handle_reply(id, result, now),
            Event::Connected { id, result } => match result {
                Ok(connection) => {
                    self.connection = Some((id, connection));
                    self.link.handle_connected(id, now);
                }
                Err(e) => self.link.handle_connect_failed(id, &e.to_string(), now),
            },
        }
    }

    /// The connection in use, if up (a handle: the connection is shared).
    fn connection(&self) -> Option<MultiplexedConnection> {
        self.connection.as_ref().map(|(_, c)| c.conn.clone())
    }

    /// Runs `cmd` (no script) on a task of its own; its reply comes back as
    /// command `id`'s.
    fn query(&self, id: CommandId, cmd: Cmd) {
        let conn = self.connection();
        let events = self.events_tx.clone();
        smol::spawn(async move {
            let result = match conn {
                Some(mut conn) => cmd
                    .query_async(&mut conn)
                    .await
                    .map(|value| vec![value])
                    .map_err(|e| e.to_string()),
                None => Err("not connected".to_owned()),
            };
            let _ = events.send(Event::Replied { id, result }).await;
        })
        .detach();
    }

    /// Carries out the machine's commands, each on a task of its own; the
    /// answers come back as [`Event`]s.
    fn carry_out(&mut self) {
        while let Some(command) = self.link.poll_command() {
            let (id, cmds) = match command {
                Command::Connect { id } => {
                    let (client, scripts) = (self.client.clone(), self.encoder.scripts.clone());
                    let events = self.events_tx.clone();
                    smol::spawn(async move {
                        let result = open(&client, &scripts, id, events.clone()).await;
                        let _ = events.send(Event::Connected { id, result }).await;
                    })
                    .detach();
                    continue;
                }
                Command::Close => {
                    self.connection = None;
                    continue;
                }
                Command::Fill { id, from, to } => {
                    self.query(id, Encoder::fill(from, to));
                    continue;
                }
                Command::FillRoom { id, room, from, to } => {
                    self.query(id, rooms::fill(&room, from, to));
                    continue;
                }
                Command::Calls { id, calls } => {
                    let pipeline = self.encoder.calls(&calls);
                    let (conn, events) = (self.connection(), self.events_tx.clone());
                    let scripts = self.encoder.scripts.clone();
                    smol::spawn(async move {
                        let result = match conn {
                            Some(mut conn) => run_batch(&mut conn, &scripts, pipeline.cmds.clone())
                                .await
                                .map(|values| pipeline.answers(values))
                                .map_err(|e| e.to_string()),
                            None => Err("not connected".to_owned()),
                        };
                        let _ = events.send(Event::Replied { id, result }).await;
                    })
                    .detach();
                    continue;
                }
                Command::Join { id, join } => (id, vec![self.encoder.join(&join)]),
                Command::Heartbeat { id } => (id, vec![self.encoder.heartbeat()]),
                Command::RoomSeqs { id } => (id, vec![self.encoder.room_seqs()]),
            };
            let conn = self.connection();
            let (scripts, events) = (self.encoder.scripts.clone(), self.events_tx.clone());
            smol::spawn(async move {
                let result = match conn {
                    Some(mut conn) => run_batch(&mut conn, &scripts, cmds)
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err("not connected".to_owned()),
                };
                let _ = events.send(Event::Replied { id, result }).await;
            })
            .detach();
        }
    }

    /// The core task has stopped: the last requests are answered, and this
    /// node's remaining presence is released at once.
    async fn leave(mut self) {
        let Some((_, connection)) = self.connection.take().filter(|_| self.link.is_up()) else {
            return;
        };
        let mut conn = connection.conn;
        let deadline = Instant::now() + LEAVE_TIMEOUT;
        if self.link.busy() {
            // Its answer is the next reply.
            let _ = super::timeouts::with_deadline(deadline, self.events.recv()).await;
        }
        let cmd = self.encoder.leave();
        let left = super::timeouts::with_deadline(
            deadline,
            run_batch(&mut conn, &self.encoder.scripts, vec![cmd]),
        )
        .await;
        let place = &self.link;
        match left {
            Some(Ok(_)) => info!("left Redis at {}", place.place()),
            _ => warn!(
                "could not leave Redis at {}: this node's users leave presence when the other \
                 nodes sweep it ({:?})",
                place.place(),
                self.encoder.settings.node_timeout
            ),
        }
    }
}

/// Connects and runs the first JOIN: this node's candidate epoch, nothing
/// held, the latest messages; then reads every room.
async fn first_join(
    client: &redis::Client,
    encoder: &Encoder,
    candidate: &str,
    events: Sender<Event>,
) -> Result<(Connection, Joined, rooms::Loaded), String> {
    let mut connection = open(client, &encoder.scripts, CommandId(0), events)
        .await
        .map_err(|e| e.to_string())?;
    let join = encoder.join(&RedisLink::first_join(candidate));
    let reply = with_timeout(RESPONSE_TIMEOUT, join.query_async(&mut connection.conn))
        .await
        .ok_or("no answer in time")?
        .map_err(|e: redis::RedisError| e.to_string())?;
    let joined = Joined::read(&reply).ok_or("an unexpected answer to joining")?;
    let loaded = rooms::load(&mut connection.conn, encoder.rooms.history).await?;
    Ok((connection, joined, loaded))
}

/// Connects (commands and subscription) and loads the scripts.
async fn open(
    client: &redis::Client,
    scripts: &Scripts,
    connection: CommandId,
    events: Sender<Event>,
) -> redis::RedisResult<Connection> {
    let timed_out = || redis::RedisError::from((redis::ErrorKind::Io, "no answer in time"));
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut pubsub = with_timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .ok_or_else(timed_out)??;
    with_timeout(RESPONSE_TIMEOUT, pubsub.subscribe(CHANNEL))
        .await
        .ok_or_else(timed_out)??;
    load(&mut conn, scripts).await?;
    check_eviction(&mut conn).await?;
    let subscription = smol::spawn(async move {
        let mut stream = pubsub.into_on_message();
        while let Some(message) = stream.next().await {
            let payload = message.get_payload_bytes().to_vec();
            let event = Event::Published {
                connection,
                payload,
            };
            if events.send(event).await.is_err() {
                return;
            }
        }
        let _ = events.send(Event::Unsubscribed { connection }).await;
    });
    Ok(Connection {
        conn,
        _subscription: subscription,
    })
}

/// Refuses a Redis that may evict the cluster's keys (`maxmemory-policy`
/// other than `noeviction`): an evicted name is handed to someone else
/// while its holder is online. Not even `volatile-*`: a released name
/// waits out its TTL with an expiry set, and evicting it early gives it
/// away before its holder's secret stops being the only way in. Where
/// CONFIG is disabled (managed Redis), a warning.
async fn check_eviction(conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
    let reply: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(conn)
        .await;
    match eviction_refusal(reply) {
        Ok(()) => Ok(()),
        Err(why) => Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "refused",
            why,
        ))),
    }
}

/// What `CONFIG GET maxmemory-policy` answered means: `Err` with why the
/// Redis is refused.
fn eviction_refusal(reply: redis::RedisResult<Vec<String>>) -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    // Said once each (connecting is retried every few seconds).
    static WARNED: AtomicBool = AtomicBool::new(false);
    static REFUSED: AtomicBool = AtomicBool::new(false);
    match reply {
        Ok(pair) => match pair.get(1).map(String::as_str) {
            Some("noeviction") => Ok(()),
            Some(policy) => {
                let why = format!(
                    "Redis's maxmemory-policy is {policy}: it may evict the cluster's keys, and \
                     an evicted name is given to someone else while its holder is online; set \
                     maxmemory-policy noeviction (and give the chat a Redis of its own)"
                );
                if !REFUSED.swap(true, Ordering::Relaxed) {
                    error!("{why}; not serving until it is (retrying)");
                }
                Err(why)
            }
            None => Ok(()), // no such setting: nothing evicts
        },
        Err(e) => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                warn!(
                    "could not read Redis's maxmemory-policy ({e}): make sure it is \
                     noeviction, or evicted keys may give held names away"
                );
            }
            Ok(())
        }
    }
}

async fn load(conn: &mut MultiplexedConnection, scripts: &Scripts) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for script in scripts.all() {
        pipe.cmd("SCRIPT").arg("LOAD").arg(&script.code);
    }
    let _: Vec<Value> = pipe.query_async(conn).await?;
    Ok(())
}

/// Runs `cmds` in one pipeline; a NOSCRIPT (Redis
/// restarted or flushed its scripts) loads them again and runs those once
/// more. Per-command errors come back as `Value::ServerError`; an `Err` is
/// the connection's.
async fn run_batch(
    conn: &mut MultiplexedConnection,
    scripts: &Scripts,
    cmds: Vec<Cmd>,
) -> redis::RedisResult<Vec<Value>> {
    if cmds.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for cmd in &cmds {
        pipe.add_command(cmd.clone());
    }
    let mut values: Vec<Value> = pipe.query_async(conn).await?;
    let again: Vec<usize> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| matches!(v, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript)))
        .map(|(i, _)| i)
        .collect();
    if !again.is_empty() {
        load(conn, scripts).await?;
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for &i in &again {
            pipe.add_command(cmds[i].clone());
        }
        let retried: Vec<Value> = pipe.query_async(conn).await?;
        for (i, value) in again.into_iter().zip(retried) {
            values[i] = value;
        }
    }
    Ok(values)
}
