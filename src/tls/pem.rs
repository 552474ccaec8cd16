//! Loading certificates, private keys and CRLs from PEM.
//!
//! Files are read whole and parsed here, at configuration time, so that a broken file is
//! reported with its name when the daemon starts (or reloads) instead of as an obscure
//! handshake failure later. Certificates and CRLs are also parsed as X.509 once, so that
//! base64 that decodes to garbage is caught here too.

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::pem::{self as pki_pem, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::TlsError;

/// What is wrong with PEM text. The file it came from is added by [`TlsError::Pem`].
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The text is not well-formed PEM (bad base64, a section without its end line, …).
    #[error("not valid PEM: {0}")]
    Syntax(pki_pem::Error),
    /// No `CERTIFICATE` section was found (an empty file, or a file of something else).
    #[error("no CERTIFICATE section found")]
    NoCertificate,
    /// No private key section was found.
    #[error("no private key found (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")]
    NoPrivateKey,
    /// No `X509 CRL` section was found.
    #[error("no X509 CRL section found")]
    NoCrl,
    /// A `CERTIFICATE` section does not hold a DER X.509 certificate.
    #[error("certificate #{index} is not a valid X.509 certificate: {cause}")]
    BadCertificate {
        /// Position of the section among the certificates of the file, from 1.
        index: usize,
        /// What the X.509 parser said.
        cause: String,
    },
    /// An `X509 CRL` section does not hold a DER certificate revocation list.
    #[error("CRL #{index} is not a valid X.509 CRL: {cause}")]
    BadCrl {
        /// Position of the section among the CRLs of the file, from 1.
        index: usize,
        /// What the X.509 parser said.
        cause: String,
    },
}

/// Loads every certificate of a PEM file, in file order (leaf first for a chain file).
/// Sections of other kinds are skipped; a file without any certificate is an error.
pub fn load_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let path = path.as_ref();
    certs_from_pem(&read(path)?).map_err(|cause| pem_error(path, cause))
}

/// Loads the first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of a PEM file.
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let path = path.as_ref();
    private_key_from_pem(&read(path)?).map_err(|cause| pem_error(path, cause))
}

/// Loads every CRL of every file given. Each file must hold at least one CRL, so that a
/// configured but empty CRL file is noticed rather than silently revoking nothing.
pub fn load_crls<I>(paths: I) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError>
where
    I: IntoIterator,
    I::Item: AsRef<Path>,
{
    let mut crls = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let found = crls_from_pem(&read(path)?).map_err(|cause| pem_error(path, cause))?;
        crls.extend(found);
    }
    Ok(crls)
}

/// Loads every certificate of the CA files into a trust store, naming the file of any
/// certificate rustls cannot use as a trust anchor. Used for client CAs and server roots.
pub fn load_roots<I>(paths: I) -> Result<RootCertStore, TlsError>
where
    I: IntoIterator,
    I::Item: AsRef<Path>,
{
    let mut roots = RootCertStore::empty();
    for path in paths {
        let path = path.as_ref();
        for cert in load_certs(path)? {
            roots.add(cert).map_err(|source| TlsError::TrustAnchor {
                file: path.to_owned(),
                source,
            })?;
        }
    }
    Ok(roots)
}

/// Parses every certificate of PEM text; the in-memory twin of [`load_certs`].
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::Syntax)?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate);
    }
    for (n, cert) in certs.iter().enumerate() {
        x509_parser::parse_x509_certificate(cert).map_err(|e| PemError::BadCertificate {
            index: n + 1,
            cause: e.to_string(),
        })?;
    }
    Ok(certs)
}

/// Parses the first private key of PEM text; the in-memory twin of [`load_private_key`].
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pki_pem::Error::NoItemsFound => PemError::NoPrivateKey,
        other => PemError::Syntax(other),
    })
}

/// Parses every CRL of PEM text; the in-memory twin of [`load_crls`] for one file.
pub fn crls_from_pem(pem: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>, PemError> {
    let crls = CertificateRevocationListDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::Syntax)?;
    if crls.is_empty() {
        return Err(PemError::NoCrl);
    }
    for (n, crl) in crls.iter().enumerate() {
        x509_parser::parse_x509_crl(crl).map_err(|e| PemError::BadCrl {
            index: n + 1,
            cause: e.to_string(),
        })?;
    }
    Ok(crls)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        file: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, cause: PemError) -> TlsError {
    TlsError::Pem {
        file: path.to_owned(),
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_temp(content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("file.pem");
        std::fs::write(&path, content).expect("write temp file");
        (dir, path)
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = load_certs("/nonexistent/shsd/cert.pem").unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/shsd/cert.pem"),
            "{err}"
        );
        let err = load_private_key("/nonexistent/shsd/key.pem").unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        let err = load_crls(["/nonexistent/shsd/crl.pem"]).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
    }

    #[test]
    fn empty_file_holds_nothing() {
        let (_dir, path) = write_temp(b"");
        let err = load_certs(&path).unwrap_err();
        assert!(
            matches!(&err, TlsError::Pem { cause: PemError::NoCertificate, file } if *file == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("file.pem"), "{err}");
        assert!(matches!(
            load_private_key(&path),
            Err(TlsError::Pem {
                cause: PemError::NoPrivateKey,
                ..
            })
        ));
        assert!(matches!(
            load_crls([&path]),
            Err(TlsError::Pem {
                cause: PemError::NoCrl,
                ..
            })
        ));
    }

    #[test]
    fn garbage_is_refused() {
        let (_dir, path) = write_temp(b"this is not PEM at all\n\x00\xff\n");
        assert!(matches!(
            load_certs(&path),
            Err(TlsError::Pem {
                cause: PemError::NoCertificate,
                ..
            })
        ));

        let bad_base64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            certs_from_pem(bad_base64),
            Err(PemError::Syntax(_))
        ));

        let unterminated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(matches!(
            certs_from_pem(unterminated),
            Err(PemError::Syntax(_))
        ));

        // Valid base64, but not a certificate.
        let not_x509 =
            b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            certs_from_pem(not_x509),
            Err(PemError::BadCertificate { index: 1, .. })
        ));
        let not_crl = b"-----BEGIN X509 CRL-----\naGVsbG8gd29ybGQ=\n-----END X509 CRL-----\n";
        assert!(matches!(
            crls_from_pem(not_crl),
            Err(PemError::BadCrl { index: 1, .. })
        ));
    }

    #[test]
    fn wrong_kind_of_section_is_not_accepted() {
        let pki = crate::tls::tests::pki();
        // A key file given where certificates are expected, and the other way round.
        assert!(matches!(
            certs_from_pem(pki.portal.key_pem.as_bytes()),
            Err(PemError::NoCertificate)
        ));
        assert!(matches!(
            private_key_from_pem(pki.portal.cert_pem.as_bytes()),
            Err(PemError::NoPrivateKey)
        ));
    }

    #[test]
    fn generated_files_load() {
        let pki = crate::tls::tests::pki();
        let chain = format!("{}{}", pki.portal.cert_pem, pki.ca.cert_pem);
        let certs = certs_from_pem(chain.as_bytes()).expect("chain");
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0], pki.portal.cert_der);
        assert!(matches!(
            private_key_from_pem(pki.portal.key_pem.as_bytes()),
            Ok(PrivateKeyDer::Pkcs8(_))
        ));
        let crls = crls_from_pem(pki.crl.pem.as_bytes()).expect("crl");
        assert_eq!(crls.len(), 1);
    }
}
