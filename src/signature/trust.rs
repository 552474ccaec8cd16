//! Signer trust: does a signer certificate chain to one of the configured signer trust
//! anchors (not the TLS client CAs), valid at arrival time, allowed to sign, not revoked?
//!
//! The chain is built from the anchors and the certificates the signature carries; each
//! link's signature is checked with ring. Validity is checked at the time the caller
//! passes — the arrival time: a signing time claimed inside the signature is not trusted.
//! Revocation uses the CRLs configured with the anchors: a certificate listed on a CRL
//! that its issuer signed is revoked. A certificate whose issuer has no CRL configured is
//! taken as not revoked, and a CRL past its `nextUpdate` is still used (a revocation is
//! never undone); online checks (OCSP, CRL download) are I/O and not done here.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasher, DefaultHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use ring::digest;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::SignatureError;
use super::algorithms::{PublicKey, x509_signed_by};
use super::error::malformed;
use super::xml::reuse;
use crate::tls::identity::rfc4514;

/// Longest chain from signer to anchor accepted (signer, intermediates, anchor).
const MAX_CHAIN: usize = 6;
/// How many verified certificate and CRL signatures are remembered.
const CACHE_LIMIT: usize = 4096;
/// How many chains are remembered by the certificates as carried (each key is the
/// certificates' text, a few KiB).
const CARRIED_LIMIT: usize = 1024;

/// Who signed, as the broker records it with the message and shows it to the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSigner {
    /// The signer certificate's subject, RFC 4514 (`CN=…,O=…,C=SE`).
    pub subject: String,
    /// The signer certificate's serial number in upper-case hex.
    pub serial: String,
    /// The signer certificate's issuer, RFC 4514.
    pub issuer: String,
    /// The subject of the trust anchor the chain ends at.
    pub anchor: String,
    /// When the signer certificate expires.
    pub not_after: DateTime<Utc>,
    /// The SHA-256 fingerprint of the signer certificate, lower-case hex.
    pub fingerprint: String,
}

/// Why the signer trust could not be built from the operator's files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// A trust anchor is not a DER X.509 certificate.
    #[error("signer trust anchor {index} is not a certificate: {reason}")]
    BadAnchor {
        /// Its position in the list given.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// A CRL is not a DER X.509 CRL.
    #[error("signer CRL {index} is not a CRL: {reason}")]
    BadCrl {
        /// Its position in the list given.
        index: usize,
        /// What the parser said.
        reason: String,
    },
}

/// The trust anchors and CRLs signer certificates are checked against, per product or
/// node-wide. Cheap to share behind an `Arc`; verified certificate links are cached.
#[derive(Debug, Default)]
pub struct SignerTrust {
    anchors: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    /// SHA-256 of (signed object ‖ issuer key) for signatures already checked.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// Chains already built, by SHA-256 of the certificates they were built from.
    chains: Mutex<HashMap<[u8; 32], Arc<Chain>>>,
    /// Chains already built, by the certificates as a signature carried them (the base64
    /// text of XML-DSig `X509Certificate` elements), so that a repeated signer costs
    /// neither decoding nor parsing.
    carried: Mutex<HashMap<Vec<u8>, Arc<Chain>, TailHash>>,
}

/// A verified chain: the signer, its key and the validity window of every certificate.
#[derive(Debug)]
pub(crate) struct Chain {
    /// The signer as recorded.
    pub(crate) signer: VerifiedSigner,
    /// The signer certificate's public key.
    pub(crate) key: PublicKey,
    /// `notBefore` and `notAfter` (Unix seconds) of each certificate, signer to anchor.
    windows: Vec<(i64, i64)>,
}

impl SignerTrust {
    /// Trust in the DER certificates `anchors` (CA certificates, typically the
    /// e-identification issuers), revocation by the DER CRLs `crls`.
    pub fn new(anchors: Vec<Vec<u8>>, crls: Vec<Vec<u8>>) -> Result<SignerTrust, TrustError> {
        for (index, der) in anchors.iter().enumerate() {
            X509Certificate::from_der(der).map_err(|e| TrustError::BadAnchor {
                index,
                reason: e.to_string(),
            })?;
        }
        for (index, der) in crls.iter().enumerate() {
            CertificateRevocationList::from_der(der).map_err(|e| TrustError::BadCrl {
                index,
                reason: e.to_string(),
            })?;
        }
        Ok(SignerTrust {
            anchors,
            crls,
            verified: Mutex::new(HashSet::new()),
            chains: Mutex::new(HashMap::new()),
            carried: Mutex::new(HashMap::default()),
        })
    }

