//! Signed data parts (spec §7), sans I/O: XML-DSig signatures inside XML parts, CMS
//! (S/MIME) signed parts, and the trust in their signers.
//!
//! Intake calls [`verify_part`] with a data part's content type and bytes (and, for
//! `multipart/signed`, the detached signature), the product's [`SignaturePolicy`] and
//! [`VerifyOptions`] (the signer trust, the arrival time, whether SHA-1 is allowed). The
//! answer is who signed and *what* was signed — the part as received, or only the content
//! extracted from it — so that exactly what was verified is handed on; or a
//! [`SignatureError`] whose `Display` is the reason for the `errorinfo`.
//!
//! - [`xmldsig`]: enveloped and enveloping XML signatures over the canonicaliser of `xml/c14n.rs`.
//! - [`cms`]: CMS SignedData, encapsulated or detached, over a small BER reader (`der`).
//! - [`trust`]: chains to the signer trust anchors, validity, key usage, CRLs.
//! - [`sign`], [`test_pki`]: an XML-DSig signer and a signer PKI for tests and benches
//!   (never used by the broker).

mod algorithms;
pub mod cms;
mod der;
mod error;
pub mod sign;
pub mod test_pki;
pub mod trust;
pub(crate) mod xml;
pub mod xmldsig;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

pub(crate) use algorithms::x509_signed_by;
pub use cms::{CmsVerified, verify_cms};
pub use error::SignatureError;
pub use trust::{SignerTrust, TrustError, VerifiedSigner};
pub use xmldsig::{XmlVerified, verify_xml};

/// What a product demands of the signatures on a type of data part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// The part must carry a signature, and it must verify.
    Required,
    /// A signature, if the part carries one, must verify; an unsigned part passes.
    #[default]
    IfPresent,
    /// Signatures are not looked at (the part is passed on as it is).
    Ignore,
}

/// How signatures are checked, beside the policy.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The signer trust anchors and CRLs (per product or node-wide).
    pub trust: &'a SignerTrust,
    /// The moment certificates must be valid at: the arrival time, never a signing time
    /// claimed inside the signature.
    pub at: DateTime<Utc>,
    /// Whether SHA-1 digests and signatures are accepted (legacy products only).
    pub allow_legacy_sha1: bool,
}

/// A data part as intake sees it, transfer encoding already removed.
#[derive(Debug, Clone, Copy)]
pub struct DataPart<'a> {
    /// The part's `Content-Type` header value, parameters included.
    pub content_type: &'a str,
    /// The part's content: the XML, the DER of a `pkcs7-mime` part, or for
    /// `multipart/signed` the signed first body part exactly as received (headers and
    /// CRLF line ends included).
    pub content: &'a [u8],
    /// The DER of the detached `application/pkcs7-signature` of a `multipart/signed` part.
    pub detached_signature: Option<&'a [u8]>,
}

/// Which signature format a part carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// XML-DSig inside an XML part.
    XmlDsig,
    /// CMS SignedData (S/MIME).
    Cms,
}

/// What was signed, and therefore what may be handed on to the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedContent {
    /// The content as received: the signatures cover the XML document element (enveloped)
    /// or the detached content given.
    AsReceived,
    /// Only these bytes were signed — the content of an enveloping signature's `Object`
    /// (in exclusive canonical form) or a CMS part's encapsulated content — and only they
    /// may be handed on as signed.
    Extracted(Vec<u8>),
}

/// A part whose signatures all verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The format of the signatures.
    pub format: SignatureFormat,
    /// Every signer, in document order; never empty.
    pub signers: Vec<VerifiedSigner>,
    /// What was signed.
    pub content: VerifiedContent,
}

impl Verified {
    /// The first (outermost) signer, the one recorded with the message.
    pub fn signer(&self) -> &VerifiedSigner {
        &self.signers[0]
    }
}

/// Checks a data part's signatures under `policy`: `Ok(None)` for an unsigned part that
/// may be unsigned (or when signatures are ignored), `Ok(Some(_))` when every signature
/// verified, or the reason the part must be refused.
pub fn verify_part(
    part: &DataPart<'_>,
    policy: SignaturePolicy,
    options: &VerifyOptions<'_>,
) -> Result<Option<Verified>, SignatureError> {
    if policy == SignaturePolicy::Ignore {
        return Ok(None);
    }
    let media = MediaType::parse(part.content_type);
    let verified = if let Some(signature) = part.detached_signature {
        let cms = verify_cms(signature, Some(part.content), options)?;
        Some(Verified {
            format: SignatureFormat::Cms,
            signers: cms.signers,
            content: cms.content,
        })
    } else if media.is_pkcs7_mime() {
        let signed = match media.param("smime-type").as_deref() {
            Some("signed-data") => true,
            // Without the parameter, the structure itself tells.
            None => cms::is_signed_data(part.content),
            Some(_) => false,
        };
        if signed {
            let cms = verify_cms(part.content, None, options)?;
            Some(Verified {
                format: SignatureFormat::Cms,
                signers: cms.signers,
                content: cms.content,
            })
        } else {
            // Encrypted (or compressed) parts are end to end: never opened here.
            None
        }
    } else if media.is_xml() {
        verify_xml(part.content, options)?.map(|xml| Verified {
            format: SignatureFormat::XmlDsig,
            signers: xml.signers,
            content: xml.content,
        })
    } else {
        None
    };
    match verified {
        None if policy == SignaturePolicy::Required => Err(SignatureError::MissingSignature(
            format!("a {} part must be signed", media.essence),
        )),
        other => Ok(other),
    }
}

/// The parts of a `Content-Type` value this module looks at.
struct MediaType<'a> {
    /// `type/subtype`, lower case.
    essence: String,
    /// The parameters after the essence, unparsed.
    params: &'a str,
}

impl<'a> MediaType<'a> {
    fn parse(value: &'a str) -> Self {
        let (essence, params) = value.split_once(';').unwrap_or((value, ""));
        MediaType {
            essence: essence.trim().to_ascii_lowercase(),
            params,
        }
    }

    /// The value of parameter `name` (case-insensitive name, quotes removed, lower case).
    fn param(&self, name: &str) -> Option<String> {
        self.params.split(';').find_map(|p| {
            let (key, value) = p.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
        })
    }

    fn is_pkcs7_mime(&self) -> bool {
        matches!(
            self.essence.as_str(),
            "application/pkcs7-mime" | "application/x-pkcs7-mime"
        )
    }

    fn is_xml(&self) -> bool {
        matches!(self.essence.as_str(), "text/xml" | "application/xml")
            || self.essence.ends_with("+xml")
    }
}
