//! What each character of a name may be: the classes the name rule is
//! made of, all from Unicode's data (general categories, UTS #39's
//! identifier types and confusables), none hand-listed.

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_security::GeneralSecurityProfile;
use unicode_security::general_security_profile::IdentifierType;

/// The zero-width joiner, which glues emoji into one (👨‍👩‍👧).
pub(super) const ZWJ: char = '\u{200d}';
/// Emoji presentation selector: ❤️ is U+2764 U+FE0F.
pub(super) const VS16: char = '\u{fe0f}';
/// Makes a digit a keycap emoji: 1️⃣ is U+0031 U+FE0F U+20E3.
const KEYCAP: char = '\u{20e3}';

/// Control, format (zero-width, bidi override…) and line or paragraph
/// separator characters.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Default_Ignorable_Code_Point, as UTS #39's Identifier_Type gives it:
/// characters that render as nothing (U+034F, variation selectors, Hangul
/// fillers, Mongolian free variation selectors…). The few that UTS #39
/// types Deprecated instead (U+206A–206F, U+E0001) are format characters,
/// refused by [`is_invisible`].
pub(super) fn is_default_ignorable(c: char) -> bool {
    c.identifier_type() == Some(IdentifierType::Default_Ignorable)
}

/// Whether `c` looks like a space, or holds one: its UTS #39 prototype has
/// white space in it (U+2800 BRAILLE PATTERN BLANK, the spaces, and the two
/// Arabic ligatures that spell several words).
pub(super) fn looks_like_space(c: char) -> bool {
    let mut buf = [0; 4];
    unicode_security::skeleton(c.encode_utf8(&mut buf)).any(char::is_whitespace)
}

pub(super) fn is_allowed(c: char) -> bool {
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

/// A combining mark of any kind (nonspacing, spacing or enclosing).
pub(super) fn is_mark(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::EnclosingMark
    )
}

/// A pictographic symbol: emoji and their kin (general category So).
pub(super) fn is_emoji(c: char) -> bool {
    get_general_category(c) == GeneralCategory::OtherSymbol
}

/// The skin tones, 🏻 to 🏿.
fn is_emoji_modifier(c: char) -> bool {
    ('\u{1f3fb}'..='\u{1f3ff}').contains(&c)
}

/// Whether the joiner at `at` stands between two emoji: after an emoji
/// (perhaps with its presentation selector or skin tone) and before one.
pub(super) fn joins_emoji(chars: &[char], at: usize) -> bool {
    let before = chars[..at]
        .iter()
        .rev()
        .find(|&&c| c != VS16 && !is_emoji_modifier(c));
    let after = chars.get(at + 1);
    before.is_some_and(|&c| is_emoji(c)) && after.is_some_and(|&c| is_emoji(c))
}

/// Whether the presentation selector at `at` asks for an emoji's picture:
/// right after an emoji, or between a digit and the keycap mark (1️⃣).
/// Anywhere else it shows as nothing.
pub(super) fn presents_emoji(chars: &[char], at: usize) -> bool {
    let before = at.checked_sub(1).map(|b| chars[b]);
    before.is_some_and(is_emoji)
        || (before.is_some_and(|c| c.is_ascii_digit()) && chars.get(at + 1) == Some(&KEYCAP))
}
