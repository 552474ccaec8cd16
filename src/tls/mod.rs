//! Mutual TLS for the SHS listeners and clients (spec §2), and the caller's identity.
//!
//! SHS authenticates organisations by client certificate, so this layer is where trust is
//! decided: the server refuses every handshake whose client certificate does not chain to a
//! configured client CA, is outside its validity period or is revoked by a configured CRL.
//! What survives the handshake is turned, once per connection, into a [`PeerIdentity`] that
//! the HTTP layer authorises against.
//!
//! - [`pem`]: loading certificates, keys and CRLs from PEM files (and from memory).
//! - [`server`]: the listener's `rustls::ServerConfig`, with client certificates required.
//! - [`known_chains`]: the client-certificate verifier that verifies a caller's chain once.
//! - [`revocation`]: CRLs of the client CAs, their signatures checked once at load.
//! - [`client`]: the `rustls::ClientConfig` for the CLI client and node-to-node push.
//! - [`identity`]: [`PeerIdentity`], [`Fingerprint`] and the configured [`IdentityMap`].
//!
//! Every error made while *building* a configuration is a [`TlsError`], the operator's fault
//! (a wrong path, a broken PEM file, a key that does not match its certificate). Errors made
//! by a *peer* surface as failed handshakes (`rustls::Error`) or as an
//! [`IdentityError`], never as a `TlsError`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;

pub mod client;
pub mod identity;
pub mod known_chains;
pub mod pem;
pub mod revocation;
pub mod server;

#[cfg(test)]
pub(crate) mod tests;

pub use client::{
    ClientAuth, ClientTlsFiles, ClientTlsMaterial, client_config, client_config_from_material,
};
pub use identity::{
    Fingerprint, FingerprintError, IdentityError, IdentityMap, OrgSource, PeerIdentity,
};
pub use pem::{PemError, load_certs, load_crls, load_private_key, load_roots};
pub use server::{
    ReloadableServerConfig, ServerTlsFiles, ServerTlsMaterial, server_config,
    server_config_from_material,
};

/// The only application protocol spoken over SHS connections, offered and accepted by ALPN.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// A TLS configuration could not be built. Every variant is a configuration fault: the
/// operator named a file that is missing or broken, or files that do not belong together.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", file.display())]
    Read {
        /// The file as configured.
        file: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file was read but does not hold what it should.
    #[error("{}: {cause}", file.display())]
    Pem {
        /// The file as configured.
        file: PathBuf,
        /// What is wrong with its content.
        cause: PemError,
    },
    /// A certificate in a CA file cannot be used as a trust anchor.
    #[error("{}: certificate cannot be a trust anchor: {source}", file.display())]
    TrustAnchor {
        /// The CA file as configured.
        file: PathBuf,
        /// Why rustls refused it.
        source: rustls::Error,
    },
    /// A server refuses to start without client CAs: no client could ever connect.
    #[error("no client CA configured: every client certificate would be refused")]
    NoClientCa,
    /// A client without trust roots could never verify a server.
    #[error("no trust roots configured: no server certificate could be verified")]
    NoRoots,
    /// A client certificate was configured without its key, or a key without a certificate.
    #[error("client certificate and key must be configured together")]
    IncompleteClientIdentity,
    /// A CRL names a client CA as its issuer, but that CA's key does not verify it (a CRL
    /// of another CA of the same name, or a damaged one).
    #[error("CRL #{number} (issuer {issuer}) is not signed by the client CA of that name")]
    CrlNotSigned {
        /// Position of the CRL among all configured CRLs, from 1.
        number: usize,
        /// The issuer the CRL names.
        issuer: String,
    },
    /// The client CAs and CRLs do not make a verifier (for example a CRL rustls cannot use).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The certificate chain and private key files are not usable together.
    #[error(
        "{} and {}: certificate and private key do not form a usable pair: {source}",
        chain.display(),
        key.display()
    )]
    KeyPairFiles {
        /// The certificate chain file.
        chain: PathBuf,
        /// The private key file.
        key: PathBuf,
        /// Why rustls refused the pair (wrong key, unsupported key type).
        source: rustls::Error,
    },
    /// The in-memory certificate chain and private key are not usable together.
    #[error("certificate and private key do not form a usable pair: {0}")]
    KeyPair(rustls::Error),
    /// rustls refused the configuration for another reason.
    #[error("rustls refused the configuration: {0}")]
    Rustls(rustls::Error),
}

/// The crypto provider for every shsd TLS configuration: named explicitly (ring) so that no
/// process-wide default has to be installed and no other provider is picked by accident.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The protocol versions shsd speaks (spec §2: TLS 1.2 and 1.3).
pub(crate) static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
