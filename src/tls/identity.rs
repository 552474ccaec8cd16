//! Who is calling: the [`PeerIdentity`] derived once per connection from the verified client
//! certificate (spec §2), so that handlers authorise against a typed value and never look at
//! certificates themselves.
//!
//! The organisation number comes from an explicit [`IdentityMap`] entry for the
//! certificate's SHA-256 [`Fingerprint`] if there is one, else from the subject's
//! `serialNumber` (2.5.4.5), else from its `organizationIdentifier` (2.5.4.97, e.g.
//! `NTRSE-5565317129`): the first run of exactly ten digits.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use x509_parser::asn1_rs::{Tag, ToDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use crate::protocol::urn::OrgNumber;

/// The SHA-256 digest of a certificate's DER encoding: how configuration names one
/// particular certificate, independent of what its subject claims.
///
/// Displayed as upper-case colon-separated pairs (`AB:01:…`), the form `openssl x509
/// -fingerprint -sha256` prints; parsed from that form or from 64 plain hex digits, any case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    /// A fingerprint from its raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, byte) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_char(':')?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A configured fingerprint is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a SHA-256 fingerprint ({reason}); expected 64 hex digits, \
     optionally as colon-separated pairs"
)]
pub struct FingerprintError {
    /// The text as configured.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| FingerprintError {
            input: s.to_owned(),
            reason,
        };
        let text = s.trim();
        let pairs: Vec<&str> = if text.contains(':') {
            text.split(':').collect()
        } else {
            if !text.is_ascii() {
                return Err(fail("not hex"));
            }
            if text.len() != 64 {
                return Err(fail("wrong length"));
            }
            (0..32).map(|n| &text[2 * n..2 * n + 2]).collect()
        };
        if pairs.len() != 32 {
            return Err(fail("wrong length"));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(pairs) {
            if pair.len() != 2 || !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(fail("not hex pairs"));
            }
            *byte = u8::from_str_radix(pair, 16).map_err(|_| fail("not hex"))?;
        }
        Ok(Fingerprint(bytes))
    }
}

/// Configured organisation numbers for particular certificates, by fingerprint. An entry
/// wins over the subject, for certificates whose subject names no (or the wrong)
/// organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityMap(HashMap<Fingerprint, OrgNumber>);

impl IdentityMap {
    /// An empty map: every organisation comes from the certificate subject.
    pub fn new() -> Self {
        IdentityMap::default()
    }

    /// Maps a certificate to an organisation, returning the previous entry.
    pub fn insert(&mut self, fingerprint: Fingerprint, org: OrgNumber) -> Option<OrgNumber> {
        self.0.insert(fingerprint, org)
    }

    /// The organisation configured for a certificate, if any.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<OrgNumber> {
        self.0.get(fingerprint).copied()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(Fingerprint, OrgNumber)> for IdentityMap {
    fn from_iter<T: IntoIterator<Item = (Fingerprint, OrgNumber)>>(iter: T) -> Self {
        IdentityMap(iter.into_iter().collect())
    }
}

/// Where a peer's organisation number was found, for logs and the admin console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgSource {
    /// An [`IdentityMap`] entry for the certificate's fingerprint.
    Fingerprint,
    /// The subject's `serialNumber` attribute (2.5.4.5).
    SerialNumber,
    /// The subject's `organizationIdentifier` attribute (2.5.4.97).
    OrganizationIdentifier,
}

/// The peer's certificate could not be understood. The peer's fault; in practice only
/// reachable for certificates that webpki accepted but x509-parser does not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The DER does not parse as an X.509 certificate.
    #[error("peer certificate is not a valid X.509 certificate: {0}")]
    BadCertificate(String),
    /// The certificate's validity end cannot be represented.
    #[error("peer certificate validity is out of range")]
    ValidityOutOfRange,
}

/// The caller of one connection, as its verified leaf certificate says. A certificate
/// without an organisation number is still an identity (with `org() == None`), so that the
/// HTTP layer can log who was refused before it answers 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    org: Option<(OrgNumber, OrgSource)>,
    subject: String,
    common_name: Option<String>,
    serial_hex: String,
    fingerprint: Fingerprint,
    not_after: DateTime<Utc>,
}

impl PeerIdentity {
    /// The identity of the client of an established server connection: `None` when the
    /// client presented no certificate (never the case with [`super::server_config`]) or
    /// when the certificate cannot be parsed (logged).
    pub fn from_connection(
        conn: &rustls::ServerConnection,
        map: &IdentityMap,
    ) -> Option<PeerIdentity> {
        let leaf = conn.peer_certificates()?.first()?;
        match PeerIdentity::from_der(leaf, map) {
            Ok(identity) => Some(identity),
            Err(error) => {
                tracing::warn!(%error, "peer certificate not understood");
                None
            }
        }
    }

