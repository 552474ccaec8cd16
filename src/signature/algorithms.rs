//! Digest and signature algorithms: their XML-DSig URIs and ASN.1 object identifiers,
//! mapped onto ring, with SHA-1 only where the policy allows legacy.

use ring::{digest, signature as ring_sig};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::SignatureError;
use super::error::malformed;

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    /// SHA-1: legacy only.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// The digest named by an XML-DSig `DigestMethod` URI.
    pub(crate) fn from_xml_uri(uri: &str) -> Option<Hash> {
        Some(match uri {
            "http://www.w3.org/2000/09/xmldsig#sha1" => Hash::Sha1,
            "http://www.w3.org/2001/04/xmlenc#sha256" => Hash::Sha256,
            "http://www.w3.org/2001/04/xmldsig-more#sha384" => Hash::Sha384,
            "http://www.w3.org/2001/04/xmlenc#sha512" => Hash::Sha512,
            _ => return None,
        })
    }

    /// The digest named by an object identifier (CMS `digestAlgorithm`).
    pub(crate) fn from_oid(oid: &str) -> Option<Hash> {
        Some(match oid {
            "1.3.14.3.2.26" => Hash::Sha1,
            "2.16.840.1.101.3.4.2.1" => Hash::Sha256,
            "2.16.840.1.101.3.4.2.2" => Hash::Sha384,
            "2.16.840.1.101.3.4.2.3" => Hash::Sha512,
            _ => return None,
        })
    }

    /// ring's implementation.
    pub(crate) fn ring(self) -> &'static digest::Algorithm {
        match self {
            Hash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha384 => &digest::SHA384,
            Hash::Sha512 => &digest::SHA512,
        }
    }

    /// Refuses SHA-1 unless legacy is allowed.
    pub(crate) fn allowed(self, allow_legacy_sha1: bool) -> Result<Hash, SignatureError> {
        if self == Hash::Sha1 && !allow_legacy_sha1 {
            return Err(SignatureError::UnsupportedAlgorithm(
                "SHA-1 is not allowed (legacy not enabled for this product)".into(),
            ));
        }
        Ok(self)
    }
}

/// The public-key algorithm of a signature method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyAlg {
    /// RSA PKCS#1 v1.5.
    Rsa,
    /// ECDSA.
    Ecdsa,
}

/// A signature method: public-key algorithm and digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SigAlg {
    /// The public-key algorithm.
    pub(crate) key: KeyAlg,
    /// The digest signed.
    pub(crate) hash: Hash,
}

impl SigAlg {
    /// The method named by an XML-DSig `SignatureMethod` URI.
    pub(crate) fn from_xml_uri(uri: &str) -> Option<SigAlg> {
        let (key, hash) = match uri {
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1" => (KeyAlg::Rsa, Hash::Sha1),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => (KeyAlg::Rsa, Hash::Sha256),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => (KeyAlg::Rsa, Hash::Sha384),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => (KeyAlg::Rsa, Hash::Sha512),
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1" => (KeyAlg::Ecdsa, Hash::Sha1),
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => (KeyAlg::Ecdsa, Hash::Sha256),
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => (KeyAlg::Ecdsa, Hash::Sha384),
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512" => (KeyAlg::Ecdsa, Hash::Sha512),
            _ => return None,
        };
        Some(SigAlg { key, hash })
    }

    /// The method named by a signature algorithm OID (certificates, CRLs, CMS). A bare
    /// key algorithm (`rsaEncryption`, `id-ecPublicKey`, as CMS allows) takes `digest`.
    pub(crate) fn from_oid(oid: &str, digest: Option<Hash>) -> Option<SigAlg> {
        let (key, hash) = match oid {
            "1.2.840.113549.1.1.1" => (KeyAlg::Rsa, digest?),
            "1.2.840.113549.1.1.5" => (KeyAlg::Rsa, Hash::Sha1),
            "1.2.840.113549.1.1.11" => (KeyAlg::Rsa, Hash::Sha256),
            "1.2.840.113549.1.1.12" => (KeyAlg::Rsa, Hash::Sha384),
            "1.2.840.113549.1.1.13" => (KeyAlg::Rsa, Hash::Sha512),
            "1.2.840.10045.2.1" => (KeyAlg::Ecdsa, digest?),
            "1.2.840.10045.4.1" => (KeyAlg::Ecdsa, Hash::Sha1),
            "1.2.840.10045.4.3.2" => (KeyAlg::Ecdsa, Hash::Sha256),
            "1.2.840.10045.4.3.3" => (KeyAlg::Ecdsa, Hash::Sha384),
            "1.2.840.10045.4.3.4" => (KeyAlg::Ecdsa, Hash::Sha512),
            _ => return None,
        };
        Some(SigAlg { key, hash })
    }
}

/// How an ECDSA signature value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EcdsaEncoding {
    /// `r || s`, each the size of the curve order (XML-DSig).
    Fixed,
    /// A DER `SEQUENCE { r INTEGER, s INTEGER }` (X.509, CMS).
    Der,
}

/// The curve of an ECDSA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

/// A signer's public key, taken from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    /// RSA, or EC on which curve.
    kind: PublicKeyKind,
    /// The subjectPublicKey bits: an `RSAPublicKey` or an uncompressed EC point.
    bytes: Vec<u8>,
}

/// The kind of a [`PublicKey`]: what ring algorithms it can verify with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PublicKeyKind {
    Rsa,
    Ec(Curve),
}

