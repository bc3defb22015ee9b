//! The cluster's shared store: Redis (`--redis-url`), the other backend of
//! the core's seam beside the embedded store (see `core_task::Backend`).
//!
//! One task, the dispatcher, owns this node's side of Redis:
//! - the core's requests go out as EVALSHA of the scripts in [`scripts`], a
//!   batch of them in one pipeline (one round trip), one batch in flight at
//!   a time, so that Redis runs this node's requests in the order the core
//!   asked them; their outcomes go back to the core task;
//! - the subscription to the events channel brings the other nodes'
//!   messages, joins, leaves and logouts (each tagged with its node; this
//!   node's own are ignored, but for its messages' echoes, which the
//!   [`sequencer`] needs);
//! - the [`sequencer`] hands the core every node's messages in `seq`
//!   order, each once, fetching from the history what pub/sub lost;
//! - a heartbeat tells Redis this node is alive and sweeps dead nodes
//!   (`--node-timeout`), so that a killed node's users leave everyone's
//!   presence within a bounded time;
//! - when Redis cannot be reached, every request fails at once (the core
//!   refuses logins and messages with `unavailable`), the outage is logged
//!   once, and the link is made again with backoff; once it is back, this
//!   node's presence is made exactly what it holds again ([`scripts::JOIN`])
//!   and what it missed is fetched from the history.
//!
//! Redis work per chat message: one EVALSHA of [`scripts::APPEND`] by the
//! node that took it (HGET + XADD with MAXLEN + HSET + PUBLISH inside, sent
//! in the pipeline of its batch), and one published event received by every
//! node; nothing per recipient or per node.

mod events;
mod scripts;
mod sequencer;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, ServerErrorKind, Value};
use smol::channel::{self, Receiver, Sender};
use smol::{Task, Timer, future};
use tracing::{debug, error, info, warn};

use super::core_task::Reply;
use super::readiness::{Check, Readiness};
use super::timeouts::with_timeout;
use crate::protocol::LeaveReason;
use crate::server::{
    Answer, Append, Claim, Disconnect, Failed, Remote, Request, Reserve, SecretHash, Snapshot,
    Write,
};
use events::{What, number, text};
use scripts::{CHANNEL, HISTORY, Lua, META, NODES, ONLINE, PREFIX, Scripts};
use sequencer::Sequencer;

/// A connection attempt (TCP, TLS, the handshake) longer than this failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A reply later than this means Redis is unreachable (or stuck).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Between reconnection attempts: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// Requests sent in one pipeline at most; more wait for the next.
const MAX_BATCH: usize = 1024;
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

