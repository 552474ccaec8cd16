//! The rcgen plumbing behind [`super::ExamplePki`]: keys, serial numbers, subjects,
//! certificates and CRLs, all ECDSA P-256.

use std::time::{Duration, SystemTime};

use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::CertificateDer;

use super::{ClientSpec, Crl, OrgField, PkiError, PkiItem, Role};

/// A window of validity.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) not_before: SystemTime,
    pub(super) not_after: SystemTime,
}

impl Window {
    /// From an hour ago (tolerating clock skew between hosts) until `validity` from now.
    pub(super) fn from_now(validity: Duration) -> Self {
        let now = SystemTime::now();
        Window {
            not_before: now - HOUR,
            not_after: now + validity,
        }
    }

    /// A window that ended yesterday.
    pub(super) fn expired() -> Self {
        let now = SystemTime::now();
        Window {
            not_before: now - 30 * DAY,
            not_after: now - DAY,
        }
    }
}

pub(super) const HOUR: Duration = Duration::from_secs(3600);
pub(super) const DAY: Duration = Duration::from_secs(24 * 3600);

/// A self-signed CA that may sign certificates and CRLs (and no intermediate CAs).
pub(super) fn ca(
    file_stem: &str,
    role: Role,
    name: &str,
    description: &str,
    window: Window,
) -> Result<(PkiItem, CertifiedIssuer<'static, KeyPair>), PkiError> {
    let what = || format!("CA {name:?}");
    let key = new_key()?;
    let key_pem = key.serialize_pem();
    let key_der = key.serialize_der();
    let (serial, serial_bytes) = random_serial()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(&[
        (DnType::CountryName, "SE"),
        (DnType::OrganizationName, "shsd example"),
        (DnType::CommonName, name),
    ]);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(serial);
    params.not_before = window.not_before.into();
    params.not_after = window.not_after.into();
    let issuer =
        CertifiedIssuer::self_signed(params, key).map_err(|source| PkiError::Generate {
            what: what(),
            source,
        })?;
    let item = PkiItem {
        file_stem: file_stem.to_owned(),
        role,
        organisation: "shsd example".to_owned(),
        org: None,
        description: description.to_owned(),
        serial: serial_bytes,
        cert_der: issuer.der().clone(),
        cert_pem: issuer.pem(),
        key_pem,
        key_der,
    };
    Ok((item, issuer))
}

/// The node's server certificate: `CN=localhost`, SANs `localhost`, `127.0.0.1` and any
/// extra names (DNS names or IP addresses).
pub(super) fn server(
    issuer: &Issuer<'_, KeyPair>,
    extra_names: &[String],
    window: Window,
) -> Result<PkiItem, PkiError> {
    let what = || "server certificate".to_owned();
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    names.extend(extra_names.iter().cloned());
    let mut params = CertificateParams::new(names).map_err(|source| PkiError::Generate {
        what: what(),
        source,
    })?;
    params.distinguished_name = subject(&[
        (DnType::CountryName, "SE"),
        (DnType::OrganizationName, "shsd example node"),
        (DnType::CommonName, "localhost"),
    ]);
    // A node is a server to its callers and a client when it pushes to other nodes
    // (spec §5.3), with the same certificate.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf(
        params,
        issuer,
        window,
        PkiItem::template(
            "server",
            Role::Server,
            "shsd example node",
            None,
            "The node's TLS certificate (localhost, 127.0.0.1); also its client certificate when it pushes to other nodes.",
        ),
    )
    .map_err(|source| PkiError::Generate {
        what: what(),
        source,
    })
}

/// A client certificate with a real SHS-style subject:
/// `C=SE, O=<organisation>, serialNumber|organizationIdentifier=<org>, CN=<name>`.
pub(super) fn client(
    issuer: &Issuer<'_, KeyPair>,
    spec: &ClientSpec,
    window: Window,
) -> Result<PkiItem, PkiError> {
    let what = || format!("client certificate {:?}", spec.file_stem);
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "SE");
    dn.push(DnType::OrganizationName, spec.organisation.as_str());
    if let Some(org) = spec.org {
        let (oid, value) = match spec.org_field {
            OrgField::SerialNumber => (vec![2, 5, 4, 5], org.as_str().to_owned()),
            OrgField::OrganizationIdentifier => {
                (vec![2, 5, 4, 97], format!("NTRSE-{}", org.as_str()))
            }
        };
        let value = PrintableString::try_from(value).map_err(|e| PkiError::Generate {
            what: what(),
            source: e,
        })?;
        dn.push(DnType::CustomDnType(oid), DnValue::PrintableString(value));
    }
    dn.push(DnType::CommonName, spec.common_name.as_str());
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let template = PkiItem::template(
        &spec.file_stem,
        spec.role,
        &spec.organisation,
        spec.org,
        &spec.description,
    );
    leaf(params, issuer, window, template).map_err(|source| PkiError::Generate {
        what: what(),
        source,
    })
}

/// A CRL signed by `issuer` that revokes the given serial numbers, valid until the end of
/// `window` so that the example set never carries a stale CRL.
pub(super) fn crl(
    issuer: &Issuer<'_, KeyPair>,
    revoked_serials: &[&[u8]],
    window: Window,
) -> Result<Crl, PkiError> {
    let generate = |source| PkiError::Generate {
        what: "CRL".to_owned(),
        source,
    };
    let now = SystemTime::now();
    let crl_number = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1);
    let params = CertificateRevocationListParams {
        this_update: (now - HOUR).into(),
        next_update: window.not_after.max(now + DAY).into(),
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs: revoked_serials
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
    let crl = params.signed_by(issuer).map_err(generate)?;
    Ok(Crl {
        pem: crl.pem().map_err(generate)?,
        der: crl.der().clone(),
    })
}

/// Signs a leaf certificate for a fresh key and fills in the template's key and
/// certificate.
fn leaf(
    mut params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
    window: Window,
    mut item: PkiItem,
) -> Result<PkiItem, rcgen::Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let (serial, serial_bytes) = random_serial().map_err(|_| rcgen::Error::RingUnspecified)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial);
    params.not_before = window.not_before.into();
    params.not_after = window.not_after.into();
    let cert = params.signed_by(&key, issuer)?;
    item.serial = serial_bytes;
    item.cert_der = cert.der().clone();
    item.cert_pem = cert.pem();
    item.key_pem = key.serialize_pem();
    item.key_der = key.serialize_der();
    Ok(item)
}

fn new_key() -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| PkiError::Generate {
        what: "key pair".to_owned(),
        source,
    })
}

/// A random positive 16-byte serial number without a leading zero byte, so that the DER
/// integer and the bytes listed in the CRL are the same.
fn random_serial() -> Result<(SerialNumber, Vec<u8>), PkiError> {
    let mut bytes = vec![0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok((SerialNumber::from_slice(&bytes), bytes))
}

fn subject(entries: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in entries {
        dn.push(ty.clone(), *value);
    }
    dn
}

impl PkiItem {
    /// An item with its descriptive fields set and no material yet.
    fn template(
        file_stem: &str,
        role: Role,
        organisation: &str,
        org: Option<crate::protocol::urn::OrgNumber>,
        description: &str,
    ) -> PkiItem {
        PkiItem {
            file_stem: file_stem.to_owned(),
            role,
            organisation: organisation.to_owned(),
            org,
            description: description.to_owned(),
            serial: Vec::new(),
            cert_der: CertificateDer::from(Vec::new()),
            cert_pem: String::new(),
            key_pem: String::new(),
            key_der: Vec::new(),
        }
    }
}
