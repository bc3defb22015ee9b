//! What every mode shares: options, the run's context, and the phases that
//! open logged-in clients and wait for the join storm to settle.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use smol::Timer;
use smol::lock::Semaphore;

use crate::net::{Dialer, Ws, within};
use crate::runtime::Runtime;
use crate::wire::{self, Ear, Heard, Joins, Protocol};

/// Options of every mode.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The server's address; loopback only. Repeat it for the nodes of a
    /// cluster: clients are spread over them in turn.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub server: Vec<SocketAddr>,
    /// Protocol version: v2 offers the WebSocket subprotocol `wschat.v2`
    /// and fails a connection whose server does not select it.
    #[arg(long, value_enum, default_value_t = Protocol::V1)]
    pub protocol: Protocol,
    /// PID of the server, to report its VmRSS from /proc/PID/status and
    /// its CPU time. Repeat it for a cluster's nodes (and its Redis): their
    /// memory and CPU time are added up.
    #[arg(long, value_name = "PID")]
    pub server_pid: Vec<u32>,
    /// Executor threads of the load generator (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Spread client sockets over source addresses 127.0.0.1 ..= 127.0.0.N.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub source_ips: u8,
    /// Connections being opened (TCP + WebSocket handshake + login) at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub concurrency: usize,
    /// tungstenite read buffer of each client, in bytes (client memory
    /// only; below 4096 it saves none: tungstenite keeps its 4 KiB
    /// handshake buffer as the read buffer).
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub read_buffer: usize,
    /// Give up on one connection's TCP connect + WebSocket handshake after this.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Hard limit for the whole run: when it passes, the run stops where it
    /// is and reports `status=timeout`.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Tag of this run in usernames `lg-<run>-<n>` (default: derived from
    /// the clock and the process id), so that runs against one server never
    /// collide.
    #[arg(long, value_name = "TAG")]
    pub run: Option<String>,
}

/// The run's shared context.
pub struct Ctx {
    pub rt: Runtime,
    pub dialer: Arc<Dialer>,
    /// Limits connections in the middle of connect + handshake + login.
    pub opening: Arc<Semaphore>,
    pub run: String,
    pub protocol: Protocol,
    /// The server's processes (`--server-pid`), maybe none.
    pub server_pids: Vec<u32>,
    /// When the whole run must be over (`--timeout`).
    pub deadline: Instant,
}

impl Ctx {
    /// `sockets`: how many client sockets the run holds open at once at
    /// most, checked against the open-file limit before anything starts.
    pub fn new(args: &CommonArgs, sockets: usize) -> anyhow::Result<Self> {
        Self::offering(args, sockets, args.protocol.subprotocol())
    }

