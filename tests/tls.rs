//! wss:// on 127.0.0.1: `chat-server --tls-cert --tls-key` with a
//! self-signed certificate made at test time (rcgen), and clients that
//! trust it — the tests' WebSocket client over rustls, `chat-cli
//! --ca-file` — or do not. Every wait is bounded; every child is killed
//! when dropped.
#![cfg(all(feature = "server", feature = "cli"))]

mod clients;
mod net;

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use wschat::serve::{BindError, ChatServer, Options};

use clients::{Cli, run_script, state_dir};
use net::{Client, ServerProcess};

/// Longest any single wait may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files.
struct Certificate {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

impl Certificate {
    fn new() -> Certificate {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("a self-signed certificate");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        Certificate {
            dir,
            cert,
            key,
            der: made.cert.der().clone(),
        }
    }

    fn server_args(&self) -> [&str; 4] {
        [
            "--tls-cert",
            path_str(&self.cert),
            "--tls-key",
            path_str(&self.key),
        ]
    }

    /// The server, with debug logs, serving wss:// with this certificate.
    fn start_server(&self) -> ServerProcess {
        let server = ServerProcess::start(&self.server_args());
        let url = format!("listening on wss://{}", server.addr);
        assert!(
            server.has_logged(|l| l.contains(&url)),
            "{}",
            server.log_text()
        );
        server
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// TLS over TCP: what the shared WebSocket client runs on for wss://.
type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection to `addr` trusting only `roots`, its handshake done:
/// rustls on a blocking TCP stream whose every read and write is bounded.
fn tls(addr: SocketAddr, roots: RootCertStore) -> io::Result<Tls> {
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring does TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    tcp.set_read_timeout(Some(TIMEOUT))?;
    tcp.set_write_timeout(Some(TIMEOUT))?;
    let name = ServerName::IpAddress(addr.ip().into());
    let connection = ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// The tests' WebSocket client over wss://, trusting only `trusted`.
fn wss_client(addr: SocketAddr, trusted: &CertificateDer<'static>) -> Client<Tls> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.clone()).expect("a usable trust anchor");
    let tls = tls(addr, roots).expect("a trusted TLS handshake");
    let local_addr = tls.sock.local_addr().unwrap();
    Client::upgrade(tls, &format!("wss://{addr}/"), local_addr)
}

#[test]
fn a_plain_websocket_client_and_chat_cli_chat_over_wss() {
    let certificate = Certificate::new();
    let server = certificate.start_server();
    let url = format!("wss://{}", server.addr);

    let mut alice = wss_client(server.addr, &certificate.der);
    alice.login("alice");

    let state = state_dir();
    let mut bob = Cli::spawn(
        state.path(),
        &[
            &url,
            "--name",
            "bob",
            "--ca-file",
            path_str(&certificate.cert),
        ],
    );
    bob.send("hi alice, over TLS");
    bob.expect_stdout("bob (you): hi alice, over TLS");
    let heard = alice.recv_type("textBroadcast");
    assert_eq!(
        (heard["username"].as_str(), heard["message"].as_str()),
        (Some("bob"), Some("hi alice, over TLS"))
    );

    alice.say("hi bob");
    bob.expect_stdout("alice: hi bob");
    assert_eq!(alice.recv_type("textBroadcast")["message"], "hi bob");
    let bob = bob.finish();
    assert!(bob.status.success(), "{bob:?}");
    assert_eq!(bob.stderr, Vec::<String>::new());

    // The environment variables do what the flags do.
    let state = state_dir();
    let mut carol = clients::chat_cli(state.path(), &["--name", "carol"]);
    carol
        .env("CHAT_URL", &url)
        .env("CHAT_CA_FILE", &certificate.cert);
    let mut carol = Cli::from_command(carol);
    carol.send("me too");
    carol.expect_stdout("carol (you): me too");
    assert_eq!(alice.recv_type("textBroadcast")["username"], "carol");
    assert!(carol.finish().status.success());
}

#[test]
fn a_client_that_does_not_trust_the_certificate_fails_clearly() {
    let certificate = Certificate::new();
    let server = certificate.start_server();
    let url = format!("wss://{}", server.addr);

    // Trusting the web PKI is not trusting a self-signed certificate.
    let web_pki = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let error = tls(server.addr, web_pki).expect_err("an untrusted certificate");
    let cause = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(
            cause,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{error:?}"
    );

    // chat-cli without --ca-file: one line that says what to do, exit 1.
    let state = state_dir();
    let out = run_script(state.path(), &[&url, "--name", "bob"], "hi\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stderr.len(), 1, "{out:?}");
    let line = &out.stderr[0];
    assert!(
        line.starts_with(&format!("chat-cli: could not connect to {url}: ")),
        "{line}"
    );
    assert!(line.contains("not signed by an authority"), "{line}");
    assert!(line.contains("--ca-file"), "{line}");
    assert_eq!(out.stdout, Vec::<String>::new());

    // The server logged the failed handshakes and carries on.
    assert!(
        server
            .wait_for_log(|l| l.contains("TLS handshake failed"))
            .is_some(),
        "{}",
        server.log_text()
    );
    let mut alice = wss_client(server.addr, &certificate.der);
    alice.login("alice");
}

#[test]
fn a_ca_certificate_as_the_servers_own_is_explained() {
    // What `openssl req -x509` makes by default: a self-signed CA:TRUE.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let made = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key_file) = (dir.path().join("ca.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let server = ServerProcess::start(&[
        "--tls-cert",
        path_str(&cert),
        "--tls-key",
        path_str(&key_file),
    ]);

    let url = format!("wss://{}", server.addr);
    let state = state_dir();
    let out = run_script(
        state.path(),
        &[&url, "--name", "bob", "--ca-file", path_str(&cert)],
        "hi\n",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stderr.len(), 1, "{out:?}");
    assert!(out.stderr[0].contains("made with CA:FALSE"), "{out:?}");
}

#[test]
fn ws_and_wss_mixed_up_are_refused_without_harm() {
    let certificate = Certificate::new();
    let tls_server = certificate.start_server();

    // A plain WebSocket client on the TLS port: no upgrade.
    let tcp = TcpStream::connect_timeout(&tls_server.addr, TIMEOUT).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
    let upgrade = tungstenite::client(format!("ws://{}/", tls_server.addr), tcp);
    assert!(upgrade.is_err(), "a plain upgrade on the TLS port");
    let logged = tls_server.wait_for_log(|l| l.contains("TLS handshake failed"));
    assert!(logged.is_some(), "{}", tls_server.log_text());
    let mut alice = wss_client(tls_server.addr, &certificate.der);
    alice.login("alice");

    // chat-cli too, and it suggests wss://.
    let url = format!("ws://{}", tls_server.addr);
    let state = state_dir();
    let out = run_script(state.path(), &[&url, "--name", "bob"], "hi\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stderr.len(), 1, "{out:?}");
    assert!(
        out.stderr[0].ends_with("; if the server uses TLS, try wss://"),
        "{out:?}"
    );

    // chat-cli asking for TLS from a plain server says so.
    let plain_server = clients::Server::start(&[]);
    let url = plain_server.url().replace("ws://", "wss://");
    let state = state_dir();
    let out = run_script(state.path(), &[&url, "--name", "bob"], "hi\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        [format!(
            "chat-cli: could not connect to {url}: the server does not speak TLS; \
             try ws:// instead of wss://"
        )]
    );
}

#[test]
fn silent_peers_are_dropped_at_the_handshake_timeout() {
    let certificate = Certificate::new();
    let server = certificate.start_server();
    // One says nothing at all; the other completes TLS, then says nothing.
    let mut silent = TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap();
    silent.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(certificate.der.clone()).unwrap();
    let mut after_tls = tls(server.addr, roots).expect("a TLS handshake");

    // The server hangs up on both (end of stream, or a reset); the one
    // that got as far as HTTP is told 408 first.
    let mut byte = [0; 1];
    match silent.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the server to hang up, got {other:?}"),
    }
    let mut answer = Vec::new();
    let read = after_tls.read_to_end(&mut answer).map(|_| answer);
    match read {
        Ok(answer) => assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 408 "),
            "{:?}",
            String::from_utf8_lossy(&answer)
        ),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "no hang-up in time: {e}"
        ),
    }

    for timed_out in ["TLS handshake timed out", "request head timed out"] {
        let logged = server.wait_for_log(|l| l.contains(timed_out));
        assert!(logged.is_some(), "{timed_out}: {}", server.log_text());
    }
}

