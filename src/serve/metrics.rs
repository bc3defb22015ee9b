//! What `/metrics` shows (README, "Monitoring"), in the Prometheus text
//! format, made with `prometheus-client`.
//!
//! Counting stays off the hot path: the core task counts deliveries and the
//! core's events in plain integers ([`Tally`]) and adds them to the shared
//! counters once per batch of inputs; connections count what they do once
//! when they open and once when they end; bytes and send queues are read
//! from the live connections when a scrape asks ([`Sockets`]), so a frame
//! or a `write` costs no shared atomic at all.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use rand::CryptoRng;
use slab::Slab;

use super::inbox::Conn;
use crate::protocol::ErrorCode;
use crate::server::{Limit, Stats};
use crate::{CloseCode, Event, Server, Version};

/// The `Content-Type` of the Prometheus text format (version 0.0.4).
pub(crate) const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The `Content-Type` of OpenMetrics text, for scrapers that ask for it.
pub(crate) const OPENMETRICS_TEXT: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric of one server.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Open WebSocket connections, by protocol (`v1`, `v2`).
    connections: [Gauge; 3],
    opened: [Counter; 3],
    closed: Family<CloseLabels, Counter>,
    handshakes_refused: Family<StatusLabel, Counter>,
    tls_handshakes_failed: Counter,
    logged_in_users: Gauge,
    held_names: Arc<HeldNames>,
    requests_in_flight: Gauge,
    /// By [`Tally::event`]'s `fresh`: a free name taken, a held one reclaimed.
    logins: [Counter; 2],
    messages: Counter,
    deliveries: Counter,
    /// By code, in the order of [`ErrorCode::ALL`].
    errors: Vec<Counter>,
    /// By [`limit_index`].
    rate_limited: [Counter; 3],
    core_step: Histogram,
    store_commit: Histogram,
    /// The live connections, for bytes and send queues.
    pub(crate) sockets: Arc<Sockets>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CloseLabels {
    code: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabel {
    error: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NameLabel {
    name: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// How long one turn of the core's loop takes: tens of microseconds when
/// idle, milliseconds for a broadcast to thousands.
const CORE_STEP_BUCKETS: [f64; 14] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25,
];

/// How long a commit of the store takes: an fsync, so from about 100 µs on
/// a fast disk to hundreds of milliseconds on a struggling one.
const COMMIT_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

const LIMITS: [&str; 3] = ["messages", "login_failures", "new_names"];

fn limit_index(limit: Limit) -> usize {
    match limit {
        Limit::Messages => 0,
        Limit::LoginFailures => 1,
        // A limit added later counts with the newest.
        _ => 2,
    }
}

fn protocol_index(version: Version) -> usize {
    match version {
        Version::V1 => 0,
        Version::V2 => 1,
        Version::V3 => 2,
    }
}

/// Registers a family and hands back the metric of each label set in
/// `labels`, which then shows (as 0) before anything is counted.
fn fixed<S, M, const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    labels: [S; N],
) -> [M; N]
where
    S: Clone + std::hash::Hash + Eq + EncodeLabelSet + fmt::Debug + Send + Sync + 'static,
    M: Default + Clone + EncodeMetric + prometheus_client::metrics::TypedMetric,
    M: fmt::Debug + Send + Sync + 'static,
{
    let family = Family::<S, M>::default();
    registry.register(name, help, family.clone());
    labels.map(|label| family.get_or_create_owned(&label))
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let protocols = || ["v1", "v2", "v3"].map(|protocol| ProtocolLabel { protocol });
        let connections = fixed(
            &mut registry,
            "wschat_connections",
            "Open WebSocket connections, by protocol",
            protocols(),
        );
        let opened = fixed(
            &mut registry,
            "wschat_connections_opened",
            "WebSocket connections opened (upgrades completed), by protocol",
            protocols(),
        );
        let closed = Family::<CloseLabels, Counter>::default();
        registry.register(
            "wschat_connections_closed",
            "WebSocket connections closed, by the close code sent or received and why \
             (code 1006: lost without a Close)",
            closed.clone(),
        );
        let handshakes_refused = Family::<StatusLabel, Counter>::default();
        registry.register(
            "wschat_handshakes_refused",
            "Connections answered with an HTTP error instead of a WebSocket: a request head \
             too large, too slow or malformed, a bad upgrade, a foreign Origin, or no room",
            handshakes_refused.clone(),
        );
        let tls_handshakes_failed = Counter::default();
        registry.register(
            "wschat_tls_handshakes_failed",
            "TLS handshakes that failed or timed out (wss:// only)",
            tls_handshakes_failed.clone(),
        );
        let gauge = |registry: &mut Registry, name, help| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let logged_in_users = gauge(
            &mut registry,
            "wschat_logged_in_users",
            "Names held by at least one of this node's open connections",
        );
        let held_names = Arc::new(HeldNames(AtomicI64::new(0)));
        registry.register_collector(Box::new(held_names.clone()));
        let requests_in_flight = gauge(
            &mut registry,
            "wschat_requests_in_flight",
            "Requests handed to the store (or Redis) whose outcome has not come back",
        );
        let logins = fixed(
            &mut registry,
            "wschat_logins",
            "Logins accepted: a free name taken (new) or a held one reclaimed with its secret",
            ["new", "reclaimed"].map(|name| NameLabel { name }),
        );
        let counter = |registry: &mut Registry, name, help| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let messages = counter(
            &mut registry,
            "wschat_messages",
            "Chat messages accepted and broadcast",
        );
        let deliveries = counter(
            &mut registry,
            "wschat_deliveries",
            "Frames queued to recipients (a broadcast to 100 is 100)",
        );
        let errors = fixed(
            &mut registry,
            "wschat_errors",
            "errorMessages sent to clients, by error code",
            ErrorCode::ALL.map(|code| ErrorLabel {
                error: code.as_str(),
            }),
        );
        let rate_limited = fixed(
            &mut registry,
            "wschat_rate_limited",
            "Frames refused with rateLimited, by the limit that refused them",
            LIMITS.map(|limit| LimitLabel { limit }),
        );
        let core_step = Histogram::new(CORE_STEP_BUCKETS);
        registry.register_with_unit(
            "wschat_core_step",
            "How long one turn of the core task's loop takes (a batch of inputs handled)",
            Unit::Seconds,
            core_step.clone(),
        );
        let store_commit = Histogram::new(COMMIT_BUCKETS);
        registry.register_with_unit(
            "wschat_store_commit",
            "How long the store takes to commit a batch of writes (fsync included)",
            Unit::Seconds,
            store_commit.clone(),
        );
        registry.register(
            "wschat_build",
            "The running version",
            Info::new(VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let sockets = Arc::new(Sockets::default());
        registry.register_collector(Box::new(sockets.clone()));
        Metrics {
            registry,
            connections,
            opened,
            closed,
            handshakes_refused,
            tls_handshakes_failed,
            logged_in_users,
            held_names,
            requests_in_flight,
            logins,
            messages,
            deliveries,
            errors: errors.to_vec(),
            rate_limited,
            core_step,
            store_commit,
            sockets,
        }
    }

    /// The exposition: Prometheus text, or OpenMetrics text when
    /// `openmetrics`.
    pub(crate) fn render(&self, openmetrics: bool) -> String {
        let mut text = String::with_capacity(8 * 1024);
        let encoded = match openmetrics {
            true => prometheus_client::encoding::text::encode(&mut text, &self.registry),
            false => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            }
        };
        // Writing to a String cannot fail; a collector never reports errors.
        if encoded.is_err() {
            let _ = writeln!(text, "# encoding failed");
        }
        text
    }

    /// A WebSocket upgrade completed.
    pub(crate) fn opened(&self, version: Version) {
        self.opened[protocol_index(version)].inc();
        self.connections[protocol_index(version)].inc();
    }

    /// An upgraded connection ended, with `code` for `reason`.
    pub(crate) fn closed(&self, version: Version, code: u16, reason: &'static str) {
        self.connections[protocol_index(version)].dec();
        let labels = CloseLabels {
            code: code_label(code),
            reason,
        };
        self.closed.get_or_create(&labels).inc();
    }

    /// A connection was answered with `status` instead of a WebSocket.
    pub(crate) fn handshake_refused(&self, status: u16) {
        self.handshakes_refused
            .get_or_create(&StatusLabel { status })
            .inc();
    }

    pub(crate) fn tls_handshake_failed(&self) {
        self.tls_handshakes_failed.inc();
    }

    /// The store took `elapsed` to commit a batch.
    pub(crate) fn store_committed(&self, elapsed: Duration) {
        self.store_commit.observe(elapsed.as_secs_f64());
    }
}

/// A close code as a label. Codes are few and fixed on our side; a peer
/// may send any of thousands, so the ones outside RFC 6455's (1000–1015)
/// count as `other`, keeping the number of series bounded.
fn code_label(code: u16) -> &'static str {
    const CODES: [&str; 16] = [
        "1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010",
        "1011", "1012", "1013", "1014", "1015",
    ];
    code.checked_sub(CloseCode::NORMAL.0)
        .and_then(|i| CODES.get(usize::from(i)))
        .copied()
        .unwrap_or("other")
}

