//! The name rule, one kind of name at a time. The names issue 21 lists
//! are in tests/names.rs; these pin the edges of each rule.

use super::*;

#[test]
fn nfd_and_nfc_spellings_share_a_display_and_key() {
    let nfc = Username::parse("Jos\u{e9}", 32).unwrap();
    let nfd = Username::parse("Jose\u{301}", 32).unwrap();
    assert_eq!(nfc, nfd);
    assert_eq!(nfc.display, "Jos\u{e9}");
    assert_eq!(nfc.key, "jos\u{e9}");
}

#[test]
fn case_variants_share_a_key_but_keep_their_display() {
    let a = Username::parse("ALICE", 32).unwrap();
    assert_eq!((a.display.as_str(), a.key.as_str()), ("ALICE", "alice"));
}

#[test]
fn refuses_each_kind_of_bad_name() {
    use UsernameError::*;
    assert_eq!(Username::parse("", 32), Err(Empty));
    assert_eq!(
        Username::parse(&"é".repeat(33), 32),
        Err(TooLong { chars: 33, max: 32 })
    );
    // 32 characters counted after NFC, not bytes.
    assert!(Username::parse(&"e\u{301}".repeat(32), 32).is_ok());
    assert_eq!(Username::parse(" bob", 32), Err(SurroundingWhitespace));
    assert_eq!(
        Username::parse("bob\u{3000}", 32),
        Err(SurroundingWhitespace)
    );
    assert_eq!(
        Username::parse("bo\u{200b}b", 32),
        Err(ForbiddenCharacter(0x200b))
    );
    assert_eq!(
        Username::parse("\u{202e}bob", 32),
        Err(ForbiddenCharacter(0x202e))
    );
    assert_eq!(Username::parse("bo\nb", 32), Err(ForbiddenCharacter(0x0a)));
    assert_eq!(
        Username::parse("bo\u{2028}b", 32),
        Err(ForbiddenCharacter(0x2028))
    );
    assert_eq!(Username::parse("mary jane", 32), Err(Space));
}

#[test]
fn no_name_passes_for_what_a_client_adds_around_names() {
    use UsernameError::*;
    assert_eq!(Username::parse("alice (you)", 32), Err(Space));
    assert_eq!(Username::parse("alice(you)", 32), Err(NotAllowed('(')));
    assert_eq!(Username::parse("--", 32), Err(BadStart('-')));
    assert_eq!(Username::parse("-bot-", 32), Err(BadStart('-')));
    assert_eq!(Username::parse("*bob", 32), Err(BadStart('*')));
    assert_eq!(Username::parse("bob:", 32), Err(NotAllowed(':')));
    assert_eq!(Username::parse("b[o]b", 32), Err(NotAllowed('[')));
    assert_eq!(Username::parse("@bob", 32), Err(BadStart('@')));
    assert_eq!(Username::parse("bob\u{a0}x", 32), Err(NotAllowed('\u{a0}')));
    assert_eq!(Username::parse("'bob", 32), Err(BadStart('\'')));
    for name in [
        "o'brien",
        "jean-luc",
        "j.doe",
        "snake_case",
        "7of9",
        "Zoë",
        "李小龍",
        "नमस्ते",
    ] {
        assert!(Username::parse(name, 32).is_ok(), "{name}");
    }
}

#[test]
fn the_zero_width_joiner_is_allowed_only_inside_an_emoji_sequence() {
    use UsernameError::*;
    for name in [
        "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}", // family 👨‍👩‍👧
        "\u{1f3f3}\u{fe0f}\u{200d}\u{1f308}",          // rainbow flag 🏳️‍🌈
        "\u{1f469}\u{1f3fd}\u{200d}\u{1f4bb}",         // woman technologist, skin tone
        "\u{2764}\u{fe0f}\u{200d}\u{1f525}",           // heart on fire ❤️‍🔥
        "ana\u{1f468}\u{200d}\u{1f373}",               // ana👨‍🍳
        "\u{1f44d}",                                   // 👍
    ] {
        assert!(Username::parse(name, 32).is_ok(), "{name}");
    }
    assert_eq!(Username::parse("bo\u{200d}b", 32), Err(StrayJoiner));
    assert_eq!(Username::parse("\u{1f468}\u{200d}b", 32), Err(StrayJoiner));
    assert_eq!(Username::parse("b\u{200d}\u{1f468}", 32), Err(StrayJoiner));
    assert_eq!(Username::parse("\u{1f468}\u{200d}", 32), Err(StrayJoiner));
    assert_eq!(Username::parse("\u{200d}\u{1f468}", 32), Err(StrayJoiner));
    assert_eq!(
        Username::parse("\u{1f468}\u{200d}\u{200d}\u{1f469}", 32),
        Err(StrayJoiner)
    );
    // Other zero-width characters stay invisible characters.
    assert_eq!(
        Username::parse("\u{1f468}\u{200c}\u{1f469}", 32),
        Err(ForbiddenCharacter(0x200c))
    );
}

