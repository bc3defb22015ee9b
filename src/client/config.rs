//! What the client is to do: who it is, how it shows what it hears, and
//! its timings and limits.

use std::time::Duration;

use super::Backoff;
use super::secrets::SavedAt;

/// Who is typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A person at a terminal: a line may be a `/command`; lines typed
    /// while offline are queued with a notice; end of input leaves at once.
    Interactive,
    /// A script: every line is a message as it is; at the end of input the
    /// client waits until the server has confirmed every message (giving
    /// up after `linger` without a confirmation), then leaves; failing to
    /// deliver any is a failure. A message the server refuses as sent too
    /// fast is sent again, in order, once the server allows. It shows
    /// what is said while it takes part (caught up after a reconnect), not
    /// the earlier messages a v2 server sends a newcomer for context.
    Script,
}

/// How server messages are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// As display lines. With `bell`, ring the bell ([`Event::Bell`])
    /// when someone names the user in a message as it is said (not in a
    /// catch-up).
    ///
    /// [`Event::Bell`]: super::Event::Bell
    Lines { bell: bool },
    /// Every server message as its raw JSON (`--json`), and no line that
    /// only restates one. The `secret` of a `loginMessage` is shown as
    /// sent with `show_secret`, else as `"<redacted>"`.
    Json { show_secret: bool },
}

impl Output {
    /// Whether server messages are shown as JSON (`--json`).
    pub fn is_json(self) -> bool {
        matches!(self, Output::Json { .. })
    }
}

/// What to do when the server refuses the name (taken, or not valid
/// there) before the first login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNameRefused {
    /// End with [`Exit::NameRefused`](super::Exit::NameRefused): the name
    /// was given on the command line.
    Finish,
    /// Ask for another ([`Event::AskName`](super::Event::AskName)): the
    /// name was typed at a prompt.
    AskAnother,
}

/// What the client is to do, and its timings and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The server's URL, for messages and nothing else.
    pub server: String,
    /// The name to log in as. Empty when none was given: the client then
    /// connects first and, once the server is there, asks for one
    /// ([`Event::AskName`](super::Event::AskName) with no reason).
    pub username: String,
    /// A secret to reclaim the name with, given by the user (`--secret`);
    /// it takes precedence over the saved one.
    pub given_secret: Option<String>,
    /// The secret saved for this server and name, if any. A login that
    /// ends with another secret (a given one, or a new one the server
    /// issued) asks for it to be saved.
    pub saved_secret: Option<String>,
    /// None saved for this server, but one for this name at another
    /// address of the same server (it named the same message store): sent,
    /// and asked to be saved for this server too once it works.
    pub same_server_secret: Option<SavedAt>,
    /// Other addresses with a secret saved for this name, not known to be
    /// this server or another: named if the server says the name is taken.
    pub saved_elsewhere: Vec<String>,
    pub mode: Mode,
    /// Default [`OnNameRefused::Finish`].
    pub on_name_refused: OnNameRefused,
    /// Default lines without the bell.
    pub output: Output,
    /// Delays between reconnection attempts.
    pub backoff: Backoff,
    /// How long connecting plus logging in may take. Default 10 s.
    pub login_timeout: Duration,
    /// A connection that stayed up this long resets the backoff. Default 10 s.
    pub stable_after: Duration,
    /// After this long without hearing from the server, ping it. Default 30 s.
    pub keepalive_idle: Duration,
    /// A ping unanswered this long means the connection is dead. Default 10 s.
    pub keepalive_timeout: Duration,
    /// How long a script waits at the end of its input for its messages to
    /// be confirmed: it gives up after this long without a confirmation
    /// (not counting a wait the server asked for). Default 10 s.
    pub linger: Duration,
    /// Most messages waiting to be sent; more are refused. Default 100.
    pub outbox_capacity: usize,
    /// Most messages sent but not yet confirmed. Default 16.
    pub window: usize,
    /// v3: the room (`#dev`) to join and talk in, or the name (`@bob`) to
    /// send direct messages to, from the first login (`--room`, `--to`).
    /// A script then labels every line with its room.
    pub room: Option<String>,
}

impl ClientConfig {
    /// What is saved for the name at this server (`SecretStore::lookup`).
    pub fn set_saved(&mut self, saved: super::Saved) {
        self.saved_secret = saved.secret;
        self.same_server_secret = saved.same_server;
        self.saved_elsewhere = saved.elsewhere;
    }

    pub fn new(server: impl Into<String>, username: impl Into<String>, mode: Mode) -> Self {
        ClientConfig {
            server: server.into(),
            username: username.into(),
            given_secret: None,
            saved_secret: None,
            same_server_secret: None,
            saved_elsewhere: Vec::new(),
            mode,
            on_name_refused: OnNameRefused::Finish,
            output: Output::Lines { bell: false },
            backoff: Backoff::default(),
            login_timeout: Duration::from_secs(10),
            stable_after: Duration::from_secs(10),
            keepalive_idle: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(10),
            outbox_capacity: 100,
            window: 16,
            room: None,
        }
    }
}
