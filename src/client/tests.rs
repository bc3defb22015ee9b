//! The client on a virtual clock: given these inputs at these instants,
//! expect exactly these actions and events. Here against a server that
//! speaks v1 (it selects no subprotocol); `v2` has the v2 ones.

mod connect_first;
mod same_server;
mod v2;
mod v3;

use std::time::{Duration, Instant};

use rand::{SeedableRng, rngs::StdRng};

use super::*;
use crate::protocol::{LeaveReason, SUBPROTOCOL_V2, UserPresence};

pub(super) const NOON: ClockTime = ClockTime {
    hour: 12,
    minute: 0,
};

pub(super) struct Harness {
    pub(super) client: Client<StdRng>,
    pub(super) now: Instant,
    /// Every message the client sent, in order.
    pub(super) sent: Vec<ClientMessage>,
    /// Whether `drain` shows [`Event::Pending`] (most tests are about
    /// something else).
    pub(super) pending: bool,
    /// Every store the server named ([`Event::ServerStore`]), in order.
    pub(super) stores: Vec<String>,
}

/// The time of day shown for a line: the server's timestamp in UTC when it
/// has one (the driver uses local time), else the time of printing.
fn shown_at(line: &Line) -> ClockTime {
    match line.timestamp() {
        Some(ms) => {
            let minutes = ms / 60_000 % (24 * 60);
            ClockTime {
                hour: (minutes / 60) as u8,
                minute: (minutes % 60) as u8,
            }
        }
        None => NOON,
    }
}

pub(super) fn config(mode: Mode) -> ClientConfig {
    ClientConfig::new("ws://test", "alice", mode)
}

impl Harness {
    pub(super) fn new(config: ClientConfig) -> Self {
        let now = Instant::now();
        Harness {
            client: Client::new(config, StdRng::seed_from_u64(7), now),
            now,
            sent: Vec::new(),
            pending: false,
            stores: Vec::new(),
        }
    }

    pub(super) fn interactive() -> Self {
        Harness::new(config(Mode::Interactive))
    }

    pub(super) fn script() -> Self {
        Harness::new(config(Mode::Script))
    }

    /// Everything asked for since the last call, actions first, rendered.
    pub(super) fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(action) = self.client.poll_action() {
            out.push(match action {
                // What chat-cli offers first (v3, then v2).
                Action::Connect {
                    subprotocol: Some(link::OFFER_V3),
                } => "connect".to_owned(),
                Action::Connect { subprotocol: None } => "connect v1".to_owned(),
                Action::Connect {
                    subprotocol: Some(other),
                } => panic!("offers {other}"),
                Action::Send(json) => match ClientMessage::decode(json.as_bytes())
                    .inspect(|message| self.sent.push(message.clone()))
                {
                    Ok(ClientMessage::Login {
                        id,
                        username,
                        secret,
                        since,
                        epoch,
                        ..
                    }) => {
                        assert_eq!(id.len(), crate::id::ID_LEN);
                        let mut line = format!("send login {username}");
                        if let Some(secret) = secret {
                            line.push_str(&format!(" secret={secret}"));
                        }
                        if let Some(since) = since {
                            line.push_str(&format!(" since={since}"));
                        }
                        if let Some(epoch) = epoch {
                            line.push_str(&format!(" epoch={epoch}"));
                        }
                        line
                    }
                    Ok(ClientMessage::TextFromUser { id, text, room }) => {
                        assert_eq!(id.len(), crate::id::ID_LEN);
                        match room {
                            Some(room) => format!("send text {text} to {room}"),
                            None => format!("send text {text}"),
                        }
                    }
                    Ok(other) if other.since_version() == Version::V3 => v3::summary(&other),
                    Ok(other) => format!("send {}", other.kind()),
                    Err(e) => panic!("the client sent bad JSON {json}: {e}"),
                },
                Action::Ping => "ping".to_owned(),
                Action::Close => "close".to_owned(),
            });
        }
        while let Some(event) = self.client.poll_event() {
            if let Event::ServerStore(epoch) = event {
                self.stores.push(epoch);
                continue;
            }
            if let Event::Pending(lines) = &event {
                if self.pending {
                    let lines: Vec<String> = lines.iter().map(|l| l.render(NOON, false)).collect();
                    out.push(format!("pending [{}]", lines.join(" | ")));
                }
                continue;
            }
            out.push(match event {
                Event::Line(line) => format!("show {}", line.render(shown_at(&line), false)),
                Event::SecretIssued { username, secret } => format!("save {username}={secret}"),
                Event::Finished(Exit::Success) => "exit 0".to_owned(),
                Event::Finished(Exit::Failure(reason)) => format!("exit 1: {reason}"),
                Event::Finished(Exit::NameRefused(reason)) => format!("exit 2: {reason}"),
                Event::Finished(Exit::Cancelled) => "exit 130".to_owned(),
                Event::AskName(Some(reason)) => format!("ask name: {reason}"),
                Event::AskName(None) => "ask name".to_owned(),
                Event::ServerStore(_) => unreachable!("handled above"),
                Event::Bell => "bell".to_owned(),
                Event::Pending(_) => unreachable!("handled above"),
            });
        }
        out
    }

    pub(super) fn server(&mut self, message: ServerMessage<'_>) -> Vec<String> {
        let json = String::from_utf8(message.encode()).unwrap();
        self.client.handle_text(&json, self.now);
        self.drain()
    }

    /// The handshake completed with a server that selected no subprotocol.
    pub(super) fn connected(&mut self) -> Vec<String> {
        self.client.handle_connected(None, self.now);
        self.drain()
    }

    pub(super) fn disconnected(&mut self, reason: &str) -> Vec<String> {
        self.client.handle_disconnected(reason, self.now);
        self.drain()
    }

    pub(super) fn type_line(&mut self, line: &str) -> Vec<String> {
        self.client.handle_line(line, self.now);
        self.drain()
    }

    pub(super) fn end_of_input(&mut self) -> Vec<String> {
        self.client.handle_end_of_input(self.now);
        self.drain()
    }

    /// Connects and logs in as alice with `secret`, the way a server does.
    pub(super) fn log_in(&mut self, secret: &str) -> Vec<String> {
        assert_eq!(self.drain(), ["connect"]);
        let mut out = self.connected();
        assert!(out.remove(0).starts_with("send login alice"));
        out.extend(self.server(login_broadcast("alice", "127.0.0.1")));
        out.extend(self.server(login_message("alice", secret)));
        out
    }

    /// Sleeps until the client's next deadline and wakes it; returns how
    /// long that was and what it did.
    pub(super) fn wake(&mut self) -> (Duration, Vec<String>) {
        let at = self.client.poll_timeout().expect("a deadline");
        assert!(at >= self.now, "deadline in the past");
        let slept = at - self.now;
        self.now = at;
        self.client.handle_timeout(self.now);
        (slept, self.drain())
    }

    pub(super) fn advance(&mut self, by: Duration) -> Vec<String> {
        self.now += by;
        self.client.handle_timeout(self.now);
        self.drain()
    }
}

