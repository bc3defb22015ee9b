//! The two headers a reverse proxy writes its client's address in:
//! `X-Forwarded-For` (nginx, Caddy, HAProxy's `option forwardfor`; not
//! standardised: addresses separated by commas) and `Forwarded` (RFC 7239:
//! elements separated by commas, each `for=NODE` among other pairs, with
//! IPv6 addresses in brackets inside a quoted string).
//!
//! Both give their addresses as an iterator, rightmost first. In
//! `X-Forwarded-For` each is parsed only when the walk reaches it; a
//! `Forwarded` line is parsed whole, so a malformed element a client wrote
//! on the line its proxy appends to gets that client (and nobody else) a 400.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::http::header::GetAll;

use super::Node;

/// A header from a trusted proxy that does not say what it should. The
/// request is refused (400): a proxy that writes this is misconfigured,
/// and guessing could put every client under one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadHeader {
    #[error("X-Forwarded-For from a trusted proxy holds something other than an IP address")]
    XForwardedFor,
    #[error("Forwarded from a trusted proxy is not as RFC 7239 writes it")]
    Forwarded,
}

/// The addresses of `X-Forwarded-For` (every line, in order), rightmost
/// first. Empty elements (`a,,b`) are skipped, as in any header list.
pub(crate) fn x_forwarded_for<'a>(
    values: GetAll<'a, HeaderValue>,
) -> impl Iterator<Item = Result<Node, BadHeader>> + 'a {
    values
        .into_iter()
        .rev()
        .flat_map(|value| value.as_bytes().rsplit(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|element| !element.is_empty())
        .map(|element| {
            std::str::from_utf8(element)
                .ok()
                .and_then(node)
                .ok_or(BadHeader::XForwardedFor)
        })
}

/// The `for=` nodes of `Forwarded` (every line, in order), rightmost
/// first; an element without `for=` is a hidden node. A line that is not
/// well-formed is an error where the walk reaches it.
pub(crate) fn forwarded<'a>(
    values: GetAll<'a, HeaderValue>,
) -> impl Iterator<Item = Result<Node, BadHeader>> + 'a {
    values.into_iter().rev().flat_map(|value| {
        let nodes: Vec<Result<Node, BadHeader>> = match elements(value.as_bytes()) {
            Ok(elements) => elements
                .iter()
                .rev()
                .map(|node_text| match node_text {
                    None => Ok(Node::Hidden),
                    Some(text) => node(text).ok_or(BadHeader::Forwarded),
                })
                .collect(),
            Err(bad) => vec![Err(bad)],
        };
        nodes
    })
}

/// The `for=` value of each element of one `Forwarded` line, left to
/// right (`None`: the element has no `for=`).
fn elements(line: &[u8]) -> Result<Vec<Option<String>>, BadHeader> {
    let mut elements = Vec::new();
    // The element being read: `None` until it has a pair or a `;`.
    let mut element: Option<Option<String>> = None;
    let mut at = 0;
    loop {
        skip_whitespace(line, &mut at);
        match line.get(at) {
            None => {
                elements.extend(element.take());
                return Ok(elements);
            }
            Some(b',') => {
                at += 1;
                elements.extend(element.take());
            }
            Some(b';') => {
                at += 1;
                element.get_or_insert(None);
            }
            Some(_) => {
                let name = token(line, &mut at).ok_or(BadHeader::Forwarded)?;
                if line.get(at) != Some(&b'=') {
                    return Err(BadHeader::Forwarded);
                }
                at += 1;
                let value = value(line, &mut at).ok_or(BadHeader::Forwarded)?;
                let node = element.get_or_insert(None);
                if name.eq_ignore_ascii_case(b"for") {
                    // RFC 7239, 4: a parameter occurs at most once in an element.
                    if node.replace(value.into_owned()).is_some() {
                        return Err(BadHeader::Forwarded);
                    }
                }
                skip_whitespace(line, &mut at);
                if !matches!(line.get(at), None | Some(b';' | b',')) {
                    return Err(BadHeader::Forwarded);
                }
            }
        }
    }
}

/// A token (RFC 9110, 5.6.2): a parameter's name.
fn token<'a>(line: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let start = *at;
    while line.get(*at).is_some_and(|&b| is_tchar(b)) {
        *at += 1;
    }
    (*at > start).then(|| &line[start..*at])
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A parameter's value: a quoted string (with `\` escapes), or else
/// everything visible up to the next separator. That is more than a token:
/// some proxies leave `[2001:db8::1]` unquoted, and its meaning is clear.
fn value<'a>(line: &'a [u8], at: &mut usize) -> Option<Cow<'a, str>> {
    if line.get(*at) != Some(&b'"') {
        let start = *at;
        while line
            .get(*at)
            .is_some_and(|&b| b.is_ascii_graphic() && !b",;\"".contains(&b))
        {
            *at += 1;
        }
        return (*at > start).then(|| String::from_utf8_lossy(&line[start..*at]));
    }
    *at += 1;
    let mut text = Vec::new();
    loop {
        let b = *line.get(*at)?;
        *at += 1;
        match b {
            b'"' => return Some(Cow::Owned(String::from_utf8_lossy(&text).into_owned())),
            b'\\' => {
                text.push(*line.get(*at)?);
                *at += 1;
            }
            b'\t' => text.push(b),
            b if b < 0x20 || b == 0x7f => return None,
            b => text.push(b),
        }
    }
}

fn skip_whitespace(line: &[u8], at: &mut usize) {
    while matches!(line.get(*at), Some(b' ' | b'\t')) {
        *at += 1;
    }
}

/// A node (RFC 7239, 6): an IPv4 address, an IPv6 address in brackets, or
/// `unknown` or an obfuscated identifier, each with an optional port (a
/// number, or obfuscated). A bare IPv6 address, as `X-Forwarded-For`
/// writes it, is taken too.
fn node(text: &str) -> Option<Node> {
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = ip.parse().ok()?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(port);
        return port_ok.then_some(Node::Ip(IpAddr::V6(ip)));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(Node::Ip(ip));
    }
    let name = match text.rsplit_once(':') {
        Some((name, p)) if port(p) => name,
        Some(_) => return None,
        None => text,
    };
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Some(Node::Ip(IpAddr::V4(ip)));
    }
    (name.eq_ignore_ascii_case("unknown") || obfuscated(name)).then_some(Node::Hidden)
}

fn port(text: &str) -> bool {
    let number = (1..=5).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u16>().is_ok();
    number || obfuscated(text)
}

/// `_` and then letters, digits, `.`, `_` or `-` (RFC 7239, 6.3).
fn obfuscated(text: &str) -> bool {
    text.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    })
}

#[cfg(test)]
pub(super) fn parse_node(text: &str) -> Option<Node> {
    node(text)
}

#[cfg(test)]
pub(super) fn parse_elements(line: &str) -> Result<Vec<Option<String>>, BadHeader> {
    elements(line.as_bytes())
}
