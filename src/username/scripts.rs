//! Names that mix scripts, as UTS #39's restriction levels describe them:
//! a name may be in one script, or Latin with Han and Japanese kana, Han
//! with Bopomofo, Han with Hangul ("Highly Restrictive"), or Latin with one
//! other recommended script except Cyrillic and Greek ("Moderately
//! Restrictive"), whose letters can spell Latin look-alikes.
//!
//! Moderately rather than Highly Restrictive: the key already makes a name
//! one with its look-alikes letter by letter (the skeleton), so the script
//! rule only has to keep out the mixes that spell whole words in another
//! alphabet, and bilingual names such as "Ali_علي" or "dev_देव" stay valid.

use unicode_script::{Script, UnicodeScript};
use unicode_security::mixed_script::AugmentedScriptSet;

use super::UsernameError;

/// Refuses `name` when its letters mix scripts beyond the Moderately
/// Restrictive level, naming the first script seen and the one that broke
/// the rule. Common characters (digits, emoji, punctuation) and marks
/// (Inherited) go with any script.
pub(super) fn check(name: &str) -> Result<(), UsernameError> {
    let mut all = AugmentedScriptSet::default();
    let mut non_latin = AugmentedScriptSet::default();
    let mut first = None;
    for c in name.chars() {
        let set = AugmentedScriptSet::for_char(c);
        all.intersect_with(set);
        if !set.base.contains_script(Script::Latin) {
            non_latin.intersect_with(set);
        }
        let script = c.script();
        if !matches!(script, Script::Common | Script::Inherited | Script::Unknown) {
            first.get_or_insert(script);
        }
        if !moderately_restrictive(&all, &non_latin) {
            return Err(UsernameError::MixedScripts {
                first: first.unwrap_or(script).full_name(),
                then: script.full_name(),
            });
        }
    }
    Ok(())
}

/// UTS #39 section 5.2, from the resolved script set of the whole name
/// (`all`) and of its characters that are not Latin (`non_latin`).
fn moderately_restrictive(all: &AugmentedScriptSet, non_latin: &AugmentedScriptSet) -> bool {
    if !all.is_empty() {
        return true; // single script
    }
    if non_latin.hanb || non_latin.jpan || non_latin.kore {
        return true; // highly restrictive: Latin with the CJK writing systems
    }
    let mut others = non_latin.base.iter();
    match (others.next(), others.next()) {
        (Some(other), None) => {
            other.is_recommended() && other != Script::Cyrillic && other != Script::Greek
        }
        _ => false,
    }
}
