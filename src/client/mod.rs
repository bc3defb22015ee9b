//! The chat client: a sans-IO state machine for `chat-cli`.
//!
//! [`Client`] decides everything a client decides: which protocol version
//! to offer and what to do when the server does not select it, when to
//! connect and reconnect, how to log in and which secret to send and keep,
//! what to catch up on after a reconnect, what a typed line means, what to
//! queue while offline, whether a message sent before a drop arrived, when
//! a script is done, and what each server message looks like on screen. It
//! never touches a socket, a terminal or a clock: the driver reports what
//! happened (`handle_*`, each with the current instant) and performs what it
//! asks (`poll_action`, `poll_event`), then sleeps until `poll_timeout` —
//! the same shape as the server core, so tests run it on a virtual clock.
//!
//! ```
//! use std::time::Instant;
//! use rand::{SeedableRng, rngs::StdRng};
//! use wschat::client::{Action, Client, ClientConfig, ClockTime, Event, Mode};
//!
//! let now = Instant::now();
//! let config = ClientConfig::new("ws://127.0.0.1:8080", "alice", Mode::Script);
//! let mut client = Client::new(config, StdRng::seed_from_u64(1), now);
//! // Offer protocol v2 in the handshake…
//! assert_eq!(client.poll_action(), Some(Action::Connect { subprotocol: Some("wschat.v2") }));
//!
//! // …which the server selected in its `101` response.
//! client.handle_connected(Some("wschat.v2"), now);
//! let Some(Action::Send(login)) = client.poll_action() else { panic!() };
//! assert!(login.starts_with(r#"{"type":"login""#));
//!
//! client.handle_text(r#"{"type":"loginMessage","id":"1","username":"alice","location":"127.0.0.1","secret":"s"}"#, now);
//! client.handle_text(r#"{"type":"history","id":"2","replyTo":"l","messages":[],"complete":true}"#, now);
//! client.handle_text(r#"{"type":"textBroadcast","id":"3","username":"bob","message":"hi","seq":1,"timestamp":0}"#, now);
//! let mut shown = Vec::new();
//! while let Some(event) = client.poll_event() {
//!     if let Event::Line(line) = event {
//!         // The driver shows the server's time of the message in local
//!         // time; here, the Unix epoch in UTC.
//!         assert_eq!(line.timestamp(), Some(0));
//!         shown.push(line.render(ClockTime { hour: 0, minute: 0 }, false));
//!     }
//! }
//! assert_eq!(shown, ["00:00 bob: hi"]);
//! ```

pub mod backoff;
pub mod command;
pub mod completion;
mod outbox;
mod pacing;
pub mod render;
pub mod secrets;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::id;
use crate::protocol::{
    ClientMessage, EPOCH_MAX_CHARS, ErrorCode, LeaveReason, SUBPROTOCOL_V2, ServerMessage,
    UserPresence, Version,
};
pub use backoff::Backoff;
use command::{Effect, Input};
pub use completion::{Completion, Roster};
use outbox::Outbox;
use pacing::Pacing;
pub use render::{ClockTime, Line};
pub use secrets::SecretStore;

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

/// What the client is to do, and its timings and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The server's URL, for messages and nothing else.
    pub server: String,
    /// The name to log in as.
    pub username: String,
    /// A secret to reclaim the name with, given by the user (`--secret`);
    /// it takes precedence over the saved one.
    pub given_secret: Option<String>,
    /// The secret saved for this server and name, if any. A login that
    /// ends with another secret (a given one, or a new one the server
    /// issued) asks for it to be saved.
    pub saved_secret: Option<String>,
    pub mode: Mode,
    /// The name was typed at a prompt: when the server refuses it (taken,
    /// or not valid there) before the first login, ask for another
    /// ([`Event::AskName`]) instead of ending.
    pub ask_name: bool,
    /// Show every server message as its raw JSON instead of a display line.
    pub raw_json: bool,
    /// Ring the bell ([`Event::Bell`]) when someone names the user in a
    /// message as it is said (not in a catch-up).
    pub bell: bool,
    /// With `raw_json`, show the `secret` of a `loginMessage` as sent
    /// instead of `"<redacted>"`.
    pub show_secret: bool,
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
}

impl ClientConfig {
    pub fn new(server: impl Into<String>, username: impl Into<String>, mode: Mode) -> Self {
        ClientConfig {
            server: server.into(),
            username: username.into(),
            given_secret: None,
            saved_secret: None,
            mode,
            ask_name: false,
            raw_json: false,
            bell: false,
            show_secret: false,
            backoff: Backoff::default(),
            login_timeout: Duration::from_secs(10),
            stable_after: Duration::from_secs(10),
            keepalive_idle: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(10),
            outbox_capacity: 100,
            window: 16,
        }
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a new WebSocket connection to the server, offering
    /// `subprotocol` (`Sec-WebSocket-Protocol`) if any; report
    /// `handle_connected` with the subprotocol the server selected,
    /// `handle_subprotocol_refused`, or `handle_disconnected`.
    Connect { subprotocol: Option<&'static str> },
    /// Send this JSON text frame.
    Send(String),
    /// Send a WebSocket ping.
    Ping,
    /// Close the connection (or abandon the attempt) with a Close frame,
    /// and report nothing more from it.
    Close,
}

/// Something to tell the user or to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Show this line.
    Line(Line),
    /// The login succeeded with a secret other than the saved one: save it
    /// (per server and name) and pass it as `ClientConfig::saved_secret`
    /// next time.
    SecretIssued { username: String, secret: String },
    /// The server refused the name typed at the prompt (`ask_name`), for
    /// this reason: ask for another and hand it to
    /// [`Client::handle_name`]. Nothing happens until then.
    AskName(String),
    /// Ring the terminal bell with the next line: it names the user and
    /// was said just now (`bell`).
    Bell,
    /// Interactive: the user's messages that the server has not confirmed
    /// yet, as lines to keep in view below the chat (replacing those given
    /// before) until each is confirmed and shown as a line of its own, or
    /// reported as not sent. At most [`PENDING_SHOWN`] messages, then a
    /// line that counts the rest. Empty when nothing is pending.
    Pending(Vec<Line>),
    /// The client is done: perform the actions already polled, then exit.
    Finished(Exit),
}

/// Most of the user's pending messages shown at once ([`Event::Pending`]).
pub const PENDING_SHOWN: usize = 3;

/// How the client ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// Could not connect, log in, or deliver; the reason is one sentence.
    Failure(String),
    /// The server refused the name given (taken, or not valid there); the
    /// reason is one sentence. Another name may work.
    NameRefused(String),
    /// The user cancelled before the chat started (Ctrl-C at a prompt).
    Cancelled,
}

