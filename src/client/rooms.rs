//! v3: the rooms and direct messages of this name as the client knows
//! them — which it is in, which one typed lines go to (the current one),
//! how far into each room's numbering it has shown, and where unread
//! messages wait. Plain state, fed by the client with what the server says
//! (`rooms`, `membership`, `readMarker`, messages) and asked what to show.

use std::collections::BTreeMap;

use super::name_key;
use crate::protocol::{Role, RoomSince, RoomState};

/// The room every name is in unless it left it; v2's numbering.
pub const LOBBY: &str = "#lobby";

/// One room or DM this name is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// `#name`, or `@name` (the other party) for a DM, as the server spells it.
    pub name: String,
    pub topic: Option<String>,
    pub invite_only: bool,
    pub members: usize,
    /// This name's role; `None` until the server said (a DM opened here).
    pub role: Option<Role>,
    /// The numbering `shown` belongs to.
    pub epoch: Option<String>,
    /// The highest `seq` shown: the next login's `since`.
    pub shown: Option<u64>,
    /// The latest `seq` the server numbered, as far as the client knows.
    pub last_seq: u64,
    /// Messages after the read marker.
    pub unread: u64,
    /// Whether one of them names the user.
    pub mentioned: bool,
}

impl Room {
    fn new(name: &str) -> Room {
        Room {
            name: name.to_owned(),
            topic: None,
            invite_only: false,
            members: 0,
            role: None,
            epoch: None,
            shown: None,
            last_seq: 0,
            unread: 0,
            mentioned: false,
        }
    }

    pub fn is_dm(&self) -> bool {
        self.name.starts_with('@')
    }
}

/// The rooms of this name, and the current one.
#[derive(Debug, Default)]
pub struct Rooms {
    /// By [`key`].
    joined: BTreeMap<String, Room>,
    /// The key of the room typed lines go to; `None`: the lobby.
    current: Option<String>,
    /// Public rooms `/rooms` listed, by key: as spelt (for completion).
    public: BTreeMap<String, String>,
}

/// The key of a room's name: `#` or `@` and the server's key of the rest,
/// so that `#Dev` and `#dev` are one room.
pub fn key(room: &str) -> String {
    match room.split_at_checked(1) {
        Some((sigil @ ("#" | "@"), rest)) => format!("{sigil}{}", name_key(rest)),
        _ => name_key(room),
    }
}

/// Whether `room` (a `room` field; absent is the lobby) is the lobby.
pub fn is_lobby(room: Option<&str>) -> bool {
    room.is_none_or(|room| key(room) == key(LOBBY))
}

impl Rooms {
    /// The room or DM, if this name is in it.
    pub fn get(&self, room: &str) -> Option<&Room> {
        self.joined.get(&key(room))
    }

    pub fn get_mut(&mut self, room: &str) -> Option<&mut Room> {
        self.joined.get_mut(&key(room))
    }

    /// Every room and DM, in the order of their keys.
    pub fn all(&self) -> impl Iterator<Item = &Room> {
        self.joined.values()
    }

    /// The room typed lines go to, as spelt: the lobby when none is chosen.
    pub fn current_name(&self) -> &str {
        self.current
            .as_ref()
            .and_then(|key| self.joined.get(key))
            .map_or(LOBBY, |room| room.name.as_str())
    }

    /// The `room` of a message typed now: `None` for the lobby.
    pub fn target(&self) -> Option<String> {
        let current = self.current_name();
        (!is_lobby(Some(current))).then(|| current.to_owned())
    }

    /// Whether `room` (absent: the lobby) is the current one.
    pub fn is_current(&self, room: Option<&str>) -> bool {
        key(room.unwrap_or(LOBBY)) == key(self.current_name())
    }

    /// Makes `room` the current one, known or not (a DM opened by
    /// `/query`, a room being joined); the lobby is `None`.
    pub fn switch(&mut self, room: &str) {
        let key = key(room);
        if is_lobby(Some(room)) {
            self.current = None;
        } else {
            self.joined
                .entry(key.clone())
                .or_insert_with(|| Room::new(room));
            self.current = Some(key.clone());
        }
        // Seen now.
        if let Some(room) = self.joined.get_mut(&key) {
            room.unread = 0;
            room.mentioned = false;
        }
    }