    /// The identity a DER-encoded leaf certificate stands for. The certificate is not
    /// verified here: that is the handshake's job.
    pub fn from_der(der: &[u8], map: &IdentityMap) -> Result<PeerIdentity, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        let fingerprint = Fingerprint::of(der);
        let subject = cert.subject();
        let org = map
            .get(&fingerprint)
            .map(|org| (org, OrgSource::Fingerprint))
            .or_else(|| org_from_subject(subject));
        let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
            .ok_or(IdentityError::ValidityOutOfRange)?;
        Ok(PeerIdentity {
            org,
            subject: rfc4514(subject),
            common_name: subject.iter_common_name().find_map(attribute_text),
            serial_hex: serial_hex(&cert),
            fingerprint,
            not_after,
        })
    }

    /// The caller's organisation, if the certificate or the configuration names one.
    pub fn org(&self) -> Option<OrgNumber> {
        self.org.map(|(org, _)| org)
    }

    /// Where the organisation number was found.
    pub fn org_source(&self) -> Option<OrgSource> {
        self.org.map(|(_, source)| source)
    }

    /// The certificate subject as an RFC 4514 string (most specific attribute first,
    /// `CN=…,O=…,C=SE`), for logs and error messages.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject's first common name, which SHS certificates use to name the system.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The certificate serial number in upper-case hex, as CRLs and CA logs list it.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    /// The SHA-256 fingerprint of the certificate, as configuration names it.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// When the certificate expires, for warnings before it does.
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }
}

const OID_SERIAL_NUMBER: &str = "2.5.4.5";
const OID_ORGANIZATION_IDENTIFIER: &str = "2.5.4.97";

fn org_from_subject(subject: &X509Name<'_>) -> Option<(OrgNumber, OrgSource)> {
    let find = |oid: &str| {
        subject
            .iter_attributes()
            .filter(|attr| attr.attr_type().to_id_string() == oid)
            .filter_map(attribute_text)
            .find_map(|text| OrgNumber::find_in(&text))
    };
    find(OID_SERIAL_NUMBER)
        .map(|org| (org, OrgSource::SerialNumber))
        .or_else(|| {
            find(OID_ORGANIZATION_IDENTIFIER).map(|org| (org, OrgSource::OrganizationIdentifier))
        })
}

