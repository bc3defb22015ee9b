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
        matches!(
            self,
            Line::Message { mention: true, .. } | Line::Action { mention: true, .. }
        )
    }

    /// What marks a pending line as such, at its end: `(sending…)`, or
    /// `(waiting for the connection)`. A row too wide for the terminal is
    /// cut before it, never through it.
    pub fn pending_mark(&self) -> Option<&'static str> {
        match self {
            Line::Pending { waiting: true, .. } => Some("(waiting for the connection)"),
            Line::Pending { waiting: false, .. } => Some("(sending…)"),
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
        )
    }

    /// The line as text, without a trailing newline. `colour` adds ANSI
    /// styles; text from the network is always stripped of control
    /// characters, so a peer cannot drive the terminal.
    pub fn render(&self, time: ClockTime, colour: bool) -> String {
        let mut out = Painter {
            out: String::new(),
            colour,
        };
        if !matches!(self, Line::Info(_) | Line::Raw(_) | Line::Divider(_)) {
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
        }
        out.out
    }
}

const TIME: Style = Style::new().dimmed();

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
mod tests {
    use super::*;

    const NOON: ClockTime = ClockTime {
        hour: 12,
        minute: 5,
    };

    fn plain(line: Line) -> String {
        line.render(NOON, false)
    }

    #[test]
    fn a_presence_summary_names_the_latest_and_counts_the_rest() {
        let presence = |joined: &[&str], joined_count, left: &[&str], left_count| {
            let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
            plain(Line::Presence {
                joined: names(joined),
                joined_count,
                left: names(left),
                left_count,
                at: 1,
            })
        };
        assert_eq!(presence(&["a", "b"], 2, &[], 0), "12:05 * a and b joined");
        assert_eq!(
            presence(&["a", "b", "c", "d", "e", "f", "g"], 1000, &["x"], 1),
            "12:05 * c, d, e, f, g and 995 others joined; x left"
        );
        assert_eq!(
            presence(&["b", "c"], 3, &["x", "y"], 2),
            "12:05 * b, c and 1 other joined; x and y left"
        );
        assert_eq!(presence(&[], 0, &[], 7), "12:05 * 7 people left");
        assert_eq!(presence(&["a"], 1, &[], 0), "12:05 * a joined");
    }

    #[test]
    fn renders_each_kind_of_line_as_plain_text() {
        assert_eq!(
            plain(Line::from_text("alice", "hello", false, None)),
            "12:05 alice: hello"
        );
        assert_eq!(
            plain(Line::from_text("alice", "hello", true, None)),
            "12:05 alice (you): hello"
        );
        assert_eq!(
            plain(Line::from_text("bob", "* bob waves at alice", false, None)),
            "12:05 * bob waves at alice"
        );
        assert_eq!(
            plain(Line::from_text("bob", "* bob waves", true, None)),
            "12:05 * bob (you) waves"
        );
        assert_eq!(
            plain(Line::Joined {
                name: "bob".into(),
                location: "10.0.0.7".into(),
                own: false,
                at: None,
            }),
            "12:05 * bob joined from 10.0.0.7"
        );
        assert_eq!(
            plain(Line::Joined {
                name: "bob".into(),
                location: "unknown".into(),
                own: false,
                at: Some(1),
            }),
            "12:05 * bob joined"
        );
        for (reason, text) in [
            (LeaveReason::Disconnected, "12:05 * bob left"),
            (
                LeaveReason::Evicted,
                "12:05 * bob was disconnected (no answer)",
            ),
            (LeaveReason::Logout, "12:05 * bob logged out"),
            (LeaveReason::Unknown, "12:05 * bob left"),
        ] {
            let left = Line::Left {
                name: "bob".into(),
                reason,
                at: 7,
            };
            assert_eq!(left.timestamp(), Some(7));
            assert!(left.is_chat());
            assert_eq!(plain(left), text);
        }
        assert_eq!(plain(Line::Status("back".into())), "12:05 -- back");
        assert_eq!(plain(Line::Error("oops".into())), "12:05 !! oops");
        assert_eq!(plain(Line::Info("a\nb".into())), "a\nb");
        assert_eq!(plain(Line::Raw("{}".into())), "{}");
    }

    #[test]
    fn only_a_star_and_the_senders_own_name_make_an_action() {
        assert_eq!(
            plain(Line::from_text("bob", "* alice waves", false, None)),
            "12:05 bob: * alice waves"
        );
        assert_eq!(
            plain(Line::from_text("bob", "* bob", false, None)),
            "12:05 bob: * bob"
        );
        assert_eq!(
            plain(Line::from_text("bob", "* bobby waves", false, None)),
            "12:05 bob: * bobby waves"
        );
    }

    #[test]
    fn control_characters_from_the_network_cannot_reach_the_terminal() {
        let line = Line::from_text("ev\x1bil", "red \x1b[31mtext\x07\rnext\u{9b}", false, None);
        assert_eq!(plain(line), "12:05 [ev␛il]: red ␛[31mtext␇␍next\u{fffd}");
        assert_eq!(plain(Line::Info("x\x1by\nz".into())), "x␛y\nz");
        assert_eq!(clean("tab\tok"), "tab\tok");
    }

