//! The client against a server that selects `wschat.v2`: server times,
//! leave notices, /who, /logout, catch-up after a reconnect, and messages
//! confirmed by `replyTo` — or checked against the catch-up when a
//! connection dropped before their confirmation.

use super::*;

/// 2025-11-28 00:00 UTC, in milliseconds.
const MIDNIGHT: u64 = 1_764_288_000_000;

/// A server timestamp at `h:m` UTC (shown as `hh:mm` by the harness).
fn at(h: u64, m: u64) -> u64 {
    MIDNIGHT + (h * 60 + m) * 60_000
}

fn said<'a>(name: &'a str, message: &'a str, seq: u64, timestamp: u64) -> ServerMessage<'a> {
    ServerMessage::TextBroadcast {
        id: "t".into(),
        reply_to: None,
        username: name.into(),
        message: message.into(),
        seq: Some(seq),
        timestamp: Some(timestamp),
        room: None,
    }
}

/// The sender's own copy of its message `reply_to`.
fn echo<'a>(message: &'a str, reply_to: String, seq: u64, timestamp: u64) -> ServerMessage<'a> {
    ServerMessage::TextBroadcast {
        id: "t".into(),
        reply_to: Some(reply_to.into()),
        username: "alice".into(),
        message: message.into(),
        seq: Some(seq),
        timestamp: Some(timestamp),
        room: None,
    }
}

fn history(messages: Vec<ServerMessage<'static>>, complete: bool) -> ServerMessage<'static> {
    ServerMessage::History {
        id: "h".into(),
        reply_to: "l".into(),
        epoch: None,
        messages,
        complete,
        room: None,
    }
}

/// A `history` from a server that names its numbering `epoch`.
fn history_in(
    epoch: &'static str,
    messages: Vec<ServerMessage<'static>>,
    complete: bool,
) -> ServerMessage<'static> {
    ServerMessage::History {
        id: "h".into(),
        reply_to: "l".into(),
        epoch: Some(epoch.into()),
        messages,
        complete,
        room: None,
    }
}

fn left(name: &str, reason: LeaveReason, timestamp: u64) -> ServerMessage<'_> {
    ServerMessage::LogoutBroadcast {
        id: "o".into(),
        username: name.into(),
        reason,
        timestamp,
    }
}

fn joined<'a>(name: &'a str, location: &'a str, timestamp: u64) -> ServerMessage<'a> {
    ServerMessage::LoginBroadcast {
        id: "b".into(),
        username: name.into(),
        location: location.into(),
        timestamp: Some(timestamp),
    }
}

fn login_reply<'a>(name: &'a str, secret: &'a str) -> ServerMessage<'a> {
    ServerMessage::LoginMessage {
        id: "l".into(),
        reply_to: Some("l".into()),
        username: name.into(),
        location: "127.0.0.1".into(),
        secret: secret.into(),
    }
}

impl Harness {
    /// The handshake completed and the server selected `wschat.v2`.
    fn connected_v2(&mut self) -> Vec<String> {
        self.client.handle_connected(Some(SUBPROTOCOL_V2), self.now);
        self.drain()
    }

    /// Connects and logs in as alice on v2, the catch-up holding `context`;
    /// returns what the client did after sending its login.
    fn log_in_v2(&mut self, secret: &str, context: Vec<ServerMessage<'static>>) -> Vec<String> {
        assert_eq!(self.drain(), ["connect"]);
        self.log_in_again(secret, context, true)
    }

    /// After `connect`: the handshake, the login, and the server's answer
    /// with `messages` in its catch-up.
    fn log_in_again(
        &mut self,
        secret: &str,
        messages: Vec<ServerMessage<'static>>,
        complete: bool,
    ) -> Vec<String> {
        self.log_in_with(secret, history(messages, complete))
    }

    /// After `connect`: the handshake, the login, and `history`; returns
    /// what the client did after sending its login.
    fn log_in_with(&mut self, secret: &str, history: ServerMessage<'static>) -> Vec<String> {
        let mut out = self.connected_v2();
        assert!(out.remove(0).starts_with("send login alice"), "{out:?}");
        out.extend(self.server(joined("alice", "127.0.0.1", at(9, 0))));
        out.extend(self.server(login_reply("alice", secret)));
        out.extend(self.server(history));
        out
    }

