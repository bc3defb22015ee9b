//! The client against a server that selects `wschat.v3`: rooms and direct
//! messages — the current room and the prompt, labels on the lines of other
//! rooms, unread counts and read markers, each room's catch-up after a
//! reconnect, memberships changed elsewhere, the room commands, and what
//! they say on a server without rooms.

use std::borrow::Cow;

use super::*;
use crate::protocol::{Act, Change, MemberEntry, Role, RoomChange, RoomState, SUBPROTOCOL_V3};

/// 2025-11-28 00:00 UTC, in milliseconds.
const MIDNIGHT: u64 = 1_764_288_000_000;

fn at(h: u64, m: u64) -> u64 {
    MIDNIGHT + (h * 60 + m) * 60_000
}

/// A v3 client message as the harness shows it.
pub(super) fn summary(message: &ClientMessage) -> String {
    match message {
        ClientMessage::Login { rooms, .. } => format!("send login {rooms:?}"),
        ClientMessage::Join { room, .. } => format!("send join {room}"),
        ClientMessage::Part { room, reason, .. } => format!("send part {room} {reason:?}"),
        ClientMessage::Read { room, seq, .. } => format!("send read {room} {seq}"),
        ClientMessage::ListMembers { room, .. } => format!("send listMembers {room}"),
        ClientMessage::Topic { room, topic, .. } => format!("send topic {room} {topic}"),
        ClientMessage::Mode {
            room, invite_only, ..
        } => format!("send mode {room} inviteOnly={invite_only}"),
        ClientMessage::Kick {
            room,
            username,
            reason,
            ..
        } => format!("send kick {room} {username} {reason:?}"),
        ClientMessage::Ban {
            room,
            username,
            seconds,
            ..
        } => format!("send ban {room} {username} {seconds:?}"),
        ClientMessage::Mute {
            room,
            username,
            seconds,
            ..
        } => format!("send mute {room} {username} {seconds:?}"),
        ClientMessage::Invite { room, username, .. }
        | ClientMessage::Unban { room, username, .. }
        | ClientMessage::Unmute { room, username, .. }
        | ClientMessage::Op { room, username, .. }
        | ClientMessage::Deop { room, username, .. } => {
            format!("send {} {room} {username}", message.kind())
        }
        other => format!("send {}", other.kind()),
    }
}

fn state(room: &str, epoch: &str, last_seq: u64, unread: u64, role: Role) -> RoomState<'static> {
    RoomState {
        room: Cow::Owned(room.to_owned()),
        topic: None,
        invite_only: false,
        members: 2,
        role: Some(role),
        epoch: Cow::Owned(epoch.to_owned()),
        last_seq,
        read_seq: last_seq - unread,
        unread,
        mentioned: false,
        recovered: None,
    }
}

fn said_in(room: &str, name: &str, text: &str, seq: u64, m: u64) -> ServerMessage<'static> {
    ServerMessage::TextBroadcast {
        id: "t".into(),
        reply_to: None,
        username: Cow::Owned(name.to_owned()),
        message: Cow::Owned(text.to_owned()),
        seq: Some(seq),
        timestamp: Some(at(10, m)),
        room: (room != "#lobby").then(|| Cow::Owned(room.to_owned())),
    }
}

fn history_of(
    room: Option<&str>,
    epoch: &str,
    messages: Vec<ServerMessage<'static>>,
) -> ServerMessage<'static> {
    ServerMessage::History {
        id: "h".into(),
        reply_to: "l".into(),
        epoch: Some(Cow::Owned(epoch.to_owned())),
        messages,
        complete: true,
        room: room.map(|room| Cow::Owned(room.to_owned())),
    }
}

fn rooms_frame(
    rooms: Vec<RoomState<'static>>,
    changes: Vec<RoomChange<'static>>,
) -> ServerMessage<'static> {
    ServerMessage::Rooms {
        id: "r".into(),
        reply_to: "l".into(),
        rooms,
        changes,
    }
}