    /// The server's state of a room this name is in (`rooms`,
    /// `membership`): taken, keeping what was shown of it when the
    /// numbering is the same.
    pub fn update(&mut self, state: &RoomState<'_>) {
        let room = self
            .joined
            .entry(key(&state.room))
            .or_insert_with(|| Room::new(&state.room));
        if room.epoch.as_deref() != Some(&*state.epoch) {
            room.shown = None;
            room.epoch = Some(state.epoch.to_string());
        }
        room.name = state.room.to_string();
        room.topic = state.topic.as_ref().map(|t| t.to_string());
        room.invite_only = state.invite_only;
        room.members = state.members;
        room.role = state.role.or(room.role);
        room.last_seq = state.last_seq;
        room.unread = state.unread;
        room.mentioned = state.mentioned;
    }

    /// This name is no longer in `room`; whether it was the current one
    /// (then the lobby is).
    pub fn remove(&mut self, room: &str) -> Option<(Room, bool)> {
        let key = key(room);
        let removed = self.joined.remove(&key)?;
        let was_current = self.current.as_deref() == Some(key.as_str());
        if was_current {
            self.current = None;
        }
        Some((removed, was_current))
    }

    /// Whether a message numbered `seq` in `room` is new (and if so,
    /// remember it). Unnumbered ones always are.
    pub fn fresh(&mut self, room: &str, seq: Option<u64>) -> bool {
        let Some(seq) = seq else {
            return true;
        };
        let room = self
            .joined
            .entry(key(room))
            .or_insert_with(|| Room::new(room));
        if room.shown.is_some_and(|shown| seq <= shown) {
            return false;
        }
        room.shown = Some(seq);
        room.last_seq = room.last_seq.max(seq);
        true
    }

    /// A message was shown in `room` (absent: the lobby): unread unless it
    /// is the current room or the user's own.
    pub fn arrived(&mut self, room: Option<&str>, own: bool, mention: bool) {
        if own || self.is_current(room) {
            return;
        }
        let name = room.unwrap_or(LOBBY);
        let room = self
            .joined
            .entry(key(name))
            .or_insert_with(|| Room::new(name));
        room.unread += 1;
        room.mentioned |= mention;
    }

    /// The read marker of `room` is at `seq` now (this device or another).
    pub fn read(&mut self, room: &str, seq: u64) {
        if let Some(room) = self.joined.get_mut(&key(room)) {
            room.last_seq = room.last_seq.max(seq);
            room.unread = room.last_seq - seq;
            if room.unread == 0 {
                room.mentioned = false;
            }
        }
    }

    /// What a v3 login lists: every room and DM with its numbering and
    /// the last `seq` shown (the lobby goes in `since`, as on v2).
    pub fn since_list(&self) -> Vec<RoomSince> {
        self.joined
            .values()
            .filter(|room| !is_lobby(Some(&room.name)))
            .filter_map(|room| {
                Some(RoomSince {
                    room: room.name.clone(),
                    epoch: Some(room.epoch.clone()?),
                    since: room.shown.unwrap_or(0),
                })
            })
            .collect()
    }

    /// Where unread messages wait: (room, count, mentioned), by name.
    pub fn unread(&self) -> Vec<(&str, u64, bool)> {
        self.joined
            .values()
            .filter(|room| room.unread > 0)
            .map(|room| (room.name.as_str(), room.unread, room.mentioned))
            .collect()
    }

    /// Public rooms `/rooms` listed, for completion.
    pub fn listed(&mut self, rooms: impl IntoIterator<Item = String>) {
        self.public = rooms.into_iter().map(|room| (key(&room), room)).collect();
    }

    /// The rooms to complete after `#`: joined, and listed.
    pub fn completable(&self) -> Vec<&str> {
        let mut rooms: BTreeMap<&str, &str> = self
            .public
            .iter()
            .map(|(key, room)| (key.as_str(), room.as_str()))
            .collect();
        for (key, room) in &self.joined {
            if !room.is_dm() {
                rooms.insert(key, &room.name);
            }
        }
        rooms.into_values().collect()
    }

    /// Forgets everything: a new name (the next owner inherits nothing).
    pub fn clear(&mut self) {
        *self = Rooms::default();
    }
}

