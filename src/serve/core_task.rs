//! The one task that owns the chat core. Every change to chat state happens
//! here, in the order inputs arrive; connections only talk to it through
//! the inbox and their outboxes, so no lock is held around the core.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant, SystemTime};

use async_tungstenite::tungstenite::Utf8Bytes;
use rand::CryptoRng;
use smol::channel::{Receiver, TrySendError};
use smol::{Timer, future};
use tracing::field::display;
use tracing::{debug, info, warn};

use super::inbox::{Conn, InFrame, Input};
use super::memory::{Activity, CONNECTION_BYTES};
use super::metrics::{Metrics, Tally};
use super::outbox::{Outgoing, Refused};
use super::seam::{Reply, Seam};
use crate::server::{Failed, Request};
use crate::{Action, CloseCode, ConnectionId, Event, Frame, Inbound, Server};

/// Inputs handled in one go (one clock reading, one timer re-arm) before
/// waiting again: large enough for a burst, small enough to stay fair to the
/// timer.
const MAX_BATCH: usize = 256;

/// Writes waiting for the store past which no new input is taken (the
/// store's outcomes still are): backpressure on the connections, rather
/// than an ever longer queue in front of a slow disk.
const MAX_WRITES_IN_FLIGHT: usize = 50_000;

/// What woke the core task.
enum Woken {
    Input(Input),
    Replies(Vec<Reply>),
    /// Every sender of the inbox is gone.
    Closed,
    Timer,
}

struct Core<R> {
    server: Server<R>,
    /// The outbox of every connection the core knows.
    routes: HashMap<ConnectionId, Arc<Conn>>,
    /// The last frame's text (see [`text_of`]).
    last_text: Option<Utf8Bytes>,
    /// Writers to wake once the current batch of inputs is handled, so that
    /// each finds everything the batch queued for it and writes it at once.
    wakes: Vec<Waker>,
    /// Work done, for giving memory back after a burst (see `memory`),
    /// published once per batch of inputs.
    activity: Arc<Activity>,
    unpublished: u64,
    /// What `/metrics` counts, published once per batch of inputs.
    tally: Tally,
}

