//! The web client (issue 17): a page, its script and its style, compiled
//! into the binary and served at `/` on the chat's own port, so a person
//! needs nothing but the chat's address. The page speaks protocol v3 (v2
//! when the server selects it) over a WebSocket back to the host it came
//! from (`app.js`, with the protocol logic in `chat.js`; rooms and direct
//! messages in `rooms-ui.js` and `members-ui.js`, their logic in `rooms.js`;
//! the message logs' scrolling in `follow.js`, DOM helpers in `dom.js`).
//!
//! The script and the style are separate files rather than inlined, so the
//! Content-Security-Policy can allow exactly `'self'` for both: no inline
//! code at all, and no hashes to keep in step with every edit.

use std::borrow::Cow;

use async_tungstenite::tungstenite::handshake::server::Request;
use async_tungstenite::tungstenite::http::StatusCode;
use async_tungstenite::tungstenite::http::header::HOST;

use super::http::Response;

/// A file of the web client.
struct File {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const FILES: &[File] = &[
    File {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("index.html"),
    },
    File {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("app.js"),
    },
    File {
        path: "/chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("chat.js"),
    },
    File {
        path: "/dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dom.js"),
    },
    File {
        path: "/follow.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("follow.js"),
    },
    File {
        path: "/rooms.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("rooms.js"),
    },
    File {
        path: "/rooms-ui.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("rooms-ui.js"),
    },
    File {
        path: "/members-ui.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("members-ui.js"),
    },
    File {
        path: "/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("app.css"),
    },
    File {
        path: "/icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("icon.svg"),
    },
];

fn file(path: &str) -> Option<&'static File> {
    FILES.iter().find(|file| file.path == path)
}

/// Whether the web client has a file at `path`.
pub(crate) fn serves(path: &str) -> bool {
    file(path).is_some()
}

/// The web client's file at `path` (404 if there is none).
pub(crate) fn answer(path: &str, request: &Request) -> Response {
    let Some(file) = file(path) else {
        return super::http::not_found();
    };
    let host = request.headers().get(HOST).and_then(|h| h.to_str().ok());
    Response {
        status: StatusCode::OK,
        headers: vec![
            ("Content-Type", file.content_type.into()),
            (
                "Content-Security-Policy",
                content_security_policy(host).into(),
            ),
            ("X-Content-Type-Options", "nosniff".into()),
            ("Referrer-Policy", "no-referrer".into()),
            // Always revalidated (and, without validators, fetched again):
            // a few dozen KiB, and never an old script against a new server.
            ("Cache-Control", "no-cache".into()),
        ],
        body: Cow::Borrowed(file.body),
    }
}

/// Only the page's own files, and a WebSocket back to where it came from.
/// CSP Level 3 lets `'self'` match `ws:`/`wss:` on the same host; the host
/// is also named for browsers that predate that rule.
fn content_security_policy(host: Option<&str>) -> String {
    let mut connect = String::from("'self'");
    if let Some(host) = host.filter(|h| is_plain_host(h)) {
        connect.push_str(&format!(" ws://{host} wss://{host}"));
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// Whether `host` is a `Host` header safe to repeat in the policy: a name
/// or IPv4 address, or a bracketed IPv6 address, with an optional port.
fn is_plain_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') || name.ends_with(']') => (name, Some(port)),
        _ => (host, None),
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    };
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, host: Option<&str>) -> Option<Response> {
        let mut request = Request::builder().uri(path);
        if let Some(host) = host {
            request = request.header("Host", host);
        }
        serves(path).then(|| answer(path, &request.body(()).unwrap()))
    }

    fn header<'r>(response: &'r Response, name: &str) -> &'r str {
        let found = response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found
            .map(|(_, v)| v.as_ref())
            .unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn every_file_is_served_with_its_type_and_the_policy() {
        for (path, kind) in [
            ("/", "text/html; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/chat.js", "text/javascript; charset=utf-8"),
            ("/dom.js", "text/javascript; charset=utf-8"),
            ("/follow.js", "text/javascript; charset=utf-8"),
            ("/rooms.js", "text/javascript; charset=utf-8"),
            ("/rooms-ui.js", "text/javascript; charset=utf-8"),
            ("/members-ui.js", "text/javascript; charset=utf-8"),
            ("/app.css", "text/css; charset=utf-8"),
            ("/icon.svg", "image/svg+xml"),
        ] {
            let response = get(path, Some("chat.example:8080")).unwrap();
            assert_eq!(response.status, StatusCode::OK, "{path}");
            assert_eq!(header(&response, "Content-Type"), kind, "{path}");
            assert_eq!(header(&response, "X-Content-Type-Options"), "nosniff");
            assert_eq!(header(&response, "Cache-Control"), "no-cache");
            assert_eq!(
                header(&response, "Content-Security-Policy"),
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                 connect-src 'self' ws://chat.example:8080 wss://chat.example:8080; \
                 base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            );
            assert!(!response.body.is_empty());
        }
        assert!(get("/index.html", None).is_none());
        assert!(get("/app.js/", None).is_none());
    }

    #[test]
    fn the_page_loads_only_its_own_files_and_has_no_inline_code() {
        let page = std::str::from_utf8(get("/", None).unwrap().body.as_ref())
            .unwrap()
            .to_owned();
        assert!(page.contains(r#"<script type="module" src="/app.js"></script>"#));
        assert!(page.contains(r#"<link rel="stylesheet" href="/app.css">"#));
        // Inline code would be blocked by the policy: there must be none.
        assert_eq!(page.matches("<script").count(), 1);
        assert!(!page.contains("<style") && !page.contains("style="));
        let handlers = page.split(" on").skip(1).filter(|rest| {
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert_eq!(handlers.count(), 0, "an inline event handler");
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"));
    }

    #[test]
    fn only_a_plain_host_is_repeated_in_the_policy() {
        for host in [
            "localhost",
            "127.0.0.1:8080",
            "chat.example.com",
            "[::1]:9000",
            "[2001:db8::1]",
        ] {
            assert!(is_plain_host(host), "{host}");
        }
        for host in [
            "",
            "a b",
            "evil; script-src *",
            "host:80:80",
            "host:",
            "host:123456",
            "::1",
            "[]:80",
            "x'y",
        ] {
            assert!(!is_plain_host(host), "{host}");
        }
        assert!(content_security_policy(Some("a; script-src *")).contains("connect-src 'self';"));
        assert!(content_security_policy(None).contains("connect-src 'self';"));
    }
}