/// This node's link to Redis, connected, with its share of the chat.
pub(crate) struct Cluster {
    client: redis::Client,
    /// Where Redis is, for the log (never the password).
    place: String,
    node: Arc<str>,
    epoch: String,
    settings: Settings,
    scripts: Arc<Scripts>,
    link: Option<Link>,
    /// Connection generations: what a task of an older one reports is
    /// ignored.
    generation: u64,
    events_tx: Sender<Event>,
    events: Receiver<Event>,
    sequencer: Sequencer,
    /// The names this node's connections hold, as Redis must count them.
    held: HashMap<Arc<str>, Held>,
    /// Told whether Redis can be reached (`/readyz`); set by `run`.
    readiness: Option<Arc<Readiness>>,
    /// The other epoch found in Redis on rejoining, once it has been said.
    other_epoch: Option<String>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("place", &self.place)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Held {
    display: Arc<str>,
    /// The SHA-256 of its secret, in hex, as Redis keeps it.
    secret: String,
    connections: usize,
}

/// One connection to Redis (commands) and its subscription.
struct Link {
    conn: MultiplexedConnection,
    /// Forwards what is published; dropped with the link.
    _subscription: Task<()>,
}

/// What the dispatcher's helper tasks report.
enum Event {
    Published {
        generation: u64,
        payload: Vec<u8>,
    },
    Unsubscribed {
        generation: u64,
    },
    Replied {
        generation: u64,
        result: redis::RedisResult<Vec<Value>>,
    },
    Beat {
        generation: u64,
        result: redis::RedisResult<Value>,
    },
    Filled {
        generation: u64,
        from: u64,
        to: u64,
        result: redis::RedisResult<Value>,
    },
    Connected {
        generation: u64,
        result: redis::RedisResult<Link>,
    },
}

/// The batch in flight.
enum InFlight {
    Requests(Vec<Request>),
    /// Making this node's presence what it holds, after a (re)connect.
    Join,
}

/// What woke the dispatcher.
enum Woken {
    Requests(Option<Vec<Request>>),
    Event(Event),
    Beat,
    Retry,
}

impl Cluster {
    /// Connects to Redis at `url` and reads what the core starts from,
    /// waiting (and saying so, once) for as long as Redis cannot be reached.
    pub(crate) async fn start(
        url: &str,
        settings: Settings,
    ) -> Result<(Cluster, Snapshot), String> {
        let client = redis::Client::open(url).map_err(|e| format!("--redis-url: {e}"))?;
        let tls = url.starts_with("rediss:");
        let place = format!(
            "{}{}",
            if tls { "rediss://" } else { "redis://" },
            client.get_connection_info().addr()
        );
        let mut rng = rand::rng();
        let node: Arc<str> = crate::id::epoch(&mut rng)[..8].into();
        let candidate = crate::id::epoch(&mut rng);
        let (events_tx, events) = channel::unbounded();
        let mut cluster = Cluster {
            client,
            place,
            node,
            epoch: candidate,
            settings,
            scripts: Arc::new(Scripts::new()),
            link: None,
            generation: 0,
            events_tx,
            events,
            sequencer: Sequencer::new(0),
            held: HashMap::new(),
            readiness: None,
            other_epoch: None,
        };
        let mut backoff = BACKOFF.0;
        let mut waiting = false;
        loop {
            match cluster.first_join().await {
                Ok(snapshot) => {
                    info!(
                        "Redis at {}: this is node {} ({} messages, last seq {}, epoch {})",
                        cluster.place,
                        cluster.node,
                        snapshot.messages.len(),
                        snapshot.last_seq,
                        snapshot.epoch,
                    );
                    return Ok((cluster, snapshot));
                }
                Err(e) => {
                    if !waiting {
                        warn!(
                            "waiting for Redis at {}: {e}; retrying until it answers",
                            cluster.place
                        );
                        waiting = true;
                    } else {
                        debug!("Redis at {}: {e}", cluster.place);
                    }
                    Timer::after(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        }
    }

    async fn first_join(&mut self) -> Result<Snapshot, String> {
        self.generation += 1;
        let mut link = open(
            &self.client,
            &self.scripts,
            self.generation,
            self.events_tx.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let reply = with_timeout(
            RESPONSE_TIMEOUT,
            self.join_command(false).query_async(&mut link.conn),
        )
        .await
        .ok_or("no answer in time")?
        .map_err(|e: redis::RedisError| e.to_string())?;
        let joined = Joined::read(&reply).ok_or("an unexpected answer to joining")?;
        self.epoch = joined.epoch.clone();
        let mut messages: Vec<_> = events::history(&joined.entries)
            .into_iter()
            .map(|(message, _)| message)
            .collect();
        messages.reverse(); // XREVRANGE: newest first
        self.sequencer = Sequencer::new(joined.seq);
        self.link = Some(link);
        Ok(Snapshot {
            epoch: joined.epoch,
            last_seq: joined.seq,
            messages,
            ..Snapshot::default()
        })
    }

    /// The JOIN script's invocation: this node's epoch, what it delivered
    /// and every name it holds.
    fn join_command(&self, rejoining: bool) -> Cmd {
        let presence = scripts::presence_key(&self.node);
        let mut cmd = evalsha(
            &self.scripts.join,
            &[META, HISTORY, ONLINE, NODES, presence.as_str()],
        );
        cmd.arg(&*self.node)
            .arg(&self.epoch)
            .arg(if rejoining { "1" } else { "0" })
            .arg(self.sequencer.delivered())
            .arg(millis(self.settings.login_ttl))
            .arg(PREFIX)
            .arg(CHANNEL)
            .arg(if rejoining {
                0
            } else {
                self.settings.history_size
            });
        for (key, held) in &self.held {
            cmd.arg(&**key)
                .arg(&*held.display)
                .arg(&held.secret)
                .arg(held.connections);
        }
        cmd
    }

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
        self.readiness = Some(readiness);
        let mut in_flight: Option<InFlight> = None;
        let mut beating = false;
        let mut filling = false;
        let mut connecting = false;
        // Redis lost this node's registration (swept while it was slow):
        // made again once nothing is in flight.
        let mut rejoin = false;
        let mut beats = Timer::interval(self.settings.node_timeout / 5);
        let mut retry = Timer::never();
        let mut backoff = BACKOFF.0;
        // When the current outage began, and why.
        let mut outage: Option<(Instant, String)> = None;
        // Another epoch found in Redis: said once per outage.
        let mut failing_commands = false;
        loop {
            let woken = {
                let take_requests = in_flight.is_none();
                let requests = async {
                    if !take_requests {
                        future::pending::<()>().await;
                    }
                    Woken::Requests(requests.recv().await.ok())
                };
                let events = async {
                    match self.events.recv().await {
                        Ok(event) => Woken::Event(event),
                        Err(_) => future::pending().await, // never: we hold a sender
                    }
                };
                let beat = async {
                    beats.next().await;
                    Woken::Beat
                };
                let retried = async {
                    (&mut retry).await;
                    Woken::Retry
                };
                future::or(requests, future::or(events, future::or(beat, retried))).await
            };
            let mut out = Vec::new();
            match woken {
                Woken::Requests(None) => break,
                Woken::Requests(Some(mut batch)) => {
                    while batch.len() < MAX_BATCH {
                        match requests.try_recv() {
                            Ok(more) => batch.extend(more),
                            Err(_) => break,
                        }
                    }
                    match self.link.as_ref().map(|link| link.conn.clone()) {
                        Some(conn) => {
                            let cmds = self.commands(&batch);
                            self.send_batch(conn, cmds);
                            in_flight = Some(InFlight::Requests(batch));
                        }
                        None => {
                            let reason = outage.as_ref().map_or("not connected", |o| o.1.as_str());
                            self.fail(batch, reason, &mut out);
                        }
                    }
                }
                Woken::Event(Event::Replied { generation, result })
                    if generation == self.generation =>
                {
                    match (in_flight.take(), result) {
                        (Some(InFlight::Requests(batch)), Ok(values)) => {
                            self.replied(batch, values, &mut failing_commands, &mut out)
                        }
                        (Some(InFlight::Join), Ok(mut values)) => {
                            match self.rejoined(values.pop()) {
                                Ok(()) => {
                                    if let Some((since, why)) = outage.take() {
                                        info!(
                                            "Redis at {} is back after {:.1?} ({why}): logins \
                                             and messages are taken again",
                                            self.place,
                                            since.elapsed()
                                        );
                                    }
                                    backoff = BACKOFF.0;
                                    if let Some(readiness) = &self.readiness {
                                        readiness.pass(Check::Redis);
                                    }
                                }
                                Err(e) => {
                                    self.lost(&mut outage, e, &mut in_flight, &mut out);
                                    retry.set_after(BACKOFF.1);
                                }
                            }
                        }
                        (flight, Err(e)) => {
                            in_flight = flight;
                            self.lost(&mut outage, e.to_string(), &mut in_flight, &mut out);
                            retry.set_after(backoff);
                        }
                        (None, Ok(_)) => {}
                    }
                }
                Woken::Event(Event::Published {
                    generation,
                    payload,
                }) if generation == self.generation => {
                    self.heard(&payload);
                }
                Woken::Event(Event::Unsubscribed { generation })
                    if generation == self.generation =>
                {
                    let why = "the subscription ended".to_owned();
                    self.lost(&mut outage, why, &mut in_flight, &mut out);
                    retry.set_after(backoff);
                }
                Woken::Event(Event::Beat { generation, result })
                    if generation == self.generation =>
                {
                    beating = false;
                    match result {
                        Ok(Value::Array(values)) => {
                            let absent = values.first().and_then(number) == Some(1);
                            let swept = values.get(1).and_then(number).unwrap_or(0);
                            if swept > 0 {
                                info!("swept {swept} dead nodes: their users left");
                            }
                            if absent {
                                warn!(
                                    "Redis counted this node as gone (no heartbeat for {:?}): \
                                     registering its {} names again",
                                    self.settings.node_timeout,
                                    self.held.len()
                                );
                                rejoin = true;
                            }
                        }
                        Ok(other) => debug!("heartbeat: unexpected answer {other:?}"),
                        Err(e) => {
                            self.lost(&mut outage, e.to_string(), &mut in_flight, &mut out);
                            retry.set_after(backoff);
                        }
                    }
                }
                Woken::Event(Event::Filled {
                    generation,
                    from,
                    to,
                    result,
                }) if generation == self.generation => {
                    filling = false;
                    match result {
                        Ok(reply) => {
                            let node = &*self.node;
                            let messages = events::history(&reply)
                                .into_iter()
                                .map(|(message, origin)| (message, origin == node))
                                .collect();
                            self.sequencer.filled(from, to, messages);
                        }
                        Err(e) => {
                            self.lost(&mut outage, e.to_string(), &mut in_flight, &mut out);
                            retry.set_after(backoff);
                        }
                    }
                }
                Woken::Event(Event::Connected { generation, result })
                    if generation == self.generation =>
                {
                    connecting = false;
                    match result {
                        Ok(link) => {
                            self.link = Some(link);
                            self.send_join();
                            in_flight = Some(InFlight::Join);
                        }
                        Err(e) => {
                            debug!("Redis at {}: {e}", self.place);
                            retry.set_after(backoff);
                            backoff = (backoff * 2).min(BACKOFF.1);
                        }
                    }
                }
                Woken::Event(_) => {} // from a link given up
                Woken::Beat => {
                    if let Some(link) = &self.link
                        && !beating
                    {
                        beating = true;
                        self.send_beat(link.conn.clone());
                    }
                }
                Woken::Retry => {
                    retry = Timer::never();
                    if self.link.is_none() && !connecting {
                        connecting = true;
                        self.generation += 1;
                        let (client, scripts) = (self.client.clone(), self.scripts.clone());
                        let (generation, events) = (self.generation, self.events_tx.clone());
                        smol::spawn(async move {
                            let result = open(&client, &scripts, generation, events.clone()).await;
                            let _ = events.send(Event::Connected { generation, result }).await;
                        })
                        .detach();
                    }
                }
            }
            if rejoin && in_flight.is_none() && self.link.is_some() {
                rejoin = false;
                self.send_join();
                in_flight = Some(InFlight::Join);
            }
            let busy = in_flight.is_some();
            self.sequencer.release(busy, &mut out);
            if !busy
                && !filling
                && let (Some(link), Some((from, to))) = (&self.link, self.sequencer.gap())
            {
                filling = true;
                self.send_fill(link.conn.clone(), from, to);
            }
            if !out.is_empty() && replies.send(out).await.is_err() {
                break; // the core task is gone
            }
        }
        self.leave(in_flight).await;
    }

    /// The EVALSHA of each request (or `None`: settled without Redis).
    /// The names this node holds are counted here as the core asks: a
    /// connection that closed is gone whatever Redis answers.
    fn commands(&mut self, batch: &[Request]) -> Vec<Option<Cmd>> {
        let node = &*self.node;
        let presence = scripts::presence_key(node);
        let ttl = millis(self.settings.login_ttl);
        batch
            .iter()
            .map(|request| {
                let cmd = match request {
                    Request::Reserve(
                        _,
                        Reserve {
                            key,
                            display,
                            offered,
                            fresh,
                            location,
                            timestamp,
                        },
                    ) => {
                        let name = scripts::name_key(key);
                        let mut cmd = evalsha(&self.scripts.reserve, &[&name, ONLINE, &presence]);
                        cmd.arg(&**key)
                            .arg(&**display)
                            .arg(offered.as_ref().map(hex).unwrap_or_default())
                            .arg(hex(fresh))
                            .arg(node)
                            .arg(&**location)
                            .arg(*timestamp)
                            .arg(CHANNEL);
                        cmd
                    }
                    Request::Disconnect(_, Disconnect { key, reason, .. }) => {
                        if let Some(held) = self.held.get_mut(key) {
                            held.connections = held.connections.saturating_sub(1);
                            if held.connections == 0 {
                                self.held.remove(key);
                            }
                        }
                        let mut cmd = evalsha(&self.scripts.disconnect, &[ONLINE, &presence]);
                        cmd.arg(&**key)
                            .arg(node)
                            .arg(events::reason_name(*reason))
                            .arg(ttl)
                            .arg(PREFIX)
                            .arg(CHANNEL);
                        cmd
                    }
                    Request::Write(_, Write::Logout { key, display }) => {
                        let secret = self.held.remove(key).map(|h| h.secret).unwrap_or_default();
                        let name = scripts::name_key(key);
                        let mut cmd = evalsha(&self.scripts.logout, &[&name, ONLINE, NODES]);
                        cmd.arg(&**key)
                            .arg(secret)
                            .arg(node)
                            .arg(&**display)
                            .arg(PREFIX)
                            .arg(CHANNEL);
                        cmd
                    }
                    Request::Online(_) => {
                        let mut cmd = evalsha(&self.scripts.online, &[ONLINE]);
                        cmd.arg(PREFIX);
                        cmd
                    }
                    Request::Append(
                        _,
                        Append {
                            id,
                            timestamp,
                            username,
                            text,
                        },
                    ) => {
                        let mut cmd = evalsha(&self.scripts.append, &[META, HISTORY]);
                        cmd.arg(node)
                            .arg(&**id)
                            .arg(*timestamp)
                            .arg(&**username)
                            .arg(&**text)
                            .arg(self.settings.history_size)
                            .arg(CHANNEL);
                        cmd
                    }
                    // A cluster's core asks none of the embedded store's.
                    Request::Write(
                        _,
                        Write::Claim { .. }
                        | Write::InUse { .. }
                        | Write::Idle { .. }
                        | Write::Release { .. }
                        | Write::Alive { .. },
                    ) => return None,
                };
                Some(cmd)
            })
            .collect()
    }

    /// Runs `cmds` in one pipeline on a task of its own; the answers come
    /// back as [`Event::Replied`].
    fn send_batch(&self, mut conn: MultiplexedConnection, cmds: Vec<Option<Cmd>>) {
        let (scripts, generation, events) = (
            self.scripts.clone(),
            self.generation,
            self.events_tx.clone(),
        );
        smol::spawn(async move {
            let result = run_batch(&mut conn, &scripts, cmds).await;
            let _ = events.send(Event::Replied { generation, result }).await;
        })
        .detach();
    }

    /// Sends the JOIN script as a batch of its own.
    fn send_join(&self) {
        if let Some(link) = &self.link {
            let cmds = vec![Some(self.join_command(true))];
            self.send_batch(link.conn.clone(), cmds);
        }
    }

    fn send_beat(&self, mut conn: MultiplexedConnection) {
        let mut cmd = evalsha(&self.scripts.heartbeat, &[NODES, ONLINE, META]);
        cmd.arg(&*self.node)
            .arg(millis(self.settings.node_timeout))
            .arg(millis(self.settings.login_ttl))
            .arg(PREFIX)
            .arg(CHANNEL);
        let (scripts, generation, events) = (
            self.scripts.clone(),
            self.generation,
            self.events_tx.clone(),
        );
        smol::spawn(async move {
            let result = run_batch(&mut conn, &scripts, vec![Some(cmd)])
                .await
                .and_then(|mut values| single(values.pop()));
            let _ = events.send(Event::Beat { generation, result }).await;
        })
        .detach();
    }

    fn send_fill(&self, mut conn: MultiplexedConnection, from: u64, to: u64) {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(HISTORY)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(to - from + 1);
        let (generation, events) = (self.generation, self.events_tx.clone());
        smol::spawn(async move {
            let result = cmd.query_async(&mut conn).await;
            let _ = events
                .send(Event::Filled {
                    generation,
                    from,
                    to,
                    result,
                })
                .await;
        })
        .detach();
    }

    /// The answers to a batch: each request's outcome, this node's
    /// messages through the sequencer.
    fn replied(
        &mut self,
        batch: Vec<Request>,
        values: Vec<Value>,
        failing: &mut bool,
        out: &mut Vec<Reply>,
    ) {
        let mut errors = 0;
        let mut values = values.into_iter();
        for request in batch {
            let value = match &request {
                Request::Write(ticket, write) if !matches!(write, Write::Logout { .. }) => {
                    out.push(Reply::Answer(ticket.answer(Ok(()))));
                    continue;
                }
                _ => values.next().unwrap_or(Value::Nil),
            };
            if let Value::ServerError(e) = &value {
                if !*failing {
                    warn!("Redis at {} refused a request: {e}", self.place);
                }
                errors += 1;
                let error = Failed(format!("Redis: {e}"));
                out.push(Reply::Answer(request.fail(error)));
                continue;
            }
            match self.outcome(&request, &value) {
                Some(Answer::Appended(ticket, Ok(seq))) => {
                    self.sequencer.appended(ticket, seq, out)
                }
                Some(answer) => out.push(Reply::Answer(answer)),
                None => {
                    if !*failing {
                        warn!("Redis at {}: an unexpected answer {value:?}", self.place);
                    }
                    errors += 1;
                    let error = Failed("an unexpected answer from Redis".into());
                    out.push(Reply::Answer(request.fail(error)));
                }
            }
        }
        if errors == 0 && *failing {
            info!("Redis at {} takes requests again", self.place);
        }
        *failing = errors > 0;
    }

    /// What the script's answer `value` to `request` means to the core.
    fn outcome(&mut self, request: &Request, value: &Value) -> Option<Answer> {
        Some(match request {
            Request::Reserve(
                ticket,
                Reserve {
                    key,
                    offered,
                    fresh,
                    ..
                },
            ) => {
                let Value::Array(answer) = value else {
                    return None;
                };
                let claim = match text(answer.first()?)?.as_str() {
                    "fresh" => Claim::Fresh,
                    "reclaimed" => Claim::Reclaimed,
                    "taken" => Claim::Taken,
                    _ => return None,
                };
                let display: Arc<str> = text(answer.get(1)?)?.into();
                let secret = match claim {
                    Claim::Fresh => Some(hex(fresh)),
                    Claim::Reclaimed => offered.as_ref().map(hex),
                    Claim::Taken => None,
                };
                if let Some(secret) = secret {
                    let held = self.held.entry(key.clone()).or_insert_with(|| Held {
                        display: display.clone(),
                        secret: secret.clone(),
                        connections: 0,
                    });
                    held.connections += 1;
                    held.secret = secret;
                }
                ticket.answer(Ok((claim, display)))
            }
            Request::Disconnect(ticket, _) => ticket.answer(Ok(number(value)? == 1)),
            Request::Write(ticket, _) => ticket.answer(Ok(())),
            Request::Online(ticket) => {
                let Value::Array(flat) = value else {
                    return None;
                };
                let online = flat
                    .chunks_exact(2)
                    .filter_map(|pair| Some((text(&pair[0])?.into(), number(&pair[1])? as usize)))
                    .collect();
                ticket.answer(Ok(online))
            }
            Request::Append(ticket, _) => ticket.answer(Ok(number(value)?)),
        })
    }

    /// The JOIN script's answer after a (re)connect.
    fn rejoined(&mut self, value: Option<Value>) -> Result<(), String> {
        let value = single(value).map_err(|e| e.to_string())?;
        if let Value::Array(answer) = &value
            && answer.len() == 1
        {
            let found = answer.first().and_then(text).unwrap_or_default();
            if self.other_epoch.replace(found.clone()).as_ref() == Some(&found) {
                return Err(format!("Redis holds epoch {found}")); // said already
            }
            error!(
                "Redis at {} holds another chat (epoch {found}; this node serves epoch {}): it \
                 lost its data and another node started afresh meanwhile. Restart this node to \
                 join that chat; until then it refuses logins and messages",
                self.place, self.epoch
            );
            return Err(format!("Redis holds epoch {found}"));
        }
        let joined = Joined::read(&value).ok_or("an unexpected answer to joining")?;
        self.sequencer.published_up_to(joined.seq);
        for key in joined.conflicts {
            // Someone else holds it now: this node's holders lose it.
            if let Some(held) = self.held.remove(key.as_str()) {
                warn!(
                    "{} was taken by someone else while Redis was out of reach",
                    held.display
                );
                self.sequencer.event(Remote::LoggedOut {
                    key: key.into(),
                    username: held.display,
                });
            }
        }
        for username in joined.gone {
            self.sequencer.event(Remote::Left {
                username: username.into(),
                reason: LeaveReason::Disconnected,
            });
        }
        Ok(())
    }

    /// A published event: this node's own are only wanted for its
    /// messages' echoes.
    fn heard(&mut self, payload: &[u8]) {
        let heard = match events::decode(payload) {
            Ok(heard) => heard,
            Err(e) => return debug!("ignoring an event on {CHANNEL}: {e}"),
        };
        let own = heard.origin == *self.node;
        match heard.what {
            What::Message(message) => self.sequencer.published(message, own),
            What::Other(_) if own => {}
            What::Other(remote) => {
                if let Remote::LoggedOut { key, .. } = &remote {
                    self.held.remove(key);
                }
                self.sequencer.event(remote);
            }
        }
    }

    /// Redis cannot be reached: every request in flight fails (never
    /// acknowledged), and so does every new one until it is back. Said
    /// once per outage.
    fn lost(
        &mut self,
        outage: &mut Option<(Instant, String)>,
        why: String,
        in_flight: &mut Option<InFlight>,
        out: &mut Vec<Reply>,
    ) {
        if outage.is_none() {
            warn!(
                "lost Redis at {}: {why}; refusing logins and messages until it is back \
                 (reconnecting)",
                self.place
            );
            *outage = Some((Instant::now(), why.clone()));
        }
        if let Some(readiness) = &self.readiness {
            let reason = format!("Redis at {} cannot be reached: {why}", self.place);
            readiness.fail(Check::Redis, reason);
        }
        self.link = None;
        self.generation += 1; // what the old link's tasks report is stale
        if let Some(InFlight::Requests(batch)) = in_flight.take() {
            self.fail(batch, &why, out);
        }
    }

    fn fail(&mut self, batch: Vec<Request>, why: &str, out: &mut Vec<Reply>) {
        let error = Failed(format!("Redis is unreachable: {why}"));
        for request in batch {
            // What a connection gave up must not be counted when it is back.
            match &request {
                Request::Disconnect(_, Disconnect { key, .. }) => {
                    if let Some(held) = self.held.get_mut(key) {
                        held.connections = held.connections.saturating_sub(1);
                        if held.connections == 0 {
                            self.held.remove(key);
                        }
                    }
                }
                Request::Write(_, Write::Logout { key, .. }) => {
                    self.held.remove(key);
                }
                _ => {}
            }
            out.push(Reply::Answer(request.fail(error.clone())));
        }
    }

    /// The core task has stopped: the last requests are answered, and this
    /// node's remaining presence is released at once.
    async fn leave(mut self, in_flight: Option<InFlight>) {
        let Some(link) = self.link.take() else { return };
        let mut conn = link.conn;
        let deadline = Instant::now() + LEAVE_TIMEOUT;
        if in_flight.is_some() {
            // Its answer is the next batch reply.
            let _ = super::timeouts::with_deadline(deadline, self.events.recv()).await;
        }
        let presence = scripts::presence_key(&self.node);
        let mut cmd = evalsha(&self.scripts.leave, &[NODES, ONLINE, presence.as_str()]);
        cmd.arg(&*self.node)
            .arg(millis(self.settings.login_ttl))
            .arg(PREFIX)
            .arg(CHANNEL);
        let left = super::timeouts::with_deadline(
            deadline,
            run_batch(&mut conn, &self.scripts, vec![Some(cmd)]),
        )
        .await;
        match left {
            Some(Ok(_)) => info!("left Redis at {}", self.place),
            _ => warn!(
                "could not leave Redis at {} in time: this node's users leave presence when \
                 the other nodes sweep it ({:?})",
                self.place, self.settings.node_timeout
            ),
        }
    }
}

/// What the JOIN script answered.
struct Joined {
    epoch: String,
    seq: u64,
    conflicts: Vec<String>,
    gone: Vec<String>,
    entries: Value,
}

impl Joined {
    fn read(value: &Value) -> Option<Joined> {
        let Value::Array(parts) = value else {
            return None;
        };
        let strings = |value: &Value| match value {
            Value::Array(items) => items.iter().filter_map(text).collect(),
            _ => Vec::new(),
        };
        Some(Joined {
            epoch: text(parts.first()?)?,
            seq: number(parts.get(1)?)?,
            conflicts: strings(parts.get(2)?),
            gone: strings(parts.get(3)?),
            entries: parts.get(4).cloned().unwrap_or(Value::Nil),
        })
    }
}

/// Connects (commands and subscription) and loads the scripts.
async fn open(
    client: &redis::Client,
    scripts: &Scripts,
    generation: u64,
    events: Sender<Event>,
) -> redis::RedisResult<Link> {
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
    let subscription = smol::spawn(async move {
        let mut stream = pubsub.into_on_message();
        while let Some(message) = stream.next().await {
            let payload = message.get_payload_bytes().to_vec();
            let event = Event::Published {
                generation,
                payload,
            };
            if events.send(event).await.is_err() {
                return;
            }
        }
        let _ = events.send(Event::Unsubscribed { generation }).await;
    });
    Ok(Link {
        conn,
        _subscription: subscription,
    })
}

async fn load(conn: &mut MultiplexedConnection, scripts: &Scripts) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for script in scripts.all() {
        pipe.cmd("SCRIPT").arg("LOAD").arg(&script.code);
    }
    let _: Vec<Value> = pipe.query_async(conn).await?;
    Ok(())
}

/// Runs `cmds` (skipping `None`s) in one pipeline; a NOSCRIPT (Redis
/// restarted or flushed its scripts) loads them again and runs those once
/// more. Per-command errors come back as `Value::ServerError`; an `Err` is
/// the connection's.
async fn run_batch(
    conn: &mut MultiplexedConnection,
    scripts: &Scripts,
    cmds: Vec<Option<Cmd>>,
) -> redis::RedisResult<Vec<Value>> {
    let cmds: Vec<Cmd> = cmds.into_iter().flatten().collect();
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

/// The only answer of a one-command batch, its error as an `Err`.
fn single(value: Option<Value>) -> redis::RedisResult<Value> {
    match value {
        Some(Value::ServerError(e)) => Err(e.into()),
        Some(value) => Ok(value),
        None => Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "no answer",
        ))),
    }
}

fn evalsha(script: &Lua, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&script.hash).arg(keys.len()).arg(keys);
    cmd
}

fn hex(hash: &SecretHash) -> String {
    let mut out = String::with_capacity(64);
    for byte in hash.0 {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redis_or_rediss() {
        assert_eq!(check_url("redis://127.0.0.1:6379/2"), Ok(()));
        assert_eq!(check_url("rediss://redis.example.com"), Ok(()));
        assert_eq!(check_url("redis://:secret@127.0.0.1"), Ok(()));
        for bad in [
            "127.0.0.1:6379",
            "http://x",
            "unix:///tmp/r.sock",
            "redis://h:port",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashes_are_kept_in_hex() {
        let hash = SecretHash::of("s");
        let hex = hex(&hash);
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
