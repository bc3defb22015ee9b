//! Names that look exactly like another's (issue 21, point 1): each name
//! the issue lists is refused or is one name with the one it imitates,
//! while ordinary names in many scripts stay valid.

mod common;

use common::*;
use wschat::username::{Username, UsernameError, key};

const MAX: usize = 32;

fn refused(name: &str) -> UsernameError {
    match Username::parse(name, MAX) {
        Ok(parsed) => panic!("{name:?} was accepted as {parsed:?}"),
        Err(e) => e,
    }
}

#[test]
fn alice_followed_by_a_character_that_shows_as_nothing_is_refused() {
    for hidden in [
        '\u{034f}',  // combining grapheme joiner
        '\u{fe00}',  // variation selector 1
        '\u{e0100}', // variation selector 17
        '\u{180b}',  // Mongolian free variation selector
        '\u{17b4}',  // Khmer inherent vowel
        '\u{3164}',  // Hangul filler
        '\u{115f}',  // Hangul choseong filler
        '\u{ffa0}',  // halfwidth Hangul filler
    ] {
        let name = format!("alice{hidden}");
        assert_eq!(
            refused(&name),
            UsernameError::Invisible(hidden as u32),
            "{name:?}"
        );
        let description = refused(&name).to_string();
        assert!(
            description.contains(&format!("U+{:04X}", hidden as u32))
                && description.contains("shows as nothing"),
            "{description}"
        );
    }
}

#[test]
fn blank_looking_names_are_refused() {
    assert_eq!(
        refused("alice\u{2800}logged"),
        UsernameError::LooksLikeSpace(0x2800)
    );
    assert!(
        refused("alice\u{2800}logged")
            .to_string()
            .contains("looks like a space")
    );
    assert_eq!(refused("\u{3164}"), UsernameError::Invisible(0x3164));
    assert_eq!(
        refused("\u{3164}\u{3164}\u{3164}"),
        UsernameError::Invisible(0x3164)
    );
    assert_eq!(refused("\u{2800}"), UsernameError::LooksLikeSpace(0x2800));
    assert_eq!(
        refused("\u{2800}\u{2800}\u{2800}"),
        UsernameError::LooksLikeSpace(0x2800)
    );
}

#[test]
fn a_letter_under_31_stacked_marks_is_refused() {
    let marks: String = (0x300..0x31f).filter_map(char::from_u32).collect();
    assert_eq!(marks.chars().count(), 31);
    let name = format!("z{marks}");
    assert_eq!(
        refused(&name),
        UsernameError::TooManyMarks {
            max: wschat::username::MAX_MARKS_PER_LETTER
        }
    );
    assert_eq!(
        refused(&name).to_string(),
        "the name has more than 4 combining marks on one letter"
    );
}

#[test]
fn names_the_same_regardless_of_case_normalisation_and_look_share_a_key() {
    for (a, b) in [
        ("STRASSE", "stra\u{df}e"), // ß folds to ss
        (
            "\u{39f}\u{394}\u{39f}\u{3a3}",
            "\u{3bf}\u{3b4}\u{3bf}\u{3c3}",
        ), // ΟΔΟΣ, οδοσ
        (
            "\u{3bf}\u{3b4}\u{3bf}\u{3c2}",
            "\u{3bf}\u{3b4}\u{3bf}\u{3c3}",
        ), // final ς
        ("\u{17f}", "s"),           // long s
        ("\u{b5}", "\u{3bc}"),      // micro sign, mu
        ("\u{ff42}\u{ff4f}\u{ff42}", "bob"), // fullwidth
        ("\u{fb01}le", "file"),     // ligature fi
        ("\u{430}lice", "alice"),   // Cyrillic а
    ] {
        // The key of a valid name is its Username's key.
        for side in [a, b] {
            if let Ok(name) = Username::parse(side, MAX) {
                assert_eq!(name.key, key(side), "{side:?}");
            }
        }
        assert_eq!(key(a), key(b), "{a:?} and {b:?}");
    }
}

