//! The key a name is unique by: two names with one key are one name.
//!
//! Uniqueness is promised "regardless of case and Unicode normalisation",
//! and a name must not pass for another: the key is the UTS #39 skeleton
//! of the name's NFKC_Casefold form, so STRASSE and straße, ﬁle and file,
//! ｂｏｂ and bob, "аlice" (Cyrillic а) and "alice" each share one.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;

use super::{Username, UsernameError, characters::is_default_ignorable};

/// The key a name is unique by: the UTS #39 skeleton of its
/// NFKC_Casefold form (see [`fold`]), composed (NFC).
///
/// Case folding comes first, as the skeleton is not case-insensitive
/// ("I" and "l" are confusable, "i" and "l" are not): so "aIice" is not
/// "alice", but "a1ice" is. Also for names that are not valid: a client
/// keys what an older server sent by it.
pub fn key(name: &str) -> String {
    unicode_security::skeleton(&fold(name)).nfc().collect()
}

/// The name's NFKC_Casefold form: full case folding and compatibility
/// normalisation (Unicode's D146 compatibility caseless match, composed),
/// without default-ignorable characters. "STRASSE" and "straße" both fold
/// to "strasse", "ſ" to "s", "µ" (micro) to "μ" (mu), "ﬁ" to "fi".
///
/// Unlike [`key`], it keeps the letters as written, so it orders names as
/// readers expect (a list of who is online).
pub fn fold(name: &str) -> String {
    name.chars()
        .filter(|&c| !is_default_ignorable(c))
        .nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkc()
        .collect()
}

/// The key of a name saved by a server before issue 21 (lower case, NFC).
/// Only to find what was saved under it, such as a secret chat-cli kept
/// by that key.
pub fn legacy_key(name: &str) -> String {
    name.nfc()
        .collect::<String>()
        .to_lowercase()
        .nfc()
        .collect()
}

/// The key, under today's rule, of a name a store saved as `display`
/// (perhaps under another key, by an older rule): what to reserve it
/// under on restore, so that its owner still logs in with its secret.
///
/// Refused, with the reason, when `display` breaks today's name rule
/// (say, it hides an invisible character): no one can log in as it any
/// more. The length is not checked: a limit lowered since does not take
/// a name from its owner.
pub fn key_of_stored(display: &str) -> Result<String, UsernameError> {
    Username::parse(display, usize::MAX).map(|name| name.key)
}