fn membership(
    room: &str,
    change: Change,
    reply_to: Option<String>,
    state: Option<RoomState<'static>>,
) -> ServerMessage<'static> {
    ServerMessage::Membership {
        id: "m".into(),
        reply_to: reply_to.map(Cow::Owned),
        room: Cow::Owned(room.to_owned()),
        change,
        by: None,
        reason: None,
        until: None,
        state,
    }
}

fn lobby() -> RoomState<'static> {
    state("#lobby", "L", 0, 0, Role::Member)
}

impl Harness {
    /// Connects and logs in as alice on v3: `rooms` then the lobby's
    /// history (empty); what the client did after its login.
    fn log_in_v3(
        &mut self,
        rooms: Vec<RoomState<'static>>,
        changes: Vec<RoomChange<'static>>,
    ) -> Vec<String> {
        self.client.handle_connected(Some(SUBPROTOCOL_V3), self.now);
        let mut out = self.drain();
        assert!(out.remove(0).starts_with("send login"), "{out:?}");
        out.extend(self.server(login_message("alice", "S")));
        out.extend(self.server(rooms_frame(rooms, changes)));
        out.extend(self.server(history_of(None, "L", Vec::new())));
        out
    }

    /// The id of the last v3 request of `kind` sent.
    fn id_of_last(&self, kind: &str) -> String {
        self.sent
            .iter()
            .rev()
            .find(|message| message.kind() == kind)
            .map(|message| message.id().to_owned())
            .unwrap_or_else(|| panic!("no {kind} sent"))
    }
}

#[test]
fn offers_v3_and_shows_each_rooms_earlier_messages_under_its_own_divider() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    let out = h.log_in_v3(
        vec![
            lobby(),
            state("#dev", "D", 2, 1, Role::Owner),
            state("@bob", "B", 1, 1, Role::Member),
        ],
        vec![],
    );
    assert_eq!(h.client.version(), Version::V3);
    assert_eq!(
        out,
        [
            "send listUsers",
            "save alice=S",
            "show 12:00 -- connected to ws://test as alice; /help lists the commands",
            "show 12:00 -- your rooms: #dev (1 unread), @bob (1 unread)",
        ]
    );
    assert_eq!(h.client.prompt(), "alice> ", "the lobby is current");
    // The server's read marker says where the unread part begins.
    assert_eq!(
        h.server(history_of(
            Some("#dev"),
            "D",
            vec![
                said_in("#dev", "alice", "one", 1, 1),
                said_in("#dev", "bob", "two", 2, 2)
            ]
        )),
        [
            "show ── 2 earlier messages in #dev ──",
            "show [#dev] 10:01 alice (you): one",
            "show ── 1 unread ──",
            "show [#dev] 10:02 bob: two",
        ]
    );
    assert_eq!(
        h.server(history_of(
            Some("@bob"),
            "B",
            vec![said_in("@bob", "bob", "lunch?", 1, 3)]
        )),
        [
            "show ── 1 earlier message in @bob ──",
            "show [bob → you] 10:03 bob: lunch?"
        ]
    );
    // Each seq once: a repeat (or a late live copy) is not shown again.
    assert!(h.server(said_in("#dev", "bob", "one", 1, 1)).is_empty());
    assert_eq!(h.type_line("/unread"), ["show unread: #dev 1; @bob 1"]);
}