/// Runs the core until `Input::Finish` (or until every sender of `inbox` is
/// gone), having handed every write to the store. Writers are woken at most
/// once per `flush_interval` (see [`Flushes`]).
pub(crate) async fn run<R: CryptoRng>(
    server: Server<R>,
    inbox: Receiver<Input>,
    backend: Option<Seam>,
    flush_interval: Duration,
    activity: Arc<Activity>,
    metrics: Arc<Metrics>,
) {
    let mut core = Core {
        server,
        routes: HashMap::new(),
        last_text: None,
        wakes: Vec::new(),
        activity,
        unpublished: 0,
        tally: Tally::new(metrics),
    };
    let mut flushes = Flushes::new(flush_interval);
    let mut timer = Timer::never();
    let mut armed: Option<Instant> = None;
    loop {
        let deadline = match (core.server.poll_timeout(), flushes.due) {
            (Some(core), Some(flush)) => Some(core.min(flush)),
            (core, flush) => core.or(flush),
        };
        if deadline != armed {
            match deadline {
                Some(at) => timer.set_at(at),
                None => timer = Timer::never(),
            }
            armed = deadline;
        }
        let taking_inputs = core.server.requests_in_flight() < MAX_WRITES_IN_FLIGHT;
        let input = async {
            if !taking_inputs {
                future::pending::<()>().await;
            }
            inbox.recv().await.map_or(Woken::Closed, Woken::Input)
        };
        let outcomes = async {
            match &backend {
                Some(link) => link
                    .replies
                    .recv()
                    .await
                    .map_or(Woken::Closed, Woken::Replies),
                None => future::pending().await,
            }
        };
        let woken = future::or(
            input,
            future::or(outcomes, async {
                (&mut timer).await;
                Woken::Timer
            }),
        )
        .await;
        let now = Instant::now();
        // v2 timestamps are wall-clock time; re-reading it on every wake
        // follows any step of the system clock.
        core.server.set_wall_clock(SystemTime::now(), now);
        match woken {
            Woken::Input(Input::Finish) | Woken::Closed => {
                core.perform(now);
                core.send_writes(backend.as_ref(), now);
                core.wakes.drain(..).for_each(Waker::wake);
                return; // dropping the link lets the store drain and stop
            }
            Woken::Input(input) => core.handle(input, now),
            Woken::Replies(replies) => {
                for reply in replies {
                    match reply {
                        Reply::Answer(answer) => core.server.handle_answer(answer, now),
                        Reply::Remote(remote) => core.server.handle_remote(remote, now),
                        Reply::HeldNamesWanted(answer) => {
                            core.send_writes(backend.as_ref(), now);
                            let held = (core.server.held_names(), core.server.last_ticket());
                            let _ = answer.try_send(held);
                        }
                    }
                    core.perform(now);
                }
            }
            Woken::Timer => armed = None, // fired: re-arm even for the same instant
        }
        // Each input's actions are performed before the next input is taken:
        // a broadcast is one action per connection, so letting a burst of
        // logins pile up actions would hold batch × connections of them
        // (hundreds of MB at 20,000 sockets). The outboxes batch instead:
        // writers are woken only once the whole batch is queued.
        core.perform(now);
        let mut finishing = false;
        for _ in 1..MAX_BATCH {
            if !taking_inputs {
                break;
            }
            match inbox.try_recv() {
                Ok(Input::Finish) => {
                    finishing = true;
                    break;
                }
                Ok(input) => core.handle(input, now),
                Err(_) => break,
            }
            core.perform(now);
        }
        core.server.handle_timeout(now);
        core.perform(now);
        core.send_writes(backend.as_ref(), now);
        if finishing {
            core.wakes.drain(..).for_each(Waker::wake);
            return; // dropping the link lets the store drain and stop
        }
        // Counted before any writer is woken to send what was counted.
        core.tally.publish(&core.server, now);
        flushes.after_batch(&mut core.wakes, now);
        core.activity.add(std::mem::take(&mut core.unpublished));
    }
}

/// When the writers are woken. Each wake-up is a `write` per connection, and
/// on loopback or a LAN most of a delivery's cost is that system call and
/// the reader's wake-up at the other end, not the bytes. So while messages
/// keep coming, writers are woken at most once per interval and each writes
/// everything that came meanwhile in one go; after a quiet interval the
/// next batch goes out at once. A chat sees no delay; a busy one trades a
/// few milliseconds of latency for several times fewer writes.
struct Flushes {
    interval: Duration,
    /// When the writers were last woken.
    last: Option<Instant>,
    /// When the held wakers are due; `None` when none are held.
    due: Option<Instant>,
}

impl Flushes {
    fn new(interval: Duration) -> Self {
        Flushes {
            interval,
            last: None,
            due: None,
        }
    }

    fn after_batch(&mut self, wakes: &mut Vec<Waker>, now: Instant) {
        if wakes.is_empty() {
            return;
        }
        let next = self.last.map_or(now, |last| last + self.interval);
        if next <= now {
            wakes.drain(..).for_each(Waker::wake);
            self.last = Some(now);
            self.due = None;
        } else {
            self.due = Some(next);
        }
    }
}

impl<R: CryptoRng> Core<R> {
    /// Hands every request the core made to the backend, in one batch.
    fn send_writes(&mut self, backend: Option<&Seam>, now: Instant) {
        let writes: Vec<Request> = std::iter::from_fn(|| self.server.poll_request()).collect();
        if writes.is_empty() {
            return;
        }
        let Some(link) = backend else { return };
        if let Err(TrySendError::Closed(writes) | TrySendError::Full(writes)) =
            link.requests.try_send(writes)
        {
            // The backend is gone (the store's thread panicked): nothing
            // more can be saved, and nothing is acknowledged as if it had
            // been. (Its channel is unbounded: never full.)
            for request in writes {
                let error = Failed("the store has stopped".into());
                self.server.handle_answer(request.fail(error), now);
            }
            self.perform(now);
        }
    }

    fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Open {
                conn,
                location,
                version,
            } => {
                let id = self.server.handle_open(&location, version, now);
                let _ = conn.id.set(id);
                debug!(peer = %conn.peer, conn = %id, ?version, "open");
                self.routes.insert(id, conn);
                self.unpublished += CONNECTION_BYTES;
            }
            Input::Frame { conn, frame } => {
                let Some(&id) = conn.id.get() else { return };
                let frame = match &frame {
                    InFrame::Text(text) => Inbound::Text(text.as_bytes()),
                    InFrame::Binary(bytes) => Inbound::Binary(bytes),
                    InFrame::Ping(payload) => Inbound::Ping(payload),
                    InFrame::Pong(payload) => Inbound::Pong(payload),
                };
                self.server.handle_frame(id, frame, now);
            }
            Input::Closed { conn } => {
                let Some(&id) = conn.id.get() else { return };
                self.unpublished += CONNECTION_BYTES;
                if self.routes.remove(&id).is_some() {
                    debug!(peer = %conn.peer, conn = %id, "closed by peer");
                }
                self.server.handle_close(id, now);
            }
            // Closes every connection, and from now on every one that
            // opens: the core keeps that state.
            Input::Shutdown => self.server.shutdown(now),
            Input::Finish => {} // handled by the loop
        }
    }

    /// Performs every action the core asks for and logs what happened.
    fn perform(&mut self, now: Instant) {
        while let Some(action) = self.server.poll_action() {
            match action {
                Action::Send { to, frame } => {
                    if let Some(text) = text_of(&mut self.last_text, &frame) {
                        self.deliver(to, Outgoing::Text(text), now);
                    }
                }
                Action::Ping { to, payload } => self.deliver(to, Outgoing::Ping(payload), now),
                // tungstenite has already answered the ping.
                Action::Pong { .. } => {}
                Action::Close { to, code, reason } => {
                    if let Some(conn) = self.routes.remove(&to) {
                        debug!(peer = %conn.peer, conn = %to, code = code.0, reason, "closing");
                        conn.outbox.close(code, reason);
                    }
                }
            }
        }
        while let Some(event) = self.server.poll_event() {
            self.tally.event(&event);
            log(&event, &self.routes);
        }
    }

    /// Queues a frame for `to`; a connection whose queue is full is closed
    /// with 1008 "too slow" rather than waited for.
    fn deliver(&mut self, to: ConnectionId, frame: Outgoing, now: Instant) {
        let Some(conn) = self.routes.get(&to) else {
            return;
        };
        self.unpublished += frame.len() as u64;
        let text = matches!(frame, Outgoing::Text(_));
        match conn.outbox.push(frame) {
            Ok(waker) => {
                if text {
                    self.tally.delivered();
                }
                self.wakes.extend(waker);
            }
            // Closing: the connection is gone, whatever was for it too.
            Err(Refused::Closing) => {}
            Err(Refused::Overflow) => {
                debug!(peer = %conn.peer, conn = %to, code = 1008, "closing: too slow");
                conn.outbox.abort(CloseCode::POLICY, "too slow");
                self.routes.remove(&to);
                self.server.handle_close(to, now);
            }
        }
    }
}

