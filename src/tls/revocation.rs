//! CRLs whose signatures are checked once, when the listener's configuration is built.
//!
//! webpki checks a CRL's signature every time it consults it (rustls/webpki#81): one more
//! ECDSA verification on every handshake, a fifth of the server's CPU for a caller whose
//! chain is not remembered yet (`perf`, `cargo bench --bench handshake`, `BENCHMARKS.md`).
//! The usual CRL is published by the very CA that issues the organisations' certificates
//! and that is configured as a client CA, so [`PreVerifiedCrls::partition`] verifies such
//! a CRL with that CA's key once, and [`PreVerifiedCrls::check`] then only looks up the
//! caller's serial number.
//!
//! Only the simple case is taken over; everything else stays with webpki, as before:
//! - the CRL's issuer must be a configured client CA (trust anchor), by its exact name;
//! - its signature algorithm one webpki accepts too: RSA PKCS#1 or ECDSA with SHA-256 or
//!   SHA-384 (RSA also SHA-512);
//! - no issuing distribution point, no critical extension (on the list or on an entry).
//!
//! A CRL that names a client CA as its issuer but is not signed by it is refused when the
//! configuration is built, so the operator hears of it at start or reload (webpki refused
//! every caller of that CA instead, handshake by handshake). What is checked is what the
//! listener asked of webpki: the end entity only, a CA without a CRL allowed, the CRL's
//! `nextUpdate` not enforced. A certificate on any taken-over CRL of its issuer is refused.

use std::collections::HashSet;

use rustls::pki_types::{CertificateRevocationListDer, TrustAnchor};
use rustls::{CertificateError, Error};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::TlsError;

/// Signature algorithms taken over (OIDs): those of webpki's ring provider that a CRL
/// issuer's key can have.
const ALGORITHMS: [&str; 5] = [
    "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
    "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
    "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
    "1.2.840.10045.4.3.2",   // ecdsa-with-SHA256
    "1.2.840.10045.4.3.3",   // ecdsa-with-SHA384
];

/// The issuing distribution point extension, which limits a CRL's scope.
const ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";

/// The revoked serial numbers of the CRLs verified at load, by issuer.
#[derive(Debug, Default)]
pub struct PreVerifiedCrls {
    lists: Vec<RevokedBy>,
}

/// One verified CRL: its issuer's name (DER, as in certificates) and the serial numbers it
/// lists (the INTEGER's content octets, as certificates carry them).
#[derive(Debug)]
struct RevokedBy {
    issuer: Vec<u8>,
    serials: HashSet<Vec<u8>>,
}

