//! CMS SignedData (RFC 5652) verification: S/MIME `application/pkcs7-mime;
//! smime-type=signed-data` (content encapsulated) and `multipart/signed` with a detached
//! `application/pkcs7-signature` (content given by the caller). Every SignerInfo must
//! verify: the `messageDigest` signed attribute against the content, the signature over
//! the DER `SET OF` signed attributes (or over the content when there are none), and the
//! signer's trust. Claimed signing times are ignored: validity is checked at arrival.

use std::borrow::Cow;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::algorithms::{EcdsaEncoding, Hash, PublicKey, SigAlg};
use super::der::{Reader, Tlv, tag};
use super::error::malformed;
use super::{SignatureError, VerifiedContent, VerifiedSigner, VerifyOptions};

const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const DATA: &str = "1.2.840.113549.1.7.1";
const ATTR_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const ATTR_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// What a CMS signature established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmsVerified {
    /// The signer of each SignerInfo, in order.
    pub signers: Vec<VerifiedSigner>,
    /// `AsReceived` for a detached signature (the content given was verified), the
    /// encapsulated content otherwise.
    pub content: VerifiedContent,
}

/// Verifies the DER (or BER) `ContentInfo` in `signature`; `detached_content` is the
/// signed content of a `multipart/signed` part and must be absent when the content is
/// encapsulated.
pub fn verify_cms(
    signature: &[u8],
    detached_content: Option<&[u8]>,
    options: &VerifyOptions<'_>,
) -> Result<CmsVerified, SignatureError> {
    let mut outer = Reader::new(signature);
    let content_info = outer.expect(tag::SEQUENCE, "ContentInfo")?;
    let mut ci = content_info.reader();
    let content_type = ci.expect(tag::OID, "ContentInfo contentType")?.oid()?;
    if content_type != SIGNED_DATA {
        return Err(SignatureError::UnsupportedAlgorithm(format!(
            "CMS content type {content_type} (only SignedData is verified)"
        )));
    }
    let explicit = ci.expect(tag::CONTEXT_0, "ContentInfo content")?;
    let signed_data = explicit.reader().expect(tag::SEQUENCE, "SignedData")?;
    let mut sd = signed_data.reader();
    sd.expect(tag::INTEGER, "SignedData version")?;
    sd.expect(tag::SET, "SignedData digestAlgorithms")?;
    let encap = sd.expect(tag::SEQUENCE, "EncapsulatedContentInfo")?;
    let mut ec = encap.reader();
    let econtent_type = ec.expect(tag::OID, "eContentType")?.oid()?;
    let encapsulated: Option<Cow<'_, [u8]>> = match ec.optional(tag::CONTEXT_0)? {
        Some(wrapper) => Some(wrapper.reader().next()?.octets()?),
        None => None,
    };
    let certificates: Vec<&[u8]> = match sd.optional(tag::CONTEXT_0)? {
        Some(set) => {
            let mut certs = Vec::new();
            let mut reader = set.reader();
            while !reader.is_empty() {
                let choice = reader.next()?;
                // Only plain X.509 certificates; attribute and other certificates are
                // of no use for a signer.
                if choice.tag == tag::SEQUENCE {
                    certs.push(choice.raw);
                }
            }
            certs
        }
        None => Vec::new(),
    };
    sd.optional(tag::CONTEXT_1)?;
    let signer_infos = sd.expect(tag::SET, "SignerInfos")?;

    let (content, verified_content): (&[u8], VerifiedContent) =
        match (&encapsulated, detached_content) {
            (Some(inner), None) => (inner, VerifiedContent::Extracted(inner.to_vec())),
            (None, Some(given)) => (given, VerifiedContent::AsReceived),
            (Some(_), Some(_)) => {
                return Err(malformed!(
                    "a detached signature must not encapsulate content too"
                ));
            }
            (None, None) => {
                return Err(malformed!(
                    "a detached CMS signature arrived without its content"
                ));
            }
        };

    let mut signers = Vec::new();
    let mut reader = signer_infos.reader();
    while !reader.is_empty() {
        let info = reader.expect(tag::SEQUENCE, "SignerInfo")?;
        let signer = verify_signer_info(&info, &econtent_type, content, &certificates, options)?;
        signers.push(signer);
    }
    if signers.is_empty() {
        return Err(SignatureError::MissingSignature(
            "the CMS SignedData has no SignerInfo".into(),
        ));
    }
    Ok(CmsVerified {
        signers,
        content: verified_content,
    })
}

/// The content type of a CMS `ContentInfo`, if `bytes` starts with one: to tell signed
/// from encrypted or compressed `pkcs7-mime` parts that do not say which they are.
pub(crate) fn content_type(bytes: &[u8]) -> Option<String> {
    let content_info = Reader::new(bytes)
        .expect(tag::SEQUENCE, "ContentInfo")
        .ok()?;
    content_info
        .reader()
        .expect(tag::OID, "contentType")
        .ok()?
        .oid()
        .ok()
}

/// True if `bytes` is a CMS SignedData `ContentInfo`.
pub(crate) fn is_signed_data(bytes: &[u8]) -> bool {
    content_type(bytes).as_deref() == Some(SIGNED_DATA)
}