    /// The id the client sent `text` under (the last time).
    fn id_of(&self, text: &str) -> String {
        self.sent
            .iter()
            .rev()
            .find_map(|message| match message {
                ClientMessage::TextFromUser { id, text: t, .. } if t == text => Some(id.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{text:?} was never sent"))
    }

    /// The `since` of the last login sent.
    fn last_since(&self) -> Option<u64> {
        self.sent.iter().rev().find_map(|message| match message {
            ClientMessage::Login { since, .. } => Some(*since),
            _ => None,
        })?
    }
}

// ---- negotiation ----

#[test]
fn offers_v2_and_the_history_after_login_message_completes_the_login() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(h.connected_v2(), ["send login alice"]);
    assert_eq!(h.last_since(), None, "a newcomer asks for no catch-up");
    assert!(h.server(joined("alice", "127.0.0.1", at(9, 0))).is_empty());
    // Not online until the catch-up has come.
    assert!(h.server(login_reply("alice", "S")).is_empty());
    assert!(!h.client.is_online());
    assert_eq!(h.client.version(), Version::V2);
    // A newcomer's context, in server time.
    assert_eq!(
        h.server(history(
            vec![
                said("bob", "earlier", 7, at(9, 15)),
                said("carol", "* carol waves", 8, at(9, 16)),
            ],
            true
        )),
        [
            "send listUsers",
            "save alice=S",
            "show 12:00 -- connected to ws://test as alice; /help lists the commands",
            "show ── 2 earlier messages ──",
            "show 09:15 bob: earlier",
            "show 09:16 * carol waves",
            "show ── now ──",
        ]
    );
    assert!(h.client.is_online());
}

#[test]
fn a_script_does_not_print_a_newcomers_context() {
    let mut h = Harness::script();
    assert_eq!(
        h.log_in_v2("S", vec![said("bob", "earlier", 7, at(9, 15))]),
        ["save alice=S"]
    );
    // But it counts: the next message is 8, and a reconnect asks after it.
    assert_eq!(
        h.server(said("bob", "now", 8, at(9, 20))),
        ["show 09:20 bob: now"]
    );
    h.disconnected("reset");
    h.wake();
    h.connected_v2();
    assert_eq!(h.last_since(), Some(8));
}

#[test]
fn falls_back_to_v1_when_the_server_does_not_select_v2_and_stays_there() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    // tungstenite gave up on a 101 without our subprotocol: try without.
    h.client.handle_subprotocol_refused(h.now);
    assert_eq!(h.drain(), ["connect v1"]);
    assert_eq!(h.connected(), ["send login alice"]);
    assert_eq!(h.client.version(), Version::V1);
    // A v1 login is complete with loginMessage: no history comes.
    assert_eq!(
        h.server(login_message("alice", "S")),
        [
            "save alice=S",
            "show 12:00 -- connected to ws://test as alice; /help lists the commands \
             (this server speaks protocol v1: no catch-up after a dropped connection, \
             no /who, no /logout)"
        ]
    );
    assert_eq!(
        h.type_line("/who"),
        ["show this server speaks protocol v1, which has no /who"]
    );
    assert_eq!(
        h.type_line("/logout"),
        [
            "show this server speaks protocol v1, which has no /logout; /quit leaves, \
             and the server frees the name some minutes later"
        ]
    );
    // Messages keep the local time of printing.
    assert_eq!(h.server(text("bob", "hi")), ["show 12:00 bob: hi"]);
    h.disconnected("reset");
    let (_, out) = h.wake();
    assert_eq!(
        out,
        ["connect v1"],
        "the server was v1: no need to ask again"
    );
    assert_eq!(h.connected(), ["send login alice secret=S"]);
}

#[test]
fn a_refused_subprotocol_keeps_the_login_deadline() {
    let mut h = Harness::script();
    assert_eq!(h.drain(), ["connect"]);
    h.advance(Duration::from_secs(6));
    h.client.handle_subprotocol_refused(h.now);
    assert_eq!(h.drain(), ["connect v1"]);
    let (slept, out) = h.wake();
    assert_eq!(slept, Duration::from_secs(4));
    assert_eq!(
        out,
        [
            "close",
            "exit 1: could not connect to ws://test: no answer within 10 s"
        ]
    );
}

// ---- what is shown ----

#[test]
fn messages_joins_and_leaves_show_the_servers_time() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    assert_eq!(
        h.server(said("bob", "hi", 1, at(9, 20))),
        ["show 09:20 bob: hi"]
    );
    assert_eq!(
        h.server(joined("carol", "10.0.0.7", at(9, 21))),
        ["show 09:21 * carol joined from 10.0.0.7"]
    );
    assert_eq!(
        h.server(left("carol", LeaveReason::Disconnected, at(9, 22))),
        ["show 09:22 * carol left"]
    );
    assert_eq!(
        h.server(left("dave", LeaveReason::Evicted, at(9, 23))),
        ["show 09:23 * dave was disconnected (no answer)"]
    );
    assert_eq!(
        h.server(left("bob", LeaveReason::Logout, at(9, 24))),
        ["show 09:24 * bob logged out"]
    );
    let summary = ServerMessage::Presence {
        id: "p".into(),
        room: None,
        joined: vec!["erin".into(), "fay".into()],
        joined_count: 40,
        left: vec!["gus".into()],
        left_count: 1,
        timestamp: at(9, 24),
    };
    assert_eq!(
        h.server(summary),
        ["show 09:24 * erin, fay and 38 others joined; gus left"]
    );
    // An old connection of ours going away: we are still here.
    assert!(
        h.server(left("Alice", LeaveReason::Disconnected, at(9, 25)))
            .is_empty()
    );
}

#[test]
fn what_comes_while_logging_in_is_shown_after_the_catch_up_in_order() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    h.connected_v2();
    // The connection is open before the login: broadcasts already come.
    assert!(h.server(said("bob", "two", 2, at(9, 2))).is_empty());
    assert!(h.server(joined("carol", "10.0.0.7", at(9, 3))).is_empty());
    h.server(login_reply("alice", "S"));
    assert_eq!(
        h.server(history(
            vec![
                said("bob", "one", 1, at(9, 1)),
                said("bob", "two", 2, at(9, 2))
            ],
            true
        )),
        [
            "send listUsers",
            "save alice=S",
            "show 12:00 -- connected to ws://test as alice; /help lists the commands",
            "show ── 2 earlier messages ──",
            "show 09:01 bob: one",
            "show 09:02 bob: two",
            "show ── now ──",
            "show 09:03 * carol joined from 10.0.0.7",
        ]
    );
}