/// What the core task counts between two publications, in plain integers.
#[derive(Debug)]
pub(crate) struct Tally {
    metrics: Arc<Metrics>,
    deliveries: u64,
    logins: [u64; 2],
    rate_limited: [u64; 3],
    /// The core's own counts as last published.
    seen: Stats,
}

impl Tally {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Tally {
        Tally {
            metrics,
            deliveries: 0,
            logins: [0; 2],
            rate_limited: [0; 3],
            seen: Stats::default(),
        }
    }

    /// A frame was queued to a recipient.
    #[inline]
    pub(crate) fn delivered(&mut self) {
        self.deliveries += 1;
    }

    /// Counts what `event` tells.
    pub(crate) fn event(&mut self, event: &Event) {
        match event {
            Event::LoggedIn { fresh, .. } => self.logins[usize::from(!fresh)] += 1,
            Event::RateLimited { limit, .. } => self.rate_limited[limit_index(*limit)] += 1,
            _ => {}
        }
    }

    /// Adds what was counted since the last call to the shared metrics, and
    /// the turn of the loop that began at `started`.
    pub(crate) fn publish<R: CryptoRng>(&mut self, server: &Server<R>, started: Instant) {
        let m = &*self.metrics;
        add(&m.deliveries, &mut self.deliveries);
        for (counter, count) in m.logins.iter().zip(&mut self.logins) {
            add(counter, count);
        }
        for (counter, count) in m.rate_limited.iter().zip(&mut self.rate_limited) {
            add(counter, count);
        }
        let stats = server.stats();
        if *stats != self.seen {
            m.messages.inc_by(stats.messages - self.seen.messages);
            let seen = self.seen.errors();
            for ((counter, (_, now)), (_, before)) in m.errors.iter().zip(stats.errors()).zip(seen)
            {
                if now > before {
                    counter.inc_by(now - before);
                }
            }
            self.seen = stats.clone();
        }
        m.logged_in_users.set(gauge_value(server.logged_in_count()));
        let idle = match server.is_cluster_node() {
            true => HeldNames::NOT_COUNTED,
            false => gauge_value(server.idle_login_count()),
        };
        m.held_names.0.store(idle, Ordering::Relaxed);
        m.requests_in_flight
            .set(gauge_value(server.requests_in_flight()));
        m.core_step.observe(started.elapsed().as_secs_f64());
    }
}