    /// As [`Ctx::new`], the clients offering `subprotocol` whatever
    /// `--protocol` says (the rooms modes speak v3, which it does not name).
    pub fn offering(
        args: &CommonArgs,
        sockets: usize,
        subprotocol: Option<&'static str>,
    ) -> anyhow::Result<Self> {
        crate::fdlimit::ensure_room_for(sockets)?;
        let threads = args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let run = match &args.run {
            Some(run) => run.clone(),
            None => default_run_tag(),
        };
        if run.is_empty() || run.len() > 12 || !run.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("--run must be 1 to 12 ASCII letters or digits");
        }
        Ok(Ctx {
            rt: Runtime::start(threads)?,
            dialer: Arc::new(Dialer::offering(
                &args.server,
                args.source_ips,
                args.read_buffer,
                args.connect_timeout,
                subprotocol,
            )?),
            opening: Arc::new(Semaphore::new(args.concurrency.max(1))),
            run,
            protocol: args.protocol,
            server_pids: args.server_pid.clone(),
            deadline: Instant::now() + args.timeout,
        })
    }

    /// The username of client `n`: `lg-<run>-<n>`, at most 32 characters.
    pub fn username(&self, n: impl std::fmt::Display) -> String {
        username(&self.run, n)
    }

    /// The name whose `loginBroadcast` ends a join phase.
    pub fn barrier_name(&self) -> String {
        self.username("barrier")
    }

    pub fn ear(&self) -> Ear {
        Ear::new(&self.barrier_name())
    }

    /// The server's VmRSS (all its processes' together).
    pub fn server_rss_kib(&self) -> Option<u64> {
        if self.server_pids.is_empty() {
            return None;
        }
        self.server_pids
            .iter()
            .map(|&pid| crate::procfs::vm_rss_kib(pid))
            .sum()
    }

    /// Opens client `n` (waiting for a free `--concurrency` slot) and sends
    /// its `login`; the `loginMessage` is the caller's to read.
    ///
    /// Connecting (the handshake above all) needs about 6 KiB of future
    /// state. Boxed once a slot is free, it exists for at most
    /// `--concurrency` clients at a time; inline, every client's task would
    /// carry it for its whole life, and boxed before the wait, 19,000
    /// waiting clients would hold it all at once.
    pub async fn open_and_log_in(&self, n: usize) -> anyhow::Result<Ws> {
        let _opening = self.opening.acquire().await;
        let opened: BoxFuture<'_, anyhow::Result<Ws>> = Box::pin(async {
            let mut ws = self.dialer.dial().await?;
            ws.send(Message::text(wire::login(&self.username(n))))
                .await?;
            Ok(ws)
        });
        opened.await
    }

    /// Waits until `done()` holds, checking every few milliseconds, or until
    /// `until` (or the run's deadline) passes. Returns whether `done()` held.
    pub async fn wait_for(&self, until: Instant, mut done: impl FnMut() -> bool) -> bool {
        let until = until.min(self.deadline);
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            Timer::after(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `clients` clients have logged in (or failed), then for
    /// the join storm to settle behind the [barrier](Ctx::barrier). Returns
    /// whether everyone alive heard the barrier before `until`.
    pub async fn settle(&self, until: Instant, counters: &Counters, clients: usize) -> bool {
        let logged_in = self
            .wait_for(until, || {
                Counters::get(&counters.logged_in) + Counters::get(&counters.failed) >= clients
            })
            .await;
        logged_in
            && counters.alive() > 0
            && self
                .barrier(
                    until,
                    || counters.alive(),
                    || Counters::get(&counters.heard_barrier),
                )
                .await
    }

    /// The join-phase barrier: once every client has logged in, one more
    /// connection logs in as [`Ctx::barrier_name`]. The server writes each
    /// connection's frames in order, so a client that hears the barrier's
    /// join has heard every earlier one: when all have heard it, the join
    /// storm is over. `heard()` counts those that did (see [`Barrier`]).
    ///
    /// A join is heard in its `loginBroadcast` or, in v2 beyond the
    /// server's presence budget, in the `joined` names of a `presence`
    /// summary: the barrier joins last, so it is among the most recent
    /// names of the summary that covers it.
    ///
    /// Returns whether the storm settled before `until`.
    pub async fn barrier(
        &self,
        until: Instant,
        expected: impl Fn() -> usize,
        heard: impl Fn() -> usize,
    ) -> bool {
        let opened = async {
            let mut ws = self.dialer.dial().await?;
            login(&mut ws, &self.barrier_name(), &self.ear()).await?;
            anyhow::Ok(ws)
        };
        let left = until
            .min(self.deadline)
            .saturating_duration_since(Instant::now());
        let Ok(Ok(barrier)) = within(left, opened).await else {
            return false;
        };
        let settled = self.wait_for(until, || heard() >= expected()).await;
        drop(barrier);
        settled
    }
}

/// Sends `login` and reads until the `loginMessage`, skipping broadcasts.
/// Returns the join notices that came first (the client's own included).
pub async fn login(ws: &mut Ws, username: &str, ear: &Ear) -> anyhow::Result<Joins> {
    ws.send(Message::text(wire::login(username))).await?;
    let mut joins = Joins::default();
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            match ear.hear(&text) {
                Heard::LoginMessage => return Ok(joins),
                Heard::Error(code) => bail!("login as {username} refused: {code}"),
                heard => joins.count(&heard),
            }
        }
    }
    Err(anyhow::anyhow!("closed before the loginMessage")).context(username.to_owned())
}

/// One client's side of the [barrier](Ctx::barrier): counts it in
/// `Counters::heard_barrier` once, however many frames name it (in v2 the
/// barrier's name may come again, in `joined` and `left` alike, once it has
/// gone).
#[derive(Debug, Default)]
pub struct Barrier {
    heard: bool,
}

impl Barrier {
    pub fn note(&mut self, heard: &Heard, counters: &Counters) {
        if !self.heard && heard.is_barrier() {
            self.heard = true;
            Counters::bump(&counters.heard_barrier);
        }
    }
}

/// Why a client that connected never saw its `loginMessage`.
pub fn not_logged_in(username: &str, refused: Option<String>) -> String {
    match refused {
        Some(code) => format!("login as {username} refused: {code}"),
        None => format!("{username}: connection ended before its loginMessage"),
    }
}

/// How a client's connection ended, from what its stream yielded last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending(String);

impl Default for Ending {
    fn default() -> Self {
        Ending("the connection ended without a Close frame".into())
    }
}

