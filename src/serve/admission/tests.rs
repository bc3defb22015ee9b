use super::*;

const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

fn origin(text: &'static str) -> Option<HeaderValue> {
    Some(HeaderValue::from_static(text))
}

fn admission(origins: AllowedOrigins, connections: usize, per_address: usize) -> Arc<Admission> {
    Arc::new(Admission::new(
        origins,
        Limits::new(connections, per_address),
    ))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn connections_are_limited_in_all_and_per_address_and_slots_come_back() {
    let admission = admission(AllowedOrigins::Any, 3, 2);
    let a1 = admission.admit(A, None, None).unwrap();
    let _a2 = admission.admit(A, None, None).unwrap();
    assert_eq!(
        admission.admit(A, None, None).unwrap_err(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let b1 = admission.admit(B, None, None).unwrap();
    assert_eq!(
        admission.admit(B, None, None).unwrap_err(),
        StatusCode::SERVICE_UNAVAILABLE,
        "3 in all"
    );
    drop(b1);
    let _b1 = admission.admit(B, None, None).unwrap();
    drop(a1);
    let _a3 = admission.admit(A, None, None).unwrap();
    drop(_b1);
    assert_eq!(admission.lock().open, 2);
    assert_eq!(admission.lock().per_address.get(&B), None);
}

#[test]
fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
    let admission = admission(AllowedOrigins::Any, 0, 1);
    let _a = admission.admit(A, None, None).unwrap();
    assert!(admission.admit(ip("::ffff:192.0.2.1"), None, None).is_err());
    let _shaking = admission.arrive(A, false).unwrap();
    assert!(admission.arrive(ip("::ffff:192.0.2.1"), false).is_err());
}

#[test]
fn ipv6_addresses_of_one_64_count_as_one_address() {
    let admission = admission(AllowedOrigins::Any, 0, 1);
    let one = ip("2001:db8:1:2::1");
    let same_64 = ip("2001:db8:1:2:ffff:ffff:ffff:fffe");
    let next_64 = ip("2001:db8:1:3::1");
    let _open = admission.admit(one, None, None).unwrap();
    assert_eq!(
        admission.admit(same_64, None, None).unwrap_err(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the same /64"
    );
    let _other = admission.admit(next_64, None, None).unwrap();
    // The handshakes too.
    let _shaking = admission.arrive(same_64, false).unwrap();
    assert_eq!(
        admission.arrive(one, false).unwrap_err(),
        Crowded::HandshakesFromAddress(1)
    );
    assert!(admission.arrive(next_64, false).is_ok());
    assert_eq!(address_key(one), ip("2001:db8:1:2::"));
}

#[test]
fn handshakes_are_bounded_in_all_and_per_address_apart_from_open_connections() {
    let admission = admission(AllowedOrigins::Any, 4, 2);
    let a1 = admission.arrive(A, false).unwrap();
    let _a2 = admission.arrive(A, false).unwrap();
    assert_eq!(
        admission.arrive(A, false).unwrap_err(),
        Crowded::HandshakesFromAddress(2)
    );
    let _b1 = admission.arrive(B, false).unwrap();
    let _b2 = admission.arrive(B, false).unwrap();
    assert_eq!(
        admission.arrive(ip("192.0.2.3"), false).unwrap_err(),
        Crowded::Handshakes(4)
    );
    // Handshakes do not take the upgraded connections' places.
    let _open: Vec<_> = (0..2)
        .map(|_| admission.admit(A, None, None).unwrap())
        .collect();
    drop(a1);
    let _a3 = admission.arrive(A, false).unwrap();
    assert_eq!(admission.lock().handshakes, 4);
    assert_eq!(
        admission.lock().per_address[&A],
        PerAddress {
            handshakes: 2,
            open: 2
        }
    );
}

#[test]
fn the_handshake_bounds_follow_from_the_flags() {
    let defaults = Limits::new(10_000, 0);
    assert_eq!(
        (defaults.handshakes, defaults.handshakes_per_address),
        (1024, 128)
    );
    assert_eq!(defaults.most_open(), 11_024);
    let issue = Limits::new(50, 5);
    assert_eq!((issue.handshakes, issue.handshakes_per_address), (50, 5));
    let small = Limits::new(3, 0);
    assert_eq!((small.handshakes, small.handshakes_per_address), (3, 3));
    let unlimited = Limits::new(0, 0);
    assert_eq!(
        (unlimited.handshakes, unlimited.handshakes_per_address),
        (0, 0)
    );
    assert_eq!(unlimited.most_open(), 0);
    assert_eq!(Limits::new(0, 7).handshakes_per_address, 7);
}

#[test]
fn zero_means_no_limit() {
    let admission = admission(AllowedOrigins::Any, 0, 0);
    let slots: Vec<_> = (0..100)
        .map(|_| admission.admit(A, None, None).unwrap())
        .chain((0..2000).map(|_| admission.arrive(A, false).unwrap()))
        .collect();
    assert_eq!(slots.len(), 2100);
    assert!(admission.lock().per_address.is_empty());
}

#[test]
fn only_listed_origins_or_none_pass() {
    let origins: AllowedOrigins = "https://Chat.example.com, http://localhost:8000"
        .parse()
        .unwrap();
    let admission = admission(origins, 0, 0);
    let host = origin("chat.example.com");
    for allowed in [
        None,
        origin("https://chat.example.com"),
        origin("http://localhost:8000"),
    ] {
        assert!(
            admission.admit(A, allowed.as_ref(), host.as_ref()).is_ok(),
            "{allowed:?}"
        );
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
            admission
                .admit(A, Some(&refused), host.as_ref())
                .unwrap_err(),
            StatusCode::FORBIDDEN,
            "{refused:?}"
        );
    }
    assert!(AllowedOrigins::Any.allows(origin("https://evil.example").as_ref(), None));
}

#[test]
fn by_default_only_the_pages_own_origin_or_none_pass() {
    let own = AllowedOrigins::default();
    assert_eq!(own, AllowedOrigins::SameHost);
    let allows =
        |o: &'static str, host: &'static str| own.allows(origin(o).as_ref(), origin(host).as_ref());
    assert!(allows(
        "http://chat.example.com:8080",
        "chat.example.com:8080"
    ));
    assert!(allows("https://chat.example.com", "chat.example.com"));
    assert!(allows("HTTPS://Chat.Example.com", "chat.example.COM"));
    assert!(allows("http://[::1]:8080", "[::1]:8080"));
    // A default port written on one side only.
    assert!(allows("https://chat.example.com", "chat.example.com:443"));
    assert!(allows("http://chat.example.com", "chat.example.com:80"));
    for (o, host) in [
        ("https://evil.example", "chat.example.com"),
        ("http://chat.example.com:8081", "chat.example.com:8080"),
        ("http://chat.example.com", "chat.example.com:443"),
        ("https://chat.example.com.evil.example", "chat.example.com"),
        ("ws://chat.example.com", "chat.example.com"),
        ("null", "chat.example.com"),
        ("http://", ""),
    ] {
        assert!(!allows(o, host), "{o} for {host}");
    }
    assert!(!own.allows(origin("http://chat.example.com").as_ref(), None));
    assert!(own.allows(None, None), "no Origin: not a browser");
}

#[test]
fn origins_parse_strictly() {
    assert_eq!("*".parse(), Ok(AllowedOrigins::Any));
    assert_eq!("self".parse(), Ok(AllowedOrigins::SameHost));
    for setting in [
        AllowedOrigins::Any,
        AllowedOrigins::SameHost,
        AllowedOrigins::Only(vec!["https://a.example".into()]),
    ] {
        assert_eq!(setting.to_string().parse(), Ok(setting));
    }
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
        "self,https://a.example",
    ] {
        assert!(bad.parse::<AllowedOrigins>().is_err(), "{bad:?}");
    }
}

#[test]
fn a_trusted_proxys_handshakes_count_only_against_the_overall_bound() {
    let admission = admission(AllowedOrigins::Any, 4, 2);
    // A proxy carries many clients: past its address's share, still in.
    let proxied: Vec<_> = (0..3).map(|_| admission.arrive(A, true).unwrap()).collect();
    assert!(!admission.lock().per_address.contains_key(&A));
    let _other = admission.arrive(B, false).unwrap();
    assert_eq!(
        admission.arrive(B, true).unwrap_err(),
        Crowded::Handshakes(4)
    );
    drop(proxied);
    assert_eq!(admission.lock().handshakes, 1);
}

#[test]
fn a_client_named_by_a_proxy_header_counts_against_its_own_share() {
    let admission = admission(AllowedOrigins::Any, 8, 2);
    let client = B;
    let mut first = admission.arrive(A, true).unwrap();
    let mut second = admission.arrive(A, true).unwrap();
    let mut third = admission.arrive(A, true).unwrap();
    assert_eq!(first.count_from(client), Ok(()));
    assert_eq!(second.count_from(client), Ok(()));
    assert_eq!(
        third.count_from(client),
        Err(Crowded::HandshakesFromAddress(2))
    );
    assert_eq!(admission.lock().per_address[&client].handshakes, 2);
    drop(first);
    assert_eq!(admission.lock().per_address[&client].handshakes, 1);
    drop((second, third));
    assert!(admission.lock().per_address.is_empty());
    assert_eq!(admission.lock().handshakes, 0);
}