#[test]
fn json_mode_prints_frames_once_and_adds_no_lines_for_them() {
    let mut c = config(Mode::Script);
    c.output = Output::Json { show_secret: false };
    let mut h = Harness::new(c);
    let out = h.log_in_v2("S", vec![said("bob", "old", 1, at(9, 1))]);
    let kinds: Vec<&str> = out
        .iter()
        .map(|l| {
            l.split("\"type\":\"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .unwrap_or(l)
        })
        .collect();
    assert_eq!(
        kinds,
        ["loginBroadcast", "loginMessage", "history", "save alice=S"]
    );
}

// ---- catching up after a reconnect ----

#[test]
fn a_reconnect_asks_since_the_last_seq_and_shows_each_missed_message_once() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![said("bob", "one", 1, at(9, 1))]);
    h.server(said("bob", "two", 2, at(9, 2)));
    let out = h.disconnected("reset");
    assert!(out[0].starts_with("show 12:00 -- connection lost (reset)"));
    let (_, out) = h.wake();
    assert_eq!(out, ["connect"]);
    assert_eq!(h.connected_v2(), ["send login alice secret=S since=2"]);
    // Said after our handshake, before our login: live, and in the history.
    assert!(h.server(said("carol", "five", 5, at(9, 5))).is_empty());
    assert!(h.server(joined("alice", "127.0.0.1", at(9, 5))).is_empty());
    assert!(h.server(login_reply("alice", "S")).is_empty());
    assert_eq!(
        h.server(history(
            vec![
                said("bob", "three", 3, at(9, 3)),
                said("carol", "four", 4, at(9, 4)),
                said("carol", "five", 5, at(9, 5)),
            ],
            true
        )),
        [
            "send listUsers",
            "show 12:00 -- back online as alice",
            "show ── 3 messages while you were away ──",
            "show 09:03 bob: three",
            "show 09:04 carol: four",
            "show 09:05 carol: five",
            "show ── now ──",
        ]
    );
    assert_eq!(
        h.server(said("bob", "six", 6, at(9, 6))),
        ["show 09:06 bob: six"]
    );
    // A seq already shown is never shown again.
    assert!(h.server(said("bob", "three", 3, at(9, 3))).is_empty());

    // And the next drop asks after 6.
    h.disconnected("reset");
    h.wake();
    assert_eq!(h.connected_v2(), ["send login alice secret=S since=6"]);
}

#[test]
fn a_gap_in_the_catch_up_is_said_plainly() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![said("bob", "one", 1, at(9, 1))]);
    h.disconnected("reset");
    h.wake();
    assert_eq!(
        h.log_in_again("S", vec![said("bob", "1500", 1500, at(10, 0))], false),
        [
            "show 12:00 -- back online as alice",
            "show 12:00 -- some messages were missed while you were away: \
             the server no longer holds them",
            "show 10:00 bob: 1500",
        ]
    );
}

#[test]
fn a_restarted_server_numbering_from_one_again_is_followed() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    h.server(said("bob", "forty", 40, at(9, 40)));
    h.disconnected("reset");
    h.wake();
    // The server never reached 40 (it restarted): all it holds, incomplete
    // only because 40 is beyond it. It holds its first message: nothing of
    // its numbering was missed.
    let out = h.log_in_again(
        "NEW",
        vec![
            said("bob", "new one", 1, at(10, 1)),
            said("bob", "new two", 2, at(10, 2)),
        ],
        false,
    );
    assert_eq!(
        out,
        [
            "save alice=NEW",
            "show 12:00 -- back online as alice",
            STORE_IS_NEW,
            "show 10:01 bob: new one",
            "show 10:02 bob: new two",
        ]
    );
    assert_eq!(
        h.server(said("bob", "new three", 3, at(10, 3))),
        ["show 10:03 bob: new three"]
    );
    // Restarted again, and nothing said since: nothing was missed either.
    h.disconnected("reset");
    h.wake();
    assert_eq!(
        h.log_in_again("NEW", vec![], false),
        ["show 12:00 -- back online as alice", STORE_IS_NEW]
    );
    h.disconnected("reset");
    h.wake();
    h.connected_v2();
    assert_eq!(h.last_since(), Some(0));
}

const STORE_IS_NEW: &str =
    "show 12:00 -- the server's message store is new: messages said before it are gone";
const MISSED: &str = "show 12:00 -- some messages were missed while you were away: \
                      the server no longer holds them";

#[test]
fn a_restarted_server_that_lost_its_first_messages_too_says_both() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    h.server(said("bob", "forty", 40, at(9, 40)));
    h.disconnected("reset");
    h.wake();
    // Restarted, said 30 messages, holds the last 20.
    assert_eq!(
        h.log_in_again("S", vec![said("bob", "eleven", 11, at(10, 11))], false),
        [
            "show 12:00 -- back online as alice",
            STORE_IS_NEW,
            MISSED,
            "show 10:11 bob: eleven",
        ]
    );
}

// ---- the epoch: which numbering a `seq` belongs to ----

#[test]
fn the_epoch_of_the_catch_up_goes_back_with_since() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    h.log_in_with(
        "S",
        history_in("e1", vec![said("bob", "one", 1, at(9, 1))], true),
    );
    assert_eq!(h.sent.first().map(ClientMessage::kind), Some("login"));
    h.server(said("bob", "two", 2, at(9, 2)));
    h.disconnected("reset");
    h.wake();
    assert_eq!(
        h.connected_v2(),
        ["send login alice secret=S since=2 epoch=e1"]
    );
    // The same numbering: an ordinary catch-up, no notice.
    for message in [
        joined("alice", "127.0.0.1", at(9, 0)),
        login_reply("alice", "S"),
    ] {
        h.server(message);
    }
    assert_eq!(
        h.server(history_in(
            "e1",
            vec![said("bob", "three", 3, at(9, 3))],
            true
        )),
        [
            "send listUsers",
            "show 12:00 -- back online as alice",
            "show ── 1 message while you were away ──",
            "show 09:03 bob: three",
            "show ── now ──",
        ]
    );
}