/// Verifies one SignerInfo over `content`.
fn verify_signer_info(
    info: &Tlv<'_>,
    econtent_type: &str,
    content: &[u8],
    certificates: &[&[u8]],
    options: &VerifyOptions<'_>,
) -> Result<VerifiedSigner, SignatureError> {
    let mut si = info.reader();
    si.expect(tag::INTEGER, "SignerInfo version")?;
    let sid = si.next()?;
    let digest_alg = algorithm_oid(&si.expect(tag::SEQUENCE, "digestAlgorithm")?)?;
    let hash = Hash::from_oid(&digest_alg)
        .ok_or_else(|| SignatureError::UnsupportedAlgorithm(format!("digest {digest_alg}")))?
        .allowed(options.allow_legacy_sha1)?;
    let signed_attrs = si.optional(tag::CONTEXT_0)?;
    let sig_alg_oid = algorithm_oid(&si.expect(tag::SEQUENCE, "signatureAlgorithm")?)?;
    let sig_alg = SigAlg::from_oid(&sig_alg_oid, Some(hash)).ok_or_else(|| {
        SignatureError::UnsupportedAlgorithm(format!("signature algorithm {sig_alg_oid}"))
    })?;
    sig_alg.hash.allowed(options.allow_legacy_sha1)?;
    let signature = si.expect(tag::OCTET_STRING, "signature")?.content;

    let leaf = find_signer_cert(&sid, certificates)?;
    let (_, cert) =
        X509Certificate::from_der(leaf).map_err(|e| malformed!("signer certificate: {e}"))?;
    let key = PublicKey::from_spki(cert.public_key())?;

    let digest = ring::digest::digest(hash.ring(), content);
    match signed_attrs {
        Some(attrs) => {
            if !attrs.definite {
                return Err(malformed!("signed attributes are not DER"));
            }
            check_signed_attrs(&attrs, econtent_type, digest.as_ref())?;
            // The signature covers the attributes re-tagged as the DER SET OF they are.
            let mut der = attrs.raw.to_vec();
            der[0] = tag::SET;
            key.verify(sig_alg, EcdsaEncoding::Der, &der, signature)?;
        }
        None => {
            if econtent_type != DATA {
                return Err(malformed!(
                    "signed attributes are required for content type {econtent_type}"
                ));
            }
            key.verify(sig_alg, EcdsaEncoding::Der, content, signature)?;
        }
    }
    let others: Vec<Vec<u8>> = certificates
        .iter()
        .filter(|c| **c != leaf)
        .map(|c| c.to_vec())
        .collect();
    options.trust.verify(leaf, &others, options.at)
}

/// The OID of an AlgorithmIdentifier.
fn algorithm_oid(alg: &Tlv<'_>) -> Result<String, SignatureError> {
    alg.reader().expect(tag::OID, "algorithm")?.oid()
}

/// Checks the `messageDigest` (exactly one, equal to `digest`) and `contentType` (equal
/// to the encapsulated content type) signed attributes.
fn check_signed_attrs(
    attrs: &Tlv<'_>,
    econtent_type: &str,
    digest: &[u8],
) -> Result<(), SignatureError> {
    let mut message_digest = None;
    let mut content_type = None;
    let mut reader = attrs.reader();
    while !reader.is_empty() {
        let attr = reader.expect(tag::SEQUENCE, "signed attribute")?;
        let mut a = attr.reader();
        let oid = a.expect(tag::OID, "attribute type")?.oid()?;
        let values = a.expect(tag::SET, "attribute values")?;
        let mut values = values.reader();
        let value = values.next()?;
        if !values.is_empty() {
            return Err(malformed!("signed attribute {oid} has more than one value"));
        }
        let slot = match oid.as_str() {
            ATTR_MESSAGE_DIGEST => &mut message_digest,
            ATTR_CONTENT_TYPE => &mut content_type,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(malformed!("signed attribute {oid} appears twice"));
        }
    }
    let claimed_type = content_type
        .ok_or_else(|| malformed!("the signed attributes lack contentType"))?
        .oid()?;
    if claimed_type != econtent_type {
        return Err(malformed!(
            "signed contentType {claimed_type} differs from the content's {econtent_type}"
        ));
    }
    let claimed =
        message_digest.ok_or_else(|| malformed!("the signed attributes lack messageDigest"))?;
    if claimed.tag != tag::OCTET_STRING || claimed.content != digest {
        return Err(SignatureError::BadDigest(
            "the content does not match the signed messageDigest".into(),
        ));
    }
    Ok(())
}

/// The certificate a SignerInfo's `sid` names: issuer and serial number, or subject key
/// identifier.
fn find_signer_cert<'c>(
    sid: &Tlv<'_>,
    certificates: &[&'c [u8]],
) -> Result<&'c [u8], SignatureError> {
    let parsed = certificates
        .iter()
        .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| (*der, c)));
    let mut matches: Vec<&[u8]> = Vec::new();
    match sid.tag {
        tag::SEQUENCE => {
            let mut r = sid.reader();
            let issuer = r.expect(tag::SEQUENCE, "sid issuer")?.raw;
            let serial = r.expect(tag::INTEGER, "sid serialNumber")?.content;
            for (der, cert) in parsed {
                if cert.issuer().as_raw() == issuer
                    && cert.raw_serial() == serial
                    && !matches.contains(&der)
                {
                    matches.push(der);
                }
            }
        }
        tag::CONTEXT_0_PRIMITIVE => {
            for (der, cert) in parsed {
                let ski = cert
                    .extensions()
                    .iter()
                    .find_map(|ext| match ext.parsed_extension() {
                        ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
                        _ => None,
                    });
                if ski == Some(sid.content) && !matches.contains(&der) {
                    matches.push(der);
                }
            }
        }
        other => return Err(malformed!("SignerInfo sid with tag 0x{other:02X}")),
    }
    match matches[..] {
        [one] => Ok(one),
        [] => Err(SignatureError::UntrustedSigner(
            "the signer's certificate is not in the SignedData".into(),
        )),
        _ => Err(malformed!(
            "the SignerInfo matches more than one certificate"
        )),
    }
}
