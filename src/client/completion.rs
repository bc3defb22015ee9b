//! Tab completion: who is online, as the client keeps track of it, and
//! what the word being typed could become.
//!
//! The client keeps the [`Roster`] current from what the server says (on v2
//! a `userList` after each login, then joins, leaves and `presence`
//! summaries; on v1, which has neither, every name seen in the session).
//! The terminal driver hands a copy of it to the line editor, whose
//! completer calls [`complete`].

use std::collections::BTreeMap;

use super::command::{self, COMMANDS};
use super::name_key;
use crate::username::Username;

/// The names the client knows to be online, each once (names are unique
/// case-insensitively), in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// By [`name_key`]: the name as the server spells it.
    names: BTreeMap<String, String>,
    /// v3: the rooms known (joined, or listed by `/rooms`), by key: as
    /// spelt. `None` when the server has no rooms.
    rooms: Option<BTreeMap<String, String>>,
    /// Counts changes, so that a driver copies the roster only when it
    /// changed.
    generation: u64,
}

impl Roster {
    /// Everyone online, as a `userList` says.
    pub fn replace<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        let names: BTreeMap<String, String> = names
            .into_iter()
            .filter(|name| completable(name))
            .map(|name| (name_key(name), name.to_owned()))
            .collect();
        if names != self.names {
            self.names = names;
            self.generation += 1;
        }
    }

    /// Someone is online (joined, or said something).
    pub fn add(&mut self, name: &str) {
        if !completable(name) {
            return;
        }
        let key = name_key(name);
        if self.names.get(&key).map(String::as_str) != Some(name) {
            self.names.insert(key, name.to_owned());
            self.generation += 1;
        }
    }

    /// Someone left.
    pub fn remove(&mut self, name: &str) {
        if self.names.remove(&name_key(name)).is_some() {
            self.generation += 1;
        }
    }

    /// The names, in the order of their keys.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.values().map(String::as_str)
    }

    /// v3: the rooms to complete after `#` from now on (`None`: the
    /// server has no rooms).
    pub fn set_rooms<'a>(&mut self, rooms: Option<impl IntoIterator<Item = &'a str>>) {
        let rooms = rooms.map(|rooms| {
            rooms
                .into_iter()
                .map(|room| (name_key(room.trim_start_matches('#')), room.to_owned()))
                .collect()
        });
        if rooms != self.rooms {
            self.rooms = rooms;
            self.generation += 1;
        }
    }

    /// v3: the rooms to complete; `None` when the server has no rooms.
    pub fn rooms(&self) -> Option<impl Iterator<Item = &str>> {
        self.rooms
            .as_ref()
            .map(|rooms| rooms.values().map(String::as_str))
    }

    /// Changes whenever the names do.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// Only a name that follows the name rule is offered: one from an older
/// server could hold characters that have no business in a typed line.
fn completable(name: &str) -> bool {
    Username::parse(name, usize::MAX).is_ok()
}

/// What the text before the cursor can be completed to: the byte offset
/// where the word being completed starts, and what may replace it (from
/// there to the cursor), best first. Nothing when nothing fits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    pub start: usize,
    pub candidates: Vec<String>,
}

/// Completes the word before `pos` in `line`:
/// - at the start of the line after `/`: a command, any case (`/wh` →
///   `/who`; `/me ` with a space, as it takes an argument);
/// - anywhere else: the name of someone online other than `me`, any case
///   (`al` → `alice`), followed by `: ` when the name starts the line (as
///   irssi and weechat do when addressing someone) and by a space
///   elsewhere; `@al` completes to `@alice `.
///
/// An empty word completes to nothing rather than to everyone online.
pub fn complete<'a>(
    line: &str,
    pos: usize,
    names: impl IntoIterator<Item = &'a str>,
    me: &str,
) -> Completion {
    let before = line.get(..pos).unwrap_or(line);
    if let Some(typed) = before.strip_prefix('/')
        && !typed.contains(char::is_whitespace)
        && !typed.starts_with('/')
    {
        let candidates = COMMANDS
            .iter()
            .filter(|command| starts_with_ignoring_case(command.name, typed))
            .map(|command| match command.args {
                "" => format!("/{}", command.name),
                _ => format!("/{} ", command.name),
            })
            .collect();
        return Completion {
            start: 0,
            candidates,
        };
    }
    let start = before.rfind(char::is_whitespace).map_or(0, |at| {
        at + before[at..].chars().next().map_or(1, char::len_utf8)
    });
    let (start, word) = match before[start..].strip_prefix('@') {
        Some(word) => (start + 1, word),
        None => (start, &before[start..]),
    };
    if word.is_empty() {
        return Completion::default();
    }
    // A name alone at the start of the line addresses someone.
    let suffix = if start == 0 { ": " } else { " " };
    let me = name_key(me);
    let mut candidates: Vec<String> = names
        .into_iter()
        .filter(|name| name_key(name) != me && starts_with_ignoring_case(name, word))
        .map(|name| format!("{name}{suffix}"))
        .collect();
    candidates.sort_by_key(|name| name.to_lowercase());
    Completion { start, candidates }
}

