//! The one line each run prints, made for scripts:
//!
//! ```text
//! loadgen mode=fanout status=ok clients=1000 … p99_us=8123 …
//! ```
//!
//! The line starts with the word `loadgen`, then `key=value` pairs separated
//! by single spaces; no value contains a space or `=`. An unknown value (no
//! `--server-pid`, no samples) is `na`. `grep '^loadgen '` finds the line and
//! `tr ' ' '\n'` turns it into one pair per line.
//!
//! Each mode's report is a plain struct declared with [`report!`], which
//! derives both directions from one field list, so that what is printed and
//! what is parsed cannot drift apart.

use std::fmt;
use std::str::FromStr;

/// The first word of every summary line.
pub const PREFIX: &str = "loadgen";

/// An ordered list of `key=value` pairs: a summary line, parsed or to print.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pairs: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    #[error("the line does not start with {PREFIX:?}")]
    MissingPrefix,
    #[error("{0:?} is not a key=value pair")]
    NotAPair(String),
    #[error("no field {0:?}")]
    Missing(&'static str),
    #[error("field {key:?} has the unparsable value {value:?}")]
    BadValue { key: &'static str, value: String },
    #[error("this is a {found:?} summary, not a {expected:?} one")]
    WrongMode {
        expected: &'static str,
        found: String,
    },
}

impl Summary {
    pub fn push(&mut self, key: &str, value: &impl Field) {
        let value = value.render();
        // A space or `=` in a value would break the line for every script.
        debug_assert!(
            !value.is_empty() && !value.contains([' ', '=']),
            "{value:?}"
        );
        self.pairs.push((key.to_owned(), value));
    }

    /// The raw text of a value.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn get<T: Field>(&self, key: &'static str) -> Result<T, SummaryError> {
        let raw = self.raw(key).ok_or(SummaryError::Missing(key))?;
        T::parse(raw).ok_or_else(|| SummaryError::BadValue {
            key,
            value: raw.to_owned(),
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for (key, value) in &self.pairs {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}

impl FromStr for Summary {
    type Err = SummaryError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some(PREFIX) {
            return Err(SummaryError::MissingPrefix);
        }
        let pairs = words
            .map(|word| match word.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_owned(), v.to_owned())),
                _ => Err(SummaryError::NotAPair(word.to_owned())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Summary { pairs })
    }
}

/// A value that can stand in a summary line and be read back unchanged.
pub trait Field: Sized {
    fn render(&self) -> String;
    fn parse(text: &str) -> Option<Self>;
}

macro_rules! display_field {
    ($($ty:ty),*) => {$(
        impl Field for $ty {
            fn render(&self) -> String {
                self.to_string()
            }
            fn parse(text: &str) -> Option<Self> {
                text.parse().ok()
            }
        }
    )*};
}
display_field!(u64, u32, usize, bool);

/// Floats are printed with Rust's shortest round-trip form; reports round
/// them to a sensible precision (see [`round1`]) so the line stays short.
impl Field for f64 {
    fn render(&self) -> String {
        self.to_string()
    }
    fn parse(text: &str) -> Option<Self> {
        text.parse().ok().filter(|x: &f64| x.is_finite())
    }
}

impl<T: Field> Field for Option<T> {
    fn render(&self) -> String {
        match self {
            Some(value) => value.render(),
            None => "na".to_owned(),
        }
    }
    fn parse(text: &str) -> Option<Self> {
        match text {
            "na" => Some(None),
            _ => T::parse(text).map(Some),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every phase finished; the figures cover the whole run.
    Ok,
    /// Some phase hit its deadline (`--timeout`, `--setup-timeout`); the
    /// figures cover what happened until then.
    Timeout,
    /// No client could connect and log in (is the server running?).
    Failed,
}

impl Field for Status {
    fn render(&self) -> String {
        match self {
            Status::Ok => "ok",
            Status::Timeout => "timeout",
            Status::Failed => "failed",
        }
        .to_owned()
    }
    fn parse(text: &str) -> Option<Self> {
        match text {
            "ok" => Some(Status::Ok),
            "timeout" => Some(Status::Timeout),
            "failed" => Some(Status::Failed),
            _ => None,
        }
    }
}

/// Rounds to one decimal, for rates and seconds.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Declares a report struct whose fields, in order, are the summary line
/// after `mode=…`, with `to_summary` / `from_summary` between the two.
macro_rules! report {
    (
        $(#[$meta:meta])*
        pub struct $name:ident (mode = $mode:literal) {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $name {
            pub const MODE: &'static str = $mode;

            pub fn to_summary(&self) -> $crate::summary::Summary {
                let mut summary = $crate::summary::Summary::default();
                summary.push("mode", &Self::MODE.to_owned());
                $( summary.push(stringify!($field), &self.$field); )*
                summary
            }

            // Only tests and scripts read a summary back; the binary itself
            // never does.
            #[allow(dead_code)]
            pub fn from_summary(
                summary: &$crate::summary::Summary,
            ) -> Result<Self, $crate::summary::SummaryError> {
                let found: String = summary.get("mode")?;
                if found != Self::MODE {
                    return Err($crate::summary::SummaryError::WrongMode {
                        expected: Self::MODE,
                        found,
                    });
                }
                Ok(Self {
                    $( $field: summary.get(stringify!($field))?, )*
                })
            }
        }
    };
}
pub(crate) use report;

impl Field for String {
    fn render(&self) -> String {
        self.clone()
    }
    fn parse(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    report! {
        /// A report with one field of every kind.
        pub struct Sample (mode = "sample") {
            pub status: Status,
            pub count: u64,
            pub rate_per_s: f64,
            pub rss_kib: Option<u64>,
            pub p99_us: Option<u64>,
        }
    }

    fn sample() -> Sample {
        Sample {
            status: Status::Timeout,
            count: 1_000_000,
            rate_per_s: round1(499_873.456),
            rss_kib: None,
            p99_us: Some(8123),
        }
    }

    #[test]
    fn a_report_prints_one_line_of_pairs_in_declaration_order() {
        assert_eq!(
            sample().to_summary().to_string(),
            "loadgen mode=sample status=timeout count=1000000 rate_per_s=499873.5 rss_kib=na p99_us=8123"
        );
    }

    #[test]
    fn a_report_reads_back_from_its_own_line() {
        let line = sample().to_summary().to_string();
        let parsed: Summary = line.parse().unwrap();
        assert_eq!(Sample::from_summary(&parsed), Ok(sample()));
    }

    #[test]
    fn reading_names_what_is_wrong() {
        let parse = |line: &str| {
            line.parse::<Summary>()
                .and_then(|s| Sample::from_summary(&s))
        };
        assert_eq!(parse("mode=sample"), Err(SummaryError::MissingPrefix));
        assert_eq!(
            parse("loadgen mode=sample count"),
            Err(SummaryError::NotAPair("count".into()))
        );
        assert_eq!(
            parse("loadgen mode=other"),
            Err(SummaryError::WrongMode {
                expected: "sample",
                found: "other".into()
            })
        );
        assert_eq!(
            parse("loadgen mode=sample status=ok"),
            Err(SummaryError::Missing("count"))
        );
        assert_eq!(
            parse("loadgen mode=sample status=fine"),
            Err(SummaryError::BadValue {
                key: "status",
                value: "fine".into()
            })
        );
    }
}
