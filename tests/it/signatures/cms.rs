//! S/MIME signed parts made by `openssl cms -sign` and `openssl smime -sign`: attached
//! (`pkcs7-mime; smime-type=signed-data`, DER and streamed BER) and detached
//! (`multipart/signed` with `application/pkcs7-signature`), and the refusals.

use std::collections::HashMap;
use std::fs;

use shsd::signature::test_pki::{TestCa, Validity};
use shsd::signature::{
    DataPart, SignatureError, SignatureFormat, SignaturePolicy, SignerTrust, Verified,
    VerifiedContent, VerifyOptions, verify_part,
};

use super::{Key, Lab, ReplaceByte, Signer, find, hex, refused, replace, run, verified};

#[test]
fn openssl_cms_and_smime_attached_and_detached_verify() {
    let lab = Lab::new();
    let content =
        b"Content-Type: text/plain; charset=UTF-8\r\n\r\nAnsokan om bygglov\r\nBelopp: 1200\r\n";
    for key in [Key::Rsa2048, Key::P256] {
        let signer = lab.signer(
            &lab.ca,
            &format!("{key:?} cms signer"),
            key,
            Validity::Current,
        );
        // Attached (pkcs7-mime signed-data), by cms and smime, DER and streamed BER.
        let attached = [
            lab.openssl_sign("cms", &signer, content, &["-nodetach"]),
            lab.openssl_sign("cms", &signer, content, &["-nodetach", "-stream"]),
            // The signer named by subject key identifier instead of issuer and serial.
            lab.openssl_sign("cms", &signer, content, &["-nodetach", "-keyid"]),
            lab.openssl_sign("smime", &signer, content, &["-nodetach"]),
        ];
        for der in &attached {
            let part = DataPart {
                content_type: "application/pkcs7-mime; smime-type=signed-data; name=smime.p7m",
                content: der,
                detached_signature: None,
            };
            let v = verified(verify_part(
                &part,
                SignaturePolicy::Required,
                &lab.options(),
            ));
            assert_eq!(v.format, SignatureFormat::Cms);
            assert_eq!(v.content, VerifiedContent::Extracted(content.to_vec()));
            assert_eq!(v.signer().serial, hex(&signer.cert.serial));

            // One byte of the encapsulated content changed.
            let at = find(der, b"Belopp: 1200").expect("content inside") + 8;
            let mut altered = der.clone();
            altered[at] = b'9';
            let part = DataPart {
                content: &altered,
                ..part
            };
            refused(
                verify_part(&part, SignaturePolicy::Required, &lab.options()),
                "bad digest",
            );
        }
        // Detached (multipart/signed + application/pkcs7-signature).
        let detached = [
            lab.openssl_sign("cms", &signer, content, &[]),
            lab.openssl_sign("smime", &signer, content, &[]),
        ];
        for der in &detached {
            let part = DataPart {
                content_type: "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256",
                content,
                detached_signature: Some(der),
            };
            let v = verified(verify_part(
                &part,
                SignaturePolicy::IfPresent,
                &lab.options(),
            ));
            assert_eq!(v.content, VerifiedContent::AsReceived);
            let altered = content.replace_byte(b'1', b'9');
            let part = DataPart {
                content: &altered,
                ..part
            };
            let reason = refused(
                verify_part(&part, SignaturePolicy::IfPresent, &lab.options()),
                "bad digest",
            );
            assert!(reason.contains("messageDigest"), "{reason}");
        }
    }
}

