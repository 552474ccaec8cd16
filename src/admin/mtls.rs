//! Admin mTLS: who may use an admin listener that is not plain loopback HTTP.
//!
//! The handshake is the SHS listener's own ([`ReloadableServerConfig`]): the node's
//! certificate, a client certificate *required* and verified against the configured client
//! CAs and CRLs, so no certificate, an unknown issuer, an expired or a revoked certificate
//! never gets an HTTP exchange at all. A certificate that passes is then looked up in
//! `[[admin.identities]]`; one that is not an admin identity (a portal's or a business
//! system's SHS certificate, from the same CA) is kept on the connection only to answer
//! 403 to every request, so the operator sees why instead of a bare handshake failure —
//! and no handler, and so no admin data, is ever reached with it.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::tls::{IdentityMap, PeerIdentity, ReloadableServerConfig};

use super::{Actor, AdminServer, Caller, HEADER_TIMEOUT};

impl AdminServer {
    /// Completes the TLS handshake of an accepted connection and decides who the caller
    /// is; `None` when the handshake failed (logged) and the connection is dropped.
    pub(super) async fn admit(
        &self,
        tls: &ReloadableServerConfig,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(TlsStream<TcpStream>, Caller)> {
        let handshake = tokio::time::timeout(HEADER_TIMEOUT, tls.acceptor().accept(stream));
        let stream = match handshake.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                tracing::info!(peer.addr = %peer, reason = %err, "admin tls handshake refused");
                return None;
            }
            Err(_) => {
                tracing::info!(peer.addr = %peer, "admin tls handshake timed out");
                return None;
            }
        };
        let identity = PeerIdentity::from_connection(stream.get_ref().1, &IdentityMap::new());
        let caller = match identity {
            Some(identity) => self.caller_of(&identity, peer),
            None => Caller::NotAdmin,
        };
        Some((stream, caller))
    }

    /// The admin identity of a verified certificate, or [`Caller::NotAdmin`] (logged with
    /// the certificate's subject and fingerprint, so a refused operator can be configured).
    fn caller_of(&self, identity: &PeerIdentity, peer: SocketAddr) -> Caller {
        let fingerprint = identity.fingerprint();
        let admin = &self.broker.config().admin;
        match admin.identity(&fingerprint, identity.org()) {
            Some(found) => {
                tracing::debug!(peer.addr = %peer, admin = %found.name, "admin connection");
                Caller::Admin(Actor::Admin {
                    name: found.name.clone(),
                    fingerprint,
                })
            }
            None => {
                tracing::warn!(
                    peer.addr = %peer,
                    subject = identity.subject(),
                    fingerprint = %fingerprint,
                    "admin connection refused: the certificate is not an admin identity"
                );
                Caller::NotAdmin
            }
        }
    }
}

/// The answer to every request of a connection whose certificate is no admin identity.
pub(super) fn forbidden() -> Response<Full<Bytes>> {
    let body = "403 forbidden: this client certificate is not an admin identity \
                ([[admin.identities]] in the configuration)\n";
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
