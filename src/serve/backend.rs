//! The driver's side of the core's seam: what keeps the chat's names and
//! messages beyond the core ([`Backend`]: nothing, the embedded store or a
//! cluster's Redis), the core task's end of the seam to it ([`Seam`]) and
//! what crosses back ([`Reply`]).
//!
//! The core asks ([`Request`], each with its [`Ticket`]); the backend
//! answers each request with its outcome, and in a cluster also tells what
//! the other nodes did. The core task sends its requests in one batch per
//! loop turn and takes the replies in the order the core must handle them.

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Instant, SystemTime};

use rand::CryptoRng;
use smol::Executor;
#[cfg(feature = "cluster")]
use smol::Task;
use smol::channel::{self, Receiver, Sender};
use tracing::{info, warn};

#[cfg(feature = "cluster")]
use super::cluster::Cluster;
use super::metrics::Metrics;
use super::readiness::Readiness;
use super::store::Store;
use crate::server::{Failed, Outcome, Remote, Request, Snapshot, Ticket};
use crate::{Config, Server};

/// What keeps the chat's names and messages, opened (with what it holds)
/// but not started.
#[derive(Debug)]
pub(crate) enum Backend {
    /// Nothing (`--in-memory`): the core keeps everything, until it stops.
    Memory,
    /// The embedded store (`--data-dir`).
    Store(Store, Snapshot),
    /// Redis, shared with the other nodes (`--redis-url`).
    #[cfg(feature = "cluster")]
    Cluster(Box<Cluster>, Snapshot),
}

/// The core task's end of the seam to its backend.
#[derive(Debug)]
pub(crate) struct Seam {
    pub(crate) requests: Sender<Vec<(Ticket, Request)>>,
    pub(crate) replies: Receiver<Vec<Reply>>,
}

/// What a backend tells the core.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The outcome of a request.
    Outcome(Ticket, Result<Outcome, Failed>),
    /// What another node of a cluster did.
    #[cfg_attr(
        not(feature = "cluster"),
        allow(dead_code, reason = "only Redis tells")
    )]
    Remote(Remote),
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
            Backend::Store(store, snapshot) => {
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
                let (seam, requests, replies) = seam();
                let writer = store.spawn(requests, replies, metrics.clone(), readiness.clone())?;
                Ok((core, Some(seam), Running::Store(writer)))
            }
            #[cfg(feature = "cluster")]
            Backend::Cluster(cluster, snapshot) => {
                let core =
                    Server::cluster(config, rng, snapshot, SystemTime::now(), Instant::now());
                let (seam, requests, replies) = seam();
                let task = executor.spawn((*cluster).run(requests, replies, readiness.clone()));
                Ok((core, Some(seam), Running::Cluster(task)))
            }
        }
    }
}

/// The seam's two ends: the core task's, and the backend's (the requests
/// it is handed, where its replies go).
fn seam() -> (Seam, Receiver<Vec<(Ticket, Request)>>, Sender<Vec<Reply>>) {
    let (requests, handed) = channel::unbounded();
    let (replies, answered) = channel::unbounded();
    let seam = Seam {
        requests,
        replies: answered,
    };
    (seam, handed, replies)
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
