//! The listener's TLS configuration: client certificates are required and verified against
//! the configured client CAs and CRLs during the handshake (spec §2), so that no request of
//! an unknown, expired or revoked caller ever reaches the HTTP layer.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::known_chains::KnownChains;
use super::pem::{load_certs, load_crls, load_private_key, load_roots};
use super::revocation::PreVerifiedCrls;
use super::{ALPN_HTTP11, PROTOCOL_VERSIONS, TlsError, crypto_provider};

/// Where the server's TLS material lives, as named in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The node's certificate, leaf first, optionally followed by intermediates.
    pub cert_chain: PathBuf,
    /// The private key of the leaf certificate.
    pub key: PathBuf,
    /// CA certificates a client certificate must chain to; at least one is required.
    pub client_cas: Vec<PathBuf>,
    /// CRLs checked against client certificates. A client whose CA has no CRL here is
    /// still accepted (its revocation status is unknown, not revoked).
    pub crls: Vec<PathBuf>,
}

/// The server's TLS material in memory, for tests and for callers that hold no files.
#[derive(Debug)]
pub struct ServerTlsMaterial {
    /// The node's certificate chain, leaf first.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The private key of the leaf certificate.
    pub key: PrivateKeyDer<'static>,
    /// The trust anchors for client certificates.
    pub client_roots: RootCertStore,
    /// The CRLs checked against client certificates.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

impl ServerTlsMaterial {
    /// Reads and parses every file, so that each broken file is named in the error.
    pub fn load(files: &ServerTlsFiles) -> Result<Self, TlsError> {
        Ok(ServerTlsMaterial {
            cert_chain: load_certs(&files.cert_chain)?,
            key: load_private_key(&files.key)?,
            client_roots: load_roots(&files.client_cas)?,
            crls: load_crls(&files.crls)?,
        })
    }
}

/// Builds the listener's configuration from files: TLS 1.2 and 1.3 with the ring provider,
/// ALPN `http/1.1`, and a client certificate required of every caller. Only the end entity
/// is checked against the CRLs, and a CA without a CRL is allowed. The CRLs of client CAs
/// are verified here, once ([`PreVerifiedCrls`]); a chain verified once is remembered by
/// this configuration ([`KnownChains`]); a reload starts afresh.
pub fn server_config(files: &ServerTlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    if files.client_cas.is_empty() {
        return Err(TlsError::NoClientCa);
    }
    let material = ServerTlsMaterial::load(files)?;
    server_config_from_material(material).map_err(|e| match e {
        TlsError::KeyPair(source) => TlsError::KeyPairFiles {
            chain: files.cert_chain.clone(),
            key: files.key.clone(),
            source,
        },
        other => other,
    })
}

/// Builds the listener's configuration from material in memory; see [`server_config`].
pub fn server_config_from_material(
    material: ServerTlsMaterial,
) -> Result<Arc<ServerConfig>, TlsError> {
    if material.client_roots.is_empty() {
        return Err(TlsError::NoClientCa);
    }
    let provider = crypto_provider();
    let verifier = client_verifier(material.client_roots, material.crls, provider.clone())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Rustls)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(material.cert_chain, material.key)
        .map_err(TlsError::KeyPair)?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// The listener's client-certificate verifier: webpki with `roots` and the CRLs it keeps,
/// the client CAs' own CRLs verified here ([`PreVerifiedCrls`]), verified chains
/// remembered ([`KnownChains`]). Only the end entity is checked against the CRLs, and a CA
/// without a CRL is allowed.
pub(crate) fn client_verifier(
    roots: RootCertStore,
    crls: Vec<CertificateRevocationListDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<KnownChains, TlsError> {
    let (verified_crls, other_crls) = PreVerifiedCrls::partition(&roots.roots, crls)?;
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(other_crls)
        .only_check_end_entity_revocation()
        .allow_unknown_revocation_status()
        .build()?;
    Ok(KnownChains::new(webpki, verified_crls))
}

/// A server configuration that can be rebuilt from its files while the listener runs
/// (SIGHUP: renewed certificate, new CRLs). Each accepted connection takes the current
/// configuration; connections already open keep the one they were accepted with.
#[derive(Debug)]
pub struct ReloadableServerConfig {
    files: ServerTlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl ReloadableServerConfig {
    /// Builds the first configuration; fails like [`server_config`].
    pub fn load(files: ServerTlsFiles) -> Result<Self, TlsError> {
        let config = server_config(&files)?;
        Ok(ReloadableServerConfig {
            files,
            current: RwLock::new(config),
        })
    }

    /// The configuration to accept the next connection with.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An acceptor for the next connection, with the current configuration.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current())
    }

    /// Rebuilds the configuration from the same files. On error the previous configuration
    /// stays in force, so a half-written CRL never takes the listener down.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The files the configuration is built from.
    pub fn files(&self) -> &ServerTlsFiles {
        &self.files
    }
}