#[test]
fn join_makes_a_room_current_in_the_prompt_and_other_rooms_lines_carry_their_name() {
    let mut h = Harness::interactive();
    h.drain();
    h.log_in_v3(
        vec![lobby(), state("#ops", "O", 0, 0, Role::Member)],
        vec![],
    );
    assert_eq!(h.type_line("/join #dev"), ["send join #dev"]);
    // At once: what is typed next goes there.
    assert_eq!(h.client.prompt(), "#dev> ");
    let id = h.id_of_last("join");
    assert_eq!(
        h.server(membership(
            "#dev",
            Change::Joined,
            Some(id),
            Some(state("#dev", "D", 0, 0, Role::Owner))
        )),
        ["show 12:00 -- joined #dev (you own it; 2 members)"]
    );
    assert_eq!(h.type_line("hello dev"), ["send text hello dev to #dev"]);
    // The current room's lines as always, read as they come (the read
    // markers gathered for a second, one per room); others' labelled.
    assert_eq!(
        h.server(said_in("#dev", "bob", "hi alice", 1, 5)),
        ["show 10:05 bob: hi alice"]
    );
    assert_eq!(
        h.server(said_in("#dev", "bob", "and more", 2, 5)),
        ["show 10:05 bob: and more"]
    );
    let (slept, out) = h.wake();
    assert_eq!(
        (slept, out),
        (READ_DELAY, vec!["send read #dev 2".to_owned()])
    );
    assert_eq!(
        h.server(said_in("#ops", "carol", "deploy?", 4, 6)),
        ["show [#ops] 10:06 carol: deploy?"]
    );
    assert_eq!(
        h.server(said_in("#lobby", "dave", "hey", 9, 7)),
        ["show [#lobby] 10:07 dave: hey"]
    );
    assert_eq!(h.type_line("/unread"), ["show unread: #lobby 1; #ops 1"]);
    // Back to a room already joined: switched at once, read, nothing sent
    // but the read marker.
    assert_eq!(
        h.type_line("/join #ops"),
        ["show 12:00 -- now talking in #ops"]
    );
    assert_eq!(h.wake().1, ["send read #ops 4"]);
    assert_eq!(h.client.prompt(), "#ops> ");
    assert_eq!(h.type_line("/unread"), ["show unread: #lobby 1"]);
    assert_eq!(
        h.server(said_in("#dev", "bob", "still here", 3, 8)),
        ["show [#dev] 10:08 bob: still here"]
    );
    // The lobby by name; the prompt shows the name again there.
    assert_eq!(
        h.type_line("/join #lobby"),
        ["show 12:00 -- now talking in #lobby"]
    );
    assert_eq!(h.wake().1, ["send read #lobby 9"]);
    assert_eq!(h.client.prompt(), "alice> ");
    assert_eq!(h.type_line("in the lobby"), ["send text in the lobby"]);
}

#[test]
fn a_refused_join_goes_back_to_the_room_before() {
    let mut h = Harness::interactive();
    h.drain();
    h.log_in_v3(vec![lobby()], vec![]);
    h.type_line("/join #secret");
    assert_eq!(h.client.prompt(), "#secret> ");
    let id = h.id_of_last("join");
    assert_eq!(
        h.server(ServerMessage::ErrorMessage {
            error: ErrorCode::Forbidden,
            id: "e".into(),
            reply_to: Some(id.into()),
            description: Some("#secret is invite-only".into()),
        }),
        ["show 12:00 !! could not join #secret: #secret is invite-only"]
    );
    assert_eq!(h.client.prompt(), "alice> ");
}

#[test]
fn a_direct_message_is_labelled_with_who_wrote_and_rings_the_bell() {
    let mut config = config(Mode::Interactive);
    config.output = Output::Lines { bell: true };
    let mut h = Harness::new(config);
    h.drain();
    h.log_in_v3(vec![lobby()], vec![]);
    assert_eq!(h.type_line("/msg bob lunch?"), ["send text lunch? to @bob"]);
    let id = h.id_of_last("textFromUser");
    // A DM begins with a membership; nothing to say about it.
    assert!(
        h.server(membership(
            "@bob",
            Change::Joined,
            None,
            Some(state("@bob", "B", 0, 0, Role::Member))
        ))
        .is_empty()
    );
    let mut echo = said_in("@bob", "alice", "lunch?", 1, 1);
    if let ServerMessage::TextBroadcast { reply_to, .. } = &mut echo {
        *reply_to = Some(id.into());
    }
    assert_eq!(
        h.server(echo),
        ["show [you → bob] 10:01 alice (you): lunch?"]
    );
    assert_eq!(
        h.server(said_in("@bob", "bob", "sure", 2, 2)),
        ["bell", "show [bob → you] 10:02 bob: sure"]
    );
    // /query: bob's DMs are the current room.
    assert_eq!(
        h.type_line("/query bob"),
        ["show 12:00 -- talking to bob in direct messages; /join #ROOM or /join #lobby to go back"]
    );
    assert_eq!(h.client.prompt(), "@bob> ");
    assert_eq!(
        h.type_line("one o'clock"),
        ["send text one o'clock to @bob"]
    );
    assert_eq!(
        h.server(said_in("@bob", "bob", "ok", 3, 3)),
        ["bell", "show 10:03 bob: ok"]
    );
}

