//! Peer addresses as the per-address limits count them. An IPv4 address is
//! one host; an IPv6 host is usually given a whole /64, so counting IPv6 per
//! address would let one host act as 2^64 addresses (and fill every table
//! kept per address). IPv6 addresses therefore count per /64 prefix.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// The key under which `location` (a peer's IP address as text, or
/// anything else a driver passed, such as "unknown") is counted: the same
/// allocation when it is its own key (an IPv4 address, as usual), since
/// every connection keeps both.
pub(crate) fn key(location: &Arc<str>) -> Arc<str> {
    match location.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(ip)) => {
            let [a, b, c, d, ..] = ip.segments();
            format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0)).into()
        }
        Ok(IpAddr::V4(ip)) if ip.to_string() != **location => ip.to_string().into(),
        _ => location.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(location: &str) -> Arc<str> {
        key(&location.into())
    }

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        assert_eq!(&*key_of("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            key_of("2001:db8:1:2:aaaa::1"),
            key_of("2001:db8:1:2:ffff:1:2:3")
        );
        assert_ne!(key_of("2001:db8:1:2::1"), key_of("2001:db8:1:3::1"));
        assert_eq!(&*key_of("192.0.2.7"), "192.0.2.7");
        assert_eq!(&*key_of("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(&*key_of("unknown"), "unknown");
        let location: Arc<str> = "192.0.2.7".into();
        assert!(Arc::ptr_eq(&key(&location), &location));
    }
}