/// As [`complete`], on a server with rooms (`rooms` is `Some`): the
/// commands of rooms too (after the others, so that the first match is
/// the same), and a word starting with `#` completes to a room.
pub fn complete_with_rooms<'a>(
    line: &str,
    pos: usize,
    names: impl IntoIterator<Item = &'a str>,
    rooms: Option<Vec<&str>>,
    me: &str,
) -> Completion {
    let Some(rooms) = rooms else {
        return complete(line, pos, names, me);
    };
    let before = line.get(..pos).unwrap_or(line);
    if let Some(typed) = before.strip_prefix('/')
        && !typed.contains(char::is_whitespace)
        && !typed.starts_with('/')
    {
        let candidates = command::all_commands()
            .filter(|command| starts_with_ignoring_case(command.name, typed))
            .map(|command| match command.args {
                "" => format!("/{}", command.name),
                _ => format!("/{} ", command.name),
            })
            .collect();
        return Completion {
            start: 0,
            candidates,
        };
    }
    let start = before.rfind(char::is_whitespace).map_or(0, |at| {
        at + before[at..].chars().next().map_or(1, char::len_utf8)
    });
    let word = &before[start..];
    if !word.starts_with('#') {
        return complete(line, pos, names, me);
    }
    let mut candidates: Vec<String> = rooms
        .into_iter()
        .filter(|room| starts_with_ignoring_case(room, word))
        .map(|room| format!("{room} "))
        .collect();
    candidates.sort_by_key(|room| room.to_lowercase());
    Completion { start, candidates }
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.to_lowercase().starts_with(&prefix.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONLINE: [&str; 4] = ["alice", "Albert", "bob", "李雷"];

    fn complete_at_end(line: &str) -> (usize, Vec<String>) {
        let Completion { start, candidates } = complete(line, line.len(), ONLINE, "bob");
        (start, candidates)
    }

    #[test]
    fn a_name_starting_the_line_addresses_someone() {
        assert_eq!(
            complete_at_end("al"),
            (0, vec!["Albert: ".into(), "alice: ".into()])
        );
        assert_eq!(complete_at_end("ALI"), (0, vec!["alice: ".into()]));
        assert_eq!(complete_at_end("李"), (0, vec!["李雷: ".into()]));
    }

    #[test]
    fn a_name_later_in_the_line_is_followed_by_a_space() {
        assert_eq!(complete_at_end("lunch, ali"), (7, vec!["alice ".into()]));
        assert_eq!(complete_at_end("hi @ali"), (4, vec!["alice ".into()]));
        assert_eq!(complete_at_end("@ali"), (1, vec!["alice ".into()]));
        assert_eq!(complete_at_end("hi\tal").0, 3);
        assert_eq!(complete_at_end("hi 李").0, 3);
    }

    #[test]
    fn only_the_word_before_the_cursor_counts() {
        let line = "al and more";
        assert_eq!(
            complete(line, 2, ONLINE, "bob").candidates,
            ["Albert: ", "alice: "]
        );
        // Past the end of the text or not on a character boundary: no panic.
        assert_eq!(complete("李", 1, ONLINE, "bob").start, 0);
        assert_eq!(complete("al", 99, ONLINE, "bob").candidates.len(), 2);
    }

    #[test]
    fn not_ourselves_not_everyone_and_not_what_fits_nobody() {
        for line in ["bo", "", "hi ", "hi @", "zed", "lunch, BOB"] {
            assert_eq!(complete_at_end(line).1, Vec::<String>::new(), "{line:?}");
        }
    }

    #[test]
    fn commands_complete_after_a_slash_in_any_case() {
        assert_eq!(complete_at_end("/wh"), (0, vec!["/who".into()]));
        assert_eq!(complete_at_end("/WH"), (0, vec!["/who".into()]));
        assert_eq!(complete_at_end("/m"), (0, vec!["/me ".into()]));
        assert_eq!(complete_at_end("/q"), (0, vec!["/quit".into()]));
        assert_eq!(complete_at_end("/l"), (0, vec!["/logout".into()]));
        assert_eq!(complete_at_end("/").1.len(), COMMANDS.len());
        // `//` sends a slash; a command's argument is a name.
        assert_eq!(complete_at_end("//wh").1, Vec::<String>::new());
        assert_eq!(complete_at_end("/me hugs al").1, ["Albert ", "alice "]);
    }

    #[test]
    fn with_rooms_a_hash_completes_a_room_and_room_commands_come_after_the_others() {
        let rooms = || Some(vec!["#dev", "#Design", "#ops"]);
        let complete = |line: &str| complete_with_rooms(line, line.len(), ONLINE, rooms(), "bob");
        assert_eq!(complete("/join #d").candidates, ["#Design ", "#dev "]);
        assert_eq!(complete("/join #d").start, 6);
        assert_eq!(complete("#o").candidates, ["#ops "]);
        assert_eq!(complete("see #OP").candidates, ["#ops "]);
        assert_eq!(
            complete("/m").candidates,
            ["/me ", "/msg ", "/mute ", "/mode "]
        );
        assert_eq!(complete("/jo").candidates, ["/join "]);
        assert_eq!(complete("al").candidates, ["Albert: ", "alice: "]);
        // Without rooms (v1, v2): as before.
        let v2 = complete_with_rooms("/m", 2, ONLINE, None, "bob");
        assert_eq!(v2.candidates, ["/me "]);
        assert!(
            complete_with_rooms("#d", 2, ONLINE, None, "bob")
                .candidates
                .is_empty()
        );
    }

    #[test]
    fn the_roster_follows_joins_and_leaves_and_skips_names_that_break_the_rule() {
        let mut roster = Roster::default();
        let start = roster.generation();
        roster.replace(["bob", "alice", "ev\u{1b}il", "alice (you)"]);
        assert_eq!(roster.names().collect::<Vec<_>>(), ["alice", "bob"]);
        let replaced = roster.generation();
        assert_ne!(replaced, start);
        roster.replace(["alice", "bob"]);
        assert_eq!(roster.generation(), replaced, "nothing changed");
        roster.add("Carol");
        roster.add("carol"); // the same person, as spelt now
        roster.remove("ALICE");
        roster.remove("nobody");
        assert_eq!(roster.names().collect::<Vec<_>>(), ["bob", "carol"]);
        assert_eq!(roster.generation(), replaced + 3);
    }
}
