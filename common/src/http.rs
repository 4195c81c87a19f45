//! A small plain-HTTP/1.1 server (feature `net`): the replayer's `/metrics`
//! and `/healthz`, and the relay's health port (`/healthz`, `/version`).
//! Each request is answered by a route from its method and path; nothing
//! reads a request body.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long the accept loop pauses after a failed accept: out of
/// descriptors, accept fails at once and the loop would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// One answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// `status` with a `text/plain` body.
    pub fn text(status: u16, body: &'static str) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            body: Bytes::from_static(body.as_bytes()),
        }
    }
}

/// Serves `listener` until the returned task is aborted: every connection
/// on a task of its own, each request answered by `route(method, path)`.
pub fn serve<F>(listener: TcpListener, route: F) -> JoinHandle<()>
where
    F: Fn(&str, &str) -> Reply + Send + Sync + 'static,
{
    let route = Arc::new(route);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            };
            let route = route.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let reply = route(req.method().as_str(), req.uri().path());
                    async move { Ok::<_, Infallible>(response(reply)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// The response of `r`.
fn response(r: Reply) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(r.content_type),
    );
    resp
}
