//! Usernames: the name rule, and the key that makes two names one.
//!
//! A name is made of letters, digits, emoji and `_ - . '`, so that none can
//! pass for what a client writes around names; it shows nothing that
//! renders as nothing or as a blank, stacks no more than a few marks on one
//! letter and mixes no scripts that spell look-alikes of other names
//! (issue 21); and names that look the same share a key ([`key`]).

mod characters;
mod key;
mod marks;
mod scripts;

use unicode_normalization::UnicodeNormalization;

use characters::{
    VS16, ZWJ, is_allowed, is_default_ignorable, is_emoji, is_invisible, is_mark, joins_emoji,
    looks_like_space, presents_emoji,
};
pub use key::{fold, key, key_of_stored, legacy_key};
pub use marks::MAX_MARKS_PER_LETTER;

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
    #[error(
        "the name contains U+{0:04X}, which shows as nothing, so the name would look like \
         another; leave it out"
    )]
    Invisible(u32),
    #[error("the emoji presentation selector U+FE0F is allowed only right after an emoji")]
    StraySelector,
    #[error(
        "the name contains U+{0:04X}, which looks like a space; join words with _, - or . \
         instead"
    )]
    LooksLikeSpace(u32),
    #[error("the name has more than {max} combining marks on one letter")]
    TooManyMarks { max: usize },
    #[error("the name has the combining mark U+{0:04X} twice in a row on one letter")]
    RepeatedMark(u32),
    #[error(
        "the name mixes {first} and {then} letters; write it in one script (Latin goes with \
         one other, but not with Cyrillic or Greek)"
    )]
    MixedScripts {
        first: &'static str,
        then: &'static str,
    },
}

/// A valid username: `display` is the NFC form as typed (what others see);
/// `key` is what uniqueness is decided on ("Alice" and "alice" share one,
/// and so do "coco" and "сосо" spelt in Cyrillic; see [`key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    pub display: String,
    pub key: String,
}

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
    ///
    /// And none looks like another (issue 21): no character that shows as
    /// nothing (Default_Ignorable_Code_Point, such as U+034F or the Hangul
    /// fillers; U+FE0F only right after an emoji, U+200D only between two)
    /// or as a blank (U+2800), no more than [`MAX_MARKS_PER_LETTER`]
    /// combining marks on one letter, and no mix of scripts beyond UTS #39's
    /// Moderately Restrictive level (no Latin with Cyrillic or Greek).
    pub fn parse(raw: &str, max_chars: usize) -> Result<Username, UsernameError> {
        let display = Username::checked(raw, max_chars)?;
        let key = key(&display);
        Ok(Username { display, key })
    }

    /// Whether `raw` follows the rule of [`parse`](Self::parse), without
    /// computing its key (case folding and the confusable skeleton), which
    /// only uniqueness needs: for a client showing names it did not choose.
    pub fn validate(raw: &str, max_chars: usize) -> Result<(), UsernameError> {
        Username::checked(raw, max_chars).map(drop)
    }

    /// `raw` in NFC if it follows the rule.
    fn checked(raw: &str, max_chars: usize) -> Result<String, UsernameError> {
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
        if first != ZWJ && (is_mark(first) || !(first.is_alphanumeric() || is_emoji(first))) {
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
        for (at, &c) in chars.iter().enumerate() {
            match c {
                ZWJ => {} // between two emoji, as checked above
                VS16 if presents_emoji(&chars, at) => {}
                VS16 => return Err(UsernameError::StraySelector),
                c if is_default_ignorable(c) => return Err(UsernameError::Invisible(c as u32)),
                c if looks_like_space(c) => return Err(UsernameError::LooksLikeSpace(c as u32)),
                _ => {}
            }
        }
        marks::check(&display)?;
        scripts::check(&display)?;
        Ok(display)
    }
}

#[cfg(test)]
mod tests;