pub(super) fn login_broadcast<'a>(name: &'a str, location: &'a str) -> ServerMessage<'a> {
    ServerMessage::LoginBroadcast {
        id: "b".into(),
        username: name.into(),
        location: location.into(),
        timestamp: None,
    }
}

pub(super) fn login_message<'a>(name: &'a str, secret: &'a str) -> ServerMessage<'a> {
    ServerMessage::LoginMessage {
        id: "l".into(),
        reply_to: None,
        username: name.into(),
        location: "127.0.0.1".into(),
        secret: secret.into(),
    }
}

pub(super) fn text<'a>(name: &'a str, message: &'a str) -> ServerMessage<'a> {
    ServerMessage::TextBroadcast {
        id: "t".into(),
        reply_to: None,
        username: name.into(),
        message: message.into(),
        seq: None,
        timestamp: None,
        room: None,
    }
}

pub(super) fn error(code: ErrorCode, description: Option<&str>) -> ServerMessage<'_> {
    ServerMessage::ErrorMessage {
        error: code,
        id: "e".into(),
        reply_to: None,
        description: description.map(Into::into),
    }
}

// ---- logging in and secrets ----

#[test]
fn logs_in_without_a_secret_saves_the_issued_one_and_hides_its_own_join() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(h.connected(), ["send login alice"]);
    assert_eq!(
        h.server(login_broadcast("alice", "127.0.0.1")),
        Vec::<String>::new()
    );
    assert_eq!(
        h.server(login_message("alice", "S1")),
        [
            "save alice=S1",
            "show 12:00 -- connected to ws://test as alice; /help lists the commands \
             (this server speaks protocol v1: no catch-up after a dropped connection, \
             no /who, no /logout)"
        ]
    );
    assert!(h.client.is_online());
}

#[test]
fn sends_the_saved_secret_and_saves_only_a_new_one() {
    let mut c = config(Mode::Interactive);
    c.saved_secret = Some("S1".into());
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(h.connected(), ["send login alice secret=S1"]);
    // The server knew it: nothing to save.
    assert_eq!(h.server(login_message("alice", "S1")).len(), 1);

    // A server that forgot the login (restarted) issues a new secret.
    let mut c = config(Mode::Script);
    c.saved_secret = Some("old".into());
    let mut h = Harness::new(c);
    assert_eq!(h.log_in("new"), ["save alice=new"]);
    // Saved once; the next login with it asks for nothing.
    h.disconnected("reset");
    h.wake();
    assert_eq!(h.connected(), ["send login alice secret=new"]);
    assert_eq!(
        h.server(login_message("alice", "new")),
        ["show 12:00 -- back online as alice"]
    );
}

#[test]
fn a_given_secret_wins_over_the_saved_one_and_is_saved_when_it_works() {
    let mut c = config(Mode::Script);
    c.saved_secret = Some("mine here".into());
    c.given_secret = Some("from my laptop".into());
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(h.connected(), ["send login alice secret=from my laptop"]);
    assert_eq!(
        h.server(login_message("alice", "from my laptop")),
        ["save alice=from my laptop"]
    );
}

