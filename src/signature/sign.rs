//! A small XML-DSig signer over ring, for tests and benches: enveloped or enveloping,
//! C14N 1.0 or exclusive C14N, `URI=""` or `#id`. The broker never signs; this exists so
//! that fixtures (including the 10 MiB bench document) are made without external tools,
//! and so that broken signatures can be built on purpose. It inserts text into the
//! document rather than re-serialising it, so the signed bytes stay the caller's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self as ring_sig, EcdsaKeyPair, KeyPair, RsaKeyPair};

use super::SignatureError;
use super::algorithms::Hash;
use super::xml::c14n::{DigestSink, Kind, Method, Subset, canonicalize, uri};
use super::xml::tree::{Document, parse};

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const DIGEST_SLOT: &str = "@@SHSD-DIGEST@@";
const VALUE_SLOT: &str = "@@SHSD-SIGNATURE@@";

/// Why a document could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The PKCS#8 key is not an RSA, P-256 or P-384 key ring can sign with.
    #[error("unusable signing key: {0}")]
    Key(String),
    /// The document could not be read or canonicalised.
    #[error("cannot sign this document: {0}")]
    Document(#[from] SignatureError),
    /// ring failed to sign.
    #[error("signing failed")]
    Crypto,
}

/// How to sign.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// Exclusive C14N (else C14N 1.0) for SignedInfo and the reference.
    pub exclusive: bool,
    /// Reference `#id` instead of `URI=""` (enveloped only).
    pub reference_id: Option<String>,
    /// Digest the reference with SHA-1 (for testing the legacy policy), else SHA-256.
    pub sha1_digest: bool,
}

/// A signing key and the certificates put in `KeyInfo` (signer first).
pub struct XmlSigner {
    key: SigningKey,
    certificates: Vec<Vec<u8>>,
    rng: SystemRandom,
}

enum SigningKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair, &'static str),
}

impl XmlSigner {
    /// A signer from a PKCS#8 key (RSA ≥ 2048 bits, P-256 or P-384) and the DER
    /// certificates to carry, the signer's first.
    pub fn from_pkcs8(pkcs8: &[u8], certificates: Vec<Vec<u8>>) -> Result<Self, SignError> {
        let rng = SystemRandom::new();
        let key = if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
        {
            SigningKey::Ecdsa(k, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256")
        } else if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&ring_sig::ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8, &rng)
        {
            SigningKey::Ecdsa(k, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384")
        } else {
            SigningKey::Rsa(
                RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| SignError::Key(e.to_string()))?,
            )
        };
        Ok(XmlSigner {
            key,
            certificates,
            rng,
        })
    }