impl PreVerifiedCrls {
    /// Verifies the CRLs it can take over (module doc) with the client CAs `anchors`, and
    /// returns them with the rest, in their order, for webpki. Fails if a CRL names a
    /// client CA as its issuer and that CA's key does not verify it.
    pub fn partition(
        anchors: &[TrustAnchor<'_>],
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<(PreVerifiedCrls, Vec<CertificateRevocationListDer<'static>>), TlsError> {
        let mut taken = PreVerifiedCrls::default();
        let mut rest = Vec::new();
        for (index, der) in crls.into_iter().enumerate() {
            match taken_over(anchors, &der, index + 1)? {
                Some(list) => taken.lists.push(list),
                None => rest.push(der),
            }
        }
        Ok((taken, rest))
    }

    /// How many CRLs were taken over.
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    /// True if no CRL was taken over.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Refuses `end_entity` if a taken-over CRL of its issuer lists its serial number.
    /// Call it after webpki has verified the chain.
    pub fn check(&self, end_entity: &X509Certificate<'_>) -> Result<(), Error> {
        let issuer = end_entity.issuer().as_raw();
        let serial = end_entity.raw_serial();
        let revoked = self
            .lists
            .iter()
            .any(|list| list.issuer == issuer && list.serials.contains(serial));
        if revoked {
            return Err(Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(())
    }
}

/// The CRL as taken over, `None` if it stays with webpki; an error if a client CA of its
/// issuer's name does not verify it. `number` counts the configured CRLs from 1.
fn taken_over(
    anchors: &[TrustAnchor<'_>],
    der: &CertificateRevocationListDer<'_>,
    number: usize,
) -> Result<Option<RevokedBy>, TlsError> {
    let Ok((_, crl)) = CertificateRevocationList::from_der(der) else {
        return Ok(None);
    };
    let algorithm = crl.signature_algorithm.algorithm.to_id_string();
    let simple = ALGORITHMS.contains(&algorithm.as_str())
        && crl
            .extensions()
            .iter()
            .all(|ext| !ext.critical && ext.oid.to_id_string() != ISSUING_DISTRIBUTION_POINT)
        && crl
            .iter_revoked_certificates()
            .all(|entry| entry.extensions().iter().all(|ext| !ext.critical));
    if !simple {
        return Ok(None);
    }
    let issuer = crl.issuer().as_raw();
    let mut named = anchors
        .iter()
        .filter(|anchor| sequence(&anchor.subject) == issuer)
        .peekable();
    if named.peek().is_none() {
        return Ok(None);
    }
    let signed = named.any(|anchor| {
        let spki = sequence(&anchor.subject_public_key_info);
        SubjectPublicKeyInfo::from_der(&spki).is_ok_and(|(_, spki)| {
            crate::signature::x509_signed_by(
                &spki,
                &algorithm,
                crl.tbs_cert_list.as_ref(),
                &crl.signature_value.data,
            )
        })
    });
    if !signed {
        return Err(TlsError::CrlNotSigned {
            number,
            issuer: crl.issuer().to_string(),
        });
    }
    Ok(Some(RevokedBy {
        issuer: issuer.to_vec(),
        serials: crl
            .iter_revoked_certificates()
            .map(|entry| entry.raw_serial().to_vec())
            .collect(),
    }))
}

/// `content` as a DER SEQUENCE: trust anchors keep their subject and key without the
/// outer tag and length, which certificates and CRLs carry.
fn sequence(content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(0x30);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | octets.len() as u8);
        out.extend_from_slice(&octets);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use std::time::{Duration, SystemTime};

    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
        CrlDistributionPoint, CrlIssuingDistributionPoint, DistinguishedName, DnType, IsCa, Issuer,
        KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
    };

    use crate::pki::{ExamplePki, PkiOptions};

    fn parsed(der: &[u8]) -> X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der)
            .expect("certificate")
            .1
    }

    fn anchors(pki: &ExamplePki) -> Vec<TrustAnchor<'static>> {
        pki.roots().roots
    }

