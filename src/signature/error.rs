//! Why a signature was not accepted: one variant per reason the broker names in an
//! `errorinfo`, each with a short, specific one-line `Display`.

/// Why a signed (or unsigned but required) data part was refused.
///
/// Every variant is the sender's fault (or its signer's): the broker turns it into a 400
/// `IllegalDatapartContent` whose `errorinfo` names the part and this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A digest over signed content does not match: the content was altered after signing.
    #[error("bad digest: {0}")]
    BadDigest(String),
    /// The signature value does not verify with the signer's key: the signed information
    /// was altered, or the certificate is not the one that signed.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The signer certificate does not chain to a signer trust anchor, or may not sign.
    #[error("untrusted signer: {0}")]
    UntrustedSigner(String),
    /// A certificate of the chain had expired at arrival time.
    #[error("expired: {0}")]
    Expired(String),
    /// A certificate of the chain was not yet valid at arrival time.
    #[error("not yet valid: {0}")]
    NotYetValid(String),
    /// A certificate of the chain is listed on its issuer's CRL.
    #[error("revoked: {0}")]
    Revoked(String),
    /// An algorithm (canonicalisation, transform, digest, signature, key) that is not
    /// supported or not allowed by the policy, such as SHA-1 without legacy allowed.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The part or its signature structure cannot be read.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The policy requires a signature and the part carries none.
    #[error("missing signature: {0}")]
    MissingSignature(String),
    /// What was signed is not unambiguously what would be handed on: duplicate identifiers,
    /// a reference to something other than the document element, unsigned content inside a
    /// signature (signature wrapping).
    #[error("ambiguous signed content: {0}")]
    Wrapping(String),
}

impl SignatureError {
    /// The reason as one short lower-case word group, for metrics labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            SignatureError::BadDigest(_) => "bad digest",
            SignatureError::BadSignature(_) => "bad signature",
            SignatureError::UntrustedSigner(_) => "untrusted signer",
            SignatureError::Expired(_) => "expired",
            SignatureError::NotYetValid(_) => "not yet valid",
            SignatureError::Revoked(_) => "revoked",
            SignatureError::UnsupportedAlgorithm(_) => "unsupported algorithm",
            SignatureError::Malformed(_) => "malformed",
            SignatureError::MissingSignature(_) => "missing signature",
            SignatureError::Wrapping(_) => "wrapping",
        }
    }
}

/// Shorthand for a [`SignatureError::Malformed`] with a formatted reason.
macro_rules! malformed {
    ($($reason:tt)+) => {
        $crate::signature::SignatureError::Malformed(format!($($reason)+))
    };
}
pub(crate) use malformed;
