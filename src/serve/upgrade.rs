//! The WebSocket upgrade of a request whose head `http` has read: accepted
//! on any path, as the original did, from the Origins `admission` allows;
//! the highest of `wschat.v3` and `wschat.v2` offered that the server speaks
//! is selected, no subprotocol otherwise (v1).

use std::net::IpAddr;

use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::handshake::server::{Request, create_response, write_response};
use async_tungstenite::tungstenite::http::StatusCode;
use async_tungstenite::tungstenite::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use async_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::http::Response;
use super::options::Options;
use crate::Version;

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

/// Whether the request asks for a WebSocket (`Upgrade: websocket`); it is
/// then upgraded or refused as a bad upgrade, never routed as a page.
pub(crate) fn is_upgrade(request: &Request) -> bool {
    request.headers().get_all(UPGRADE).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
        })
    })
}

/// An upgrade that can go ahead: its `101` response and the protocol
/// version it negotiated.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) response: Vec<u8>,
    pub(crate) version: Version,
}

/// The highest protocol version a server started with `options` speaks:
/// v3 (on a single node and on a cluster's alike), unless
/// `--max-protocol` says less.
pub(crate) fn highest_version(options: &Options) -> Version {
    match options.max_protocol {
        1 => Version::V1,
        2 => Version::V2,
        _ => Version::V3,
    }
}

/// The `101 Switching Protocols` for `request`, speaking at most `max`, or
/// the HTTP answer to an upgrade that is not valid.
pub(crate) fn accept(request: &Request, max: Version) -> Result<Accepted, Response> {
    let mut response = create_response(request).map_err(|error| rejection(&error))?;
    let offered = request.headers().get_all(SEC_WEBSOCKET_PROTOCOL);
    let (version, selected) =
        Version::negotiate_up_to(offered.iter().filter_map(|v| v.to_str().ok()), max);
    if let Some(selected) = selected {
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(selected));
    }
    let mut bytes = Vec::with_capacity(192);
    write_response(&mut bytes, &response).map_err(|error| rejection(&error))?;
    Ok(Accepted {
        response: bytes,
        version,
    })
}

/// The answer to an upgrade that cannot go ahead.
fn rejection(error: &WsError) -> Response {
    match error {
        WsError::Protocol(ProtocolError::WrongHttpMethod) => Response::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade is a GET\n",
        )
        .with("Allow", "GET"),
        // RFC 6455, 4.4: say which version we speak.
        WsError::Protocol(ProtocolError::MissingSecWebSocketVersionHeader) => Response::text(
            StatusCode::UPGRADE_REQUIRED,
            "this server speaks WebSocket version 13\n",
        )
        .with("Sec-WebSocket-Version", "13"),
        other => Response::text(
            StatusCode::BAD_REQUEST,
            format!("bad WebSocket upgrade: {other}\n"),
        ),
    }
}

/// The answer to an upgrade refused by admission (403 for a foreign
/// Origin, 503 when full or stopping).
pub(crate) fn refusal(status: StatusCode) -> Response {
    let body = match status {
        StatusCode::FORBIDDEN => "this page's origin may not connect to this chat\n",
        _ => "the server is full or stopping; try again later\n",
    };
    Response::text(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(extra: &[(&str, &str)]) -> Request {
        let mut request = Request::builder()
            .uri("/any/path")
            .header("Host", "chat")
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap()
    }

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

    #[test]
    fn v2_is_selected_when_offered_on_any_path() {
        let v1 = accept(&upgrade(&[]), Version::V3).unwrap();
        assert_eq!(v1.version, Version::V1);
        let text = String::from_utf8(v1.response).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
        assert!(text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{text}");
        assert!(!text.to_lowercase().contains("sec-websocket-protocol"));

        let v2 = accept(
            &upgrade(&[("Sec-WebSocket-Protocol", "chat, wschat.v2")]),
            Version::V3,
        )
        .unwrap();
        assert_eq!(v2.version, Version::V2);
        let text = String::from_utf8(v2.response).unwrap();
        assert!(
            text.contains("sec-websocket-protocol: wschat.v2\r\n"),
            "{text}"
        );
    }

    #[test]
    fn bad_upgrades_get_their_status() {
        let mut no_version = upgrade(&[]);
        no_version.headers_mut().remove("Sec-WebSocket-Version");
        assert_eq!(accept(&no_version, Version::V3).unwrap_err().status, 426);
        let mut no_key = upgrade(&[]);
        no_key.headers_mut().remove("Sec-WebSocket-Key");
        assert_eq!(accept(&no_key, Version::V3).unwrap_err().status, 400);
        let mut post = upgrade(&[]);
        *post.method_mut() = "POST".parse().unwrap();
        assert_eq!(accept(&post, Version::V3).unwrap_err().status, 405);
        assert!(is_upgrade(&upgrade(&[])));
        assert!(!is_upgrade(&Request::builder().body(()).unwrap()));
    }

    /// The protocol a client offering `offers` (one header each) gets from
    /// a server speaking at most `max`, and the header that says so.
    fn selected(offers: &[&str], max: Version) -> (Version, Option<String>) {
        let headers: Vec<_> = offers
            .iter()
            .map(|o| ("Sec-WebSocket-Protocol", *o))
            .collect();
        let accepted = accept(&upgrade(&headers), max).unwrap();
        let text = String::from_utf8(accepted.response).unwrap();
        let header = text
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-protocol: "))
            .map(str::to_owned);
        (accepted.version, header)
    }

    #[test]
    fn every_node_selects_v3_unless_told_to_speak_less() {
        let single = highest_version(&Options::default());
        assert_eq!(single, Version::V3);
        let in_memory = Options::parse_ignoring_env(["chat-server", "--in-memory"]).unwrap();
        assert_eq!(highest_version(&in_memory), Version::V3);
        let cluster = Options {
            redis_url: vec!["redis://127.0.0.1:6379".into()],
            ..Options::default()
        };
        assert_eq!(highest_version(&cluster), Version::V3);
        for (flag, version) in [("1", Version::V1), ("2", Version::V2), ("3", Version::V3)] {
            let options =
                Options::parse_ignoring_env(["chat-server", "--max-protocol", flag]).unwrap();
            assert_eq!(highest_version(&options), version);
        }
        assert!(Options::parse_ignoring_env(["chat-server", "--max-protocol", "4"]).is_err());

        let v3 = (Version::V3, Some("wschat.v3".to_owned()));
        let v2 = (Version::V2, Some("wschat.v2".to_owned()));
        assert_eq!(selected(&["wschat.v3, wschat.v2"], single), v3);
        assert_eq!(selected(&["wschat.v2", "wschat.v3"], single), v3);
        assert_eq!(selected(&["wschat.v2"], single), v2);
        assert_eq!(selected(&["wschat.v3"], single), v3);
        assert_eq!(selected(&["wschat.v3, wschat.v2"], Version::V2), v2);
        assert_eq!(selected(&["wschat.v3"], Version::V2), (Version::V1, None));
    }
}