/// The text of a directory string attribute, including the BMPString that older Swedish
/// CAs use for names with å, ä and ö.
fn attribute_text(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    if let Ok(text) = attr.as_str() {
        return Some(text.to_owned());
    }
    let value = attr.attr_value();
    if value.tag() != Tag::BmpString || value.data.len() % 2 != 0 {
        return None;
    }
    let units = value
        .data
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// Formats a name as RFC 4514 does: RDNs in reverse order, separated by commas,
/// multi-valued RDNs joined with `+`, special characters escaped, and values that are not
/// text written as `#` and the hex of their DER.
pub(crate) fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let key = short_name(&oid).unwrap_or(&oid);
                    let value = match attribute_text(attr) {
                        Some(text) => escape_value(&text),
                        None => {
                            let der = attr.attr_value().to_der_vec().unwrap_or_default();
                            format!("#{}", hex_lower(&der))
                        }
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.97" => "organizationIdentifier",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (n, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if n == 0 => out.push_str("\\#"),
            ' ' if n == 0 || n == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

fn serial_hex(cert: &X509Certificate<'_>) -> String {
    cert.tbs_certificate
        .raw_serial()
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::tests::pki;

    fn org(s: &str) -> OrgNumber {
        s.parse().expect("org number")
    }

    #[test]
    fn fingerprint_parses_both_forms_in_any_case() {
        let fp = Fingerprint::of(b"some certificate");
        let colon = fp.to_string();
        assert_eq!(colon.len(), 32 * 3 - 1);
        assert!(
            colon
                .bytes()
                .all(|b| b == b':' || b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        let plain: String = colon.chars().filter(|c| *c != ':').collect();
        for text in [
            colon.clone(),
            colon.to_lowercase(),
            plain.clone(),
            plain.to_lowercase(),
            format!("  {colon}\n"),
        ] {
            assert_eq!(text.parse::<Fingerprint>(), Ok(fp), "{text:?}");
        }
    }

    #[test]
    fn fingerprint_rejects_malformed_text() {
        let fp = Fingerprint::of(b"x").to_string();
        let plain: String = fp.chars().filter(|c| *c != ':').collect();
        let cases = [
            String::new(),
            plain[..62].to_owned(),
            format!("{plain}00"),
            format!("{}ZZ", &plain[..62]),
            fp[..fp.len() - 3].to_owned(),
            format!("{fp}:00"),
            // Colons in the wrong places.
            format!("{}:{}", &plain[..3], &plain[3..]),
            fp.replacen(':', "", 1),
            format!("+{}", &plain[1..]),
            "é".repeat(32),
        ];
        for text in cases {
            let err = text.parse::<Fingerprint>().unwrap_err();
            assert_eq!(err.input, text);
        }
    }

    #[test]
    fn org_from_serial_number() {
        let pki = pki();
        let id = PeerIdentity::from_der(&pki.portal.cert_der, &IdentityMap::new()).unwrap();
        assert_eq!(id.org(), Some(org("5590000001")));
        assert_eq!(id.org_source(), Some(OrgSource::SerialNumber));
        assert_eq!(id.fingerprint(), Fingerprint::of(&pki.portal.cert_der));
        assert!(id.subject().starts_with("CN="), "{}", id.subject());
        assert!(
            id.subject().contains("serialNumber=5590000001"),
            "{}",
            id.subject()
        );
        assert!(id.subject().ends_with(",C=SE"), "{}", id.subject());
        assert!(id.not_after() > Utc::now());
        assert!(!id.serial_hex().is_empty());

        let id = PeerIdentity::from_der(&pki.bygglov.cert_der, &IdentityMap::new()).unwrap();
        assert_eq!(id.org(), Some(org("2120000142")));
        assert_eq!(id.common_name(), Some("bygglov"));
    }

    #[test]
    fn org_from_organization_identifier() {
        let pki = pki();
        let id = PeerIdentity::from_der(&pki.peer_node.cert_der, &IdentityMap::new()).unwrap();
        assert_eq!(id.org(), Some(org("5560000002")));
        assert_eq!(id.org_source(), Some(OrgSource::OrganizationIdentifier));
        assert!(
            id.subject()
                .contains("organizationIdentifier=NTRSE-5560000002"),
            "{}",
            id.subject()
        );
    }

    #[test]
    fn fingerprint_map_wins_over_subject() {
        let pki = pki();
        let map: IdentityMap = [
            (Fingerprint::of(&pki.portal.cert_der), org("1111111111")),
            (Fingerprint::of(&pki.no_org.cert_der), org("2222222222")),
        ]
        .into_iter()
        .collect();
        let id = PeerIdentity::from_der(&pki.portal.cert_der, &map).unwrap();
        assert_eq!(id.org(), Some(org("1111111111")));
        assert_eq!(id.org_source(), Some(OrgSource::Fingerprint));
        let id = PeerIdentity::from_der(&pki.no_org.cert_der, &map).unwrap();
        assert_eq!(id.org(), Some(org("2222222222")));
        // Other certificates are unaffected.
        let id = PeerIdentity::from_der(&pki.bygglov.cert_der, &map).unwrap();
        assert_eq!(id.org(), Some(org("2120000142")));
    }

    #[test]
    fn certificate_without_org_is_an_identity_without_org() {
        let pki = pki();
        let id = PeerIdentity::from_der(&pki.no_org.cert_der, &IdentityMap::new()).unwrap();
        assert_eq!(id.org(), None);
        assert_eq!(id.org_source(), None);
        assert!(
            id.subject().contains("O=Exempelföreningen"),
            "{}",
            id.subject()
        );
    }

    #[test]
    fn expired_certificate_reports_its_end() {
        let pki = pki();
        let id = PeerIdentity::from_der(&pki.expired.cert_der, &IdentityMap::new()).unwrap();
        assert!(id.not_after() < Utc::now());
    }

    #[test]
    fn garbage_der_is_an_error() {
        let err = PeerIdentity::from_der(b"\x30\x03\x02\x01", &IdentityMap::new()).unwrap_err();
        assert!(matches!(err, IdentityError::BadCertificate(_)));
    }

    #[test]
    fn rfc4514_escaping() {
        assert_eq!(escape_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_value("#x "), "\\#x\\ ");
        assert_eq!(escape_value(" lead"), "\\ lead");
        assert_eq!(escape_value("Exempelkommun"), "Exempelkommun");
        assert_eq!(escape_value(""), "");
    }
}
