//! XML-DSig verification and signer trust against signatures made here with ring (see
//! [`super::sign`]) under a PKI made with rcgen: the positive cases and each refusal with
//! its reason. Interop with xmlsec1 and OpenSSL is in `tests/it/signatures.rs`.

use chrono::Utc;
use rcgen::KeyPair;

use super::sign::{SignOptions, XmlSigner};
use super::test_pki::{SignerUsage, TestCa, TestCert, Validity};
use super::*;

const FORM: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<eform xmlns=\"urn:example:eform\" Id=\"form1\">\n  <applicant Id=\"a1\"><name>Anna Andersson</name>\
<pnr>19800101-1234</pnr></applicant>\n  <amount>1200</amount>\n</eform>\n";

struct Setup {
    ca: TestCa,
    trust: SignerTrust,
    cert: TestCert,
    key: KeyPair,
}

impl Setup {
    fn new() -> Setup {
        let ca = TestCa::root("Test Signer CA").expect("CA");
        let (cert, key) = ca
            .issue_p256(
                "Anna Andersson",
                Validity::Current,
                SignerUsage::DigitalSignature,
            )
            .expect("signer");
        let trust = SignerTrust::new(vec![ca.cert.der.clone()], Vec::new()).expect("trust");
        Setup {
            ca,
            trust,
            cert,
            key,
        }
    }

    fn signer(&self) -> XmlSigner {
        signer(&self.key, &self.cert)
    }

    fn options(&self) -> VerifyOptions<'_> {
        VerifyOptions {
            trust: &self.trust,
            at: Utc::now(),
            allow_legacy_sha1: false,
        }
    }

    fn verify(&self, xml: &str) -> Result<Option<Verified>, SignatureError> {
        self.verify_with(xml, SignaturePolicy::IfPresent, &self.options())
    }

    fn verify_with(
        &self,
        xml: &str,
        policy: SignaturePolicy,
        options: &VerifyOptions<'_>,
    ) -> Result<Option<Verified>, SignatureError> {
        let part = DataPart {
            content_type: "text/xml; charset=UTF-8",
            content: xml.as_bytes(),
            detached_signature: None,
        };
        verify_part(&part, policy, options)
    }

    fn enveloped(&self, options: &SignOptions) -> String {
        self.signer().sign_enveloped(FORM, options).expect("signs")
    }
}

fn signer(key: &KeyPair, cert: &TestCert) -> XmlSigner {
    XmlSigner::from_pkcs8(&key.serialize_der(), vec![cert.der.clone()]).expect("signer")
}

fn exclusive() -> SignOptions {
    SignOptions {
        exclusive: true,
        ..SignOptions::default()
    }
}

/// Asserts the refusal's kind and that its one-line reason contains `needle`.
#[track_caller]
fn assert_refused(result: Result<Option<Verified>, SignatureError>, kind: &str, needle: &str) {
    match result {
        Err(e) => {
            assert_eq!(e.kind(), kind, "{e}");
            let line = e.to_string();
            assert!(line.contains(needle), "{line:?} lacks {needle:?}");
            assert!(!line.contains('\n'), "{line:?} is not one line");
        }
        Ok(v) => panic!("expected {kind}, verified {v:?}"),
    }
}

#[test]
fn enveloped_signatures_verify_with_either_canonicalisation() {
    let setup = Setup::new();
    for options in [SignOptions::default(), exclusive()] {
        let xml = setup.enveloped(&options);
        let verified = setup.verify(&xml).expect("verifies").expect("signed");
        assert_eq!(verified.format, SignatureFormat::XmlDsig);
        assert_eq!(verified.content, VerifiedContent::AsReceived);
        let signer = verified.signer();
        assert_eq!(signer.subject, "CN=Anna Andersson,O=shsd test signers,C=SE");
        assert_eq!(
            signer.issuer,
            "CN=Test Signer CA,O=shsd test signer CA,C=SE"
        );
        assert_eq!(
            signer.serial,
            setup
                .cert
                .serial
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
        );
    }
}

#[test]
fn enveloped_reference_by_id_of_the_root_verifies() {
    let setup = Setup::new();
    let options = SignOptions {
        reference_id: Some("form1".into()),
        ..exclusive()
    };
    let xml = setup.enveloped(&options);
    assert!(setup.verify(&xml).expect("verifies").is_some());
}

