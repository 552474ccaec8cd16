//! A client-certificate verifier that remembers the chains it has verified.
//!
//! Verifying a client's chain costs the server an ECDSA verification per certificate
//! (each signature by its issuer), on top of the CRL look-up ([`super::revocation`]); with
//! webpki also checking the CRL's signature on each use, the two were 37 % of the server's
//! handshake CPU (`perf`, `cargo bench --bench handshake`, see `BENCHMARKS.md`). An SHS
//! node's callers are a few dozen business systems and portals that reconnect with the
//! same certificate all day, so [`KnownChains`] verifies a chain once (webpki, then the
//! CRLs verified at load) and remembers the success.
//!
//! What a remembered success depends on, and why it stays true:
//! - the certificates presented: the key is a SHA-256 over the end entity and the
//!   intermediates, each with its length, so another chain is another key;
//! - the trust anchors and CRLs: fixed for the life of one verifier; a reload (SIGHUP with a
//!   renewed CRL) builds a new configuration with a new, empty verifier;
//! - the time: webpki checks every certificate of the chain against its validity period
//!   (trust anchors excepted), so an entry holds only inside the intersection of the
//!   presented certificates' periods, and at most [`REMEMBER_FOR`] after it was verified.
//!   CRL expiry is not enforced by the listener (rustls' default), so it adds nothing.
//!
//! Only successes are remembered; a refused chain is verified again each time. The proof
//! that the caller holds the certificate's key (its `CertificateVerify` signature) is never
//! skipped: it is checked on every handshake by the inner verifier.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ring::digest::{Context, SHA256};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;

use super::revocation::PreVerifiedCrls;

/// The longest a verified chain is trusted without verifying it again, in seconds: a bound
/// on anything time-dependent not covered by the validity periods.
pub const REMEMBER_FOR: u64 = 3600;

/// The most chains remembered; when full, expired entries are dropped, and if none had
/// expired, all are (a cache, not a record: the next handshakes verify in full again).
pub const CAPACITY: usize = 4096;

/// A [`ClientCertVerifier`] that verifies a chain with `inner` once and remembers the success
/// until the first of the chain's certificates expires (module doc).
pub struct KnownChains {
    inner: Arc<dyn ClientCertVerifier>,
    crls: PreVerifiedCrls,
    known: Mutex<HashMap<ChainKey, Window>>,
    verified_in_full: AtomicU64,
}

/// SHA-256 over the presented certificates.
type ChainKey = [u8; 32];

/// The seconds (Unix time) during which a remembered success holds: `from..until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    from: u64,
    until: u64,
}

impl Window {
    fn holds_at(&self, now: u64) -> bool {
        self.from <= now && now < self.until
    }

    /// The part of this window inside `cert`'s validity period; `None` if its end is
    /// before 1970.
    fn within(self, cert: &X509Certificate<'_>) -> Option<Window> {
        let period = cert.validity();
        // webpki accepts up to and including notAfter; the window's end is exclusive.
        let not_before = u64::try_from(period.not_before.timestamp()).unwrap_or(0);
        let not_after = u64::try_from(period.not_after.timestamp()).ok()?;
        Some(Window {
            from: self.from.max(not_before),
            until: self.until.min(not_after.saturating_add(1)),
        })
    }
}

impl KnownChains {
    /// Wraps `inner`, which decides every chain not remembered and every signature; a
    /// chain `inner` accepts is then checked against `crls`, the CRLs taken from it.
    pub fn new(inner: Arc<dyn ClientCertVerifier>, crls: PreVerifiedCrls) -> Self {
        KnownChains {
            inner,
            crls,
            known: Mutex::new(HashMap::new()),
            verified_in_full: AtomicU64::new(0),
        }
    }

    /// How many chains were handed to the inner verifier (not remembered, or no longer).
    pub fn verified_in_full(&self) -> u64 {
        self.verified_in_full.load(Ordering::Relaxed)
    }

    /// How many chains are remembered now (for tests and diagnostics).
    pub fn remembered(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChainKey, Window>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, key: ChainKey, window: Window, now: u64) {
        let mut known = self.lock();
        if known.len() >= CAPACITY && !known.contains_key(&key) {
            known.retain(|_, held| held.holds_at(now));
            if known.len() >= CAPACITY {
                known.clear();
            }
        }
        known.insert(key, window);
    }
}