    /// True if no anchor is configured (then no signer can be trusted).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Validates the signer certificate `leaf` at time `at`, with `intermediates` (the
    /// other certificates the signature carries) as candidate chain links.
    pub fn verify(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        at: DateTime<Utc>,
    ) -> Result<VerifiedSigner, SignatureError> {
        self.verify_key(leaf, intermediates, at)
            .map(|chain| chain.signer.clone())
    }

    /// As [`SignerTrust::verify`], also handing out the signer's public key. A chain that
    /// verified before is taken from the cache: only its validity at `at` is checked again
    /// (certificates, CRLs and anchors do not change within one `SignerTrust`).
    pub(crate) fn verify_key(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        at: DateTime<Utc>,
    ) -> Result<Arc<Chain>, SignatureError> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for der in std::iter::once(leaf).chain(intermediates.iter().map(Vec::as_slice)) {
            ctx.update(&(der.len() as u64).to_be_bytes());
            ctx.update(der);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        let now = at.timestamp();
        if let Some(chain) = self.chains().get(&key)
            && chain.valid_at(now)
        {
            return Ok(Arc::clone(chain));
        }
        let chain = Arc::new(self.build_chain(leaf, intermediates, at)?);
        let mut chains = self.chains();
        if chains.len() >= CACHE_LIMIT {
            chains.clear();
        }
        chains.insert(key, Arc::clone(&chain));
        Ok(chain)
    }

    /// As [`SignerTrust::verify_key`] for certificates still in the form a signature
    /// carried them in (`carried`, in order: here the base64 text of each XML-DSig
    /// `X509Certificate`). The chain built before from exactly the same bytes is taken from
    /// the cache (compared byte for byte), with only its validity at `at` checked again;
    /// otherwise `build` decodes them and calls [`SignerTrust::verify_key`], and a chain it
    /// returns is remembered. Sound because the chain is a function of those bytes, the
    /// anchors and CRLs (fixed in a `SignerTrust`) and the time (checked on every hit); a
    /// certificate that differs in any byte, say a new one under the same subject, misses.
    pub(crate) fn verify_carried(
        &self,
        carried: impl IntoIterator<Item = impl AsRef<[u8]>>,
        at: DateTime<Utc>,
        build: impl FnOnce() -> Result<Arc<Chain>, SignatureError>,
    ) -> Result<Arc<Chain>, SignatureError> {
        // The key is assembled in a buffer the thread keeps, so that a lookup allocates
        // nothing; only a chain remembered anew gets a key of its own.
        let mut key: Vec<u8> = reuse::take(&CARRIED_KEY);
        for piece in carried {
            let piece = piece.as_ref();
            key.extend_from_slice(&(piece.len() as u64).to_be_bytes());
            key.extend_from_slice(piece);
        }
        let found = self.carried_hit(&key, at.timestamp());
        let chain = match found {
            Some(chain) => Ok(chain),
            None => build().inspect(|chain| {
                let mut cache = lock_map(&self.carried);
                if cache.len() >= CARRIED_LIMIT {
                    cache.clear();
                }
                cache.insert(key.clone(), Arc::clone(chain));
            }),
        };
        reuse::give(&CARRIED_KEY, |spare| reuse::keep(spare, key));
        chain
    }

    /// The chain remembered for the carried certificates `key`, if it is valid at `now`.
    fn carried_hit(&self, key: &[u8], now: i64) -> Option<Arc<Chain>> {
        lock_map(&self.carried)
            .get(key)
            .filter(|chain| chain.valid_at(now))
            .map(Arc::clone)
    }