#[test]
fn a_variation_selector_is_allowed_only_where_it_asks_for_an_emoji() {
    use UsernameError::*;
    for name in [
        "\u{2764}\u{fe0f}",
        "1\u{fe0f}\u{20e3}",
        "ana\u{263a}\u{fe0f}",
    ] {
        assert!(Username::parse(name, 32).is_ok(), "{name:?}");
    }
    assert_eq!(Username::parse("alice\u{fe0f}", 32), Err(StraySelector));
    assert_eq!(Username::parse("1\u{fe0f}", 32), Err(StraySelector));
    // Text presentation (VS15) and the other selectors show as nothing.
    assert_eq!(
        Username::parse("\u{2764}\u{fe0e}", 32),
        Err(Invisible(0xfe0e))
    );
}

#[test]
fn marks_stack_up_to_four_on_a_letter_never_twice_the_same() {
    use UsernameError::*;
    // Vietnamese: two marks on one letter, precomposed or not.
    assert!(Username::parse("Nguy\u{1ec5}n", 32).is_ok());
    assert!(Username::parse("e\u{302}\u{303}", 32).is_ok());
    // Thai: a vowel and a tone mark.
    assert!(Username::parse("\u{e17}\u{e35}\u{e48}", 32).is_ok());
    let four = "a\u{300}\u{301}\u{302}\u{303}";
    assert!(Username::parse(four, 32).is_ok());
    assert_eq!(
        Username::parse(&format!("{four}\u{304}"), 32),
        Err(TooManyMarks { max: 4 })
    );
    // Counted decomposed: ễ holds two of them already.
    assert_eq!(
        Username::parse("\u{1ec5}\u{300}\u{301}\u{304}", 32),
        Err(TooManyMarks { max: 4 })
    );
    assert_eq!(
        Username::parse("e\u{301}\u{301}", 32),
        Err(RepeatedMark(0x301))
    );
    // A mark needs a letter under it.
    assert_eq!(Username::parse("\u{93e}bc", 32), Err(BadStart('\u{93e}')));
}

#[test]
fn scripts_mix_only_as_moderately_restrictive_allows() {
    use UsernameError::*;
    for name in [
        "Tanaka\u{7530}\u{4e2d}",                   // Latin with Han
        "Kim\u{ae40}",                              // Latin with Hangul
        "Ali_\u{639}\u{644}\u{64a}",                // Latin with Arabic
        "\u{3072}\u{3089}\u{30ab}\u{30bf}\u{6f22}", // hiragana, katakana, Han
        "x\u{1f600}7",                              // emoji and digits go with anything
    ] {
        assert!(Username::parse(name, 32).is_ok(), "{name:?}");
    }
    assert_eq!(
        Username::parse("Sasha_\u{421}\u{430}\u{448}\u{430}", 32),
        Err(MixedScripts {
            first: "Latin",
            then: "Cyrillic"
        })
    );
    assert_eq!(
        Username::parse("a\u{3b1}", 32),
        Err(MixedScripts {
            first: "Latin",
            then: "Greek"
        })
    );
    // Two scripts besides Latin.
    assert_eq!(
        Username::parse("a\u{639}\u{915}", 32),
        Err(MixedScripts {
            first: "Latin",
            then: "Devanagari"
        })
    );
}

#[test]
fn the_key_is_the_skeleton_of_the_case_folded_name() {
    assert_eq!(key("STRASSE"), key("stra\u{df}e"));
    assert_eq!(fold("STRASSE"), "strasse");
    assert_eq!(fold("\u{fb01}le"), "file");
    // Look-alikes across scripts and within one.
    assert_eq!(key("\u{430}lice"), key("alice"));
    assert_eq!(key("a1ice"), key("alice"));
    // Folded first: "I" and "i" are one letter, "i" and "l" are not.
    assert_ne!(key("aIice"), key("alice"));
    assert_eq!(key("ALICE"), key("alice"));
    // The emoji presentation selector and the joiner change no key.
    assert_eq!(key("\u{2764}\u{fe0f}"), key("\u{2764}"));
}

#[test]
fn a_stored_name_is_rekeyed_from_its_display() {
    // Saved as "stra\u{df}e" by the old rule: now one name with STRASSE.
    assert_eq!(legacy_key("Stra\u{df}e"), "stra\u{df}e");
    assert_eq!(key_of_stored("Stra\u{df}e"), Ok(key("STRASSE")));
    // Plain names keep the key they had.
    assert_eq!(key_of_stored("Alice"), Ok(legacy_key("Alice")));
    // Longer than today's limit: still its owner's.
    assert!(key_of_stored(&"a".repeat(100)).is_ok());
    // One the new rule refuses: no one logs in as it any more.
    assert_eq!(
        key_of_stored("alice\u{34f}"),
        Err(UsernameError::Invisible(0x34f))
    );
}

#[test]
fn validate_says_what_parse_says() {
    for raw in [
        "alice",
        "Zoë",
        "李小龍",
        "👨\u{200d}👩\u{200d}👧",
        "",
        "alice logged",
        "alice\u{034f}",
        "\u{3164}",
        "аlice_bob",
        "-dash",
    ] {
        assert_eq!(
            Username::validate(raw, 32),
            Username::parse(raw, 32).map(drop),
            "{raw:?}"
        );
    }
}
