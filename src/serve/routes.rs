//! Where a plain HTTP request (not a WebSocket upgrade) on the chat's port
//! goes: the web client's files (`web`), the operator's endpoints (`admin`,
//! unless `--admin-listen` serves them elsewhere), or 404.

use async_tungstenite::tungstenite::handshake::server::Request;

use super::admin::{Admin, Audience};
use super::http::{self, Response};
use super::web;

/// The answer to a request that is not a WebSocket upgrade. `admin` is set
/// when the operator's endpoints are served on this port (no
/// `--admin-listen`); otherwise they are 404 here. Either way `/readyz`
/// here tells the public only whether the node is ready, not why not.
pub(crate) fn answer(request: &Request, admin: Option<&Admin>) -> Response {
    if let Err(refused) = http::allowed(request) {
        return refused;
    }
    match (request.uri().path(), admin) {
        (path, _) if web::serves(path) => web::answer(path, request),
        (path, Some(admin)) if Admin::serves(path) => admin.answer(path, request, Audience::Public),
        _ => http::not_found(),
    }
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
        let answer = |request: &Request| answer(request, Some(&admin));
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
            let elsewhere = super::answer(&request("GET", path), None);
            assert_eq!(elsewhere.status, StatusCode::NOT_FOUND, "{path}");
        }
    }
}
