//! The `chat-server` driver: the sans-IO core hosted on smol and
//! async-tungstenite. Behind the `server` feature.
//!
//! Shape (see each module):
//! - [`ChatServer::run`], in four steps: start the backend and the core
//!   task, start the worker threads (one per CPU), serve (accept TCP
//!   connections, one task each), drain (close everyone, stop the core,
//!   let the backend finish). A cluster's Redis not reached yet: the
//!   node serves while it waits, upgrades refused until the core starts;
//! - `connection`: the TLS handshake (for `wss://`) and the WebSocket
//!   upgrade, then a reader forwarding frames to the core task and a writer
//!   draining the connection's outbox, the same code over TCP or TLS;
//! - `inbox`: what connections tell the core task, and the handle a
//!   connection shares with it;
//! - `core_task`: the one task owning [`Server`](crate::Server). It wakes on
//!   inputs (draining all that are queued before acting, to batch) or at the
//!   core's `poll_timeout`, and routes the core's actions to outboxes;
//! - `outbox`: a per-connection queue bounded in bytes; overflowing it
//!   closes that connection with 1008 "too slow";
//! - `batch`: what a writer sends from one take of its outbox, long texts
//!   in fragments, so that tungstenite's write buffer never grows past one;
//! - `socket`: the TCP stream under it all, gathering a batch's frames
//!   into one `write` and holding no buffer between batches;
//! - `http`: the request head every connection starts with, and plain
//!   answers; `upgrade` takes a WebSocket upgrade (any path), `routes`
//!   anything else;
//! - `web`: the browser client served at `/`, compiled into the binary;
//! - `admission`: the allowed Origins and the connection limits: the
//!   bound on connections in their handshake, checked at accept, and the
//!   rest in the upgrade; `open_files`: the open-file limit they need;
//! - `proxied`: the client's address behind a trusted reverse proxy or
//!   load balancer (`X-Forwarded-For`, `Forwarded`, the PROXY protocol);
//! - `admin`, `metrics`, `readiness`: `/healthz`, `/readyz` and `/metrics`,
//!   on the chat's port or (`--admin-listen`) a listener of their own;
//! - `memory`: gives the memory a burst freed back to the system once the
//!   burst is over;
//! - `seam`: what the core task and its backend tell each other;
//! - `backend`: which backend keeps what must outlive the process, and
//!   starting it: the embedded store (`store`, one node), or Redis shared
//!   by several nodes (`cluster`, `--redis-url`, with the `cluster`
//!   feature).
//!
//! Shutdown: once the future given to [`ChatServer::run`] resolves, the
//! driver's one record of it is `connection::Draining`, which the accept
//! side reads (upgrades get 503); the core task is told once, by
//! `Input::Shutdown`, and the core keeps its own state from there.
//!
//! ```no_run
//! use wschat::serve::{ChatServer, Options};
//!
//! let server = ChatServer::bind(Options::default())?;
//! println!("chat on {}://{}", server.scheme(), server.local_addr());
//! server.run(std::future::pending())?; // serves until the future resolves
//! # std::io::Result::Ok(())
//! ```

mod admin;
mod admission;
mod backend;
mod batch;
#[cfg(feature = "cluster")]
mod cluster;
mod connection;
mod core_task;
mod http;
mod inbox;
mod memory;
mod metrics;
mod open_files;
mod options;
mod outbox;
mod proxied;
mod readiness;
mod refused_origins;
mod routes;
mod seam;
mod socket;
mod store;
mod timeouts;
mod upgrade;
mod web;

pub use admission::AllowedOrigins;
pub use options::{LogFormat, Options, OptionsError};
pub use proxied::{ClientIpHeader, TrustedProxies};
pub use store::{FILE_NAME as STORE_FILE_NAME, StoreError};

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use futures_rustls::rustls::ServerConfig;
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use smol::channel::{self, Receiver, Sender};
use smol::{Async, Executor, Task, Timer, future};
use tracing::{debug, info, warn};

use crate::tls::{self, TlsError};
use admin::Admin;
use admission::Crowded;
use backend::{Backend, Running};
use connection::Context;
use inbox::Input;
use memory::Activity;
use metrics::Metrics;
use readiness::{Check, Readiness};
use store::Store;
use timeouts::with_timeout;