    /// How many chains are remembered by the certificates as carried (for tests).
    #[cfg(test)]
    pub(crate) fn carried_cached(&self) -> usize {
        lock_map(&self.carried).len()
    }

    /// Builds and checks the chain from `leaf` to an anchor.
    fn build_chain(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        at: DateTime<Utc>,
    ) -> Result<Chain, SignatureError> {
        let (_, cert) =
            X509Certificate::from_der(leaf).map_err(|e| malformed!("signer certificate: {e}"))?;
        check_validity(&cert, at)?;
        check_signer_usage(&cert)?;
        let key = PublicKey::from_spki(cert.public_key())?;
        let anchors = parse_all(&self.anchors);
        let pool = parse_all(intermediates);
        let mut windows = vec![window(&cert)];
        let mut current = (leaf, cert.clone());
        for _ in 0..MAX_CHAIN {
            let (current_der, current_cert) = &current;
            if let Some((_, anchor)) = anchors.iter().find(|(der, anchor)| {
                *der == *current_der || self.issued_by(current_der, current_cert, anchor)
            }) {
                check_validity(anchor, at)?;
                if !anchors.iter().any(|(der, _)| *der == *current_der) {
                    self.check_revocation(current_cert, anchor)?;
                }
                windows.push(window(anchor));
                return Ok(Chain {
                    signer: signer(leaf, &cert, anchor),
                    key,
                    windows,
                });
            }
            let issuer = pool.iter().find(|(_, candidate)| {
                may_issue(candidate) && self.issued_by(current_der, current_cert, candidate)
            });
            let Some((issuer_der, issuer_cert)) = issuer else {
                break;
            };
            check_validity(issuer_cert, at)?;
            self.check_revocation(current_cert, issuer_cert)?;
            windows.push(window(issuer_cert));
            current = (issuer_der, issuer_cert.clone());
        }
        Err(SignatureError::UntrustedSigner(format!(
            "{} (issuer {}) does not chain to a signer trust anchor",
            rfc4514(cert.subject()),
            rfc4514(cert.issuer())
        )))
    }

