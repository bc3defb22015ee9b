//! Clients behind a reverse proxy or a load balancer (issue 21, item 10):
//! `chat-server` over real sockets on 127.0.0.1, with the proxy's part
//! played by the test: 127.0.0.1 is the trusted proxy, 127.0.0.2 a peer
//! that is not. From the trusted one, the address its `X-Forwarded-For`,
//! `Forwarded` or PROXY header gives is the client's: in the `location`
//! others see, in the log, and in the per-address connection limit. From
//! the other, the same headers change nothing.
#![cfg(all(feature = "server", target_os = "linux"))]

mod net;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use futures_rustls::pki_types::ServerName;
use futures_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use net::*;
use serde_json::json;
use tungstenite::WebSocket;
use tungstenite::protocol::Role;

const PROXY: [u8; 4] = [127, 0, 0, 1];
const STRANGER: [u8; 4] = [127, 0, 0, 2];

/// A TCP connection to `addr` from `from` (a loopback address), every read
/// and write bounded.
fn tcp_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect_timeout(&addr.into(), TIMEOUT).unwrap();
    let tcp = TcpStream::from(socket);
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
    tcp
}

/// Sends `preface` (a PROXY header, or nothing) and a WebSocket upgrade
/// with `headers` from `from`: the WebSocket, or the status and body of
/// the answer that refused it (status 0: closed without one).
fn connect(
    from: [u8; 4],
    addr: SocketAddr,
    preface: &[u8],
    headers: &[(&str, &str)],
) -> Result<Client, (u16, String)> {
    let mut tcp = tcp_from(from, addr);
    let local_addr = tcp.local_addr().unwrap();
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(&[preface, request.as_bytes()].concat())
        .unwrap();
    // Byte by byte: what follows the head is the WebSocket's.
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) | Err(_) if head.is_empty() => return Err((0, String::new())),
            Ok(_) => panic!("cut off in the head: {:?}", String::from_utf8_lossy(&head)),
            Err(e) => panic!("reading the upgrade's answer: {e}"),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    if status != 101 {
        let mut body = String::new();
        let _ = tcp.read_to_string(&mut body);
        return Err((status, body));
    }
    let ws = WebSocket::from_raw_socket(tcp, Role::Client, None);
    Ok(Client::new(ws, local_addr))
}

fn connected(from: [u8; 4], addr: SocketAddr, preface: &[u8], headers: &[(&str, &str)]) -> Client {
    connect(from, addr, preface, headers)
        .unwrap_or_else(|(status, body)| panic!("upgrade refused: {status} {body}"))
}

/// Logs in as `name`: the location the server tells the client it is at
/// (the same that others' `loginBroadcast` shows).
fn location<S: Read + Write>(client: &mut Client<S>, name: &str) -> String {
    client.send_json(json!({"type": "login", "id": "l", "username": name}));
    let reply = client.recv_type("loginMessage");
    assert_eq!(reply["username"], name, "{reply}");
    reply["location"].as_str().expect("a location").to_owned()
}

