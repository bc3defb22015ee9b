//! `chat-server` and `chat-cli` as child processes on 127.0.0.1, for the
//! chat-cli tests. Every wait is bounded and every child is killed when its
//! handle is dropped, so a failing test leaves nothing running.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest any single wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The chat-server of the chat-cli tests: the one test-support server.
pub use super::net::ServerProcess as Server;

/// A `chat-cli` process in scripting mode (stdin and stdout are pipes),
/// killed when dropped.
pub struct Cli {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    pub stdout_seen: Vec<String>,
    pub stderr_seen: Vec<String>,
}

/// What a finished chat-cli printed, with the `HH:MM ` times removed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

/// A private state directory for one chat-cli (its secrets and history),
/// removed when dropped.
pub fn state_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary state directory")
}

/// A chat-cli command with its state (secrets, history) in `state` and no
/// chat settings inherited from the environment.
pub fn chat_cli(state: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-cli"));
    command
        .args(args)
        .env("XDG_STATE_HOME", state)
        .env("HOME", state)
        .env("NO_COLOR", "1")
        .env_remove("CHAT_URL")
        .env_remove("CHAT_NAME")
        .env_remove("CHAT_SECRET")
        .env_remove("CHAT_CA_FILE");
    command
}

impl Cli {
    pub fn spawn(state: &Path, args: &[&str]) -> Cli {
        Cli::from_command(chat_cli(state, args))
    }

    pub fn from_command(mut command: Command) -> Cli {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-cli");
        Cli {
            stdin: child.stdin.take(),
            stdout: lines_of(child.stdout.take().expect("piped stdout")),
            stderr: lines_of(child.stderr.take().expect("piped stderr")),
            child,
            stdout_seen: Vec::new(),
            stderr_seen: Vec::new(),
        }
    }

