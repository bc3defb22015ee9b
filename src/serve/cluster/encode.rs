//! The link's commands as Redis commands: each script's keys and arguments
//! (see [`scripts`](super::scripts) for what each takes).

use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, Value};

use super::events;
use super::machine::Join;
use super::requests::Call;
use super::scripts::{self, CHANNEL, HISTORY, Lua, META, NODES, ONLINE, PREFIX, Scripts};
use super::{RoomSettings, Settings};
use super::{room_events, room_scripts};
use crate::server::Write;

/// What every command of this node says the same way.
#[derive(Debug)]
pub(crate) struct Encoder {
    pub(crate) node: Arc<str>,
    pub(crate) settings: Settings,
    pub(crate) rooms: RoomSettings,
    pub(crate) scripts: Arc<Scripts>,
}

impl Encoder {
    /// The pipeline of a batch of requests, in their order: one EVALSHA
    /// per request, but one for each run of consecutive appends (see
    /// [`scripts::APPEND`]), of consecutive room entries (ROOM_APPEND), and
    /// of consecutive writes to one room (ROOM_WRITES: all or nothing).
    pub(crate) fn calls(&self, calls: &[Call]) -> Pipeline {
        let mut pipeline = Pipeline::default();
        let mut rest = calls;
        while let Some(call) = rest.first() {
            let alike = |c: &&Call| match (call, *c) {
                (Call::Append { .. }, Call::Append { .. }) => true,
                (Call::RoomAppend { .. }, Call::RoomAppend { .. }) => true,
                (Call::RoomWrite { write: a, .. }, Call::RoomWrite { write: b, .. }) => {
                    room_events::room_of(a)
                        .is_some_and(|room| room_events::room_of(b) == Some(room))
                }
                _ => false,
            };
            let run = rest.iter().take_while(alike).count().max(1);
            let (now, later) = rest.split_at(run);
            let (cmd, kind) = match call {
                Call::Append { .. } => (self.appends(now), Run::Lobby),
                Call::RoomAppend { .. } => {
                    let (cmd, places) = self.room_appends(now);
                    (cmd, Run::Rooms(places))
                }
                Call::RoomWrite { write, .. } => (self.room_writes(write, now), Run::All),
                call => (self.call(call), Run::All),
            };
            pipeline.cmds.push(cmd);
            pipeline.runs.push((run, kind));
            rest = later;
        }
        pipeline
    }

    /// ROOM_WRITES of a run of writes to one room, or ROOM_RELEASE of a
    /// release (a run of one).
    fn room_writes(&self, first: &Write, run: &[Call]) -> Cmd {
        let writes: Vec<&Write> = run
            .iter()
            .filter_map(|call| match call {
                Call::RoomWrite { write, .. } => Some(write),
                _ => None,
            })
            .collect();
        let event = room_events::writes_event(&self.node, writes.iter().copied());
        let Some(room) = room_events::room_of(first) else {
            let key = match first {
                Write::Release { key } => &**key,
                _ => "",
            };
            let rooms = room_scripts::name_rooms_key(key);
            let mut cmd = evalsha(
                &self.scripts.room_release,
                &[NODES, room_scripts::ROOMS, &rooms],
            );
            cmd.arg(&*self.node)
                .arg(key)
                .arg(PREFIX)
                .arg(CHANNEL)
                .arg(event);
            return cmd;
        };
        let parts = room_scripts::ROOM_PARTS.map(|part| room_scripts::room_key(room, part));
        let mut keys = vec![NODES, room_scripts::ROOMS];
        keys.extend(parts.iter().map(String::as_str));
        let mut cmd = evalsha(&self.scripts.room_writes, &keys);
        cmd.arg(&*self.node)
            .arg(&**room)
            .arg(self.rooms.max_members)
            .arg(PREFIX)
            .arg(CHANNEL)
            .arg(event);
        for write in writes {
            cmd.arg(room_events::script_args(write));
        }
        cmd
    }

