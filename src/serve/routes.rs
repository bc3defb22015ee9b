//! Where a plain HTTP request (not a WebSocket upgrade) on the chat's port
//! goes: the web client's files (`web`) and its origin check, the
//! operator's endpoints (`admin`, unless `--admin-listen` serves them
//! elsewhere), or 404.

use async_tungstenite::tungstenite::handshake::server::Request;
use async_tungstenite::tungstenite::http::StatusCode;
use async_tungstenite::tungstenite::http::header::{HOST, HeaderValue};

use super::admin::{Admin, Audience};
use super::admission::AllowedOrigins;
use super::http::{self, Response};
use super::web;

/// Where the web client asks whether its origin may open a WebSocket here.
const ORIGIN_CHECK: &str = "/origin-check";

/// The answer to a request that is not a WebSocket upgrade. `admin` is set
/// when the operator's endpoints are served on this port (no
/// `--admin-listen`); otherwise they are 404 here. Either way `/readyz`
/// here tells the public only whether the node is ready, not why not.
pub(crate) fn answer(
    request: &Request,
    admin: Option<&Admin>,
    origins: &AllowedOrigins,
) -> Response {
    if let Err(refused) = http::allowed(request) {
        return refused;
    }
    match (request.uri().path(), admin) {
        (path, _) if web::serves(path) => web::answer(path, request),
        (ORIGIN_CHECK, _) => origin_check(request, origins),
        (path, Some(admin)) if Admin::serves(path) => admin.answer(path, request, Audience::Public),
        _ => http::not_found(),
    }
}

/// `GET /origin-check?origin=ORIGIN`: whether a page at ORIGIN (the web
/// client's own, `location.origin`) may open a WebSocket here, 200, or not,
/// 403, as the upgrade would answer. A browser shows the page's script the
/// status of a fetch, never that of a refused upgrade; and it sends no
/// `Origin` with a same-origin GET, hence the parameter. It tells nothing
/// that an upgrade with that Origin would not.
fn origin_check(request: &Request, origins: &AllowedOrigins) -> Response {
    let origin = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("origin="))
        .and_then(percent_decode)
        .and_then(|origin| HeaderValue::from_str(&origin).ok());
    let Some(origin) = origin else {
        return Response::text(
            StatusCode::BAD_REQUEST,
            "say which origin: /origin-check?origin=https://chat.example.com\n",
        );
    };
    if origins.allows(Some(&origin), request.headers().get(HOST)) {
        Response::text(StatusCode::OK, "this page's origin may connect\n")
    } else {
        Response::text(
            StatusCode::FORBIDDEN,
            "this page's origin may not connect to this chat (--allowed-origins)\n",
        )
    }
    .with("Cache-Control", "no-store")
}

/// A query parameter's value, `%XX` escapes decoded; `None` if they do not
/// make UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (first, tail) {
            (b'%', [high, low, after @ ..]) if hex(*high).is_some() && hex(*low).is_some() => {
                let value = hex(*high)? * 16 + hex(*low)?;
                bytes.push(u8::try_from(value).ok()?);
                rest = after;
            }
            (b'+', _) => {
                bytes.push(b' ');
                rest = tail;
            }
            _ => {
                bytes.push(first);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_tungstenite::tungstenite::http::StatusCode;

    use super::super::metrics::Metrics;
    use super::super::readiness::Readiness;
    use super::*;

    #[test]
    fn the_web_client_and_the_endpoints_are_routed_and_other_paths_are_404() {
        let request = |method: &str, target: &str| {
            Request::builder()
                .method(method)
                .uri(target)
                .body(())
                .unwrap()
        };
        let admin = Admin {
            metrics: Arc::new(Metrics::new()),
            readiness: Arc::new(Readiness::new()),
        };
        let answer = |request: &Request| answer(request, Some(&admin), &AllowedOrigins::SameHost);
        let page = answer(&request("GET", "/?from=a-link"));
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.headers
                .contains(&("Content-Type", "text/html; charset=utf-8".into()))
        );
        assert_eq!(answer(&request("HEAD", "/app.js")).status, StatusCode::OK);
        assert_eq!(
            answer(&request("GET", "/nothing")).status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            answer(&request("POST", "/")).status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(answer(&request("GET", "/healthz")).status, StatusCode::OK);
        assert_eq!(
            answer(&request("POST", "/metrics")).status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        admin.readiness.fail(
            super::super::readiness::Check::Store,
            "cannot save: disk full",
        );
        let readyz = answer(&request("GET", "/readyz"));
        assert_eq!(
            (readyz.status, &*readyz.body),
            (StatusCode::SERVICE_UNAVAILABLE, &b"not ready\n"[..]),
            "no reasons on the public port"
        );
        // With --admin-listen, the endpoints are elsewhere.
        for path in ["/healthz", "/readyz", "/metrics"] {
            let elsewhere = super::answer(&request("GET", path), None, &AllowedOrigins::SameHost);
            assert_eq!(elsewhere.status, StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn the_origin_check_answers_as_the_upgrade_would() {
        let check = |target: &str, origins: &str| {
            let request = Request::builder()
                .uri(target)
                .header("Host", "127.0.0.1:8080")
                .body(())
                .unwrap();
            answer(&request, None, &origins.parse().unwrap()).status
        };
        let own = "/origin-check?origin=http%3A%2F%2F127.0.0.1%3A8080";
        assert_eq!(check(own, "self"), StatusCode::OK);
        assert_eq!(
            check("/origin-check?origin=http://127.0.0.1:8080", "self"),
            StatusCode::OK
        );
        assert_eq!(
            check("/origin-check?origin=https://evil.example", "self"),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            check(own, "https://chat.example.com"),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            check(
                "/origin-check?x=1&origin=https%3A%2F%2Fchat.example.com",
                "https://chat.example.com"
            ),
            StatusCode::OK
        );
        assert_eq!(check(own, "*"), StatusCode::OK);
        assert_eq!(check("/origin-check", "self"), StatusCode::BAD_REQUEST);
        assert_eq!(
            check("/origin-check?origin=%FF", "self"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(percent_decode("a%2"), Some("a%2".into()));
    }
}
