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

#[test]
fn a_line_of_another_room_carries_its_label_in_front() {
    let line = Line::from_text("bob", "hi\nthere", false, Some(1)).in_room("#ops");
    assert_eq!(
        plain(line.clone()),
        "[#ops] 12:05 bob: hi\n                  there"
    );
    assert_eq!(line.timestamp(), Some(1));
    assert!(line.is_chat());
    let dm = Line::from_text("bob", "lunch, alice?", false, None)
        .mentioning("alice")
        .in_room("bob → you");
    assert!(dm.is_mention());
    assert_eq!(plain(dm), "[bob → you] 12:05 bob: lunch, alice?");
    let evil = Line::Status("x".into()).in_room("#a\x1b]");
    assert_eq!(plain(evil.clone()), "[#a␛]] 12:05 -- x");
    assert!(!evil.is_chat());
    let notice = Line::RoomNotice {
        text: "bob joined #dev".into(),
        at: Some(2),
    };
    assert_eq!(plain(notice.clone()), "12:05 * bob joined #dev");
    assert!(notice.is_chat());
}

#[test]
fn a_pending_line_of_another_room_keeps_its_mark() {
    let pending = Line::Pending {
        from: "alice".into(),
        text: "psst".into(),
        waiting: false,
    }
    .in_room("you → bob");
    assert_eq!(pending.pending_mark(), Some("(sending…)"));
    assert_eq!(
        plain(pending),
        "[you → bob] 12:05 alice (you): psst (sending…)"
    );
}
