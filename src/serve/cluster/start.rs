//! A node starting: it waits for every shard (saying which), joins each,
//! checks that they are the cluster's shards, and reads what the core
//! starts from (the lobby from the home, every shard's rooms, the names
//! they speak of from the home).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use smol::Timer;
use smol::channel;
use tracing::{debug, info, warn};

use super::connection::{self, Reached};
use super::encode::Encoder;
use super::machine::{BACKOFF, RedisLink};
use super::scripts::Scripts;
use super::shards::{self, HOME, Placement};
use super::{Cluster, RoomSettings, Settings, Shard, events, rooms};
use crate::serve::readiness::{Check, Readiness};
use crate::server::{Snapshot, StoredName};

/// A cluster's Redis shards, named but not reached yet:
/// [`Connecting::start`] waits for them.
pub(crate) struct Connecting {
    /// Each shard's client and `redis://HOST:PORT` (or `rediss://…`, for
    /// the log and `/readyz`), the home first.
    shards: Vec<(redis::Client, String)>,
    settings: Settings,
    rooms: RoomSettings,
}

impl std::fmt::Debug for Connecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let places: Vec<_> = self.shards.iter().map(|s| &s.1).collect();
        f.debug_struct("Connecting")
            .field("places", &places)
            .finish_non_exhaustive()
    }
}

impl Connecting {
    /// Reads `urls` (refusing a bad one, or one server named twice);
    /// nothing is connected yet. The first is the home shard.
    pub(crate) fn new(urls: &[String], settings: Settings) -> Result<Connecting, String> {
        let mut shards = Vec::new();
        let mut seen = BTreeSet::new();
        for url in urls {
            let client =
                redis::Client::open(url.as_str()).map_err(|e| format!("--redis-url: {e}"))?;
            let tls = url.starts_with("rediss:");
            let place = format!(
                "{}{}",
                if tls { "rediss://" } else { "redis://" },
                client.get_connection_info().addr()
            );
            // Not two databases of one server either: its pub/sub is one
            // for all its databases, and each shard's events would reach
            // the other's link.
            if !seen.insert(place.clone()) {
                return Err(format!(
                    "--redis-url names {place} twice: each shard must be a Redis server of \
                     its own"
                ));
            }
            shards.push((client, place));
        }
        if shards.is_empty() {
            return Err("--redis-url: none given".into());
        }
        Ok(Connecting {
            shards,
            settings,
            rooms: RoomSettings::default(),
        })
    }

    /// The rooms' settings (the defaults' until set).
    pub(crate) fn with_rooms(self, rooms: RoomSettings) -> Connecting {
        Connecting { rooms, ..self }
    }

    /// Where the home shard is looked for, as the log names it.
    pub(crate) fn place(&self) -> &str {
        &self.shards[HOME].1
    }

    /// How the log and `/readyz` name shard `index`.
    fn name(&self, index: usize) -> String {
        match self.shards.len() {
            1 => format!("Redis at {}", self.shards[index].1),
            _ => format!("redis shard {} ({})", index + 1, self.shards[index].1),
        }
    }

