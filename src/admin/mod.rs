//! The admin listener (spec §11): plain HTTP/1.1 on loopback, for probes and Prometheus.
//!
//! - `GET /healthz`: 200 `ok` while the process serves at all (liveness).
//! - `GET /readyz`: 200 when the store answers a cheap read and the SHS listener is
//!   serving, else 503 with the reason (readiness: take the node out of a load balancer
//!   while it starts, drains or has lost its store).
//! - `GET /metrics`: the [`Metrics`](crate::metrics::Metrics) in the Prometheus text format.
//! - `GET /api/…`: the JSON API (message search, detail, quarantine); see [`api`].
//! - `POST /api/messages/{id}/{action}`, `GET /api/audit`: admin actions and their audit
//!   log; see [`actions`].
//!
//! No authentication: the configuration refuses a non-loopback address until admin mTLS
//! identities are built. Shuts down on the same token as the SHS listener.

mod actions;
mod actor;
mod api;
mod routes;

pub use actor::Actor;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

/// Admin requests are probes and scrapes: a few connections suffice, and a bound keeps a
/// runaway local script from taking file descriptors the SHS listener needs.
const MAX_CONNECTIONS: usize = 32;

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
}

impl AdminServer {
    /// An admin server over `broker`'s store and metrics.
    pub fn new(broker: Arc<Broker>, readiness: Arc<Readiness>) -> Arc<AdminServer> {
        Arc::new(AdminServer { broker, readiness })
    }

    /// Serves `listener` until `shutdown` fires, then gives open requests the configured
    /// drain deadline.
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&connections).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = shutdown.cancelled() => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => break,
            };
            let server = Arc::clone(&self);
            let actor = Arc::new(Actor::Loopback { peer });
            let service = service_fn(move |request| {
                let server = Arc::clone(&server);
                let actor = Arc::clone(&actor);
                async move { Ok::<_, Infallible>(server.handle(request, &actor).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let watched = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(err) = watched.await {
                    tracing::debug!(error = %err, "admin connection ended with an error");
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
}

#[cfg(test)]
mod tests;
