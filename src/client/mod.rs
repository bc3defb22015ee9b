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
//! // Offer protocol v3, then v2, in the handshake…
//! assert_eq!(
//!     client.poll_action(),
//!     Some(Action::Connect { subprotocol: Some("wschat.v3, wschat.v2") })
//! );
//!
//! // …of which the server selected v2 in its `101` response.
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
mod config;
mod link;
mod login;
mod messages;
mod outbox;
mod pacing;
mod presence;
pub mod render;
mod room_commands;
mod room_text;
pub mod rooms;
pub mod secrets;
mod typed;
mod v3;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::protocol::{ClientMessage, ErrorCode, ServerMessage, Version};
pub use backoff::Backoff;
pub use completion::{Completion, Roster};
pub use config::{ClientConfig, Mode, OnNameRefused, Output};
use link::{Link, Retries};
use login::Seen;
use outbox::Outbox;
use pacing::Pacing;
pub use render::{ClockTime, Line};
use rooms::{Rooms, is_lobby};
pub use secrets::{Saved, SavedAt, SecretStore};

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
    /// Ask the user for a name and hand it to [`Client::handle_name_saved`];
    /// nothing happens until then. `None`: none was given, and the server
    /// is there (connected). `Some`: the server refused the name typed at
    /// the prompt ([`OnNameRefused::AskAnother`]), for this reason.
    AskName(Option<String>),
    /// The server named its message store (v2's `epoch`) at a login:
    /// remember it for this server ([`SecretStore::set_epoch`]), so that it
    /// is known as the same server under another address (its secrets are
    /// then used there too).
    ServerStore(String),
    /// Ring the terminal bell with the next line: it names the user and
    /// was said just now ([`Output::Lines`] with `bell`).
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

/// v3: how long read markers wait, gathered, before they are sent.
pub const READ_DELAY: Duration = Duration::from_secs(1);

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