#[test]
fn a_new_message_store_is_said_once_and_every_message_of_it_is_shown() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    h.log_in_with("S", history_in("old", vec![], true));
    for seq in 1..=3 {
        h.server(said("bob", "before", seq, at(9, seq)));
    }
    h.disconnected("reset");
    h.wake();
    // The store was wiped, and three messages were said before we came
    // back: numbers we have seen, but new messages. The server ignored our
    // `since` (3) and sent all it holds, from its first: nothing missed.
    let out = h.log_in_with(
        "S",
        history_in(
            "new",
            vec![
                said("carol", "c1", 1, at(10, 1)),
                said("carol", "c2", 2, at(10, 2)),
                said("carol", "c3", 3, at(10, 3)),
            ],
            true,
        ),
    );
    assert_eq!(
        out,
        [
            "send listUsers",
            "show 12:00 -- back online as alice",
            STORE_IS_NEW,
            "show ── 3 messages while you were away ──",
            "show 10:01 carol: c1",
            "show 10:02 carol: c2",
            "show 10:03 carol: c3",
            "show ── now ──",
        ]
    );
    // Live messages of the new numbering are new too; the next login
    // counts in it.
    assert_eq!(
        h.server(said("bob", "four", 4, at(10, 4))),
        ["show 10:04 bob: four"]
    );
    assert!(h.server(said("bob", "four", 4, at(10, 4))).is_empty());
    h.disconnected("reset");
    h.wake();
    assert_eq!(
        h.connected_v2(),
        ["send login alice secret=S since=4 epoch=new"]
    );
}

#[test]
fn a_restart_with_nothing_said_is_neither_a_miss_nor_a_loss() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    h.log_in_with(
        "S",
        history_in("old", vec![said("bob", "one", 1, at(9, 1))], true),
    );
    h.disconnected("reset");
    h.wake();
    // A new store holding nothing: complete.
    assert_eq!(
        h.log_in_with("S", history_in("new", vec![], true)),
        [
            "send listUsers",
            "show 12:00 -- back online as alice",
            STORE_IS_NEW
        ]
    );
    // The first message of the new numbering reaches us although we saw a
    // message numbered 1 before.
    assert_eq!(
        h.server(said("bob", "hello again", 1, at(10, 0))),
        ["show 10:00 bob: hello again"]
    );

    // Persisted: the same store after a restart, nothing said meanwhile.
    h.disconnected("reset");
    h.wake();
    assert_eq!(
        h.log_in_with("S", history_in("new", vec![], true)),
        ["send listUsers", "show 12:00 -- back online as alice"]
    );
}

#[test]
fn a_new_store_that_no_longer_holds_its_first_message_says_what_was_missed() {
    let mut h = Harness::script();
    assert_eq!(h.drain(), ["connect"]);
    h.log_in_with("S", history_in("old", vec![], true));
    h.server(said("bob", "one", 1, at(9, 1)));
    h.disconnected("reset");
    h.wake();
    assert_eq!(
        h.log_in_with(
            "S",
            history_in("new", vec![said("bob", "late", 900, at(11, 0))], false)
        ),
        [
            "show 12:00 -- back online as alice",
            STORE_IS_NEW,
            MISSED,
            "show 11:00 bob: late",
        ]
    );
}

#[test]
fn what_comes_while_logging_in_after_a_renumbering_is_shown_once() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    h.log_in_with("S", history_in("old", vec![], true));
    for seq in 1..=5 {
        h.server(said("bob", "old", seq, at(9, seq)));
    }
    h.disconnected("reset");
    h.wake();
    h.connected_v2();
    // Said while our login is answered: live, and in the history too.
    assert!(h.server(said("carol", "c2", 2, at(10, 2))).is_empty());
    h.server(joined("alice", "127.0.0.1", at(9, 0)));
    h.server(login_reply("alice", "S"));
    assert!(h.server(said("carol", "c3", 3, at(10, 3))).is_empty());
    assert_eq!(
        h.server(history_in(
            "new",
            vec![
                said("carol", "c1", 1, at(10, 1)),
                said("carol", "c2", 2, at(10, 2)),
            ],
            true
        )),
        [
            "send listUsers",
            "show 12:00 -- back online as alice",
            STORE_IS_NEW,
            "show ── 2 messages while you were away ──",
            "show 10:01 carol: c1",
            "show 10:02 carol: c2",
            "show ── now ──",
            "show 10:03 carol: c3",
        ]
    );
}

#[test]
fn an_epoch_longer_than_the_protocol_allows_is_not_trusted() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    let long: &'static str = "e".repeat(33).leak();
    h.log_in_with(
        "S",
        history_in(long, vec![said("bob", "one", 1, at(9, 1))], true),
    );
    h.disconnected("reset");
    h.wake();
    assert_eq!(h.connected_v2(), ["send login alice secret=S since=1"]);
}

// ---- our own messages ----

#[test]
fn own_messages_are_confirmed_by_reply_to_not_by_name_and_text() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    assert_eq!(h.type_line("hi"), ["send text hi"]);
    h.end_of_input();
    // The same words from our other device: not our confirmation.
    assert_eq!(
        h.server(said("alice", "hi", 1, at(9, 1))),
        ["show 09:01 alice (you): hi"]
    );
    assert!(!h.client.is_finished());
    let id = h.id_of("hi");
    assert_eq!(
        h.server(echo("hi", id, 2, at(9, 2))),
        ["close", "show 09:02 alice (you): hi", "exit 0"]
    );
}

#[test]
fn a_refusal_names_the_message_it_refuses() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    h.type_line("first");
    h.type_line("second");
    h.end_of_input();
    let second = h.id_of("second");
    let refusal = ServerMessage::ErrorMessage {
        error: ErrorCode::MessageTooLong,
        id: "e".into(),
        reply_to: Some(second.into()),
        description: Some("the message is longer than 3 characters".into()),
    };
    assert_eq!(
        h.server(refusal),
        ["show 12:00 !! your message was not sent: the message is longer than 3 characters"]
    );
    let first = h.id_of("first");
    assert_eq!(
        h.server(echo("first", first, 1, at(9, 1))),
        [
            "close",
            "show 09:01 alice (you): first",
            "exit 1: 1 message was not delivered"
        ]
    );
}

