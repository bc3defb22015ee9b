//! Combining marks stacked on one letter: a few are writing (Vietnamese
//! ệ has two, pointed Hebrew with its accents four), more are a way to
//! smear a name over the lines around it or hide a letter under them.

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

use super::UsernameError;

/// The most nonspacing or enclosing marks on one letter, as UTS #39
/// (section 5.4, "Optional Detection") suggests: no real text needs more.
pub const MAX_MARKS_PER_LETTER: usize = 4;

/// Refuses more than [`MAX_MARKS_PER_LETTER`] nonspacing or enclosing
/// marks in a row, and one such mark twice in a row (é with a second acute
/// looks like é), both counted decomposed (NFD), so that a precomposed
/// letter hides none of its marks.
pub(super) fn check(name: &str) -> Result<(), UsernameError> {
    let mut run = 0;
    let mut previous = None;
    for c in name.nfd() {
        let stacks = matches!(
            get_general_category(c),
            GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark
        );
        if !stacks {
            (run, previous) = (0, None);
            continue;
        }
        if previous == Some(c) {
            return Err(UsernameError::RepeatedMark(c as u32));
        }
        run += 1;
        if run > MAX_MARKS_PER_LETTER {
            return Err(UsernameError::TooManyMarks {
                max: MAX_MARKS_PER_LETTER,
            });
        }
        previous = Some(c);
    }
    Ok(())
}
