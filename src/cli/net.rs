//! One WebSocket connection to the server, as a task that moves frames
//! between the socket and two channels and decides nothing.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{self, Message};
use futures_util::StreamExt;
use futures_util::future::Either;
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use smol::net::TcpStream;
use smol::{Task, Timer};

use super::tls;

/// The socket under the WebSocket: TCP (`ws://`) or TLS over TCP (`wss://`).
type Transport = Either<TcpStream, futures_rustls::client::TlsStream<TcpStream>>;

/// What happened on a connection, tagged with its id by the receiver.
#[derive(Debug)]
pub enum NetEvent {
    /// The handshake succeeded; the server selected this subprotocol.
    Connected { subprotocol: Option<String> },
    /// The server completed the handshake without selecting the
    /// subprotocol offered, which tungstenite treats as a failure.
    SubprotocolRefused,
    /// A text frame.
    Text(String),
    /// A ping, pong or binary frame: the server is alive.
    Activity,
    /// The connection failed or ended; the reason in words.
    Closed(String),
    /// No chat server answered at the address: the connection was refused,
    /// the host is unknown or unreachable, or what answered is not a
    /// chat-server ([`not_a_chat_server`]). The reason in words.
    Unreachable(String),
}

/// What to write on the connection.
#[derive(Debug)]
enum Outgoing {
    Text(String),
    Ping,
    Close,
}

/// A connection task. Dropping it aborts the connection at once.
pub struct Connection {
    pub id: u64,
    outgoing: Sender<Outgoing>,
    task: Task<()>,
}

/// How long a polite close waits for the server's Close reply.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Server messages are small JSON objects; tungstenite's 64 MiB default is
/// far more than a chat needs.
const MAX_MESSAGE: usize = 1 << 20;

impl Connection {
    /// Starts connecting to `url`, offering `subprotocol` if any; events
    /// go to `events` tagged with `id`.
    pub fn open(
        url: &str,
        subprotocol: Option<&'static str>,
        id: u64,
        events: Sender<(u64, NetEvent)>,
    ) -> Connection {
        let (outgoing, queue) = smol::channel::unbounded();
        let url = url.to_owned();
        let task = smol::spawn(async move {
            let event = match connect(&url, subprotocol).await {
                Ok((ws, selected)) => {
                    let connected = NetEvent::Connected {
                        subprotocol: selected,
                    };
                    let _ = events.send((id, connected)).await;
                    match run(ws, id, &events, queue).await {
                        Some(reason) => NetEvent::Closed(reason),
                        None => return, // closed on request: nobody is listening
                    }
                }
                Err(event) => event,
            };
            let _ = events.send((id, event)).await;
        });
        Connection { id, outgoing, task }
    }

    pub fn send_text(&self, text: String) {
        let _ = self.outgoing.try_send(Outgoing::Text(text));
    }

    pub fn ping(&self) {
        let _ = self.outgoing.try_send(Outgoing::Ping);
    }

    /// Sends a Close frame and waits (bounded) for the server's reply.
    pub async fn close(self) {
        let _ = self.outgoing.try_send(Outgoing::Close);
        let _ = self
            .task
            .or(async {
                Timer::after(CLOSE_WAIT * 2).await;
            })
            .await;
    }
}

/// The open connection and the subprotocol the server selected; or the
/// event that says why there is none.
async fn connect(
    url: &str,
    subprotocol: Option<&'static str>,
) -> Result<(WebSocketStream<Transport>, Option<String>), NetEvent> {
    let failed = |reason: String| NetEvent::Closed(reason);
    let mut request = url
        .into_client_request()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(subprotocol) = subprotocol {
        request.headers_mut().insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(subprotocol),
        );
    }
    let uri = request.uri();
    let host = uri
        .host()
        .ok_or_else(|| failed("the URL has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let secure = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("wss"));
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| NetEvent::Unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let stream = if secure {
        Either::Right(tls::connect(&host, tcp).await.map_err(failed)?)
    } else {
        Either::Left(tcp)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (ws, response) =
        match async_tungstenite::client_async_with_config(request, stream, Some(config)).await {
            Ok(done) => done,
            Err(tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::NoSubProtocol,
            ))) => return Err(NetEvent::SubprotocolRefused),
            // That is what a TLS server's answer looks like to HTTP.
            Err(e @ tungstenite::Error::Protocol(ProtocolError::HttparseError(_))) if !secure => {
                return Err(failed(format!(
                    "{}; if the server uses TLS, try wss://",
                    describe(&e)
                )));
            }
            Err(e) if not_a_chat_server(&e) => return Err(NetEvent::Unreachable(describe(&e))),
            Err(e) => return Err(failed(describe(&e))),
        };
    let selected = response
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    Ok((ws, selected))
}