#[test]
fn a_message_unconfirmed_at_a_drop_found_in_the_catch_up_was_delivered() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    h.server(said("bob", "one", 1, at(9, 1)));
    assert_eq!(h.type_line("did it arrive?"), ["send text did it arrive?"]);
    // No warning yet: the catch-up will tell.
    let out = h.disconnected("reset");
    assert_eq!(out.len(), 1, "{out:?}");
    h.wake();
    assert_eq!(
        h.log_in_again(
            "S",
            vec![
                said("alice", "did it arrive?", 2, at(9, 2)),
                said("bob", "yes", 3, at(9, 3)),
            ],
            true
        ),
        [
            "send listUsers",
            "show 12:00 -- back online as alice",
            "show ── 2 messages while you were away ──",
            "show 09:02 alice (you): did it arrive?",
            "show 09:03 bob: yes",
            "show ── now ──",
        ]
    );
    // Not sent again.
    assert!(h.drain().is_empty());
    assert_eq!(h.end_of_input(), ["close", "exit 0"]);
}

#[test]
fn a_message_the_server_never_got_is_sent_again_before_newer_ones() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    h.type_line("lost on the way");
    h.disconnected("reset");
    h.type_line("typed while offline");
    h.wake();
    assert_eq!(
        h.log_in_again("S", vec![said("bob", "meanwhile", 1, at(9, 1))], true),
        [
            "send listUsers",
            "send text lost on the way",
            "send text typed while offline",
            "show 12:00 -- back online as alice; sending 2 queued messages",
            "show ── 1 message while you were away ──",
            "show 09:01 bob: meanwhile",
            "show ── now ──",
            "show 12:00 -- the server never got this message before the connection dropped; \
             sending it again: lost on the way",
        ]
    );
    let id = h.id_of("lost on the way");
    assert_eq!(
        h.server(echo("lost on the way", id, 2, at(9, 2))),
        ["show 09:02 alice (you): lost on the way"]
    );
}

#[test]
fn a_script_waits_through_a_drop_until_its_message_is_settled() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    h.type_line("x");
    h.end_of_input();
    let out = h.disconnected("reset");
    assert_eq!(out.len(), 1, "still waiting: {out:?}");
    assert!(!h.client.is_finished());
    h.wake();
    assert_eq!(
        h.log_in_again("S", vec![said("alice", "x", 1, at(9, 1))], true),
        [
            "close",
            "show 12:00 -- back online as alice",
            "show 09:01 alice (you): x",
            "exit 0"
        ]
    );
}

#[test]
fn when_the_catch_up_cannot_tell_it_says_so_and_a_script_fails() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    h.type_line("x");
    h.end_of_input();
    h.disconnected("reset");
    h.wake();
    assert_eq!(
        h.log_in_again("S", vec![said("bob", "y", 900, at(9, 1))], false),
        [
            "close",
            "show 12:00 -- back online as alice",
            "show 12:00 -- some messages were missed while you were away: \
             the server no longer holds them",
            "show 09:01 bob: y",
            "show 12:00 !! the connection dropped before the server confirmed this message, \
             and the server no longer holds the messages of that time: it may not have been \
             delivered: x",
            "exit 1: 1 message was not delivered"
        ]
    );
}

#[test]
fn quitting_before_the_check_says_what_may_be_lost() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    h.type_line("x");
    h.disconnected("reset");
    h.type_line("y");
    assert_eq!(
        h.type_line("/quit"),
        [
            "show 2 messages are not sent yet (the connection is down):\n  x\n  y\n\
          they are sent once the connection is back; /quit again leaves without them"
        ]
    );
    assert_eq!(
        h.type_line("/quit"),
        [
            "show 12:00 !! the connection dropped before the server confirmed this message; \
             it may not have been delivered: x",
            "show 12:00 !! not sent: y",
            "exit 1: 2 messages were not delivered"
        ]
    );
}

// ---- /who and /logout ----

#[test]
fn who_lists_everyone_online_with_their_devices() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    assert_eq!(h.type_line("/who"), ["send listUsers"]);
    let list = ServerMessage::UserList {
        id: "u".into(),
        reply_to: "w".into(),
        users: vec![
            UserPresence {
                username: "alice".into(),
                connections: 2,
            },
            UserPresence {
                username: "bob".into(),
                connections: 1,
            },
            UserPresence {
                username: "carol".into(),
                connections: 3,
            },
        ],
        more: 0,
    };
    assert_eq!(
        h.server(list),
        ["show online (3): alice (you, 2 devices), bob, carol (3 devices)"]
    );
    h.disconnected("reset");
    assert_eq!(
        h.type_line("/who"),
        ["show not connected: /who works once the connection is back"]
    );
}

#[test]
fn logout_frees_the_name_and_leaves_once_the_server_confirms() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    assert_eq!(h.type_line("/logout"), ["send logout"]);
    assert!(!h.client.reads_lines(), "the prompt is not shown again");
    assert_eq!(
        h.type_line("one more thing"),
        ["show logging out; waiting for the server to confirm"]
    );
    assert_eq!(
        h.server(left("alice", LeaveReason::Logout, at(9, 30))),
        [
            "close",
            "show 12:00 -- logged out: the name alice is free",
            "exit 0"
        ]
    );
}

