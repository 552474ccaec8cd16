//! The public listener: TCP accept → TLS handshake (client certificate required) → the
//! caller's identity, once per connection → HTTP/1.1 keep-alive with hyper → handlers.
//!
//! Shutdown: when the token fires, accepting stops, idle keep-alive connections close and
//! in-flight requests get the drain deadline to finish.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::broker::{Broker, BrokerError, Caller};
use crate::listener::next_connection;
use crate::metrics::{EndpointLabel, Limit, TlsFailure};
use crate::protocol::ErrorCode;
use crate::protocol::urn::OrgNumber;
use crate::tls::{IdentityMap, PeerIdentity, ReloadableServerConfig};

use super::endpoint::{Endpoint, RouteError, route};
use super::error::{ApiError, ErrorContext, error_response};
use super::handlers;
use crate::body::ResponseBody;

/// Everything the listener needs, shared by all connections.
pub struct Server {
    broker: Arc<Broker>,
    tls: Arc<ReloadableServerConfig>,
    connections: Arc<Semaphore>,
    per_identity: Mutex<HashMap<OrgNumber, Arc<Semaphore>>>,
}

impl Server {
    /// A server for `broker`, terminating TLS with `tls`.
    pub fn new(broker: Arc<Broker>, tls: Arc<ReloadableServerConfig>) -> Arc<Server> {
        let max_connections = broker.config().limits.max_connections;
        Arc::new(Server {
            broker,
            tls,
            connections: Arc::new(Semaphore::new(max_connections)),
            per_identity: Mutex::new(HashMap::new()),
        })
    }

    /// Serves `listener` until `shutdown` fires, then drains within the configured
    /// deadline. The listener is bound by the caller (port 0 in tests).
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let graceful = GracefulShutdown::new();
        loop {
            let Some((permit, stream, peer)) =
                next_connection(&listener, &self.connections, &shutdown, "shs").await
            else {
                break;
            };
            // Small request/response exchanges: do not let Nagle hold back the answer.
            let _ = stream.set_nodelay(true);
            let server = Arc::clone(&self);
            let watcher = graceful.watcher();
            let span =
                tracing::info_span!("conn", peer.addr = %peer, peer.org = tracing::field::Empty);
            tokio::spawn(
                async move {
                    server.connection(stream, peer, permit, watcher).await;
                }
                .instrument(span),
            );
        }
        drop(listener);
        let deadline = self.broker.config().drain_timeout;
        tracing::info!(deadline_secs = deadline.as_secs(), "draining connections");
        tokio::select! {
            _ = graceful.shutdown() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(deadline) => tracing::warn!("drain deadline passed; closing the remaining connections"),
        }
    }

    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        _permit: OwnedSemaphorePermit,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let _open = self.broker.metrics().connection_opened();
        let limits = &self.broker.config().limits;
        let handshake =
            tokio::time::timeout(limits.header_timeout, self.tls.acceptor().accept(stream));
        let tls = match handshake.await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                let reason = tls_failure(&err);
                self.broker.metrics().tls_handshake_failed(reason);
                tracing::info!(reason = %err, "tls handshake refused");
                return;
            }
            Err(_) => {
                let metrics = self.broker.metrics();
                metrics.tls_handshake_failed(TlsFailure::Timeout);
                tracing::info!("tls handshake timed out");
                return;
            }
        };
        let identity = PeerIdentity::from_connection(tls.get_ref().1, &IdentityMap::new());
        let caller = identity
            .as_ref()
            .and_then(|identity| Caller::resolve(identity, &self.broker.config().clients));
        if let Some(caller) = &caller {
            tracing::Span::current().record("peer.org", tracing::field::display(caller.org));
        }
        let context = Arc::new(Connection {
            server: Arc::clone(&self),
            caller,
            subject: identity.map(|identity| identity.subject().to_owned()),
            peer,
        });
        let service = service_fn(move |request| {
            let context = Arc::clone(&context);
            async move { Ok::<_, Infallible>(context.handle(request).await) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true);
        let connection = builder.serve_connection(TokioIo::new(tls), service);
        if let Err(err) = watcher.watch(connection).await {
            tracing::debug!(error = %err, "connection ended with an error");
        }
    }

    /// Takes one of the caller organisation's concurrent-request slots (spec §12).
    fn request_slot(&self, org: OrgNumber) -> Option<OwnedSemaphorePermit> {
        let limit = self.broker.config().limits.max_requests_per_identity;
        let semaphore = {
            let mut map = self
                .per_identity
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(
                map.entry(org)
                    .or_insert_with(|| Arc::new(Semaphore::new(limit))),
            )
        };
        let slot = semaphore.try_acquire_owned().ok();
        if slot.is_none() {
            self.broker.metrics().limit_hit(Limit::PerIdentity);
        }
        slot
    }
}

/// One TLS connection and its caller.
struct Connection {
    server: Arc<Server>,
    caller: Option<Caller>,
    subject: Option<String>,
    peer: SocketAddr,
}

