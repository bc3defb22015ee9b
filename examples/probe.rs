//! Quick measurements against a running `chat-server` (a stopgap until the
//! load generator of issue 6). Loopback only; stops by itself.
//!
//! ```text
//! probe idle   ADDR SERVER_PID N
//! probe fanout ADDR N SENDERS MESSAGES_PER_SENDER WINDOW
//! ```
//!
//! Both modes first connect N clients and log each in, then wait until
//! every client has read every `loginBroadcast` (N each), so the server is
//! idle. `idle` prints the server's VmRSS before and after. `fanout` makes
//! SENDERS of those clients send ~100-byte messages, each keeping at most
//! WINDOW of its own messages unechoed, and times until every client has
//! received every message (or 120 s have passed: then it reports the
//! deliveries that never came as lost).
//!
//! `PROBE_NO_LOGIN=1` skips the logins (idle sockets only);
//! `PROBE_HOLD_SECS=S` keeps the idle clients connected S more seconds;
//! `PROBE_CA_FILE=FILE` connects with wss:// (to `chat-server --tls-cert`),
//! trusting the certificates in FILE.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use futures_rustls::pki_types::ServerName;
use futures_rustls::rustls::{self, ClientConfig, RootCertStore};
use futures_util::StreamExt;
use futures_util::future::Either;
use smol::{Async, channel};

type Tcp = Async<TcpStream>;
type Ws = WebSocketStream<Either<Tcp, TlsStream<Tcp>>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str { args.get(i).map(String::as_str).unwrap_or_else(|| usage()) };
    let number = |i: usize| -> usize { arg(i).parse().unwrap_or_else(|_| usage()) };
    let addr: SocketAddr = arg(1).parse().unwrap_or_else(|_| usage());
    match arg(0) {
        "idle" => smol::block_on(idle(addr, number(2), number(3))),
        "fanout" => smol::block_on(fanout(addr, number(2), number(3), number(4), number(5))),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: probe idle ADDR SERVER_PID N\n       probe fanout ADDR N SENDERS MESSAGES WINDOW"
    );
    std::process::exit(2)
}

fn rss_kib(pid: usize) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

async fn idle(addr: SocketAddr, pid: usize, n: usize) {
    let before = rss_kib(pid);
    let clients = connect_and_log_in(addr, n).await;
    smol::Timer::after(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!(
        "idle connections={n} rss_before_kib={before} rss_after_kib={after} bytes_per_connection={per:.0}"
    );
    if let Some(secs) = std::env::var("PROBE_HOLD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        smol::Timer::after(Duration::from_secs(secs)).await;
    }
    drop(clients);
}

async fn fanout(addr: SocketAddr, n: usize, senders: usize, messages: usize, window: usize) {
    let clients = connect_and_log_in(addr, n).await;
    let delivered = Arc::new(AtomicU64::new(0));
    let expected = senders * messages;
    let (done_tx, done_rx) = channel::unbounded::<()>();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, ws) in clients.into_iter().enumerate() {
        let (mut sink, mut stream) = ws.split();
        let (tokens_tx, tokens_rx) = channel::unbounded::<()>();
        let me = format!("\"username\":\"u{i}\"");
        let delivered = delivered.clone();
        let done = done_tx.clone();
        let sending = i < senders;
        tasks.push(smol::spawn(async move {
            let mut seen = 0;
            while seen < expected {
                let Some(Ok(Message::Text(text))) = stream.next().await else {
                    panic!("client {i} lost after {seen} messages");
                };
                if text.starts_with("{\"type\":\"textBroadcast\"") {
                    seen += 1;
                    delivered.fetch_add(1, Ordering::Relaxed);
                    if sending && text.contains(&me) {
                        let _ = tokens_tx.send(()).await;
                    }
                }
            }
            let _ = done.send(()).await;
        }));
        if sending {
            tasks.push(smol::spawn(async move {
                let padding = "x".repeat(80);
                for seq in 0..messages {
                    if seq >= window {
                        let _ = tokens_rx.recv().await;
                    }
                    let text = format!(
                        r#"{{"type":"textFromUser","id":"m","text":"{seq:06} {padding}"}}"#
                    );
                    sink.send(Message::text(text)).await.expect("send");
                }
                std::future::pending::<()>().await;
            }));
        }
    }
    drop(done_tx);
    let all_done = async {
        for _ in 0..n {
            let _ = done_rx.recv().await;
        }
    };
    smol::future::or(all_done, async {
        smol::Timer::after(Duration::from_secs(120)).await;
    })
    .await;
    let elapsed = start.elapsed();
    let total = delivered.load(Ordering::Relaxed);
    let lost = (expected * n) as u64 - total;
    println!(
        "fanout clients={n} senders={senders} messages={expected} deliveries={total} lost={lost} seconds={:.3} deliveries_per_second={:.0}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    drop(tasks);
}

/// N logged-in clients (`u0`…), each having read all N `loginBroadcast`s.
async fn connect_and_log_in(addr: SocketAddr, n: usize) -> Vec<Ws> {
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let tls = tls_connector();
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let tcp = Async::<TcpStream>::connect(addr).await.expect("connect");
        let (url, stream) = match &tls {
            None => (format!("ws://{addr}/"), Either::Left(tcp)),
            Some(tls) => {
                let name = ServerName::IpAddress(addr.ip().into());
                let stream = tls.connect(name, tcp).await.expect("TLS handshake");
                (format!("wss://{addr}/"), Either::Right(stream))
            }
        };
        let (ws, _) = async_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .expect("upgrade");
        clients.push(ws);
    }
    if std::env::var_os("PROBE_NO_LOGIN").is_some() {
        return clients;
    }
    // Like real clients, every one reads all the time, also while the
    // others log in.
    let (senders, receivers): (Vec<_>, Vec<_>) = clients.into_iter().map(|ws| ws.split()).unzip();
    let drains: Vec<_> = receivers
        .into_iter()
        .map(|mut stream| {
            smol::spawn(async move {
                let (mut broadcasts, mut logged_in) = (0, false);
                while broadcasts < n || !logged_in {
                    match stream.next().await {
                        Some(Ok(Message::Text(t))) if t.contains("\"loginBroadcast\"") => {
                            broadcasts += 1
                        }
                        Some(Ok(Message::Text(t))) if t.contains("\"loginMessage\"") => {
                            logged_in = true
                        }
                        Some(Ok(_)) => {}
                        other => panic!("lost while logging in: {other:?}"),
                    }
                }
                stream
            })
        })
        .collect();
    let mut senders = senders;
    for (i, sink) in senders.iter_mut().enumerate() {
        let login = format!(r#"{{"type":"login","id":"l","username":"u{i}"}}"#);
        sink.send(Message::text(login)).await.expect("login");
    }
    let mut ready = Vec::with_capacity(n);
    for (sink, drain) in senders.into_iter().zip(drains) {
        let stream = drain.await;
        ready.push(WebSocketStream::reunite(sink, stream).expect("same socket"));
    }
    ready
}

/// With `PROBE_CA_FILE`, a TLS client trusting the certificates in it.
fn tls_connector() -> Option<TlsConnector> {
    let path = std::env::var_os("PROBE_CA_FILE")?;
    let mut roots = RootCertStore::empty();
    let certificates = wschat::tls::certificates(path.as_ref(), "CA certificate");
    for certificate in certificates.unwrap_or_else(|e| panic!("{e}")) {
        roots.add(certificate).expect("a usable CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring does TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(TlsConnector::from(Arc::new(config)))
}