#[test]
fn an_unconfirmed_logout_is_a_failure_said_plainly() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    h.type_line("/logout");
    h.end_of_input(); // Ctrl-D while waiting: the logout ends it anyway
    let (slept, out) = h.wake();
    assert_eq!(slept, Duration::from_secs(10));
    assert_eq!(
        out,
        [
            "close",
            "exit 1: the server did not confirm the logout within 10 s; \
             the name may still be reserved"
        ]
    );

    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    h.type_line("/logout");
    assert_eq!(
        h.disconnected("reset"),
        [
            "exit 1: the connection dropped before the server confirmed the logout (reset); \
             the name may still be reserved"
        ]
    );

    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    h.disconnected("reset");
    assert_eq!(
        h.type_line("/logout"),
        [
            "show not connected: /logout works once the connection is back; \
             /quit leaves, keeping the name reserved for a while"
        ]
    );
}

#[test]
fn logout_drops_what_waits_and_sends_nothing_after_it() {
    let mut c = config(Mode::Interactive);
    c.window = 1;
    let mut h = Harness::new(c);
    h.log_in_v2("S", vec![]);
    h.type_line("in flight");
    assert!(h.type_line("waiting").is_empty());
    assert_eq!(
        h.type_line("/logout"),
        ["send logout", "show 12:00 -- 1 queued message was not sent"]
    );
    // The server answers in order: the echo, then the logout.
    let id = h.id_of("in flight");
    assert_eq!(
        h.server(echo("in flight", id, 1, at(9, 1))),
        ["show 09:01 alice (you): in flight"]
    );
}

#[test]
fn a_logout_from_another_device_ends_the_session() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    assert_eq!(
        h.server(left("alice", LeaveReason::Logout, at(9, 30))),
        [
            "close",
            "exit 1: logged out from another connection: the name 'alice' was released"
        ]
    );
}

// ---- rate limits ----

fn too_fast(reply_to: String, description: &str) -> ServerMessage<'_> {
    ServerMessage::ErrorMessage {
        error: ErrorCode::RateLimited,
        id: "e".into(),
        reply_to: Some(reply_to.into()),
        description: Some(description.into()),
    }
}

#[test]
fn rate_limited_messages_are_matched_by_reply_to_and_sent_again_in_order() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    for text in ["a", "b", "c"] {
        assert_eq!(h.type_line(text), [format!("send text {text}")]);
    }
    h.end_of_input();
    assert_eq!(
        h.server(echo("a", h.id_of("a"), 1, at(9, 1))),
        ["show 09:01 alice (you): a"]
    );
    // Refused in any order, they go again in the order typed.
    let limit = "too many messages: at most 1 a second, 1 at once; retry in 1000 ms";
    assert_eq!(
        h.server(too_fast(h.id_of("c"), limit)),
        ["show 12:00 -- sending slower: the server limits messages \
             (too many messages: at most 1 a second, 1 at once)"]
    );
    // Not ours: nothing to send again.
    assert_eq!(
        h.server(too_fast("someone else's".into(), limit)),
        [
            "show 12:00 !! the server refused: too many messages: at most 1 a second, 1 at once; retry in 1000 ms"
        ]
    );
    assert!(h.server(too_fast(h.id_of("b"), "retry in 2 s")).is_empty());
    assert_eq!(
        h.wake(),
        (Duration::from_secs(2), vec!["send text b".to_owned()])
    );
    let (b, c) = (h.id_of("b"), h.id_of("c"));
    // The old id of "c" answers nothing any more.
    assert_eq!(
        h.server(too_fast(c, "retry in 5 ms")),
        ["show 12:00 !! the server refused: retry in 5 ms"]
    );
    assert_eq!(
        h.server(echo("b", b, 2, at(9, 2))),
        ["send text c", "show 09:02 alice (you): b"]
    );
    assert_eq!(
        h.server(echo("c", h.id_of("c"), 3, at(9, 3))),
        ["close", "show 09:03 alice (you): c", "exit 0"]
    );
}

// ---- tab completion: who is online ----