    /// ROOM_APPEND of a run of room entries, each encoded here as it is
    /// kept and published, grouped by room (in the order of each room's
    /// first entry; a room's own in the core's order); with each entry's
    /// place: its room's group and its rank there.
    fn room_appends(&self, run: &[Call]) -> (Cmd, Vec<Place>) {
        let mut rooms: Vec<(&str, Vec<String>)> = Vec::new();
        let mut places = Vec::with_capacity(run.len());
        for call in run {
            if let Call::RoomAppend {
                room,
                id,
                timestamp,
                username,
                text,
                notice,
                ..
            } = call
            {
                let group = match rooms.iter().position(|(r, _)| *r == &**room) {
                    Some(group) => group,
                    None => {
                        rooms.push((room, Vec::new()));
                        rooms.len() - 1
                    }
                };
                let entries = &mut rooms[group].1;
                places.push(Place {
                    group,
                    rank: entries.len(),
                });
                entries.push(room_events::entry_json(
                    id, *timestamp, username, text, *notice,
                ));
            }
        }
        let mut keys = vec![NODES.to_owned()];
        for (room, _) in &rooms {
            keys.push(room_scripts::room_key(room, "meta"));
            keys.push(room_scripts::room_key(room, "log"));
        }
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut cmd = evalsha(&self.scripts.room_append, &keys);
        cmd.arg(&*self.node)
            .arg(events::json_string(&self.node))
            .arg(self.rooms.history)
            .arg(CHANNEL);
        for (room, entries) in rooms {
            cmd.arg(events::json_string(room))
                .arg(entries.len())
                .arg(entries);
        }
        (cmd, places)
    }

    /// The APPEND of a run of messages, each encoded here as it is kept
    /// and published.
    fn appends(&self, run: &[Call]) -> Cmd {
        let mut cmd = evalsha(&self.scripts.append, &[META, HISTORY, NODES]);
        cmd.arg(&*self.node)
            .arg(events::json_string(&self.node))
            .arg(self.settings.history_size)
            .arg(CHANNEL);
        for call in run {
            if let Some(message) = events::message_json(call) {
                cmd.arg(message);
            }
        }
        cmd
    }

    /// The EVALSHA of one request.
    fn call(&self, call: &Call) -> Cmd {
        let (scripts, node) = (&self.scripts, &*self.node);
        let presence = scripts::presence_key(node);
        match call {
            Call::Reserve {
                key,
                display,
                offered,
                fresh,
                location,
                timestamp,
                ..
            } => {
                let name = scripts::name_key(key);
                let keys = [&*name, ONLINE, &presence, NODES, META];
                let mut cmd = evalsha(&scripts.reserve, &keys);
                cmd.arg(&**key)
                    .arg(&**display)
                    .arg(offered)
                    .arg(fresh)
                    .arg(node)
                    .arg(&**location)
                    .arg(*timestamp)
                    .arg(CHANNEL);
                cmd
            }
            Call::Disconnect { key, reason, .. } => {
                let mut cmd = evalsha(&scripts.disconnect, &[ONLINE, &presence, NODES]);
                cmd.arg(&**key)
                    .arg(node)
                    .arg(events::reason_name(*reason))
                    .arg(millis(self.settings.login_ttl))
                    .arg(PREFIX)
                    .arg(CHANNEL);
                cmd
            }
            Call::Logout {
                key,
                display,
                secret,
                ..
            } => {
                let name = scripts::name_key(key);
                let mut cmd = evalsha(&scripts.logout, &[&name, ONLINE, NODES]);
                cmd.arg(&**key)
                    .arg(secret)
                    .arg(node)
                    .arg(&**display)
                    .arg(PREFIX)
                    .arg(CHANNEL);
                cmd
            }
            Call::Online { .. } => {
                let mut cmd = evalsha(&scripts.online, &[ONLINE, NODES]);
                cmd.arg(PREFIX).arg(node);
                cmd
            }
            Call::Append { .. } => self.appends(std::slice::from_ref(call)),
            Call::RoomAppend { .. } => self.room_appends(std::slice::from_ref(call)).0,
            Call::RoomWrite { write, .. } => self.room_writes(write, std::slice::from_ref(call)),
        }
    }

