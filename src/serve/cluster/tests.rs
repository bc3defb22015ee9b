//! The Redis link's unit tests.

use super::check_url;
use super::requests::hex;
use crate::server::SecretHash;

#[test]
fn urls_are_redis_or_rediss() {
    assert_eq!(check_url("redis://127.0.0.1:6379/2"), Ok(()));
    assert_eq!(check_url("rediss://redis.example.com"), Ok(()));
    assert_eq!(check_url("redis://:secret@127.0.0.1"), Ok(()));
    for bad in [
        "127.0.0.1:6379",
        "http://x",
        "unix:///tmp/r.sock",
        "redis://h:port",
    ] {
        assert!(check_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn hashes_are_kept_in_hex() {
    let hash = SecretHash::of("s");
    let hex = hex(&hash);
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
}