    /// A CA of its own name, not a client CA, and a CRL of it revoking `serial`.
    fn foreign_crl(
        name: &str,
        serial: &[u8],
        scoped: bool,
    ) -> CertificateRevocationListDer<'static> {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA");
        crl_of(&issuer, serial, scoped)
    }

    fn crl_of(
        issuer: &Issuer<'_, KeyPair>,
        serial: &[u8],
        scoped: bool,
    ) -> CertificateRevocationListDer<'static> {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let params = CertificateRevocationListParams {
            this_update: (now - hour).into(),
            next_update: (now + 24 * hour).into(),
            crl_number: SerialNumber::from(7u64),
            issuing_distribution_point: scoped.then(|| CrlIssuingDistributionPoint {
                distribution_point: CrlDistributionPoint {
                    uris: vec!["http://crl.example/ca.crl".to_owned()],
                },
                scope: None,
            }),
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: (now - hour).into(),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(issuer).expect("crl").der().clone()
    }

    #[test]
    fn the_client_cas_own_crl_is_taken_over_and_refuses_its_serials() {
        let pki = ExamplePki::generate(PkiOptions::default()).expect("pki");
        let (taken, rest) =
            PreVerifiedCrls::partition(&anchors(&pki), vec![pki.crl.der.clone()]).expect("ok");
        assert_eq!((taken.len(), rest.len()), (1, 0));
        assert_eq!(
            taken.check(&parsed(&pki.revoked.cert_der)),
            Err(Error::InvalidCertificate(CertificateError::Revoked))
        );
        taken
            .check(&parsed(&pki.portal.cert_der))
            .expect("portal is not revoked");
        let more = pki.crl_revoking(&[&pki.portal]).expect("crl");
        let (taken, _) = PreVerifiedCrls::partition(&anchors(&pki), vec![more.der]).expect("ok");
        assert!(taken.check(&parsed(&pki.portal.cert_der)).is_err());
        assert!(taken.check(&parsed(&pki.bygglov.cert_der)).is_ok());
    }

    #[test]
    fn a_crl_of_the_same_name_by_another_key_is_refused_at_load() {
        let pki = ExamplePki::generate(PkiOptions::default()).expect("pki");
        let other = ExamplePki::generate(PkiOptions::default()).expect("other pki");
        let err = PreVerifiedCrls::partition(
            &anchors(&pki),
            vec![pki.crl.der.clone(), other.crl.der.clone()],
        )
        .expect_err("not signed by the client CA");
        assert!(
            matches!(err, TlsError::CrlNotSigned { number: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("CRL #2"), "{err}");
    }

    #[test]
    fn other_crls_stay_with_webpki() {
        let pki = ExamplePki::generate(PkiOptions::default()).expect("pki");
        let serial = pki.portal.serial.clone();
        let foreign = foreign_crl("not a client CA", &serial, false);
        let scoped = foreign_crl("scoped", &serial, true);
        let (taken, rest) =
            PreVerifiedCrls::partition(&anchors(&pki), vec![foreign.clone(), scoped.clone()])
                .expect("ok");
        assert!(taken.is_empty());
        assert_eq!(rest, vec![foreign, scoped]);
        taken
            .check(&parsed(&pki.portal.cert_der))
            .expect("nothing taken over");
    }

    /// A CRL of `pki`'s client CA revoking `serial`, with an issuing distribution point if
    /// `scoped` (which leaves it to webpki).
    pub(crate) fn client_ca_crl(
        pki: &ExamplePki,
        serial: &[u8],
        scoped: bool,
    ) -> CertificateRevocationListDer<'static> {
        let key = KeyPair::from_pem(&pki.ca.key_pem).expect("CA key");
        let ca = Issuer::from_ca_cert_der(&pki.ca.cert_der, key).expect("CA");
        crl_of(&ca, serial, scoped)
    }

    #[test]
    fn a_scoped_crl_of_the_client_ca_stays_with_webpki() {
        let pki = ExamplePki::generate(PkiOptions::default()).expect("pki");
        let serial = pki.portal.serial.clone();
        let plain = client_ca_crl(&pki, &serial, false);
        let scoped = client_ca_crl(&pki, &serial, true);
        let (taken, rest) =
            PreVerifiedCrls::partition(&anchors(&pki), vec![plain, scoped.clone()]).expect("ok");
        assert_eq!(taken.len(), 1, "the plain one is taken over");
        assert_eq!(rest, vec![scoped], "the scoped one is webpki's");
        assert!(taken.check(&parsed(&pki.portal.cert_der)).is_err());
    }

    #[test]
    fn a_serial_on_another_issuers_crl_is_not_revoked() {
        let pki = ExamplePki::generate(PkiOptions::default()).expect("pki");
        let listed = |issuer: Vec<u8>| PreVerifiedCrls {
            lists: vec![RevokedBy {
                issuer,
                serials: HashSet::from([pki.portal.serial.clone()]),
            }],
        };
        let (_, portal) = x509_parser::parse_x509_certificate(&pki.portal.cert_der).expect("cert");
        assert!(
            listed(portal.issuer().as_raw().to_vec())
                .check(&parsed(&pki.portal.cert_der))
                .is_err()
        );
        listed(b"another issuer".to_vec())
            .check(&parsed(&pki.portal.cert_der))
            .expect("not this issuer's list");
    }

    #[test]
    fn sequence_wraps_short_and_long_content() {
        assert_eq!(sequence(&[1, 2]), vec![0x30, 2, 1, 2]);
        let long = vec![7u8; 300];
        let wrapped = sequence(&long);
        assert_eq!(&wrapped[..4], &[0x30, 0x82, 0x01, 0x2c]);
        assert_eq!(wrapped.len(), 304);
    }
}
