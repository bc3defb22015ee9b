//! A node and its Redis (issue 21, item 13), over real processes: a node
//! started while Redis is away listens at once (probes answered, chat
//! handshakes refused until it can start the chat from Redis) and a
//! SIGTERM while it waits ends it cleanly; a node on `rediss://`, Debian's
//! redis-server serving TLS with a certificate the test makes; a logout
//! heard after a fresh claim of the same name leaves the new holder be.
#![cfg(all(feature = "server", target_os = "linux"))]

mod net;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use net::redis::RedisServer;
use net::*;
use serde_json::json;

/// A node on the Redis at `url`, started but perhaps not listening yet.
fn launch_node(url: &str, extra: &[&str]) -> ServerProcess {
    let args = [&["--redis-url", url, "--node-timeout", "1s"][..], extra].concat();
    ServerProcess::launch(&args)
}

/// A WebSocket upgrade as a browser sends it: the status of the answer.
fn handshake_status(addr: std::net::SocketAddr) -> u16 {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    http(addr, &request).status
}

/// Polls `/readyz` until it answers 200.
fn wait_ready(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let readyz = http_get(addr, "/readyz");
        if readyz.status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "never ready: {}", readyz.body);
        thread::sleep(Duration::from_millis(50));
    }
}

/// Logs in as `name` (v2) and says `text`: the seq it got.
fn login_and_say(addr: std::net::SocketAddr, name: &str, text: &str) -> u64 {
    let mut client = Client::connect_v2(addr);
    client.send_json(json!({"type": "login", "id": "l", "username": name}));
    let reply = client.reply_to("l");
    assert_eq!(reply["type"], "loginMessage", "{reply}");
    client.send_json(json!({"type": "textFromUser", "id": "m", "text": text}));
    let said = client.reply_to("m");
    said["seq"].as_u64().unwrap_or_else(|| panic!("{said}"))
}

#[test]
fn a_node_started_while_redis_is_down_listens_at_once_and_starts_when_it_answers() {
    let port = RedisServer::unused_port();
    let mut node = launch_node(&format!("redis://127.0.0.1:{port}"), &[]);
    node.wait_listening();
    node.wait_for_log(|l| l.contains("waiting for Redis"))
        .expect("it says it waits");
    // Alive, not ready (the chat's port says no more than that; the log
    // says why), and no one is let in meanwhile.
    assert_eq!(http_get(node.addr, "/healthz").status, 200);
    let readyz = http_get(node.addr, "/readyz");
    assert_eq!(readyz.status, 503, "{}", readyz.body);
    assert_eq!(readyz.body, "not ready\n");
    let place = format!("waiting for Redis at redis://127.0.0.1:{port}");
    assert!(
        node.has_logged(|l| l.contains(&place)),
        "{}",
        node.log_text()
    );
    assert_eq!(handshake_status(node.addr), 503);

    let _redis = RedisServer::start_on(port);
    wait_ready(node.addr);
    assert_eq!(login_and_say(node.addr, "alice", "hello"), 1);
    let log = node.log_text();
    assert_eq!(log.matches("waiting for Redis").count(), 1, "{log}");
    let listening = log.find("listening on").unwrap();
    assert!(listening < log.find("this is node").unwrap(), "{log}");
}

#[test]
fn a_sigterm_while_waiting_for_redis_ends_the_node_cleanly() {
    let port = RedisServer::unused_port();
    let mut node = launch_node(&format!("redis://127.0.0.1:{port}"), &[]);
    node.wait_listening();
    // Seen retrying at least twice: well into the wait.
    let address = format!("127.0.0.1:{port}");
    let tried = node.wait_for_nth_log(2, |l| l.contains("Redis at") && l.contains(&address));
    assert!(tried.is_some(), "{}", node.log_text());
    node.terminate();
    let status = node.wait_exit();
    assert!(status.success(), "{status}: {}", node.log_text());
}

