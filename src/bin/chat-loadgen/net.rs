//! Opening client connections: TCP from a chosen 127.0.0.x source address,
//! then the WebSocket handshake.
//!
//! One source address has about 28,000 ephemeral ports (fewer for bound
//! sockets), so thousands of connections plus the TIME_WAIT left by the
//! accept mode would run out of them. All of 127.0.0.0/8 is loopback on
//! Linux: binding each socket to the next of 127.0.0.1, 127.0.0.2, … before
//! connecting multiplies the ports available.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::client::IntoClientRequest as _;
use async_tungstenite::tungstenite::handshake::client::Request;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use smol::{Async, Timer};
use socket2::{Domain, Socket, Type};

#[cfg(test)]
use crate::wire::Protocol;

/// A client's WebSocket.
pub type Ws = WebSocketStream<Async<TcpStream>>;

/// The sending half of a split [`Ws`].
pub type WsSender = async_tungstenite::WebSocketSender<Async<TcpStream>>;

/// Opens connections to the server (to each node of a cluster in turn),
/// rotating over source addresses.
#[derive(Debug)]
pub struct Dialer {
    /// Each server with its handshake request (`Sec-WebSocket-Protocol`
    /// included for v2).
    servers: Vec<(SocketAddr, Request)>,
    next_server: AtomicUsize,
    /// The `Sec-WebSocket-Protocol` offered, if any.
    subprotocol: Option<&'static str>,
    sources: Vec<Ipv4Addr>,
    next_source: AtomicUsize,
    config: WebSocketConfig,
    timeout: Duration,
}

impl Dialer {
    /// `source_ips` addresses from 127.0.0.1 up; `read_buffer` is the
    /// client's tungstenite read buffer (its memory, not the server's).
    /// (The modes go through [`Dialer::offering`].)
    #[cfg(test)]
    pub fn new(
        servers: &[SocketAddr],
        source_ips: u8,
        read_buffer: usize,
        timeout: Duration,
        protocol: Protocol,
    ) -> anyhow::Result<Self> {
        let subprotocol = protocol.subprotocol();
        Self::offering(servers, source_ips, read_buffer, timeout, subprotocol)
    }

    /// As [`Dialer::new`], offering `subprotocol` (the rooms modes offer
    /// `wschat.v3`, which `--protocol` does not name).
    pub fn offering(
        servers: &[SocketAddr],
        source_ips: u8,
        read_buffer: usize,
        timeout: Duration,
        subprotocol: Option<&'static str>,
    ) -> anyhow::Result<Self> {
        if let Some(server) = servers.iter().find(|s| !s.ip().is_loopback()) {
            bail!("the load generator only targets loopback addresses, not {server}");
        }
        let Some(&first) = servers.first() else {
            bail!("no --server given");
        };
        if servers.iter().any(|s| s.is_ipv6() != first.is_ipv6()) {
            bail!("--server: all IPv4 or all IPv6");
        }
        if source_ips == 0 {
            bail!("--source-ips must be at least 1");
        }
        let sources = match first {
            // An IPv6 server is reached from ::1 only.
            SocketAddr::V6(_) => Vec::new(),
            SocketAddr::V4(_) => (1..=source_ips)
                .map(|n| Ipv4Addr::new(127, 0, 0, n))
                .collect(),
        };
        let request = |server: &SocketAddr| -> anyhow::Result<Request> {
            let mut request = format!("ws://{server}/").into_client_request()?;
            if let Some(subprotocol) = subprotocol {
                request.headers_mut().insert(
                    SEC_WEBSOCKET_PROTOCOL,
                    HeaderValue::from_static(subprotocol),
                );
            }
            Ok(request)
        };
        Ok(Dialer {
            servers: servers
                .iter()
                .map(|s| Ok((*s, request(s)?)))
                .collect::<anyhow::Result<_>>()?,
            next_server: AtomicUsize::new(0),
            subprotocol,
            sources,
            next_source: AtomicUsize::new(0),
            config: WebSocketConfig::default().read_buffer_size(read_buffer),
            timeout,
        })
    }

