//! Why a frame does not decode, as data rather than as serde_json's text.
//!
//! The description sent back in an `invalidJson` error is part of the
//! protocol (client authors read it, tests compare it), so it is built here
//! from what went wrong — the missing field, the unknown `type`, the value of
//! the wrong type — and never by cutting up another crate's message, whose
//! wording may change in any release.
//!
//! Decoding stays on serde_json's fast path; only a frame that fails is
//! decoded a second time, into a [`serde_value::Value`] and then through a
//! deserializer whose error type is [`Fault`], which records what serde
//! reports instead of formatting it.

use std::fmt;

use serde::de::{self, Expected, Unexpected};
use serde_value::ValueDeserializer;

/// What serde found wrong with a well-formed JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fault {
    MissingField(&'static str),
    UnknownVariant {
        found: String,
        expected: &'static [&'static str],
    },
    InvalidType {
        found: String,
        expected: String,
    },
    InvalidValue {
        found: String,
        expected: String,
    },
    InvalidLength {
        found: usize,
        expected: String,
    },
    DuplicateField(&'static str),
    /// Anything else serde reports in words of its own (e.g. a derive's
    /// custom message).
    Other(String),
}

impl Fault {
    /// Why `bytes`, which serde_json parsed as JSON but could not decode as
    /// a `T`, is not a `T`; `None` if it decodes after all or is not JSON.
    pub(super) fn of<T: de::DeserializeOwned>(bytes: &[u8]) -> Option<Fault> {
        Fault::of_value::<T>(serde_json::from_slice(bytes).ok()?)
    }

    /// [`Fault::of`] for a value already parsed.
    pub(super) fn of_value<T: de::DeserializeOwned>(value: serde_json::Value) -> Option<Fault> {
        // A `type` that is not a string: serde would read a number as the
        // index of a variant, which means nothing on this wire.
        if let Some(tag) = value.get("type").filter(|tag| !tag.is_string()) {
            return Some(Fault::InvalidType {
                found: unexpected(&json_unexpected(tag)),
                expected: "variant identifier".into(),
            });
        }
        let value = serde_value::to_value(value).ok()?;
        T::deserialize(ValueDeserializer::<Fault>::new(value)).err()
    }

    /// The description, with the list of types a `type` may take replaced by
    /// `types` (e.g. only v1's types for a v1 connection).
    pub(super) fn describe_with_types(&self, types: &str) -> String {
        match self {
            Fault::UnknownVariant { found, .. } => {
                format!("unknown variant \"{found}\", {types}")
            }
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::MissingField(field) => write!(f, "missing field \"{field}\""),
            Fault::UnknownVariant { found, expected } => {
                write!(f, "unknown variant \"{found}\", {}", one_of(expected))
            }
            Fault::InvalidType { found, expected } => {
                write!(f, "invalid type: {found}, expected {expected}")
            }
            Fault::InvalidValue { found, expected } => {
                write!(f, "invalid value: {found}, expected {expected}")
            }
            Fault::InvalidLength { found, expected } => {
                write!(f, "invalid length {found}, expected {expected}")
            }
            Fault::DuplicateField(field) => write!(f, "duplicate field \"{field}\""),
            Fault::Other(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for Fault {}

impl de::Error for Fault {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Fault::Other(msg.to_string())
    }

    fn invalid_type(found: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Fault::InvalidType {
            found: unexpected(&found),
            expected: expected.to_string(),
        }
    }

    fn invalid_value(found: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Fault::InvalidValue {
            found: unexpected(&found),
            expected: expected.to_string(),
        }
    }

    fn invalid_length(found: usize, expected: &dyn Expected) -> Self {
        Fault::InvalidLength {
            found,
            expected: expected.to_string(),
        }
    }

    fn unknown_variant(found: &str, expected: &'static [&'static str]) -> Self {
        Fault::UnknownVariant {
            found: found.to_owned(),
            expected,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Fault::MissingField(field)
    }

    fn duplicate_field(field: &'static str) -> Self {
        Fault::DuplicateField(field)
    }
}

/// `expected one of "a", "b"`, as the list of names a client may use.
pub(super) fn one_of(names: &[&str]) -> String {
    match names {
        [] => "there are none".to_owned(),
        [only] => format!("expected \"{only}\""),
        [first, second] => format!("expected \"{first}\" or \"{second}\""),
        names => {
            let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            format!("expected one of {}", quoted.join(", "))
        }
    }
}

/// A JSON value as serde names what it found.
fn json_unexpected(value: &serde_json::Value) -> Unexpected<'_> {
    use serde_json::Value;
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// What was found, in the protocol's words: the kind, then the value quoted.
fn unexpected(found: &Unexpected<'_>) -> String {
    match found {
        Unexpected::Bool(b) => format!("boolean \"{b}\""),
        Unexpected::Unsigned(n) => format!("integer \"{n}\""),
        Unexpected::Signed(n) => format!("integer \"{n}\""),
        Unexpected::Float(x) => format!("floating point \"{x}\""),
        Unexpected::Char(c) => format!("character \"{c}\""),
        Unexpected::Str(s) => format!("string \"{s}\""),
        Unexpected::Bytes(_) => "byte array".to_owned(),
        Unexpected::Unit => "null".to_owned(),
        Unexpected::Option => "optional value".to_owned(),
        Unexpected::NewtypeStruct => "newtype struct".to_owned(),
        Unexpected::Seq => "sequence".to_owned(),
        Unexpected::Map => "map".to_owned(),
        Unexpected::Enum => "enum".to_owned(),
        Unexpected::UnitVariant => "unit variant".to_owned(),
        Unexpected::NewtypeVariant => "newtype variant".to_owned(),
        Unexpected::TupleVariant => "tuple variant".to_owned(),
        Unexpected::StructVariant => "struct variant".to_owned(),
        Unexpected::Other(other) => (*other).to_owned(),
    }
}

/// Why `bytes` is not JSON text (serde_json's `error`), from the error's
/// kind and position only.
pub(super) fn syntax(error: &serde_json::Error, bytes: &[u8]) -> String {
    let at = format!("line {}, column {}", error.line(), error.column());
    if let Err(utf8) = std::str::from_utf8(bytes) {
        return format!(
            "not valid JSON: the text is not UTF-8 (at byte {})",
            utf8.valid_up_to()
        );
    }
    match error.classify() {
        serde_json::error::Category::Eof => {
            format!("not valid JSON: the text ends inside a value ({at})")
        }
        serde_json::error::Category::Io => "not valid JSON: the frame could not be read".into(),
        _ => format!("not valid JSON: a syntax error at {at}"),
    }
}
