//! The WebSocket upgrade: accepted on any path and (unless
//! `--allowed-origins` says otherwise) from any Origin, as the original did;
//! `wschat.v2` is selected when offered, no subprotocol otherwise (v1).
//! Anything else gets an HTTP error.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::StatusCode;
use async_tungstenite::tungstenite::http::header::{
    CONNECTION, HeaderValue, SEC_WEBSOCKET_PROTOCOL,
};
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use smol::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::{with_deadline, with_timeout};
use crate::Version;

/// A peer that has not completed its upgrade by then (its TLS handshake
/// included) is dropped: the default of `--handshake-timeout`.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// tungstenite's read buffer: its first allocation, and the most one read
/// asks of the socket. Room for a typical chat frame (a login, a message of
/// a line or two) in one read; a longer frame takes a few more reads. Every
/// connection keeps (part of) this allocation while idle, so it is small:
/// tungstenite's default (128 KiB) would dominate an idle server's memory.
const READ_BUFFER_BYTES: usize = 256;

/// The WebSocket settings of every connection.
pub(crate) fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        // Each frame goes straight through to the socket, which gathers a
        // batch into one write (see `socket`) and, unlike tungstenite's
        // buffer that never shrinks, frees its buffer once it is flushed.
        // tungstenite then holds one frame at a time, so its bound
        // (`max_write_buffer_size`) stays unlimited: the outbox bounds what
        // waits, and a frame as large as a long `userList` must pass.
        .write_buffer_size(0)
        .max_frame_size(Some(max_frame_bytes))
        .max_message_size(Some(max_frame_bytes))
}

/// What others see as this peer's `location`: its IP address, with an
/// IPv4-mapped IPv6 address shown as the IPv4 address it is.
pub(crate) fn location(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// The upgrade failed.
#[derive(Debug)]
pub(crate) struct Failed {
    /// Whether `register` was called and said yes: then the core must be
    /// told that the connection is gone.
    pub(crate) registered: bool,
    /// The HTTP answer owed to a request that was not a WebSocket upgrade
    /// (see [`refuse`]).
    pub(crate) answer: Option<&'static str>,
}

/// Runs the server side of the upgrade on `io` (TCP, or TLS over TCP),
/// giving up at `deadline`.
///
/// `register` runs once the request is known to be a valid upgrade and
/// before the `101` goes out, with the protocol version negotiated, so that
/// a client that sees its upgrade complete also sees every broadcast from
/// then on. If it refuses, the peer gets the HTTP status it returns (403
/// for a foreign Origin, 503 when the server is full or stopping).
///
/// `io` is borrowed rather than moved into tungstenite so that it is still
/// there to [`refuse`] a request that is not a WebSocket upgrade.
pub(crate) async fn accept<S>(
    io: &mut S,
    peer: SocketAddr,
    config: WebSocketConfig,
    deadline: Instant,
    register: impl FnOnce(&Request, Version) -> Result<(), StatusCode> + Unpin,
) -> Result<WebSocketStream<&mut S>, Failed>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut registered = false;
    #[allow(clippy::result_large_err)] // the signature is tungstenite's `Callback`
    let callback = |request: &Request, mut response: Response| {
        let offered = request.headers().get_all(SEC_WEBSOCKET_PROTOCOL);
        let (version, selected) =
            Version::negotiate(offered.iter().filter_map(|v| v.to_str().ok()));
        if let Some(selected) = selected {
            response
                .headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(selected));
        }
        match register(request, version) {
            Ok(()) => {
                registered = true;
                Ok(response)
            }
            Err(status) => {
                let mut refused = ErrorResponse::new(None);
                *refused.status_mut() = status;
                refused
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                Err(refused)
            }
        }
    };
    let upgrade = async_tungstenite::accept_hdr_async_with_config(&mut *io, callback, Some(config));
    let error = match with_deadline(deadline, upgrade).await {
        Some(Ok(ws)) => return Ok(ws),
        Some(Err(error)) => error,
        None => {
            debug!(%peer, "handshake timed out");
            return Err(Failed {
                registered,
                answer: None,
            });
        }
    };
    debug!(%peer, "handshake failed: {error}");
    Err(Failed {
        registered,
        answer: rejection(&error),
    })
}

/// Sends the HTTP `answer` to a failed upgrade, then closes our sending
/// side (after TLS's close_notify, on TLS), bounded in time.
pub(crate) async fn refuse<S>(io: &mut S, answer: &'static str)
where
    S: AsyncWrite + Unpin,
{
    let _ = with_timeout(HANDSHAKE_TIMEOUT, async {
        io.write_all(answer.as_bytes()).await?;
        io.close().await
    })
    .await;
}

/// The HTTP answer to a request that could not be upgraded, if it was HTTP
/// at all and tungstenite has not answered already (`WsError::Http`).
fn rejection(error: &WsError) -> Option<&'static str> {
    match error {
        // A plain request: 404, as the original answered.
        WsError::Protocol(
            ProtocolError::WrongHttpMethod
            | ProtocolError::MissingConnectionUpgradeHeader
            | ProtocolError::MissingUpgradeWebSocketHeader,
        ) => Some("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        // RFC 6455, 4.4: say which version we speak.
        WsError::Protocol(ProtocolError::MissingSecWebSocketVersionHeader) => Some(
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
        ),
        WsError::Protocol(_) | WsError::HttpFormat(_) | WsError::Capacity(_) => {
            Some("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_shows_mapped_ipv6_as_ipv4() {
        assert_eq!(location("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(location("127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(location("2001:db8::1".parse().unwrap()), "2001:db8::1");
    }

    #[test]
    fn the_config_is_valid_and_small() {
        let config = websocket_config(65536);
        assert!(config.max_write_buffer_size > config.write_buffer_size);
        assert_eq!(config.max_frame_size, Some(65536));
        assert_eq!(config.max_message_size, Some(65536));
        assert!(config.read_buffer_size <= 8 * 1024);
    }
}
