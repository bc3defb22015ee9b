//! The store's tables, and how a row's fields are encoded.
//!
//! Format 1 (up to ab928bb) has `meta`, `meta_text`, `names` and
//! `messages`; format 2 adds the rest, and a store of format 1 is given
//! them, empty, when it is opened (nothing of format 1 changes, so nothing
//! is renumbered). Keys made of a room and a name are tuples, room first
//! where a room is loaded with everything of it in one pass of each table,
//! name first in [`BY_NAME`], which finds what a released name leaves.

use redb::TableDefinition;

use crate::protocol::Role;

/// `format`, `last_seq` (the lobby's), `alive_at`.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `epoch` (the lobby's).
pub(super) const META_TEXT: TableDefinition<&str, &str> = TableDefinition::new("meta_text");
/// Key → (display, SHA-256 of the secret, expiry in ms since the Unix
/// epoch, or 0 while a connection holds the name).
pub(super) const NAMES: TableDefinition<&str, (&str, &[u8], u64)> = TableDefinition::new("names");
/// The lobby's messages: `seq` → (id, timestamp, username, text). Its
/// value is format 1's, so that an older store is read as it is.
pub(super) const MESSAGES: TableDefinition<u64, (&str, u64, &str, &str)> =
    TableDefinition::new("messages");

/// Format 2: the `seq`s of the lobby's messages that are notices, trimmed
/// with them.
pub(super) const LOBBY_NOTICES: TableDefinition<u64, ()> = TableDefinition::new("lobby_notices");
/// Room key → (display, owner's name key, invite-only, topic, epoch). The
/// lobby's row (`#lobby`) holds its topic only, and is there once it has a
/// topic, a ban or a mute.
pub(super) const ROOMS: TableDefinition<&str, RoomRow> = TableDefinition::new("rooms");
/// Room key → the `seq` of its latest message: apart from [`ROOMS`], so
/// that an append writes eight bytes, not the room's row.
pub(super) const ROOM_SEQS: TableDefinition<&str, u64> = TableDefinition::new("room_seqs");
/// (room, `seq`) → (id, timestamp, username, text, notice).
pub(super) const ROOM_MESSAGES: TableDefinition<(&str, u64), RoomMessage> =
    TableDefinition::new("room_messages");
/// (room, name) → (role, muted until).
pub(super) const MEMBERS: TableDefinition<(&str, &str), (u8, Option<u64>)> =
    TableDefinition::new("members");
/// (room, name) → banned until (`None`: for good).
pub(super) const BANS: TableDefinition<(&str, &str), Option<u64>> = TableDefinition::new("bans");
/// (room, name): invited.
pub(super) const INVITES: TableDefinition<(&str, &str), ()> = TableDefinition::new("invites");
/// (room, name) → the last `seq` read.
pub(super) const READS: TableDefinition<(&str, &str), u64> = TableDefinition::new("reads");
/// Names that left the lobby.
pub(super) const LEFT_LOBBY: TableDefinition<&str, ()> = TableDefinition::new("left_lobby");
/// (name, room) → [`Ties`]: every row a released name must take with it,
/// found without reading whole tables.
pub(super) const BY_NAME: TableDefinition<(&str, &str), u8> = TableDefinition::new("by_name");

/// (display, owner, invite-only, topic, epoch).
pub(super) type RoomRow = (
    &'static str,
    Option<&'static str>,
    bool,
    Option<&'static str>,
    &'static str,
);

/// (id, timestamp, username, text, notice).
pub(super) type RoomMessage = (&'static str, u64, &'static str, &'static str, bool);

/// The lobby's key (as `server::rooms::LOBBY`): its messages are
/// [`MESSAGES`], its members everyone not in [`LEFT_LOBBY`]; its row of
/// [`ROOMS`] (topic), of [`BANS`] and of [`MEMBERS`] (names with a lobby
/// mute) are loaded as the room `#lobby` (see `Write::Member`).
pub(super) const LOBBY: &str = "#lobby";

/// What ties a name to a room, as bits of a [`BY_NAME`] value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ties(pub(super) u8);

impl Ties {
    pub(super) const MEMBER: Ties = Ties(1);
    pub(super) const INVITED: Ties = Ties(2);
    pub(super) const READ: Ties = Ties(4);
    pub(super) const OWNER: Ties = Ties(8);
    /// A party of the direct conversation (whether in it or not).
    pub(super) const PARTY: Ties = Ties(16);

    pub(super) fn has(self, tie: Ties) -> bool {
        self.0 & tie.0 != 0
    }
}

/// The two parties of a direct conversation, from its key
/// (`"@" + a + "\n" + b`); `None` for a room.
pub(super) fn parties(room: &str) -> Option<(&str, &str)> {
    room.strip_prefix('@')?.split_once('\n')
}

/// The first key after every (`first`, …) tuple key: with `(first, "")`,
/// the bounds of the rows of `first`.
pub(super) fn after(first: &str) -> String {
    // A string that starts with `first` and goes on sorts after `first`
    // itself, and at or after `first + "\0"`; so does every greater one.
    format!("{first}\0")
}

pub(super) fn role_code(role: Role) -> u8 {
    match role {
        Role::Member => 0,
        Role::Operator => 1,
        Role::Owner => 2,
    }
}

pub(super) fn role_of(code: u8) -> Option<Role> {
    match code {
        0 => Some(Role::Member),
        1 => Some(Role::Operator),
        2 => Some(Role::Owner),
        _ => None,
    }
}