#[test]
fn enveloping_signature_hands_on_only_the_object_content() {
    let setup = Setup::new();
    let content = "<eform xmlns=\"urn:example:eform\"><amount>1200</amount></eform>";
    let xml = setup
        .signer()
        .sign_enveloping(content, "obj", &exclusive())
        .expect("signs");
    let verified = setup.verify(&xml).expect("verifies").expect("signed");
    assert_eq!(
        verified.content,
        VerifiedContent::Extracted(content.as_bytes().to_vec())
    );
}

#[test]
fn non_repudiation_only_and_absent_key_usage_may_sign() {
    let setup = Setup::new();
    for usage in [SignerUsage::NonRepudiation, SignerUsage::Absent] {
        let (cert, key) = setup
            .ca
            .issue_p256("Bo", Validity::Current, usage)
            .expect("cert");
        let xml = signer(&key, &cert)
            .sign_enveloped(FORM, &exclusive())
            .expect("signs");
        assert!(setup.verify(&xml).expect("verifies").is_some(), "{usage:?}");
    }
}

#[test]
fn chain_through_an_intermediate_carried_in_key_info() {
    let setup = Setup::new();
    let intermediate = setup.ca.intermediate("Test Signer Sub CA").expect("sub CA");
    let (cert, key) = intermediate
        .issue_p256("Cecilia", Validity::Current, SignerUsage::NonRepudiation)
        .expect("cert");
    let with_chain = XmlSigner::from_pkcs8(
        &key.serialize_der(),
        vec![cert.der.clone(), intermediate.cert.der.clone()],
    )
    .expect("signer");
    let xml = with_chain
        .sign_enveloped(FORM, &exclusive())
        .expect("signs");
    let verified = setup.verify(&xml).expect("verifies").expect("signed");
    assert_eq!(
        verified.signer().anchor,
        "CN=Test Signer CA,O=shsd test signer CA,C=SE"
    );

    let alone = signer(&key, &cert)
        .sign_enveloped(FORM, &exclusive())
        .expect("signs");
    assert_refused(
        setup.verify(&alone),
        "untrusted signer",
        "Test Signer Sub CA",
    );
}

#[test]
fn altered_content_is_a_bad_digest() {
    let setup = Setup::new();
    let xml = setup.enveloped(&exclusive()).replace("1200", "9200");
    assert_refused(setup.verify(&xml), "bad digest", "altered");
}

#[test]
fn altered_signed_info_is_a_bad_signature() {
    let setup = Setup::new();
    let xml = setup.enveloped(&exclusive());
    let at = xml.find("<ds:DigestValue>").expect("digest") + "<ds:DigestValue>".len();
    let flipped = if &xml[at..at + 1] == "A" { "B" } else { "A" };
    let xml = format!("{}{flipped}{}", &xml[..at], &xml[at + 1..]);
    assert_refused(setup.verify(&xml), "bad signature", "SignatureValue");
}

#[test]
fn swapped_certificate_is_a_bad_signature() {
    let setup = Setup::new();
    let (other, _) = setup
        .ca
        .issue_p256("Mallory", Validity::Current, SignerUsage::DigitalSignature)
        .expect("cert");
    let b64 = |der: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(der)
    };
    let xml = setup
        .enveloped(&exclusive())
        .replace(&b64(&setup.cert.der), &b64(&other.der));
    assert_refused(setup.verify(&xml), "bad signature", "does not verify");
}

