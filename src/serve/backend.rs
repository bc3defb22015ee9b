//! What keeps the chat's names and messages beyond the core: nothing, the
//! embedded store (`store`) or a cluster's Redis (`cluster`), on the far
//! side of the core task's `Seam` (see `seam`).

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Instant, SystemTime};

use rand::CryptoRng;
use smol::Executor;
#[cfg(feature = "cluster")]
use smol::Task;
use tracing::{info, warn};

#[cfg(feature = "cluster")]
use super::cluster::{Cluster, Connecting};
use super::metrics::Metrics;
#[cfg(feature = "cluster")]
use super::readiness::Check;
use super::readiness::Readiness;
use super::seam::{self, Seam};
use super::store::Store;
use crate::server::Snapshot;
use crate::{Config, Server};

/// What keeps the chat's names and messages, opened (with what it holds)
/// but not started.
#[derive(Debug)]
pub(crate) enum Backend {
    /// Nothing (`--in-memory`): the core keeps everything, until it stops.
    Memory,
    /// The embedded store (`--data-dir`). Boxed: a snapshot with rooms is
    /// large beside the other variants.
    Store(Box<(Store, Snapshot)>),
    /// Redis, shared with the other nodes (`--redis-url`), not reached
    /// yet: the node listens while it waits for it ([`Backend::opened`]).
    #[cfg(feature = "cluster")]
    Redis(Box<Connecting>),
    /// Redis, reached, with what the core starts from.
    #[cfg(feature = "cluster")]
    Cluster(Box<Cluster>, Snapshot),
}

/// A started backend, to be waited for once the core has stopped.
#[derive(Debug)]
pub(crate) enum Running {
    Memory,
    /// The store's writer thread.
    Store(thread::JoinHandle<()>),
    /// The task that talks to Redis.
    #[cfg(feature = "cluster")]
    Cluster(Task<()>),
}

impl Backend {
    /// Whether the core must wait for the backend before it can start (a
    /// cluster's Redis not reached yet): if so, `readiness` hears why.
    pub(crate) fn must_wait(&self, readiness: &Readiness) -> bool {
        #[cfg(feature = "cluster")]
        if let Backend::Redis(connecting) = self {
            let waiting = format!("waiting for Redis at {}", connecting.place());
            readiness.fail(Check::Redis(0), waiting);
            return true;
        }
        let _ = readiness;
        false
    }

    /// The backend with what the core starts from: waits for Redis as long
    /// as it cannot be reached (see [`Backend::must_wait`]); the others are
    /// open already.
    /// `Err` when the node must not start (its Redis shards are not the
    /// cluster's).
    pub(crate) async fn opened(self, readiness: &Readiness) -> io::Result<Backend> {
        match self {
            #[cfg(feature = "cluster")]
            Backend::Redis(connecting) => {
                let (cluster, snapshot) = connecting.start(readiness).await.map_err(|why| {
                    tracing::error!("{why}");
                    io::Error::new(io::ErrorKind::InvalidInput, why)
                })?;
                Ok(Backend::Cluster(Box::new(cluster), snapshot))
            }
            open => {
                let _ = readiness;
                Ok(open)
            }
        }
    }

    /// The core, restored from what the backend holds, and the backend
    /// started beside it: the store on a thread of its own, the link to
    /// Redis as a task on `executor`. `metrics` and `readiness` hear how
    /// the backend fares.
    pub(crate) fn start<R: CryptoRng>(
        self,
        config: Config,
        rng: R,
        executor: &Executor<'static>,
        metrics: &Arc<Metrics>,
        readiness: &Arc<Readiness>,
    ) -> io::Result<(Server<R>, Option<Seam>, Running)> {
        #[cfg(not(feature = "cluster"))]
        let _ = executor; // only the link to Redis runs on it
        match self {
            Backend::Memory => {
                info!("keeping nothing on disk (--in-memory)");
                Ok((Server::new(config, rng), None, Running::Memory))
            }
            Backend::Store(opened) => {
                let (store, snapshot) = *opened;
                info!(
                    "data in {} ({} names, {} messages, last seq {}, epoch {})",
                    store.path.display(),
                    snapshot.names.len(),
                    snapshot.messages.len(),
                    snapshot.last_seq,
                    snapshot.epoch,
                );
                let core =
                    Server::restore(config, rng, snapshot, SystemTime::now(), Instant::now());
                let (seam, requests, replies) = seam::pair();
                let writer = store.spawn(requests, replies, metrics.clone(), readiness.clone())?;
                Ok((core, Some(seam), Running::Store(writer)))
            }
            #[cfg(feature = "cluster")]
            Backend::Redis(_) => Err(io::Error::other("Redis was not reached yet")),
            #[cfg(feature = "cluster")]
            Backend::Cluster(cluster, snapshot) => {
                let core =
                    Server::cluster(config, rng, snapshot, SystemTime::now(), Instant::now());
                let (seam, requests, replies) = seam::pair();
                let task = executor.spawn((*cluster).run(requests, replies, readiness.clone()));
                Ok((core, Some(seam), Running::Cluster(task)))
            }
        }
    }
}

impl Running {
    /// Once the core task has handed over everything: Redis answers what
    /// was left, and this node leaves it. (The store finishes on its own
    /// thread; see [`Running::join`].)
    pub(crate) async fn settle(&mut self) {
        #[cfg(feature = "cluster")]
        if let Running::Cluster(task) = self {
            task.await;
        }
    }

    /// Waits for the store to commit what it was handed, and stop.
    pub(crate) fn join(self) {
        if let Running::Store(writer) = self
            && writer.join().is_err()
        {
            warn!("the store's thread panicked; what it had not committed is lost");
        }
    }
}
