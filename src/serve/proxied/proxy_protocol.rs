//! The PROXY protocol (HAProxy's `send-proxy` and `send-proxy-v2`, cloud
//! load balancers): a header before anything else on the connection, even
//! before TLS, giving the address of the client the load balancer took the
//! connection from. Parsed by the `proxy-header` crate; read here, bounded
//! in time (the handshake's deadline) and in size, and without reading a
//! byte of what follows it, so that TLS or HTTP starts where it ends.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use proxy_header::{ParseConfig, ProxyHeader};
use smol::io::{AsyncRead, AsyncReadExt};

use crate::serve::timeouts::with_deadline;

/// The v2 header's first 12 bytes.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// The shortest header, `PROXY UNKNOWN\r\n`: read at once, it tells the
/// versions apart without taking a byte beyond any header.
const SHORTEST: usize = 15;

/// The most a v1 header may take (the protocol's own limit).
const MAX_V1_BYTES: usize = 107;

/// The most a v2 header may take: 16 bytes, then the addresses (at most
/// 216, for Unix sockets) and whatever TLVs the load balancer adds (a few
/// tens of bytes for the clouds' endpoint ids and the like). The length
/// field would allow 64 KiB.
const MAX_V2_BYTES: usize = 16 + 1024;

/// Why a connection that had to start with a PROXY header did not.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    #[error("connection lost before a whole PROXY header: {0}")]
    Lost(#[source] io::Error),
    #[error("no PROXY header in time")]
    TimedOut,
    #[error("no PROXY header: the connection starts with something else")]
    Missing,
    #[error("PROXY header longer than {MAX_V2_BYTES} bytes")]
    TooLarge,
    #[error("malformed PROXY header")]
    Malformed,
}

/// Reads one PROXY header (v1 or v2) from `io`, giving up at `deadline`:
/// the client's address, or `None` where the header names none (v1's
/// `UNKNOWN`, v2's `LOCAL` command of a load balancer's health check, a
/// Unix socket), and the connection is the load balancer's own.
pub(crate) async fn read_proxy_header<S>(
    io: &mut S,
    deadline: Instant,
) -> Result<Option<SocketAddr>, ProxyHeaderError>
where
    S: AsyncRead + Unpin,
{
    with_deadline(deadline, read_now(io))
        .await
        .unwrap_or(Err(ProxyHeaderError::TimedOut))
}

async fn read_now<S>(io: &mut S) -> Result<Option<SocketAddr>, ProxyHeaderError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = vec![0; SHORTEST];
    read(io, &mut buf[..]).await?;
    if buf.starts_with(V2_SIGNATURE) {
        // 16 bytes: the signature, the version and command, the family,
        // and the length of what follows.
        buf.resize(16, 0);
        read(io, &mut buf[SHORTEST..]).await?;
        let rest = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if 16 + rest > MAX_V2_BYTES {
            return Err(ProxyHeaderError::TooLarge);
        }
        buf.resize(16 + rest, 0);
        read(io, &mut buf[16..]).await?;
    } else if buf.starts_with(b"PROXY ") {
        // v1 ends at its CRLF, wherever that is: a byte at a time, as
        // reading ahead would take bytes that are not the header's. At
        // most 92 reads, once per connection.
        while !buf.ends_with(b"\r\n") {
            if buf.len() >= MAX_V1_BYTES {
                return Err(ProxyHeaderError::Malformed);
            }
            let mut byte = [0];
            read(io, &mut byte).await?;
            buf.push(byte[0]);
        }
    } else {
        return Err(ProxyHeaderError::Missing);
    }
    parse(&buf)
}

/// The source of the header that is exactly `bytes`.
fn parse(bytes: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let config = ParseConfig {
        include_tlvs: false,
        ..ParseConfig::default()
    };
    match ProxyHeader::parse(bytes, config) {
        Ok((header, len)) if len == bytes.len() => {
            Ok(header.proxied_address().map(|address| address.source))
        }
        _ => Err(ProxyHeaderError::Malformed),
    }
}

async fn read<S>(io: &mut S, buf: &mut [u8]) -> Result<(), ProxyHeaderError>
where
    S: AsyncRead + Unpin,
{
    io.read_exact(buf).await.map_err(ProxyHeaderError::Lost)
}

/// Whether `bytes` start as a PROXY header would: for the clear refusal of
/// one from a peer it is not read from.
pub(crate) fn looks_like_proxy_header(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PROXY ") || bytes.starts_with(V2_SIGNATURE)
}
