use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::http::{HeaderMap, HeaderValue};
use futures_util::io::{AsyncReadExt, Cursor};

use super::forwarded::{parse_elements, parse_node};
use super::proxy_protocol::ProxyHeaderError;
use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn headers(lines: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines {
        map.append(*name, HeaderValue::from_bytes(value.as_bytes()).unwrap());
    }
    map
}

/// nginx at 10.0.0.5 and an inner balancer at 10.0.0.6, both trusted.
fn proxies(header: ClientIpHeader) -> Proxies {
    Proxies::new(
        "10.0.0.0/24, 2001:db8:ffff::/48".parse().unwrap(),
        false,
        header,
    )
}

fn xff(value: &str) -> Result<IpAddr, BadHeader> {
    proxies(ClientIpHeader::XForwardedFor)
        .client(ip("10.0.0.5"), &headers(&[("x-forwarded-for", value)]))
}

fn fwd(value: &str) -> Result<IpAddr, BadHeader> {
    proxies(ClientIpHeader::Forwarded).client(ip("10.0.0.5"), &headers(&[("forwarded", value)]))
}

#[test]
fn trusted_proxies_read_cidrs_addresses_and_none() {
    let trusted: TrustedProxies = "10.0.0.1/8, 192.0.2.7 ,fd00::/8,::1".parse().unwrap();
    assert_eq!(
        trusted.to_string(),
        "10.0.0.0/8,192.0.2.7/32,fd00::/8,::1/128"
    );
    assert!(trusted.contains(ip("10.200.0.1")));
    assert!(trusted.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
    assert!(trusted.contains(ip("fd12::1")));
    assert!(trusted.contains(ip("::1")));
    assert!(!trusted.contains(ip("192.0.2.8")));
    assert!(!trusted.contains(ip("11.0.0.1")));
    let none: TrustedProxies = "none".parse().unwrap();
    assert!(none.is_empty());
    assert_eq!(none.to_string(), "none");
    assert!(!none.contains(ip("127.0.0.1")));
    for bad in [
        "",
        "10.0.0.0/33",
        "10.0.0.0/8,,fd00::/8",
        "localhost",
        "10.0.0/8",
        "*",
    ] {
        assert!(bad.parse::<TrustedProxies>().is_err(), "{bad:?}");
    }
}

#[test]
fn the_rightmost_address_that_is_not_a_trusted_proxy_is_the_client() {
    assert_eq!(xff("203.0.113.9"), Ok(ip("203.0.113.9")));
    // What the client wrote itself is left of its proxy's, never believed.
    assert_eq!(xff("6.6.6.6, 203.0.113.9"), Ok(ip("203.0.113.9")));
    // Through two trusted proxies.
    assert_eq!(xff("6.6.6.6, 203.0.113.9, 10.0.0.6"), Ok(ip("203.0.113.9")));
    // Several lines are one list, in order.
    let two_lines = headers(&[
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-for", "203.0.113.9 , 10.0.0.6"),
    ]);
    let p = proxies(ClientIpHeader::XForwardedFor);
    assert_eq!(p.client(ip("10.0.0.5"), &two_lines), Ok(ip("203.0.113.9")));
    // All trusted: the leftmost.
    assert_eq!(xff("10.0.0.7, 10.0.0.6"), Ok(ip("10.0.0.7")));
    // No header: the proxy itself.
    assert_eq!(
        p.client(ip("10.0.0.5"), &HeaderMap::new()),
        Ok(ip("10.0.0.5"))
    );
    // Empty elements are skipped; IPv4-mapped addresses are their IPv4.
    assert_eq!(xff(" ,203.0.113.9,, "), Ok(ip("203.0.113.9")));
    assert_eq!(xff("::ffff:203.0.113.9"), Ok(ip("203.0.113.9")));
}

#[test]
fn headers_from_a_peer_that_is_not_trusted_are_ignored() {
    let p = proxies(ClientIpHeader::XForwardedFor);
    let spoofed = headers(&[
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=1.2.3.4"),
    ]);
    assert_eq!(
        p.client(ip("198.51.100.1"), &spoofed),
        Ok(ip("198.51.100.1"))
    );
    // Nor is garbage from it looked at.
    let garbage = headers(&[
        ("x-forwarded-for", "not an address"),
        ("forwarded", "for=\""),
    ]);
    assert_eq!(
        p.client(ip("198.51.100.1"), &garbage),
        Ok(ip("198.51.100.1"))
    );
    // Only the header chosen is read: a proxy passes the other on as the
    // client wrote it.
    assert_eq!(
        p.client(ip("10.0.0.5"), &headers(&[("forwarded", "for=1.2.3.4")])),
        Ok(ip("10.0.0.5"))
    );
    let f = proxies(ClientIpHeader::Forwarded);
    assert_eq!(
        f.client(ip("10.0.0.5"), &headers(&[("x-forwarded-for", "1.2.3.4")])),
        Ok(ip("10.0.0.5"))
    );
    // No one is trusted by default.
    let none = Proxies::new(
        TrustedProxies::default(),
        false,
        ClientIpHeader::XForwardedFor,
    );
    assert_eq!(none.client(ip("127.0.0.1"), &spoofed), Ok(ip("127.0.0.1")));
}

#[test]
fn ports_brackets_and_ipv6_are_understood() {
    assert_eq!(xff("203.0.113.9:4711"), Ok(ip("203.0.113.9")));
    assert_eq!(xff("2001:db8::7"), Ok(ip("2001:db8::7")));
    assert_eq!(xff("[2001:db8::7]"), Ok(ip("2001:db8::7")));
    assert_eq!(xff("[2001:db8::7]:4711"), Ok(ip("2001:db8::7")));
    assert_eq!(xff("2001:db8::7, 2001:db8:ffff::1"), Ok(ip("2001:db8::7")));
    assert_eq!(fwd(r#"for="[2001:db8::7]:4711""#), Ok(ip("2001:db8::7")));
    assert_eq!(
        fwd("for=[2001:db8::7]"),
        Ok(ip("2001:db8::7")),
        "unquoted, leniently"
    );
    assert_eq!(
        fwd("for=203.0.113.9:_port"),
        Ok(ip("203.0.113.9")),
        "obfuscated port"
    );
}

#[test]
fn forwarded_is_read_as_rfc_7239_writes_it() {
    assert_eq!(fwd("for=203.0.113.9"), Ok(ip("203.0.113.9")));
    assert_eq!(
        fwd("FOR=203.0.113.9;proto=https;by=10.0.0.5"),
        Ok(ip("203.0.113.9"))
    );
    assert_eq!(
        fwd(r#"for=6.6.6.6, for="203.0.113.9";host="a,b;c", for=10.0.0.6"#),
        Ok(ip("203.0.113.9")),
        "commas and semicolons inside quotes"
    );
    assert_eq!(
        fwd(r#"for="\2\0\3.0.113.9""#),
        Ok(ip("203.0.113.9")),
        "escapes"
    );
    assert_eq!(
        parse_elements(r#"for=a;proto=http, ,proto=https,for="x\"y""#),
        Ok(vec![Some("a".into()), None, Some("x\"y".into())])
    );
}

#[test]
fn unknown_and_obfuscated_clients_leave_the_proxy_as_the_address() {
    // The node the walk stops at is hidden: the nearest known address is
    // the trusted proxy that wrote it, never what lies further left.
    assert_eq!(fwd("for=6.6.6.6, for=unknown"), Ok(ip("10.0.0.5")));
    assert_eq!(
        fwd("for=6.6.6.6, for=_hidden, for=10.0.0.6"),
        Ok(ip("10.0.0.6"))
    );
    assert_eq!(
        fwd("for=6.6.6.6, proto=https"),
        Ok(ip("10.0.0.5")),
        "no for="
    );
    assert_eq!(xff("6.6.6.6, unknown"), Ok(ip("10.0.0.5")));
    assert_eq!(parse_node("unknown:4711"), Some(Node::Hidden));
    assert_eq!(parse_node("_a.b-c_d"), Some(Node::Hidden));
}

#[test]
fn garbage_where_the_walk_reads_is_refused_and_left_of_it_never_read() {
    for bad in [
        "",
        "_",
        "a.b.c.d",
        "203.0.113.9:",
        "203.0.113.9:99999",
        "203.0.113.9:+1",
        "[2001:db8::7",
        "[203.0.113.9]",
        "2001:db8::7:80x",
        "fe80::1%eth0",
        "1.2.3.4 5.6.7.8",
    ] {
        assert_eq!(parse_node(bad), None, "{bad:?}");
    }
    assert_eq!(xff("203.0.113.9 junk"), Err(BadHeader::XForwardedFor));
    assert_eq!(xff("203.0.113.9, junk"), Err(BadHeader::XForwardedFor));
    assert_eq!(xff("junk, 203.0.113.9"), Ok(ip("203.0.113.9")));
    assert_eq!(
        xff("junk\u{e9}, 203.0.113.9"),
        Ok(ip("203.0.113.9")),
        "not ASCII on the left"
    );
    for bad in [
        "for",
        "for=",
        "=1.2.3.4",
        "for=1.2.3.4;for=5.6.7.8",
        "for=\"1.2.3.4",
        "for=\"1.2.3.4\\",
        "for=1.2.3.4 proto=http",
        "for=\"1.2.3.4\"x",
        "for=bogus",
        "for=\"[2001:db8::7]:80:80\"",
    ] {
        assert_eq!(fwd(bad), Err(BadHeader::Forwarded), "{bad:?}");
    }
    // Another line, to the left, is never read.
    let p = proxies(ClientIpHeader::Forwarded);
    let lines = headers(&[
        ("forwarded", "for=\"unclosed"),
        ("forwarded", "for=203.0.113.9"),
    ]);
    assert_eq!(p.client(ip("10.0.0.5"), &lines), Ok(ip("203.0.113.9")));
    // A long list of trusted hops is walked without trouble.
    let long = vec!["10.0.0.9"; 500].join(",");
    assert_eq!(xff(&format!("203.0.113.9,{long}")), Ok(ip("203.0.113.9")));
}

#[test]
fn a_peer_is_shown_as_its_client_via_the_proxy() {
    let peer = Peer::new(SocketAddr::from(([10, 0, 0, 5], 40000)));
    assert_eq!(peer.to_string(), "10.0.0.5:40000");
    peer.learn(ip("10.0.0.5"));
    assert_eq!(peer.to_string(), "10.0.0.5:40000", "not its own client");
    peer.learn(ip("203.0.113.9"));
    assert_eq!(peer.to_string(), "203.0.113.9 via 10.0.0.5:40000");
}

#[test]
fn a_proxy_header_is_expected_only_from_trusted_peers_when_enabled() {
    let trusted: TrustedProxies = "10.0.0.0/24".parse().unwrap();
    let on = Proxies::new(trusted.clone(), true, ClientIpHeader::XForwardedFor);
    assert!(on.expects_proxy_header(ip("10.0.0.5")));
    assert!(!on.expects_proxy_header(ip("203.0.113.9")));
    let off = Proxies::new(trusted, false, ClientIpHeader::XForwardedFor);
    assert!(!off.expects_proxy_header(ip("10.0.0.5")));
}

/// Reads a PROXY header from `bytes`; also what is left after it.
fn read_header(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyHeaderError>, Vec<u8>) {
    let mut io = Cursor::new(bytes.to_vec());
    let deadline = Instant::now() + Duration::from_secs(5);
    smol::block_on(async {
        let result = read_proxy_header(&mut io, deadline).await;
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        (result, rest)
    })
}

/// A PROXY v2 header of the PROXY command over TCP.
fn v2(source: SocketAddr, destination: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let mut bytes = b"\r\n\r\n\0\r\nQUIT\n\x21".to_vec();
    let mut addresses = Vec::new();
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            bytes.push(0x11);
            addresses.extend(s.ip().octets());
            addresses.extend(d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            bytes.push(0x21);
            addresses.extend(s.ip().octets());
            addresses.extend(d.ip().octets());
        }
        _ => unreachable!("one family"),
    }
    addresses.extend(source.port().to_be_bytes());
    addresses.extend(destination.port().to_be_bytes());
    addresses.extend(tlvs);
    bytes.extend(u16::try_from(addresses.len()).unwrap().to_be_bytes());
    bytes.extend(addresses);
    bytes
}

#[test]
fn proxy_headers_v1_and_v2_give_the_source_and_leave_what_follows() {
    let source: SocketAddr = "203.0.113.9:4711".parse().unwrap();
    let to: SocketAddr = "10.0.0.1:8080".parse().unwrap();
    let (got, rest) =
        read_header(b"PROXY TCP4 203.0.113.9 10.0.0.1 4711 8080\r\nGET / HTTP/1.1\r\n");
    assert_eq!(got.unwrap(), Some(source));
    assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    let (got, rest) = read_header(b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 8080\r\n\x16\x03");
    assert_eq!(got.unwrap(), Some("[2001:db8::7]:4711".parse().unwrap()));
    assert_eq!(rest, b"\x16\x03", "a TLS ClientHello starts where it ends");
    let (got, rest) = read_header(b"PROXY UNKNOWN\r\nG");
    assert_eq!(got.unwrap(), None);
    assert_eq!(rest, b"G");

    let mut header = v2(source, to, &[0x04, 0x00, 0x02, b'h', b'i']);
    header.extend(b"GET");
    let (got, rest) = read_header(&header);
    assert_eq!(got.unwrap(), Some(source));
    assert_eq!(rest, b"GET");
    let six = v2(
        "[2001:db8::7]:1".parse().unwrap(),
        "[2001:db8::1]:2".parse().unwrap(),
        &[],
    );
    assert_eq!(
        read_header(&six).0.unwrap(),
        Some("[2001:db8::7]:1".parse().unwrap())
    );
    // LOCAL: the balancer's own connection (a health check).
    let mut local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00".to_vec();
    local.extend(b"GET");
    let (got, rest) = read_header(&local);
    assert_eq!(got.unwrap(), None);
    assert_eq!(rest, b"GET");
}

#[test]
fn bad_or_oversized_proxy_headers_are_refused() {
    let source: SocketAddr = "203.0.113.9:4711".parse().unwrap();
    let to: SocketAddr = "10.0.0.1:8080".parse().unwrap();
    let missing = read_header(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").0;
    assert!(
        matches!(missing, Err(ProxyHeaderError::Missing)),
        "{missing:?}"
    );
    let long = format!(
        "PROXY TCP4 203.0.113.9 10.0.0.1 4711 8080{}\r\n",
        " ".repeat(80)
    );
    assert!(matches!(
        read_header(long.as_bytes()).0,
        Err(ProxyHeaderError::Malformed)
    ));
    let endless = vec![b'9'; 10_000];
    let endless = [b"PROXY TCP4 ".as_slice(), &endless].concat();
    assert!(matches!(
        read_header(&endless).0,
        Err(ProxyHeaderError::Malformed)
    ));
    for bad in [
        &b"PROXY TCP4 203.0.113.999 10.0.0.1 4711 8080\r\n"[..],
        b"PROXY TCP4 2001:db8::7 10.0.0.1 4711 8080\r\n",
        b"PROXY TCP4 203.0.113.9 10.0.0.1 4711 99999\r\n",
        b"PROXY SCTP 203.0.113.9 10.0.0.1 4711 8080\r\n",
        b"PROXY TCP4 203.0.113.9\r\n",
    ] {
        let got = read_header(bad).0;
        assert!(
            matches!(got, Err(ProxyHeaderError::Malformed)),
            "{:?}: {got:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let huge = v2(source, to, &vec![0; 2000]);
    assert!(matches!(
        read_header(&huge).0,
        Err(ProxyHeaderError::TooLarge)
    ));
    let mut version_3 = v2(source, to, &[]);
    version_3[12] = 0x31;
    assert!(matches!(
        read_header(&version_3).0,
        Err(ProxyHeaderError::Malformed)
    ));
    let mut short_addresses = v2(source, to, &[]);
    short_addresses[15] = 4;
    assert!(matches!(
        read_header(&short_addresses).0,
        Err(ProxyHeaderError::Malformed)
    ));
    let cut = v2(source, to, &[]);
    assert!(matches!(
        read_header(&cut[..20]).0,
        Err(ProxyHeaderError::Lost(_))
    ));
    assert!(matches!(
        read_header(b"PROXY").0,
        Err(ProxyHeaderError::Lost(_))
    ));
}

/// Sends `bytes`, then nothing more, never closing.
struct Stalling(&'static [u8]);

impl futures_util::io::AsyncRead for Stalling {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.0.is_empty() {
            return std::task::Poll::Pending;
        }
        let n = self.0.len().min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        std::task::Poll::Ready(Ok(n))
    }
}

#[test]
fn a_proxy_header_that_never_ends_times_out() {
    let deadline = Instant::now() + Duration::from_millis(100);
    let mut io = Stalling(b"PROXY TCP4 203.0.113.9 ");
    let got = smol::block_on(read_proxy_header(&mut io, deadline));
    assert!(matches!(got, Err(ProxyHeaderError::TimedOut)), "{got:?}");
}

#[test]
fn any_bytes_are_parsed_without_a_panic() {
    use proptest::prelude::*;
    proptest!(|(bytes in proptest::collection::vec(any::<u8>(), 0..300), v2_head in any::<bool>())| {
        let bytes = if v2_head { [b"\r\n\r\n\0\r\nQUIT\n".as_slice(), &bytes].concat() } else { bytes };
        let _ = read_header(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_node(&text);
        let _ = parse_elements(&text);
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let mut map = HeaderMap::new();
            map.insert("forwarded", value.clone());
            map.insert("x-forwarded-for", value);
            let _ = proxies(ClientIpHeader::Forwarded).client(ip("10.0.0.5"), &map);
            let _ = proxies(ClientIpHeader::XForwardedFor).client(ip("10.0.0.5"), &map);
        }
    });
}