fn user_list(reply_to: String, names: &[&'static str]) -> ServerMessage<'static> {
    ServerMessage::UserList {
        id: "u".into(),
        reply_to: reply_to.into(),
        users: names
            .iter()
            .map(|name| UserPresence {
                username: (*name).into(),
                connections: 1,
            })
            .collect(),
        more: 0,
    }
}

impl Harness {
    /// The id of the last `listUsers` sent.
    fn list_users_id(&self) -> String {
        self.sent
            .iter()
            .rev()
            .find_map(|message| match message {
                ClientMessage::ListUsers { id } => Some(id.clone()),
                _ => None,
            })
            .expect("a listUsers was sent")
    }

    fn roster(&self) -> Vec<&str> {
        self.client.roster().names().collect()
    }
}

#[test]
fn the_roster_comes_from_a_quiet_user_list_then_follows_joins_leaves_and_presence() {
    let mut h = Harness::interactive();
    let out = h.log_in_v2("S", vec![]);
    assert_eq!(out[0], "send listUsers", "{out:?}");
    // The answer fills the roster and is not shown: nobody typed /who.
    let answer = user_list(h.list_users_id(), &["alice", "bob", "Carol"]);
    assert_eq!(h.server(answer), Vec::<String>::new());
    assert_eq!(h.roster(), ["alice", "bob", "Carol"]);

    h.server(joined("dave", "10.0.0.9", at(9, 1)));
    h.server(left("bob", LeaveReason::Disconnected, at(9, 2)));
    h.server(ServerMessage::Presence {
        id: "p".into(),
        room: None,
        joined: vec!["erin".into(), "frank".into()],
        joined_count: 40,
        left: vec!["carol".into()],
        left_count: 1,
        timestamp: at(9, 3),
    });
    assert_eq!(h.roster(), ["alice", "dave", "erin", "frank"]);

    // A /who is shown, and is the latest word on who is online.
    h.type_line("/who");
    let who = user_list(h.list_users_id(), &["alice", "zoe"]);
    assert_eq!(h.server(who), ["show online (2): alice (you), zoe"]);
    assert_eq!(h.roster(), ["alice", "zoe"]);

    // After a reconnect the roster is asked for again: leaves were missed.
    h.disconnected("reset");
    h.wake();
    let out = h.log_in_again("S", vec![], true);
    assert_eq!(out[0], "send listUsers", "{out:?}");
    let answer = user_list(h.list_users_id(), &["alice", "bob"]);
    assert_eq!(h.server(answer), Vec::<String>::new());
    assert_eq!(h.roster(), ["alice", "bob"]);
}

#[test]
fn after_a_restart_nobody_joins_twice_without_leaving_between() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    let answer = user_list(h.list_users_id(), &["alice", "bob", "carol"]);
    h.server(answer);
    // The server restarts: nobody is told who left.
    h.disconnected("reset");
    h.wake();
    let out = h.log_in_again("S", vec![], true);
    assert_eq!(out[0], "send listUsers", "{out:?}");
    // Bob came back first: shown online all along, he does not join again.
    assert!(
        h.server(joined("bob", "127.0.0.1", at(10, 1))).is_empty(),
        "bob was never shown leaving"
    );
    let answer = user_list(h.list_users_id(), &["alice", "bob"]);
    assert_eq!(h.server(answer), Vec::<String>::new());
    assert_eq!(h.roster(), ["alice", "bob"]);
    // Carol was gone: her leave is said before she joins.
    assert_eq!(
        h.server(joined("carol", "127.0.0.1", at(10, 2))),
        [
            "show 12:00 -- carol left while you were away",
            "show 10:02 * carol joined from 127.0.0.1",
        ]
    );
    // From now on every join is shown as it comes: bob's second device.
    assert_eq!(
        h.server(joined("bob", "10.0.0.2", at(10, 3))),
        ["show 10:03 * bob joined from 10.0.0.2"]
    );
}

#[test]
fn a_name_claimed_afresh_does_not_own_what_its_old_owner_said() {
    // No saved secret: the server gives a new one, the name is ours anew.
    let mut h = Harness::interactive();
    let out = h.log_in_v2(
        "NEW",
        vec![
            said("alice", "the old owner's words", 1, at(9, 1)),
            said("bob", "bye, alice", 2, at(9, 2)),
        ],
    );
    assert_eq!(
        out,
        [
            "send listUsers",
            "save alice=NEW",
            "show 12:00 -- connected to ws://test as alice; /help lists the commands",
            "show ── 2 earlier messages ──",
            "show 09:01 alice: the old owner's words",
            "show 09:02 bob: bye, alice",
            "show ── now ──",
        ]
    );
    // What we say is ours.
    h.type_line("mine");
    assert_eq!(
        h.server(echo("mine", h.id_of("mine"), 3, at(9, 3))),
        ["show 09:03 alice (you): mine"]
    );
}

#[test]
fn a_name_claimed_afresh_after_a_drop_still_owns_what_it_sent_before() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    assert_eq!(h.type_line("did it arrive?"), ["send text did it arrive?"]);
    h.disconnected("reset");
    h.wake();
    // The name was released meanwhile and taken by someone else, who
    // released it too: our secret is a stranger's now.
    assert_eq!(
        h.log_in_again(
            "NEW",
            vec![
                said("alice", "did it arrive?", 1, at(9, 1)),
                said("alice", "did it arrive?", 2, at(9, 2)),
            ],
            true
        ),
        [
            "send listUsers",
            "save alice=NEW",
            "show 12:00 -- back online as alice",
            "show ── 2 messages while you were away ──",
            "show 09:01 alice (you): did it arrive?",
            "show 09:02 alice: did it arrive?",
            "show ── now ──",
        ]
    );
}

#[test]
fn a_name_reclaimed_with_its_secret_still_owns_what_it_said() {
    let mut c = config(Mode::Interactive);
    c.saved_secret = Some("S".into());
    let mut h = Harness::new(c);
    let out = h.log_in_v2("S", vec![said("alice", "said yesterday", 1, at(9, 1))]);
    assert_eq!(
        out,
        [
            "send listUsers",
            "show 12:00 -- connected to ws://test as alice; /help lists the commands",
            "show ── 1 earlier message ──",
            "show 09:01 alice (you): said yesterday",
            "show ── now ──",
        ]
    );
}

#[test]
fn a_script_asks_for_no_roster() {
    let mut h = Harness::script();
    let out = h.log_in_v2("S", vec![]);
    assert!(!out.iter().any(|a| a == "send listUsers"), "{out:?}");
}

#[test]
fn a_mention_held_while_logging_in_rings_when_it_is_shown() {
    let mut c = config(Mode::Interactive);
    c.output = Output::Lines { bell: true };
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    h.connected_v2();
    // Said while the login is under way: held until the catch-up is shown,
    // and so is its bell.
    assert_eq!(
        h.server(said("bob", "alice, hi", 2, at(9, 2))),
        Vec::<String>::new()
    );
    assert_eq!(h.server(login_reply("alice", "S")), Vec::<String>::new());
    let out = h.server(history(vec![said("bob", "alice?", 1, at(9, 1))], true));
    let shown: Vec<&str> = out
        .iter()
        .map(String::as_str)
        .filter(|a| a.starts_with("show") || *a == "bell")
        .collect();
    assert_eq!(
        shown,
        [
            "show 12:00 -- connected to ws://test as alice; /help lists the commands",
            "show ── 1 earlier message ──",
            // Replayed: no bell.
            "show 09:01 bob: alice?",
            "show ── now ──",
            "bell",
            "show 09:02 bob: alice, hi",
        ]
    );
}

// ---- your line, once: what is pending ----

