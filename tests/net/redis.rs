//! A real `redis-server` (Debian's package) for the cluster tests: on a
//! free 127.0.0.1 port, writing no files (`--save "" --appendonly no`, its
//! working directory a temporary one), killed by its PID when dropped. A
//! test that cannot start it fails; it never skips.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::TIMEOUT;

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Keeps what it is given (see [`RedisServer::start_persistent`]).
    persistent: bool,
}

impl RedisServer {
    /// Starts redis-server on a free port.
    pub fn start() -> RedisServer {
        RedisServer::start_with(free_port)
    }

    /// A port no redis-server listens on (for a node started before its
    /// Redis): pass it to [`RedisServer::start_on`] later.
    pub fn unused_port() -> u16 {
        free_port()
    }

    /// Starts redis-server on `port` (empty: nothing is kept).
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::start_with(|| port)
    }

    /// Starts redis-server on a free port, keeping everything it is given
    /// on disk before it answers (`appendonly yes`, `appendfsync always`,
    /// in its temporary directory): a SIGKILL and a [`restart`] lose
    /// nothing it acknowledged.
    ///
    /// [`restart`]: RedisServer::restart
    pub fn start_persistent() -> RedisServer {
        RedisServer::start_with_persistence(free_port, true)
    }

    /// Starts redis-server on `port()`, asked again after each failure (a
    /// port taken meanwhile, or still held by a server just killed).
    fn start_with(port: impl Fn() -> u16) -> RedisServer {
        RedisServer::start_with_persistence(port, false)
    }

    fn start_with_persistence(port: impl Fn() -> u16, persistent: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = retrying(|| {
            let port = port();
            RedisServer::spawn(port, &dir, persistent).map(|child| (port, child))
        });
        RedisServer {
            child: Some(port.1),
            port: port.0,
            dir,
            persistent,
        }
    }

    fn spawn(port: u16, dir: &tempfile::TempDir, persistent: bool) -> Result<Child, String> {
        let keeping: &[&str] = match persistent {
            true => &["--appendonly", "yes", "--appendfsync", "always"],
            false => &["--appendonly", "no"],
        };
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--protected-mode", "no"])
            .args(keeping)
            .args(["--logfile", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start redis-server ({e}): the cluster tests need Debian's \
                     redis-server (apt-get install redis-server; tests/run.sh installs it)"
                )
            })?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server on port {port} exited: {status}"));
            }
            if ping(port) {
                return Ok(child);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("redis-server on port {port} did not answer"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL) and waits: everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port: empty (nothing was saved), or,
    /// [`start_persistent`](RedisServer::start_persistent), with all it
    /// had acknowledged.
    pub fn restart(&mut self) {
        self.kill();
        let persistent = self.persistent;
        self.child = Some(retrying(|| {
            RedisServer::spawn(self.port, &self.dir, persistent)
        }));
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Runs one command (its words sent as a RESP array) and returns the
    /// reply as text: `+OK` → `OK`, `:5` → `5`, a bulk string's bytes, an
    /// array's items one per line, nil → empty.
    pub fn command(&self, words: &[&str]) -> String {
        command_on(self.port, words)
    }
}

/// [`RedisServer::command`] on the redis-server at `port`.
pub fn command_on(port: u16, words: &[&str]) -> String {
    {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut request = format!("*{}\r\n", words.len());
        for word in words {
            request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        tcp.write_all(request.as_bytes()).expect("send to redis");
        let mut reader = BufReader::new(tcp);
        let mut lines = Vec::new();
        read_reply(&mut reader, &mut lines);
        lines.join("\n")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused server would not die of SIGTERM; SIGKILL always works.
            self.kill();
        }
    }
}

/// `attempt()`'s success, trying again every 100 ms for up to `TIMEOUT`.
fn retrying<T>(mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match attempt() {
            Ok(done) => return done,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{e}; retrying");
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn read_reply(reader: &mut impl BufRead, lines: &mut Vec<String>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply from redis");
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" | ":" => lines.push(rest.to_owned()),
        "-" => panic!("redis: {rest}"),
        "$" => {
            let len: i64 = rest.parse().expect("a bulk length");
            if len < 0 {
                return lines.push(String::new());
            }
            let mut bytes = vec![0; len as usize + 2];
            reader.read_exact(&mut bytes).expect("a bulk string");
            bytes.truncate(len as usize);
            lines.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        "*" => {
            let len: i64 = rest.parse().expect("an array length");
            for _ in 0..len.max(0) {
                read_reply(reader, lines);
            }
        }
        other => panic!("an unexpected reply from redis: {other}{rest}"),
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    if tcp.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0; 7];
    tcp.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