    #[test]
    fn a_name_no_wschat_server_accepts_cannot_pass_for_a_notice_or_our_own() {
        assert_eq!(
            plain(Line::from_text(
                "alice (you)",
                "I will pay for lunch",
                false,
                None
            )),
            "12:05 [alice (you)]: I will pay for lunch"
        );
        assert_eq!(
            plain(Line::from_text("-- back online as", "alice", false, None)),
            "12:05 [-- back online as]: alice"
        );
        assert_eq!(
            plain(Line::from_text(
                "alice logged",
                "* alice logged out",
                false,
                None
            )),
            "12:05 * [alice logged] out"
        );
        assert_eq!(
            plain(Line::Left {
                name: "ev\x1bil".into(),
                reason: LeaveReason::Disconnected,
                at: 1
            }),
            "12:05 * [ev␛il] left"
        );
        assert_eq!(
            plain(Line::from_text("Zo\u{eb}", "hi", false, None)),
            "12:05 Zo\u{eb}: hi"
        );
    }

    #[test]
    fn a_mention_is_highlighted_and_only_in_colour() {
        let line = Line::from_text("bob", "hi alice", false, None).mentioning("Alice");
        assert!(line.is_mention());
        assert_eq!(plain(line.clone()), "12:05 bob: hi alice");
        assert!(
            line.render(NOON, true)
                .contains("\x1b[1m\x1b[30m\x1b[43mhi alice\x1b[0m"),
            "{:?}",
            line.render(NOON, true)
        );
        let own = Line::from_text("alice", "hi alice", true, None).mentioning("alice");
        assert!(!own.is_mention());
        let action = Line::from_text("bob", "* bob hugs alice", false, None).mentioning("alice");
        assert!(action.is_mention());
        assert!(
            !Line::from_text("bob", "malice", false, None)
                .mentioning("alice")
                .is_mention()
        );
    }

    #[test]
    fn the_lines_of_a_message_are_indented_under_its_first() {
        assert_eq!(
            plain(Line::from_text("bob", "one\ntwo\n\x1bthree", false, None)),
            "12:05 bob: one\n           two\n           ␛three"
        );
        assert_eq!(
            plain(Line::from_text("alice", "a\nb", true, None)),
            "12:05 alice (you): a\n                   b"
        );
        assert_eq!(
            plain(Line::from_text("bob", "* bob waves\nhi", false, None)),
            "12:05 * bob waves\n            hi"
        );
    }

    #[test]
    fn a_pending_message_is_one_dim_row_that_says_so() {
        let pending = |text: &str, waiting| Line::Pending {
            from: "alice".into(),
            text: text.into(),
            waiting,
        };
        assert_eq!(
            plain(pending("hi", false)),
            "12:05 alice (you): hi (sending…)"
        );
        assert_eq!(
            plain(pending("* alice waves", true)),
            "12:05 * alice (you) waves (waiting for the connection)"
        );
        assert_eq!(
            plain(pending("one\ntwo\x1b", false)),
            "12:05 alice (you): one … (sending…)"
        );
        assert_eq!(
            pending("hi", false).render(NOON, true),
            "\x1b[2m12:05\x1b[0m \x1b[2malice (you): hi (sending…)\x1b[0m"
        );
        assert!(!pending("hi", false).is_chat());
        assert_eq!(pending("hi", false).timestamp(), None);
    }

    #[test]
    fn later_lines_line_up_under_wide_and_combined_names() {
        // Two columns a character: the text starts at column 12, not 10.
        assert_eq!(
            plain(Line::from_text("李雷", "one\ntwo", false, None)),
            "12:05 李雷: one\n            two"
        );
        // An emoji family is one glyph two columns wide, whatever its code
        // points; a combining mark takes no column of its own.
        assert_eq!(
            plain(Line::from_text(
                "👨\u{200d}👩\u{200d}👧",
                "a\nb",
                true,
                None
            )),
            "12:05 👨\u{200d}👩\u{200d}👧 (you): a\n                b"
        );
        assert_eq!(
            plain(Line::from_text(
                "Zoe\u{308}",
                "* Zoe\u{308} waves\nhi",
                false,
                None
            )),
            "12:05 * Zoe\u{308} waves\n            hi"
        );
    }

    #[test]
    fn bidirectional_overrides_and_isolates_are_neutralised() {
        for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            let line = Line::from_text("bob", &format!("pay {c}01$ now"), false, None);
            assert_eq!(
                plain(line),
                "12:05 bob: pay \u{fffd}01$ now",
                "U+{:04X}",
                c as u32
            );
        }
        // The marks only nudge neutral characters: kept, as in any text.
        assert_eq!(clean("a\u{200f}b"), "a\u{200f}b");
    }

    #[test]
    fn colour_styles_the_parts_and_plain_has_no_escapes() {
        let line = Line::from_text("alice", "hi", true, None);
        let coloured = line.render(NOON, true);
        assert_eq!(
            coloured,
            "\x1b[2m12:05\x1b[0m \x1b[1m\x1b[32malice\x1b[0m\x1b[2m (you)\x1b[0m: hi"
        );
        assert!(!line.render(NOON, false).contains('\x1b'));
        // Another name, another (but stable) colour.
        let bob = Line::from_text("bob", "hi", false, None).render(NOON, true);
        assert_eq!(
            bob,
            Line::from_text("bob", "yo", false, None)
                .render(NOON, true)
                .replace("yo", "hi")
        );
        assert!(!bob.contains("\x1b[32m"));
    }

    #[test]
    fn chat_lines_go_to_stdout_and_the_rest_to_stderr() {
        assert!(Line::from_text("a", "b", false, None).is_chat());
        assert!(Line::Raw("{}".into()).is_chat());
        assert!(!Line::Status("x".into()).is_chat());
        assert!(!Line::Error("x".into()).is_chat());
    }
}