    /// Connects to every shard and reads what the core starts from,
    /// waiting (and saying so, once per shard, in `readiness` too) for as
    /// long as one cannot be reached. The node listens meanwhile; dropping
    /// this future gives up (a shutdown while waiting). `Err` when the
    /// shards are not the cluster's (see `shards::check_ids`): the node
    /// must not start.
    pub(crate) async fn start(self, readiness: &Readiness) -> Result<(Cluster, Snapshot), String> {
        let (node, candidate) = {
            let mut rng = rand::rng();
            let node: Arc<str> = crate::id::epoch(&mut rng)[..8].into();
            (node, crate::id::epoch(&mut rng))
        };
        let encoder = Encoder {
            node: node.clone(),
            settings: self.settings.clone(),
            rooms: self.rooms,
            scripts: Arc::new(Scripts::new()),
        };
        let (events_tx, events) = channel::unbounded();
        // Not ready until every shard is reached, each said apart.
        for index in 0..self.shards.len() {
            readiness.fail(
                Check::Redis(index),
                format!("waiting for {}", self.name(index)),
            );
        }
        let mut backoff = BACKOFF.0;
        let (reached, placement, names) = loop {
            let mut reached = Vec::new();
            for (index, (client, _)) in self.shards.iter().enumerate() {
                let name = self.name(index);
                let mut waiting = false;
                let joined = loop {
                    let tx = events_tx.clone();
                    match connection::first_join(client, &encoder, &candidate, index, tx).await {
                        Ok(joined) => break joined,
                        Err(e) => {
                            if !waiting {
                                warn!("waiting for {name}: {e}; retrying until it answers");
                                waiting = true;
                            } else {
                                debug!("{name}: {e}");
                            }
                            readiness.fail(Check::Redis(index), format!("waiting for {name}: {e}"));
                            Timer::after(backoff).await;
                            backoff = (backoff * 2).min(BACKOFF.1);
                        }
                    }
                };
                backoff = BACKOFF.0;
                readiness.pass(Check::Redis(index));
                reached.push(joined);
            }
            match self.settle(&mut reached).await {
                Ok((placement, names)) => break (reached, placement, names),
                Err(Settled::Refused(why)) => return Err(why),
                Err(Settled::Lost(e)) => {
                    warn!("lost a Redis shard while starting ({e}); starting again");
                    readiness.fail(Check::Redis(HOME), format!("starting: {e}"));
                    Timer::after(backoff).await;
                }
            }
        };
        let mut snapshot = Snapshot::default();
        let mut shards = Vec::new();
        let now = Instant::now();
        let total = reached.len();
        for (index, joined) in reached.into_iter().enumerate() {
            let Reached {
                connection,
                joined,
                loaded,
                id,
            } = joined;
            let place = self.shards[index].1.clone();
            let (mut link, connection_id) = RedisLink::joined(
                place.clone(),
                node.clone(),
                joined.epoch.clone(),
                self.settings.clone(),
                joined.seq,
                now,
            );
            link.load_rooms(&loaded.rooms);
            if index == HOME {
                let mut messages: Vec<_> = events::history(&joined.entries)
                    .into_iter()
                    .map(|(message, _)| message)
                    .collect();
                messages.reverse(); // XREVRANGE: newest first
                info!(
                    "Redis at {place}: this is node {node} ({} messages, last seq {}, epoch {})",
                    messages.len(),
                    joined.seq,
                    joined.epoch,
                );
                snapshot.epoch = joined.epoch;
                snapshot.last_seq = joined.seq;
                snapshot.messages = messages;
                snapshot.left_lobby = loaded.left_lobby;
            } else {
                link = link.rooms_only();
            }
            let shard = match total {
                1 => String::new(),
                _ => format!(", shard {} of {total} (id {id})", index + 1),
            };
            info!(
                "Redis at {place}{shard}: {} loaded",
                crate::serve::counted(loaded.rooms.len() as u64, "room")
            );
            snapshot.rooms.extend(loaded.rooms);
            snapshot.reads.extend(loaded.reads);
            shards.push(Shard {
                client: self.shards[index].0.clone(),
                link,
                connection: Some((connection_id, connection)),
                name: match total {
                    1 => String::new(),
                    _ => self.name(index),
                },
                owed: BTreeSet::new(),
            });
        }
        snapshot.names = names;
        let cluster = Cluster {
            encoder: Arc::new(encoder),
            shards,
            placement,
            events_tx,
            events,
            answers: VecDeque::new(),
        };
        Ok((cluster, snapshot))
    }
}

/// Why a start did not settle.
enum Settled {
    /// The shards are not the cluster's: the node must not start.
    Refused(String),
    /// A shard went away meanwhile: start again.
    Lost(String),
}

impl Connecting {
    /// Every shard joined: their ids are checked against the cluster's
    /// list (written on each by the first node to start), and the names
    /// their rooms speak of are read from the home.
    async fn settle(
        &self,
        reached: &mut [Reached],
    ) -> Result<(Placement, Vec<StoredName>), Settled> {
        let ours: Vec<(String, String)> = self
            .shards
            .iter()
            .zip(reached.iter())
            .map(|((_, place), joined)| (place.clone(), joined.id.clone()))
            .collect();
        let ids: Vec<String> = ours.iter().map(|(_, id)| id.clone()).collect();
        let list = shards::encode_list(&ids);
        for joined in reached.iter_mut() {
            let conn = &mut joined.connection.conn;
            let listed = connection::set_once(conn, shards::SHARD_LIST, &list)
                .await
                .map_err(Settled::Lost)?;
            shards::check_ids(&ours, &listed).map_err(Settled::Refused)?;
        }
        let mut all = rooms::Loaded::default();
        for joined in reached.iter() {
            all.rooms.extend(joined.loaded.rooms.iter().cloned());
            all.reads.extend(joined.loaded.reads.iter().cloned());
        }
        let home = &mut reached[HOME].connection.conn;
        rooms::load_names(home, &mut all)
            .await
            .map_err(Settled::Lost)?;
        Ok((Placement::new(ids), all.names))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_shard_is_a_redis_server_of_its_own() {
        let settings = Settings {
            history_size: 10,
            login_ttl: Duration::from_secs(60),
            node_timeout: Duration::from_secs(10),
        };
        let urls = |urls: &[&str]| urls.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
        let two = Connecting::new(&urls(&["redis://a:1/0", "redis://b:1/0"]), settings.clone());
        assert_eq!(
            two.map(|c| c.name(1)).as_deref(),
            Ok("redis shard 2 (redis://b:1)")
        );
        let one = Connecting::new(&urls(&["redis://a:1/0"]), settings.clone());
        assert_eq!(
            one.map(|c| c.name(0)).as_deref(),
            Ok("Redis at redis://a:1")
        );
        let e = Connecting::new(&urls(&["redis://a:1/0", "redis://a:1/1"]), settings).unwrap_err();
        assert!(e.contains("names redis://a:1 twice"), "{e}");
    }
}