#[test]
fn bad_certificates_or_keys_stop_chat_server_before_it_listens() {
    let certificate = Certificate::new();
    let other = Certificate::new();
    let dir = certificate.dir.path();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN PRIVATE KEY-----\nnot base64!\n").unwrap();
    let missing = dir.join("missing.pem");
    let cert = path_str(&certificate.cert);

    for (key, reason) in [
        (&garbage, "is not valid PEM"),
        (&missing, "cannot read the TLS key"),
        (&other.key, "does not match the certificate"),
        (&certificate.cert, "no private key in"),
    ] {
        let (status, stderr) =
            ServerProcess::run_to_exit(&["--tls-cert", cert, "--tls-key", path_str(key)]);
        assert_eq!(status.code(), Some(1), "{key:?}: {stderr:?}");
        assert_eq!(stderr.len(), 1, "one line: {stderr:?}");
        let line = &stderr[0];
        assert!(line.starts_with("chat-server: "), "{line}");
        assert!(line.contains(reason), "{line}");
        assert!(line.contains(path_str(key)), "names the file: {line}");
    }

    let (status, stderr) = ServerProcess::run_to_exit(&[
        "--tls-cert",
        path_str(&missing),
        "--tls-key",
        path_str(&certificate.key),
    ]);
    assert_eq!(status.code(), Some(1), "{stderr:?}");
    assert!(stderr[0].contains(path_str(&missing)), "{stderr:?}");

    // One file without the other is a usage error.
    let (status, stderr) = ServerProcess::run_to_exit(&["--tls-cert", cert]);
    assert_eq!(status.code(), Some(2), "{stderr:?}");
    assert!(stderr.iter().any(|l| l.contains("--tls-key")), "{stderr:?}");
}

#[test]
fn the_library_refuses_half_a_tls_setup_and_serves_a_whole_one() {
    let certificate = Certificate::new();
    let options = Options {
        listen: ([127, 0, 0, 1], 0).into(),
        threads: std::num::NonZeroUsize::new(1),
        in_memory: true,
        tls_cert: Some(certificate.cert.clone()),
        ..Options::default()
    };
    // Not served as plain ws://, which a wss:// client would not expect.
    let refused = ChatServer::bind(options.clone()).unwrap_err();
    assert!(matches!(refused, BindError::TlsIncomplete), "{refused}");

    let whole = Options {
        tls_key: Some(certificate.key.clone()),
        ..options
    };
    let server = ChatServer::bind(whole).unwrap();
    assert_eq!(server.scheme(), "wss");
    let server = server.spawn().unwrap();
    let mut alice = wss_client(server.local_addr(), &certificate.der);
    alice.login("alice");
}