#[test]
fn the_name_as_the_server_spells_it_is_the_users_name() {
    let mut c = config(Mode::Interactive);
    c.username = "ALICE".into();
    c.saved_secret = Some("S".into());
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    // Our own join, in the spelling first registered: still hidden.
    assert!(h.server(login_broadcast("alice", "127.0.0.1")).is_empty());
    h.server(login_message("alice", "S"));
    assert_eq!(h.client.username(), "alice");
    assert_eq!(h.type_line("hi"), ["send text hi"]);
    assert_eq!(
        h.server(text("alice", "hi")),
        ["show 12:00 alice (you): hi"]
    );
}

#[test]
fn a_taken_name_is_a_failure_said_in_plain_words() {
    let mut h = Harness::script();
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    // The holder reclaiming it at the same moment: shown once refused.
    assert!(h.server(login_broadcast("Alice", "10.0.0.7")).is_empty());
    assert_eq!(
        h.server(error(
            ErrorCode::LoginTaken,
            Some("the name \"alice\" is taken")
        )),
        [
            "close",
            "show 12:00 * Alice joined from 10.0.0.7",
            "exit 2: the name 'alice' is taken; pick another or wait until it is released"
        ]
    );
    assert!(h.client.is_finished());
    assert_eq!(h.client.poll_timeout(), None);

    let mut c = config(Mode::Script);
    c.saved_secret = Some("stale".into());
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    assert_eq!(
        h.server(error(ErrorCode::LoginTaken, None)),
        ["close", &format!("exit 2: {WRONG_SECRET}")]
    );
}

/// Why the client ends when its saved secret no longer holds the name.
const WRONG_SECRET: &str = "the name 'alice' is taken and the secret given for it does not \
                            match; pick another or wait until it is released";

#[test]
fn other_login_refusals_use_the_servers_description() {
    let mut h = Harness::script();
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    assert_eq!(
        h.server(error(
            ErrorCode::InvalidUsername,
            Some("the name has 40 characters; at most 32 are allowed")
        )),
        [
            "close",
            "exit 2: the server does not accept the name 'alice': \
             the name has 40 characters; at most 32 are allowed"
        ]
    );
}

#[test]
fn before_the_first_login_a_failure_is_final() {
    let mut h = Harness::script();
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(
        h.disconnected("Connection refused (os error 111)"),
        ["exit 1: could not connect to ws://test: Connection refused (os error 111)"]
    );

    let mut h = Harness::script();
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    assert_eq!(
        h.disconnected("reset"),
        ["exit 1: the connection to ws://test closed before the login was answered: reset"]
    );

    let mut h = Harness::script();
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(
        h.wake(),
        (
            Duration::from_secs(10),
            vec![
                "close".to_owned(),
                "exit 1: could not connect to ws://test: no answer within 10 s".to_owned()
            ]
        )
    );
}

// ---- showing what the server says ----

#[test]
fn shows_messages_joins_and_actions_marking_its_own() {
    let mut h = Harness::interactive();
    h.log_in("S");
    assert_eq!(h.server(text("bob", "hello")), ["show 12:00 bob: hello"]);
    assert_eq!(
        h.server(login_broadcast("carol", "10.0.0.7")),
        ["show 12:00 * carol joined from 10.0.0.7"]
    );
    // Our second device.
    assert_eq!(
        h.server(login_broadcast("alice", "10.0.0.8")),
        ["show 12:00 * alice (you) joined from 10.0.0.8"]
    );
    assert_eq!(h.type_line("/me waves"), ["send text * alice waves"]);
    assert_eq!(
        h.server(text("alice", "* alice waves")),
        ["show 12:00 * alice (you) waves"]
    );
    assert_eq!(
        h.server(text("bob", "* bob grins")),
        ["show 12:00 * bob grins"]
    );
}

#[test]
fn messages_from_others_arrive_while_logging_in() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    assert_eq!(h.server(text("bob", "early")), ["show 12:00 bob: early"]);
}

#[test]
fn server_errors_become_sentences_never_codes() {
    let mut h = Harness::interactive();
    h.log_in("S");
    let mut seen = Vec::new();
    h.type_line(&"x".repeat(5000));
    seen.extend(h.server(error(
        ErrorCode::MessageTooLong,
        Some("the message is longer than 4000 characters"),
    )));
    // Refused, so no longer in flight: the next echo confirms the next one.
    // (rateLimited is not a refusal: the message is sent again, see the
    // rate-limit tests.)
    h.type_line("y");
    seen.extend(h.server(error(ErrorCode::Unknown, None)));
    h.type_line("slower");
    seen.extend(h.server(text("alice", "slower")));
    assert_eq!(h.client.outbox.in_flight(), 0);
    seen.extend(h.server(error(
        ErrorCode::InvalidJson,
        Some("missing field \"text\""),
    )));
    assert_eq!(
        seen,
        [
            "show 12:00 !! your message was not sent: the message is longer than 4000 characters",
            "show 12:00 !! your message was not sent: no reason given",
            "show 12:00 alice (you): slower",
            "show 12:00 !! the server did not understand chat-cli (missing field \"text\"); \
             please report this"
        ]
    );
}

#[test]
fn a_frame_it_cannot_read_is_reported_and_ignored() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.client
        .handle_text("{\"type\":\"fancy\",\"id\":\"1\"}", h.now);
    h.client.handle_text("null", h.now);
    let out = h.drain();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.iter().all(|l| {
        l.contains("!! ignored a message from the server that chat-cli does not understand")
    }));
    assert!(h.client.is_online());
}

