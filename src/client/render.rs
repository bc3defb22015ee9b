//! Display lines: what the user sees, built from server messages and the
//! client's own notices, and rendered as text with an optional colour.
//!
//! The time of day is an argument, never read here: the driver passes the
//! local time of the server's `timestamp` when the line has one (v2), else
//! the local time when it prints (and a test passes a fixed one).

use std::borrow::Cow;
use std::fmt;

use anstyle::{AnsiColor, Style};

use crate::protocol::LeaveReason;
use crate::username::Username;

/// A wall-clock time of day, as shown in front of each line (`HH:MM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockTime {
    pub hour: u8,
    pub minute: u8,
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// One thing to show the user. `at` is the server's time of the event
/// (milliseconds since the Unix epoch), which v2 gives and v1 does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Someone said something; `own` when it was this user, `mention`
    /// when someone else named this user in it.
    Message {
        from: String,
        text: String,
        own: bool,
        mention: bool,
        at: Option<u64>,
    },
    /// A `/me` message (`* alice waves`), recognised by its text.
    Action {
        from: String,
        action: String,
        own: bool,
        mention: bool,
        at: Option<u64>,
    },
    /// Someone logged in.
    Joined {
        name: String,
        location: String,
        own: bool,
        at: Option<u64>,
    },
    /// Someone left: their last connection went away, or they logged out.
    Left {
        name: String,
        reason: LeaveReason,
        at: u64,
    },
    /// v2: many joined or left at once; the most recent names, and counts.
    Presence {
        joined: Vec<String>,
        joined_count: u64,
        left: Vec<String>,
        left_count: u64,
        at: u64,
    },
    /// The state of the connection: lost, retrying, back.
    Status(String),
    /// Something went wrong, said as a plain sentence.
    Error(String),
    /// Help and hints; shown without a time.
    Info(String),
    /// Sets replayed messages apart from live ones: `── now ──`.
    Divider(String),
    /// One of the user's messages, not confirmed by the server yet: on one
    /// row, marked `(sending…)`, or `(waiting for the connection)` when
    /// `waiting`.
    Pending {
        from: String,
        text: String,
        waiting: bool,
    },
    /// A server message verbatim (`--json`).
    Raw(String),
    /// v3: a line of another room or DM than the current one (or any
    /// room's, in a script that names one), its label in front so that it
    /// is never taken for the current room's: `[#ops] 14:02 bob: hi`,
    /// `[bob → you] 14:02 bob: lunch?`.
    InRoom { label: String, line: Box<Line> },
    /// v3: what happened in a room, as a sentence: `* bob joined #dev`,
    /// `* alice set the topic of #dev: builds`.
    RoomNotice { text: String, at: Option<u64> },
}

impl Line {
    /// The line for a `textBroadcast`. A text of the form `* NAME ACTION`
    /// from NAME is what `/me` sends, so it is shown as an action.
    pub fn from_text(from: &str, text: &str, own: bool, at: Option<u64>) -> Line {
        let action = text
            .strip_prefix("* ")
            .and_then(|rest| rest.strip_prefix(from))
            .and_then(|rest| rest.strip_prefix(' '))
            .filter(|action| !action.trim().is_empty());
        match action {
            Some(action) => Line::Action {
                from: from.to_owned(),
                action: action.to_owned(),
                own,
                mention: false,
                at,
            },
            None => Line::Message {
                from: from.to_owned(),
                text: text.to_owned(),
                own,
                mention: false,
                at,
            },
        }
    }

    /// The same line, marked as a mention if someone else's message names
    /// `me` as a word (case-insensitively: "Alice," and "@alice" do, "Alicia"
    /// does not).
    pub fn mentioning(mut self, me: &str) -> Line {
        if let Line::Message {
            text: said,
            own: false,
            mention,
            ..
        }
        | Line::Action {
            action: said,
            own: false,
            mention,
            ..
        } = &mut self
        {
            *mention = names(said, me);
        }
        self
    }

    /// Whether this line names the user (see [`mentioning`](Self::mentioning)).
    pub fn is_mention(&self) -> bool {
        match self {
            Line::InRoom { line, .. } => line.is_mention(),
            _ => matches!(
                self,
                Line::Message { mention: true, .. } | Line::Action { mention: true, .. }
            ),
        }
    }

    /// v3: the line with the label of its room in front (see
    /// [`Line::InRoom`]).
    pub fn in_room(self, label: impl Into<String>) -> Line {
        Line::InRoom {
            label: label.into(),
            line: Box::new(self),
        }
    }

