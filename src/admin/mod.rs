//! The admin listener (spec §11): HTTP/1.1 for probes, Prometheus, the JSON API and the
//! web console; plain HTTP on loopback, or admin mTLS (`mtls.rs`) anywhere.
//!
//! - `GET /healthz`: 200 `ok` while the process serves at all (liveness).
//! - `GET /readyz`: 200 when the store answers a cheap read and the SHS listener is
//!   serving, else 503 with the reason (readiness: take the node out of a load balancer
//!   while it starts, drains or has lost its store).
//! - `GET /metrics`: the [`Metrics`](crate::metrics::Metrics) in the Prometheus text format.
//! - `GET /api/…`: the JSON API (message search, detail, quarantine); see `api.rs`.
//! - `POST /api/messages/{id}/{action}`, `GET /api/audit`: admin actions and their audit
//!   log; see `actions.rs`.
//! - `GET /console…` (and `POST` of its action forms): the web console, server-rendered
//!   HTML; see `console/`.
//!
//! Plain HTTP has no authentication, so the configuration allows it on loopback only; any
//! other address is served over admin mTLS, where only configured admin identities get in.
//! Shuts down on the same token as the SHS listener.

mod actions;
mod actor;
mod api;
mod console;
mod mtls;
mod routes;
mod search_params;

pub use actor::Actor;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::listener::next_connection;
use crate::tls::ReloadableServerConfig;

/// Admin requests are probes and scrapes: a few connections suffice, and a bound keeps a
/// runaway local script from taking file descriptors the SHS listener needs.
const MAX_CONNECTIONS: usize = 32;

/// The largest request body the admin listener reads (console forms are a few hundred
/// bytes; nothing else has a body).
const MAX_BODY: usize = 16 * 1024;

/// How long a client has to send its request head; probes are quick.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the SHS listener is serving, as `/readyz` reports it. Set by the code that runs
/// the SHS listener (the admin side cannot see it).
#[derive(Debug, Default)]
pub struct Readiness {
    shs_serving: AtomicBool,
}

impl Readiness {
    /// A readiness that reports "not serving" until told otherwise.
    pub fn new() -> Arc<Readiness> {
        Arc::new(Readiness::default())
    }

    /// Records whether the SHS listener accepts connections.
    pub fn set_shs_serving(&self, serving: bool) {
        self.shs_serving.store(serving, Ordering::Release);
    }

    /// True while the SHS listener accepts connections.
    pub fn shs_serving(&self) -> bool {
        self.shs_serving.load(Ordering::Acquire)
    }
}

/// The admin listener's shared state.
pub struct AdminServer {
    broker: Arc<Broker>,
    readiness: Arc<Readiness>,
    /// The node's TLS configuration, for admin mTLS (`[admin] tls`); `None` serves plain
    /// HTTP, which [`AdminServer::run`] refuses to do when the configuration asks for TLS.
    tls: Option<Arc<ReloadableServerConfig>>,
    console: console::Console,
}

impl AdminServer {
    /// A plain-HTTP admin server over `broker`'s store and metrics (loopback only).
    pub fn new(broker: Arc<Broker>, readiness: Arc<Readiness>) -> Arc<AdminServer> {
        AdminServer::build(broker, readiness, None)
    }

    /// An admin server that serves admin mTLS with `tls` (the node's own certificate,
    /// client CAs and CRLs, reloaded with them on SIGHUP) when `[admin] tls` is on, and
    /// plain HTTP otherwise.
    pub fn with_tls(
        broker: Arc<Broker>,
        readiness: Arc<Readiness>,
        tls: Arc<ReloadableServerConfig>,
    ) -> Arc<AdminServer> {
        AdminServer::build(broker, readiness, Some(tls))
    }

    fn build(
        broker: Arc<Broker>,
        readiness: Arc<Readiness>,
        tls: Option<Arc<ReloadableServerConfig>>,
    ) -> Arc<AdminServer> {
        Arc::new(AdminServer {
            broker,
            readiness,
            tls,
            console: console::Console::new(),
        })
    }

    /// Serves `listener` until `shutdown` fires, then gives open requests the configured
    /// drain deadline. With `[admin] tls` on, every connection first completes a TLS
    /// handshake with a verified client certificate (`mtls.rs`).
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let tls = match (self.broker.config().admin.tls, &self.tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(Arc::clone(tls)),
            (true, None) => {
                // Never fall back to plain HTTP where the operator asked for mTLS.
                tracing::error!(
                    "admin tls is configured but no tls configuration was given; the admin listener does not serve"
                );
                return;
            }
        };
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Some((permit, stream, peer)) =
                next_connection(&listener, &connections, &shutdown, "admin").await
            else {
                break;
            };
            let server = Arc::clone(&self);
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => {
                        let caller = Caller::Admin(Actor::Loopback { peer });
                        server.serve(TokioIo::new(stream), caller, watcher).await;
                    }
                    Some(tls) => {
                        if let Some((stream, caller)) = server.admit(&tls, stream, peer).await {
                            server.serve(TokioIo::new(stream), caller, watcher).await;
                        }
                    }
                }
                drop(permit);
            });
        }
        drop(listener);
        let deadline = self.broker.config().drain_timeout;
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(deadline) => tracing::warn!("admin drain deadline passed"),
        }
    }

    /// Serves HTTP/1.1 on one accepted (and, with mTLS, admitted) connection.
    async fn serve<IO>(
        self: Arc<Self>,
        io: TokioIo<IO>,
        caller: Caller,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let caller = Arc::new(caller);
        let service = service_fn(move |request| {
            let server = Arc::clone(&self);
            let caller = Arc::clone(&caller);
            async move {
                let response = match caller.as_ref() {
                    Caller::Admin(actor) => match read_body(request).await {
                        Ok(request) => server.handle(request, actor).await,
                        Err(response) => response,
                    },
                    Caller::NotAdmin => mtls::forbidden(),
                };
                Ok::<_, Infallible>(response)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let connection = builder.serve_connection(io, service);
        if let Err(err) = watcher.watch(connection).await {
            tracing::debug!(error = %err, "admin connection ended with an error");
        }
    }
}

/// Reads a request's body whole, up to [`MAX_BODY`] (admin requests are small: a console
/// form at most); a larger or broken body is answered here (413, 400).
async fn read_body(request: Request<Incoming>) -> Result<Request<Bytes>, Response<Full<Bytes>>> {
    let (parts, body) = request.into_parts();
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(Request::from_parts(parts, collected.to_bytes())),
        Err(err) => {
            let too_large = err.downcast_ref::<LengthLimitError>().is_some();
            tracing::info!(error = %err, "admin request body refused");
            let (status, text) = if too_large {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
            } else {
                (StatusCode::BAD_REQUEST, "request body unreadable\n")
            };
            let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
            *response.status_mut() = status;
            Err(response)
        }
    }
}

/// Who is at the other end of an admin connection, decided once per connection.
enum Caller {
    /// Someone allowed to use the admin listener.
    Admin(Actor),
    /// A verified client certificate that is no admin identity: every request gets 403.
    NotAdmin,
}

#[cfg(test)]
mod tests;