#[test]
fn json_mode_shows_every_frame_raw_and_keeps_the_status_lines() {
    let mut c = config(Mode::Script);
    c.output = Output::Json { show_secret: false };
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    let out = h.server(login_message("alice", "S3cr3t"));
    assert_eq!(
        out,
        [
            "show {\"type\":\"loginMessage\",\"id\":\"l\",\"username\":\"alice\",\
             \"location\":\"127.0.0.1\",\"secret\":\"<redacted>\"}",
            "save alice=S3cr3t",
        ]
    );
    assert_eq!(
        h.server(text("bob", "hi")),
        ["show {\"type\":\"textBroadcast\",\"id\":\"t\",\"username\":\"bob\",\"message\":\"hi\"}"]
    );
    h.client.handle_text("not json", h.now);
    assert_eq!(h.drain(), ["show not json"]);
    let out = h.disconnected("reset");
    assert!(
        out[0].starts_with("show 12:00 -- connection lost (reset)"),
        "{out:?}"
    );
}

#[test]
fn json_mode_shows_the_secret_only_when_asked() {
    let mut c = config(Mode::Script);
    c.output = Output::Json { show_secret: true };
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    let out = h.server(login_message("alice", "S3cr3t"));
    assert!(out[0].ends_with(r#""secret":"S3cr3t"}"#), "{out:?}");
}

#[test]
fn json_mode_redacts_a_secret_the_server_escaped_oddly() {
    let mut c = config(Mode::Script);
    c.output = Output::Json { show_secret: false };
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    // "S3" spelled with a \u escape: not the plain JSON string of the secret.
    h.client.handle_text(
        r#"{"type":"loginMessage","id":"l","username":"alice","location":"x","secret":"\u00533"}"#,
        h.now,
    );
    let out = h.drain();
    assert_eq!(
        out[0],
        r#"show {"type":"loginMessage","id":"l","username":"alice","location":"x","secret":"<redacted>"}"#
    );
    assert_eq!(out[1], "save alice=S3");
}

#[test]
fn a_message_naming_the_user_rings_the_bell_when_asked() {
    let mut c = config(Mode::Interactive);
    c.output = Output::Lines { bell: true };
    let mut h = Harness::new(c);
    h.log_in("S");
    // The bell rings with the line.
    assert_eq!(
        h.server(text("bob", "lunch, Alice?")),
        ["bell", "show 12:00 bob: lunch, Alice?"]
    );
    assert_eq!(
        h.server(text("bob", "@alice!")),
        ["bell", "show 12:00 bob: @alice!"]
    );
    // Not a word of its own, or our own message: no bell.
    assert_eq!(h.server(text("bob", "Alicia")), ["show 12:00 bob: Alicia"]);
    assert_eq!(
        h.server(text("bob", "alice_b")),
        ["show 12:00 bob: alice_b"]
    );
    h.type_line("hi alice");
    assert_eq!(
        h.server(text("alice", "hi alice")),
        ["show 12:00 alice (you): hi alice"]
    );

    // --no-bell: highlighted only.
    let mut h = Harness::interactive();
    h.log_in("S");
    assert_eq!(h.server(text("bob", "alice?")), ["show 12:00 bob: alice?"]);
}

// ---- commands ----

#[test]
fn commands_help_escape_and_hint() {
    let mut h = Harness::interactive();
    h.log_in("S");
    let help = h.type_line("/help");
    assert_eq!(help.len(), 1);
    assert!(help[0].starts_with("show commands:\n  /help"), "{help:?}");
    assert_eq!(h.type_line("//shrug"), ["send text /shrug"]);
    assert_eq!(
        h.type_line("/shrug"),
        ["show unknown command /shrug; /help lists the commands, //shrug sends it as a message"]
    );
    assert_eq!(
        h.type_line("/me"),
        ["show usage: /me ACTION (say what you are doing, e.g. /me waves)"]
    );
    assert_eq!(h.type_line("   "), Vec::<String>::new());
    h.server(text("alice", "/shrug"));
    assert_eq!(h.type_line("/quit"), ["close", "exit 0"]);
    assert!(h.client.is_finished());
    assert_eq!(h.type_line("after the end"), Vec::<String>::new());
}

#[test]
fn ctrl_d_leaves_at_once_and_says_what_was_not_sent() {
    let mut h = Harness::interactive();
    h.log_in("S");
    assert_eq!(h.end_of_input(), ["close", "exit 0"]);

    let mut h = Harness::interactive();
    h.log_in("S");
    h.disconnected("reset");
    h.type_line("one");
    h.type_line("two");
    // Ctrl-D cannot ask: it says which were not sent, and fails.
    assert_eq!(
        h.end_of_input(),
        [
            "show 12:00 !! not sent: one",
            "show 12:00 !! not sent: two",
            "exit 1: 2 messages were not delivered"
        ]
    );
}

#[test]
fn quit_while_messages_wait_says_which_and_asks_again() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.disconnected("reset");
    h.type_line("one");
    assert_eq!(
        h.type_line("/quit"),
        [
            "show 1 message is not sent yet (the connection is down):\n  one\n\
          they are sent once the connection is back; /quit again leaves without them"
        ]
    );
    // Anything else in between: /quit asks again.
    h.type_line("/help");
    assert_eq!(h.type_line("/quit").len(), 1);
    // Sent once back: /quit then leaves at once, successfully.
    h.wake();
    h.connected();
    h.server(login_broadcast("alice", "127.0.0.1"));
    h.server(login_message("alice", "S"));
    h.server(text("alice", "one"));
    assert_eq!(h.type_line("/quit"), ["close", "exit 0"]);

    // Typed twice in a row: leaves without them, and fails.
    let mut h = Harness::interactive();
    h.log_in("S");
    h.disconnected("reset");
    h.type_line("one");
    h.type_line("/quit");
    assert_eq!(
        h.type_line("/QUIT"),
        [
            "show 12:00 !! not sent: one",
            "exit 1: 1 message was not delivered"
        ]
    );
}

#[test]
fn a_name_refused_at_the_prompt_is_asked_again() {
    let mut c = config(Mode::Interactive);
    c.on_name_refused = OnNameRefused::AskAnother;
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    h.connected();
    assert_eq!(
        h.server(error(
            ErrorCode::InvalidUsername,
            Some("the name has 40 characters; at most 32 are allowed")
        )),
        [
            "close",
            "ask name: the server does not accept the name 'alice': \
             the name has 40 characters; at most 32 are allowed"
        ]
    );
    assert_eq!(h.client.poll_timeout(), None, "waits for the user");
    assert!(!h.client.is_finished());
    h.client
        .handle_name("bob", Some("saved-for-bob".into()), h.now);
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(h.connected(), ["send login bob secret=saved-for-bob"]);
    assert_eq!(
        h.server(error(ErrorCode::LoginTaken, None)),
        [
            "close",
            "ask name: the name 'bob' is taken and the secret given for it does not match; \
             pick another or wait until it is released"
        ]
    );
    h.client.handle_name("carol", None, h.now);
    h.drain();
    assert_eq!(h.connected(), ["send login carol"]);
    h.server(login_message("carol", "C"));
    assert!(h.client.is_online());
    // Once online, a refusal (the name taken while away) ends the session.
}

// ---- reconnecting ----

#[test]
fn reconnects_with_growing_jittered_delays_capped_at_30_s() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.now += Duration::from_secs(60);
    let out = h.disconnected("Connection reset by peer");
    assert_eq!(out.len(), 1);
    assert!(
        out[0].starts_with(
            "show 12:00 -- connection lost (Connection reset by peer); reconnecting in 0."
        ),
        "{out:?}"
    );
    let mut delays = Vec::new();
    let mut said = Vec::new();
    for attempt in 0..10 {
        let (slept, out) = h.wake();
        assert_eq!(out, ["connect"], "attempt {attempt}");
        delays.push(slept);
        let reason = match attempt {
            0..5 => "Connection refused",
            _ => "no route to host",
        };
        said.extend(h.disconnected(reason));
    }
    // One line when the trouble changes, not one per attempt.
    assert_eq!(
        said,
        [
            "show 12:00 -- could not reconnect (Connection refused); \
             still trying, at most 30 s apart",
            "show 12:00 -- could not reconnect (no route to host); \
             still trying, at most 30 s apart",
        ]
    );
    let ceilings = [
        500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000,
    ];
    for (delay, ceiling) in delays.iter().zip(ceilings) {
        let ceiling = Duration::from_millis(ceiling);
        assert!(*delay >= ceiling / 2 && *delay <= ceiling, "{delays:?}");
    }

    // Back: logs in again with the saved secret and says so.
    let (_, out) = h.wake();
    assert_eq!(out, ["connect"]);
    assert_eq!(h.connected(), ["send login alice secret=S"]);
    assert!(h.server(login_broadcast("alice", "127.0.0.1")).is_empty());
    assert_eq!(
        h.server(login_message("alice", "S")),
        ["show 12:00 -- back online as alice"]
    );
}