#[test]
fn after_a_reconnect_each_room_catches_up_once_and_changes_made_elsewhere_are_said() {
    let mut h = Harness::interactive();
    h.drain();
    h.log_in_v3(
        vec![
            lobby(),
            state("#dev", "D", 0, 0, Role::Member),
            state("#ops", "O", 0, 0, Role::Member),
        ],
        vec![],
    );
    assert_eq!(
        h.server(said_in("#dev", "bob", "one", 1, 1)),
        ["show [#dev] 10:01 bob: one"]
    );
    h.disconnected("reset");
    h.wake();
    h.client.handle_connected(Some(SUBPROTOCOL_V3), h.now);
    let out = h.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    let rooms = h.sent.iter().rev().find_map(|m| match m {
        ClientMessage::Login { rooms, .. } => Some(rooms.clone()),
        _ => None,
    });
    let rooms = rooms.flatten().expect("the login lists the rooms");
    let listed: Vec<(&str, u64)> = rooms.iter().map(|r| (r.room.as_str(), r.since)).collect();
    assert_eq!(listed, [("#dev", 1), ("#ops", 0)]);
    h.server(login_message("alice", "S"));
    let out = h.server(rooms_frame(
        vec![
            lobby(),
            state("#dev", "D", 3, 2, Role::Member),
            state("#new", "N", 0, 0, Role::Member),
        ],
        vec![
            RoomChange {
                room: "#new".into(),
                change: Change::Joined,
                by: None,
                reason: None,
            },
            RoomChange {
                room: "#ops".into(),
                change: Change::Kicked,
                by: Some("carol".into()),
                reason: Some("spam".into()),
            },
        ],
    ));
    assert!(out.is_empty(), "{out:?}");
    let out = h.server(history_of(None, "L", Vec::new()));
    assert_eq!(
        out[out.len() - 2..],
        [
            "show 12:00 -- you joined #new on another device",
            "show 12:00 !! carol removed you from #ops: spam",
        ]
    );
    assert_eq!(
        h.server(history_of(
            Some("#dev"),
            "D",
            vec![
                said_in("#dev", "bob", "one", 1, 1),
                said_in("#dev", "bob", "two", 2, 2),
                said_in("#dev", "bob", "three", 3, 3)
            ]
        )),
        [
            "show ── 2 messages in #dev while you were away ──",
            "show [#dev] 10:02 bob: two",
            "show [#dev] 10:03 bob: three",
        ]
    );
    assert_eq!(
        h.type_line("/join #ops"),
        ["send join #ops"],
        "no longer in it"
    );
}

#[test]
fn rooms_joined_or_left_on_another_device_appear_and_disappear_with_a_line() {
    let mut h = Harness::interactive();
    h.drain();
    h.log_in_v3(vec![lobby()], vec![]);
    assert_eq!(
        h.server(membership(
            "#dev",
            Change::Joined,
            None,
            Some(state("#dev", "D", 0, 0, Role::Member))
        )),
        ["show 12:00 -- you joined #dev on another device"]
    );
    assert_eq!(
        h.client.roster().rooms().map(|r| r.collect::<Vec<_>>()),
        Some(vec!["#dev", "#lobby"])
    );
    assert_eq!(
        h.server(membership("#dev", Change::Left, None, None)),
        ["show 12:00 -- you left #dev on another device"]
    );
    assert_eq!(h.client.roster().rooms().map(|r| r.count()), Some(1));
}