/// Runs an open connection until it ends. `None` when it was closed on
/// request, else why it ended.
async fn run(
    ws: WebSocketStream<Transport>,
    id: u64,
    events: &Sender<(u64, NetEvent)>,
    queue: Receiver<Outgoing>,
) -> Option<String> {
    let (mut sender, mut receiver) = ws.split();
    // Once closing, what still arrives is read (to reach the server's Close
    // reply) but nobody wants it.
    let forwarding = AtomicBool::new(true);
    let mut reading = pin!(async {
        while let Some(message) = receiver.next().await {
            let event = match message {
                Ok(Message::Text(text)) => NetEvent::Text(text.as_str().to_owned()),
                Ok(Message::Close(frame)) => return closed_by_server(frame.as_ref()),
                Ok(_) => NetEvent::Activity,
                Err(e) => return describe(&e),
            };
            if forwarding.load(Ordering::Relaxed) && events.send((id, event)).await.is_err() {
                break;
            }
        }
        "the server closed the connection".to_owned()
    });
    let writing = async {
        while let Ok(outgoing) = queue.recv().await {
            let sent = match outgoing {
                Outgoing::Text(text) => sender.send(Message::text(text)).await,
                Outgoing::Ping => sender.send(Message::Ping(Default::default())).await,
                Outgoing::Close => {
                    let frame = CloseFrame {
                        code: CloseCode::Normal,
                        reason: "bye".into(),
                    };
                    let _ = sender.close(Some(frame)).await;
                    return None;
                }
            };
            if let Err(e) = sent {
                return Some(describe(&e));
            }
        }
        None // the driver dropped us
    };
    let ended = async { Some(reading.as_mut().await) }.or(writing).await;
    if ended.is_none() {
        forwarding.store(false, Ordering::Relaxed);
        // Closing: let the server's Close reply arrive, within reason.
        let _ = async {
            reading.as_mut().await;
        }
        .or(async {
            Timer::after(CLOSE_WAIT).await;
        })
        .await;
    }
    ended
}

/// What answered the handshake is not a chat-server: it does not speak
/// WebSocket (HTTP/1.0, no upgrade), or refused the upgrade as a
/// chat-server never does (one that refuses is there, only unwilling —
/// 403, an origin it does not allow — or busy: 429, 503).
fn not_a_chat_server(error: &tungstenite::Error) -> bool {
    match error {
        tungstenite::Error::Http(response) => {
            !matches!(response.status().as_u16(), 403 | 429 | 500..)
        }
        tungstenite::Error::Protocol(e) => !matches!(e, ProtocolError::HandshakeIncomplete),
        _ => false,
    }
}

fn closed_by_server(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(frame) if !frame.reason.is_empty() => format!(
            "the server closed the connection: {} ({})",
            frame.reason,
            u16::from(frame.code)
        ),
        Some(frame) => format!(
            "the server closed the connection ({})",
            u16::from(frame.code)
        ),
        None => "the server closed the connection".to_owned(),
    }
}

fn describe(error: &tungstenite::Error) -> String {
    match error {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "the connection closed".to_owned()
        }
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => "the connection was reset".to_owned(),
        tungstenite::Error::Http(response) => format!(
            "the server refused the WebSocket upgrade with HTTP {}",
            response.status()
        ),
        e => e.to_string(),
    }
}
