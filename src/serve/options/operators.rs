//! `--operators`: the server operators' names, checked against the name
//! rule when the server starts, so that a typo is a usage error rather
//! than an operator who can never log in.

use crate::Config;
use crate::username::Username;

/// The server operators' names, as given (in NFC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operators(Vec<String>);

impl Operators {
    /// The names, in the order given.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

/// Reads `alice,bob` (spaces around the commas allowed; empty: none). Each
/// name must follow the rule of user names, and no two may be one name
/// (`Alice` and `alice`), which would mean a typo.
pub(super) fn operator_names(text: &str) -> Result<Operators, String> {
    if text.trim().is_empty() {
        return Ok(Operators::default());
    }
    let max_chars = Config::default().max_username_chars;
    let mut names: Vec<Username> = Vec::new();
    for raw in text.split(',').map(str::trim) {
        if raw.is_empty() {
            return Err("an empty name between commas (expected NAME[,NAME…])".into());
        }
        let name = Username::parse(raw, max_chars)
            .map_err(|error| format!("{raw:?} is not a valid user name: {error}"))?;
        if let Some(same) = names.iter().find(|other| other.key == name.key) {
            return Err(format!(
                "{:?} and {:?} are one name (names that look alike share one)",
                same.display, name.display
            ));
        }
        names.push(name);
    }
    Ok(Operators(names.into_iter().map(|n| n.display).collect()))
}
