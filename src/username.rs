//! Usernames: validation and the case-insensitive key that makes two
//! spellings the same name.

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

/// Why a username was refused; the text is sent to the client as the
/// `description` of an `invalidUsername` error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name has {chars} characters; at most {max} are allowed")]
    TooLong { chars: usize, max: usize },
    #[error("the name starts or ends with whitespace")]
    SurroundingWhitespace,
    #[error("the name contains the invisible or control character U+{0:04X}")]
    ForbiddenCharacter(u32),
    #[error("the name contains a space; join words with _, - or . instead")]
    Space,
    #[error(
        "the name contains {0:?} (U+{code:04X}); a name is made of letters, digits, emoji \
         and _ - . '",
        code = *.0 as u32
    )]
    NotAllowed(char),
    #[error("the name starts with {0:?}; it must start with a letter, a digit or an emoji")]
    BadStart(char),
    #[error("the zero-width joiner U+200D is allowed only between two emoji")]
    StrayJoiner,
}

/// A valid username: `display` is the NFC form as typed (what others see);
/// `key` is what uniqueness is decided on ("Alice" and "alice" share one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    pub display: String,
    pub key: String,
}

/// The zero-width joiner, which glues emoji into one (👨‍👩‍👧).
const ZWJ: char = '\u{200d}';
/// Emoji presentation selector: ❤️ is U+2764 U+FE0F.
const VS16: char = '\u{fe0f}';

impl Username {
    /// Validates `raw` after NFC normalisation: 1 to `max_chars` characters
    /// that are letters, combining marks, digits, emoji (symbols, with their
    /// skin-tone modifiers, and the zero-width joiner between two of them)
    /// or one of `_ - . '`, starting with a letter, a digit or an emoji.
    ///
    /// So no name has spaces, brackets, colons, asterisks or a leading
    /// dash: none can pass for what a client adds around names, such as
    /// "alice (you): …", "* alice waves", "-- back online" or another
    /// user's name followed by words ("alice logged" + "out").
    pub fn parse(raw: &str, max_chars: usize) -> Result<Username, UsernameError> {
        let display: String = raw.nfc().collect();
        let chars: Vec<char> = display.chars().collect();
        let Some(&first) = chars.first() else {
            return Err(UsernameError::Empty);
        };
        if chars.len() > max_chars {
            return Err(UsernameError::TooLong {
                chars: chars.len(),
                max: max_chars,
            });
        }
        if let Some(&c) = chars.iter().find(|&&c| c != ZWJ && is_invisible(c)) {
            return Err(UsernameError::ForbiddenCharacter(c as u32));
        }
        if first.is_whitespace() || chars.last().is_some_and(|c| c.is_whitespace()) {
            return Err(UsernameError::SurroundingWhitespace);
        }
        if first != ZWJ && !(first.is_alphanumeric() || is_emoji(first)) {
            return Err(UsernameError::BadStart(first));
        }
        for (at, &c) in chars.iter().enumerate() {
            match c {
                ZWJ if joins_emoji(&chars, at) => {}
                ZWJ => return Err(UsernameError::StrayJoiner),
                ' ' => return Err(UsernameError::Space),
                c if !is_allowed(c) => return Err(UsernameError::NotAllowed(c)),
                _ => {}
            }
        }
        let key = key(&display);
        Ok(Username { display, key })
    }
}

/// The key a name is unique by: lower case, NFC. Also for names that are
/// not valid (a client keys what an older server sent by it).
pub fn key(name: &str) -> String {
    name.nfc()
        .collect::<String>()
        .to_lowercase()
        .nfc()
        .collect()
}

/// Control, format (zero-width, bidi override…) and line or paragraph
/// separator characters.
fn is_invisible(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

fn is_allowed(c: char) -> bool {
    use GeneralCategory::*;
    matches!(c, '_' | '-' | '.' | '\'')
        || is_emoji(c)
        || is_emoji_modifier(c)
        || matches!(
            get_general_category(c),
            UppercaseLetter
                | LowercaseLetter
                | TitlecaseLetter
                | ModifierLetter
                | OtherLetter
                | NonspacingMark
                | SpacingMark
                | EnclosingMark
                | DecimalNumber
                | LetterNumber
                | OtherNumber
        )
}

/// A pictographic symbol: emoji and their kin (general category So).
fn is_emoji(c: char) -> bool {
    get_general_category(c) == GeneralCategory::OtherSymbol
}

/// The skin tones, 🏻 to 🏿.
fn is_emoji_modifier(c: char) -> bool {
    ('\u{1f3fb}'..='\u{1f3ff}').contains(&c)
}

/// Whether the joiner at `at` stands between two emoji: after an emoji
/// (perhaps with its presentation selector or skin tone) and before one.
fn joins_emoji(chars: &[char], at: usize) -> bool {
    let before = chars[..at]
        .iter()
        .rev()
        .find(|&&c| c != VS16 && !is_emoji_modifier(c));
    let after = chars.get(at + 1);
    before.is_some_and(|&c| is_emoji(c)) && after.is_some_and(|&c| is_emoji(c))
}

#[cfg(test)]
mod tests {
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
}
