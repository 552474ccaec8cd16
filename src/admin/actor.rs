//! Who makes an admin request. Every admin action is recorded in the audit log with its
//! actor (spec §11), so the type names exactly what the listener knows about the caller.

use std::fmt;
use std::net::SocketAddr;

use crate::tls::identity::Fingerprint;

/// The caller of one admin request, established once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A plain-HTTP connection to a loopback admin listener: anyone with a shell on the
    /// host. The peer address is all there is to record.
    Loopback {
        /// The connecting socket.
        peer: SocketAddr,
    },
    /// An admin identity authenticated by its client certificate (admin mTLS).
    Admin {
        /// The configured name of the admin identity.
        name: String,
        /// The SHA-256 fingerprint of the certificate it presented.
        fingerprint: Fingerprint,
    },
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Loopback { peer } => write!(f, "loopback {peer}"),
            Actor::Admin { name, fingerprint } => write!(f, "admin {name} ({fingerprint})"),
        }
    }
}
