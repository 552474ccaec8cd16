//! A signer PKI made at test time with rcgen (a CA, intermediates, signer certificates in
//! every state trust must tell apart, CRLs), for the tests and benches of signed parts.
//! Like [`crate::pki`], nothing of it lives in the repository. Not used by the broker.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData,
    RevocationReason, RevokedCertParams, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// When a certificate is valid, relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validity {
    /// From an hour ago for a year.
    #[default]
    Current,
    /// Ended yesterday.
    Expired,
    /// Starts tomorrow.
    NotYetValid,
}

/// The key usage a signer certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignerUsage {
    /// `digitalSignature`.
    #[default]
    DigitalSignature,
    /// `nonRepudiation` only, as Swedish e-identification signing certificates often have.
    NonRepudiation,
    /// `keyEncipherment` only: may not sign.
    KeyEnciphermentOnly,
    /// No key usage extension at all.
    Absent,
}

/// A certificate made here: DER, PEM and its serial number bytes (as CRLs list them).
#[derive(Debug, Clone)]
pub struct TestCert {
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
    /// The serial number's bytes.
    pub serial: Vec<u8>,
}

/// A signing CA (root or intermediate).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate.
    pub cert: TestCert,
}

impl TestCa {
    /// A self-signed P-256 root CA named `name`, valid now.
    pub fn root(name: &str) -> Result<TestCa, rcgen::Error> {
        let (params, serial) = ca_params(name)?;
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let cert = TestCert {
            der: issuer.der().to_vec(),
            pem: issuer.pem(),
            serial,
        };
        Ok(TestCa { issuer, cert })
    }

    /// An intermediate CA named `name` under this one.
    pub fn intermediate(&self, name: &str) -> Result<TestCa, rcgen::Error> {
        let (params, serial) = ca_params(name)?;
        let issuer = CertifiedIssuer::signed_by(params, KeyPair::generate()?, &self.issuer)?;
        let cert = TestCert {
            der: issuer.der().to_vec(),
            pem: issuer.pem(),
            serial,
        };
        Ok(TestCa { issuer, cert })
    }

    /// A signer certificate for `key` (any rcgen public key: a generated P-256 key or an
    /// RSA key read from PEM).
    pub fn issue(
        &self,
        common_name: &str,
        key: &impl PublicKeyData,
        validity: Validity,
        usage: SignerUsage,
    ) -> Result<TestCert, rcgen::Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "SE");
        dn.push(DnType::OrganizationName, "shsd test signers");
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = match usage {
            SignerUsage::DigitalSignature => vec![KeyUsagePurpose::DigitalSignature],
            SignerUsage::NonRepudiation => vec![KeyUsagePurpose::ContentCommitment],
            SignerUsage::KeyEnciphermentOnly => vec![KeyUsagePurpose::KeyEncipherment],
            SignerUsage::Absent => Vec::new(),
        };
        let now = SystemTime::now();
        let (not_before, not_after) = match validity {
            Validity::Current => (now - HOUR, now + 365 * DAY),
            Validity::Expired => (now - 30 * DAY, now - DAY),
            Validity::NotYetValid => (now + DAY, now + 30 * DAY),
        };
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let (serial, serial_bytes) = random_serial()?;
        params.serial_number = Some(serial);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(key, &self.issuer)?;
        Ok(TestCert {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            serial: serial_bytes,
        })
    }

    /// A fresh P-256 key (PKCS#8 DER and PEM) and its signer certificate.
    pub fn issue_p256(
        &self,
        common_name: &str,
        validity: Validity,
        usage: SignerUsage,
    ) -> Result<(TestCert, KeyPair), rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = self.issue(common_name, &key, validity, usage)?;
        Ok((cert, key))
    }

    /// A CRL of this CA revoking the certificates with `serials`.
    pub fn crl(&self, serials: &[&[u8]]) -> Result<Vec<u8>, rcgen::Error> {
        let now = SystemTime::now();
        let params = CertificateRevocationListParams {
            this_update: (now - HOUR).into(),
            next_update: (now + 7 * DAY).into(),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(serial),
                    revocation_time: (now - HOUR).into(),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.der().to_vec())
    }
}

/// CA parameters: may sign certificates and CRLs.
fn ca_params(name: &str) -> Result<(CertificateParams, Vec<u8>), rcgen::Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "SE");
    dn.push(DnType::OrganizationName, "shsd test signer CA");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = SystemTime::now();
    params.not_before = (now - HOUR).into();
    params.not_after = (now + 2 * 365 * DAY).into();
    let (serial, bytes) = random_serial()?;
    params.serial_number = Some(serial);
    Ok((params, bytes))
}

/// A random positive 16-byte serial without a leading zero byte.
fn random_serial() -> Result<(SerialNumber, Vec<u8>), rcgen::Error> {
    let mut bytes = vec![0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| rcgen::Error::RingUnspecified)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok((SerialNumber::from_slice(&bytes), bytes))
}