    /// The JOIN script: this node's epoch, what it delivered and every name
    /// it holds; at the first join, the latest messages too.
    pub(crate) fn join(&self, join: &Join) -> Cmd {
        let presence = scripts::presence_key(&self.node);
        let mut cmd = evalsha(
            &self.scripts.join,
            &[META, HISTORY, ONLINE, NODES, presence.as_str()],
        );
        cmd.arg(&*self.node)
            .arg(&join.epoch)
            .arg(if join.rejoining { "1" } else { "0" })
            .arg(join.delivered)
            .arg(millis(self.settings.login_ttl))
            .arg(PREFIX)
            .arg(CHANNEL)
            .arg(if join.rejoining {
                0
            } else {
                self.settings.history_size
            })
            .arg(millis(self.settings.node_timeout));
        for name in &join.names {
            cmd.arg(&*name.key)
                .arg(&*name.display)
                .arg(&name.secret)
                .arg(name.connections);
        }
        cmd
    }

    /// ROOM_SEQS: every room's latest `seq`.
    pub(crate) fn room_seqs(&self) -> Cmd {
        let mut cmd = evalsha(&self.scripts.room_seqs, &[room_scripts::ROOMS, NODES]);
        cmd.arg(&*self.node).arg(PREFIX);
        cmd
    }

    pub(crate) fn heartbeat(&self) -> Cmd {
        let mut cmd = evalsha(&self.scripts.heartbeat, &[NODES, ONLINE, META]);
        cmd.arg(&*self.node)
            .arg(millis(self.settings.node_timeout))
            .arg(millis(self.settings.login_ttl))
            .arg(PREFIX)
            .arg(CHANNEL);
        cmd
    }

    pub(crate) fn fill(from: u64, to: u64) -> Cmd {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(HISTORY)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(to - from + 1);
        cmd
    }

    /// The LEAVE script, at shutdown.
    pub(crate) fn leave(&self) -> Cmd {
        let presence = scripts::presence_key(&self.node);
        let mut cmd = evalsha(&self.scripts.leave, &[NODES, ONLINE, presence.as_str()]);
        cmd.arg(&*self.node)
            .arg(millis(self.settings.login_ttl))
            .arg(PREFIX)
            .arg(CHANNEL);
        cmd
    }
}

/// A batch's commands, and how many of its requests each answers for.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    pub(crate) cmds: Vec<Cmd>,
    runs: Vec<(usize, Run)>,
}

/// How a command's answer answers its run of requests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    /// Lobby appends: the first seq, the others following it.
    Lobby,
    /// Room entries: an array of one answer per room (its first seq, its
    /// other entries following it), each entry at its place.
    Rooms(Vec<Place>),
    /// One answer for all (a run of room writes: all or nothing).
    All,
}

/// Where a room entry is in ROOM_APPEND: its room's group, its rank there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    group: usize,
    rank: usize,
}

impl Pipeline {
    /// The commands' answers as one answer per request: a run of appends
    /// answered with its first seq gives each message its own, in order;
    /// an error is every request's of the run.
    pub(crate) fn answers(&self, values: Vec<Value>) -> Vec<Value> {
        let mut out = Vec::with_capacity(self.runs.iter().map(|r| r.0).sum());
        for (value, (run, kind)) in values.into_iter().zip(&self.runs) {
            let run = *run;
            match (kind, &value, events::number(&value)) {
                (Run::Lobby, Value::Int(_) | Value::BulkString(_), Some(first)) if run > 1 => {
                    out.extend((first..).take(run).map(|seq| Value::Int(seq as i64)));
                }
                (Run::Rooms(places), Value::Array(rooms), _)
                    if places.iter().all(|p| p.group < rooms.len()) =>
                {
                    out.extend(places.iter().map(|place| {
                        let answer = &rooms[place.group];
                        match (answer, events::number(answer)) {
                            (Value::Int(_) | Value::BulkString(_), Some(first)) => {
                                Value::Int((first + place.rank as u64) as i64)
                            }
                            _ => answer.clone(), // refused: every entry of its room
                        }
                    }));
                }
                _ => out.extend(std::iter::repeat_n(value, run)),
            }
        }
        out
    }
}