impl Connection {
    async fn handle(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let bytes_in = Bytes(hyper::body::Body::size_hint(request.body()).exact());
        let prefix = &self.server.broker.config().path_prefix;
        let endpoint = endpoint_label(route(method.as_str(), &path, prefix));
        let span = tracing::info_span!(
            "request",
            endpoint = tracing::field::Empty,
            shs.txid = tracing::field::Empty
        );
        let response = match self.dispatch(request).instrument(span.clone()).await {
            Ok(response) => response,
            Err((error, context)) => span.in_scope(|| error_response(&error, &context)),
        };
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        let bytes_out = Bytes(hyper::body::Body::size_hint(response.body()).exact());
        if let Some(tx_id) = response
            .headers()
            .get("x-shs-txid")
            .and_then(|v| v.to_str().ok())
        {
            span.record("shs.txid", tx_id);
        }
        let metrics = self.server.broker.metrics();
        metrics.request_answered(endpoint, status, elapsed);
        span.in_scope(|| {
            tracing::info!(
                method = %method,
                path = %path,
                status,
                caller = self.caller.as_ref().map(|c| c.org.to_string()).unwrap_or_default(),
                peer = %self.peer,
                bytes_in = %bytes_in,
                bytes_out = %bytes_out,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            )
        });
        response
    }

    async fn dispatch(&self, request: Request<Incoming>) -> handlers::Answer {
        let broker = &self.server.broker;
        let endpoint = route(
            request.method().as_str(),
            request.uri().path(),
            &broker.config().path_prefix,
        )
        .map_err(|err| {
            let error = match err {
                RouteError::NotFound => ApiError::NoSuchPath,
                RouteError::MethodNotAllowed { allow } => ApiError::MethodNotAllowed { allow },
                RouteError::BadAddress(address) => ApiError::Broker(BrokerError::BadRequest(
                    format!("{address:?} is not an SHS address"),
                )),
            };
            (error, ErrorContext::default())
        })?;
        let caller = self.caller.as_ref().ok_or_else(|| {
            let reason = match &self.subject {
                Some(subject) => {
                    format!("the client certificate {subject:?} names no organisation")
                }
                None => "the client certificate could not be read".to_owned(),
            };
            (
                ApiError::Broker(BrokerError::Forbidden {
                    code: ErrorCode::OtherError,
                    reason,
                }),
                ErrorContext::default(),
            )
        })?;
        let slot = self.server.request_slot(caller.org).ok_or_else(|| {
            (
                ApiError::Broker(BrokerError::Unavailable(format!(
                    "{} has more than {} requests in flight",
                    caller.org,
                    broker.config().limits.max_requests_per_identity
                ))),
                ErrorContext::default(),
            )
        })?;
        let raw_query = request.uri().query().map(str::to_owned);
        // The send and ack handlers' futures are boxed: inline they made this future (and
        // the one hyper keeps per request, and moves twice) about 17 KiB.
        let answer = match endpoint {
            Endpoint::Send => {
                tracing::Span::current().record("endpoint", "send");
                let idle = broker.config().limits.body_idle_timeout;
                Box::pin(handlers::send(broker, caller, request, idle)).await
            }
            Endpoint::List { mailbox, product } => {
                tracing::Span::current().record("endpoint", "list");
                handlers::list(broker, caller, &mailbox, product, raw_query.as_deref()).await
            }
            Endpoint::Fetch { mailbox, tx_id } => {
                tracing::Span::current().record("endpoint", "fetch");
                tracing::Span::current().record("shs.txid", tx_id.as_str());
                handlers::fetch(broker, caller, &mailbox, &tx_id).await
            }
            Endpoint::Ack { mailbox, tx_id } => {
                tracing::Span::current().record("endpoint", "ack");
                tracing::Span::current().record("shs.txid", tx_id.as_str());
                Box::pin(handlers::ack(
                    broker,
                    caller,
                    &mailbox,
                    &tx_id,
                    raw_query.as_deref(),
                ))
                .await
            }
        };
        // A fetch answers as soon as its body starts streaming: the response body keeps the
        // slot until its last byte is sent (or the client goes away), so that a streaming
        // fetch counts as a request in flight.
        answer.map(|response| response.map(|body| crate::body::holding(body, slot)))
    }
}

/// The metrics label of a routed request.
fn endpoint_label(routed: Result<Endpoint, RouteError>) -> EndpointLabel {
    match routed {
        Ok(Endpoint::Send) => EndpointLabel::Send,
        Ok(Endpoint::List { .. }) => EndpointLabel::List,
        Ok(Endpoint::Fetch { .. }) => EndpointLabel::Fetch,
        Ok(Endpoint::Ack { .. }) => EndpointLabel::Ack,
        Err(_) => EndpointLabel::Other,
    }
}

/// Why a handshake failed, read from the rustls error tokio-rustls wraps in the I/O error.
fn tls_failure(err: &std::io::Error) -> TlsFailure {
    use rustls::{CertificateError, Error};
    let Some(err) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
    else {
        return TlsFailure::Other;
    };
    match err {
        Error::NoCertificatesPresented => TlsFailure::NoCertificate,
        Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsFailure::Expired,
            CertificateError::Revoked => TlsFailure::Revoked,
            _ => TlsFailure::Other,
        },
        _ => TlsFailure::Other,
    }
}

/// A body size for the request log: the byte count, or `streamed` when it is not known in
/// advance (a chunked upload, a fetch streamed from the store).
struct Bytes(Option<u64>);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(count) => write!(f, "{count}"),
            None => f.write_str("streamed"),
        }
    }
}
