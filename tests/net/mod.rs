//! Real sockets on 127.0.0.1: the `chat-server` binary as a child process
//! (killed when dropped) and a blocking WebSocket client. Every wait is
//! bounded.
#![allow(dead_code)] // each test binary uses a different part

pub mod full_disk;
pub mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::de::{Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use tungstenite::protocol::Role;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// Longest any single wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The `chat-server` binary, running until dropped: the one way tests run
/// a server (over the network, as users do). Its log is captured.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    /// `ws` or `wss`, as the server logged.
    scheme: String,
    /// The flags it was started with, for `restart`.
    args: Vec<String>,
    log: Arc<Log>,
    /// Its data directory, unless the flags name one (or --in-memory):
    /// private to this server, kept across restarts, removed when dropped.
    data: Option<Arc<tempfile::TempDir>>,
}

#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
    /// The process closed its stderr (it exited).
    ended: AtomicBool,
}

impl ServerProcess {
    /// Starts `chat-server --listen 127.0.0.1:0 ARGS` with debug logs and
    /// waits for its "listening on ws://…" (or wss://) line.
    pub fn start(args: &[&str]) -> ServerProcess {
        ServerProcess::start_listening("127.0.0.1:0", args)
    }

    /// Starts on `port`, retrying briefly while the port is still held by
    /// a server that was just killed.
    pub fn start_on(port: u16, args: &[&str]) -> ServerProcess {
        let listen = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match ServerProcess::try_start(&listen, args) {
                Ok(server) => return server,
                Err(log) if Instant::now() < deadline => {
                    eprintln!("chat-server did not start, retrying: {log}");
                    thread::sleep(Duration::from_millis(200));
                }
                Err(log) => panic!("chat-server did not start: {log}"),
            }
        }
    }

    /// Starts with `--listen LISTEN ARGS`.
    pub fn start_listening(listen: &str, args: &[&str]) -> ServerProcess {
        ServerProcess::try_start(listen, args)
            .unwrap_or_else(|log| panic!("chat-server did not start: {log}"))
    }

    /// Starts again after a kill or an exit, on the same port with the same
    /// flags and the same data.
    pub fn restart(&mut self) {
        self.kill();
        let data = self.data.take();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let port = self.addr.port();
        let deadline = Instant::now() + TIMEOUT;
        let server = loop {
            match ServerProcess::try_start_with(&format!("127.0.0.1:{port}"), &args, data.clone()) {
                Ok(server) => break server,
                Err(log) if Instant::now() < deadline => {
                    eprintln!("chat-server did not restart, retrying: {log}");
                    thread::sleep(Duration::from_millis(200));
                }
                Err(log) => panic!("chat-server did not restart: {log}"),
            }
        };
        *self = server;
    }

    /// The data directory the server keeps its store in, if the test did
    /// not choose one.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data.as_deref().map(tempfile::TempDir::path)
    }

    fn try_start(listen: &str, args: &[&str]) -> Result<ServerProcess, String> {
        let data = needs_data_dir(args).then(|| Arc::new(tempfile::tempdir().expect("a temp dir")));
        ServerProcess::try_start_with(listen, args, data)
    }

    fn try_start_with(
        listen: &str,
        args: &[&str],
        data: Option<Arc<tempfile::TempDir>>,
    ) -> Result<ServerProcess, String> {
        let command = chat_server(listen, args, data.as_deref());
        let args = args.iter().map(|a| a.to_string()).collect();
        ServerProcess::from_command(command, args, data)
    }

    /// Starts chat-server as `command` says (it must give `--listen`), for
    /// a test that needs to set up the process itself; it is not restarted.
    pub fn spawn(command: Command) -> ServerProcess {
        ServerProcess::from_command(command, Vec::new(), None)
            .unwrap_or_else(|log| panic!("chat-server did not start: {log}"))
    }

    /// Runs `command`, its log captured, without waiting for anything.
    fn spawned(
        mut command: Command,
        args: Vec<String>,
        data: Option<Arc<tempfile::TempDir>>,
    ) -> ServerProcess {
        // Debug logs, unless the test chose a level itself.
        if !command.get_envs().any(|(key, _)| key == "RUST_LOG") {
            command.env("RUST_LOG", "wschat=debug");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-server");
        let log = capture(child.stderr.take().expect("piped stderr"));
        ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            scheme: String::new(),
            args,
            log,
            data,
        }
    }

    fn from_command(
        command: Command,
        args: Vec<String>,
        data: Option<Arc<tempfile::TempDir>>,
    ) -> Result<ServerProcess, String> {
        let mut server = ServerProcess::spawned(command, args, data);
        server.listening()?;
        Ok(server)
    }

    /// Starts `chat-server --listen 127.0.0.1:0 ARGS` without waiting for
    /// it to listen, for a test that watches what it does before
    /// (`wait_listening` then waits).
    pub fn launch(args: &[&str]) -> ServerProcess {
        let data = needs_data_dir(args).then(|| Arc::new(tempfile::tempdir().expect("a temp dir")));
        let command = chat_server("127.0.0.1:0", args, data.as_deref());
        let args = args.iter().map(|a| a.to_string()).collect();
        ServerProcess::spawned(command, args, data)
    }

    /// Waits for a `launch`ed server's "listening on …" line.
    pub fn wait_listening(&mut self) {
        self.listening()
            .unwrap_or_else(|log| panic!("chat-server did not start: {log}"));
    }

    /// Waits for "listening on …" (or chat-server's one line of failure)
    /// and takes the address from it; the log, if it did not listen.
    fn listening(&mut self) -> Result<(), String> {
        let line = self
            .wait_for_log(|l| l.contains("listening on ") || l.contains("chat-server: "))
            .ok_or_else(|| self.log_text())?;
        let (scheme, addr) =
            address_after(&line, "listening on ").ok_or_else(|| self.log_text())?;
        self.scheme = scheme;
        self.addr = addr;
        Ok(())
    }

    /// Where `--admin-listen` serves /healthz, /readyz and /metrics, as the
    /// server logged it.
    pub fn admin_addr(&self) -> SocketAddr {
        let marker = "/metrics on ";
        let line = self
            .wait_for_log(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no admin address logged:\n{}", self.log_text()));
        let (scheme, addr) =
            address_after(&line, marker).unwrap_or_else(|| panic!("no address in {line:?}"));
        assert_eq!(scheme, "http");
        addr
    }

    /// Runs chat-server with `args` until it exits by itself (killed if it
    /// does not within `TIMEOUT`): its status and its log lines.
    pub fn run_to_exit(args: &[&str]) -> (ExitStatus, Vec<String>) {
        let mut server = ServerProcess::launch(args);
        let status = server.wait_exit();
        // The log ends at EOF, right after the exit.
        let deadline = Instant::now() + TIMEOUT;
        while !server.log.ended.load(Ordering::Acquire) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let lines = server.log.lines.lock().unwrap().clone();
        (status, lines)
    }

    /// `ws://127.0.0.1:PORT` (or `wss://`).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The first log line matching `pred`, waiting up to `TIMEOUT` (or
    /// until the server exits).
    pub fn wait_for_log(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.wait_for_nth_log(1, pred)
    }

    /// The `n`th log line matching `pred`, waiting up to `TIMEOUT` (or
    /// until the server exits).
    pub fn wait_for_nth_log(&self, n: usize, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().filter(|l| pred(l)).nth(n - 1) {
                return Some(line.clone());
            }
            if self.log.ended.load(Ordering::Acquire) {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.log.grew.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// The server's process id (for /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether a log line matching `pred` has been seen yet.
    pub fn has_logged(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.log.lines.lock().unwrap().iter().any(|l| pred(l))
    }

    pub fn log_text(&self) -> String {
        self.log.lines.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Kills the server outright (SIGKILL), as a crash would, and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `TIMEOUT` for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for chat-server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "chat-server did not exit; its log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The chat-server command listening on `listen` with `args`, keeping its
/// store in `data` if given.
fn chat_server(listen: &str, args: &[&str], data: Option<&tempfile::TempDir>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    command.args(["--listen", listen]);
    if let Some(data) = data {
        command.arg("--data-dir").arg(data.path().join("data"));
    }
    command.args(args);
    command
}

/// The `SCHEME://IP:PORT` after `marker` in a log line, text or JSON.
fn address_after(line: &str, marker: &str) -> Option<(String, SocketAddr)> {
    let (_, rest) = line.split_once(marker)?;
    let (scheme, rest) = rest.split_once("://")?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || ".:[]".contains(*c))
        .collect();
    Some((scheme.to_owned(), addr.parse().ok()?))
}

/// Whether a server started with `args` needs a data directory of its own:
/// it would otherwise keep its store in the working directory.
fn needs_data_dir(args: &[&str]) -> bool {
    !args
        .iter()
        .any(|a| ["--data-dir", "--in-memory", "--redis-url"].contains(a))
}

/// Collects the lines of `stderr` for the child's whole life, so that it
/// never blocks on a full pipe; ends at EOF when the child exits.
fn capture(stderr: impl Read + Send + 'static) -> Arc<Log> {
    let log = Arc::new(Log::default());
    thread::spawn({
        let log = log.clone();
        move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log.lines.lock().unwrap().push(line);
                log.grew.notify_all();
            }
            log.ended.store(true, Ordering::Release);
            log.grew.notify_all();
        }
    });
    log
}

/// A blocking WebSocket client whose every read times out after `TIMEOUT`:
/// the one WebSocket client of the tests, over plain TCP (`S` by default)
/// or over TLS on a TCP stream whose timeouts are set
/// (`Client::upgrade`).
pub struct Client<S = TcpStream> {
    pub ws: WebSocket<S>,
    pub local_addr: SocketAddr,
    /// Text frames received so far.
    pub texts_received: u64,
}

impl<S> Client<S> {
    pub fn new(ws: WebSocket<S>, local_addr: SocketAddr) -> Client<S> {
        Client {
            ws,
            local_addr,
            texts_received: 0,
        }
    }
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::connect_to(addr, "/")
    }

    pub fn connect_to(addr: SocketAddr, path: &str) -> Client {
        let tcp = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        Client::over_tcp(tcp, &format!("ws://{addr}{path}"))
    }

    /// Upgrades `tcp`, connected already (from an address of the test's
    /// choosing, say), to a WebSocket at `url`.
    pub fn over_tcp(tcp: TcpStream, url: &str) -> Client {
        let local_addr = bounded(&tcp);
        Client::upgrade(tcp, url, local_addr)
    }

    /// A v2 client, or `None` where the server cannot be reached or does
    /// not upgrade, for a test in which the server may die at any moment.
    pub fn try_connect_v2(addr: SocketAddr) -> Option<Client> {
        let tcp = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
        let local_addr = bounded(&tcp);
        let request = tungstenite::ClientRequestBuilder::new(format!("ws://{addr}/").parse().ok()?)
            .with_sub_protocol("wschat.v2");
        let (ws, _) = tungstenite::client(request, tcp).ok()?;
        Some(Client::new(ws, local_addr))
    }

    /// Upgrades with a hand-written request carrying one
    /// `Sec-WebSocket-Protocol` header per entry of `offers`, and returns
    /// the subprotocol the server selected. (tungstenite's own client fails
    /// any handshake in which the server selects none of those offered, so
    /// it cannot show that answer.)
    pub fn connect_offering(addr: SocketAddr, offers: &[&str]) -> (Client, Option<String>) {
        let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        let local_addr = bounded(&tcp);
        let key = tungstenite::handshake::client::generate_key();
        let mut request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
        );
        for offer in offers {
            request.push_str(&format!("Sec-WebSocket-Protocol: {offer}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).expect("send the upgrade");
        // Byte by byte: what follows the head is the WebSocket's.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            assert!(head.len() < 16 * 1024, "no end to the response head");
            let mut byte = [0];
            tcp.read_exact(&mut byte).expect("the upgrade's response");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).expect("a UTF-8 response head");
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        let header = |name: &str| -> Vec<String> {
            head.lines()
                .filter_map(|line| line.split_once(':'))
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim().to_owned())
                .collect()
        };
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        assert_eq!(header("Sec-WebSocket-Accept"), [accept], "{head}");
        let mut selected = header("Sec-WebSocket-Protocol");
        assert!(selected.len() <= 1, "{head}");
        let ws = WebSocket::from_raw_socket(tcp, Role::Client, None);
        (Client::new(ws, local_addr), selected.pop())
    }

    /// A client that offered `wschat.v2` and got it.
    pub fn connect_v2(addr: SocketAddr) -> Client {
        let (client, selected) = Client::connect_offering(addr, &["wschat.v2"]);
        assert_eq!(selected.as_deref(), Some("wschat.v2"));
        client
    }
}