#[test]
fn look_alikes_across_scripts_are_refused_or_one_name() {
    // Cyrillic а among Latin letters: mixed scripts, refused outright.
    assert_eq!(
        refused("\u{430}lice"),
        UsernameError::MixedScripts {
            first: "Cyrillic",
            then: "Latin"
        }
    );
    // All Cyrillic, spelling a Latin word: valid, and one name with it.
    let cyrillic = Username::parse("\u{441}\u{43e}\u{441}\u{43e}", MAX).unwrap();
    let latin = Username::parse("coco", MAX).unwrap();
    assert_eq!(cyrillic.key, latin.key);
}

#[test]
fn ordinary_names_in_many_scripts_and_emoji_still_pass() {
    for name in [
        "alice",
        "Bob_2",
        "\u{65e5}\u{672c}\u{8a9e}",                          // 日本語
        "\u{395}\u{3bb}\u{3ad}\u{3bd}\u{3b7}",               // Ελένη
        "\u{414}\u{43c}\u{438}\u{442}\u{440}\u{438}\u{439}", // Дмитрий
        "\u{645}\u{62d}\u{645}\u{62f}",                      // محمد
        "\u{1f469}\u{200d}\u{1f4bb}",                        // 👩‍💻
        "\u{2764}\u{fe0f}",                                  // ❤️
        "\u{1f3f3}\u{fe0f}\u{200d}\u{1f308}",                // 🏳️‍🌈
        "Nguy\u{1ec5}n",                                     // Nguyễn
        "\u{928}\u{92e}\u{938}\u{94d}\u{924}\u{947}",        // नमस्ते
        "\u{5e9}\u{5c1}\u{5b8}\u{5dc}\u{5d5}\u{5b9}\u{5dd}", // שָׁלוֹם
        "\u{e2a}\u{e21}\u{e0a}\u{e32}\u{e22}",               // สมชาย
        "\u{ae40}\u{bbfc}\u{c900}",                          // 김민준
        "Tanaka\u{7530}\u{4e2d}",                            // Latin with Han
        "o'brien",
    ] {
        assert!(
            Username::parse(name, MAX).is_ok(),
            "{name:?}: {:?}",
            Username::parse(name, MAX)
        );
    }
}

#[test]
fn the_server_holds_a_look_alike_as_the_name_it_imitates() {
    let mut h = Harness::new(without_message_limit());
    let a = h.open();
    let b = h.open();
    h.login(a, "alice");
    assert_eq!(h.drain(), login_outcome(&[a, b], a, "alice"));
    // Another case, a digit for a letter, a word spelt in Cyrillic (аӏісе).
    for look_alike in ["ALICE", "a1ice", "\u{430}\u{4cf}\u{456}\u{441}\u{435}"] {
        h.login(b, look_alike);
        assert_eq!(
            h.drain(),
            [error(
                b,
                "loginTaken",
                r#"the name "alice" is taken; give its secret to reclaim it, or pick another"#
            )],
            "{look_alike:?}"
        );
    }
    h.login(b, "\u{430}lice");
    assert_eq!(
        h.drain(),
        [error(
            b,
            "invalidUsername",
            "the name mixes Cyrillic and Latin letters; write it in one script (Latin goes \
             with one other, but not with Cyrillic or Greek)"
        )]
    );
    h.login(b, "alice\u{34f}");
    assert_eq!(
        h.drain(),
        [error(
            b,
            "invalidUsername",
            "the name contains U+034F, which shows as nothing, so the name would look like \
             another; leave it out"
        )]
    );
    // The owner's secret opens the name under another spelling.
    let secret = h.secret_of(a);
    h.login_with_secret(b, "ALICE", &secret);
    assert_eq!(h.drain(), login_outcome(&[a, b], b, "alice"));
}