    /// Signs `message` as the signature methods here do (RSA-SHA256 PKCS#1 v1.5, or
    /// ECDSA with a fixed `r || s` value).
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.key {
            SigningKey::Rsa(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(&ring_sig::RSA_PKCS1_SHA256, &self.rng, message, &mut out)
                    .map_err(|_| SignError::Crypto)?;
                Ok(out)
            }
            SigningKey::Ecdsa(k, _) => Ok(k
                .sign(&self.rng, message)
                .map_err(|_| SignError::Crypto)?
                .as_ref()
                .to_vec()),
        }
    }

    /// The public key bits (an `RSAPublicKey` or an uncompressed point), as ring's
    /// `UnparsedPublicKey` takes them.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            SigningKey::Rsa(k) => k.public_key().as_ref().to_vec(),
            SigningKey::Ecdsa(k, _) => k.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `xml` with an enveloped signature inserted before the root's end tag.
    pub fn sign_enveloped(&self, xml: &str, options: &SignOptions) -> Result<String, SignError> {
        let end = xml
            .rfind("</")
            .ok_or_else(|| SignatureError::Malformed("the root element has no end tag".into()))?;
        let uri = match &options.reference_id {
            Some(id) => format!("#{id}"),
            None => String::new(),
        };
        let template = self.template(&uri, true, options, "");
        let doc = format!("{}{template}{}", &xml[..end], &xml[end..]);
        self.fill(doc, options, |parsed| {
            parsed
                .child_elements(Document::ROOT)
                .filter(|&c| parsed.elements[c].is(DSIG, "Signature"))
                .last()
                .unwrap_or(Document::ROOT)
        })
    }

    /// Signs `content` (XML or text) with an enveloping signature whose `Object` has Id
    /// `object_id`.
    pub fn sign_enveloping(
        &self,
        content: &str,
        object_id: &str,
        options: &SignOptions,
    ) -> Result<String, SignError> {
        let object = format!("<ds:Object Id=\"{object_id}\">{content}</ds:Object>");
        let doc = self.template(&format!("#{object_id}"), false, options, &object);
        self.fill(doc, options, |_| Document::ROOT)
    }

    /// The Signature element with slots for the digest and the value.
    fn template(&self, uri: &str, enveloped: bool, options: &SignOptions, object: &str) -> String {
        let c14n = if options.exclusive {
            uri::EXC
        } else {
            uri::C14N10
        };
        let method = match &self.key {
            SigningKey::Rsa(_) => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            SigningKey::Ecdsa(_, method) => method,
        };
        let digest = if options.sha1_digest {
            "http://www.w3.org/2000/09/xmldsig#sha1"
        } else {
            "http://www.w3.org/2001/04/xmlenc#sha256"
        };
        let enveloped = if enveloped {
            "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>"
        } else {
            ""
        };
        let certs: String = self
            .certificates
            .iter()
            .map(|c| {
                format!(
                    "<ds:X509Certificate>{}</ds:X509Certificate>",
                    STANDARD.encode(c)
                )
            })
            .collect();
        format!(
            "<ds:Signature xmlns:ds=\"{DSIG}\"><ds:SignedInfo>\
             <ds:CanonicalizationMethod Algorithm=\"{c14n}\"/>\
             <ds:SignatureMethod Algorithm=\"{method}\"/>\
             <ds:Reference URI=\"{uri}\"><ds:Transforms>{enveloped}\
             <ds:Transform Algorithm=\"{c14n}\"/></ds:Transforms>\
             <ds:DigestMethod Algorithm=\"{digest}\"/>\
             <ds:DigestValue>{DIGEST_SLOT}</ds:DigestValue></ds:Reference></ds:SignedInfo>\
             <ds:SignatureValue>{VALUE_SLOT}</ds:SignatureValue>\
             <ds:KeyInfo><ds:X509Data>{certs}</ds:X509Data></ds:KeyInfo>{object}</ds:Signature>"
        )
    }

    /// Computes the digest and the signature value of the (last) template in `doc`.
    fn fill(
        &self,
        doc: String,
        options: &SignOptions,
        find_signature: impl Fn(&Document<'_>) -> usize,
    ) -> Result<String, SignError> {
        let method = Method {
            kind: if options.exclusive {
                Kind::Exclusive(Vec::new())
            } else {
                Kind::Inclusive10
            },
            with_comments: false,
        };
        let parsed = parse(doc.as_bytes())?;
        let signature = find_signature(&parsed);
        let subset = match (&options.reference_id, signature == Document::ROOT) {
            (_, true) => {
                let object = parsed
                    .child_elements(Document::ROOT)
                    .find(|&c| parsed.elements[c].is(DSIG, "Object"))
                    .ok_or_else(|| SignatureError::Malformed("no Object".into()))?;
                Subset::Element(object)
            }
            (Some(id), false) => {
                let target = (0..parsed.elements.len())
                    .find(|&i| {
                        parsed.attr(i, "Id") == Some(id)
                            || parsed.attr(i, "ID") == Some(id)
                            || parsed.attr(i, "id") == Some(id)
                    })
                    .ok_or_else(|| SignatureError::Malformed(format!("no element with id {id}")))?;
                Subset::Element(target)
            }
            (None, false) => Subset::Document,
        };
        let excluded = (signature != Document::ROOT).then_some(signature);
        let hash = if options.sha1_digest {
            Hash::Sha1
        } else {
            Hash::Sha256
        };
        let mut sink = DigestSink::new(hash.ring());
        canonicalize(&parsed, subset, excluded, &method, &mut sink)?;
        let digest = STANDARD.encode(sink.finish());
        let doc = replace_last(&doc, DIGEST_SLOT, &digest);

        let parsed = parse(doc.as_bytes())?;
        let signature = find_signature(&parsed);
        let signed_info = parsed
            .child_elements(signature)
            .find(|&c| parsed.elements[c].is(DSIG, "SignedInfo"))
            .ok_or_else(|| SignatureError::Malformed("no SignedInfo".into()))?;
        let mut canonical = Vec::new();
        canonicalize(
            &parsed,
            Subset::Element(signed_info),
            None,
            &method,
            &mut canonical,
        )?;
        let value = STANDARD.encode(self.sign_bytes(&canonical)?);
        Ok(replace_last(&doc, VALUE_SLOT, &value))
    }
}

/// `text` with the last occurrence of `slot` replaced.
fn replace_last(text: &str, slot: &str, value: &str) -> String {
    match text.rfind(slot) {
        Some(at) => format!("{}{value}{}", &text[..at], &text[at + slot.len()..]),
        None => text.to_owned(),
    }
}