impl<S: Read + Write> Client<S> {
    /// Upgrades `stream` to a WebSocket at `url` (`ws://` or `wss://`: a
    /// TLS stream is the caller's to set up, on a TCP stream whose every
    /// read and write is bounded).
    pub fn upgrade(stream: S, url: &str, local_addr: SocketAddr) -> Client<S> {
        let (ws, _) =
            tungstenite::client(url, stream).unwrap_or_else(|e| panic!("upgrade at {url}: {e}"));
        Client::new(ws, local_addr)
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    pub fn send_json(&mut self, json: Value) {
        self.send_text(&json.to_string());
    }

    /// The next message of any kind, pings included.
    pub fn recv_any(&mut self) -> Message {
        let message = self.ws.read().expect("read a message in time");
        self.texts_received += u64::from(message.is_text());
        message
    }

    /// The next text or close, skipping pings and pongs.
    pub fn recv(&mut self) -> Message {
        loop {
            match self.recv_any() {
                Message::Ping(_) | Message::Pong(_) => {}
                other => return other,
            }
        }
    }

    /// The next message, which must be text: its raw JSON.
    pub fn recv_text(&mut self) -> String {
        match self.recv() {
            Message::Text(text) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    pub fn recv_json(&mut self) -> Value {
        serde_json::from_str(&self.recv_text()).expect("JSON from the server")
    }

    /// The next message of type `kind`, skipping others.
    pub fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let json = self.recv_json();
            if json["type"] == kind {
                return json;
            }
        }
    }

    /// The next frame answering `id` (its `replyTo`), skipping all else.
    pub fn reply_to(&mut self, id: &str) -> Value {
        loop {
            let frame = self.recv_json();
            if frame["replyTo"] == id {
                return frame;
            }
        }
    }

    /// Like `send_json`, but `None` once the connection is gone.
    pub fn try_send_json(&mut self, json: Value) -> Option<()> {
        self.ws.send(Message::text(json.to_string())).ok()
    }

    /// Like `reply_to`, but `None` once the connection is gone.
    pub fn try_reply_to(&mut self, id: &str) -> Option<Value> {
        loop {
            let Message::Text(text) = self.ws.read().ok()? else {
                continue;
            };
            self.texts_received += 1;
            let json: Value = serde_json::from_str(&text).ok()?;
            if json["replyTo"] == id {
                return Some(json);
            }
        }
    }

    /// Asks for the `userList` (a v2 request, answered as `id`): (name,
    /// devices) as the server sorts them.
    pub fn list_users(&mut self, id: &str) -> Vec<(String, u64)> {
        self.send_json(serde_json::json!({"type": "listUsers", "id": id}));
        let list = self.reply_to(id);
        assert_eq!(list["type"], "userList", "{list}");
        user_list(&list)
    }

    pub fn login(&mut self, username: &str) -> String {
        self.send_json(serde_json::json!({"type": "login", "id": "l", "username": username}));
        let reply = self.recv_type("loginMessage");
        assert_eq!(reply["username"], username);
        reply["secret"].as_str().expect("a secret").to_owned()
    }

    pub fn say(&mut self, text: &str) {
        self.send_json(serde_json::json!({"type": "textFromUser", "id": "m", "text": text}));
    }

    /// Reads until the server's Close, completes the closing handshake and
    /// returns the close code and reason, with the texts that came before.
    pub fn recv_close(&mut self) -> (u16, String, Vec<String>) {
        let mut texts = Vec::new();
        loop {
            match self.recv() {
                Message::Text(text) => texts.push(text.to_string()),
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((u16::from(CloseCode::Status), String::new()));
                    // Reading on sends our answer and sees the server hang up.
                    while self.ws.read().is_ok() {}
                    return (code, reason, texts);
                }
                other => panic!("expected text or close, got {other:?}"),
            }
        }
    }
}