/// The state of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// `Action::Connect` is out; login must be answered by `deadline`.
    Connecting {
        deadline: Instant,
    },
    /// Connected; the login is sent.
    LoggingIn {
        deadline: Instant,
    },
    /// Logged in.
    Online {
        since: Instant,
        last_heard: Instant,
        ping_sent: Option<Instant>,
    },
    /// Disconnected; the next attempt is at `retry_at`.
    Waiting {
        retry_at: Instant,
    },
    /// The name typed at the prompt was refused: waiting for another.
    AskingName,
    Done,
}

/// The sans-IO chat client. `R` draws message ids and backoff jitter.
///
/// After each `handle_*` call, drain [`poll_action`](Self::poll_action),
/// then [`poll_event`](Self::poll_event), then sleep until
/// [`poll_timeout`](Self::poll_timeout) or the next input.
pub struct Client<R> {
    config: ClientConfig,
    rng: R,
    link: Link,
    /// The protocol to offer on the next connection: v2, until a server
    /// turned it down; then v1 for the rest of the session.
    offer: Version,
    /// The protocol of the current (or last) connection.
    version: Version,
    /// The name as the server spells it, once logged in.
    display_name: Option<String>,
    /// What to send with the next login: given, saved, or last issued.
    secret: Option<String>,
    /// What the driver has saved (or been asked to save).
    saved_secret: Option<String>,
    /// Whether any login succeeded. Before that every failure is final;
    /// after it, failures are retried.
    been_online: bool,
    /// Failed attempts since the last stable connection.
    failures: u32,
    outbox: Outbox,
    /// Slower sending after the server rate-limited a message of ours.
    pacing: Pacing,
    /// Set at the end of a script's input: finish by then.
    ending: Option<Instant>,
    /// Messages refused, or maybe lost with a connection.
    undelivered: usize,
    /// A `loginBroadcast` with our own name that came while logging in: our
    /// own join (dropped on success) or, if the login fails, someone else's.
    held_join: Option<Line>,
    /// v2: the highest `seq` seen; the next login's `since`. A message at or
    /// below it has been shown already.
    last_seq: Option<u64>,
    /// v2: the numbering `last_seq` belongs to (the `epoch` of the last
    /// `history`), sent with `since`; `None` from a server that sends none.
    epoch: Option<String>,
    /// v2: the `since` the current login sent.
    login_since: Option<u64>,
    /// v2: the name and secret of a `loginMessage`, until the `history`
    /// that follows it completes the login.
    accepted: Option<(String, String)>,
    /// v2: what the server said while we were logging in, with its `seq`,
    /// shown after the catch-up so that everything appears in order.
    held: Vec<(Option<u64>, Line)>,
    /// v2: the id of our `logout` and when to stop waiting for the server
    /// to confirm it.
    logout: Option<(String, Instant)>,
    /// `/quit` was typed while messages waited to be sent, and the user was
    /// asked to type it again to leave without them.
    quit_asked: bool,
    /// The reason the last reconnection attempt failed, once said: the same
    /// failure again is not said again.
    retry_failure: Option<String>,
    /// Who is online, for tab completion.
    roster: Roster,
    /// v2: the id of the `listUsers` sent after logging in to fill the
    /// roster; its answer is not shown (a `/who`'s is).
    roster_request: Option<String>,
    /// What the last [`Event::Pending`] said.
    pending: Vec<Line>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl<R: Rng> Client<R> {
    /// A client that starts connecting at once.
    pub fn new(config: ClientConfig, rng: R, now: Instant) -> Self {
        let mut client = Client {
            secret: config
                .given_secret
                .clone()
                .or_else(|| config.saved_secret.clone()),
            saved_secret: config.saved_secret.clone(),
            outbox: Outbox::new(config.outbox_capacity, config.window),
            pacing: Pacing::default(),
            config,
            rng,
            link: Link::Done,
            offer: Version::V2,
            version: Version::V2,
            display_name: None,
            been_online: false,
            failures: 0,
            ending: None,
            undelivered: 0,
            held_join: None,
            last_seq: None,
            epoch: None,
            login_since: None,
            accepted: None,
            held: Vec::new(),
            logout: None,
            quit_asked: false,
            retry_failure: None,
            roster: Roster::default(),
            roster_request: None,
            pending: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        client.connect(now);
        client
    }

    // ---- getters ----

    /// The name: as the server spells it once logged in, else as asked for.
    pub fn username(&self) -> &str {
        self.display_name
            .as_deref()
            .unwrap_or(&self.config.username)
    }

    pub fn is_online(&self) -> bool {
        matches!(self.link, Link::Online { .. })
    }

    pub fn is_finished(&self) -> bool {
        self.link == Link::Done
    }

    /// Whether a typed line can still do anything: not once finished, nor
    /// while a `/logout` or a `/quit` waits for the server (then the client
    /// only ends).
    pub fn reads_lines(&self) -> bool {
        !self.is_finished() && self.logout.is_none() && self.ending.is_none()
    }

    /// Who is online as far as the client knows, for tab completion: on v2
    /// everyone (from a `userList` after each login, then joins, leaves
    /// and presence summaries); on v1 everyone seen in the session.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The protocol version of the current (or last) connection.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether another line can be taken now. A script's driver reads its
    /// input only while this holds, so a long input waits for the server
    /// instead of filling memory (or being refused).
    pub fn accepts_input(&self) -> bool {
        !self.is_finished() && self.ending.is_none() && self.outbox.has_room()
    }

    // ---- inputs: the connection ----

    /// The WebSocket handshake of the connection asked for succeeded, and
    /// the server selected `subprotocol` (the `Sec-WebSocket-Protocol` of
    /// its `101` response, `None` without one): `wschat.v2` means v2,
    /// anything else v1.
    pub fn handle_connected(&mut self, subprotocol: Option<&str>, _now: Instant) {
        let Link::Connecting { deadline } = self.link else {
            return;
        };
        self.version = match subprotocol {
            Some(SUBPROTOCOL_V2) => Version::V2,
            _ => Version::V1,
        };
        self.link = Link::LoggingIn { deadline };
        self.login_since = match self.version {
            Version::V2 => self.last_seq,
            Version::V1 => None,
        };
        let login = ClientMessage::Login {
            id: id::message_id(&mut self.rng),
            username: self.config.username.clone(),
            secret: self.secret.clone(),
            since: self.login_since,
            epoch: self.login_since.and(self.epoch.clone()),
        };
        self.send(&login);
    }

    /// The server completed the upgrade without selecting the subprotocol
    /// offered, and the WebSocket library gave up on that connection
    /// (tungstenite does, although RFC 6455 allows it): the server speaks
    /// v1 only. Connects again at once, offering nothing.
    pub fn handle_subprotocol_refused(&mut self, _now: Instant) {
        let Link::Connecting { .. } = self.link else {
            return;
        };
        self.offer = Version::V1;
        self.actions
            .push_back(Action::Connect { subprotocol: None });
    }

    /// A text frame arrived.
    pub fn handle_text(&mut self, text: &str, now: Instant) {
        if !matches!(self.link, Link::LoggingIn { .. } | Link::Online { .. }) {
            return;
        }
        self.heard(now);
        let message = ServerMessage::decode(text.as_bytes());
        if self.config.raw_json {
            let shown = match &message {
                Ok(message) if !self.config.show_secret => redacted(text, message),
                _ => Cow::Borrowed(text),
            };
            self.show(Line::Raw(shown.into_owned()));
        }
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                return self.show_server(Line::Error(format!(
                    "ignored a message from the server that chat-cli does not understand: {e}"
                )));
            }
        };
        match message {
            ServerMessage::LoginBroadcast {
                username,
                location,
                timestamp,
                ..
            } => {
                let ours = name_key(&username) == name_key(&self.config.username);
                self.roster.add(&username);
                let line = Line::Joined {
                    own: self.display_name.as_deref() == Some(&*username),
                    name: username.into_owned(),
                    location: location.into_owned(),
                    at: timestamp,
                };
                let logging_in = matches!(self.link, Link::LoggingIn { .. });
                if logging_in && ours && self.held_join.is_none() {
                    self.held_join = Some(line);
                } else {
                    self.show_live(None, line);
                }
            }
            ServerMessage::LoginMessage {
                username, secret, ..
            } => {
                if !matches!(self.link, Link::LoggingIn { .. }) {
                    return;
                }
                let (username, secret) = (username.into_owned(), secret.into_owned());
                match self.version {
                    // The login is complete with the `history` that follows.
                    Version::V2 => self.accepted = Some((username, secret)),
                    Version::V1 => {
                        self.logged_in(username, secret, now);
                        // A v2 connection dropped, and the server came back
                        // speaking v1: no history will tell.
                        for text in self.outbox.take_unchecked() {
                            self.maybe_lost(&text);
                        }
                        self.flush();
                        self.check_ending();
                    }
                }
            }
            ServerMessage::History {
                messages,
                complete,
                epoch,
                ..
            } => {
                if matches!(self.link, Link::LoggingIn { .. }) {
                    // Longer than the protocol allows: not an epoch to trust.
                    let epoch = epoch
                        .filter(|e| e.chars().count() <= EPOCH_MAX_CHARS)
                        .map(Cow::into_owned);
                    self.caught_up(messages, complete, epoch, now);
                }
            }
            ServerMessage::TextBroadcast {
                username,
                message,
                reply_to,
                seq,
                timestamp,
                ..
            } => {
                let own = self.display_name.as_deref() == Some(&*username);
                let confirmed = match (self.version, reply_to) {
                    (Version::V2, Some(id)) => self.outbox.answered(&id).is_some(),
                    (Version::V2, None) => false,
                    (Version::V1, _) => own && self.outbox.confirm_text(&message),
                };
                self.roster.add(&username);
                let line = Line::from_text(&username, &message, own, timestamp)
                    .mentioning(self.username());
                self.show_live(seq, line);
                if confirmed {
                    // Progress: a script's wait at the end starts again.
                    if self.ending.is_some() {
                        self.ending = Some(now + self.config.linger);
                    }
                    self.flush();
                    self.check_ending();
                }
            }
            ServerMessage::ErrorMessage {
                error,
                reply_to,
                description,
                ..
            } => self.refused(error, reply_to.as_deref(), description.as_deref(), now),
            ServerMessage::UserList {
                users, reply_to, ..
            } => {
                self.roster
                    .replace(users.iter().map(|user| &*user.username));
                if self.roster_request.as_deref() == Some(&*reply_to) {
                    self.roster_request = None;
                    return; // asked for completion, not by the user
                }
                let line = Line::Info(self.who_is_online(&users));
                self.show_server(line);
            }
            ServerMessage::LogoutBroadcast {
                username,
                reason,
                timestamp,
                ..
            } => self.left(username.into_owned(), reason, timestamp),
            ServerMessage::Presence {
                joined,
                joined_count,
                left,
                left_count,
                timestamp,
                ..
            } => {
                for name in &joined {
                    self.roster.add(name);
                }
                for name in &left {
                    self.roster.remove(name);
                }
                let names =
                    |names: Vec<Cow<'_, str>>| names.into_iter().map(Cow::into_owned).collect();
                let line = Line::Presence {
                    joined: names(joined),
                    joined_count,
                    left: names(left),
                    left_count,
                    at: timestamp,
                };
                self.show_live(None, line);
            }
        }
    }