impl fmt::Debug for KnownChains {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnownChains")
            .field("inner", &self.inner)
            .field("crls", &self.crls.len())
            .field("remembered", &self.remembered())
            .finish()
    }
}

impl ClientCertVerifier for KnownChains {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let key = chain_key(end_entity, intermediates);
        let seconds = now.as_secs();
        if self
            .lock()
            .get(&key)
            .is_some_and(|window| window.holds_at(seconds))
        {
            return Ok(ClientCertVerified::assertion());
        }
        self.verified_in_full.fetch_add(1, Ordering::Relaxed);
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        // Parsed once here for both: webpki keeps its own parse to itself.
        let (_, end_entity) = x509_parser::parse_x509_certificate(end_entity)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        self.crls.check(&end_entity)?;
        if let Some(window) = validity(&end_entity, intermediates, seconds) {
            self.remember(key, window, seconds);
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

/// The key of a chain: each certificate's length, then its bytes, end entity first.
fn chain_key(end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> ChainKey {
    let mut digest = Context::new(&SHA256);
    for cert in std::iter::once(end_entity).chain(intermediates) {
        digest.update(&(cert.len() as u64).to_be_bytes());
        digest.update(cert);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.finish().as_ref());
    key
}

/// When a success verified at `now` may be reused: inside every presented certificate's
/// validity period and at most [`REMEMBER_FOR`] from now. `None` (not remembered) if a
/// certificate does not parse here or the window is empty.
fn validity(
    end_entity: &X509Certificate<'_>,
    intermediates: &[CertificateDer<'_>],
    now: u64,
) -> Option<Window> {
    let mut window = Window {
        from: now,
        until: now.saturating_add(REMEMBER_FOR),
    }
    .within(end_entity)?;
    for der in intermediates {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        window = window.within(&cert)?;
    }
    (window.from < window.until).then_some(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use crate::pki::{ExamplePki, PkiOptions};
    use crate::tls::crypto_provider;
    use crate::tls::server::client_verifier;

    struct Fixture {
        pki: ExamplePki,
        known: KnownChains,
    }

    /// A verifier over the example PKI's client CA with its CRL (which revokes `revoked`),
    /// built as the listener builds it.
    fn fixture() -> Fixture {
        let pki = ExamplePki::generate(PkiOptions::default()).expect("pki");
        let known = client_verifier(pki.roots(), vec![pki.crl.der.clone()], crypto_provider())
            .expect("verifier");
        Fixture { pki, known }
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    fn asked(fixture: &Fixture) -> u64 {
        fixture.known.verified_in_full()
    }

    #[test]
    fn a_verified_chain_is_verified_once() {
        let f = fixture();
        let portal = f.pki.portal.cert_der.clone();
        for _ in 0..3 {
            f.known
                .verify_client_cert(&portal, &[], now())
                .expect("portal is valid");
        }
        assert_eq!(asked(&f), 1);
        assert_eq!(f.known.remembered(), 1);
    }

    #[test]
    fn another_chain_is_verified_on_its_own() {
        let f = fixture();
        let portal = f.pki.portal.cert_der.clone();
        let bygglov = f.pki.bygglov.cert_der.clone();
        f.known
            .verify_client_cert(&portal, &[], now())
            .expect("portal");
        f.known
            .verify_client_cert(&bygglov, &[], now())
            .expect("bygglov");
        // The same end entity with an (unused) intermediate is another chain.
        let with_extra = [f.pki.ca.cert_der.clone()];
        f.known
            .verify_client_cert(&portal, &with_extra, now())
            .expect("portal with its CA");
        assert_eq!(asked(&f), 3);
    }

    #[test]
    fn a_refused_chain_is_refused_every_time() {
        let f = fixture();
        let revoked = f.pki.revoked.cert_der.clone();
        for _ in 0..2 {
            let err = f
                .known
                .verify_client_cert(&revoked, &[], now())
                .expect_err("revoked");
            assert_eq!(
                err,
                Error::InvalidCertificate(rustls::CertificateError::Revoked)
            );
        }
        assert_eq!(asked(&f), 2);
        assert_eq!(f.known.remembered(), 0);
    }

    #[test]
    fn a_remembered_success_ends_with_the_certificate() {
        let f = fixture();
        let portal = f.pki.portal.cert_der.clone();
        let (_, cert) = x509_parser::parse_x509_certificate(&portal).expect("parse");
        let not_after = cert.validity().not_after.timestamp() as u64;
        let at = |secs: u64| UnixTime::since_unix_epoch(Duration::from_secs(secs));
        // Verified ten seconds before the end: remembered for ten seconds, not an hour.
        f.known
            .verify_client_cert(&portal, &[], at(not_after - 10))
            .expect("still valid");
        f.known
            .verify_client_cert(&portal, &[], at(not_after))
            .expect("valid up to notAfter");
        assert_eq!(asked(&f), 1);
        let err = f
            .known
            .verify_client_cert(&portal, &[], at(not_after + 1))
            .expect_err("expired by then");
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(rustls::CertificateError::Expired)
                    | Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
            ),
            "{err:?}"
        );
        assert_eq!(asked(&f), 2);
    }

    #[test]
    fn a_remembered_success_is_verified_again_after_an_hour() {
        let f = fixture();
        let portal = f.pki.portal.cert_der.clone();
        let start = now();
        f.known
            .verify_client_cert(&portal, &[], start)
            .expect("portal");
        let later = UnixTime::since_unix_epoch(Duration::from_secs(start.as_secs() + REMEMBER_FOR));
        f.known
            .verify_client_cert(&portal, &[], later)
            .expect("still valid");
        assert_eq!(asked(&f), 2);
    }

    #[test]
    fn the_window_is_the_intersection_of_the_periods() {
        let f = fixture();
        let portal = f.pki.portal.cert_der.clone();
        let ca = f.pki.ca.cert_der.clone();
        let (_, leaf) = x509_parser::parse_x509_certificate(&portal).expect("leaf");
        let (_, root) = x509_parser::parse_x509_certificate(&ca).expect("ca");
        let now = leaf.validity().not_before.timestamp() as u64 + 10;
        let window = validity(&leaf, std::slice::from_ref(&ca), now).expect("window");
        let earliest_end = leaf
            .validity()
            .not_after
            .timestamp()
            .min(root.validity().not_after.timestamp()) as u64;
        assert_eq!(window.from, now);
        assert_eq!(window.until, (now + REMEMBER_FOR).min(earliest_end + 1));
        assert!(validity(&leaf, &[], earliest_end + 5).is_none());
    }

    /// An intermediate that ends first ends the window, even where the leaf and the hour
    /// would allow more.
    #[test]
    fn an_intermediate_ending_first_ends_the_window() {
        let f = fixture();
        let (_, leaf) = x509_parser::parse_x509_certificate(&f.pki.portal.cert_der).expect("leaf");
        let short = ExamplePki::generate(PkiOptions {
            validity: Duration::from_secs(2 * 3600),
            ..PkiOptions::default()
        })
        .expect("short-lived pki");
        let intermediate = short.ca.cert_der.clone();
        let (_, parsed) = x509_parser::parse_x509_certificate(&intermediate).expect("ca");
        let short_end = parsed.validity().not_after.timestamp() as u64;
        let now = short_end - 10;
        let window = validity(&leaf, std::slice::from_ref(&intermediate), now).expect("window");
        assert_eq!((window.from, window.until), (now, short_end + 1));
        assert!(validity(&leaf, std::slice::from_ref(&intermediate), short_end + 1).is_none());
    }

    #[test]
    fn a_full_cache_keeps_its_bound() {
        let f = fixture();
        let window = Window {
            from: 0,
            until: u64::MAX,
        };
        for n in 0..CAPACITY as u64 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&n.to_be_bytes());
            f.known.remember(key, window, 1);
        }
        assert_eq!(f.known.remembered(), CAPACITY);
        f.known.remember([0xff; 32], window, 1);
        assert!(f.known.remembered() <= CAPACITY);
        assert_eq!(f.known.remembered(), 1);
    }
}