#[test]
fn openssl_cms_refusals_carry_their_reason() {
    let lab = Lab::new();
    let content = b"signed form";
    // Two trusted signers whose certificates have the same length, for the swap below.
    let (signer, other) = same_length_signers(&lab);
    let attached = |der: &[u8]| -> Result<Option<Verified>, SignatureError> {
        let part = DataPart {
            content_type: "application/pkcs7-mime; smime-type=signed-data",
            content: der,
            detached_signature: None,
        };
        verify_part(&part, SignaturePolicy::Required, &lab.options())
    };

    let sha1 = lab.openssl_sign("cms", &signer, content, &["-nodetach", "-md", "sha1"]);
    let reason = refused(attached(&sha1), "unsupported algorithm");
    assert!(reason.contains("SHA-1"), "{reason}");

    let stranger_ca = TestCa::root("Stranger CA").expect("CA");
    let stranger = lab.signer(&stranger_ca, "stranger", Key::Rsa2048, Validity::Current);
    let der = lab.openssl_sign("cms", &stranger, content, &["-nodetach"]);
    refused(attached(&der), "untrusted signer");

    let expired = lab.signer(&lab.ca, "expired", Key::P256, Validity::Expired);
    let der = lab.openssl_sign("cms", &expired, content, &["-nodetach"]);
    refused(attached(&der), "expired");

    let der = lab.openssl_sign("cms", &signer, content, &["-nodetach"]);
    let crl = lab.ca.crl(&[&signer.cert.serial]).expect("crl");
    let trust = SignerTrust::new(vec![lab.ca.cert.der.clone()], vec![crl]).expect("trust");
    let options = VerifyOptions {
        trust: &trust,
        ..lab.options()
    };
    let part = DataPart {
        content_type: "application/pkcs7-mime; smime-type=signed-data",
        content: &der,
        detached_signature: None,
    };
    refused(
        verify_part(&part, SignaturePolicy::Required, &options),
        "revoked",
    );

    // A signature of one signer with another (trusted) signer's certificate swapped in.
    // (The same length, so that the DER around it stays well-formed.)
    let swapped = lab.openssl_sign("cms", &signer, content, &["-nodetach"]);
    let swapped = replace(&swapped, &signer.cert.der, &other.cert.der);
    let reason = refused(attached(&swapped), "untrusted signer");
    assert!(reason.contains("not in the SignedData"), "{reason}");

    // Without the smime-type parameter the structure tells: signed data is verified,
    // encrypted data is passed on unopened (and so is unsigned as far as policy goes).
    let der = lab.openssl_sign("cms", &signer, content, &["-nodetach"]);
    let part = DataPart {
        content_type: "application/pkcs7-mime",
        content: &der,
        detached_signature: None,
    };
    verified(verify_part(
        &part,
        SignaturePolicy::Required,
        &lab.options(),
    ));
    let recipient = lab.signer(&lab.ca, "recipient", Key::Rsa2048, Validity::Current);
    fs::write(lab.path("plain.txt"), content).expect("write");
    let encrypted = run(
        "openssl",
        &[
            "cms",
            "-encrypt",
            "-binary",
            "-aes256",
            "-in",
            "plain.txt",
            "-outform",
            "DER",
            recipient.cert_file.to_str().expect("utf-8"),
        ],
        lab.dir.path(),
    );
    for content_type in [
        "application/pkcs7-mime",
        "application/pkcs7-mime; smime-type=enveloped-data",
    ] {
        let part = DataPart {
            content_type,
            content: &encrypted,
            detached_signature: None,
        };
        assert_eq!(
            verify_part(&part, SignaturePolicy::IfPresent, &lab.options()),
            Ok(None)
        );
        refused(
            verify_part(&part, SignaturePolicy::Required, &lab.options()),
            "missing signature",
        );
    }

    // Not a CMS structure at all.
    refused(attached(b"\x30\x03\x02\x01"), "malformed");
}

/// Two P-256 signers of the lab's CA whose certificates have the same DER length. The
/// length varies with the random serial and the CA's signature, over a few values, so
/// some pair shares one after a handful of certificates. Searching for a match to one
/// fixed signer instead failed when that signer's length was a rare one.
fn same_length_signers(lab: &Lab) -> (Signer, Signer) {
    let mut by_length: HashMap<usize, Signer> = HashMap::new();
    for i in 0..200 {
        let name = format!("signer {i:03}");
        let candidate = lab.signer(&lab.ca, &name, Key::P256, Validity::Current);
        let length = candidate.cert.der.len();
        if let Some(first) = by_length.remove(&length) {
            return (first, candidate);
        }
        by_length.insert(length, candidate);
    }
    panic!("200 certificates and no two of the same length");
}