#[test]
fn a_stable_connection_resets_the_backoff_and_a_brief_one_does_not() {
    let mut h = Harness::interactive();
    h.log_in("S");
    fn drop_and_return(h: &mut Harness, up_for: Duration) -> Duration {
        h.now += up_for;
        h.disconnected("reset");
        let (slept, _) = h.wake();
        h.connected();
        h.server(login_message("alice", "S"));
        slept
    }
    let first = drop_and_return(&mut h, Duration::from_secs(60));
    assert!(first <= Duration::from_millis(500), "{first:?}");
    let second = drop_and_return(&mut h, Duration::from_secs(1));
    assert!(second >= Duration::from_millis(500), "{second:?}");
    let third = drop_and_return(&mut h, Duration::from_secs(1));
    assert!(third >= Duration::from_secs(1), "{third:?}");
    let fourth = drop_and_return(&mut h, Duration::from_secs(10));
    assert!(fourth <= Duration::from_millis(500), "{fourth:?}");
}

#[test]
fn a_reconnect_that_hangs_is_abandoned_and_retried() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.disconnected("reset");
    h.wake();
    h.connected();
    let (slept, out) = h.wake();
    assert_eq!(slept, Duration::from_secs(10));
    assert_eq!(out[0], "close");
    assert!(
        out[1]
            == "show 12:00 -- could not reconnect (no answer within 10 s); \
                still trying, at most 30 s apart",
        "{out:?}"
    );
    assert!(!h.client.is_finished());
}