/// Bounds every read and write on `tcp` by `TIMEOUT`; its local address.
fn bounded(tcp: &TcpStream) -> SocketAddr {
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
    tcp.local_addr().unwrap()
}

/// The users of a `userList` frame, as (name, devices) in its order.
pub fn user_list(list: &Value) -> Vec<(String, u64)> {
    list["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users in {list}"))
        .iter()
        .map(|u| {
            let name = u["username"].as_str().expect("a username").to_owned();
            (name, u["connections"].as_u64().expect("a device count"))
        })
        .collect()
}

/// The keys of a JSON object, in wire order.
pub fn keys(json: &str) -> Vec<String> {
    serde_json::from_str::<Keys>(json).expect("a JSON object").0
}

/// The keys of each object in the array `field` of a JSON object, in wire
/// order (a `serde_json::Value` would sort them).
pub fn keys_in(json: &str, field: &str) -> Vec<Vec<String>> {
    struct Field<'f>(&'f str);
    impl<'de> DeserializeSeed<'de> for Field<'_> {
        type Value = Vec<Vec<String>>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Field<'_> {
        type Value = Vec<Vec<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                if key == self.0 {
                    let objects: Vec<Keys> = map.next_value()?;
                    found = objects.into_iter().map(|k| k.0).collect();
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(json);
    Field(field)
        .deserialize(&mut deserializer)
        .expect("a JSON object")
}