#[test]
fn untrusted_issuer_expired_not_yet_valid_and_wrong_usage_are_refused() {
    let setup = Setup::new();
    let stranger = TestCa::root("Unknown CA").expect("CA");
    let (cert, key) = stranger
        .issue_p256("Eve", Validity::Current, SignerUsage::DigitalSignature)
        .expect("cert");
    let xml = signer(&key, &cert)
        .sign_enveloped(FORM, &exclusive())
        .expect("signs");
    assert_refused(setup.verify(&xml), "untrusted signer", "Unknown CA");

    let cases = [
        (
            Validity::Expired,
            SignerUsage::DigitalSignature,
            "expired",
            "expired",
        ),
        (
            Validity::NotYetValid,
            SignerUsage::DigitalSignature,
            "not yet valid",
            "valid from",
        ),
        (
            Validity::Current,
            SignerUsage::KeyEnciphermentOnly,
            "untrusted signer",
            "may not sign",
        ),
    ];
    for (validity, usage, kind, needle) in cases {
        let (cert, key) = setup.ca.issue_p256("Dan", validity, usage).expect("cert");
        let xml = signer(&key, &cert)
            .sign_enveloped(FORM, &exclusive())
            .expect("signs");
        assert_refused(setup.verify(&xml), kind, needle);
    }
}

#[test]
fn revoked_signer_is_refused_by_its_issuers_crl_only() {
    let setup = Setup::new();
    let xml = setup.enveloped(&exclusive());
    let crl = setup.ca.crl(&[&setup.cert.serial]).expect("crl");
    let trust = SignerTrust::new(vec![setup.ca.cert.der.clone()], vec![crl]).expect("trust");
    let options = VerifyOptions {
        trust: &trust,
        ..setup.options()
    };
    assert_refused(
        setup.verify_with(&xml, SignaturePolicy::IfPresent, &options),
        "revoked",
        "on the CRL",
    );
    // The same serial on a CRL the issuer did not sign revokes nothing.
    let forged = TestCa::root("Test Signer CA")
        .expect("namesake")
        .crl(&[&setup.cert.serial]);
    let trust = SignerTrust::new(vec![setup.ca.cert.der.clone()], vec![forged.expect("crl")])
        .expect("trust");
    let options = VerifyOptions {
        trust: &trust,
        ..setup.options()
    };
    assert!(
        setup
            .verify_with(&xml, SignaturePolicy::IfPresent, &options)
            .is_ok()
    );
}

#[test]
fn sha1_only_when_legacy_is_allowed() {
    let setup = Setup::new();
    let options = SignOptions {
        sha1_digest: true,
        ..exclusive()
    };
    let xml = setup.enveloped(&options);
    assert_refused(setup.verify(&xml), "unsupported algorithm", "SHA-1");
    let legacy = VerifyOptions {
        allow_legacy_sha1: true,
        ..setup.options()
    };
    assert!(
        setup
            .verify_with(&xml, SignaturePolicy::Required, &legacy)
            .is_ok()
    );
}

#[test]
fn a_second_element_with_the_signed_id_is_wrapping() {
    let setup = Setup::new();
    let options = SignOptions {
        reference_id: Some("form1".into()),
        ..exclusive()
    };
    let xml = setup.enveloped(&options).replace(
        "<amount>",
        "<x Id=\"form1\"><amount>9999</amount></x><amount>",
    );
    assert_refused(setup.verify(&xml), "wrapping", "\"form1\"");
}

#[test]
fn a_signature_moved_to_cover_another_element_is_wrapping() {
    let setup = Setup::new();
    let options = SignOptions {
        reference_id: Some("form1".into()),
        ..exclusive()
    };
    let signed = setup.enveloped(&options);
    let body = signed.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // The signed form, intact, now inside a new document element with other content.
    let xml = format!("<wrapper><order><amount>9999</amount></order>{body}</wrapper>");
    assert_refused(setup.verify(&xml), "wrapping", "<wrapper>");

    // A signature over an inner element of the form does not cover the form.
    let inner = SignOptions {
        reference_id: Some("a1".into()),
        ..exclusive()
    };
    assert_refused(
        setup.verify(&setup.enveloped(&inner)),
        "wrapping",
        "<eform>",
    );
}

#[test]
fn an_unsigned_object_inside_an_enveloped_signature_is_wrapping() {
    let setup = Setup::new();
    let xml = setup.enveloped(&exclusive()).replace(
        "</ds:Signature>",
        "<ds:Object><amount>9999</amount></ds:Object></ds:Signature>",
    );
    assert_refused(setup.verify(&xml), "wrapping", "Object");
}