#[test]
fn a_name_taken_while_away_ends_the_session() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.disconnected("reset");
    h.wake();
    h.connected();
    assert_eq!(
        h.server(error(ErrorCode::LoginTaken, None)),
        // Lost while away: not a name to correct, a failure.
        ["close", &format!("exit 1: {WRONG_SECRET}")]
    );
}

#[test]
fn keeps_the_connection_alive_and_notices_when_it_is_dead() {
    let mut h = Harness::interactive();
    h.log_in("S");
    assert_eq!(h.wake(), (Duration::from_secs(30), vec!["ping".to_owned()]));
    h.advance(Duration::from_secs(5));
    h.client.handle_activity(h.now); // the pong
    assert_eq!(h.wake(), (Duration::from_secs(30), vec!["ping".to_owned()]));
    let (slept, out) = h.wake();
    assert_eq!(slept, Duration::from_secs(10));
    assert_eq!(out[0], "close");
    assert!(
        out[1].starts_with(
            "show 12:00 -- connection lost (the server did not answer a ping within 10 s); \
             reconnecting in"
        ),
        "{out:?}"
    );
    assert_eq!(h.wake().1, ["connect"]);
}

#[test]
fn any_frame_counts_as_life() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.advance(Duration::from_secs(29));
    h.server(text("bob", "still here"));
    assert_eq!(h.advance(Duration::from_secs(29)), Vec::<String>::new());
    assert_eq!(h.advance(Duration::from_secs(1)), ["ping"]);
}

// ---- the outbox ----

#[test]
fn lines_typed_while_offline_are_queued_and_sent_on_return() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.disconnected("reset");
    assert_eq!(
        h.type_line("one"),
        [
            "show 12:00 -- not connected: your message will be sent when the connection is back (1 waiting)"
        ]
    );
    assert_eq!(h.type_line("two").len(), 1);
    h.wake();
    h.connected();
    h.server(login_broadcast("alice", "127.0.0.1"));
    assert_eq!(
        h.server(login_message("alice", "S")),
        [
            "send text one",
            "send text two",
            "show 12:00 -- back online as alice; sending 2 queued messages"
        ]
    );
}

#[test]
fn a_full_queue_refuses_clearly() {
    let mut c = config(Mode::Interactive);
    c.outbox_capacity = 2;
    let mut h = Harness::new(c);
    h.log_in("S");
    h.disconnected("reset");
    h.type_line("one");
    h.type_line("two");
    assert_eq!(
        h.type_line("three"),
        ["show 12:00 !! not sent: the connection is down and 2 messages are already waiting"]
    );
}

#[test]
fn messages_unconfirmed_when_the_connection_drops_are_reported() {
    let mut h = Harness::interactive();
    h.log_in("S");
    assert_eq!(h.type_line("lost?"), ["send text lost?"]);
    assert_eq!(h.type_line("kept"), ["send text kept"]);
    let _ = h.server(text("alice", "lost?"));
    let out = h.disconnected("reset");
    assert_eq!(
        out[0],
        "show 12:00 !! the connection dropped before the server confirmed this message; \
         it may not have been delivered: kept"
    );
    assert_eq!(out.len(), 2);
}

// ---- scripts ----

#[test]
fn a_script_sends_lines_as_they_are_and_leaves_once_confirmed() {
    let mut h = Harness::script();
    assert!(h.log_in("S").iter().all(|l| l.starts_with("save")));
    assert_eq!(
        h.type_line("/quit is just text"),
        ["send text /quit is just text"]
    );
    assert_eq!(h.type_line(""), Vec::<String>::new());
    assert_eq!(h.type_line("bye"), ["send text bye"]);
    assert_eq!(h.end_of_input(), Vec::<String>::new());
    assert!(!h.client.accepts_input());
    assert_eq!(
        h.server(text("alice", "/quit is just text")),
        ["show 12:00 alice (you): /quit is just text"]
    );
    assert_eq!(
        h.server(text("alice", "bye")),
        ["close", "show 12:00 alice (you): bye", "exit 0"]
    );
}

#[test]
fn a_script_whose_input_ends_before_login_waits_for_it() {
    let mut h = Harness::script();
    assert_eq!(h.drain(), ["connect"]);
    assert!(h.type_line("early").is_empty());
    assert!(h.end_of_input().is_empty());
    h.connected();
    assert_eq!(
        h.server(login_message("alice", "S")),
        ["send text early", "save alice=S"]
    );
    assert_eq!(
        h.server(text("alice", "early")),
        ["close", "show 12:00 alice (you): early", "exit 0"]
    );

    // No input at all: log in, then leave.
    let mut h = Harness::script();
    assert_eq!(h.drain(), ["connect"]);
    h.end_of_input();
    h.connected();
    assert_eq!(
        h.server(login_message("alice", "S")),
        ["close", "save alice=S", "exit 0"]
    );
}