    /// A ping, a pong or any other frame arrived: the server is there.
    pub fn handle_activity(&mut self, now: Instant) {
        self.heard(now);
    }

    /// The connection (or the attempt to make one) failed or closed;
    /// `reason` says why, e.g. "connection refused".
    pub fn handle_disconnected(&mut self, reason: &str, now: Instant) {
        if matches!(
            self.link,
            Link::Connecting { .. } | Link::LoggingIn { .. } | Link::Online { .. }
        ) {
            self.lost(reason, now);
        }
    }

    // ---- inputs: the user ----

    /// A line was typed (interactive) or read (script).
    pub fn handle_line(&mut self, line: &str, now: Instant) {
        if self.is_finished() || self.ending.is_some() {
            return;
        }
        if self.config.mode == Mode::Script {
            if !line.trim().is_empty() {
                self.say(line.to_owned());
            }
            return;
        }
        if self.logout.is_some() {
            return self.show(Line::Info(
                "logging out; waiting for the server to confirm".into(),
            ));
        }
        // "/quit again" means the very next line.
        let quit_asked = std::mem::take(&mut self.quit_asked);
        match command::parse(line) {
            Input::Nothing => {}
            Input::Say(text) => self.say(text.to_owned()),
            Input::Run(Effect::Help) => self.show(Line::Info(command::help())),
            Input::Run(Effect::Me(action)) => {
                let text = format!("* {} {action}", self.username());
                self.say(text);
            }
            Input::Run(Effect::Who) => self.who(),
            Input::Run(Effect::Logout) => self.log_out(now),
            Input::Run(Effect::Quit) => self.quit_typed(quit_asked, now),
            Input::Usage { command, hint } => self.show(Line::Info(format!(
                "usage: {} ({hint})",
                command::usage(command)
            ))),
            Input::Unknown(name) => self.show(Line::Info(format!(
                "unknown command /{name}; /help lists the commands, //{name} sends it as a message"
            ))),
        }
    }