/// The sans-IO chat client. `R` draws message ids and backoff jitter.
///
/// After each `handle_*` call, drain [`poll_action`](Self::poll_action),
/// then [`poll_event`](Self::poll_event), then sleep until
/// [`poll_timeout`](Self::poll_timeout) or the next input.
///
/// What lasts for the whole session lives in its fields; what belongs to
/// one connection, or to one login on it, lives in the state of the link
/// (`link.rs`), so that it cannot outlive them.
pub struct Client<R> {
    config: ClientConfig,
    rng: R,
    link: Link,
    /// The protocol to offer on the next connection: v3 (and v2, which a
    /// server that does not speak v3 selects), until a server turned both
    /// down; then v1 for the rest of the session.
    offer: Version,
    /// The protocol of the current (or last) connection.
    version: Version,
    /// The name as the server spells it, once a login succeeded. Before
    /// that every failure is final; after it, failures are retried.
    display_name: Option<String>,
    /// What to send with the next login: given, saved, or last issued.
    secret: Option<String>,
    /// What the driver has saved (or been asked to save).
    saved_secret: Option<String>,
    /// Reconnection attempts that failed, for the backoff and the notices.
    retries: Retries,
    outbox: Outbox,
    /// Slower sending after the server rate-limited a message of ours.
    pacing: Pacing,
    /// Set when the input ended (or `/quit` waits for messages in flight):
    /// finish by then.
    ending: Option<Instant>,
    /// Messages refused, or maybe lost with a connection.
    undelivered: usize,
    /// v2: how far into the server's numbered messages the client has seen.
    seen: Seen,
    /// `/quit` was typed while messages waited to be sent, and the user was
    /// asked to type it again to leave without them.
    quit_asked: bool,
    /// Interactive: the session ended by `/quit` or Ctrl-D after a login,
    /// so the name stays reserved ([`Client::farewell`]).
    quit_logged_in: bool,
    /// The server said it could not save a message of ours, and has not
    /// saved one since: the next one saved is worth a line.
    store_failing: bool,
    /// Who is online (and v3: which rooms there are), for tab completion.
    roster: Roster,
    /// v3: the rooms and DMs of this name, and the current one.
    rooms: Rooms,
    /// v3: room requests sent on this connection and not answered yet.
    requests: Vec<(String, v3::Request)>,
    /// v3: read markers to send, by room (the highest `seq` seen), at
    /// most once per [`READ_DELAY`]: a busy room costs no message of the
    /// user's rate.
    reads: std::collections::BTreeMap<String, u64>,
    /// When to send `reads`.
    read_due: Option<Instant>,
    /// The login that completed last came back after a drop (its
    /// catch-up is of what was missed, not context for a newcomer).
    returning: bool,
    /// v2: who was shown online when the connection dropped and has not
    /// been heard of since (a restarted server announces them joining
    /// again, or does not know them any more): settled by the next
    /// `userList`.
    carried: Vec<String>,
    /// v2: who was shown online before a drop and was not online after it,
    /// although no line said so: said before they are shown joining.
    gone: Vec<String>,
    /// What the last [`Event::Pending`] said.
    pending: Vec<Line>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl<R: Rng> Client<R> {
    /// A client that starts connecting at once.
    pub fn new(config: ClientConfig, rng: R, now: Instant) -> Self {
        let mut client = Client {
            secret: login::first_secret(&config),
            saved_secret: config.saved_secret.clone(),
            outbox: Outbox::new(config.outbox_capacity, config.window),
            pacing: Pacing::default(),
            config,
            rng,
            link: Link::Done,
            offer: Version::V3,
            version: Version::V2,
            display_name: None,
            retries: Retries::default(),
            ending: None,
            undelivered: 0,
            seen: Seen::default(),
            quit_asked: false,
            quit_logged_in: false,
            store_failing: false,
            roster: Roster::default(),
            rooms: Rooms::default(),
            requests: Vec::new(),
            reads: Default::default(),
            read_due: None,
            returning: false,
            carried: Vec::new(),
            gone: Vec::new(),
            pending: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        // `--room`, `--to`: what is read before the login goes there too.
        if let Some(room) = client.config.room.clone() {
            client.rooms.switch(&room);
        }
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
        matches!(self.link, Link::Online(_))
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.link, Link::Done)
    }

    /// Whether a typed line can still do anything: not once finished, nor
    /// while a `/logout` or a `/quit` waits for the server (then the client
    /// only ends).
    pub fn reads_lines(&self) -> bool {
        !self.is_finished() && !self.logging_out() && self.ending.is_none()
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

    /// Whether any login succeeded. Before that every failure is final;
    /// after it, failures are retried.
    fn been_online(&self) -> bool {
        self.display_name.is_some()
    }

    // ---- inputs: the server ----
    //
    // The connection's own inputs (`handle_connected`, …) are in `link`,
    // the user's (`handle_line`, …) in `typed`.

    /// A text frame arrived.
    pub fn handle_text(&mut self, text: &str, now: Instant) {
        if !matches!(self.link, Link::LoggingIn(_) | Link::Online(_)) {
            return;
        }
        self.heard(now);
        let message = ServerMessage::decode(text.as_bytes());
        if let Output::Json { show_secret } = self.config.output {
            let shown = match &message {
                Ok(message) if !show_secret => redacted(text, message),
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
            } => self.on_login_broadcast(&username, &location, timestamp),
            ServerMessage::LoginMessage {
                username, secret, ..
            } => self.on_login_message(username.into_owned(), secret.into_owned(), now),
            ServerMessage::History {
                messages,
                complete,
                epoch,
                room,
                ..
            } => self.on_history(messages, complete, epoch.as_deref(), room.as_deref(), now),
            ServerMessage::TextBroadcast {
                username,
                message,
                reply_to,
                seq,
                timestamp,
                room,
                ..
            } => self.on_text_broadcast(
                &username,
                &message,
                reply_to.as_deref(),
                (room.as_deref(), seq),
                timestamp,
                now,
            ),
            ServerMessage::ErrorMessage {
                error,
                reply_to,
                description,
                ..
            } => self.on_error(error, reply_to.as_deref(), description.as_deref(), now),
            ServerMessage::UserList {
                users, reply_to, ..
            } => self.on_user_list(&users, &reply_to),
            ServerMessage::LogoutBroadcast {
                username,
                reason,
                timestamp,
                ..
            } => self.on_logout_broadcast(username.into_owned(), reason, timestamp),
            ServerMessage::Presence {
                room: Some(room),
                joined,
                joined_count,
                left,
                left_count,
                timestamp,
                ..
            } => {
                let line = presence_line(joined, joined_count, left, left_count, timestamp);
                self.on_room_presence(&room, line);
            }
            ServerMessage::Presence {
                joined,
                joined_count,
                left,
                left_count,
                timestamp,
                ..
            } => self.on_presence(joined, joined_count, left, left_count, timestamp),
            // v3: rooms and direct messages.
            notice @ ServerMessage::Notice { .. } => self.on_notice(notice),
            ServerMessage::Member {
                room,
                username,
                change,
                timestamp,
                ..
            } => self.on_member(&room, &username, change, timestamp),
            membership @ ServerMessage::Membership { .. } => self.on_membership(membership),
            ServerMessage::RoomList {
                reply_to, rooms, ..
            } => self.on_room_list(&reply_to, rooms),
            ServerMessage::MemberList {
                reply_to,
                room,
                members,
                more,
                ..
            } => self.on_member_list(&reply_to, &room, members, more),
            ServerMessage::Rooms { rooms, changes, .. } => self.on_rooms(rooms, changes, now),
            ServerMessage::ReadMarker { room, seq, .. } => self.on_read_marker(&room, seq),
        }
        self.schedule_reads(now);
    }

    // ---- inputs: time ----

    /// Time has reached `now`. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.read_due.is_some_and(|due| now >= due) {
            self.send_reads();
        }
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
            return self.give_up_ending();
        }
        if self.logout().is_some_and(|logout| now >= logout.deadline) {
            return self.leave(Exit::Failure(format!(
                "the server did not confirm the logout within {}; the name may still be reserved",
                seconds(self.config.login_timeout)
            )));
        }
        self.link_timeout(now);
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
        let link = self.link.deadline(&self.config)?;
        [
            Some(link),
            self.ending,
            self.logout().map(|logout| logout.deadline),
            self.pacing.poll_timeout(),
            self.read_due,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals: ending ----

    /// Closes the connection, if any, and finishes.
    fn leave(&mut self, exit: Exit) {
        if self.link.is_connected() {
            self.actions.push_back(Action::Close);
        }
        self.finish(exit);
    }

    fn finish(&mut self, exit: Exit) {
        // Whatever the connection held (a logout waited for, among others)
        // ends with it.
        self.link = Link::Done;
        self.events.push_back(Event::Finished(exit));
    }

    // ---- internals: output ----

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
        let me = self.username();
        let mut lines: Vec<Line> = texts
            .iter()
            .take(PENDING_SHOWN)
            .map(|(text, room)| {
                let line = Line::Pending {
                    from: me.to_owned(),
                    text: (*text).to_owned(),
                    waiting,
                };
                // Where it goes, unless to the current room (v3).
                match room {
                    Some(room) if !self.rooms.is_current(Some(room)) => {
                        line.in_room(rooms::label(room, me, me))
                    }
                    _ => line,
                }
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
        if !self.config.output.is_json() {
            self.show(line);
        }
    }

    /// Shows a line for something the server just said; on v2 while
    /// logging in, holds it until the catch-up has been shown.
    fn show_live(&mut self, seq: Option<u64>, line: Line) {
        if let Link::LoggingIn(login) = &mut self.link
            && self.version >= Version::V2
        {
            login.held.push((seq, line));
        } else if self.seen.fresh(seq) {
            self.show_now(line);
        }
    }

    /// Shows a line said just now, ringing the bell with it if it names
    /// the user: when it is shown, not when it arrived (it may have been
    /// held until a login completed).
    fn show_now(&mut self, line: Line) {
        let Output::Lines { bell } = self.config.output else {
            return; // the frame itself was shown
        };
        self.update_pending();
        if bell && line.is_mention() {
            self.events.push_back(Event::Bell);
        }
        self.show(line);
    }
}

/// The line of a `presence` summary.
fn presence_line(
    joined: Vec<Cow<'_, str>>,
    joined_count: u64,
    left: Vec<Cow<'_, str>>,
    left_count: u64,
    at: u64,
) -> Line {
    let names = |names: Vec<Cow<'_, str>>| names.into_iter().map(Cow::into_owned).collect();
    Line::Presence {
        joined: names(joined),
        joined_count,
        left: names(left),
        left_count,
        at,
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

/// The server's key of a name: two names are one when their keys match
/// (NFKC_Casefold, then the UTS #39 confusable skeleton; see `username`).
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
        ErrorCode::InvalidRoom => "not a valid room name",
        ErrorCode::NoSuchUser => "no such user",
        ErrorCode::NotAMember => "you are not in that room",
        ErrorCode::Forbidden => "you may not do that",
        ErrorCode::Banned => "you are banned from that room",
        ErrorCode::Muted => "you are muted in that room",
        ErrorCode::LimitReached => "a limit of the server's was reached",
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