impl PublicKey {
    /// The key of a certificate's SubjectPublicKeyInfo.
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<PublicKey, SignatureError> {
        let kind = match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.1" => PublicKeyKind::Rsa,
            "1.2.840.10045.2.1" => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| oid.to_id_string());
                match curve.as_deref() {
                    Some("1.2.840.10045.3.1.7") => PublicKeyKind::Ec(Curve::P256),
                    Some("1.3.132.0.34") => PublicKeyKind::Ec(Curve::P384),
                    other => {
                        return Err(SignatureError::UnsupportedAlgorithm(format!(
                            "EC curve {}",
                            other.unwrap_or("(none)")
                        )));
                    }
                }
            }
            other => {
                return Err(SignatureError::UnsupportedAlgorithm(format!(
                    "public key algorithm {other}"
                )));
            }
        };
        Ok(PublicKey {
            kind,
            bytes: spki.subject_public_key.data.to_vec(),
        })
    }

    /// The ring verification algorithm for `alg` with this key and an ECDSA signature in
    /// `encoding`, and whether a fixed `r||s` value must be re-encoded as DER first
    /// (ring has fixed-size variants for P-256/SHA-256 and P-384/SHA-384 only).
    fn ring_alg(
        &self,
        alg: SigAlg,
        encoding: EcdsaEncoding,
    ) -> Result<(&'static dyn ring_sig::VerificationAlgorithm, bool), SignatureError> {
        use ring_sig::*;
        let unsupported =
            || SignatureError::UnsupportedAlgorithm(format!("{:?} with {:?} key", alg, self.kind));
        let fixed = encoding == EcdsaEncoding::Fixed;
        Ok(match (self.kind, alg.key, alg.hash) {
            (PublicKeyKind::Rsa, KeyAlg::Rsa, Hash::Sha1) => {
                (&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, false)
            }
            (PublicKeyKind::Rsa, KeyAlg::Rsa, Hash::Sha256) => (&RSA_PKCS1_2048_8192_SHA256, false),
            (PublicKeyKind::Rsa, KeyAlg::Rsa, Hash::Sha384) => (&RSA_PKCS1_2048_8192_SHA384, false),
            (PublicKeyKind::Rsa, KeyAlg::Rsa, Hash::Sha512) => (&RSA_PKCS1_2048_8192_SHA512, false),
            (PublicKeyKind::Ec(Curve::P256), KeyAlg::Ecdsa, Hash::Sha256) if fixed => {
                (&ECDSA_P256_SHA256_FIXED, false)
            }
            (PublicKeyKind::Ec(Curve::P384), KeyAlg::Ecdsa, Hash::Sha384) if fixed => {
                (&ECDSA_P384_SHA384_FIXED, false)
            }
            (PublicKeyKind::Ec(Curve::P256), KeyAlg::Ecdsa, Hash::Sha256) => {
                (&ECDSA_P256_SHA256_ASN1, false)
            }
            (PublicKeyKind::Ec(Curve::P256), KeyAlg::Ecdsa, Hash::Sha384) => {
                (&ECDSA_P256_SHA384_ASN1, fixed)
            }
            (PublicKeyKind::Ec(Curve::P384), KeyAlg::Ecdsa, Hash::Sha256) => {
                (&ECDSA_P384_SHA256_ASN1, fixed)
            }
            (PublicKeyKind::Ec(Curve::P384), KeyAlg::Ecdsa, Hash::Sha384) => {
                (&ECDSA_P384_SHA384_ASN1, false)
            }
            _ => return Err(unsupported()),
        })
    }

    /// Verifies `signature` over `message` with this key.
    pub(crate) fn verify(
        &self,
        alg: SigAlg,
        encoding: EcdsaEncoding,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let (ring_alg, to_der) = self.ring_alg(alg, encoding)?;
        let der;
        let signature = if to_der {
            der = fixed_to_der(signature)?;
            &der[..]
        } else {
            signature
        };
        ring_sig::UnparsedPublicKey::new(ring_alg, &self.bytes)
            .verify(message, signature)
            .map_err(|_| SignatureError::BadSignature("the signature value does not verify".into()))
    }
}

/// Whether `signature` (DER, as in X.509) over `tbs` verifies with `spki` by the method
/// of `alg_oid` (a certificate's or CRL's `signatureAlgorithm`). For checks made outside
/// signed data parts, such as the listener's CRLs (`tls::revocation`).
pub(crate) fn x509_signed_by(
    spki: &SubjectPublicKeyInfo<'_>,
    alg_oid: &str,
    tbs: &[u8],
    signature: &[u8],
) -> bool {
    SigAlg::from_oid(alg_oid, None).is_some_and(|alg| {
        PublicKey::from_spki(spki)
            .is_ok_and(|key| key.verify(alg, EcdsaEncoding::Der, tbs, signature).is_ok())
    })
}

/// Re-encodes a fixed `r || s` ECDSA signature as DER.
fn fixed_to_der(signature: &[u8]) -> Result<Vec<u8>, SignatureError> {
    if signature.is_empty() || !signature.len().is_multiple_of(2) || signature.len() > 132 {
        return Err(malformed!(
            "ECDSA signature value of {} bytes",
            signature.len()
        ));
    }
    let (r, s) = signature.split_at(signature.len() / 2);
    let mut body = Vec::new();
    for int in [r, s] {
        let start = int.iter().position(|&b| b != 0).unwrap_or(int.len() - 1);
        let int = &int[start..];
        let pad = int[0] & 0x80 != 0;
        body.push(0x02);
        body.push((int.len() + usize::from(pad)) as u8);
        if pad {
            body.push(0);
        }
        body.extend_from_slice(int);
    }
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    Ok(out)
}