    /// What marks a pending line as such, at its end: `(sending…)`, or
    /// `(waiting for the connection)`. A row too wide for the terminal is
    /// cut before it, never through it.
    pub fn pending_mark(&self) -> Option<&'static str> {
        match self {
            Line::Pending { waiting: true, .. } => Some("(waiting for the connection)"),
            Line::Pending { waiting: false, .. } => Some("(sending…)"),
            Line::InRoom { line, .. } => line.pending_mark(),
            _ => None,
        }
    }

    /// When the server says this happened (milliseconds since the Unix
    /// epoch): show that time rather than the time of printing, so a
    /// message caught up after a reconnect shows when it was said.
    pub fn timestamp(&self) -> Option<u64> {
        match self {
            Line::Message { at, .. } | Line::Action { at, .. } | Line::Joined { at, .. } => *at,
            Line::Left { at, .. } | Line::Presence { at, .. } => Some(*at),
            Line::RoomNotice { at, .. } => *at,
            Line::InRoom { line, .. } => line.timestamp(),
            _ => None,
        }
    }

    /// Whether this line is chat content (what a script reads on stdout)
    /// rather than a diagnostic (stderr).
    pub fn is_chat(&self) -> bool {
        matches!(
            self,
            Line::Message { .. }
                | Line::Action { .. }
                | Line::Joined { .. }
                | Line::Left { .. }
                | Line::Presence { .. }
                | Line::Raw(_)
                | Line::RoomNotice { .. }
        ) || matches!(self, Line::InRoom { line, .. } if line.is_chat())
    }

    /// The line as text, without a trailing newline. `colour` adds ANSI
    /// styles; text from the network is always stripped of control
    /// characters, so a peer cannot drive the terminal.
    pub fn render(&self, time: ClockTime, colour: bool) -> String {
        let mut out = Painter {
            out: String::new(),
            colour,
        };
        if !matches!(
            self,
            Line::Info(_) | Line::Raw(_) | Line::Divider(_) | Line::InRoom { .. }
        ) {
            out.paint(TIME, &time.to_string());
            out.plain(" ");
        }
        match self {
            Line::Message {
                from,
                text,
                own,
                mention,
                ..
            } => {
                let name = shown_name(from);
                out.paint(name_style(from, *own), &name);
                if *own {
                    out.paint(TIME, " (you)");
                }
                out.plain(": ");
                let indent = TIME_WIDTH + width(&name) + if *own { 6 } else { 0 } + 2;
                out.said(text, indent, *mention);
            }
            Line::Action {
                from,
                action,
                own,
                mention,
                ..
            } => {
                out.plain("* ");
                let name = shown_name(from);
                out.paint(name_style(from, *own), &name);
                if *own {
                    out.paint(TIME, " (you)");
                }
                out.plain(" ");
                let indent = TIME_WIDTH + 2 + width(&name) + if *own { 6 } else { 0 } + 1;
                out.said(action, indent, *mention);
            }
            Line::Joined {
                name,
                location,
                own,
                ..
            } => {
                out.paint(NOTICE, "* ");
                out.paint(name_style(name, *own), &shown_name(name));
                if *own {
                    out.paint(NOTICE, " (you)");
                }
                let text = match location.as_str() {
                    "" | "unknown" => " joined".to_owned(),
                    location => format!(" joined from {}", clean(location)),
                };
                out.paint(NOTICE, &text);
            }
            Line::Left { name, reason, .. } => {
                out.paint(NOTICE, "* ");
                out.paint(name_style(name, false), &shown_name(name));
                let text = match reason {
                    LeaveReason::Evicted => " was disconnected (no answer)",
                    LeaveReason::Logout => " logged out",
                    LeaveReason::Disconnected | LeaveReason::Unknown => " left",
                };
                out.paint(NOTICE, text);
            }
            Line::Presence {
                joined,
                joined_count,
                left,
                left_count,
                ..
            } => {
                out.paint(NOTICE, "* ");
                let groups = [
                    (joined, *joined_count, "joined"),
                    (left, *left_count, "left"),
                ];
                let groups = groups.into_iter().filter(|&(_, count, _)| count > 0);
                for (i, (names, count, verb)) in groups.enumerate() {
                    if i > 0 {
                        out.paint(NOTICE, "; ");
                    }
                    out.names(names, count);
                    out.paint(NOTICE, &format!(" {verb}"));
                }
            }
            Line::Status(text) => out.paint(NOTICE, &format!("-- {}", clean(text))),
            Line::Error(text) => out.paint(ERROR, &format!("!! {}", clean(text))),
            Line::Info(text) => out.plain(&clean_keep_newlines(text)),
            Line::Divider(text) => out.paint(TIME, &format!("── {} ──", clean(text))),
            Line::Pending { from, text, .. } => {
                // As it will look once confirmed, on one row: its first
                // line, and `…` for the rest.
                let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
                let more = if rest.is_empty() { "" } else { " …" };
                let said = Line::from_text(from, &format!("{first}{more}"), true, None);
                let shown = said.render(time, false);
                let shown = shown.get(TIME_WIDTH..).unwrap_or(&shown);
                let mark = self.pending_mark().unwrap_or_default();
                out.paint(TIME, &format!("{shown} {mark}"));
            }
            Line::Raw(text) => out.plain(&clean(text)),
            Line::RoomNotice { text, .. } => out.paint(NOTICE, &format!("* {}", clean(text))),
            Line::InRoom { label, line } => {
                let label = format!("[{}] ", clean(label));
                out.paint(ROOM, &label);
                // The later lines of a message stay under its first.
                let indent = format!("\n{}", " ".repeat(width(&label)));
                out.plain(&line.render(time, colour).replace('\n', &indent));
            }
        }
        out.out
    }
}