#[test]
fn every_signature_must_verify() {
    let setup = Setup::new();
    let (cert, key) = setup
        .ca
        .issue_p256(
            "Bo Co-signer",
            Validity::Current,
            SignerUsage::NonRepudiation,
        )
        .expect("cert");
    let inner_options = SignOptions {
        reference_id: Some("form1".into()),
        ..exclusive()
    };
    let inner = setup.enveloped(&inner_options);
    let inner = inner.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let co_signer = signer(&key, &cert);

    let both = co_signer
        .sign_enveloping(inner, "obj", &exclusive())
        .expect("signs");
    let verified = setup.verify(&both).expect("verifies").expect("signed");
    let names: Vec<&str> = verified
        .signers
        .iter()
        .map(|s| s.subject.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "CN=Bo Co-signer,O=shsd test signers,C=SE",
            "CN=Anna Andersson,O=shsd test signers,C=SE"
        ]
    );

    // The inner signature broken before the outer one signs: the outer verifies, the
    // inner does not.
    let at = inner.find("<ds:SignatureValue>").expect("value") + "<ds:SignatureValue>".len();
    let flipped = if &inner[at..at + 1] == "A" { "B" } else { "A" };
    let broken = format!("{}{flipped}{}", &inner[..at], &inner[at + 1..]);
    let xml = co_signer
        .sign_enveloping(&broken, "obj", &exclusive())
        .expect("signs");
    assert_refused(setup.verify(&xml), "bad signature", "SignatureValue");
}

#[test]
fn doctype_and_entity_tricks_are_malformed() {
    let setup = Setup::new();
    let signed = setup.enveloped(&exclusive());
    let body = signed.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let with_dtd = format!("<!DOCTYPE eform [<!ENTITY amount \"9999\">]>\n{body}");
    assert_refused(setup.verify(&with_dtd), "malformed", "DOCTYPE");
    let with_entity = signed.replace("1200", "&amount;");
    assert_refused(setup.verify(&with_entity), "malformed", "&amount;");
    let external = format!("<!DOCTYPE eform SYSTEM \"http://example.org/x.dtd\">\n{body}");
    assert_refused(setup.verify(&external), "malformed", "DOCTYPE");
}

#[test]
fn policy_decides_about_unsigned_parts() {
    let setup = Setup::new();
    let options = setup.options();
    assert_eq!(
        setup.verify_with(FORM, SignaturePolicy::IfPresent, &options),
        Ok(None)
    );
    assert_refused(
        setup.verify_with(FORM, SignaturePolicy::Required, &options),
        "missing signature",
        "text/xml",
    );
    let tampered = setup.enveloped(&exclusive()).replace("1200", "9200");
    assert_eq!(
        setup.verify_with(&tampered, SignaturePolicy::Ignore, &options),
        Ok(None)
    );
    // A part of a type that cannot carry a signature.
    let part = DataPart {
        content_type: "application/pdf",
        content: b"%PDF-1.7",
        detached_signature: None,
    };
    assert_refused(
        verify_part(&part, SignaturePolicy::Required, &options),
        "missing signature",
        "application/pdf",
    );
    assert_eq!(
        verify_part(&part, SignaturePolicy::IfPresent, &options),
        Ok(None)
    );
}

#[test]
fn a_cached_chain_is_still_checked_for_validity_at_arrival() {
    let setup = Setup::new();
    let xml = setup.enveloped(&exclusive());
    assert!(setup.verify(&xml).expect("verifies now").is_some());
    let later = VerifyOptions {
        at: Utc::now() + chrono::Duration::days(3 * 365),
        ..setup.options()
    };
    assert_refused(
        setup.verify_with(&xml, SignaturePolicy::Required, &later),
        "expired",
        "Anna Andersson",
    );
    let earlier = VerifyOptions {
        at: Utc::now() - chrono::Duration::days(2),
        ..setup.options()
    };
    assert_refused(
        setup.verify_with(&xml, SignaturePolicy::Required, &earlier),
        "not yet valid",
        "valid from",
    );
}

