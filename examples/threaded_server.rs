//! The chat served with plain std threads and tungstenite's blocking API —
//! no async runtime — driving the same sans-IO [`Server`] as `chat-server`.
//! It exists to prove that the core does not care what runs it.
//!
//! ```text
//! cargo run --example threaded_server -- 127.0.0.1:8080
//! ```
//!
//! Threads:
//! - the caller of [`serve`] accepts sockets;
//! - one **core** thread owns the `Server`: it receives inputs over a
//!   channel, wakes at `poll_timeout()` (`recv_timeout`) and hands each
//!   action to the connection it names;
//! - per connection, a **reader** thread (handshake, then blocking reads)
//!   and a **writer** thread, the only one that writes to the socket.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use tungstenite::Message;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame as WsFrame, Utf8Bytes};
use wschat::{Action, Config, ConnectionId, Inbound, Server, Version};

/// Frames waiting for one connection's writer. A peer that lets this many
/// pile up is too slow and is dropped. Frames are at most a few KiB (the
/// core caps messages at 4000 characters), so this bounds the bytes too.
const WRITE_QUEUE_FRAMES: usize = 64;
/// Time allowed for the WebSocket handshake, and for one write to a peer.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sets a small read buffer instead of tungstenite's 128 KiB: chat messages
/// are small, and every connection pays for it.
fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_frame_size(Some(64 << 10))
        .max_message_size(Some(1 << 20))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on ws://{}", listener.local_addr()?);
    serve(listener, Config::default())?;
    Ok(())
}

/// Serves the chat on `listener` until accepting fails for good. Returns
/// only on a setup error; otherwise it runs for as long as the process.
pub fn serve(listener: TcpListener, config: Config) -> io::Result<()> {
    let rng = StdRng::try_from_rng(&mut SysRng).map_err(io::Error::other)?;
    let server = Server::new(config, rng);
    let (inputs, inbox) = mpsc::channel();
    thread::Builder::new()
        .name("core".into())
        .spawn(move || run_core(server, inbox))?;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait, then go on.
                eprintln!("accept: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let inputs = inputs.clone();
        let spawned = thread::Builder::new()
            .name("reader".into())
            .stack_size(256 << 10)
            .spawn(move || {
                if let Err(e) = run_reader(stream, inputs) {
                    eprintln!("connection: {e}");
                }
            });
        if let Err(e) = spawned {
            eprintln!("no thread for a new connection: {e}");
        }
    }
    Ok(())
}

// ---- the core thread ----

/// What the connection threads tell the core thread.
enum Input {
    /// A handshake completed; the core answers with the connection's id.
    Opened {
        location: String,
        version: Version,
        peer: Peer,
        reply: SyncSender<ConnectionId>,
    },
    Received(ConnectionId, Message),
    Closed(ConnectionId),
}

/// The core thread's handle on one connection.
struct Peer {
    writer: SyncSender<Outbound>,
    /// To cut the connection at once (a slow reader), whatever the writer
    /// is doing.
    stream: TcpStream,
}

