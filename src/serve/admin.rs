//! The operator's endpoints: `/healthz` (the process serves), `/readyz`
//! (it should be sent users) and `/metrics` (Prometheus). Served on the
//! chat's port, or with `--admin-listen` on a listener of their own, which
//! speaks plain HTTP only, for an address that is not public.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::handshake::server::Request;
use async_tungstenite::tungstenite::http::header::ACCEPT;
use async_tungstenite::tungstenite::http::{Method, StatusCode};
use smol::{Async, Executor, Timer};
use tracing::{debug, warn};

use super::http::{self, Response};
use super::metrics::{Metrics, OPENMETRICS_TEXT, PROMETHEUS_TEXT};
use super::readiness::Readiness;

/// Connections the admin listener serves at once; more are dropped. A
/// scraper and a few probes need a handful.
const MAX_ADMIN_CONNECTIONS: usize = 64;

/// Pause after an `accept()` failure such as EMFILE, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Who asks: the public (the chat's port) is told whether the node is
/// ready; the operator (`--admin-listen`) is also told why not, which may
/// name the Redis host or quote an I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Public,
    Operator,
}

/// What the endpoints report on.
#[derive(Debug)]
pub(crate) struct Admin {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) readiness: Arc<Readiness>,
}

impl Admin {
    /// Whether `path` is one of the endpoints.
    pub(crate) fn serves(path: &str) -> bool {
        matches!(path, "/healthz" | "/readyz" | "/metrics")
    }

    /// The answer at `path` (one of [`Admin::serves`]; 404 otherwise) to
    /// `audience`.
    pub(crate) fn answer(&self, path: &str, request: &Request, audience: Audience) -> Response {
        let response = match path {
            "/healthz" => Response::text(StatusCode::OK, "ok\n"),
            "/readyz" => match (self.readiness.status(), audience) {
                (Ok(None), _) | (Ok(Some(_)), Audience::Public) => {
                    Response::text(StatusCode::OK, "ready\n")
                }
                (Ok(Some(degraded)), Audience::Operator) => {
                    Response::text(StatusCode::OK, format!("ready, degraded: {degraded}\n"))
                }
                (Err(_), Audience::Public) => {
                    Response::text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
                (Err(reason), Audience::Operator) => Response::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {reason}\n"),
                ),
            },
            "/metrics" => {
                let openmetrics = wants_openmetrics(request);
                let body = self.metrics.render(openmetrics);
                let kind = if openmetrics {
                    OPENMETRICS_TEXT
                } else {
                    PROMETHEUS_TEXT
                };
                Response {
                    status: StatusCode::OK,
                    headers: vec![("Content-Type", kind.into())],
                    body: body.into_bytes().into(),
                }
            }
            _ => return http::not_found(),
        };
        // Always asked afresh: a cached "ready" would defeat the probe.
        response.with("Cache-Control", "no-store")
    }
}

/// Whether the scraper accepts OpenMetrics (Prometheus asks for it first).
fn wants_openmetrics(request: &Request) -> bool {
    request.headers().get_all(ACCEPT).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',').any(|kind| {
                kind.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/openmetrics-text")
            })
        })
    })
}

/// Serves the endpoints on `listener` (`--admin-listen`) for as long as the
/// executor runs, shutdown included: `/readyz` says 503 while the node
/// drains.
pub(crate) async fn serve(
    listener: Async<TcpListener>,
    admin: Arc<Admin>,
    executor: Arc<Executor<'static>>,
    head_timeout: Duration,
) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!("admin accept failed: {e}; retrying in {ACCEPT_BACKOFF:?}");
                Timer::after(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if open.fetch_add(1, Ordering::AcqRel) >= MAX_ADMIN_CONNECTIONS {
            open.fetch_sub(1, Ordering::AcqRel);
            debug!(%peer, "admin: too many connections; dropped");
            continue;
        }
        let (admin, open) = (admin.clone(), open.clone());
        executor
            .spawn(async move {
                answer_one(tcp, peer, &admin, Instant::now() + head_timeout).await;
                open.fetch_sub(1, Ordering::AcqRel);
            })
            .detach();
    }
}

/// Reads one request and answers it: only the endpoints are here.
async fn answer_one(
    mut tcp: Async<std::net::TcpStream>,
    peer: SocketAddr,
    admin: &Admin,
    deadline: Instant,
) {
    let head = match http::read_head(&mut tcp, deadline).await {
        Ok(head) => head,
        Err(error) => {
            debug!(%peer, "admin: no request: {error}");
            if let Some(answer) = error.answer() {
                http::send(&mut tcp, &answer, false).await;
            }
            return;
        }
    };
    let request = &head.request;
    let head_only = request.method() == Method::HEAD;
    let response = match http::allowed(request) {
        Err(refused) => refused,
        Ok(()) => admin.answer(request.uri().path(), request, Audience::Operator),
    };
    http::send(&mut tcp, &response, head_only).await;
}

#[cfg(test)]
mod tests {
    use super::super::readiness::Check;
    use super::*;

    fn get(admin: &Admin, path: &str, accept: Option<&str>) -> Response {
        let mut request = Request::builder().uri(path);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        admin.answer(path, &request.body(()).unwrap(), Audience::Operator)
    }

    fn header<'r>(response: &'r Response, name: &str) -> &'r str {
        let found = response.headers.iter().find(|(n, _)| *n == name);
        found.map_or("", |(_, v)| v.as_ref())
    }

    #[test]
    fn each_endpoint_answers_with_its_type_and_is_never_cached() {
        let admin = Admin {
            metrics: Arc::new(Metrics::new()),
            readiness: Arc::new(Readiness::new()),
        };
        let health = get(&admin, "/healthz", None);
        assert_eq!(
            (health.status, &*health.body),
            (StatusCode::OK, &b"ok\n"[..])
        );
        let ready = get(&admin, "/readyz", None);
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(&*ready.body, b"not ready: starting\n");
        admin.readiness.pass(Check::Listening);
        assert_eq!(get(&admin, "/readyz", None).status, StatusCode::OK);
        admin
            .readiness
            .fail(Check::Store, "cannot save: Input/output error");
        let request = Request::builder().uri("/readyz").body(()).unwrap();
        let public = admin.answer("/readyz", &request, Audience::Public);
        assert_eq!(
            (public.status, &*public.body),
            (StatusCode::SERVICE_UNAVAILABLE, &b"not ready\n"[..]),
            "the public is not told why"
        );
        assert_eq!(
            &*get(&admin, "/readyz", None).body,
            b"not ready: cannot save: Input/output error\n"
        );
        for response in [&health, &ready] {
            assert_eq!(
                header(response, "Content-Type"),
                "text/plain; charset=utf-8"
            );
            assert_eq!(header(response, "Cache-Control"), "no-store");
        }
        let text = get(&admin, "/metrics", None);
        assert_eq!(header(&text, "Content-Type"), PROMETHEUS_TEXT);
        let open = get(
            &admin,
            "/metrics",
            Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
        );
        assert_eq!(header(&open, "Content-Type"), OPENMETRICS_TEXT);
        assert!(open.body.ends_with(b"# EOF\n"));
        assert_eq!(get(&admin, "/", None).status, StatusCode::NOT_FOUND);
    }
}