/// The text of `frame` for tungstenite. The recipients of a broadcast come
/// one after another with the same bytes, which are checked as UTF-8 once.
fn text_of(last_text: &mut Option<Utf8Bytes>, frame: &Frame) -> Option<Utf8Bytes> {
    let bytes = frame.bytes();
    // Holding `last_text` keeps its allocation alive, so an equal
    // pointer and length mean the very same bytes.
    if let Some(last) = last_text.as_ref()
        && last.as_ptr() == bytes.as_ptr()
        && last.len() == bytes.len()
    {
        return Some(last.clone());
    }
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => {
            *last_text = Some(text.clone());
            Some(text)
        }
        Err(error) => {
            // The core builds frames from serde_json output only.
            warn!("dropping a frame that is not UTF-8: {error}");
            None
        }
    }
}

/// Logs an event of the core, with the peer's address where the connection
/// is still known. Joins and leaves are logged at `info` (the operator's
/// view of who comes and goes), the rest at `debug`. Usernames are public;
/// secrets never reach events.
fn log(event: &Event, routes: &HashMap<ConnectionId, Arc<Conn>>) {
    let peer = |conn: &ConnectionId| routes.get(conn).map(|c| display(&c.peer));
    match event {
        Event::LoggedIn {
            conn,
            username,
            fresh,
        } => info!(peer = peer(conn), %conn, %username, fresh, "joined"),
        Event::Left {
            username,
            location,
            reason,
        } => info!(%username, address = %location, ?reason, "left"),
        Event::LoggedOut { username } => info!(%username, "logged out"),
        Event::LoginRefused { conn, username } => {
            debug!(peer = peer(conn), %conn, %username, "login refused")
        }
        // The close was logged with the peer's address just before.
        Event::Evicted { conn } => debug!(%conn, "evicted: no answer to pings"),
        Event::LoginExpired { username } => debug!(%username, "name released"),
        Event::LoginEvicted { username } => {
            debug!(%username, "name released early: too many names held")
        }
        Event::LoginTimedOut { conn } => debug!(%conn, "closed: no login in time"),
        Event::RateLimited { conn, limit } => {
            debug!(peer = peer(conn), %conn, ?limit, "rate limited")
        }
        Event::PingFlood { conn } => debug!(%conn, "closed: ping flood"),
        // The store's own log says what failed, once per spell of failures.
        Event::WriteFailed { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn wakers(count: &Arc<Count>, n: usize) -> Vec<Waker> {
        (0..n).map(|_| Waker::from(count.clone())).collect()
    }

    #[test]
    fn writers_are_woken_at_once_after_a_quiet_interval_then_at_most_once_per_interval() {
        let count = Arc::new(Count::default());
        let woken = || count.0.load(Ordering::Relaxed);
        let ms = Duration::from_millis;
        let start = Instant::now();
        let mut flushes = Flushes::new(ms(5));

        let mut wakes = wakers(&count, 3);
        flushes.after_batch(&mut wakes, start);
        assert_eq!((woken(), flushes.due), (3, None));

        // Within the interval: held, and a wake-up asked for at its end.
        wakes.extend(wakers(&count, 2));
        flushes.after_batch(&mut wakes, start + ms(1));
        assert_eq!((woken(), flushes.due), (3, Some(start + ms(5))));
        wakes.extend(wakers(&count, 1));
        flushes.after_batch(&mut wakes, start + ms(4));
        assert_eq!((woken(), wakes.len()), (3, 3));

        // The interval is over: everything held goes.
        flushes.after_batch(&mut wakes, start + ms(5));
        assert_eq!((woken(), flushes.due, wakes.len()), (6, None, 0));

        // Nothing to wake: nothing asked for.
        flushes.after_batch(&mut wakes, start + ms(6));
        assert_eq!(flushes.due, None);
    }

    #[test]
    fn a_zero_interval_wakes_writers_after_every_batch() {
        let count = Arc::new(Count::default());
        let now = Instant::now();
        let mut flushes = Flushes::new(Duration::ZERO);
        for round in 1..=3 {
            let mut wakes = wakers(&count, 2);
            flushes.after_batch(&mut wakes, now);
            assert_eq!(count.0.load(Ordering::Relaxed), 2 * round);
            assert_eq!(flushes.due, None);
        }
    }
}