/// The label in front of a line of `room` (see `Line::InRoom`): the room's
/// name, or for a DM who wrote to whom (`bob → you`, `you → bob`).
pub fn label(room: &str, from: &str, me: &str) -> String {
    match room.strip_prefix('@') {
        Some(other) if name_key(from) == name_key(me) => format!("you → {other}"),
        Some(other) => format!("{other} → you"),
        None => room.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn state(room: &str, epoch: &str, last_seq: u64, unread: u64) -> RoomState<'static> {
        RoomState {
            room: Cow::Owned(room.to_owned()),
            topic: Some("builds".into()),
            invite_only: false,
            members: 2,
            role: Some(Role::Member),
            epoch: Cow::Owned(epoch.to_owned()),
            last_seq,
            read_seq: last_seq - unread,
            unread,
            mentioned: false,
            recovered: None,
        }
    }

    #[test]
    fn typed_lines_go_to_the_current_room_and_the_lobby_is_the_default() {
        let mut rooms = Rooms::default();
        assert_eq!(rooms.current_name(), LOBBY);
        assert_eq!(rooms.target(), None);
        assert!(rooms.is_current(None));
        rooms.update(&state("#dev", "e1", 3, 1));
        rooms.switch("#DEV");
        assert_eq!(rooms.current_name(), "#dev");
        assert_eq!(rooms.target().as_deref(), Some("#dev"));
        assert!(rooms.is_current(Some("#Dev")));
        assert!(!rooms.is_current(None));
        assert_eq!(rooms.get("#dev").map(|r| r.unread), Some(0), "seen now");
        assert_eq!(rooms.remove("#dev").map(|(_, current)| current), Some(true));
        assert_eq!(rooms.current_name(), LOBBY);
        rooms.switch("@bob");
        assert_eq!(rooms.target().as_deref(), Some("@bob"));
        rooms.switch("#lobby");
        assert_eq!(rooms.target(), None);
    }

    #[test]
    fn each_room_shows_each_seq_once_and_a_new_numbering_starts_afresh() {
        let mut rooms = Rooms::default();
        rooms.update(&state("#dev", "e1", 0, 0));
        assert!(rooms.fresh("#dev", Some(1)));
        assert!(rooms.fresh("#dev", Some(2)));
        assert!(!rooms.fresh("#dev", Some(2)));
        assert!(!rooms.fresh("#Dev", Some(1)));
        assert!(
            rooms.fresh("#ops", Some(1)),
            "another room, its own numbering"
        );
        assert!(rooms.fresh("#dev", None));
        rooms.update(&state("#dev", "e1", 2, 0));
        let since = rooms.since_list();
        assert_eq!(
            since.len(),
            1,
            "only rooms with a known numbering: {since:?}"
        );
        assert_eq!((since[0].room.as_str(), since[0].since), ("#dev", 2));
        rooms.update(&state("#dev", "e2", 1, 1));
        assert!(rooms.fresh("#dev", Some(1)), "renumbered");
    }

    #[test]
    fn unread_counts_what_arrives_elsewhere_until_read() {
        let mut rooms = Rooms::default();
        rooms.update(&state("#dev", "e1", 5, 2));
        rooms.update(&state("#lobby", "l", 0, 0));
        rooms.switch("#dev");
        rooms.arrived(Some("#dev"), false, false);
        rooms.arrived(None, false, true);
        rooms.arrived(None, true, false);
        rooms.arrived(Some("@bob"), false, false);
        assert_eq!(rooms.unread(), [("#lobby", 1, true), ("@bob", 1, false)]);
        rooms.read("#lobby", 7);
        assert_eq!(rooms.unread(), [("@bob", 1, false)]);
        rooms.arrived(None, false, false);
        rooms.switch(LOBBY);
        assert_eq!(rooms.unread(), [("@bob", 1, false)], "seen once current");
    }

    #[test]
    fn a_dm_is_labelled_with_who_wrote_to_whom() {
        assert_eq!(label("#ops", "bob", "alice"), "#ops");
        assert_eq!(label("@bob", "bob", "alice"), "bob → you");
        assert_eq!(label("@bob", "Alice", "alice"), "you → bob");
        let mut rooms = Rooms::default();
        rooms.update(&state("#dev", "e1", 0, 0));
        rooms.switch("@bob");
        rooms.listed(["#Design".to_owned(), "#dev".to_owned()]);
        assert_eq!(rooms.completable(), ["#Design", "#dev"]);
    }
}
