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
}

/// A valid username: `display` is the NFC form as typed (what others see);
/// `key` is what uniqueness is decided on ("Alice" and "alice" share one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    pub display: String,
    pub key: String,
}

impl Username {
    /// Validates `raw` after NFC normalisation: 1 to `max_chars` characters,
    /// no control, format (zero-width, bidi override…) or line/paragraph
    /// separator characters, no leading or trailing whitespace.
    pub fn parse(raw: &str, max_chars: usize) -> Result<Username, UsernameError> {
        let display: String = raw.nfc().collect();
        let chars = display.chars().count();
        if chars == 0 {
            return Err(UsernameError::Empty);
        }
        if chars > max_chars {
            return Err(UsernameError::TooLong {
                chars,
                max: max_chars,
            });
        }
        if let Some(c) = display.chars().find(|&c| is_forbidden(c)) {
            return Err(UsernameError::ForbiddenCharacter(c as u32));
        }
        if display.starts_with(char::is_whitespace) || display.ends_with(char::is_whitespace) {
            return Err(UsernameError::SurroundingWhitespace);
        }
        let key = display.to_lowercase().nfc().collect();
        Ok(Username { display, key })
    }
}

fn is_forbidden(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
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
        assert!(Username::parse("mary jane", 32).is_ok());
    }
}
