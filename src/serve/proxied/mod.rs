//! Who a connection's client is when it comes through a reverse proxy or a
//! load balancer: from the peers in `--trusted-proxies` only, the address
//! their PROXY protocol header (`--proxy-protocol`) or their
//! `X-Forwarded-For` / `Forwarded` header (`--client-ip-header`) gives.
//! Every per-address limit, log line and `location` then uses it. What
//! any other peer says of itself is ignored: anyone can write a header.
//!
//! A chain of proxies is read from the right, as each appends the address
//! it took the request from: the client is the rightmost address that is
//! not itself a trusted proxy (what a client writes further left is never
//! believed; in `X-Forwarded-For` it is not even parsed, while a `Forwarded`
//! line is parsed whole, so a malformed element a client put on the line its
//! proxy appends to gets that client, and only it, a 400).

mod forwarded;
mod proxy_protocol;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::OnceLock;

use async_tungstenite::tungstenite::http::HeaderMap;
use ipnet::IpNet;

pub(crate) use forwarded::BadHeader;
pub(crate) use proxy_protocol::{looks_like_proxy_header, read_proxy_header};

/// The `--trusted-proxies` setting: the networks whose peers are believed
/// about their clients' addresses. None by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Whether `ip` is in one of the networks (an IPv4-mapped IPv6 address
    /// as the IPv4 address it is).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// `none`, or CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses
    /// separated by commas.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(TrustedProxies::default());
        }
        let nets = text
            .split(',')
            .map(|net| {
                let net = net.trim();
                net.parse::<IpNet>()
                    .or_else(|_| net.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!(
                            "{net:?} is not an IP address or a CIDR (expected such as \
                             127.0.0.1,10.0.0.0/8,fd00::/8, or none)"
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies(nets))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// The `--client-ip-header` setting: which header a trusted proxy writes
/// the client's address in. One only: a proxy passes on untouched the
/// other, which the client may have written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientIpHeader {
    // No doc comments: clap would list the values in a block of their own.
    #[default]
    XForwardedFor,
    Forwarded,
}

/// What the connection tasks need of the settings above.
#[derive(Debug)]
pub(crate) struct Proxies {
    trusted: TrustedProxies,
    proxy_protocol: bool,
    header: ClientIpHeader,
}

impl Proxies {
    pub(crate) fn new(
        trusted: TrustedProxies,
        proxy_protocol: bool,
        header: ClientIpHeader,
    ) -> Self {
        Proxies {
            trusted,
            proxy_protocol,
            header,
        }
    }

    /// Whether `peer` is a trusted proxy (whose connections carry others').
    pub(crate) fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted.contains(peer)
    }

    /// Whether a connection from `peer` must begin with a PROXY header.
    pub(crate) fn expects_proxy_header(&self, peer: IpAddr) -> bool {
        self.proxy_protocol && self.trusted.contains(peer)
    }

    /// The client's address, for a request that came from `hop` (the TCP
    /// peer, or the source its PROXY header gave) with `headers`: `hop`
    /// itself unless it is a trusted proxy.
    pub(crate) fn client(&self, hop: IpAddr, headers: &HeaderMap) -> Result<IpAddr, BadHeader> {
        let hop = hop.to_canonical();
        if !self.trusted.contains(hop) {
            return Ok(hop);
        }
        match self.header {
            ClientIpHeader::XForwardedFor => rightmost_untrusted(
                hop,
                forwarded::x_forwarded_for(headers.get_all("x-forwarded-for")),
                &self.trusted,
            ),
            ClientIpHeader::Forwarded => rightmost_untrusted(
                hop,
                forwarded::forwarded(headers.get_all("forwarded")),
                &self.trusted,
            ),
        }
    }
}

/// One hop of a chain as a proxy wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    Ip(IpAddr),
    /// `unknown`, an obfuscated identifier (`_hidden`), or a `Forwarded`
    /// element without `for=`: the proxy did not say.
    Hidden,
}

/// Walks `nodes`, rightmost first, from `hop` for as long as the address
/// reached is a trusted proxy, which is believed about the next one. A
/// hidden node stops the walk at the trusted proxy that wrote it (its
/// address is the nearest known); a malformed one, which a trusted proxy
/// wrote, is refused. If every address is trusted, the leftmost is the
/// client.
fn rightmost_untrusted(
    hop: IpAddr,
    nodes: impl Iterator<Item = Result<Node, BadHeader>>,
    trusted: &TrustedProxies,
) -> Result<IpAddr, BadHeader> {
    let mut client = hop;
    for node in nodes {
        if !trusted.contains(client) {
            break;
        }
        match node? {
            Node::Ip(ip) => client = ip.to_canonical(),
            Node::Hidden => break,
        }
    }
    Ok(client)
}

/// Who is at the other end of a connection: its TCP peer and, once a
/// trusted proxy has said so, the client that the proxy speaks for. Logs
/// show the client, and the proxy it came through.
#[derive(Debug)]
pub(crate) struct Peer {
    socket: SocketAddr,
    client: OnceLock<IpAddr>,
}

impl Peer {
    pub(crate) fn new(socket: SocketAddr) -> Peer {
        Peer {
            socket,
            client: OnceLock::new(),
        }
    }

    /// Records the client's address (once; the first is kept).
    pub(crate) fn learn(&self, client: IpAddr) {
        if client != self.socket.ip().to_canonical() {
            let _ = self.client.set(client);
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.client.get() {
            Some(client) => write!(f, "{client} via {}", self.socket),
            None => write!(f, "{}", self.socket),
        }
    }
}