/// Pause after an `accept()` failure such as EMFILE, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A chat server bound to its address, not yet serving.
#[derive(Debug)]
pub struct ChatServer {
    listener: Async<TcpListener>,
    local_addr: SocketAddr,
    options: Options,
    tls: Option<Arc<ServerConfig>>,
    backend: Backend,
    /// The `--admin-listen` listener and its address.
    admin: Option<(Async<TcpListener>, SocketAddr)>,
}

/// Why [`ChatServer::bind`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The options contradict each other.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis cannot be used (a bad --redis-url, or a build without the
    /// `cluster` feature).
    #[error("{0}")]
    Redis(String),
    /// Only one of `tls_cert` and `tls_key` was given.
    #[error("TLS needs both a certificate and its key (--tls-cert and --tls-key)")]
    TlsIncomplete,
    /// The operating system's error is part of the message (one line),
    /// hence no `source`.
    #[error(
        "cannot listen on {addr}: {error}; if another server holds it, stop that one or give \
         this one another address with --listen ADDR (--admin-listen ADDR for the admin port)"
    )]
    Listen { addr: SocketAddr, error: io::Error },
}

impl From<BindError> for io::Error {
    fn from(error: BindError) -> io::Error {
        match error {
            BindError::Listen { error, .. } => error,
            tls => io::Error::new(io::ErrorKind::InvalidInput, tls),
        }
    }
}

impl ChatServer {
    /// Loads the TLS certificate and key, if `options` name them, reads
    /// `redis_url` (Redis is reached in [`ChatServer::run`], which listens
    /// meanwhile), binds `options.listen`, then opens the store (unless
    /// `in_memory` or `redis_url`): a bad certificate or URL never gets to
    /// listen, a store that cannot be used is refused before anything is
    /// served, and a port that is taken leaves no store behind.
    pub fn bind(options: Options) -> Result<ChatServer, BindError> {
        options.check()?;
        let tls = match (&options.tls_cert, &options.tls_key) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            (None, None) => None,
            _ => return Err(BindError::TlsIncomplete),
        };
        // The Redis URL first (read only: Redis is reached once the node
        // listens), then the ports, then the store: creating its directory
        // and file is what a failed start would leave behind, so that comes
        // once the ports are ours.
        let cluster = match options.redis_url.is_empty() {
            false => Some(open_cluster(&options.redis_url, &options)?),
            true => None,
        };
        let (listener, local_addr) = listen(options.listen)?;
        let admin = options.admin_listen.map(listen).transpose()?;
        let backend = match cluster {
            Some(cluster) => cluster,
            None => open_local(&options)?,
        };
        Ok(ChatServer {
            listener,
            local_addr,
            options,
            tls,
            backend,
            admin,
        })
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served when not on
    /// the chat's port (`--admin-listen`).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }

    /// The bound address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `"wss"` when serving TLS, else `"ws"`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "wss" } else { "ws" }
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully: stops
    /// accepting, sends Close 1001 "server shutting down" to every
    /// connection and waits up to `shutdown_timeout` for them to close.
    /// Blocks the calling thread, which takes part in running connections.
    ///
    /// In four steps: start the backend (and the core task beside it),
    /// start the workers, serve, drain. When the core can only start from
    /// Redis's snapshot, the first step runs beside the serving (`/healthz`
    /// 200, `/readyz` 503 "waiting for Redis", upgrades 503), and a
    /// shutdown meanwhile gives up waiting.
    pub fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let scheme = self.scheme();
        let ChatServer {
            listener,
            local_addr,
            options,
            tls,
            backend,
            admin: admin_listener,
        } = self;
        let metrics = Arc::new(Metrics::new());
        let readiness = Arc::new(Readiness::new());
        let executor = Arc::new(Executor::new());

        let (inbox, inbox_rx) = inbox::channel();
        let waiting = backend.must_wait(&readiness);
        let start = if waiting {
            Start::Later(backend, inbox_rx)
        } else {
            let (core, running) = start_backend(
                backend,
                (inbox.clone(), inbox_rx),
                &options,
                &executor,
                &metrics,
                &readiness,
            )?;
            Start::Now(core, running)
        };
        let workers = Workers::start(&executor, options.threads)?;