/// A PROXY v2 header of a TCP connection from `source` to `destination`,
/// as a load balancer sends it (built here from the specification, not by
/// the crate the server parses it with).
fn proxy_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut bytes = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    bytes.push(0x21); // version 2, PROXY
    let mut addresses = Vec::new();
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            bytes.push(0x11); // TCP over IPv4
            addresses.extend(s.ip().octets());
            addresses.extend(d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            bytes.push(0x21); // TCP over IPv6
            addresses.extend(s.ip().octets());
            addresses.extend(d.ip().octets());
        }
        _ => panic!("one address family"),
    }
    addresses.extend(source.port().to_be_bytes());
    addresses.extend(destination.port().to_be_bytes());
    // A TLV as AWS's NLB adds (PP2_TYPE_AWS, its VPC endpoint id).
    addresses.extend([0xEA, 0x00, 0x05, 0x01, b'v', b'p', b'c', b'e']);
    bytes.extend(u16::try_from(addresses.len()).unwrap().to_be_bytes());
    bytes.extend(addresses);
    bytes
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn an_nginx_x_forwarded_for_from_a_trusted_proxy_is_the_clients_address() {
    let server = ServerProcess::start(&[
        "--trusted-proxies",
        "127.0.0.1",
        "--max-connections-per-ip",
        "1",
    ]);
    // nginx's `$proxy_add_x_forwarded_for`: what the client sent, then the
    // address nginx took the request from.
    let mut alice = connected(
        PROXY,
        server.addr,
        b"",
        &[("X-Forwarded-For", "6.6.6.6, 203.0.113.9")],
    );
    assert_eq!(location(&mut alice, "alice"), "203.0.113.9");
    assert!(
        server
            .wait_for_log(|l| l.contains("joined") && l.contains("203.0.113.9 via 127.0.0.1:"))
            .is_some(),
        "the log names the client: {}",
        server.log_text()
    );
    // Another client through the same proxy is another address: the limit
    // of one connection per address lets it in, and others see where it is.
    let mut bob = connected(
        PROXY,
        server.addr,
        b"",
        &[("X-Forwarded-For", "198.51.100.4")],
    );
    assert_eq!(location(&mut bob, "bob"), "198.51.100.4");
    let joined = alice.recv_type("loginBroadcast");
    assert_eq!(
        (&joined["username"], &joined["location"]),
        (&json!("bob"), &json!("198.51.100.4"))
    );
    // The same client again is past the limit.
    let again = connect(
        PROXY,
        server.addr,
        b"",
        &[("X-Forwarded-For", "198.51.100.4")],
    );
    assert_eq!(again.err().map(|(status, _)| status), Some(503));
    // A proxy that writes garbage where the client's address should be is
    // refused, rather than guessed at.
    let (status, body) = connect(
        PROXY,
        server.addr,
        b"",
        &[("X-Forwarded-For", "203.0.113.7, junk")],
    )
    .err()
    .expect("refused");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("X-Forwarded-For"), "{body}");
}