fn run_core(mut server: Server<StdRng>, inbox: Receiver<Input>) {
    let mut peers: HashMap<ConnectionId, Peer> = HashMap::new();
    loop {
        let input = match server.poll_timeout() {
            Some(at) => inbox.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let now = Instant::now();
        // v2 timestamps are wall-clock time; re-reading it on every wake
        // follows any step of the system clock.
        server.set_wall_clock(SystemTime::now(), now);
        match input {
            Ok(Input::Opened {
                location,
                version,
                peer,
                reply,
            }) => {
                let conn = server.handle_open(&location, version, now);
                peers.insert(conn, peer);
                if reply.send(conn).is_err() {
                    // The reader gave up meanwhile.
                    server.handle_close(conn, now);
                    peers.remove(&conn);
                }
            }
            Ok(Input::Received(conn, message)) => {
                let frame = match &message {
                    Message::Text(text) => Inbound::Text(text.as_bytes()),
                    Message::Binary(bytes) => Inbound::Binary(bytes),
                    Message::Ping(payload) => Inbound::Ping(payload),
                    Message::Pong(payload) => Inbound::Pong(payload),
                    // The reader reports closes as `Closed`; raw frames
                    // never come out of `read`.
                    Message::Close(_) | Message::Frame(_) => continue,
                };
                server.handle_frame(conn, frame, now);
            }
            Ok(Input::Closed(conn)) => {
                server.handle_close(conn, now);
                peers.remove(&conn);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // After every input too, so that a steady stream of inputs cannot
        // starve the timers. Early calls are no-ops.
        server.handle_timeout(now);
        perform(&mut server, &mut peers, now);
    }
}

/// Carries out everything the core asked for.
fn perform(server: &mut Server<StdRng>, peers: &mut HashMap<ConnectionId, Peer>, now: Instant) {
    while let Some(action) = server.poll_action() {
        let (to, outbound) = match action {
            // Shares the broadcast's bytes: no copy per recipient.
            Action::Send { to, frame } => (to, Outbound::Text(frame.bytes().clone())),
            Action::Ping { to, payload } => (to, Outbound::Ping(payload)),
            // tungstenite answers every ping by itself while reading (its
            // pong reaches the writer through `ReadHalf`); sending the
            // core's pong as well would answer twice.
            Action::Pong { .. } => continue,
            Action::Close { to, code, reason } => {
                // The core has forgotten `to`; so do we. The writer sends
                // the Close frame and then shuts the socket.
                if let Some(peer) = peers.remove(&to)
                    && peer
                        .writer
                        .try_send(Outbound::Close(code.0, reason))
                        .is_err()
                {
                    let _ = peer.stream.shutdown(Shutdown::Both);
                }
                continue;
            }
        };
        let Some(peer) = peers.get(&to) else {
            continue;
        };
        match peer.writer.try_send(outbound) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                // Too slow to keep up, or already gone: cut it off. Its
                // reader then sees the socket end and reports `Closed`,
                // which the core ignores by then.
                let _ = peer.stream.shutdown(Shutdown::Both);
                peers.remove(&to);
                server.handle_close(to, now);
            }
        }
    }
    while let Some(event) = server.poll_event() {
        eprintln!("{event:?}");
    }
}

// ---- the connection threads ----

/// What a connection's writer puts on the wire.
enum Outbound {
    Text(Bytes),
    Ping(Bytes),
    Close(u16, &'static str),
    /// Bytes tungstenite's reader wrote: its pongs and close replies.
    Raw(Vec<u8>),
}

/// The socket as the reading `WebSocket` sees it: reads come from the
/// socket, but once the handshake is done its writes (automatic pongs,
/// close replies) go to the writer thread, so that only one thread ever
/// writes to the socket and frames never interleave.
struct ReadHalf {
    stream: TcpStream,
    writer: Option<SyncSender<Outbound>>,
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for ReadHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.writer {
            None => self.stream.write(buf), // the handshake response
            Some(writer) => {
                writer
                    .try_send(Outbound::Raw(buf.to_vec()))
                    .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.writer {
            None => self.stream.flush(),
            Some(_) => Ok(()),
        }
    }
}

fn run_reader(stream: TcpStream, core: Sender<Input>) -> io::Result<()> {
    let location = stream
        .peer_addr()
        .map_or_else(|_| "unknown".into(), |addr| addr.ip().to_string());
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let read_half = ReadHalf {
        stream: stream.try_clone()?,
        writer: None,
    };
    // Protocol v2 for clients that offer its subprotocol, v1 for the rest.
    let mut version = Version::V1;
    #[allow(clippy::result_large_err)] // the signature is tungstenite's `Callback`
    let negotiate = |request: &Request, mut response: Response| {
        let offered = request.headers().get_all(SEC_WEBSOCKET_PROTOCOL);
        let (negotiated, selected) =
            Version::negotiate(offered.iter().filter_map(|v| v.to_str().ok()));
        version = negotiated;
        if let Some(selected) = selected {
            response
                .headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(selected));
        }
        Ok(response)
    };
    let mut ws =
        tungstenite::accept_hdr_with_config(read_half, negotiate, Some(websocket_config()))
            .map_err(|e| io::Error::other(format!("handshake: {e}")))?;
    // From now on the core's heartbeat decides when a silent peer is dead.
    stream.set_read_timeout(None)?;

    let (writer, queue) = mpsc::sync_channel(WRITE_QUEUE_FRAMES);
    ws.get_mut().writer = Some(writer.clone());
    let write_stream = stream.try_clone()?;
    thread::Builder::new()
        .name("writer".into())
        .stack_size(256 << 10)
        .spawn(move || run_writer(write_stream, queue))?;

    let (reply, id) = mpsc::sync_channel(1);
    let peer = Peer { writer, stream };
    if core
        .send(Input::Opened {
            location,
            version,
            peer,
            reply,
        })
        .is_err()
    {
        return Ok(()); // the core thread is gone
    }
    let Ok(conn) = id.recv() else {
        return Ok(());
    };
    loop {
        match ws.read() {
            // tungstenite has queued its close reply; the next read sends
            // it and ends the connection.
            Ok(Message::Close(_)) => {}
            Ok(message) => {
                if core.send(Input::Received(conn, message)).is_err() {
                    break;
                }
            }
            // Closed, reset, shut down by us, or a protocol violation
            // (tungstenite has then sent the right close code): all gone.
            Err(_) => break,
        }
    }
    let _ = core.send(Input::Closed(conn));
    Ok(())
}

/// Writes what the core and the reader queue for one connection, several
/// queued frames per write when they pile up. Ends, shutting the socket,
/// after a Close, on a write error, or when nobody can queue anything more.
fn run_writer(mut stream: TcpStream, queue: Receiver<Outbound>) {
    let mut buf = Vec::with_capacity(4096);
    while let Ok(first) = queue.recv() {
        let mut closing = encode(first, &mut buf);
        while !closing && let Ok(next) = queue.try_recv() {
            closing = encode(next, &mut buf);
        }
        if stream.write_all(&buf).is_err() || closing {
            break;
        }
        buf.clear();
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Appends one WebSocket frame (server frames are not masked) to `buf`;
/// true for a Close, after which nothing more may be sent.
fn encode(outbound: Outbound, buf: &mut Vec<u8>) -> bool {
    let (frame, closing) = match outbound {
        Outbound::Raw(bytes) => {
            buf.extend_from_slice(&bytes);
            return false;
        }
        Outbound::Text(text) => (
            WsFrame::message(text, OpCode::Data(Data::Text), true),
            false,
        ),
        Outbound::Ping(payload) => (WsFrame::ping(payload), false),
        Outbound::Close(code, reason) => {
            let close = CloseFrame {
                code: code.into(),
                reason: Utf8Bytes::from_static(reason),
            };
            (WsFrame::close(Some(close)), true)
        }
    };
    // Its only errors are the writer's, and writing into a Vec cannot fail.
    let _ = frame.format(buf);
    closing
}