        let admin = Arc::new(Admin {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        });
        let admin = serve_admin(admin_listener, admin, &executor, options.handshake_timeout);
        let ctx = Context::new(&options, tls, inbox.clone(), metrics.clone(), admin);
        if waiting {
            ctx.starting.begin();
        }
        let port = ChatPort {
            listener,
            executor: executor.clone(),
            ctx: Arc::new(ctx),
        };
        open_files::make_room_for(port.ctx.admission.limits());
        // Ready by the time the log says so, which is what tests and
        // supervisors wait for (the port is bound; the backlog holds
        // whoever comes before the first accept), unless the backend is
        // still awaited (then /readyz says so).
        readiness.pass(Check::Listening);
        info!("listening on {scheme}://{local_addr}");
        // The same port serves the web client, which is what most people
        // want to open.
        let page = if scheme == "wss" { "https" } else { "http" };
        info!("web client at {page}://{local_addr}/");
        let running = smol::block_on(executor.run(async {
            let mut shutdown = pin!(shutdown);
            let (connections, started) = match start {
                Start::Now(core, running) => {
                    (serve(&port, shutdown.as_mut()).await, Some((core, running)))
                }
                Start::Later(backend, inbox_rx) => {
                    // Served meanwhile (probes, and 503 to upgrades); a
                    // shutdown gives up waiting.
                    let mut started = None;
                    let connections = future::or(serve(&port, shutdown.as_mut()), async {
                        let backend = match backend.opened(&readiness).await {
                            Ok(backend) => backend,
                            Err(refused) => {
                                // Never started: nothing to drain.
                                started = Some(Err(refused));
                                return channel::bounded(1).1;
                            }
                        };
                        started = Some(start_backend(
                            backend,
                            (inbox, inbox_rx),
                            &options,
                            &executor,
                            &metrics,
                            &readiness,
                        ));
                        port.ctx.starting.end();
                        future::pending().await
                    })
                    .await;
                    (connections, started.transpose()?)
                }
            };
            let (core, running) = started.unzip();
            drain(
                port,
                connections,
                &readiness,
                core,
                options.shutdown_timeout,
            )
            .await;
            // Redis answers what was left, and this node leaves it.
            let mut running = running;
            if let Some(running) = &mut running {
                running.settle().await;
            }
            io::Result::Ok(running)
        }))?;