#[test]
fn room_commands_send_their_acts_to_the_current_room_and_notices_read_as_sentences() {
    let mut h = Harness::interactive();
    h.drain();
    h.log_in_v3(vec![lobby(), state("#dev", "D", 0, 0, Role::Owner)], vec![]);
    h.type_line("/join #dev");
    for (typed, sent) in [
        (
            "/topic builds are green",
            "send topic #dev builds are green",
        ),
        ("/invite carol", "send invite #dev carol"),
        (
            "/kick bob off topic",
            "send kick #dev bob Some(\"off topic\")",
        ),
        ("/ban bob 2h", "send ban #dev bob Some(7200)"),
        ("/unban bob", "send unban #dev bob"),
        ("/mute bob 10m", "send mute #dev bob Some(600)"),
        ("/unmute bob", "send unmute #dev bob"),
        ("/op bob", "send op #dev bob"),
        ("/deop bob", "send deop #dev bob"),
        ("/mode +i", "send mode #dev inviteOnly=true"),
        ("/names", "send listMembers #dev"),
        ("/who", "send listMembers #dev"),
        ("/rooms", "send listRooms"),
        ("/part see you", "send part #dev Some(\"see you\")"),
    ] {
        assert_eq!(h.type_line(typed), [sent], "{typed}");
    }
    let notice = |act, until, topic: Option<&str>| ServerMessage::Notice {
        id: "n".into(),
        room: "#ops".into(),
        seq: 1,
        timestamp: at(10, 0),
        act,
        by: "alice".into(),
        username: Some("bob".into()),
        reason: None,
        until,
        topic: topic.map(|t| Cow::Owned(t.to_owned())),
        invite_only: None,
    };
    assert_eq!(
        h.server(notice(Act::Ban, Some(at(12, 0)), None)),
        ["show [#ops] 10:00 * alice banned bob from #ops for 2 h"]
    );
    let mut later = notice(Act::Topic, None, Some("ship it"));
    if let ServerMessage::Notice { seq, .. } = &mut later {
        *seq = 2;
    }
    assert_eq!(
        h.server(later),
        ["show [#ops] 10:00 * alice set the topic of #ops: ship it"]
    );
    let id = h.id_of_last("listRooms");
    assert_eq!(
        h.server(ServerMessage::RoomList {
            id: "x".into(),
            reply_to: id.into(),
            rooms: vec![
                state("#dev", "D", 3, 2, Role::Owner),
                {
                    let mut public = state("#design", "G", 0, 0, Role::Member);
                    public.role = None;
                    public.topic = Some("pixels".into());
                    public
                },
                state("@bob", "B", 1, 1, Role::Member)
            ],
        }),
        [
            "show rooms (3):\n  #dev (yours: owner) 2 members, 2 unread\n  #design 2 members — pixels\
             \n  @bob (direct messages with bob), 1 unread"
        ]
    );
    let id = h.id_of_last("listMembers");
    assert_eq!(
        h.server(ServerMessage::MemberList {
            id: "x".into(),
            reply_to: id.into(),
            room: "#dev".into(),
            members: vec![
                MemberEntry {
                    username: "alice".into(),
                    role: Role::Owner,
                    online: true,
                    muted: false
                },
                MemberEntry {
                    username: "bob".into(),
                    role: Role::Member,
                    online: false,
                    muted: true
                },
            ],
            more: 0,
        }),
        ["show #dev (2): alice (owner, you), bob (muted, away)"]
    );
}