#[test]
fn a_script_gives_up_waiting_after_the_linger_time() {
    let mut h = Harness::script();
    h.log_in("S");
    h.type_line("never echoed");
    h.end_of_input();
    h.advance(Duration::from_secs(9));
    let (slept, out) = h.wake();
    assert_eq!(slept, Duration::from_secs(1));
    assert_eq!(
        out,
        [
            "close",
            "exit 1: gave up after 10 s: the server did not confirm 1 message"
        ]
    );
}

#[test]
fn a_script_with_refused_or_lost_messages_fails() {
    let mut h = Harness::script();
    h.log_in("S");
    h.type_line("too long");
    h.end_of_input();
    assert_eq!(
        h.server(error(ErrorCode::MessageTooLong, Some("too long"))),
        [
            "close",
            "show 12:00 !! your message was not sent: too long",
            "exit 1: 1 message was not delivered"
        ]
    );

    let mut h = Harness::script();
    h.log_in("S");
    h.type_line("maybe");
    h.end_of_input();
    let out = h.disconnected("reset");
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[2], "exit 1: 1 message was not delivered");
}

#[test]
fn a_script_keeps_going_through_a_reconnect() {
    let mut h = Harness::script();
    h.log_in("S");
    h.disconnected("reset");
    // Offline: queued silently (no prompt to talk to).
    assert!(h.type_line("later").is_empty());
    h.end_of_input();
    h.wake();
    h.connected();
    assert_eq!(
        h.server(login_message("alice", "S")),
        [
            "send text later",
            "show 12:00 -- back online as alice; sending 1 queued message"
        ]
    );
    assert_eq!(
        h.server(text("alice", "later")),
        ["close", "show 12:00 alice (you): later", "exit 0"]
    );
}

#[test]
fn a_fast_script_is_paced_by_the_window_and_the_queue() {
    let mut c = config(Mode::Script);
    c.window = 2;
    c.outbox_capacity = 3;
    let mut h = Harness::new(c);
    h.log_in("S");
    for n in 0..5 {
        assert!(h.client.accepts_input(), "line {n}");
        h.type_line(&format!("line {n}"));
    }
    assert!(!h.client.accepts_input(), "2 in flight, 3 queued");
    h.server(text("alice", "line 0"));
    assert!(h.client.accepts_input());
    assert_eq!(
        h.server(text("alice", "line 1")),
        ["send text line 3", "show 12:00 alice (you): line 1"]
    );
}

// ---- rate limits ----

const TOO_FAST: &str = "too many messages: at most 5 a second, 10 at once; retry in 200 ms";

#[test]
fn rate_limited_messages_are_sent_again_in_order_one_at_a_time() {
    let mut h = Harness::script();
    h.log_in("S");
    let lines: Vec<String> = (1..=12).map(|n| n.to_string()).collect();
    for line in &lines {
        assert_eq!(h.type_line(line), [format!("send text {line}")]);
    }
    h.end_of_input();
    for line in &lines[..10] {
        h.server(text("alice", line));
    }
    // 11 and 12 refused, in the order sent: said once, quietly.
    assert_eq!(
        h.server(error(ErrorCode::RateLimited, Some(TOO_FAST))),
        ["show 12:00 -- sending slower: the server limits messages \
             (too many messages: at most 5 a second, 10 at once)"]
    );
    assert_eq!(
        h.server(error(ErrorCode::RateLimited, Some(TOO_FAST))),
        Vec::<String>::new()
    );
    assert!(!h.client.accepts_input(), "the input has ended");
    // Nothing is sent before the server said to retry, then one at a time.
    assert_eq!(
        h.wake(),
        (Duration::from_millis(200), vec!["send text 11".to_owned()])
    );
    assert_eq!(
        h.server(text("alice", "11")),
        ["send text 12", "show 12:00 alice (you): 11"]
    );
    // Refused again, with no time said: a second.
    assert_eq!(
        h.server(error(ErrorCode::RateLimited, Some("slow down"))),
        Vec::<String>::new()
    );
    assert_eq!(
        h.wake(),
        (Duration::from_secs(1), vec!["send text 12".to_owned()])
    );
    assert_eq!(
        h.server(text("alice", "12")),
        ["close", "show 12:00 alice (you): 12", "exit 0"]
    );
}

#[test]
fn a_message_the_server_could_not_save_is_sent_again_a_second_later() {
    let mut h = Harness::script();
    h.log_in("S");
    assert_eq!(h.type_line("kept"), ["send text kept"]);
    h.end_of_input();
    let unavailable =
        "the server could not save the message; it was not sent, try again in a moment";
    assert_eq!(
        h.server(error(ErrorCode::Unavailable, Some(unavailable))),
        ["show 12:00 -- the server cannot save messages right now; yours will be sent again"]
    );
    assert_eq!(
        h.wake(),
        (Duration::from_secs(1), vec!["send text kept".to_owned()])
    );
    assert_eq!(
        h.server(text("alice", "kept")),
        ["close", "show 12:00 alice (you): kept", "exit 0"]
    );
}

