//! Signed data parts against independent implementations, made at test time: XML
//! signed by `xmlsec1` (libxmlsec1 over libxml2 and OpenSSL) and S/MIME made by
//! `openssl cms` / `openssl smime`, with RSA-2048 and ECDSA P-256 keys that OpenSSL
//! generates and certificates from a signer CA made with rcgen. Everything must verify
//! through the public API; the refusals each carry their reason. `scripts/test` installs
//! both tools; a missing tool fails the test with a message saying so.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use rcgen::KeyPair;
use shsd::signature::sign::{SignOptions, XmlSigner};
use shsd::signature::test_pki::{SignerUsage, TestCa, TestCert, Validity};
use shsd::signature::{
    DataPart, SignatureError, SignatureFormat, SignaturePolicy, SignerTrust, Verified,
    VerifiedContent, VerifyOptions, verify_part,
};
use tempfile::TempDir;

mod cms;

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const C14N_COMMENTS: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
const EXC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const EXC_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// An e-form with comments, a PI, character references, mixed content and namespaces.
const FORM_BODY: &str = "<eform xmlns=\"urn:example:eform\" xmlns:p=\"urn:example:person\" Id=\"form1\">\n\
  <!-- filled in by the portal -->\n  <?portal version=\"2\"?>\n\
  <p:applicant p:role=\"main\" b=\"2\" a=\"1\"><p:name>Åsa Öberg &amp; Co</p:name><p:pnr>19800101-1234</p:pnr></p:applicant>\n\
  <amount currency=\"SEK\">1200</amount>\n  <note>Line one&#13;\nLine <b>two</b></note>\n";

/// Runs a tool, panicking with its name, arguments and output if it is missing or fails.
fn run(program: &str, args: &[&str], dir: &Path) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program} ({e}): scripts/test installs it (apt-get install {program})"
            )
        });
    assert!(
        output.status.success(),
        "{program} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The key kinds the interop tests sign with.
#[derive(Debug, Clone, Copy)]
enum Key {
    Rsa2048,
    P256,
}

impl Key {
    fn genpkey_args(self) -> [&'static str; 4] {
        match self {
            Key::Rsa2048 => ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Key::P256 => ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        }
    }

    fn xml_method(self) -> &'static str {
        match self {
            Key::Rsa2048 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            Key::P256 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        }
    }
}

/// A temp dir with a signer CA (rcgen) trusted by `trust`.
struct Lab {
    dir: TempDir,
    ca: TestCa,
    trust: SignerTrust,
}

/// A signer: OpenSSL key file, certificate file (rcgen-issued for that key).
struct Signer {
    key: PathBuf,
    cert_file: PathBuf,
    cert: TestCert,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::root("Interop Signer CA").expect("CA");
        fs::write(dir.path().join("ca.pem"), &ca.cert.pem).expect("write CA");
        let trust = SignerTrust::new(vec![ca.cert.der.clone()], Vec::new()).expect("trust");
        Lab { dir, ca, trust }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A key made by OpenSSL and a certificate for it from `ca`.
    fn signer(&self, ca: &TestCa, name: &str, key: Key, validity: Validity) -> Signer {
        let key_file = self.path(&format!("{name}.key"));
        let mut args = vec!["genpkey"];
        args.extend(key.genpkey_args());
        args.extend(["-out", key_file.to_str().expect("utf-8 path")]);
        run("openssl", &args, self.dir.path());
        let pem = fs::read_to_string(&key_file).expect("key file");
        let public = KeyPair::from_pem(&pem).expect("rcgen reads the OpenSSL key");
        let cert = ca
            .issue(name, &public, validity, SignerUsage::NonRepudiation)
            .expect("certificate");
        let cert_file = self.path(&format!("{name}.crt"));
        fs::write(&cert_file, &cert.pem).expect("write cert");
        Signer {
            key: key_file,
            cert_file,
            cert,
        }
    }