#[test]
fn on_a_server_without_rooms_the_room_commands_say_so() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    h.client.handle_connected(Some(SUBPROTOCOL_V2), h.now);
    h.drain();
    h.server(login_message("alice", "S"));
    h.server(ServerMessage::History {
        id: "h".into(),
        reply_to: "l".into(),
        epoch: None,
        messages: vec![],
        complete: true,
        room: None,
    });
    assert_eq!(
        h.type_line("/join #dev"),
        [
            "show this server has no rooms or direct messages (it speaks protocol v2): /join needs a server that speaks protocol v3"
        ]
    );
    assert_eq!(h.type_line("hi"), ["send text hi"]);
    assert_eq!(h.client.prompt(), "alice> ");
}

#[test]
fn a_script_with_a_room_joins_it_sends_there_and_labels_every_line() {
    let mut config = config(Mode::Script);
    config.room = Some("#dev".into());
    let mut h = Harness::new(config);
    h.drain();
    h.client.handle_line("first", h.now);
    assert_eq!(
        h.log_in_v3(vec![lobby()], vec![]),
        ["send join #dev", "send text first to #dev", "save alice=S"]
    );
    assert_eq!(
        h.server(said_in("#dev", "bob", "hi", 1, 1)),
        ["show [#dev] 10:01 bob: hi"]
    );
    assert_eq!(
        h.server(said_in("#lobby", "bob", "yo", 5, 2)),
        ["show [#lobby] 10:02 bob: yo"]
    );
    assert_eq!(
        h.server(said_in("@bob", "bob", "psst", 1, 3)),
        ["show [bob → you] 10:03 bob: psst"]
    );
}

#[test]
fn a_script_with_a_room_fails_on_a_server_without_rooms() {
    let mut config = config(Mode::Script);
    config.room = Some("@bob".into());
    let mut h = Harness::new(config);
    h.drain();
    h.client.handle_connected(Some(SUBPROTOCOL_V2), h.now);
    h.drain();
    h.server(login_message("alice", "S"));
    let out = h.server(ServerMessage::History {
        id: "h".into(),
        reply_to: "l".into(),
        epoch: None,
        messages: vec![],
        complete: true,
        room: None,
    });
    assert!(out.contains(&"close".to_owned()), "{out:?}");
    assert_eq!(
        out[out.len() - 1..],
        [
            "exit 1: this server speaks protocol v2, which has no rooms or direct messages: @bob \
             needs a server that speaks protocol v3",
        ]
    );
}

#[test]
fn a_room_message_left_unconfirmed_by_a_drop_is_settled_by_its_rooms_catch_up() {
    let mut h = Harness::interactive();
    h.drain();
    h.log_in_v3(
        vec![
            lobby(),
            state("#dev", "D", 0, 0, Role::Member),
            state("#ops", "O", 0, 0, Role::Member),
        ],
        vec![],
    );
    h.type_line("/join #dev");
    assert_eq!(h.type_line("got there"), ["send text got there to #dev"]);
    h.type_line("/join #ops");
    assert_eq!(h.type_line("lost"), ["send text lost to #ops"]);
    h.disconnected("reset");
    h.wake();
    h.client.handle_connected(Some(SUBPROTOCOL_V3), h.now);
    h.drain();
    h.server(login_message("alice", "S"));
    // #dev has a message since: its catch-up will tell; #ops has none:
    // "lost" never arrived, and goes again.
    assert!(
        h.server(rooms_frame(
            vec![
                lobby(),
                state("#dev", "D", 1, 0, Role::Member),
                state("#ops", "O", 0, 0, Role::Member)
            ],
            vec![],
        ))
        .is_empty()
    );
    let out = h.server(history_of(None, "L", Vec::new()));
    assert!(
        out.contains(
            &"show 12:00 -- the server never got this message before the connection dropped; \
              sending it again: lost"
                .to_owned()
        ),
        "{out:?}"
    );
    assert!(
        out.contains(&"send text lost to #ops".to_owned()),
        "{out:?}"
    );
    // Found in #dev's catch-up: delivered, shown once, not sent again.
    let out = h.server(history_of(
        Some("#dev"),
        "D",
        vec![said_in("#dev", "alice", "got there", 1, 1)],
    ));
    assert_eq!(
        out,
        [
            "show ── 1 message in #dev while you were away ──",
            "show [#dev] 10:01 alice (you): got there",
        ]
    );
    // Everything is settled: once "lost" is confirmed, /quit has nothing
    // to report.
    let id = h.id_of_last("textFromUser");
    let mut echo = said_in("#ops", "alice", "lost", 1, 2);
    if let ServerMessage::TextBroadcast { reply_to, .. } = &mut echo {
        *reply_to = Some(id.into());
    }
    h.server(echo);
    let out = h.type_line("/quit");
    assert_eq!(out.last().map(String::as_str), Some("exit 0"), "{out:?}");
}