#[test]
fn a_login_the_server_cannot_save_on_a_reconnect_is_tried_again_later() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.now += Duration::from_secs(60);
    let _ = h.disconnected("Connection reset by peer");
    let (_, out) = h.wake();
    assert_eq!(out, ["connect"]);
    let out = h.connected();
    assert!(out[0].starts_with("send login alice"), "{out:?}");
    // The store is failing: no exit, a close, and another try later.
    let out = h.server(error(
        ErrorCode::Unavailable,
        Some("the server could not save your login; try again in a moment"),
    ));
    assert_eq!(out[0], "close", "{out:?}");
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[1].starts_with("show 12:00 -- could not reconnect (the server could not log you in"),
        "{out:?}"
    );
    let (_, out) = h.wake();
    assert_eq!(out, ["connect"]);
}

#[test]
fn after_a_rate_limit_the_window_reopens_once_the_queue_drains() {
    let mut c = config(Mode::Interactive);
    c.window = 2;
    let mut h = Harness::new(c);
    h.log_in("S");
    assert_eq!(h.type_line("a"), ["send text a"]);
    assert_eq!(h.type_line("b"), ["send text b"]);
    assert_eq!(h.type_line("c"), Vec::<String>::new(), "window of 2");
    let out = h.server(error(ErrorCode::RateLimited, Some("retry in 50 ms")));
    assert_eq!(out.len(), 1, "one status line: {out:?}");
    assert!(
        h.server(error(ErrorCode::RateLimited, Some("retry in 50 ms")))
            .is_empty()
    );
    assert_eq!(
        h.client.poll_timeout(),
        Some(h.now + Duration::from_millis(50))
    );
    assert_eq!(h.advance(Duration::from_millis(49)), Vec::<String>::new());
    assert_eq!(h.advance(Duration::from_millis(1)), ["send text a"]);
    assert_eq!(
        h.server(text("alice", "a")),
        ["send text b", "show 12:00 alice (you): a"]
    );
    assert_eq!(
        h.server(text("alice", "b")),
        ["send text c", "show 12:00 alice (you): b"]
    );
    assert_eq!(h.type_line("d"), Vec::<String>::new(), "window of 1");
    h.server(text("alice", "c"));
    h.server(text("alice", "d"));
    // The queue drained: two at a time again.
    assert_eq!(h.type_line("e"), ["send text e"]);
    assert_eq!(h.type_line("f"), ["send text f"]);
    assert_eq!(h.type_line("g"), Vec::<String>::new());
}

#[test]
fn a_long_paced_script_does_not_give_up_while_it_makes_progress() {
    let mut h = Harness::script();
    h.log_in("S");
    for n in 1..=3 {
        h.type_line(&n.to_string());
    }
    h.end_of_input();
    h.server(text("alice", "1"));
    h.server(error(ErrorCode::RateLimited, Some("retry in 8 s")));
    h.server(error(ErrorCode::RateLimited, Some("retry in 8 s")));
    assert_eq!(
        h.wake(),
        (Duration::from_secs(8), vec!["send text 2".to_owned()])
    );
    assert!(h.advance(Duration::from_secs(9)).is_empty());
    assert_eq!(
        h.server(text("alice", "2")),
        ["send text 3", "show 12:00 alice (you): 2"]
    );
    assert!(
        h.server(error(ErrorCode::RateLimited, Some("retry in 8 s")))
            .is_empty()
    );
    assert_eq!(
        h.wake(),
        (Duration::from_secs(8), vec!["send text 3".to_owned()])
    );
    // 35 s after the end of input: the server stopped answering only now.
    let (slept, out) = h.wake();
    assert_eq!(slept, Duration::from_secs(10));
    assert_eq!(
        out,
        [
            "close",
            "exit 1: gave up after 10 s: the server did not confirm 1 message"
        ]
    );
}

#[test]
fn quit_waits_for_the_echo_of_a_message_on_its_way() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.pending = true;
    h.type_line("bye all");
    // Its echo is still on its way: leave once it is here.
    assert_eq!(h.type_line("/quit"), Vec::<String>::new());
    assert!(!h.client.reads_lines(), "no more lines once leaving");
    assert_eq!(
        h.server(text("alice", "bye all")),
        [
            "close",
            "pending []",
            "show 12:00 alice (you): bye all",
            "exit 0"
        ]
    );
}

#[test]
fn a_message_never_echoed_before_quitting_counts_as_not_delivered() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.type_line("into the void");
    assert_eq!(h.end_of_input(), Vec::<String>::new());
    let (waited, out) = h.wake();
    assert_eq!(waited, Duration::from_secs(10));
    assert_eq!(
        out,
        [
            "close",
            "show 12:00 !! the server did not confirm this message; it may not have been \
             delivered: into the void",
            "exit 1: gave up after 10 s: the server did not confirm 1 message"
        ]
    );
}

#[test]
fn v1_completes_names_seen_in_the_session() {
    let mut h = Harness::interactive();
    let out = h.log_in("S");
    assert!(
        !out.iter().any(|a| a == "send listUsers"),
        "v1 has none: {out:?}"
    );
    h.server(login_broadcast("bob", "10.0.0.7"));
    h.server(text("carol", "hi"));
    // v1 says nobody left: they stay.
    assert_eq!(
        h.client.roster().names().collect::<Vec<_>>(),
        ["alice", "bob", "carol"]
    );
}