    fn options(&self) -> VerifyOptions<'_> {
        VerifyOptions {
            trust: &self.trust,
            at: Utc::now(),
            allow_legacy_sha1: false,
        }
    }

    /// Signs `template` with xmlsec1.
    fn xmlsec_sign(&self, signer: &Signer, template: &str, id_attrs: &[&str]) -> String {
        let input = self.path("template.xml");
        let output = self.path("signed.xml");
        fs::write(&input, template).expect("write template");
        let keys = format!("{},{}", signer.key.display(), signer.cert_file.display());
        let mut args = vec!["--sign", "--privkey-pem", &keys];
        for id in id_attrs {
            args.extend(["--id-attr:Id", id]);
        }
        args.extend([
            "--output",
            output.to_str().expect("utf-8"),
            input.to_str().expect("utf-8"),
        ]);
        run("xmlsec1", &args, self.dir.path());
        fs::read_to_string(output).expect("signed output")
    }

    /// Signs `content` with `openssl cms -sign` (or `smime`), returning the DER.
    fn openssl_sign(&self, tool: &str, signer: &Signer, content: &[u8], extra: &[&str]) -> Vec<u8> {
        let input = self.path("content.bin");
        let output = self.path("signed.der");
        fs::write(&input, content).expect("write content");
        let mut args = vec![
            tool,
            "-sign",
            "-binary",
            "-in",
            input.to_str().expect("utf-8"),
            "-signer",
            signer.cert_file.to_str().expect("utf-8"),
            "-inkey",
            signer.key.to_str().expect("utf-8"),
            "-outform",
            "DER",
            "-out",
            output.to_str().expect("utf-8"),
        ];
        args.extend(extra);
        run("openssl", &args, self.dir.path());
        fs::read(output).expect("signed DER")
    }
}

/// A signature template: enveloped (before the root's end tag) or enveloping.
fn template(key: Key, c14n: &str, uri: &str, enveloping: bool) -> String {
    let method = key.xml_method();
    let enveloped = if enveloping {
        String::new()
    } else {
        format!("<Transform Algorithm=\"{ENVELOPED}\"/>")
    };
    let signature = |object: &str| {
        format!(
            "<Signature xmlns=\"{DSIG}\"><SignedInfo><CanonicalizationMethod Algorithm=\"{c14n}\"/>\
             <SignatureMethod Algorithm=\"{method}\"/><Reference URI=\"{uri}\"><Transforms>{enveloped}\
             <Transform Algorithm=\"{c14n}\"/></Transforms>\
             <DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><DigestValue/>\
             </Reference></SignedInfo><SignatureValue/><KeyInfo><X509Data/></KeyInfo>{object}</Signature>"
        )
    };
    if enveloping {
        let object = format!("<Object Id=\"obj\">{FORM_BODY}</eform></Object>");
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
            signature(&object)
        )
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- before -->\n{FORM_BODY}{}</eform>\n",
            signature("")
        )
    }
}

fn xml_part(xml: &str) -> DataPart<'_> {
    DataPart {
        content_type: "application/xml",
        content: xml.as_bytes(),
        detached_signature: None,
    }
}

#[track_caller]
fn verified(result: Result<Option<Verified>, SignatureError>) -> Verified {
    match result {
        Ok(Some(v)) => v,
        other => panic!("expected a verified signature, got {other:?}"),
    }
}

#[track_caller]
fn refused(result: Result<Option<Verified>, SignatureError>, kind: &str) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.kind(), kind, "{e}");
            e.to_string()
        }
        Ok(v) => panic!("expected {kind}, verified {v:?}"),
    }
}

#[test]
fn xmlsec1_signatures_verify_rsa_and_p256_c14n_and_exclusive_enveloped_and_enveloping() {
    let lab = Lab::new();
    for key in [Key::Rsa2048, Key::P256] {
        let signer = lab.signer(&lab.ca, &format!("{key:?} signer"), key, Validity::Current);
        let cases = [
            (C14N, "", false),
            (C14N_COMMENTS, "", false),
            (EXC, "#form1", false),
            (EXC_COMMENTS, "", false),
            (EXC, "#obj", true),
            (C14N, "#obj", true),
        ];
        for (c14n, uri, enveloping) in cases {
            let what = format!("{key:?} {c14n} URI={uri:?} enveloping={enveloping}");
            let signed = lab.xmlsec_sign(
                &signer,
                &template(key, c14n, uri, enveloping),
                &["eform", &format!("{DSIG}:Object")],
            );
            let result = verify_part(
                &xml_part(&signed),
                SignaturePolicy::Required,
                &lab.options(),
            );
            let v = match result {
                Ok(Some(v)) => v,
                other => panic!("{what}: {other:?}\n{signed}"),
            };
            assert_eq!(v.format, SignatureFormat::XmlDsig);
            assert_eq!(v.signer().serial, hex(&signer.cert.serial), "{what}");
            if enveloping {
                let VerifiedContent::Extracted(content) = &v.content else {
                    panic!("{what}: enveloping must extract the Object's content");
                };
                let text = String::from_utf8_lossy(content);
                assert!(
                    text.starts_with("<eform xmlns=\"urn:example:eform\""),
                    "{what}: {text}"
                );
                assert!(text.contains("Åsa Öberg &amp; Co"), "{what}: {text}");
            } else {
                assert_eq!(v.content, VerifiedContent::AsReceived, "{what}");
            }

            // The same document altered after signing.
            let altered = signed.replace(">1200<", ">9200<");
            let reason = refused(
                verify_part(
                    &xml_part(&altered),
                    SignaturePolicy::Required,
                    &lab.options(),
                ),
                "bad digest",
            );
            assert!(reason.starts_with("bad digest:"), "{what}: {reason}");
        }
    }
}