const TIME: Style = Style::new().dimmed();
const ROOM: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));

/// `text` dimmed, as the time of a line is (when `colour`).
pub fn dimmed(text: &str, colour: bool) -> String {
    if colour {
        format!("{TIME}{text}{TIME:#}")
    } else {
        text.to_owned()
    }
}
/// "HH:MM ".
const TIME_WIDTH: usize = 6;
/// What someone said that names the user.
const MENTION: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Black)))
    .bg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
const NOTICE: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
const ERROR: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
const OWN: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
/// Other people's names get one of these, always the same for a name, so a
/// conversation is easy to follow (as IRC clients do).
const NAME_COLOURS: [AnsiColor; 5] = [
    AnsiColor::Cyan,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::BrightCyan,
    AnsiColor::BrightMagenta,
];

fn name_style(name: &str, own: bool) -> Style {
    if own {
        return OWN;
    }
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let colour = NAME_COLOURS[hash as usize % NAME_COLOURS.len()];
    Style::new()
        .bold()
        .fg_color(Some(anstyle::Color::Ansi(colour)))
}

struct Painter {
    out: String,
    colour: bool,
}

impl Painter {
    fn paint(&mut self, style: Style, text: &str) {
        if self.colour {
            self.out.push_str(&format!("{style}{text}{style:#}"));
        } else {
            self.out.push_str(text);
        }
    }

    fn plain(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// What someone said: each of its lines cleaned of control characters,
    /// the second and later ones on lines of their own indented by
    /// `indent` columns, below the first (so no line of a message can pass
    /// for a line of its own); highlighted when it is a mention.
    fn said(&mut self, text: &str, indent: usize, mention: bool) {
        for (i, part) in text.split('\n').enumerate() {
            if i > 0 {
                self.out.push('\n');
                self.out.push_str(&" ".repeat(indent));
            }
            let part = clean(part);
            if mention {
                self.paint(MENTION, &part);
            } else {
                self.plain(&part);
            }
        }
    }

    /// "a, b and c", or "b, c and 998 others" when `count` is more than the
    /// names given; at most the last [`NAMES_SHOWN`] names are shown.
    fn names(&mut self, names: &[String], count: u64) {
        let shown = &names[names.len().saturating_sub(NAMES_SHOWN)..];
        let others = count.saturating_sub(shown.len() as u64);
        for (i, name) in shown.iter().enumerate() {
            if i > 0 {
                let last = i + 1 == shown.len() && others == 0;
                self.paint(NOTICE, if last { " and " } else { ", " });
            }
            self.paint(name_style(name, false), &shown_name(name));
        }
        match (shown.is_empty(), others) {
            (_, 0) => {}
            (true, 1) => self.paint(NOTICE, "1 person"),
            (true, n) => self.paint(NOTICE, &format!("{n} people")),
            (false, 1) => self.paint(NOTICE, " and 1 other"),
            (false, n) => self.paint(NOTICE, &format!(" and {n} others")),
        }
    }
}

/// A name as shown: as it is when it follows the name rule
/// ([`Username::validate`]), which no name on a wschat server can break; a
/// name that breaks it (from an older or foreign server) is shown in
/// brackets, which no valid name contains, so that it cannot pass for
/// anything chat-cli writes itself ("alice (you)", "-- back online as").
pub fn shown_name(name: &str) -> Cow<'_, str> {
    // Only the rule matters here, not the key (a name is drawn often).
    if Username::validate(name, usize::MAX).is_ok() {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("[{}]", clean(name)))
    }
}

/// Columns a text takes on a terminal: two for a CJK character or an
/// emoji, none for a combining mark, so that the later lines of a message
/// line up under its first whatever the sender's name is made of.
pub fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// Whether `text` contains `name` as a word, ignoring case.
fn names(text: &str, name: &str) -> bool {
    let (text, name) = (text.to_lowercase(), name.to_lowercase());
    if name.is_empty() {
        return false;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(&name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Names a presence line shows before it only counts the rest.
const NAMES_SHOWN: usize = 5;

/// Replaces control characters (escape sequences, newlines, bells…) with
/// visible stand-ins, so one message stays one line and cannot restyle or
/// rewrite the terminal. C0 controls become their Unicode "control
/// pictures" (ESC shows as ␛, a newline as ␊); DEL and C1 controls become �.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_cleaning) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(stand_in).collect())
}

fn clean_keep_newlines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && needs_cleaning(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if c == '\n' { c } else { stand_in(c) })
            .collect(),
    )
}

fn needs_cleaning(c: char) -> bool {
    (c.is_control() && c != '\t') || is_bidi_control(c)
}

/// The bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069): they can make a line read backwards or move text across
/// the name and the message ("Trojan Source"), so they never reach the
/// terminal. The marks U+200E/U+200F/U+061C only nudge neutral characters
/// and stay.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn stand_in(c: char) -> char {
    match c {
        '\t' => '\t',
        '\0'..='\x1f' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        c if c.is_control() || is_bidi_control(c) => '\u{fffd}',
        c => c,
    }
}

#[cfg(test)]
mod tests;