fn add(counter: &Counter, count: &mut u64) {
    if *count > 0 {
        counter.inc_by(std::mem::take(count));
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `wschat_held_names`: names reserved with no connection open, counted
/// where names are decided. A node of a cluster leaves it out rather than
/// show 0: the shared store keeps those names for every node, and no node
/// can say how many of them are its own.
#[derive(Debug)]
struct HeldNames(AtomicI64);

impl HeldNames {
    const NOT_COUNTED: i64 = -1;
}

impl Collector for HeldNames {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let held = self.0.load(Ordering::Relaxed);
        if held == HeldNames::NOT_COUNTED {
            return Ok(());
        }
        let gauge = ConstGauge::new(held);
        gauge.encode(encoder.encode_descriptor(
            "wschat_held_names",
            "Names reserved with no connection open, waiting out --login-ttl",
            None,
            gauge.metric_type(),
        )?)
    }
}

/// Every TCP connection on the chat port while it is open, and the bytes of
/// those that have closed: what a scrape sums into the byte counters and
/// the send queue gauge.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    state: Mutex<SocketsState>,
}

#[derive(Debug, Default)]
struct SocketsState {
    live: Slab<Arc<Conn>>,
    /// Bytes of connections no longer live.
    sent: u64,
    received: u64,
}

/// A connection counted in [`Sockets`] until this is dropped.
#[derive(Debug)]
pub(crate) struct Tracked {
    sockets: Arc<Sockets>,
    key: usize,
}

