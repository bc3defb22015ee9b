//! HTTP on the chat's port. Every connection starts with a request head,
//! read here first, bounded in size ([`MAX_HEAD_BYTES`]) and in time (the
//! handshake deadline). A WebSocket upgrade, on any path, goes on to
//! `upgrade`; any other request gets a plain answer (see `routes`) and the
//! connection is closed after it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::handshake::server::Request;
use async_tungstenite::tungstenite::http::{self, HeaderName, HeaderValue, Method, StatusCode};
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::proxied::looks_like_proxy_header;
use super::timeouts::{with_deadline, with_timeout};

/// The largest request head accepted; a larger one gets 431. A WebSocket
/// upgrade from a browser is well under 2 KiB.
pub(crate) const MAX_HEAD_BYTES: usize = 8 * 1024;

/// The most header lines accepted; more get 431.
const MAX_HEADERS: usize = 48;

/// The first read's buffer: room for a typical upgrade in one read, grown
/// up to [`MAX_HEAD_BYTES`] only for a longer head.
const FIRST_READ_BYTES: usize = 1024;

/// How long a peer has to take an answer we send before we drop it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A request head, and whatever the peer sent after it (a client may send
/// its first WebSocket frame in the same write as its upgrade).
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) request: Request,
    pub(crate) rest: Vec<u8>,
}

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    #[error("connection lost before a whole request head: {0}")]
    Lost(#[source] io::Error),
    #[error("request head timed out")]
    TimedOut,
    #[error("request head too large")]
    TooLarge,
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
}

impl HeadError {
    /// The HTTP answer owed, if the peer is still there to read one.
    pub(crate) fn answer(&self) -> Option<Response> {
        match self {
            HeadError::Lost(_) => None,
            HeadError::TimedOut => Some(Response::text(
                StatusCode::REQUEST_TIMEOUT,
                "request head not received in time\n",
            )),
            HeadError::TooLarge => Some(Response::text(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request head too large\n",
            )),
            HeadError::Malformed(what) => Some(Response::text(
                StatusCode::BAD_REQUEST,
                format!("bad request: {what}\n"),
            )),
        }
    }
}

/// Reads one request head from `io`, giving up at `deadline`.
pub(crate) async fn read_head<S>(io: &mut S, deadline: Instant) -> Result<Head, HeadError>
where
    S: AsyncRead + Unpin,
{
    with_deadline(deadline, read_head_now(io))
        .await
        .unwrap_or(Err(HeadError::TimedOut))
}

async fn read_head_now<S>(io: &mut S) -> Result<Head, HeadError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = vec![0; FIRST_READ_BYTES];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(HeadError::TooLarge);
            }
            buf.resize((buf.len() * 2).min(MAX_HEAD_BYTES), 0);
        }
        let n = io.read(&mut buf[filled..]).await.map_err(HeadError::Lost)?;
        if n == 0 {
            return Err(HeadError::Lost(io::ErrorKind::UnexpectedEof.into()));
        }
        filled += n;
        if let Some(head) = parse(&buf[..filled])? {
            return Ok(head);
        }
    }
}

/// The head in `bytes`, or `None` if it is not all there yet.
fn parse(bytes: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        // What a load balancer sends, to a port that does not take it
        // from this peer: say so, for whoever sets the balancer up.
        Err(_) if looks_like_proxy_header(bytes) => {
            return Err(HeadError::Malformed(
                "a PROXY protocol header, taken only with --proxy-protocol and from \
                 --trusted-proxies",
            ));
        }
        Err(_) => return Err(HeadError::Malformed("not an HTTP/1.x request")),
    };
    let version = match parsed.version {
        Some(0) => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Malformed("bad method"))?;
    let mut request = Request::builder()
        .method(method)
        .uri(parsed.path.unwrap_or("/"))
        .version(version);
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| HeadError::Malformed("bad header name"))?;
        let value = HeaderValue::from_bytes(header.value)
            .map_err(|_| HeadError::Malformed("bad header value"))?;
        request = request.header(name, value);
    }
    let request = request
        .body(())
        .map_err(|_| HeadError::Malformed("bad request target"))?;
    Ok(Some(Head {
        request,
        rest: bytes[len..].to_vec(),
    }))
}

/// A plain HTTP answer; the connection is closed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(&'static str, Cow<'static, str>)>,
    pub(crate) body: Cow<'static, [u8]>,
}

impl Response {
    /// A `text/plain` answer.
    pub(crate) fn text(status: StatusCode, body: impl Into<Cow<'static, str>>) -> Response {
        let body = match body.into() {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        };
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body,
        }
    }

    /// Adds a header.
    pub(crate) fn with(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire; the body is left out for a `HEAD` request.
    pub(crate) fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut head = String::with_capacity(160);
        let reason = self.status.canonical_reason().unwrap_or("");
        let _ = write!(head, "HTTP/1.1 {} {reason}\r\n", self.status.as_u16());
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let _ = write!(
            head,
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        );
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// Sends `response` and closes our sending side (after TLS's close_notify,
/// on TLS), bounded in time.
pub(crate) async fn send<S>(io: &mut S, response: &Response, head_only: bool)
where
    S: AsyncWrite + Unpin,
{
    let bytes = response.encode(head_only);
    let _ = with_timeout(ANSWER_TIMEOUT, async {
        io.write_all(&bytes).await?;
        io.close().await
    })
    .await;
}

/// Only `GET` and `HEAD` are answered; anything else gets 405.
pub(crate) fn allowed(request: &Request) -> Result<(), Response> {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return Ok(());
    }
    Err(
        Response::text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n")
            .with("Allow", "GET, HEAD"),
    )
}

pub(crate) fn not_found() -> Response {
    Response::text(
        StatusCode::NOT_FOUND,
        "not found: the chat is at /, in a browser or with a WebSocket client\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_and_what_follows_it_are_split() {
        let head = parse(b"GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n\x81\x00")
            .unwrap()
            .unwrap();
        assert_eq!(head.request.uri().path(), "/x");
        assert_eq!(head.request.headers()["upgrade"], "websocket");
        assert_eq!(head.rest, b"\x81\x00");
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    }

    #[test]
    fn garbage_and_too_many_headers_are_refused() {
        assert!(matches!(
            parse(b"\x16\x03\x01 hello\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X-A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(parse(many.as_bytes()), Err(HeadError::TooLarge)));
    }

    #[test]
    fn answers_are_closed_and_head_leaves_out_the_body() {
        let response = Response::text(StatusCode::NOT_FOUND, "nope\n");
        let full = String::from_utf8(response.encode(false)).unwrap();
        assert_eq!(
            full,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\nnope\n"
        );
        let head = String::from_utf8(response.encode(true)).unwrap();
        assert!(head.ends_with("Content-Length: 5\r\nConnection: close\r\n\r\n"));
    }
}