#[test]
fn x_forwarded_for_from_a_peer_that_is_not_trusted_is_ignored() {
    let server = ServerProcess::start(&[
        "--trusted-proxies",
        "127.0.0.1",
        "--max-connections-per-ip",
        "1",
    ]);
    let mut eve = connected(
        STRANGER,
        server.addr,
        b"",
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(location(&mut eve, "eve"), "127.0.0.2");
    // Nor does it lift the limit, whatever address it claims.
    let again = connect(
        STRANGER,
        server.addr,
        b"",
        &[("X-Forwarded-For", "198.51.100.4")],
    );
    assert_eq!(again.err().map(|(status, _)| status), Some(503));
    // And it is not looked at: garbage changes nothing either.
    drop(eve);
    let garbage = ServerProcess::start(&["--trusted-proxies", "127.0.0.1"]);
    let mut mallory = connected(STRANGER, garbage.addr, b"", &[("X-Forwarded-For", "junk")]);
    assert_eq!(location(&mut mallory, "mallory"), "127.0.0.2");
    // Without --trusted-proxies no one is believed, 127.0.0.1 included.
    let plain = ServerProcess::start(&[]);
    let mut carol = connected(
        PROXY,
        plain.addr,
        b"",
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(location(&mut carol, "carol"), "127.0.0.1");
}

#[test]
fn a_forwarded_header_from_a_trusted_proxy_is_the_clients_address() {
    let server = ServerProcess::start(&[
        "--trusted-proxies",
        "127.0.0.1",
        "--client-ip-header",
        "forwarded",
    ]);
    let forwarded = r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https;host="chat.example""#;
    let mut alice = connected(PROXY, server.addr, b"", &[("Forwarded", forwarded)]);
    assert_eq!(location(&mut alice, "alice"), "2001:db8::7");
    let mut eve = connected(
        STRANGER,
        server.addr,
        b"",
        &[("Forwarded", "for=203.0.113.9")],
    );
    assert_eq!(location(&mut eve, "eve"), "127.0.0.2");
    // Only the header chosen: the proxy passes X-Forwarded-For on as the
    // client wrote it.
    let mut bob = connected(
        PROXY,
        server.addr,
        b"",
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(location(&mut bob, "bob"), "127.0.0.1");
    // The proxy did not know the client: the address is the proxy's.
    let mut carol = connected(
        PROXY,
        server.addr,
        b"",
        &[("Forwarded", "for=6.6.6.6,for=unknown")],
    );
    assert_eq!(location(&mut carol, "carol"), "127.0.0.1");
}

#[test]
fn a_proxy_v2_header_from_a_trusted_balancer_is_the_clients_address() {
    let server = ServerProcess::start(&["--trusted-proxies", "127.0.0.1", "--proxy-protocol"]);
    let v2 = proxy_v2(addr("203.0.113.9:4711"), server.addr);
    let mut alice = connected(PROXY, server.addr, &v2, &[]);
    assert_eq!(location(&mut alice, "alice"), "203.0.113.9");
    let v6 = proxy_v2(addr("[2001:db8::7]:4711"), addr("[2001:db8::1]:443"));
    let mut bob = connected(PROXY, server.addr, &v6, &[]);
    assert_eq!(location(&mut bob, "bob"), "2001:db8::7");
    // From the balancer, a connection without the header is closed: the
    // protocol forbids guessing whether one is there.
    assert_eq!(
        connect(PROXY, server.addr, b"", &[]).err(),
        Some((0, String::new()))
    );
    assert!(
        server
            .wait_for_log(|l| l.contains("closing a connection from a trusted proxy")
                && l.contains("no PROXY header"))
            .is_some(),
        "{}",
        server.log_text()
    );
    // From anyone else the header is not taken: a clear 400, the address
    // it claims never used; a plain connection is served as ever.
    let (status, body) = connect(STRANGER, server.addr, &v2, &[])
        .err()
        .expect("refused");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("PROXY protocol header"), "{body}");
    let mut eve = connected(STRANGER, server.addr, b"", &[]);
    assert_eq!(location(&mut eve, "eve"), "127.0.0.2");
}

#[test]
fn a_proxy_v1_header_from_a_trusted_balancer_is_the_clients_address() {
    let server = ServerProcess::start(&["--trusted-proxies", "127.0.0.1", "--proxy-protocol"]);
    let v1 = format!(
        "PROXY TCP4 203.0.113.9 127.0.0.1 4711 {}\r\n",
        server.addr.port()
    );
    let mut alice = connected(PROXY, server.addr, v1.as_bytes(), &[]);
    assert_eq!(location(&mut alice, "alice"), "203.0.113.9");
    let v6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n";
    let mut bob = connected(PROXY, server.addr, v6, &[]);
    assert_eq!(location(&mut bob, "bob"), "2001:db8::7");
    let (status, body) = connect(STRANGER, server.addr, v1.as_bytes(), &[])
        .err()
        .expect("refused");
    assert_eq!(status, 400, "{body}");
    // A malformed header from the balancer: closed, nothing served.
    let bad = b"PROXY TCP4 203.0.113.999 127.0.0.1 4711 80\r\n";
    assert_eq!(
        connect(PROXY, server.addr, bad, &[]).err(),
        Some((0, String::new()))
    );
}

#[test]
fn a_trusted_proxy_behind_a_balancer_is_believed_and_an_untrusted_client_is_not() {
    // HAProxy (PROXY protocol) in front of nginx (X-Forwarded-For): the
    // PROXY header's source is the hop that wrote the header.
    let server = ServerProcess::start(&[
        "--trusted-proxies",
        "127.0.0.1,10.0.0.0/8",
        "--proxy-protocol",
    ]);
    let via_nginx = proxy_v2(addr("10.0.0.5:4711"), server.addr);
    let mut alice = connected(
        PROXY,
        server.addr,
        &via_nginx,
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(location(&mut alice, "alice"), "203.0.113.9");
    // A client straight through the balancer writes its own header.
    let direct = proxy_v2(addr("198.51.100.4:4711"), server.addr);
    let mut eve = connected(
        PROXY,
        server.addr,
        &direct,
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(location(&mut eve, "eve"), "198.51.100.4");
}

#[test]
fn a_proxy_header_comes_before_tls() {
    // A load balancer passing TCP through (TLS ends at chat-server) puts
    // its header before the ClientHello.
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let server = ServerProcess::start(&[
        "--trusted-proxies",
        "127.0.0.1",
        "--proxy-protocol",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let mut tcp = tcp_from(PROXY, server.addr);
    tcp.write_all(&proxy_v2(addr("203.0.113.9:4711"), server.addr))
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = ServerName::IpAddress(server.addr.ip().into());
    let connection = ClientConnection::new(Arc::new(config), name).unwrap();
    let local_addr = tcp.local_addr().unwrap();
    let tls = StreamOwned::new(connection, tcp);
    let mut alice = Client::upgrade(tls, &format!("wss://{}/", server.addr), local_addr);
    assert_eq!(location(&mut alice, "alice"), "203.0.113.9");
}
