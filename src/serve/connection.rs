//! One connection: a reader that forwards frames to the core task and a
//! writer that drains the connection's outbox into the socket, raced in one
//! task so that whichever ends the connection drops the socket. On `wss://`
//! the same code runs over the TLS stream, once its handshake is done.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll, ready};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::http::header::{HOST, ORIGIN};
use async_tungstenite::tungstenite::http::{Method, StatusCode};
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use futures_rustls::TlsAcceptor;
use futures_rustls::rustls::ServerConfig;
use futures_rustls::server::TlsStream;
use futures_util::future::Either;
use futures_util::{SinkExt, StreamExt};
use smol::channel::Sender;
use smol::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use smol::{Async, Timer, future};
use tracing::{debug, warn};

use super::admin::Admin;
use super::admission::{Admission, Limits, Slot};
use super::batch::Batch;
use super::http;
use super::inbox::{Conn, InFrame, Input};
use super::metrics::Metrics;
use super::options::Options;
use super::outbox::{Closing, Next, Outbox};
use super::proxied::{self, Peer, Proxies};
use super::routes;
use super::socket::Socket;
use super::timeouts::{with_deadline, with_timeout};
use super::upgrade;
use crate::{CloseCode, Version};

/// After we send a Close, how long the peer has to answer it before the TCP
/// connection is dropped.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A write that makes no progress for this long closes the connection.
pub(crate) const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// 1002: the peer broke the WebSocket protocol (RFC 6455, 7.4.1).
const PROTOCOL_ERROR: CloseCode = CloseCode(1002);

/// What every connection task needs, shared by all of them.
#[derive(Debug)]
pub(crate) struct Context {
    inbox: Sender<Input>,
    websocket: WebSocketConfig,
    send_queue_bytes: usize,
    handshake_timeout: Duration,
    /// The highest protocol version an upgrade may select.
    max_version: Version,
    pub(crate) admission: Arc<Admission>,
    /// Whose word is taken for a client's address.
    pub(crate) proxies: Proxies,
    /// Set when serving `wss://`.
    tls: Option<Arc<ServerConfig>>,
    metrics: Arc<Metrics>,
    /// The operator's endpoints, when served on the chat's port (no
    /// `--admin-listen`).
    admin: Option<Arc<Admin>>,
    /// Whether the server is draining.
    pub(crate) draining: Draining,
    /// Whether the core is still waiting for its backend.
    pub(crate) starting: Starting,
}

impl Context {
    /// What `options` say every connection needs; not draining.
    pub(crate) fn new(
        options: &Options,
        tls: Option<Arc<ServerConfig>>,
        inbox: Sender<Input>,
        metrics: Arc<Metrics>,
        admin: Option<Arc<Admin>>,
    ) -> Context {
        Context {
            inbox,
            websocket: upgrade::websocket_config(options.max_frame_bytes),
            send_queue_bytes: options.send_queue_bytes,
            handshake_timeout: options.handshake_timeout,
            max_version: upgrade::highest_version(options),
            admission: Arc::new(Admission::new(
                options.allowed_origins.clone(),
                Limits::new(options.max_connections, options.max_connections_per_ip),
            )),
            proxies: Proxies::new(
                options.trusted_proxies.clone(),
                options.proxy_protocol,
                options.client_ip_header,
            ),
            tls,
            metrics,
            admin,
            draining: Draining::default(),
            starting: Starting::default(),
        }
    }
}

/// Whether the server is draining: the driver's one record of a shutdown,
/// and the only one the accept side reads. Begun once, when the shutdown
/// future given to `ChatServer::run` resolves; from then on upgrades are
/// refused (503, as when full) while the port stays open for plain HTTP,
/// so that probes see `/readyz` fail. The core keeps its own shutdown
/// state, told by `Input::Shutdown`.
#[derive(Debug, Default)]
pub(crate) struct Draining(AtomicBool);