/// An object's keys, in wire order.
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(KeysVisitor)
    }
}

/// Checks a message id or secret: `len` characters of the nanoid alphabet.
pub fn assert_random_id(value: &Value, len: usize) -> String {
    let id = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is no string"));
    assert_eq!(id.len(), len, "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{id}"
    );
    id.to_owned()
}

/// A plain HTTP answer, read to the end (the server closes after it).
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    /// The value of header `name` (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` (a whole request head) to `addr` and reads the answer.
pub fn http(addr: SocketAddr, request: &str) -> HttpAnswer {
    let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.write_all(request.as_bytes()).expect("send the request");
    let mut bytes = Vec::new();
    tcp.read_to_end(&mut bytes)
        .expect("an answer, then a hang-up");
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(&bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!(
            "not an HTTP answer ({other:?}): {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let answer = HttpAnswer {
        status: response.code.expect("a status"),
        headers,
        body: String::from_utf8(bytes[head_len..].to_vec()).expect("a UTF-8 body"),
    };
    // A HEAD answer says how long the body would be, and leaves it out.
    if !request.starts_with("HEAD ") {
        let length = answer.header("Content-Length").and_then(|l| l.parse().ok());
        assert_eq!(length, Some(answer.body.len()), "{answer:?}");
    }
    answer
}

/// `GET path`, as a load balancer's probe or a scraper sends it.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpAnswer {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    )
}

/// Asserts that `chat-server --help` text documents `flag` with its
/// environment variable and default (each flag's block ends at the first
/// empty line).
pub fn assert_flag_documented(help: &str, flag: &str, env: &str, default: &str) {
    let block = assert_flag_documented_without_default(help, flag, env);
    assert!(block.contains(&format!("[default: {default}]")), "{block}");
}

/// Like [`assert_flag_documented`], for a flag with no default; returns
/// the flag's block of the help text.
pub fn assert_flag_documented_without_default<'h>(help: &'h str, flag: &str, env: &str) -> &'h str {
    let block = help
        .split("\n\n")
        .find(|b| b.lines().any(|l| l.trim_start().starts_with(flag)))
        .unwrap_or_else(|| panic!("{flag} missing from --help"));
    assert!(block.contains(&format!("[env: {env}=")), "{block}");
    block
}