        workers.stop();
        // The store commits what it was handed, then stops.
        if let Some(running) = running {
            running.join();
        }
        info!("stopped");
        Ok(())
    }

    /// Serves on background threads until the returned handle is shut down
    /// or dropped. For tests and tools that host a server in-process.
    pub fn spawn(self) -> io::Result<RunningServer> {
        let local_addr = self.local_addr;
        let (stop, stopped) = channel::bounded::<Infallible>(1);
        let thread = thread::Builder::new()
            .name("chat-server".into())
            .spawn(move || {
                self.run(async move {
                    let _ = stopped.recv().await;
                })
            })?;
        Ok(RunningServer {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// A server running in-process (see [`ChatServer::spawn`]).
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: Option<Sender<Infallible>>,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Shuts down gracefully, as on SIGTERM, and waits until it has.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.stop.take();
        match self.thread.take().map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Opens the store (unless `in_memory`).
fn open_local(options: &Options) -> Result<Backend, BindError> {
    if options.in_memory {
        return Ok(Backend::Memory);
    }
    let (store, snapshot) = Store::open_keeping(
        &options.data_dir,
        options.history_size,
        options.room_history,
    )?;
    Ok(Backend::Store(Box::new((store, snapshot))))
}

/// Reads `url`: Redis is reached once the node listens (see
/// `Backend::opened`).
#[cfg(feature = "cluster")]
fn open_cluster(urls: &[String], options: &Options) -> Result<Backend, BindError> {
    let settings = cluster::Settings {
        history_size: options.history_size,
        login_ttl: options.login_ttl,
        node_timeout: options.node_timeout,
    };
    let rooms = cluster::RoomSettings {
        history: options.room_history,
        max_members: options.max_room_members,
    };
    let connecting = cluster::Connecting::new(urls, settings)
        .map_err(BindError::Redis)?
        .with_rooms(rooms);
    Ok(Backend::Redis(Box::new(connecting)))
}

/// Options parsed from flags never get here (the flag is refused); set in
/// code, they fail as a bad URL would.
#[cfg(not(feature = "cluster"))]
fn open_cluster(_: &[String], _: &Options) -> Result<Backend, BindError> {
    Err(BindError::Redis(options::NO_CLUSTER.into()))
}

/// Step 1: starts the backend, and the core task beside it (restored
/// from what the backend holds).
fn start_backend(
    backend: Backend,
    (inbox, inbox_rx): (Sender<Input>, Receiver<Input>),
    options: &Options,
    executor: &Executor<'static>,
    metrics: &Arc<Metrics>,
    readiness: &Arc<Readiness>,
) -> io::Result<(CoreTask, Running)> {
    let rng = StdRng::try_from_rng(&mut SysRng).map_err(io::Error::other)?;
    let (core, seam, running) =
        backend.start(options.config(), rng, executor, metrics, readiness)?;
    let activity = Arc::new(Activity::default());
    let task = executor.spawn(core_task::run(
        core,
        inbox_rx,
        seam,
        options.flush_interval,
        activity.clone(),
        metrics.clone(),
    ));
    if memory::CAN_RELEASE {
        executor
            .spawn(memory::release_after_bursts(activity))
            .detach();
    }
    Ok((CoreTask { inbox, task }, running))
}

/// How the core starts: at once, or once the backend (a cluster's Redis)
/// is reached, the node listening meanwhile.
enum Start {
    Now(CoreTask, Running),
    Later(Backend, Receiver<Input>),
}

/// The core task, and its inbox.
struct CoreTask {
    inbox: Sender<Input>,
    task: Task<()>,
}

impl CoreTask {
    /// Everything the core still had to save goes to the backend, and the
    /// core task ends.
    async fn finish(self) {
        let _ = self.inbox.send(Input::Finish).await;
        self.task.await;
    }
}

/// Step 2: the threads that run the executor beside the one calling
/// [`ChatServer::run`], until stopped.
struct Workers {
    /// The workers run until this is dropped.
    stop: Sender<Infallible>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Workers {
    /// One thread per CPU (or `threads`), this one included.
    fn start(
        executor: &Arc<Executor<'static>>,
        threads: Option<NonZeroUsize>,
    ) -> io::Result<Workers> {
        let threads = threads
            .or_else(|| thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        let (stop, stopped) = channel::bounded::<Infallible>(1);
        let threads = (1..threads)
            .map(|i| {
                let executor = executor.clone();
                let stopped = stopped.clone();
                thread::Builder::new()
                    .name(format!("chat-io-{i}"))
                    .spawn(move || {
                        let _ = smol::block_on(executor.run(stopped.recv()));
                    })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Workers { stop, threads })
    }

    fn stop(self) {
        drop(self.stop);
        for worker in self.threads {
            let _ = worker.join();
        }
    }
}

/// Serves the operator's endpoints on `listener` (`--admin-listen`), or
/// returns them to be served on the chat's port.
fn serve_admin(
    listener: Option<(Async<TcpListener>, SocketAddr)>,
    admin: Arc<Admin>,
    executor: &Arc<Executor<'static>>,
    head_timeout: Duration,
) -> Option<Arc<Admin>> {
    let Some((listener, addr)) = listener else {
        return Some(admin);
    };
    info!("/healthz, /readyz and /metrics on http://{addr}");
    let serving = admin::serve(listener, admin, executor.clone(), head_timeout);
    executor.spawn(serving).detach();
    None
}

/// Step 3: accepts connections until `shutdown` resolves. Returns what
/// tells when every connection accepted meanwhile has ended.
async fn serve(port: &ChatPort, shutdown: impl Future<Output = ()>) -> Receiver<Infallible> {
    let (alive, all_gone) = channel::bounded::<Infallible>(1);
    port.accept(&alive, shutdown).await;
    all_gone
}

/// Step 4: closes every connection, waiting up to `timeout` for them to
/// close, then stops the core task, having handed the backend everything.
///
/// From the first moment /readyz answers 503 and upgrades are refused, so
/// that a load balancer sends no one new, while the port stays open for
/// probes until everyone connected has been closed.
async fn drain(
    port: ChatPort,
    connections: Receiver<Infallible>,
    readiness: &Readiness,
    core: Option<CoreTask>,
    timeout: Duration,
) {
    readiness.fail(Check::Shutdown, "shutting down");
    port.ctx.draining.begin();
    let open = connections.sender_count();
    info!(
        "shutting down: closing {}",
        counted(u64::try_from(open).unwrap_or(u64::MAX), "connection")
    );
    if let Some(core) = &core {
        let _ = core.inbox.send(Input::Shutdown).await;
    }
    // Connections made while draining are not waited for.
    let (stray, _) = channel::bounded::<Infallible>(1);
    let drained = future::or(
        async { with_timeout(timeout, connections.recv()).await.is_some() },
        async {
            port.accept(&stray, future::pending()).await;
            false
        },
    );
    if !drained.await {
        let open = connections.sender_count();
        warn!("shutdown timeout: dropping {open} connections that did not close");
    }
    drop(port);
    if let Some(core) = core {
        core.finish().await;
    }
}

/// Binds a listener on `addr`: the listener and its address (with the real
/// port when port 0 was asked for).
fn listen(addr: SocketAddr) -> Result<(Async<TcpListener>, SocketAddr), BindError> {
    Async::<TcpListener>::bind(addr)
        .and_then(|listener| Ok((listener.get_ref().local_addr()?, listener)))
        .map(|(local, listener)| (listener, local))
        .map_err(|error| BindError::Listen { addr, error })
}

/// The chat's port: what accepts its connections, and runs each as a
/// task of its own.
struct ChatPort {
    listener: Async<TcpListener>,
    executor: Arc<Executor<'static>>,
    ctx: Arc<Context>,
}

impl ChatPort {
    /// Accepts connections until `shutdown` resolves. Each connection task
    /// holds a clone of `alive` until it ends.
    async fn accept(&self, alive: &Sender<Infallible>, shutdown: impl Future<Output = ()>) {
        let mut shutdown = pin!(shutdown);
        let mut crowded = CrowdedLog::default();
        loop {
            let accepted = future::or(async { Some(self.listener.accept().await) }, async {
                shutdown.as_mut().await;
                None
            })
            .await;
            match accepted {
                None => return,
                Some(Ok((tcp, peer))) => {
                    // Counted from here, so that connections that never
                    // upgrade cannot hold every descriptor; past the bound,
                    // closed at once (dropping `tcp`).
                    let proxy = self.ctx.proxies.trusts(peer.ip());
                    let handshake = match self.ctx.admission.arrive(peer.ip(), proxy) {
                        Ok(handshake) => handshake,
                        Err(why) => {
                            crowded.dropped(peer, why, Instant::now());
                            continue;
                        }
                    };
                    // Frames are coalesced by the writer; don't delay them further.
                    let _ = tcp.get_ref().set_nodelay(true);
                    let task =
                        connection::run(tcp, peer, self.ctx.clone(), alive.clone(), handshake);
                    self.executor.spawn(task).detach();
                }
                // The peer gave up before we got to it: nothing to back off from.
                Some(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    debug!("accept: {e}");
                }
                Some(Err(e)) => {
                    // Typically EMFILE: out of file descriptors until some close.
                    warn!("accept failed: {e}; retrying in {ACCEPT_BACKOFF:?}");
                    Timer::after(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// How often at most a line says that connections are being closed at
/// accept: a flood must not flood the log too.
const CROWDED_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The warnings about connections closed at accept (past the bounds on
/// handshakes): the first at once, then one per [`CROWDED_LOG_INTERVAL`]
/// with how many more there were; each at debug level.
#[derive(Debug, Default)]
struct CrowdedLog {
    last_warned: Option<Instant>,
    unlogged: u64,
}

impl CrowdedLog {
    fn dropped(&mut self, peer: SocketAddr, why: Crowded, now: Instant) {
        debug!(%peer, "closed at accept: {why}");
        let quiet = self
            .last_warned
            .is_none_or(|then| now.duration_since(then) >= CROWDED_LOG_INTERVAL);
        if !quiet {
            self.unlogged += 1;
            return;
        }
        let more = match std::mem::take(&mut self.unlogged) {
            0 => String::new(),
            n => format!(" ({n} more since the last such line)"),
        };
        warn!(%peer, "connection closed at accept: {why}{more}");
        self.last_warned = Some(now);
    }
}

/// `1 connection`, `2 connections`: a count and its noun, for the log.
pub(crate) fn counted(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}
