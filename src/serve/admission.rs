//! Who may open a WebSocket: the Origins allowed, and how many connections
//! the server holds in all and per peer address. Checked in the handshake,
//! before the `101`, so a refused peer costs no more than its request.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use async_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

/// The `--allowed-origins` setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// Any Origin, or none (the default, as the original).
    #[default]
    Any,
    /// Only these origins (`scheme://host[:port]`, lowercase), or none.
    Only(Vec<String>),
}

impl AllowedOrigins {
    /// Whether a handshake with this `Origin` header may proceed. A request
    /// without one is not from a browser, which always sends it on a
    /// WebSocket upgrade; any other program can send what it likes anyway,
    /// so refusing it would protect nothing.
    pub fn allows(&self, origin: Option<&HeaderValue>) -> bool {
        match (self, origin) {
            (AllowedOrigins::Any, _) | (_, None) => true,
            (AllowedOrigins::Only(list), Some(origin)) => list
                .iter()
                .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(origin.as_bytes())),
        }
    }
}

impl FromStr for AllowedOrigins {
    type Err = String;

    /// `*` for any; otherwise origins separated by commas.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim() == "*" {
            return Ok(AllowedOrigins::Any);
        }
        let origins = text
            .split(',')
            .map(|origin| parse_origin(origin.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowedOrigins::Only(origins))
    }
}

impl fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowedOrigins::Any => f.write_str("*"),
            AllowedOrigins::Only(list) => f.write_str(&list.join(",")),
        }
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing more.
fn parse_origin(origin: &str) -> Result<String, String> {
    let expected = "(expected origins such as https://chat.example.com, or *)";
    let Some((scheme, host)) = origin.split_once("://") else {
        return Err(format!("{origin:?} has no scheme {expected}"));
    };
    let well_formed = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !host.is_empty()
        && !host.contains(['/', '?', '#', '@', ' ', ',']);
    if !well_formed {
        return Err(format!("{origin:?} is not an origin {expected}"));
    }
    Ok(origin.to_ascii_lowercase())
}

/// The limits, and the connections counted against them.
#[derive(Debug)]
pub(crate) struct Admission {
    origins: AllowedOrigins,
    /// 0: no limit.
    max_connections: usize,
    /// 0: no limit (and no table).
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection counted against the limits until this is dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub(crate) fn new(origins: AllowedOrigins, max_connections: usize, max_per_ip: usize) -> Self {
        Admission {
            origins,
            max_connections,
            max_per_ip,
            counts: Mutex::default(),
        }
    }

    /// Counts a new connection from `ip`, or says which HTTP status refuses
    /// it: 403 for an Origin not allowed, 503 past a connection limit.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        origin: Option<&HeaderValue>,
    ) -> Result<Slot, StatusCode> {
        if !self.origins.allows(origin) {
            return Err(StatusCode::FORBIDDEN);
        }
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if self.max_connections != 0 && counts.total >= self.max_connections {
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        }
        if self.max_per_ip != 0 {
            let here = counts.per_ip.entry(ip).or_default();
            if *here >= self.max_per_ip {
                return Err(StatusCode::SERVICE_UNAVAILABLE);
            }
            *here += 1;
        }
        counts.total += 1;
        Ok(Slot {
            admission: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let admission = &self.admission;
        let mut counts = admission
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total -= 1;
        if admission.max_per_ip != 0
            && let Some(here) = counts.per_ip.get_mut(&self.ip)
        {
            *here -= 1;
            if *here == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn origin(text: &'static str) -> Option<HeaderValue> {
        Some(HeaderValue::from_static(text))
    }

    #[test]
    fn connections_are_limited_in_all_and_per_address_and_slots_come_back() {
        let admission = Arc::new(Admission::new(AllowedOrigins::Any, 3, 2));
        let a1 = admission.admit(A, None).unwrap();
        let _a2 = admission.admit(A, None).unwrap();
        assert_eq!(
            admission.admit(A, None).unwrap_err(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let b1 = admission.admit(B, None).unwrap();
        assert_eq!(
            admission.admit(B, None).unwrap_err(),
            StatusCode::SERVICE_UNAVAILABLE,
            "3 in all"
        );
        drop(b1);
        let _b1 = admission.admit(B, None).unwrap();
        drop(a1);
        let _a3 = admission.admit(A, None).unwrap();
        drop(_b1);
        assert_eq!(admission.counts.lock().unwrap().total, 2);
        assert_eq!(admission.counts.lock().unwrap().per_ip.get(&B), None);
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
        let admission = Arc::new(Admission::new(AllowedOrigins::Any, 0, 1));
        let _a = admission.admit(A, None).unwrap();
        let mapped = "::ffff:192.0.2.1".parse().unwrap();
        assert!(admission.admit(mapped, None).is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        let admission = Arc::new(Admission::new(AllowedOrigins::Any, 0, 0));
        let slots: Vec<_> = (0..100)
            .map(|_| admission.admit(A, None).unwrap())
            .collect();
        assert_eq!(slots.len(), 100);
        assert!(admission.counts.lock().unwrap().per_ip.is_empty());
    }

    #[test]
    fn only_listed_origins_or_none_pass() {
        let origins: AllowedOrigins = "https://Chat.example.com, http://localhost:8000"
            .parse()
            .unwrap();
        let admission = Arc::new(Admission::new(origins, 0, 0));
        for allowed in [
            None,
            origin("https://chat.example.com"),
            origin("http://localhost:8000"),
        ] {
            assert!(admission.admit(A, allowed.as_ref()).is_ok(), "{allowed:?}");
        }
        for refused in [
            "https://evil.example",
            "http://chat.example.com",
            "https://chat.example.com:8443",
            "null",
            "",
        ] {
            let refused = HeaderValue::from_static(refused);
            assert_eq!(
                admission.admit(A, Some(&refused)).unwrap_err(),
                StatusCode::FORBIDDEN,
                "{refused:?}"
            );
        }
        assert!(
            Admission::new(AllowedOrigins::Any, 0, 0)
                .origins
                .allows(origin("https://evil.example").as_ref())
        );
    }

    #[test]
    fn origins_parse_strictly() {
        assert_eq!("*".parse(), Ok(AllowedOrigins::Any));
        assert_eq!(
            "https://a.example,http://b.example:81".parse(),
            Ok(AllowedOrigins::Only(vec![
                "https://a.example".into(),
                "http://b.example:81".into()
            ]))
        );
        for bad in [
            "",
            "chat.example.com",
            "https://",
            "https://chat.example.com/",
            "https://a.example,,https://b.example",
            "*,https://a.example",
        ] {
            assert!(bad.parse::<AllowedOrigins>().is_err(), "{bad:?}");
        }
    }
}