#[test]
fn a_typed_message_is_pending_until_its_echo_which_clears_it_before_it_is_shown() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    h.pending = true;
    assert_eq!(
        h.type_line("hi"),
        ["send text hi", "pending [12:00 alice (you): hi (sending…)]"]
    );
    let id = h.id_of("hi");
    assert_eq!(
        h.type_line("/me waves"),
        [
            "send text * alice waves",
            "pending [12:00 alice (you): hi (sending…) | 12:00 * alice (you) waves (sending…)]"
        ]
    );
    // Others' messages in between leave it pending.
    assert_eq!(
        h.server(said("bob", "yo", 1, at(9, 1))),
        ["show 09:01 bob: yo"]
    );
    // Confirmed: off the pending rows first, then shown, once.
    assert_eq!(
        h.server(echo("hi", id, 2, at(9, 2))),
        [
            "pending [12:00 * alice (you) waves (sending…)]",
            "show 09:02 alice (you): hi"
        ]
    );
    let id = h.id_of("* alice waves");
    assert_eq!(
        h.server(echo("* alice waves", id, 3, at(9, 3))),
        ["pending []", "show 09:03 * alice (you) waves"]
    );
}

#[test]
fn lines_typed_offline_are_pending_as_waiting_then_sending_and_at_most_three_show() {
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    h.pending = true;
    assert_eq!(
        h.type_line("on its way"),
        [
            "send text on its way",
            "pending [12:00 alice (you): on its way (sending…)]"
        ]
    );
    // The connection drops before its echo: its fate is open, it waits.
    let out = h.disconnected("reset");
    assert_eq!(
        out[0],
        "pending [12:00 alice (you): on its way (waiting for the connection)]"
    );
    for n in 1..=4 {
        h.type_line(&format!("offline {n}"));
    }
    let out = h.type_line("offline 5");
    assert_eq!(
        out[0],
        "pending [12:00 alice (you): on its way (waiting for the connection) | \
         12:00 alice (you): offline 1 (waiting for the connection) | \
         12:00 alice (you): offline 2 (waiting for the connection) | \
         … and 3 more messages]"
    );
    // Back: settled by the catch-up, then all sending.
    h.wake();
    let out = h.log_in_again("S", vec![], true);
    assert!(
        out.contains(
            &"pending [12:00 alice (you): on its way (sending…) | \
              12:00 alice (you): offline 1 (sending…) | \
              12:00 alice (you): offline 2 (sending…) | \
              … and 3 more messages]"
                .to_owned()
        ),
        "{out:?}"
    );
}

#[test]
fn a_script_has_nothing_pending_to_show() {
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    h.pending = true;
    assert_eq!(h.type_line("hi"), ["send text hi"]);
}

// ---- leaving, and a store that fails for a while ----

/// What the driver shows last after `/quit` or Ctrl-D, if anything.
fn farewell(h: &Harness) -> Option<String> {
    h.client.farewell().map(|line| line.render(NOON, false))
}

#[test]
fn quit_and_ctrl_d_say_the_name_stays_reserved_and_for_how_long() {
    let bye = "12:00 -- bye: the name alice stays yours for 10 minutes (chat-server's default \
               login TTL; the server may be set otherwise); log in as alice again from this \
               chat-cli before then to keep it";
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    assert_eq!(farewell(&h), None, "nothing to say before the end");
    assert_eq!(h.type_line("/quit"), ["close", "exit 0"]);
    assert_eq!(farewell(&h).as_deref(), Some(bye));

    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    assert_eq!(h.end_of_input(), ["close", "exit 0"]);
    assert_eq!(farewell(&h).as_deref(), Some(bye));

    // /logout freed the name: nothing is reserved.
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    h.type_line("/logout");
    h.server(left("alice", LeaveReason::Logout, at(9, 30)));
    assert!(h.client.is_finished());
    assert_eq!(farewell(&h), None);

    // Never logged in: no name to keep.
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    h.end_of_input();
    assert!(h.client.is_finished());
    assert_eq!(farewell(&h), None);

    // A script's output is its messages.
    let mut h = Harness::script();
    h.log_in_v2("S", vec![]);
    assert_eq!(h.end_of_input(), ["close", "exit 0"]);
    assert_eq!(farewell(&h), None);
}

fn not_saved(reply_to: String) -> ServerMessage<'static> {
    ServerMessage::ErrorMessage {
        error: ErrorCode::Unavailable,
        id: "e".into(),
        reply_to: Some(reply_to.into()),
        description: Some(
            "the server could not save the message; it was not sent, try again in a moment".into(),
        ),
    }
}

#[test]
fn once_the_server_saves_again_a_line_says_so_once_per_outage() {
    let cannot =
        "show 12:00 -- the server cannot save messages right now; yours will be sent again";
    let again = "show 12:00 -- the server saves messages again";
    let mut h = Harness::interactive();
    h.log_in_v2("S", vec![]);
    assert_eq!(h.type_line("one"), ["send text one"]);
    assert_eq!(h.server(not_saved(h.id_of("one"))), [cannot]);
    assert_eq!(h.wake().1, ["send text one"]);
    // Still failing: said once.
    assert!(h.server(not_saved(h.id_of("one"))).is_empty());
    assert_eq!(h.wake().1, ["send text one"]);
    assert_eq!(
        h.server(echo("one", h.id_of("one"), 1, at(9, 1))),
        ["show 09:01 alice (you): one", again]
    );
    assert_eq!(h.type_line("two"), ["send text two"]);
    assert_eq!(
        h.server(echo("two", h.id_of("two"), 2, at(9, 2))),
        ["show 09:02 alice (you): two"],
        "said once per outage"
    );

    // Another outage: both said again.
    assert_eq!(h.type_line("three"), ["send text three"]);
    assert_eq!(h.server(not_saved(h.id_of("three"))), [cannot]);
    assert_eq!(h.wake().1, ["send text three"]);
    assert_eq!(
        h.server(echo("three", h.id_of("three"), 3, at(9, 3))),
        ["show 09:03 alice (you): three", again]
    );
}