impl Ending {
    /// Notes a Close frame or a read error; other messages change nothing.
    pub fn note(&mut self, next: &Result<Message, WsError>) {
        match next {
            Ok(Message::Close(Some(frame))) => {
                self.0 = format!(
                    "Close {} {:?}",
                    u16::from(frame.code),
                    frame.reason.as_str()
                );
            }
            Ok(Message::Close(None)) => self.0 = "Close without a code".into(),
            Ok(_) => {}
            Err(error) => self.0 = error.to_string(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `lg-<run>-<n>`.
pub fn username(run: &str, n: impl std::fmt::Display) -> String {
    format!("lg-{run}-{n}")
}

/// A tag unlikely to repeat between runs against one server, even runs
/// started in the same second: 8 base-36 digits of the clock in
/// nanoseconds mixed with the process id.
fn default_run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = nanos ^ u64::from(std::process::id()).rotate_left(40);
    let mut n = mixed % 36u64.pow(8);
    let mut tag = [0u8; 8];
    for digit in tag.iter_mut().rev() {
        *digit = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&tag).into_owned()
}

/// Counters shared by all clients of a run.
#[derive(Debug, Default)]
pub struct Counters {
    pub logged_in: AtomicUsize,
    /// Clients that failed to connect or log in; see [`Counters::fail`].
    pub failed: AtomicUsize,
    /// Why the first of them failed, for the operator (stderr).
    first_failure: OnceLock<String>,
    pub heard_barrier: AtomicUsize,
    /// Logged-in clients whose connection ended before the run did; see
    /// [`Counters::close`].
    pub closed: AtomicUsize,
    first_close: OnceLock<String>,
}

impl Counters {
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }

    pub fn bump(counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client that failed to connect or log in.
    pub fn fail(&self, why: impl std::fmt::Display) {
        Self::bump(&self.failed);
        if self.first_failure.set(why.to_string()).is_ok() {
            eprintln!("chat-loadgen: a client failed: {why}");
        }
    }

    /// Counts a logged-in client whose connection ended before the run did.
    pub fn close(&self, why: &str) {
        Self::bump(&self.closed);
        if self.first_close.set(why.to_owned()).is_ok() {
            eprintln!("chat-loadgen: a logged-in client was closed: {why}");
        }
    }

    /// Logged-in clients still connected.
    pub fn alive(&self) -> usize {
        Self::get(&self.logged_in).saturating_sub(Self::get(&self.closed))
    }
}

/// Seconds with one decimal.
pub fn secs(d: Duration) -> f64 {
    crate::summary::round1(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ending_names_the_close_code_and_reason() {
        use async_tungstenite::tungstenite::protocol::CloseFrame;
        use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        let mut ending = Ending::default();
        ending.note(&Ok(Message::text("x")));
        assert_eq!(ending, Ending::default());
        ending.note(&Ok(Message::Close(Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "too slow".into(),
        }))));
        assert_eq!(ending.as_str(), r#"Close 1008 "too slow""#);
        ending.note(&Err(WsError::ConnectionClosed));
        assert_eq!(ending.as_str(), WsError::ConnectionClosed.to_string());
    }

    #[test]
    fn a_client_counts_the_barrier_once_from_a_broadcast_or_a_summary() {
        let counters = Counters::default();
        let mut from_broadcast = Barrier::default();
        let mut from_summary = Barrier::default();
        let summary = Heard::Presence {
            barrier: true,
            joined: 40,
        };
        from_broadcast.note(&Heard::LoginBroadcast { barrier: false }, &counters);
        from_summary.note(
            &Heard::Presence {
                barrier: false,
                joined: 20,
            },
            &counters,
        );
        assert_eq!(Counters::get(&counters.heard_barrier), 0);
        from_broadcast.note(&Heard::LoginBroadcast { barrier: true }, &counters);
        from_summary.note(&summary, &counters);
        assert_eq!(Counters::get(&counters.heard_barrier), 2);
        // The name again, in a later summary: still two clients.
        from_summary.note(&summary, &counters);
        from_broadcast.note(&Heard::LoginBroadcast { barrier: true }, &counters);
        assert_eq!(Counters::get(&counters.heard_barrier), 2);
    }

    #[test]
    fn usernames_are_valid_even_with_the_longest_run_tag() {
        let max = wschat::Config::default().max_username_chars;
        let tag = default_run_tag();
        assert_eq!(tag.len(), 8);
        for run in [tag.as_str(), "abcdefghijkl"] {
            for n in ["0", "barrier", "4294967295"] {
                let name = username(run, n);
                assert!(
                    wschat::username::Username::parse(&name, max).is_ok(),
                    "{name}"
                );
            }
        }
    }
}