impl Draining {
    pub(crate) fn begin(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub(crate) fn has_begun(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether the core is still waiting for its backend (a cluster's Redis
/// not reached yet, so nothing to start it from): the port is open for
/// probes, and upgrades are refused (503) until the core has started.
#[derive(Debug, Default)]
pub(crate) struct Starting(AtomicBool);

impl Starting {
    pub(crate) fn begin(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How a connection ended.
#[derive(Debug)]
enum Ended {
    /// The peer closed (with the code of its Close, if one was seen), or
    /// answered our Close.
    Closed(Option<u16>),
    /// The peer broke the protocol; tell it with this close code.
    Violation(CloseCode, &'static str),
    /// We sent a Close and gave up waiting for the answer.
    CloseUnanswered,
    /// The socket failed, or writes stalled.
    Lost(String),
    /// The core task is gone (the server is stopping).
    ServerGone,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Closed(_) => f.write_str("closed"),
            Ended::Violation(code, reason) => write!(f, "closed with {} \"{reason}\"", code.0),
            Ended::CloseUnanswered => f.write_str("our close went unanswered"),
            Ended::Lost(error) => write!(f, "lost: {error}"),
            Ended::ServerGone => f.write_str("server stopped"),
        }
    }
}

/// Serves one accepted TCP connection until it closes. `_alive` is held
/// for as long as the connection lives, so shutdown can wait for all of them;
/// `handshake` counts it as in its handshake until it is upgraded or
/// answered.
///
/// The way in, top-down: the TLS handshake (on `wss://`), the request head,
/// then either a plain HTTP answer or the WebSocket upgrade, then the
/// connection's reader and writer until it ends.
///
/// This future is what every connection costs while idle, so whatever is
/// large and needed only for a moment (the handshakes, a write that has to
/// wait for the socket, the close) runs in a boxed future of its own.
pub(crate) async fn run(
    tcp: Async<TcpStream>,
    peer: SocketAddr,
    ctx: Arc<Context>,
    _alive: Sender<Infallible>,
    mut handshake: Slot,
) {
    let conn = Arc::new(Conn {
        peer: Peer::new(peer),
        id: OnceLock::new(),
        outbox: Outbox::new(ctx.send_queue_bytes),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
    });
    // Its bytes and queue count in /metrics until the connection ends.
    let _tracked = ctx.metrics.sockets.track(&conn);
    // Below TLS: write progress is what reaches the kernel.
    let mut io = Socket::new(&tcp, &conn.sent, &conn.received);
    // The PROXY header, the TLS handshake, the request head and the
    // upgrade share one time limit (--handshake-timeout).
    let deadline = Instant::now() + ctx.handshake_timeout;
    // Who sent the request: the peer, or the client its PROXY header names.
    let hop = match ctx.proxies.expects_proxy_header(peer.ip()) {
        false => peer.ip(),
        true => match Box::pin(proxied::read_proxy_header(&mut io, deadline)).await {
            Ok(source) => source.map_or(peer.ip(), |source| source.ip()),
            Err(error) => {
                // From a trusted load balancer: its configuration is wrong.
                warn!(%peer, "closing a connection from a trusted proxy: {error}");
                return;
            }
        },
    };
    // A client behind the balancer counts against its own share of the
    // handshakes, as it would connecting directly.
    if hop != peer.ip()
        && !ctx.proxies.trusts(hop)
        && let Err(crowded) = handshake.count_from(hop)
    {
        debug!(%peer, client = %hop, "closed at once: {crowded}");
        return;
    }
    let io = match &ctx.tls {
        None => Either::Left(io),
        // Boxed, as everything large and momentary here.
        Some(tls) => match Box::pin(secure(io, tls, peer, deadline)).await {
            Some(tls) => Either::Right(tls),
            None => {
                ctx.metrics.tls_handshake_failed();
                return;
            }
        },
    };
    // Boxed, and split inside: the WebSocket moves to the heap, and neither
    // it nor the handshake's state, which are large, has a place in this
    // future, which every idle connection keeps.
    let opened = Box::pin(open(io, &conn, hop, &ctx, deadline)).await;
    drop(handshake);
    // `_slot` counts this connection against the limits until the task ends.
    let Some((sink, stream, version, _slot)) = opened else {
        return;
    };
    let (code, reason) = serve(sink, stream, conn.clone(), &ctx).await;
    ctx.metrics.closed(version, code, reason);
}

/// Reads the request head and answers it: a plain request with its HTTP
/// answer, an upgrade by telling the core task of the connection and then
/// sending the `101`, so that a client that sees its upgrade complete also
/// sees every broadcast from then on. Returns the WebSocket, its protocol
/// version, and the admission slot that counts it, once the `101` is out.
/// `hop` sent the request: the peer, or the client a PROXY header named.
async fn open<'a>(
    mut io: Stream<'a>,
    conn: &Arc<Conn>,
    hop: IpAddr,
    ctx: &Context,
    deadline: Instant,
) -> Option<(
    WebSocketSender<Stream<'a>>,
    WebSocketReceiver<Stream<'a>>,
    Version,
    Slot,
)> {
    let peer = &conn.peer;
    let head = match http::read_head(&mut io, deadline).await {
        Ok(head) => head,
        Err(error) => {
            debug!(%peer, "no request: {error}");
            if let Some(answer) = error.answer() {
                ctx.metrics.handshake_refused(answer.status.as_u16());
                http::send(&mut io, &answer, false).await;
            }
            return None;
        }
    };
    let request = &head.request;
    let client = match ctx.proxies.client(hop, request.headers()) {
        Ok(client) => client,
        Err(error) => {
            debug!(%peer, "bad request: {error}");
            ctx.metrics
                .handshake_refused(StatusCode::BAD_REQUEST.as_u16());
            let answer = http::Response::text(StatusCode::BAD_REQUEST, format!("{error}\n"));
            http::send(&mut io, &answer, false).await;
            return None;
        }
    };
    // From here on, logs name the client.
    peer.learn(client);
    if !upgrade::is_upgrade(request) {
        debug!(%peer, method = %request.method(), path = request.uri().path(), "HTTP request");
        let head_only = request.method() == Method::HEAD;
        let answer = routes::answer(request, ctx.admin.as_deref(), ctx.admission.origins());
        http::send(&mut io, &answer, head_only).await;
        return None;
    }
    let accepted = match upgrade::accept(request, ctx.max_version) {
        Ok(accepted) => accepted,
        Err(answer) => {
            debug!(%peer, status = answer.status.as_u16(), "bad WebSocket upgrade");
            ctx.metrics.handshake_refused(answer.status.as_u16());
            http::send(&mut io, &answer, false).await;
            return None;
        }
    };
    // While the server drains, or its core waits to start, no one new
    // comes in (503, as when full).
    let admitted = match ctx.draining.has_begun() || ctx.starting.is_on() {
        true => Err(StatusCode::SERVICE_UNAVAILABLE),
        false => ctx.admission.admit(
            client,
            request.headers().get(ORIGIN),
            request.headers().get(HOST),
        ),
    };
    let open = |slot| {
        let open = Input::Open {
            conn: conn.clone(),
            location: upgrade::location(client),
            version: accepted.version,
        };
        // A full inbox means the core is far behind: refuse rather than wait.
        match ctx.inbox.try_send(open) {
            Ok(()) => Ok(slot),
            Err(_) => Err(StatusCode::SERVICE_UNAVAILABLE),
        }
    };
    let slot = match admitted.and_then(open) {
        Ok(slot) => slot,
        Err(status) => {
            debug!(%peer, status = status.as_u16(), "upgrade refused");
            let origin = request.headers().get(ORIGIN);
            if status == StatusCode::FORBIDDEN
                && let Some(report) = ctx.admission.origin_refused(origin, Instant::now())
            {
                warn!(
                    %peer,
                    origin = %report.origin,
                    refused = report.refused,
                    allowed = %ctx.admission.origins(),
                    "refused a WebSocket from a page whose origin is not allowed \
                     (--allowed-origins); at most one line a minute per origin, \
                     `refused` counts since its last"
                );
            }
            ctx.metrics.handshake_refused(status.as_u16());
            http::send(&mut io, &upgrade::refusal(status), false).await;
            return None;
        }
    };
    // Counted before the peer can see its `101`, as the core does.
    ctx.metrics.opened(accepted.version);
    let sent = with_deadline(deadline, async {
        io.write_all(&accepted.response).await?;
        io.flush().await
    })
    .await;
    if !matches!(sent, Some(Ok(()))) {
        debug!(%peer, "handshake failed: the 101 was not sent in time");
        ctx.metrics.closed(accepted.version, 1006, "lost");
        conn.outbox.finish();
        let _ = ctx.inbox.send(Input::Closed { conn: conn.clone() }).await;
        return None;
    }
    let config = Some(ctx.websocket);
    let websocket = WebSocketStream::from_partially_read(io, head.rest, Role::Server, config).await;
    let (sink, stream) = websocket.split();
    Some((sink, stream, accepted.version, slot))
}

/// Runs an upgraded connection until it closes. Returns the close code
/// that ended it and why, for `/metrics`.
async fn serve<S>(
    mut sink: WebSocketSender<S>,
    mut stream: WebSocketReceiver<S>,
    conn: Arc<Conn>,
    ctx: &Context,
) -> (u16, &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = &conn.peer;
    debug!(%peer, "connected");
    let ended = future::or(
        read_loop(&mut stream, &conn, &ctx.inbox),
        write_loop(&mut sink, &conn.outbox, &conn.sent),
    )
    .await;
    let closed = close_of(conn.outbox.closing(), &ended);
    conn.outbox.finish();
    // Harmless when the core closed it first; needed in every other case.
    let _ = ctx.inbox.send(Input::Closed { conn: conn.clone() }).await;

    match &ended {
        Ended::Violation(code, reason) => {
            let close = close_message(*code, reason);
            let _ = Box::pin(with_timeout(CLOSE_TIMEOUT, sink.send(close))).await;
        }
        // The reader ended only once tungstenite had flushed its answer to
        // the peer's Close; nothing else is owed.
        Ended::Closed(_) | Ended::CloseUnanswered | Ended::Lost(_) | Ended::ServerGone => {}
    }
    debug!(%peer, "disconnected: {ended}");
    closed
}

/// The close code that ended a connection, and why: ours if we started
/// closing (the core's reasons, "too slow", a protocol violation), else the
/// peer's. 1005 and 1006 are RFC 6455's codes for "no code given" and "no
/// Close at all".
fn close_of(ours: Option<(CloseCode, &'static str)>, ended: &Ended) -> (u16, &'static str) {
    const NO_STATUS: u16 = 1005;
    const ABNORMAL: u16 = 1006;
    if let Some((code, reason)) = ours {
        return (code.0, reason);
    }
    match ended {
        Ended::Violation(code, reason) => (code.0, reason),
        Ended::Closed(code) => (code.unwrap_or(NO_STATUS), "closed by peer"),
        Ended::Lost(_) | Ended::CloseUnanswered => (ABNORMAL, "lost"),
        Ended::ServerGone => (ABNORMAL, "server stopped"),
    }
}

/// The stream that the WebSocket runs on: the TCP connection, or on
/// `wss://` the TLS stream over it. One type for both, so that the rest of
/// a connection is the same code and the same (one) future.
type Stream<'a> = Either<Socket<'a>, Box<TlsStream<Socket<'a>>>>;

/// Runs the TLS handshake; `None` if it failed (logged at debug level;
/// dropping the stream closes the connection, rustls has already tried to
/// send its alert).
async fn secure<'a>(
    io: Socket<'a>,
    tls: &Arc<ServerConfig>,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<Box<TlsStream<Socket<'a>>>> {
    let handshake = TlsAcceptor::from(tls.clone()).accept(io);
    match with_deadline(deadline, handshake).await {
        // Boxed: a rustls connection is ~1.2 KB, which inline would grow
        // every connection's task, plain ones included.
        Some(Ok(tls)) => Some(Box::new(tls)),
        Some(Err(error)) => {
            debug!(%peer, "TLS handshake failed: {error}");
            None
        }
        None => {
            debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Forwards every frame to the core task, in order, until the connection
/// ends. Waiting on a full inbox holds back reading: backpressure, not loss.
async fn read_loop<S>(
    stream: &mut WebSocketReceiver<S>,
    conn: &Arc<Conn>,
    inbox: &Sender<Input>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut peer_close = None;
    loop {
        let message = stream.next().await;
        if let Some(Ok(Message::Close(close))) = &message {
            peer_close = Some(close.as_ref().map_or(1005, |c| u16::from(c.code)));
        }
        let frame = match received(message) {
            Ok(Some(frame)) => frame,
            Ok(None) => continue,
            Err(Ended::Closed(_)) => return Ended::Closed(peer_close),
            Err(ended) => return ended,
        };
        // Once we are closing, the core has forgotten this connection: only
        // the peer's answer to our Close still matters.
        if conn.outbox.is_closing() {
            continue;
        }
        let input = Input::Frame {
            conn: conn.clone(),
            frame,
        };
        if inbox.send(input).await.is_err() {
            return Ended::ServerGone;
        }
    }
}

/// What the reader got: a frame for the core, nothing (`None`), or the end.
/// Takes the message whole, so that the reader holds only the frame while it
/// waits for the inbox.
fn received(message: Option<Result<Message, WsError>>) -> Result<Option<InFrame>, Ended> {
    match message {
        Some(Ok(Message::Text(text))) => Ok(Some(InFrame::Text(text))),
        Some(Ok(Message::Binary(bytes))) => Ok(Some(InFrame::Binary(bytes))),
        Some(Ok(Message::Ping(payload))) => Ok(Some(InFrame::Ping(payload))),
        Some(Ok(Message::Pong(payload))) => Ok(Some(InFrame::Pong(payload))),
        // tungstenite answers the Close itself; the stream ends next.
        Some(Ok(Message::Close(_) | Message::Frame(_))) => Ok(None),
        Some(Err(error)) => Err(ended_by(error)),
        None => Err(Ended::Closed(None)),
    }
}

fn ended_by(error: WsError) -> Ended {
    match error {
        WsError::Capacity(_) => Ended::Violation(CloseCode::TOO_BIG, "message too big"),
        WsError::Utf8(_) => Ended::Violation(CloseCode::INVALID_PAYLOAD, "invalid UTF-8"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            Ended::Lost("reset without closing handshake".into())
        }
        WsError::Protocol(_) => Ended::Violation(PROTOCOL_ERROR, "protocol error"),
        WsError::ConnectionClosed | WsError::AlreadyClosed => Ended::Closed(None),
        other => Ended::Lost(other.to_string()),
    }
}

/// Sends what the core task queues: each batch fed frame by frame, then
/// flushed once. Ends after our Close has been answered (the reader sees
/// that and wins the race) or has gone unanswered for `CLOSE_TIMEOUT`.
async fn write_loop<S>(sink: &mut WebSocketSender<S>, outbox: &Outbox, written: &AtomicU64) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match outbox.next().await {
            Next::Frames(frames) => {
                let mut batch = Batch::from(frames);
                // Most batches are written at once; only one that has to
                // wait for the socket needs a future (boxed) to wait in.
                let at_once = future::poll_fn(|cx| {
                    Poll::Ready(poll_write_batch(sink, &mut batch, outbox, cx))
                })
                .await;
                let result = match at_once {
                    Poll::Ready(result) => result,
                    Poll::Pending => {
                        Box::pin(finish_batch(sink, &mut batch, outbox, written)).await
                    }
                };
                if let Err(error) = result {
                    return Ended::Lost(error.to_string());
                }
            }
            Next::Close(closing) => return Box::pin(close_and_wait(sink, closing)).await,
        }
    }
}

/// Feeds the batch to the WebSocket frame by frame (a long text in
/// fragments), then flushes it, as far as the socket takes it now.
fn poll_write_batch<S>(
    sink: &mut WebSocketSender<S>,
    batch: &mut Batch,
    outbox: &Outbox,
    cx: &mut TaskContext<'_>,
) -> Poll<Result<(), WsError>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while !batch.is_empty() {
        ready!(sink.poll_ready_unpin(cx))?;
        if let Some((message, done)) = batch.next_message() {
            sink.start_send_unpin(message)?;
            outbox.sent(done);
        }
    }
    sink.poll_flush_unpin(cx)
}

/// Writes the rest of a batch that had to wait for the socket, with the
/// stall watchdog armed and an ear for an abort (the core task gave up on
/// this peer), which skips the rest of the batch.
async fn finish_batch<S>(
    sink: &mut WebSocketSender<S>,
    batch: &mut Batch,
    outbox: &Outbox,
    written: &AtomicU64,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let write = future::poll_fn(|cx| poll_write_batch(sink, batch, outbox, cx));
    let aborted = async {
        outbox.aborted().await;
        Ok(())
    };
    let stalled = async {
        stalled(written).await;
        Err(WsError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "no write progress",
        )))
    };
    future::or(write, future::or(aborted, stalled)).await
}

/// Sends our Close once everything queued before it is written, and waits
/// for the answer, which ends the reader (and so the connection) first.
async fn close_and_wait<S>(sink: &mut WebSocketSender<S>, closing: Closing) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let close = close_message(closing.code, closing.reason);
    let _ = with_timeout(CLOSE_TIMEOUT, async {
        if sink.send(close).await.is_ok() {
            future::pending::<()>().await;
        }
    })
    .await;
    Ended::CloseUnanswered
}

/// Resolves when no byte has been written for `WRITE_STALL_TIMEOUT`.
async fn stalled(written: &AtomicU64) {
    let mut seen = written.load(Ordering::Relaxed);
    loop {
        Timer::after(WRITE_STALL_TIMEOUT).await;
        let now = written.load(Ordering::Relaxed);
        if now == seen {
            return;
        }
        seen = now;
    }
}

fn close_message(code: CloseCode, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.0.into(),
        reason: Utf8Bytes::from_static(reason),
    }))
}