    fn chains(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Chain>>> {
        // The map holds no invariant a panicking holder could break.
        self.chains.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True if `issuer` is named as the issuer of `cert` and its key verifies `cert`'s
    /// signature (remembered once checked).
    fn issued_by(
        &self,
        der: &[u8],
        cert: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
    ) -> bool {
        cert.issuer().as_raw() == issuer.subject().as_raw()
            && self.signed_by(
                der,
                cert.tbs_certificate.as_ref(),
                &cert.signature_algorithm.algorithm.to_id_string(),
                &cert.signature_value.data,
                issuer,
            )
    }

    /// Checks a signature made by `issuer`'s key over `tbs` (part of `object`), with a
    /// cache keyed by the object and the key.
    fn signed_by(
        &self,
        object: &[u8],
        tbs: &[u8],
        alg_oid: &str,
        signature: &[u8],
        issuer: &X509Certificate<'_>,
    ) -> bool {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(object);
        ctx.update(issuer.public_key().raw);
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        if self.lock().contains(&key) {
            return true;
        }
        let ok = x509_signed_by(issuer.public_key(), alg_oid, tbs, signature);
        if ok {
            let mut cache = self.lock();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key);
        }
        ok
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        // The set holds no invariant a panicking holder could break.
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses `cert` if a CRL signed by `issuer` lists its serial number.
    fn check_revocation(
        &self,
        cert: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
    ) -> Result<(), SignatureError> {
        for der in &self.crls {
            let Ok((_, crl)) = CertificateRevocationList::from_der(der) else {
                continue;
            };
            if crl.issuer().as_raw() != issuer.subject().as_raw() {
                continue;
            }
            let signed = self.signed_by(
                der,
                crl.tbs_cert_list.as_ref(),
                &crl.signature_algorithm.algorithm.to_id_string(),
                &crl.signature_value.data,
                issuer,
            );
            if !signed {
                continue;
            }
            let serial = cert.raw_serial();
            if crl
                .iter_revoked_certificates()
                .any(|r| r.raw_serial() == serial)
            {
                return Err(SignatureError::Revoked(format!(
                    "{} serial {} is on the CRL of {}",
                    rfc4514(cert.subject()),
                    hex_upper(serial),
                    rfc4514(issuer.subject())
                )));
            }
        }
        Ok(())
    }
}

thread_local! {
    /// The buffer a thread assembles `carried` cache keys in (see `xml/reuse.rs`).
    static CARRIED_KEY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The hashing of the `carried` cache, whose keys are every certificate as carried, each
/// after its length: it takes the length and the last bytes only (the end of a
/// certificate's text is its signature, different for every certificate), through a
/// randomly keyed SipHash, while equality compares every byte — so a lookup hashes a few
/// dozen bytes rather than kilobytes, and a hit is always the very same certificates.
#[derive(Debug, Default)]
struct TailHash(RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

/// See [`TailHash`].
struct TailHasher(DefaultHasher);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write_usize(bytes.len());
        self.0.write(&bytes[bytes.len().saturating_sub(32)..]);
    }

    fn write_usize(&mut self, n: usize) {
        self.0.write_usize(n);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

impl Chain {
    /// True if every certificate of the chain is valid at `now` (Unix seconds).
    fn valid_at(&self, now: i64) -> bool {
        self.windows
            .iter()
            .all(|&(from, to)| from <= now && now <= to)
    }
}

/// Locks a chain cache (which holds no invariant a panicking holder could break).
fn lock_map<T>(map: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parses every DER certificate that parses, keeping its bytes.
fn parse_all(ders: &[Vec<u8>]) -> Vec<(&[u8], X509Certificate<'_>)> {
    ders.iter()
        .filter_map(|der| {
            X509Certificate::from_der(der)
                .ok()
                .map(|(_, cert)| (der.as_slice(), cert))
        })
        .collect()
}

/// A certificate's validity period in Unix seconds.
fn window(cert: &X509Certificate<'_>) -> (i64, i64) {
    let validity = cert.validity();
    (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    )
}

/// Refuses a certificate outside its validity period at `at`.
fn check_validity(cert: &X509Certificate<'_>, at: DateTime<Utc>) -> Result<(), SignatureError> {
    let validity = cert.validity();
    let now = at.timestamp();
    let subject = || rfc4514(cert.subject());
    if now < validity.not_before.timestamp() {
        return Err(SignatureError::NotYetValid(format!(
            "{} is valid from {}",
            subject(),
            validity.not_before
        )));
    }
    if now > validity.not_after.timestamp() {
        return Err(SignatureError::Expired(format!(
            "{} expired {}",
            subject(),
            validity.not_after
        )));
    }
    Ok(())
}

/// Refuses a signer certificate whose key usage, when present, allows neither
/// `digitalSignature` nor `nonRepudiation`.
fn check_signer_usage(cert: &X509Certificate<'_>) -> Result<(), SignatureError> {
    let usage = cert
        .key_usage()
        .map_err(|e| malformed!("signer certificate key usage: {e}"))?;
    match usage {
        Some(ku) if !ku.value.digital_signature() && !ku.value.non_repudiation() => {
            Err(SignatureError::UntrustedSigner(format!(
                "{} may not sign (key usage has neither digitalSignature nor nonRepudiation)",
                rfc4514(cert.subject())
            )))
        }
        _ => Ok(()),
    }
}

/// True if `cert` is a CA certificate allowed to sign certificates.
fn may_issue(cert: &X509Certificate<'_>) -> bool {
    let key_cert_sign = match cert.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    cert.is_ca() && key_cert_sign
}

/// The signer as recorded.
fn signer(der: &[u8], cert: &X509Certificate<'_>, anchor: &X509Certificate<'_>) -> VerifiedSigner {
    let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    VerifiedSigner {
        subject: rfc4514(cert.subject()),
        serial: hex_upper(cert.raw_serial()),
        issuer: rfc4514(cert.issuer()),
        anchor: rfc4514(anchor.subject()),
        not_after,
        fingerprint: digest::digest(&digest::SHA256, der).as_ref().iter().fold(
            String::new(),
            |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            },
        ),
    }
}

/// Upper-case hex, as CRLs and CA logs list serial numbers.
fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}