    /// A new name, after [`Event::AskName`], with the secret saved for it
    /// if any: connects again and logs in with it.
    pub fn handle_name(&mut self, name: &str, saved_secret: Option<String>, now: Instant) {
        if self.link != Link::AskingName {
            return;
        }
        self.config.username = name.to_owned();
        self.config.given_secret = None;
        self.config.saved_secret = saved_secret.clone();
        self.secret = saved_secret.clone();
        self.saved_secret = saved_secret;
        self.connect(now);
    }

    /// The input ended (Ctrl-D, or the end of a script's stdin).
    pub fn handle_end_of_input(&mut self, now: Instant) {
        if self.is_finished() || self.ending.is_some() {
            return;
        }
        match self.config.mode {
            Mode::Interactive if self.logout.is_some() => {} // it ends by itself
            Mode::Interactive => self.quit(now),
            Mode::Script => {
                // Not counting a wait the server asked for.
                let from = self.pacing.resume_at().map_or(now, |at| at.max(now));
                self.ending = Some(from + self.config.linger);
                self.check_ending();
            }
        }
    }

    // ---- inputs: time ----

    /// Time has reached `now`. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.pacing.handle_timeout(now) {
            if !self.pacing.is_slow() {
                self.outbox.set_window(self.config.window);
            }
            self.flush();
        }
        if let Some(deadline) = self.ending
            && now >= deadline
            && !self.is_finished()
        {
            let pending = self.outbox.queued() + self.outbox.in_flight() + self.outbox.unchecked();
            if self.config.mode == Mode::Interactive {
                for text in self.outbox.take_in_flight() {
                    self.show(Line::Error(format!(
                        "the server did not confirm this message; it may not have been \
                         delivered: {text}"
                    )));
                }
            }
            return self.leave(Exit::Failure(format!(
                "gave up after {}: the server did not confirm {}",
                seconds(self.config.linger),
                plural(pending, "message", "messages")
            )));
        }
        if let Some((_, deadline)) = self.logout
            && now >= deadline
        {
            return self.leave(Exit::Failure(format!(
                "the server did not confirm the logout within {}; the name may still be reserved",
                seconds(self.config.login_timeout)
            )));
        }
        match self.link {
            Link::Connecting { deadline } | Link::LoggingIn { deadline } if now >= deadline => {
                self.actions.push_back(Action::Close);
                let reason = format!("no answer within {}", seconds(self.config.login_timeout));
                self.lost(&reason, now);
            }
            Link::Online {
                since,
                last_heard,
                ping_sent: None,
            } if now >= last_heard + self.config.keepalive_idle => {
                self.actions.push_back(Action::Ping);
                self.link = Link::Online {
                    since,
                    last_heard,
                    ping_sent: Some(now),
                };
            }
            Link::Online {
                ping_sent: Some(at),
                ..
            } if now >= at + self.config.keepalive_timeout => {
                self.actions.push_back(Action::Close);
                let reason = format!(
                    "the server did not answer a ping within {}",
                    seconds(self.config.keepalive_timeout)
                );
                self.lost(&reason, now);
            }
            Link::Waiting { retry_at } if now >= retry_at => self.connect(now),
            _ => {}
        }
    }

    // ---- outputs ----

    /// The next thing to do, in order.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next thing to show or remember.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            self.update_pending();
        }
        self.events.pop_front()
    }

    /// When to call `handle_timeout` next; `None` once finished.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let link = match self.link {
            Link::Connecting { deadline } | Link::LoggingIn { deadline } => deadline,
            Link::Online {
                last_heard,
                ping_sent: None,
                ..
            } => last_heard + self.config.keepalive_idle,
            Link::Online {
                ping_sent: Some(at),
                ..
            } => at + self.config.keepalive_timeout,
            Link::Waiting { retry_at } => retry_at,
            Link::AskingName | Link::Done => return None,
        };
        [
            Some(link),
            self.ending,
            self.logout.as_ref().map(|(_, at)| *at),
            self.pacing.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals ----

    fn connect(&mut self, now: Instant) {
        self.link = Link::Connecting {
            deadline: now + self.config.login_timeout,
        };
        let subprotocol = match self.offer {
            Version::V2 => Some(SUBPROTOCOL_V2),
            Version::V1 => None,
        };
        self.actions.push_back(Action::Connect { subprotocol });
    }

    fn heard(&mut self, now: Instant) {
        if let Link::Online { since, .. } = self.link {
            self.link = Link::Online {
                since,
                last_heard: now,
                ping_sent: None,
            };
        }
    }

    /// The login succeeded: online, secret saved, and the user told.
    fn logged_in(&mut self, username: String, secret: String, now: Instant) {
        self.link = Link::Online {
            since: now,
            last_heard: now,
            ping_sent: None,
        };
        self.held_join = None;
        if self.saved_secret.as_deref() != Some(secret.as_str()) {
            self.events.push_back(Event::SecretIssued {
                username: username.clone(),
                secret: secret.clone(),
            });
            self.saved_secret = Some(secret.clone());
        }
        self.secret = Some(secret);
        let status = if self.been_online {
            match self.outbox.queued() {
                0 => Some(format!("back online as {username}")),
                n => Some(format!(
                    "back online as {username}; sending {}",
                    plural(n, "queued message", "queued messages")
                )),
            }
        } else if self.config.mode == Mode::Interactive {
            let v1 = match self.version {
                Version::V1 => {
                    " (this server speaks protocol v1: no catch-up after a dropped connection, \
                     no /who, no /logout)"
                }
                Version::V2 => "",
            };
            Some(format!(
                "connected to {} as {username}; /help lists the commands{v1}",
                self.config.server
            ))
        } else {
            None
        };
        if let Some(status) = status {
            self.show(Line::Status(status));
        }
        self.display_name = Some(username);
        self.been_online = true;
    }

    /// v2: the `history` after `loginMessage` completes the login. Shows
    /// what was said while we were away (each `seq` once), settles the
    /// messages a dropped connection left unconfirmed, then shows what
    /// came while logging in and sends what waits.
    fn caught_up(
        &mut self,
        messages: Vec<ServerMessage<'_>>,
        complete: bool,
        epoch: Option<String>,
        now: Instant,
    ) {
        let Some((username, secret)) = self.accepted.take() else {
            return; // no loginMessage before it: not ours to act on
        };
        let returning = self.been_online;
        let Reading { renumbered, missed } =
            self.read_catch_up(&messages, complete, epoch.as_deref());
        if renumbered {
            // The numbers seen belong to a numbering that is gone: every
            // message of the new one is new to us.
            self.last_seq = Some(0);
        }
        self.epoch = epoch;
        let mut lines = Vec::new();
        let mut own = Vec::new();
        for message in messages {
            let ServerMessage::TextBroadcast {
                username: from,
                message,
                seq,
                timestamp,
                ..
            } = message
            else {
                continue;
            };
            if !self.fresh(seq) {
                continue;
            }
            let is_own = from == username;
            lines.push(Line::from_text(&from, &message, is_own, timestamp).mentioning(&username));
            if is_own {
                own.push(message.into_owned());
            }
        }
        // From now on every login asks for what came after what we saw;
        // an empty catch-up for a newcomer means nothing was said yet.
        self.last_seq.get_or_insert(0);
        let checked = self.outbox.check(own.iter().map(String::as_str), complete);
        self.logged_in(username, secret, now);
        if returning && renumbered {
            self.show(Line::Status(
                "the server's message store is new: messages said before it are gone".into(),
            ));
        }
        if returning && missed {
            self.show(Line::Status(
                "some messages were missed while you were away: the server no longer holds them"
                    .into(),
            ));
        }
        // A script prints what is said while it takes part; the context a
        // newcomer gets is for people.
        if returning || self.config.mode == Mode::Interactive {
            // A person sees where the replayed messages end and the live
            // ones begin; a script's output stays one message a line.
            let divide =
                self.config.mode == Mode::Interactive && !self.config.raw_json && !lines.is_empty();
            if divide {
                let count = lines.len();
                self.show(Line::Divider(if returning {
                    format!(
                        "{} while you were away",
                        plural(count, "message", "messages")
                    )
                } else {
                    plural(count, "earlier message", "earlier messages")
                }));
            }
            for line in lines {
                self.show_server(line);
            }
            if divide {
                self.show(Line::Divider("now".into()));
            }
        }
        for text in checked.resent {
            self.show(Line::Status(format!(
                "the server never got this message before the connection dropped; \
                 sending it again: {text}"
            )));
        }
        for text in checked.unknown {
            self.undelivered += 1;
            self.show(Line::Error(format!(
                "the connection dropped before the server confirmed this message, and the server \
                 no longer holds the messages of that time: it may not have been delivered: {text}"
            )));
        }
        for (seq, line) in std::mem::take(&mut self.held) {
            if self.fresh(seq) {
                self.show_now(line);
            }
        }
        // Names to complete: everyone online now (what is said from now on
        // keeps it current).
        if self.config.mode == Mode::Interactive && !self.config.raw_json {
            let id = id::message_id(&mut self.rng);
            self.send(&ClientMessage::ListUsers { id: id.clone() });
            self.roster_request = Some(id);
        }
        self.flush();
        self.check_ending();
    }

    /// What the catch-up for our `since` says: whether it comes from
    /// another numbering than the one we counted in (the numbers seen mean
    /// nothing any more), and whether messages were missed.
    ///
    /// A server that names its numbering (`epoch`) says so: it then
    /// answered as for `since: 0`, and `complete` is about its own
    /// numbering. One that does not (older servers) shows a renumbering
    /// only when our `since` is beyond what it ever counted: it sends
    /// everything it holds, marked incomplete although nothing of its own
    /// numbering is missing unless it no longer holds message 1. Once such
    /// a server has counted past our `since` again, a renumbering cannot
    /// be seen at all: only the epoch tells.
    fn read_catch_up(
        &self,
        messages: &[ServerMessage<'_>],
        complete: bool,
        epoch: Option<&str>,
    ) -> Reading {
        let plain = Reading {
            renumbered: false,
            missed: !complete,
        };
        let Some(since) = self.login_since else {
            return plain; // a newcomer: nothing seen to forget
        };
        if let (Some(ours), Some(theirs)) = (self.epoch.as_deref(), epoch) {
            return Reading {
                renumbered: ours != theirs,
                missed: !complete,
            };
        }
        let first = messages.iter().find_map(|m| match m {
            ServerMessage::TextBroadcast { seq, .. } => *seq,
            _ => None,
        });
        if !complete && first.is_none_or(|first| first <= since) {
            return Reading {
                renumbered: true,
                missed: first.is_some_and(|first| first > 1),
            };
        }
        plain
    }

    /// Whether a message numbered `seq` is new (and if so, remember it).
    /// v1 messages have no number and are always new.
    fn fresh(&mut self, seq: Option<u64>) -> bool {
        let Some(seq) = seq else {
            return true;
        };
        if self.last_seq.is_some_and(|last| seq <= last) {
            return false;
        }
        self.last_seq = Some(seq);
        true
    }

    /// Shows a line for something the server just said; on v2 while
    /// logging in, holds it until the catch-up has been shown.
    fn show_live(&mut self, seq: Option<u64>, line: Line) {
        if self.version == Version::V2 && matches!(self.link, Link::LoggingIn { .. }) {
            self.held.push((seq, line));
        } else if self.fresh(seq) {
            self.show_now(line);
        }
    }

    /// Shows a line said just now, ringing the bell with it if it names
    /// the user: when it is shown, not when it arrived (it may have been
    /// held until a login completed).
    fn show_now(&mut self, line: Line) {
        if self.config.raw_json {
            return; // the frame itself was shown
        }
        self.update_pending();
        if self.config.bell && line.is_mention() {
            self.events.push_back(Event::Bell);
        }
        self.show(line);
    }

    /// v2: a user left.
    fn left(&mut self, username: String, reason: LeaveReason, at: u64) {
        self.roster.remove(&username);
        let ours = self
            .display_name
            .as_deref()
            .is_some_and(|me| name_key(me) == name_key(&username));
        if !ours {
            return self.show_live(
                None,
                Line::Left {
                    name: username,
                    reason,
                    at,
                },
            );
        }
        if reason != LeaveReason::Logout {
            return; // an old connection of ours went away; we are still here
        }
        if self.logout.take().is_some() {
            self.show(Line::Status(format!(
                "logged out: the name {username} is free"
            )));
            self.leave(Exit::Success);
        } else {
            self.leave(Exit::Failure(format!(
                "logged out from another connection: the name '{username}' was released"
            )));
        }
    }

    /// The text of `/who`'s answer.
    fn who_is_online(&self, users: &[UserPresence<'_>]) -> String {
        let me = self.display_name.as_deref();
        let names: Vec<String> = users
            .iter()
            .map(|user| {
                let you = me == Some(&*user.username);
                let name = render::shown_name(&user.username);
                match (you, user.connections) {
                    (true, 1) => format!("{name} (you)"),
                    (true, n) => format!("{name} (you, {n} devices)"),
                    (false, n) if n > 1 => format!("{name} ({n} devices)"),
                    (false, _) => name.into_owned(),
                }
            })
            .collect();
        format!("online ({}): {}", users.len(), names.join(", "))
    }

    /// Why a v2-only command cannot run now, if it cannot.
    fn v2_unavailable(&self, what: &str) -> Option<String> {
        if !self.is_online() {
            Some(format!(
                "not connected: {what} works once the connection is back"
            ))
        } else if self.version == Version::V1 {
            Some(format!(
                "this server speaks protocol v1, which has no {what}"
            ))
        } else {
            None
        }
    }

    fn who(&mut self) {
        if let Some(why) = self.v2_unavailable("/who") {
            return self.show(Line::Info(why));
        }
        let message = ClientMessage::ListUsers {
            id: id::message_id(&mut self.rng),
        };
        self.send(&message);
    }

    /// `/logout`: releases the name at once, then leaves once the server
    /// confirms (its `logoutBroadcast` of our name).
    fn log_out(&mut self, now: Instant) {
        if let Some(why) = self.v2_unavailable("/logout") {
            let hint = match self.version {
                Version::V1 if self.is_online() => {
                    "; /quit leaves, and the server frees the name some minutes later"
                }
                _ => "; /quit leaves, keeping the name reserved for a while",
            };
            return self.show(Line::Info(format!("{why}{hint}")));
        }
        let unsent = self.outbox.clear_queued();
        if unsent > 0 {
            self.show(Line::Status(format!(
                "{} not sent",
                plural(unsent, "queued message was", "queued messages were")
            )));
        }
        let id = id::message_id(&mut self.rng);
        self.send(&ClientMessage::Logout { id: id.clone() });
        self.logout = Some((id, now + self.config.login_timeout));
    }

    /// The server answered with an error.
    fn refused(
        &mut self,
        code: ErrorCode,
        reply_to: Option<&str>,
        description: Option<&str>,
        now: Instant,
    ) {
        match self.link {
            Link::LoggingIn { .. } => {
                if let Some(join) = self.held_join.take() {
                    self.show_server(join); // someone else's, after all
                }
                // The server cannot log anyone in right now (its store is
                // failing): once online before, wait and try again, as
                // after a dropped connection.
                if code == ErrorCode::Unavailable && self.been_online {
                    self.actions.push_back(Action::Close);
                    let reason = format!(
                        "the server could not log you in: {}",
                        describe(code, description)
                    );
                    return self.lost(&reason, now);
                }
                let name = &self.config.username;
                let about_the_name =
                    matches!(code, ErrorCode::LoginTaken | ErrorCode::InvalidUsername);
                let reason = match code {
                    ErrorCode::LoginTaken if self.secret.is_some() => format!(
                        "the name '{name}' is taken and the secret given for it does not match; \
                         pick another or wait until it is released"
                    ),
                    ErrorCode::LoginTaken => format!(
                        "the name '{name}' is taken; pick another or wait until it is released"
                    ),
                    ErrorCode::InvalidUsername => format!(
                        "the server does not accept the name '{name}': {}",
                        describe(code, description)
                    ),
                    _ => format!(
                        "the server refused the login: {}",
                        describe(code, description)
                    ),
                };
                if !about_the_name || self.been_online {
                    return self.leave(Exit::Failure(reason));
                }
                if self.config.ask_name {
                    self.actions.push_back(Action::Close);
                    self.link = Link::AskingName;
                    return self.events.push_back(Event::AskName(reason));
                }
                self.leave(Exit::NameRefused(reason));
            }
            Link::Online { .. } => {
                if let Some((id, _)) = &self.logout
                    && reply_to == Some(id.as_str())
                {
                    // Not logged in any more: released from elsewhere already.
                    self.logout = None;
                    self.show(Line::Status("logged out".into()));
                    return self.leave(Exit::Success);
                }
                let about_a_message = matches!(
                    code,
                    ErrorCode::EmptyMessage
                        | ErrorCode::MessageTooLong
                        | ErrorCode::MessagingWhileNotLoggedIn
                        | ErrorCode::RateLimited
                        | ErrorCode::Unavailable
                        | ErrorCode::Unknown
                );
                // Whether the error is about one of our messages, and the
                // one it took out of flight.
                let (about_ours, refused) = match self.version {
                    Version::V2 => {
                        let refused = reply_to.and_then(|id| self.outbox.answered(id));
                        (refused.is_some(), refused)
                    }
                    // v1 cannot say which: the oldest in flight, if any.
                    Version::V1 if about_a_message => (true, self.outbox.refuse_oldest()),
                    Version::V1 => (false, None),
                };
                if code == ErrorCode::RateLimited
                    && let Some(sent) = refused
                {
                    return self.too_fast(sent, description, now);
                }
                if code == ErrorCode::Unavailable
                    && let Some(sent) = refused
                {
                    return self.not_saved(sent, now);
                }
                let refused_one = refused.is_some();
                let description = describe(code, description);
                let line = if about_ours {
                    format!("your message was not sent: {description}")
                } else if about_a_message {
                    format!("the server refused: {description}")
                } else {
                    format!(
                        "the server did not understand chat-cli ({description}); please report this"
                    )
                };
                self.show_server(Line::Error(line));
                if refused_one {
                    self.undelivered += 1;
                    self.flush();
                    self.check_ending();
                }
            }
            _ => {}
        }
    }

    /// The server refused our message `text` as sent too fast: send it
    /// again, first, once the server allows, then one at a time.
    fn too_fast(&mut self, sent: outbox::Sent, description: Option<&str>, now: Instant) {
        if self.send_again_later(sent, description, now) {
            let limit = pacing::the_limit(description.unwrap_or_default());
            let line = match limit {
                "" => "sending slower: the server limits how fast messages may be sent".into(),
                limit => format!("sending slower: the server limits messages ({limit})"),
            };
            self.show(Line::Status(line));
        }
    }

    /// Puts `sent` back first in line, to be sent again when `description`
    /// says (a second if it says nothing), then one at a time; whether
    /// this is the first such wait, to be said.
    fn send_again_later(
        &mut self,
        sent: outbox::Sent,
        description: Option<&str>,
        now: Instant,
    ) -> bool {
        self.outbox.send_again(sent);
        self.outbox.set_window(1);
        let (resume_at, first) = self.pacing.limited(description, now);
        // Waiting as asked is not a lack of progress.
        if let Some(ending) = self.ending {
            self.ending = Some(ending.max(resume_at + self.config.linger));
        }
        first
    }

    /// The server could not save our message `sent` (its store is failing)
    /// and did not send it: send it again, first, in a second, then one at
    /// a time, saying so once.
    fn not_saved(&mut self, sent: outbox::Sent, now: Instant) {
        if self.send_again_later(sent, None, now) {
            let line = "the server cannot save messages right now; yours will be sent again";
            self.show(Line::Status(line.into()));
        }
    }

    /// The connection is gone: give up before the first login, else retry.
    fn lost(&mut self, reason: &str, now: Instant) {
        let was = std::mem::replace(&mut self.link, Link::Done);
        // The next connection's rate limit starts afresh.
        self.pacing.reconnected();
        self.held_join = None;
        self.accepted = None;
        self.held.clear();
        if !self.been_online {
            let reason = match was {
                Link::Connecting { .. } => {
                    format!("could not connect to {}: {reason}", self.config.server)
                }
                _ => format!(
                    "the connection to {} closed before the login was answered: {reason}",
                    self.config.server
                ),
            };
            return self.finish(Exit::Failure(reason));
        }
        if self.logout.take().is_some() {
            return self.finish(Exit::Failure(format!(
                "the connection dropped before the server confirmed the logout ({reason}); \
                 the name may still be reserved"
            )));
        }
        if let Link::Online { since, .. } = was
            && now.saturating_duration_since(since) >= self.config.stable_after
        {
            self.failures = 0;
        }
        match self.version {
            // The catch-up after the next login will tell.
            Version::V2 => self.outbox.park_in_flight(),
            Version::V1 => {
                for text in self.outbox.take_in_flight() {
                    self.maybe_lost(&text);
                }
            }
        }
        let delay = self.config.backoff.delay(self.failures, &mut self.rng);
        self.failures = self.failures.saturating_add(1);
        self.link = Link::Waiting {
            retry_at: now + delay,
        };
        // One line per change of state, not one per attempt: while the
        // server stays down for the same reason, nothing more is said until
        // it is back (or fails otherwise).
        let status = match was {
            Link::Online { .. } => {
                self.retry_failure = None;
                Some(format!(
                    "connection lost ({reason}); reconnecting in {}",
                    seconds(delay)
                ))
            }
            _ if self.retry_failure.as_deref() == Some(reason) => None,
            _ => {
                self.retry_failure = Some(reason.to_owned());
                Some(format!(
                    "could not reconnect ({reason}); still trying, at most {} apart",
                    seconds(self.config.backoff.max)
                ))
            }
        };
        if let Some(status) = status {
            self.show(Line::Status(status));
        }
        self.check_ending();
    }

    /// A message that may or may not have reached the server.
    fn maybe_lost(&mut self, text: &str) {
        self.undelivered += 1;
        self.show(Line::Error(format!(
            "the connection dropped before the server confirmed this message; \
             it may not have been delivered: {text}"
        )));
    }

    fn say(&mut self, text: String) {
        match self.outbox.push(text) {
            Ok(()) if self.is_online() => self.flush(),
            Ok(()) => {
                if self.been_online && self.config.mode == Mode::Interactive {
                    self.show(Line::Status(format!(
                        "not connected: your message will be sent when the connection is back \
                         ({} waiting)",
                        self.outbox.queued()
                    )));
                }
            }
            Err(outbox::Full) => {
                self.undelivered += 1;
                self.show(Line::Error(format!(
                    "not sent: the connection is down and {} are already waiting",
                    plural(self.outbox.queued(), "message", "messages")
                )));
            }
        }
    }

    /// Sends what the window allows.
    fn flush(&mut self) {
        if !self.is_online() || self.logout.is_some() || self.pacing.is_paused() {
            return;
        }
        if self.pacing.is_slow() && self.outbox.queued() == 0 && self.outbox.in_flight() == 0 {
            self.pacing.drained();
            self.outbox.set_window(self.config.window);
        }
        let rng = &mut self.rng;
        while let Some(sent) = self.outbox.next_to_send(|| id::message_id(rng)) {
            let message = ClientMessage::TextFromUser {
                id: sent.id,
                text: sent.text,
            };
            let text = String::from_utf8(message.encode()).unwrap_or_default();
            self.actions.push_back(Action::Send(text));
        }
    }

    /// `/quit`: leaves, unless messages still wait to be sent; then it
    /// says which and leaves only when typed again.
    fn quit_typed(&mut self, asked_before: bool, now: Instant) {
        let waiting = self.outbox.waiting();
        if waiting.is_empty() || asked_before {
            return self.quit(now);
        }
        self.quit_asked = true;
        let mut text = format!(
            "{} not sent yet (the connection is down):",
            plural(waiting.len(), "message is", "messages are")
        );
        for message in &waiting {
            text.push_str(&format!("\n  {message}"));
        }
        text.push_str(
            "\nthey are sent once the connection is back; /quit again leaves without them",
        );
        self.show(Line::Info(text));
    }

    /// Leaves: at once, or once the server has confirmed the messages on
    /// their way (waiting at most `linger`). Messages that were never sent,
    /// or whose fate a dropped connection left unknown, are shown and make
    /// it a failure.
    fn quit(&mut self, now: Instant) {
        for text in self.outbox.take_unchecked() {
            self.maybe_lost(&text);
        }
        let queued = self.outbox.take_queued();
        for text in &queued {
            self.show(Line::Error(format!("not sent: {text}")));
        }
        self.undelivered += queued.len();
        if self.outbox.in_flight() > 0 && self.is_online() {
            // Sent a moment ago, most likely: its echo is on its way.
            self.ending = Some(now + self.config.linger);
            return self.check_ending();
        }
        self.leave_as_delivered();
    }

    /// Leaves with success if every message was delivered, else saying how
    /// many were not.
    fn leave_as_delivered(&mut self) {
        let exit = match self.undelivered {
            0 => Exit::Success,
            n => Exit::Failure(format!(
                "{} not delivered",
                plural(n, "message was", "messages were")
            )),
        };
        self.leave(exit);
    }

    /// A script whose input ended finishes once everything is confirmed.
    fn check_ending(&mut self) {
        if self.ending.is_none()
            || !self.been_online
            || !self.outbox.is_empty()
            || self.logout.is_some()
        {
            return;
        }
        self.leave_as_delivered();
    }

    /// Closes the connection, if any, and finishes.
    fn leave(&mut self, exit: Exit) {
        if matches!(
            self.link,
            Link::Connecting { .. } | Link::LoggingIn { .. } | Link::Online { .. }
        ) {
            self.actions.push_back(Action::Close);
        }
        self.finish(exit);
    }

    fn finish(&mut self, exit: Exit) {
        self.link = Link::Done;
        self.logout = None;
        self.events.push_back(Event::Finished(exit));
    }

    fn send(&mut self, message: &ClientMessage) {
        let text = String::from_utf8(message.encode()).unwrap_or_default();
        self.actions.push_back(Action::Send(text));
    }

    fn show(&mut self, line: Line) {
        // What is pending is brought up to date first, so that a message
        // confirmed now is never on screen twice, not even for a moment.
        self.update_pending();
        self.events.push_back(Event::Line(line));
    }

    /// Interactive: says what is pending when it changed.
    fn update_pending(&mut self) {
        if self.config.mode != Mode::Interactive {
            return;
        }
        let pending = self.pending_lines();
        if pending != self.pending {
            self.pending = pending.clone();
            self.events.push_back(Event::Pending(pending));
        }
    }

    /// The user's messages not confirmed yet, in the order typed: those
    /// whose fate a dropped connection left open, those on their way, those
    /// waiting to be sent.
    fn pending_lines(&self) -> Vec<Line> {
        let texts = self.outbox.pending();
        let waiting = !self.is_online();
        let mut lines: Vec<Line> = texts
            .iter()
            .take(PENDING_SHOWN)
            .map(|text| Line::Pending {
                from: self.username().to_owned(),
                text: (*text).to_owned(),
                waiting,
            })
            .collect();
        if texts.len() > PENDING_SHOWN {
            let more = texts.len() - PENDING_SHOWN;
            let noun = if more == 1 { "message" } else { "messages" };
            lines.push(Line::Info(format!("… and {more} more {noun}")));
        }
        lines
    }

    /// A line that only restates a server message: `--json` already showed
    /// the message itself.
    fn show_server(&mut self, line: Line) {
        if !self.config.raw_json {
            self.show(line);
        }
    }
}

/// What `--json` shows of the frame `text` (which decoded as `message`):
/// the frame as it is, except the secret of a `loginMessage`, which would
/// reclaim the name for whoever reads the output (a log, a terminal
/// recording). The secret's JSON string is replaced where it appears; if
/// the server escaped it some other way, the message is encoded afresh.
fn redacted<'t>(text: &'t str, message: &ServerMessage<'_>) -> Cow<'t, str> {
    const REDACTED: &str = "<redacted>";
    let ServerMessage::LoginMessage { secret, .. } = message else {
        return Cow::Borrowed(text);
    };
    if secret.is_empty() {
        return Cow::Borrowed(text);
    }
    let quoted = serde_json::to_string(secret).unwrap_or_default();
    if text.contains(&quoted) {
        return Cow::Owned(text.replace(&quoted, &format!("\"{REDACTED}\"")));
    }
    let mut message = message.clone();
    if let ServerMessage::LoginMessage { secret, .. } = &mut message {
        *secret = REDACTED.into();
    }
    Cow::Owned(String::from_utf8(message.encode()).unwrap_or_default())
}

/// What a catch-up says besides its messages.
struct Reading {
    /// Its `seq` numbers count from another start than those seen before.
    renumbered: bool,
    /// Messages we asked for are no longer held.
    missed: bool,
}

/// The server compares names case-insensitively after NFC normalisation.
pub(crate) fn name_key(name: &str) -> String {
    crate::username::key(name)
}

/// The server's description, or a plain default when it gave none.
fn describe(code: ErrorCode, description: Option<&str>) -> String {
    if let Some(description) = description.filter(|d| !d.trim().is_empty()) {
        return description.to_owned();
    }
    match code {
        ErrorCode::MessagingWhileNotLoggedIn => "you are not logged in",
        ErrorCode::LoginTaken => "the name is taken",
        ErrorCode::AlreadyLoggedIn => "this connection is already logged in",
        ErrorCode::BytesReceived => "binary frames are not accepted",
        ErrorCode::InvalidJson => "a malformed message",
        ErrorCode::InvalidUsername => "the name is not valid",
        ErrorCode::EmptyMessage => "the message is empty",
        ErrorCode::MessageTooLong => "the message is too long",
        ErrorCode::RateLimited => "you are sending too fast; wait a moment",
        ErrorCode::Unavailable => "the server cannot do that right now; try again in a moment",
        ErrorCode::Unknown => "no reason given",
    }
    .to_owned()
}

fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} s", d.as_secs_f64().round())
    }
}

/// "1 message", "2 messages"; irregular forms take both.
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests;