#[test]
fn xmlsec1_verifies_what_shsd_signs() {
    // The other direction: shsd's canonicaliser (through its test signer) agrees with
    // libxmlsec1's, or xmlsec1 would not verify these.
    let lab = Lab::new();
    let (cert, key) = lab
        .ca
        .issue_p256(
            "shsd signer",
            Validity::Current,
            SignerUsage::DigitalSignature,
        )
        .expect("cert");
    let signer =
        XmlSigner::from_pkcs8(&key.serialize_der(), vec![cert.der.clone()]).expect("signer");
    let form = format!("<?xml version=\"1.0\"?>\n{FORM_BODY}</eform>\n");
    for exclusive in [false, true] {
        let options = SignOptions {
            exclusive,
            ..SignOptions::default()
        };
        let signed = signer.sign_enveloped(&form, &options).expect("signs");
        let file = lab.path("shsd-signed.xml");
        fs::write(&file, &signed).expect("write");
        run(
            "xmlsec1",
            &[
                "--verify",
                "--trusted-pem",
                "ca.pem",
                file.to_str().expect("utf-8"),
            ],
            lab.dir.path(),
        );
        verified(verify_part(
            &xml_part(&signed),
            SignaturePolicy::Required,
            &lab.options(),
        ));
    }
}

#[test]
fn xmlsec1_signatures_by_untrusted_expired_or_revoked_signers_are_refused() {
    let lab = Lab::new();
    let stranger_ca = TestCa::root("Stranger CA").expect("CA");
    let stranger = lab.signer(&stranger_ca, "stranger", Key::P256, Validity::Current);
    let expired = lab.signer(&lab.ca, "expired", Key::P256, Validity::Expired);
    let revoked = lab.signer(&lab.ca, "revoked", Key::Rsa2048, Validity::Current);
    let tpl = |key| template(key, EXC, "", false);

    let signed = lab.xmlsec_sign(&stranger, &tpl(Key::P256), &[]);
    let reason = refused(
        verify_part(
            &xml_part(&signed),
            SignaturePolicy::Required,
            &lab.options(),
        ),
        "untrusted signer",
    );
    assert!(reason.contains("Stranger CA"), "{reason}");

    let signed = lab.xmlsec_sign(&expired, &tpl(Key::P256), &[]);
    refused(
        verify_part(
            &xml_part(&signed),
            SignaturePolicy::Required,
            &lab.options(),
        ),
        "expired",
    );

    let signed = lab.xmlsec_sign(&revoked, &tpl(Key::Rsa2048), &[]);
    let crl = lab.ca.crl(&[&revoked.cert.serial]).expect("crl");
    let trust = SignerTrust::new(vec![lab.ca.cert.der.clone()], vec![crl]).expect("trust");
    let options = VerifyOptions {
        trust: &trust,
        ..lab.options()
    };
    refused(
        verify_part(&xml_part(&signed), SignaturePolicy::Required, &options),
        "revoked",
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = find(haystack, from).expect("present");
    let mut out = haystack[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&haystack[at + from.len()..]);
    out
}

trait ReplaceByte {
    fn replace_byte(&self, from: u8, to: u8) -> Vec<u8>;
}

impl ReplaceByte for [u8] {
    fn replace_byte(&self, from: u8, to: u8) -> Vec<u8> {
        let mut out = self.to_vec();
        if let Some(b) = out.iter_mut().find(|b| **b == from) {
            *b = to;
        }
        out
    }
}
