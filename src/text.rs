//! What a chat message may contain. Text is shown to everyone, in browsers
//! and terminals, so characters that can change how other text reads are
//! neutralised before a message is accepted: C0 and C1 control characters
//! other than newline and tab (a terminal obeys them; JSON escapes each as
//! six bytes) and the bidirectional embeddings, overrides and isolates
//! (U+202A–U+202E, U+2066–U+2069), which can make a message read backwards.
//! Each becomes U+FFFD, so the reader sees that something was there.

use std::borrow::Cow;

/// What a neutralised character becomes.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` is replaced in message text.
pub fn is_neutralised(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{B}'..='\u{1F}' | '\u{7F}'..='\u{9F}'
        | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every neutralised character replaced by [`REPLACEMENT`];
/// borrowed when there is none (the usual case costs no allocation).
pub fn neutralise(text: &str) -> Cow<'_, str> {
    match text.find(is_neutralised) {
        None => Cow::Borrowed(text),
        Some(first) => {
            let mut clean = String::with_capacity(text.len() + 2);
            clean.push_str(&text[..first]);
            clean.extend(
                text[first..]
                    .chars()
                    .map(|c| if is_neutralised(c) { REPLACEMENT } else { c }),
            );
            Cow::Owned(clean)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_become_replacement_characters() {
        assert_eq!(
            neutralise("a\u{1}b\u{1b}[31m\r\u{7f}\u{85}c"),
            "a\u{fffd}b\u{fffd}[31m\u{fffd}\u{fffd}\u{fffd}c"
        );
        assert_eq!(neutralise("\u{202e}gnp.exe"), "\u{fffd}gnp.exe");
        assert_eq!(neutralise("\u{2066}x\u{2069}"), "\u{fffd}x\u{fffd}");
    }

    #[test]
    fn newlines_tabs_and_ordinary_text_pass_untouched_and_unallocated() {
        for text in ["two\nlines\tand a tab", "héllo 👋 עברית", "\u{200f}mark"] {
            assert!(matches!(neutralise(text), Cow::Borrowed(t) if t == text));
        }
    }
}
