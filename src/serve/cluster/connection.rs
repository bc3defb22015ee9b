//! One connection to one Redis (a shard): commands on a multiplexed
//! connection, its subscription to the events channel, the scripts loaded,
//! the first JOIN of a starting node; what the driver's helper tasks
//! report ([`Event`]).

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, ServerErrorKind, Value};
use smol::Task;
use smol::channel::Sender;
use tracing::{error, warn};

use super::super::timeouts::with_timeout;
use super::encode::Encoder;
use super::events::Joined;
use super::machine::{CommandId, RedisLink};
use super::scripts::{CHANNEL, Scripts};
use super::{rooms, shards};

/// A connection attempt (TCP, TLS, the handshake) longer than this failed.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A reply later than this means Redis is unreachable (or stuck).
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// One connection to Redis (commands) and its subscription.
pub(super) struct Connection {
    pub(super) conn: MultiplexedConnection,
    /// Forwards what is published; dropped with the connection.
    _subscription: Task<()>,
}

/// What the driver's helper tasks report (each with its shard's index).
pub(super) enum Event {
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
    /// A name's release sent to a shard of rooms did not run: owed again.
    ReleaseFailed {
        key: std::sync::Arc<str>,
    },
}

/// One shard as the first JOIN found it.
pub(super) struct Reached {
    pub(super) connection: Connection,
    pub(super) joined: Joined,
    /// Its rooms (and, the home's, who left the lobby); no names yet.
    pub(super) loaded: rooms::Loaded,
    /// Its id (see `shards`).
    pub(super) id: String,
}

/// Connects to shard `shard` and runs the first JOIN: this node's
/// candidate epoch, nothing held, the latest messages; then reads the
/// shard's id (setting it if none) and every room it holds.
pub(super) async fn first_join(
    client: &redis::Client,
    encoder: &Encoder,
    candidate: &str,
    shard: usize,
    events: Sender<(usize, Event)>,
) -> Result<Reached, String> {
    let mut connection = open(client, &encoder.scripts, shard, CommandId(0), events)
        .await
        .map_err(|e| e.to_string())?;
    let join = encoder.join(&RedisLink::first_join(candidate));
    let reply = with_timeout(RESPONSE_TIMEOUT, join.query_async(&mut connection.conn))
        .await
        .ok_or("no answer in time")?
        .map_err(|e: redis::RedisError| e.to_string())?;
    let joined = Joined::read(&reply).ok_or("an unexpected answer to joining")?;
    let fresh = crate::id::epoch(&mut rand::rng());
    let id = set_once(&mut connection.conn, shards::SHARD_ID, &fresh).await?;
    let loaded = rooms::load_rooms(&mut connection.conn, encoder.rooms.history).await?;
    Ok(Reached {
        connection,
        joined,
        loaded,
        id,
    })
}

/// `key`'s value, set to `value` first if it has none (SET NX, GET).
pub(super) async fn set_once(
    conn: &mut MultiplexedConnection,
    key: &str,
    value: &str,
) -> Result<String, String> {
    let mut pipe = redis::pipe();
    pipe.cmd("SET").arg(key).arg(value).arg("NX").ignore();
    pipe.cmd("GET").arg(key);
    let (found,): (Option<String>,) = with_timeout(RESPONSE_TIMEOUT, pipe.query_async(conn))
        .await
        .ok_or("no answer in time")?
        .map_err(|e: redis::RedisError| e.to_string())?;
    found.ok_or_else(|| format!("{key} vanished as it was set"))
}

/// Connects (commands and subscription) and loads the scripts.
pub(super) async fn open(
    client: &redis::Client,
    scripts: &Scripts,
    shard: usize,
    connection: CommandId,
    events: Sender<(usize, Event)>,
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
            if events.send((shard, event)).await.is_err() {
                return;
            }
        }
        let _ = events
            .send((shard, Event::Unsubscribed { connection }))
            .await;
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

pub(super) async fn load(
    conn: &mut MultiplexedConnection,
    scripts: &Scripts,
) -> redis::RedisResult<()> {
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
pub(crate) async fn run_batch(
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