/// The base64 text a signature carries a certificate as.
fn b64(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

#[test]
fn a_repeated_signer_is_taken_from_the_cache_by_its_certificate_text() {
    let setup = Setup::new();
    let xml = setup.enveloped(&exclusive());
    let first = setup.verify(&xml).expect("verifies").expect("signed");
    assert_eq!(setup.trust.carried_cached(), 1);
    let again = setup.verify(&xml).expect("verifies again").expect("signed");
    assert_eq!(again, first);
    assert_eq!(setup.trust.carried_cached(), 1);

    // The same certificate wrapped over lines is other text: built again, same signer.
    let text = b64(&setup.cert.der);
    let wrapped: Vec<String> = text
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let xml = xml.replace(&text, &wrapped.join("\n"));
    let rewrapped = setup.verify(&xml).expect("verifies").expect("signed");
    assert_eq!(rewrapped.signer(), first.signer());
    assert_eq!(setup.trust.carried_cached(), 2);
}

#[test]
fn a_new_certificate_under_the_same_subject_does_not_hit_the_cache() {
    let setup = Setup::new();
    let old_xml = setup.enveloped(&exclusive());
    let old = setup.verify(&old_xml).expect("verifies").expect("signed");

    // Same subject, same issuer, new key and certificate.
    let (cert, key) = setup
        .ca
        .issue_p256(
            "Anna Andersson",
            Validity::Current,
            SignerUsage::DigitalSignature,
        )
        .expect("signer");
    assert_ne!(cert.der, setup.cert.der);
    let new_xml = signer(&key, &cert)
        .sign_enveloped(FORM, &exclusive())
        .expect("signs");
    let new = setup.verify(&new_xml).expect("verifies").expect("signed");
    assert_eq!(new.signer().subject, old.signer().subject);
    assert_ne!(new.signer().fingerprint, old.signer().fingerprint);
    assert_ne!(new.signer().serial, old.signer().serial);
    assert_eq!(setup.trust.carried_cached(), 2);

    // Each cached certificate's key verifies only its own signatures.
    let new_key_old_cert = new_xml.replace(&b64(&cert.der), &b64(&setup.cert.der));
    assert_refused(
        setup.verify(&new_key_old_cert),
        "bad signature",
        "does not verify",
    );
    let old_key_new_cert = old_xml.replace(&b64(&setup.cert.der), &b64(&cert.der));
    assert_refused(
        setup.verify(&old_key_new_cert),
        "bad signature",
        "does not verify",
    );
    // And the cache still answers for both.
    assert_eq!(setup.verify(&old_xml).expect("verifies"), Some(old));
    assert_eq!(setup.verify(&new_xml).expect("verifies"), Some(new));
}

#[test]
fn an_untrusted_signer_is_not_cached() {
    let setup = Setup::new();
    let other = TestCa::root("Other CA").expect("CA");
    let (cert, key) = other
        .issue_p256("Eve", Validity::Current, SignerUsage::DigitalSignature)
        .expect("signer");
    let xml = signer(&key, &cert)
        .sign_enveloped(FORM, &exclusive())
        .expect("signs");
    for _ in 0..2 {
        assert_refused(setup.verify(&xml), "untrusted signer", "Eve");
    }
    assert_eq!(setup.trust.carried_cached(), 0);
}

#[test]
fn a_revoked_signer_is_refused_with_the_cache_warm_and_never_cached() {
    let setup = Setup::new();
    let (revoked, revoked_key) = setup
        .ca
        .issue_p256(
            "Rolf Revoked",
            Validity::Current,
            SignerUsage::DigitalSignature,
        )
        .expect("signer");
    let crl = setup.ca.crl(&[&revoked.serial]).expect("crl");
    let trust = SignerTrust::new(vec![setup.ca.cert.der.clone()], vec![crl]).expect("trust");
    let options = VerifyOptions {
        trust: &trust,
        ..setup.options()
    };
    let good = setup.enveloped(&exclusive());
    let bad = signer(&revoked_key, &revoked)
        .sign_enveloped(FORM, &exclusive())
        .expect("signs");
    for _ in 0..2 {
        let first = setup.verify_with(&good, SignaturePolicy::Required, &options);
        assert!(first.expect("the good signer verifies").is_some());
        assert_refused(
            setup.verify_with(&bad, SignaturePolicy::Required, &options),
            "revoked",
            "Rolf Revoked",
        );
    }
    assert_eq!(
        trust.carried_cached(),
        1,
        "only the good signer is remembered"
    );
}