/// Debian's redis-server serving TLS only, on a free port, with a
/// certificate (for 127.0.0.1, signed by a CA) the test makes; killed
/// by its PID when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
    /// The CA's certificate, for the node to trust.
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    fn start() -> TlsRedis {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(path("cert.pem"), cert.pem()).unwrap();
        std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
        let port = RedisServer::unused_port();
        let arg = |p: &Path| p.to_str().unwrap().to_owned();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--tls-auth-clients", "no"])
            .args(["--tls-cert-file", &arg(&path("cert.pem"))])
            .args(["--tls-key-file", &arg(&path("key.pem"))])
            .args(["--tls-ca-cert-file", &arg(&path("ca.pem"))])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--logfile", "", "--daemonize", "no"])
            .args(["--dir", &arg(dir.path())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (Debian's, built with TLS)");
        TlsRedis {
            child,
            port,
            ca: path("ca.pem"),
            _dir: dir,
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_node_on_rediss_trusting_the_servers_ca_chats() {
    let redis = TlsRedis::start();
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    command.args(["--listen", "127.0.0.1:0", "--redis-url", &url]);
    command.env("SSL_CERT_FILE", &redis.ca);
    let mut node = ServerProcess::spawn(command);
    node.wait_listening();
    node.wait_for_log(|l| l.contains("this is node"))
        .unwrap_or_else(|| panic!("never joined: {}", node.log_text()));
    wait_ready(node.addr);
    assert_eq!(login_and_say(node.addr, "alice", "over TLS"), 1);
    assert!(node.has_logged(|l| l.contains(&format!("Redis at {url}"))));
}

#[test]
fn a_logout_heard_after_a_fresh_claim_of_the_name_leaves_the_new_holder_be() {
    let redis = RedisServer::start();
    let mut node = launch_node(&redis.url(), &[]);
    node.wait_listening();
    wait_ready(node.addr);
    let mut bob = Client::connect_v2(node.addr);
    bob.send_json(json!({"type": "login", "id": "l", "username": "alice"}));
    let reply = bob.reply_to("l");
    assert_eq!(reply["type"], "loginMessage", "{reply}");
    // What another node's LOGOUT publishes when its alice logged out just
    // before bob claimed her freed name here: heard after bob's claim, as
    // it may be (the reply and the event come on two connections). Its
    // secret is the old holder's, not bob's.
    let stale = json!(["o", "elsewhere", "alice", "alice", "0".repeat(64)]).to_string();
    let heard = redis.command(&["PUBLISH", "wschat:events", &stale]);
    assert_eq!(heard, "1", "the node listens on the channel");
    thread::sleep(Duration::from_millis(500));
    bob.send_json(json!({"type": "textFromUser", "id": "m", "text": "still here"}));
    let said = bob.reply_to("m");
    assert_eq!(said["type"], "textBroadcast", "{said}");
    assert_eq!(said["username"], "alice", "{said}");
}

/// The text of the Lua constant `name` in src/serve/cluster/scripts.rs,
/// as the node loads it: `r#"…"#`.
fn lua_source(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/serve/cluster/scripts.rs");
    let source = std::fs::read_to_string(path).expect("read scripts.rs");
    let start = format!("const {name}: &str = r#\"");
    let (_, rest) = source.split_once(&start).expect("the constant");
    let (body, _) = rest.split_once("\"#;").expect("its end");
    body.to_owned()
}

#[test]
fn a_stale_logout_never_frees_a_name_claimed_afresh_since() {
    let redis = RedisServer::start();
    let mut node = launch_node(&redis.url(), &[]);
    node.wait_listening();
    wait_ready(node.addr);
    let mut bob = Client::connect_v2(node.addr);
    bob.send_json(json!({"type": "login", "id": "l", "username": "alice"}));
    let reply = bob.reply_to("l");
    assert_eq!(reply["type"], "loginMessage", "{reply}");
    // The LOGOUT another node sends for its alice, whose name was freed
    // (swept, expired) and claimed afresh by bob since: her old secret.
    let code = format!("{}{}", lua_source("PRELUDE"), lua_source("LOGOUT"));
    let stale = "0".repeat(64);
    // Scripts act only for a node Redis knows (else "keys lost"): this one.
    let known = redis.command(&["ZRANGE", "wschat:nodes", "0", "0"]);
    let freed = redis.command(&[
        "EVAL",
        &code,
        "3",
        "wschat:name:alice",
        "wschat:online",
        "wschat:nodes",
        "alice",
        &stale,
        &known,
        "alice",
        "wschat:",
        "wschat:events",
    ]);
    assert_eq!(freed, "0", "a stale logout freed the name");
    assert_eq!(
        redis.command(&["HGET", "wschat:name:alice", "display"]),
        "alice"
    );
    assert_eq!(redis.command(&["HGET", "wschat:online", "alice"]), "1");
    bob.send_json(json!({"type": "textFromUser", "id": "m", "text": "still here"}));
    let said = bob.reply_to("m");
    assert_eq!(said["type"], "textBroadcast", "{said}");
}