    /// Types one line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to chat-cli");
        stdin.flush().expect("flush chat-cli's stdin");
    }

    /// Waits for a stdout line equal to `expected` (time removed).
    pub fn expect_stdout(&mut self, expected: &str) {
        wait_for(
            &self.stdout,
            &mut self.stdout_seen,
            "stdout",
            expected,
            |l| l == expected,
        );
    }

    /// Waits for a stdout line for which `pred` holds (time removed);
    /// `what` names it in the failure message.
    pub fn expect_stdout_where(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_for(&self.stdout, &mut self.stdout_seen, "stdout", what, pred)
    }

    /// Waits for a stderr line containing `needle` (time removed).
    pub fn expect_stderr(&mut self, needle: &str) -> String {
        wait_for(&self.stderr, &mut self.stderr_seen, "stderr", needle, |l| {
            l.contains(needle)
        })
    }

    /// Ends the input and waits for chat-cli to exit.
    pub fn finish(mut self) -> Finished {
        self.stdin = None;
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for chat-cli") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "chat-cli did not exit; stdout {:?}, stderr {:?}",
                self.stdout_seen,
                self.stderr_seen
            );
            thread::sleep(Duration::from_millis(20));
        };
        // The readers end at EOF, now that the process is gone.
        let mut stdout = std::mem::take(&mut self.stdout_seen);
        stdout.extend(self.stdout.iter().map(|l| strip_time(&l)));
        let mut stderr = std::mem::take(&mut self.stderr_seen);
        stderr.extend(self.stderr.iter().map(|l| strip_time(&l)));
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` chatting on `server` from a script, once it has said `said` and
/// seen it confirmed; its state directory lives as long as it.
pub fn chatting(server: &Server, name: &str, said: &str) -> (Cli, tempfile::TempDir) {
    let state = state_dir();
    let mut cli = Cli::spawn(state.path(), &[&server.url(), "--name", name]);
    cli.send(said);
    cli.expect_stdout(&format!("{name} (you): {said}"));
    (cli, state)
}

/// Runs chat-cli with `input` on stdin until it exits.
pub fn run_script(state: &Path, args: &[&str], input: &str) -> Finished {
    let mut cli = Cli::spawn(state, args);
    let stdin = cli.stdin.as_mut().expect("stdin");
    match stdin.write_all(input.as_bytes()) {
        // It may exit (no server, name taken) before reading its input.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        result => result.expect("write input"),
    }
    cli.finish()
}

/// `12:34 alice: hi` → `alice: hi`; other lines unchanged.
pub fn strip_time(line: &str) -> String {
    let bytes = line.as_bytes();
    let is_time = bytes.len() > 6
        && bytes[..5].iter().enumerate().all(|(i, b)| {
            if i == 2 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
        && bytes[5] == b' ';
    if is_time {
        line[6..].to_owned()
    } else {
        line.to_owned()
    }
}

fn wait_for(
    lines: &Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    needle: &str,
    matches: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let line = strip_time(&line);
                seen.push(line.clone());
                if matches(&line) {
                    return line;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("no {what} line with {needle:?} in time; saw {seen:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("chat-cli closed its {what} without {needle:?}; saw {seen:?}")
            }
        }
    }
}

/// The lines of a pipe, read on a thread until EOF.
fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// A TCP proxy on 127.0.0.1 in front of a server, for the network trouble
/// a test needs: cut every connection through it and turn new ones away
/// (a network outage, while the server and everyone else carry on), then
/// restore it; or hold back the bytes of one direction, so a message or
/// its confirmation is lost with the next cut, or comes late when
/// released. While the server behind is down, it answers every attempt
/// with 503. Stops when dropped.
pub struct Proxy {
    pub port: u16,
    state: Arc<ProxyState>,
    acceptor: Option<JoinHandle<()>>,
}

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToServer,
    ToClient,
}

struct ProxyState {
    upstream: SocketAddr,
    /// Remove the client's `Sec-WebSocket-Protocol` offer, so the server
    /// behind looks like one that speaks v1 only.
    strip_offer: bool,
    up: AtomicBool,
    stopping: AtomicBool,
    held_to_server: AtomicBool,
    held_to_client: AtomicBool,
    /// Bytes read but held back since the last `hold`.
    held_bytes: AtomicUsize,
    /// Connections that came to the proxy, let through or not.
    tried: AtomicUsize,
    /// Connections passed on to the server.
    passed: AtomicUsize,
    links: Mutex<Vec<Link>>,
}

/// One client's connection through the proxy.
struct Link {
    sockets: [TcpStream; 2],
    alive: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy to the server on `port`.
    pub fn start(port: u16) -> Proxy {
        Proxy::with(port, false)
    }

    /// A proxy that strips the client's subprotocol offer: the server
    /// behind it selects none, as one that speaks only v1 does.
    pub fn v1_only(port: u16) -> Proxy {
        Proxy::with(port, true)
    }

    fn with(port: u16, strip_offer: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port_here = listener.local_addr().unwrap().port();
        let state = Arc::new(ProxyState {
            upstream: SocketAddr::from(([127, 0, 0, 1], port)),
            strip_offer,
            up: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            held_to_server: AtomicBool::new(false),
            held_to_client: AtomicBool::new(false),
            held_bytes: AtomicUsize::new(0),
            tried: AtomicUsize::new(0),
            passed: AtomicUsize::new(0),
            links: Mutex::new(Vec::new()),
        });
        let acceptor = thread::spawn({
            let state = state.clone();
            move || {
                for client in listener.incoming() {
                    if state.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    state.tried.fetch_add(1, Ordering::SeqCst);
                    if !state.up.load(Ordering::SeqCst) {
                        let _ = client.shutdown(Shutdown::Both); // down: turned away
                        continue;
                    }
                    let Ok(server) = TcpStream::connect_timeout(&state.upstream, TIMEOUT) else {
                        thread::spawn(move || answer_503(client));
                        continue;
                    };
                    state.passed.fetch_add(1, Ordering::SeqCst);
                    let alive = Arc::new(AtomicBool::new(true));
                    let clones = (
                        client.try_clone(),
                        server.try_clone(),
                        client.try_clone(),
                        server.try_clone(),
                    );
                    let (Ok(client_in), Ok(server_in), Ok(client_kept), Ok(server_kept)) = clones
                    else {
                        continue;
                    };
                    state.links.lock().unwrap().push(Link {
                        sockets: [client_kept, server_kept],
                        alive: alive.clone(),
                    });
                    let (up, down) = (state.clone(), state.clone());
                    let up_alive = alive.clone();
                    thread::spawn(move || {
                        pump(client_in, server, Direction::ToServer, &up_alive, &up)
                    });
                    thread::spawn(move || {
                        pump(server_in, client, Direction::ToClient, &alive, &down)
                    });
                }
            }
        });
        Proxy {
            port: port_here,
            state,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the proxy, losing any bytes held
    /// back, and turns new connections away until `restore`.
    pub fn cut(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        for link in self.state.links.lock().unwrap().drain(..) {
            link.alive.store(false, Ordering::SeqCst);
            for socket in &link.sockets {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
        // Only now: a pump let go while its link was alive would deliver.
        self.state.held_to_server.store(false, Ordering::SeqCst);
        self.state.held_to_client.store(false, Ordering::SeqCst);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }

    /// Holds back whatever flows `direction` from now until the next cut.
    pub fn hold(&self, direction: Direction) {
        self.state.held_bytes.store(0, Ordering::SeqCst);
        let flag = match direction {
            Direction::ToServer => &self.state.held_to_server,
            Direction::ToClient => &self.state.held_to_client,
        };
        flag.store(true, Ordering::SeqCst);
    }

    /// Lets what was held back `direction` go on, and what follows.
    pub fn release(&self, direction: Direction) {
        let flag = match direction {
            Direction::ToServer => &self.state.held_to_server,
            Direction::ToClient => &self.state.held_to_client,
        };
        flag.store(false, Ordering::SeqCst);
    }

    /// Waits until something is being held back.
    pub fn wait_held(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while self.state.held_bytes.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "nothing came to hold back");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `count` connections have come to the proxy, let
    /// through or not: a client's attempts to connect, seen happen.
    pub fn wait_tried(&self, count: usize) {
        let deadline = Instant::now() + TIMEOUT;
        while self.state.tried.load(Ordering::SeqCst) < count {
            assert!(
                Instant::now() < deadline,
                "fewer than {count} connections came"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many connections were passed on to the server.
    pub fn connections(&self) -> usize {
        self.state.passed.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the acceptor so that it sees it is to stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// What a load balancer says while the server behind it is down: the
/// same answer to every attempt (a hang-up could reach the client as a
/// reset or as an end of stream, each said apart). The request head is
/// read first, so that closing does not reset the answer away.
fn answer_503(mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(TIMEOUT));
    let mut head = Vec::new();
    let mut buffer = [0; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let answer =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    if client.write_all(answer.as_bytes()).is_ok() {
        let _ = client.shutdown(Shutdown::Write);
        // Until the client hangs up: nothing it sent is left unread.
        while matches!(client.read(&mut buffer), Ok(n) if n > 0) {}
    }
}

/// Copies `from` to `to` until either ends or the link is cut.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    direction: Direction,
    alive: &AtomicBool,
    state: &ProxyState,
) {
    let held = match direction {
        Direction::ToServer => &state.held_to_server,
        Direction::ToClient => &state.held_to_client,
    };
    // The client's request head, gathered to take the offer out.
    let mut head = (state.strip_offer && direction == Direction::ToServer).then(Vec::new);
    let mut buffer = [0; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
            Err(_) => break,
        };
        let mut data = buffer[..n].to_vec();
        if let Some(gathered) = head.as_mut() {
            gathered.extend_from_slice(&data);
            let Some(end) = gathered.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let (request, rest) = gathered.split_at(end + 4);
            let request = String::from_utf8_lossy(request);
            data = request
                .split_inclusive("\r\n")
                .filter(|line| {
                    !line
                        .to_ascii_lowercase()
                        .starts_with("sec-websocket-protocol:")
                })
                .collect::<String>()
                .into_bytes();
            data.extend_from_slice(rest);
            head = None;
        }
        if held.load(Ordering::SeqCst) {
            state.held_bytes.fetch_add(data.len(), Ordering::SeqCst);
            while held.load(Ordering::SeqCst) && alive.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(5));
            }
        }
        if !alive.load(Ordering::SeqCst) || to.write_all(&data).is_err() {
            break; // cut: what was held back is lost, as in a real outage
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