    /// TCP connect plus WebSocket handshake, within the dial timeout. On v2
    /// (v3) the server must select `wschat.v2` (`wschat.v3`): tungstenite
    /// refuses a response that selects none of the subprotocols offered.
    pub async fn dial(&self) -> anyhow::Result<Ws> {
        let source = match self.sources.len() {
            0 => None,
            n => Some(self.sources[self.next_source.fetch_add(1, Ordering::Relaxed) % n]),
        };
        let turn = self.next_server.fetch_add(1, Ordering::Relaxed);
        let (server, request) = &self.servers[turn % self.servers.len()];
        let handshake = async {
            let tcp = connect_from(source, *server).await.with_context(|| {
                let from = source.map_or("any address".into(), |ip| ip.to_string());
                format!("connect from {from} to {server}")
            })?;
            let (ws, _response) = async_tungstenite::client_async_with_config(
                request.clone(),
                tcp,
                Some(self.config),
            )
            .await
            .with_context(|| match self.subprotocol {
                Some(offered) => format!("WebSocket handshake offering {offered}"),
                None => "WebSocket handshake".to_owned(),
            })?;
            Ok(ws)
        };
        within(self.timeout, handshake)
            .await
            .with_context(|| format!("connecting took over {:?}", self.timeout))?
    }
}

/// A non-blocking connect from `source` (any address when `None`).
async fn connect_from(
    source: Option<Ipv4Addr>,
    server: SocketAddr,
) -> io::Result<Async<TcpStream>> {
    let socket = Socket::new(
        Domain::for_address(server),
        Type::STREAM.nonblocking().cloexec(),
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_tcp_nodelay(true)?;
    if let Some(source) = source {
        socket.bind(&SocketAddr::from((source, 0)).into())?;
    }
    match socket.connect(&server.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = Async::new_nonblocking(TcpStream::from(socket))?;
    // As in `Async::<TcpStream>::connect`: writable once connected, and
    // SO_ERROR says whether that was a success.
    stream.writable().await?;
    match stream.get_ref().take_error()? {
        None => Ok(stream),
        Some(err) => Err(err),
    }
}

/// The deadline passed before the work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline passed")]
pub struct Elapsed;

/// Runs `work` for at most `limit`.
pub async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Result<T, Elapsed> {
    smol::future::or(async { Ok(work.await) }, async {
        Timer::after(limit).await;
        Err(Elapsed)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_offers_its_subprotocol_and_v1_offers_none() {
        let server = ["127.0.0.1:9".parse().unwrap()];
        let offered = |protocol| {
            let dialer = Dialer::new(&server, 4, 4096, Duration::from_secs(1), protocol).unwrap();
            let offered = dialer.servers[0].1.headers().get(SEC_WEBSOCKET_PROTOCOL);
            offered.map(|value| value.to_str().unwrap().to_owned())
        };
        assert_eq!(offered(Protocol::V1), None);
        assert_eq!(offered(Protocol::V2).as_deref(), Some("wschat.v2"));
    }

    #[test]
    fn only_loopback_servers_are_dialed() {
        let local = "127.0.0.1:80".parse().unwrap();
        let remote = "192.0.2.1:80".parse().unwrap();
        for servers in [vec![remote], vec![local, remote], vec![]] {
            let refused = Dialer::new(&servers, 4, 4096, Duration::from_secs(1), Protocol::V2);
            assert!(refused.is_err(), "{servers:?}");
        }
    }

    #[test]
    fn each_server_has_its_own_request() {
        let servers = [
            "127.0.0.1:9001".parse().unwrap(),
            "127.0.0.1:9002".parse().unwrap(),
        ];
        let dialer = Dialer::new(&servers, 1, 4096, Duration::from_secs(1), Protocol::V1).unwrap();
        let hosts: Vec<String> = dialer
            .servers
            .iter()
            .map(|(_, request)| request.uri().to_string())
            .collect();
        assert_eq!(hosts, ["ws://127.0.0.1:9001/", "ws://127.0.0.1:9002/"]);
    }
}