fn evalsha(script: &Lua, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&script.hash).arg(keys.len()).arg(keys);
    cmd
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::server::Ticket;

    fn encoder() -> Encoder {
        Encoder {
            node: "n1".into(),
            settings: Settings {
                history_size: 100,
                login_ttl: Duration::from_secs(600),
                node_timeout: Duration::from_secs(10),
            },
            rooms: RoomSettings::default(),
            scripts: Arc::new(Scripts::new()),
        }
    }

    fn append(n: u64) -> Call {
        Call::test_append(n)
    }

    #[test]
    fn a_run_of_appends_is_one_script_call_answering_for_each_in_order() {
        let online = Call::Online {
            ticket: Ticket::for_tests(3),
        };
        let batch = [append(1), append(2), online, append(4)];
        let pipeline = encoder().calls(&batch);
        // Appends are grouped only where consecutive: the order of the
        // core's requests is the order Redis runs them.
        assert_eq!(pipeline.cmds.len(), 3);
        let online = Value::Array(vec![]);
        assert_eq!(
            pipeline.answers(vec![Value::Int(41), online.clone(), Value::Int(43)]),
            [Value::Int(41), Value::Int(42), online, Value::Int(43)]
        );
        let refused = Value::Nil;
        assert_eq!(
            pipeline.answers(vec![refused.clone(), Value::Int(1), Value::Int(9)]),
            [refused.clone(), refused, Value::Int(1), Value::Int(9)]
        );
    }

    fn room_entry(room: &str, n: u64) -> Call {
        Call::RoomAppend {
            ticket: Ticket::for_tests(n),
            room: room.into(),
            id: format!("e{n}").into(),
            timestamp: 1700,
            username: "Bob".into(),
            text: "hi".into(),
            notice: false,
        }
    }

    #[test]
    fn a_run_of_room_entries_goes_grouped_by_room_and_is_answered_in_the_cores_order() {
        let batch = [
            room_entry("#a", 1),
            room_entry("#b", 2),
            room_entry("#a", 3),
        ];
        let pipeline = encoder().calls(&batch);
        assert_eq!(pipeline.cmds.len(), 1);
        // Each room once: its key, how many entries, its entries in order.
        let packed = pipeline.cmds[0].get_packed_command();
        let args: Vec<String> = String::from_utf8_lossy(&packed)
            .split("\r\n")
            .skip(2)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        let entry = |n| format!(r#"["e{n}",1700,"Bob","hi",false]"#);
        let keys = [
            "5",
            "wschat:nodes",
            "wschat:{r:#a}:meta",
            "wschat:{r:#a}:log",
            "wschat:{r:#b}:meta",
            "wschat:{r:#b}:log",
        ];
        assert_eq!(args[2..8], keys, "{args:?}");
        let tail = [
            r##""#a""##.to_owned(),
            "2".into(),
            entry(1),
            entry(3),
            r##""#b""##.into(),
            "1".into(),
            entry(2),
        ];
        assert_eq!(args[args.len() - 7..], tail, "{args:?}");
        // #a's first is 7, #b was refused: each entry its own answer.
        let refused = Value::Nil;
        assert_eq!(
            pipeline.answers(vec![Value::Array(vec![Value::Int(7), refused.clone()])]),
            [Value::Int(7), refused, Value::Int(8)]
        );
    }

    #[test]
    fn a_run_carries_each_message_once_encoded_as_it_is_kept() {
        let pipeline = encoder().calls(&[append(1), append(2)]);
        let packed = pipeline.cmds[0].get_packed_command();
        let text = String::from_utf8_lossy(&packed);
        for message in [r#"["m1",1700,"Bob","hi"]"#, r#"["m2",1700,"Bob","hi"]"#] {
            let arg = format!("${}\r\n{message}\r\n", message.len());
            assert_eq!(text.matches(&arg).count(), 1, "{text}");
        }
    }
}