impl Sockets {
    /// Counts `conn` from now until the returned guard is dropped.
    pub(crate) fn track(self: &Arc<Self>, conn: &Arc<Conn>) -> Tracked {
        let key = self.lock().live.insert(conn.clone());
        Tracked {
            sockets: self.clone(),
            key,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SocketsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut state = self.sockets.lock();
        // Moved from live to closed under one lock: a scrape sees the
        // bytes once, never twice and never not at all.
        if let Some(conn) = state.live.try_remove(self.key) {
            state.sent += conn.sent.load(Ordering::Relaxed);
            state.received += conn.received.load(Ordering::Relaxed);
        }
    }
}

impl Collector for Sockets {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let (sent, received, queued) = {
            let state = self.lock();
            let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
            state.live.iter().fold(
                (state.sent, state.received, 0u64),
                |(sent, received, queued), (_, conn)| {
                    (
                        sent + load(&conn.sent),
                        received + load(&conn.received),
                        queued + conn.outbox.queued_bytes() as u64,
                    )
                },
            )
        };
        let counter = ConstCounter::new(sent);
        counter.encode(encoder.encode_descriptor(
            "wschat_sent_bytes",
            "Bytes written to sockets on the chat port (WebSocket frames, HTTP and TLS included)",
            None,
            counter.metric_type(),
        )?)?;
        let counter = ConstCounter::new(received);
        counter.encode(encoder.encode_descriptor(
            "wschat_received_bytes",
            "Bytes read from sockets on the chat port",
            None,
            counter.metric_type(),
        )?)?;
        let gauge = ConstGauge::new(i64::try_from(queued).unwrap_or(i64::MAX));
        gauge.encode(encoder.encode_descriptor(
            "wschat_send_queue_bytes",
            "Bytes queued for connections and not yet written, all connections together",
            None,
            gauge.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_outside_the_rfc_share_one_label() {
        assert_eq!(code_label(1000), "1000");
        assert_eq!(code_label(1009), "1009");
        assert_eq!(code_label(1015), "1015");
        for code in [0, 999, 1016, 3000, 4999, u16::MAX] {
            assert_eq!(code_label(code), "other", "{code}");
        }
    }

    #[test]
    fn every_name_is_there_before_anything_is_counted() {
        let text = Metrics::new().render(false);
        for line in [
            "wschat_connections{protocol=\"v2\"} 0",
            "wschat_connections_opened_total{protocol=\"v1\"} 0",
            "wschat_errors_total{error=\"rateLimited\"} 0",
            "wschat_rate_limited_total{limit=\"messages\"} 0",
            "wschat_messages_total 0",
            "wschat_deliveries_total 0",
            "wschat_sent_bytes_total 0",
            "wschat_received_bytes_total 0",
            "wschat_send_queue_bytes 0",
            "wschat_core_step_seconds_count 0",
            "wschat_store_commit_seconds_count 0",
            "wschat_logged_in_users 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let open = Metrics::new().render(true);
        assert!(open.ends_with("# EOF\n"), "{open}");
    }

    use crate::server::{Request, Snapshot};
    use crate::{Config, Inbound};
    use rand::{SeedableRng, rngs::StdRng};
    use std::time::UNIX_EPOCH;

    /// The lines of the two name gauges after `server` is published.
    fn name_gauges(server: &Server<StdRng>) -> Vec<String> {
        let mut tally = Tally::new(Arc::new(Metrics::new()));
        tally.publish(server, Instant::now());
        let text = tally.metrics.render(false);
        text.lines()
            .filter(|l| {
                l.starts_with("wschat_logged_in_users") || l.starts_with("wschat_held_names")
            })
            .map(str::to_owned)
            .collect()
    }

    fn log_in(server: &mut Server<StdRng>, name: &str, now: Instant) -> crate::ConnectionId {
        let conn = server.handle_open("10.0.0.1", Version::V2, now);
        let login = format!(r#"{{"type":"login","id":"l","username":"{name}"}}"#);
        server.handle_frame(conn, Inbound::Text(login.as_bytes()), now);
        conn
    }

    #[test]
    fn a_single_node_counts_names_held_by_connections_and_idle_ones() {
        let now = Instant::now();
        let mut server = Server::new(Config::default(), StdRng::seed_from_u64(1));
        let _alice = log_in(&mut server, "alice", now);
        let bob = log_in(&mut server, "bob", now);
        server.handle_close(bob, now);
        assert_eq!(
            name_gauges(&server),
            ["wschat_logged_in_users 1", "wschat_held_names 1"]
        );
    }

    #[test]
    fn a_cluster_node_counts_its_own_logged_in_users_and_leaves_held_names_to_the_store() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (rng, snapshot) = (StdRng::seed_from_u64(1), Snapshot::default());
        let mut server = Server::cluster(Config::default(), rng, snapshot, wall, now);
        for name in ["alice", "bob"] {
            log_in(&mut server, name, now);
            let Some(Request::Reserve(ticket, _)) = server.poll_request() else {
                panic!("a login on a cluster asks the store");
            };
            let answer = ticket.answer(Ok((crate::server::Claim::Fresh, name.into())));
            server.handle_answer(answer, now);
        }
        assert_eq!(name_gauges(&server), ["wschat_logged_in_users 2"]);
    }
}
