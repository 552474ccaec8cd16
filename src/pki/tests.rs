//! The example PKI's certificates checked with x509-parser: subjects, keys, validity, CRL.

use std::time::SystemTime;

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::*;
use crate::tls::tests::pki;

fn parse(item: &PkiItem) -> X509Certificate<'_> {
    X509Certificate::from_der(&item.cert_der)
        .expect("certificate")
        .1
}

fn attribute(cert: &X509Certificate<'_>, oid: &str) -> Option<String> {
    cert.subject()
        .iter_attributes()
        .find(|attr| attr.attr_type().to_id_string() == oid)
        .map(|attr| attr.as_str().expect("text").to_owned())
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn subjects_are_shs_style() {
    let pki = pki();
    let portal = parse(&pki.portal);
    assert_eq!(attribute(&portal, "2.5.4.6").as_deref(), Some("SE"));
    assert_eq!(
        attribute(&portal, "2.5.4.10").as_deref(),
        Some("Exempelportalen AB")
    );
    assert_eq!(attribute(&portal, "2.5.4.5").as_deref(), Some(PORTAL_ORG));
    assert_eq!(attribute(&portal, "2.5.4.97"), None);

    for item in [&pki.bygglov, &pki.socialtjanst] {
        let cert = parse(item);
        assert_eq!(
            attribute(&cert, "2.5.4.5").as_deref(),
            Some(MUNICIPALITY_ORG)
        );
        assert_eq!(
            attribute(&cert, "2.5.4.10").as_deref(),
            Some("Exempelkommun")
        );
    }
    assert_eq!(
        attribute(&parse(&pki.bygglov), "2.5.4.3").as_deref(),
        Some("bygglov")
    );

    let peer = parse(&pki.peer_node);
    assert_eq!(attribute(&peer, "2.5.4.5"), None);
    let id = format!("NTRSE-{PEER_NODE_ORG}");
    assert_eq!(attribute(&peer, "2.5.4.97").as_deref(), Some(id.as_str()));

    let no_org = parse(&pki.no_org);
    assert_eq!(attribute(&no_org, "2.5.4.5"), None);
    assert_eq!(attribute(&no_org, "2.5.4.97"), None);
    assert_eq!(pki.no_org.org, None);
}

#[test]
fn keys_are_p256_and_match() {
    for item in pki().items() {
        let cert = parse(item);
        let alg = cert
            .public_key()
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        assert_eq!(
            alg.map(|oid| oid.to_id_string()).as_deref(),
            Some("1.2.840.10045.3.1.7"),
            "{} is not P-256",
            item.file_stem
        );
        assert!(item.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    }
}

#[test]
fn validity_and_revocation() {
    let pki = pki();
    let now = unix(SystemTime::now());
    for item in pki.items() {
        let validity = parse(item).validity().clone();
        if item.role == Role::Expired {
            assert!(validity.not_after.timestamp() < now);
        } else {
            assert!(validity.not_before.timestamp() <= now, "{}", item.file_stem);
            assert!(validity.not_after.timestamp() > now + 9 * 365 * 86400);
        }
    }
    assert!(parse(&pki.ca).is_ca());
    assert!(!parse(&pki.portal).is_ca());

    let (_, crl) = CertificateRevocationList::from_der(&pki.crl.der).expect("CRL");
    let revoked: Vec<&[u8]> = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial())
        .collect();
    assert_eq!(revoked, vec![pki.revoked.serial.as_slice()]);
    assert_eq!(crl.issuer(), parse(&pki.ca).subject());
}

#[test]
fn options_are_honoured() {
    let options = PkiOptions {
        validity: Duration::from_secs(2 * 86400),
        extra_server_names: vec!["shs.example.org".to_owned(), "10.0.0.7".to_owned()],
    };
    let pki = ExamplePki::generate(options).expect("generate");
    let server = parse(&pki.server);
    let left = server.validity().not_after.timestamp() - unix(SystemTime::now());
    assert!((86400..3 * 86400).contains(&left), "{left}");
    let san = server.subject_alternative_name().unwrap().unwrap().value;
    let names: Vec<String> = san.general_names.iter().map(|n| n.to_string()).collect();
    let expected = [
        "DNSName(localhost)",
        "IPAddress(7f:00:00:01)",
        "DNSName(shs.example.org)",
        "IPAddress(0a:00:00:07)",
    ];
    for name in expected {
        assert!(
            names.iter().any(|n| n.contains(name)),
            "{name} not in {names:?}"
        );
    }

    let bad = PkiOptions {
        extra_server_names: vec!["not a name!".to_owned()],
        ..PkiOptions::default()
    };
    assert!(matches!(
        ExamplePki::generate(bad),
        Err(PkiError::InvalidServerName(name)) if name == "not a name!"
    ));
}

#[test]
fn more_clients_can_be_issued() {
    let pki = pki();
    let org: OrgNumber = "5567000001".parse().unwrap();
    let spec = ClientSpec::new("client-extra", "Extra AB", "extra", Some(org));
    let item = pki.issue_client(&spec).expect("issue");
    assert_eq!(
        attribute(&parse(&item), "2.5.4.5").as_deref(),
        Some("5567000001")
    );
    assert_eq!(item.role, Role::Client);
    let crl = pki.crl_revoking(&[&item]).expect("crl");
    let (_, crl) = CertificateRevocationList::from_der(&crl.der).expect("CRL");
    assert_eq!(crl.iter_revoked_certificates().count(), 2);
}

#[test]
fn debug_output_has_no_key() {
    let text = format!("{:?}", pki());
    assert!(!text.contains("PRIVATE KEY"));
    assert!(!text.contains(&pki().portal.key_pem[30..60]));
}
