//! The client side of SHS mutual TLS: the CLI client commands and node-to-node push connect
//! with a configuration that verifies the server's certificate and name (webpki) and
//! presents the caller's own certificate when one is configured.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::pem::{PemError, certs_from_pem, load_certs, load_private_key, load_roots};
use super::{ALPN_HTTP11, PROTOCOL_VERSIONS, TlsError, crypto_provider};

/// Where a client's TLS material lives, as named in the configuration or on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// CA certificates a server certificate must chain to; at least one is required.
    pub roots: Vec<PathBuf>,
    /// The client's certificate, leaf first; SHS servers require one.
    pub cert_chain: Option<PathBuf>,
    /// The private key of the client certificate; required exactly when `cert_chain` is.
    pub key: Option<PathBuf>,
}

/// The certificate a client presents, and its key.
#[derive(Debug)]
pub struct ClientAuth {
    /// The client certificate, leaf first.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The private key of the leaf certificate.
    pub key: PrivateKeyDer<'static>,
}

/// A client's TLS material in memory, for tests and for callers that hold no files.
#[derive(Debug)]
pub struct ClientTlsMaterial {
    /// The trust anchors for server certificates.
    pub roots: RootCertStore,
    /// The certificate to present, if any.
    pub client_auth: Option<ClientAuth>,
}

impl ClientTlsMaterial {
    /// Reads and parses every file, so that each broken file is named in the error.
    pub fn load(files: &ClientTlsFiles) -> Result<Self, TlsError> {
        let client_auth = match (&files.cert_chain, &files.key) {
            (Some(chain), Some(key)) => Some(ClientAuth {
                cert_chain: load_certs(chain)?,
                key: load_private_key(key)?,
            }),
            (None, None) => None,
            _ => return Err(TlsError::IncompleteClientIdentity),
        };
        Ok(ClientTlsMaterial {
            roots: load_roots(&files.roots)?,
            client_auth,
        })
    }

    /// Builds material from PEM text: the root certificates, and optionally the client's
    /// certificate chain and key. Certificates that cannot be trust anchors are skipped; if
    /// none is left, [`client_config_from_material`] reports [`TlsError::NoRoots`].
    pub fn from_pem(roots: &[u8], client: Option<(&[u8], &[u8])>) -> Result<Self, PemError> {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(certs_from_pem(roots)?);
        let client_auth = match client {
            Some((chain, key)) => Some(ClientAuth {
                cert_chain: certs_from_pem(chain)?,
                key: super::pem::private_key_from_pem(key)?,
            }),
            None => None,
        };
        Ok(ClientTlsMaterial {
            roots: store,
            client_auth,
        })
    }
}

/// Builds a client configuration from files: TLS 1.2 and 1.3 with the ring provider, ALPN
/// `http/1.1`, the server's certificate and host name verified against `roots`.
pub fn client_config(files: &ClientTlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    if files.roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let material = ClientTlsMaterial::load(files)?;
    client_config_from_material(material).map_err(|e| match (e, &files.cert_chain, &files.key) {
        (TlsError::KeyPair(source), Some(chain), Some(key)) => TlsError::KeyPairFiles {
            chain: chain.clone(),
            key: key.clone(),
            source,
        },
        (other, _, _) => other,
    })
}

/// Builds a client configuration from material in memory; see [`client_config`].
pub fn client_config_from_material(
    material: ClientTlsMaterial,
) -> Result<Arc<ClientConfig>, TlsError> {
    if material.roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Rustls)?
        .with_root_certificates(material.roots);
    let mut config = match material.client_auth {
        Some(auth) => builder
            .with_client_auth_cert(auth.cert_chain, auth.key)
            .map_err(TlsError::KeyPair)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}