#[test]
fn a_current_room_one_was_removed_from_stays_current_so_no_line_goes_elsewhere() {
    let mut h = Harness::interactive();
    h.drain();
    h.log_in_v3(
        vec![lobby(), state("#ops", "O", 0, 0, Role::Member)],
        vec![],
    );
    h.type_line("/join #ops");
    let mut kicked = membership("#ops", Change::Kicked, None, None);
    if let ServerMessage::Membership { by, reason, .. } = &mut kicked {
        *by = Some("carol".into());
        *reason = Some("off topic".into());
    }
    assert_eq!(
        h.server(kicked),
        [
            "show 12:00 !! carol removed you from #ops: off topic; /join a room (or /join #lobby) \
          to talk elsewhere"
        ]
    );
    assert_eq!(h.client.prompt(), "#ops> ");
    assert_eq!(
        h.type_line("still here?"),
        ["send text still here? to #ops"]
    );
    assert_eq!(
        h.type_line("/join #lobby"),
        ["show 12:00 -- now talking in #lobby"]
    );
}

#[test]
fn a_room_given_on_the_command_line_is_current_from_the_start() {
    let mut config = config(Mode::Interactive);
    config.room = Some("#dev".into());
    let mut h = Harness::new(config);
    assert_eq!(h.client.prompt(), "#dev> ");
    h.drain();
    let out = h.log_in_v3(vec![lobby()], vec![]);
    assert!(out.contains(&"send join #dev".to_owned()), "{out:?}");
    let id = h.id_of_last("join");
    assert_eq!(
        h.server(membership(
            "#dev",
            Change::Joined,
            Some(id),
            Some(state("#dev", "D", 0, 0, Role::Member))
        )),
        ["show 12:00 -- joined #dev (2 members)"]
    );
    assert_eq!(h.type_line("hi"), ["send text hi to #dev"]);
    // Already in it next time: switched to, not joined again.
    let mut config = super::config(Mode::Interactive);
    config.room = Some("#dev".into());
    let mut h = Harness::new(config);
    h.drain();
    let out = h.log_in_v3(
        vec![lobby(), state("#dev", "D", 0, 0, Role::Member)],
        vec![],
    );
    assert!(
        out.contains(&"show 12:00 -- now talking in #dev".to_owned()),
        "{out:?}"
    );
    assert!(
        !out.iter().any(|line| line.starts_with("send join")),
        "{out:?}"
    );
}

#[test]
fn a_pending_message_to_another_room_says_where_it_goes() {
    let mut h = Harness::interactive();
    h.drain();
    h.log_in_v3(vec![lobby()], vec![]);
    h.pending = true;
    assert_eq!(
        h.type_line("/msg bob psst"),
        [
            "send text psst to @bob",
            "pending [[you → bob] 12:00 alice (you): psst (sending…)]"
        ]
    );
    assert_eq!(
        h.type_line("in the lobby"),
        [
            "send text in the lobby",
            "pending [[you → bob] 12:00 alice (you): psst (sending…) | \
             12:00 alice (you): in the lobby (sending…)]"
        ]
    );
}
