//! Signature checks at intake (spec §7): which policy and signer trust apply to a data
//! part, and the part's bytes collected (transfer encoding removed) while it streams to the
//! store, verified when it ends — before anything is accepted. A part that fails refuses
//! the whole message with 400 `IllegalDatapartContent` naming the part and the reason.
//!
//! Verified parts are stored as received (signature included), so the receiving business
//! system can check them again; the first signer is recorded with the message.

use chrono::{DateTime, Utc};

use crate::config::SignaturesConfig;
use crate::protocol::mime::{ContentType, PartHeaders, TransferDecoder};
use crate::protocol::urn::ProductId;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::signature::{
    DataPart, SignaturePolicy, SignerTrust, VerifiedSigner, VerifyOptions, verify_part,
};
use crate::tls::pem::{load_certs, load_crls};

use super::error::BrokerError;

/// The signature policies and signer trusts of the node, loaded from `[signatures]`.
pub struct SignatureChecks {
    default_policy: SignaturePolicy,
    trust: SignerTrust,
    allow_legacy_sha1: bool,
    max_part_bytes: u64,
    rules: Vec<Rule>,
}

struct Rule {
    product: ProductId,
    datapart_type: Option<String>,
    policy: SignaturePolicy,
    trust: Option<SignerTrust>,
    allow_legacy_sha1: Option<bool>,
}

impl SignatureChecks {
    /// Reads the trust anchors and CRLs the configuration names. Blocking (start-up).
    pub fn load(config: &SignaturesConfig) -> Result<SignatureChecks, String> {
        let trust = trust_of(&config.trust_anchors, &config.crls)?;
        let mut rules = Vec::new();
        for rule in &config.rules {
            let own = if rule.trust_anchors.is_empty() {
                None
            } else {
                Some(trust_of(&rule.trust_anchors, &config.crls)?)
            };
            rules.push(Rule {
                product: rule.product,
                datapart_type: rule.datapart_type.clone(),
                policy: rule.policy,
                trust: own,
                allow_legacy_sha1: rule.allow_legacy_sha1,
            });
        }
        Ok(SignatureChecks {
            default_policy: config.default_policy,
            trust,
            allow_legacy_sha1: config.allow_legacy_sha1,
            max_part_bytes: config.max_part_bytes,
            rules,
        })
    }

    /// Starts checking data part `index` (0-based) of a message of `product`, or `None`
    /// when its policy is to ignore signatures.
    pub(super) fn start(
        &self,
        product: &str,
        index: usize,
        datapart_type: Option<&str>,
        headers: &PartHeaders,
    ) -> Result<Option<PartCheck>, BrokerError> {
        let product = product.parse::<ProductId>().ok();
        let rule = self.rules.iter().position(|rule| {
            Some(rule.product) == product
                && rule.datapart_type.as_deref().is_none_or(|wanted| {
                    datapart_type.is_some_and(|have| have.eq_ignore_ascii_case(wanted))
                })
        });
        let policy = rule.map_or(self.default_policy, |i| self.rules[i].policy);
        if policy == SignaturePolicy::Ignore {
            return Ok(None);
        }
        let name = describe(index, datapart_type);
        let encoding = headers
            .transfer_encoding()
            .map_err(|err| refuse(&name, &err.to_string()))?;
        let content_type = headers
            .get("content-type")
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_else(|| "text/plain".to_owned());
        Ok(Some(PartCheck {
            name,
            policy,
            rule,
            content_type,
            decoder: TransferDecoder::new(encoding),
            content: Vec::new(),
            too_large: false,
        }))
    }

    fn trust_and_sha1(&self, rule: Option<usize>) -> (&SignerTrust, bool) {
        let rule = rule.and_then(|i| self.rules.get(i));
        let trust = rule.and_then(|r| r.trust.as_ref()).unwrap_or(&self.trust);
        let sha1 = rule
            .and_then(|r| r.allow_legacy_sha1)
            .unwrap_or(self.allow_legacy_sha1);
        (trust, sha1)
    }
}

/// One data part being collected for its signature check.
pub(super) struct PartCheck {
    name: String,
    policy: SignaturePolicy,
    /// The index of the rule that applies; `None`: the node-wide defaults.
    rule: Option<usize>,
    content_type: String,
    decoder: TransferDecoder,
    content: Vec<u8>,
    too_large: bool,
}

impl PartCheck {
    /// Takes raw (transfer-encoded) body bytes of the part.
    pub(super) fn feed(&mut self, checks: &SignatureChecks, raw: &[u8]) -> Result<(), BrokerError> {
        if self.too_large {
            return Ok(());
        }
        self.decoder
            .decode(raw, &mut self.content)
            .map_err(|err| refuse(&self.name, &err.to_string()))?;
        if self.content.len() as u64 > checks.max_part_bytes {
            self.too_large = true;
            self.content = Vec::new();
        }
        Ok(())
    }

    /// Verifies the part; `Ok(Some(signer))` when signed and verified.
    pub(super) fn finish(
        mut self,
        checks: &SignatureChecks,
        arrival: DateTime<Utc>,
    ) -> Result<Option<VerifiedSigner>, BrokerError> {
        if self.too_large {
            let reason = format!(
                "is larger than the {} bytes this node verifies (signatures.max_part_bytes)",
                checks.max_part_bytes
            );
            if self.policy == SignaturePolicy::Required {
                return Err(refuse(&self.name, &reason));
            }
            tracing::warn!(part = %self.name, reason, "signature not checked");
            return Ok(None);
        }
        self.decoder
            .finish(&mut self.content)
            .map_err(|err| refuse(&self.name, &err.to_string()))?;
        let (trust, allow_legacy_sha1) = checks.trust_and_sha1(self.rule);
        let options = VerifyOptions {
            trust,
            at: arrival,
            allow_legacy_sha1,
        };
        let signed = ContentType::parse(&self.content_type)
            .ok()
            .filter(|ct| ct.media_type == "multipart/signed");
        let verified = match signed {
            Some(ct) => {
                let boundary = ct
                    .param("boundary")
                    .ok_or_else(|| refuse(&self.name, "multipart/signed without a boundary"))?;
                let (content, signature) = split_signed(&self.content, boundary)
                    .map_err(|reason| refuse(&self.name, &reason))?;
                let part = DataPart {
                    content_type: &self.content_type,
                    content: &content,
                    detached_signature: Some(&signature),
                };
                verify_part(&part, self.policy, &options)
            }
            None => {
                let part = DataPart {
                    content_type: &self.content_type,
                    content: &self.content,
                    detached_signature: None,
                };
                verify_part(&part, self.policy, &options)
            }
        };
        match verified {
            Ok(verified) => Ok(verified.map(|v| v.signer().clone())),
            Err(err) => Err(refuse(&self.name, &err.to_string())),
        }
    }
}

/// How a signer is written in the history comment, the record and the admin views.
pub(super) fn signer_text(signer: &VerifiedSigner) -> String {
    format!(
        "{} (serial {}, issuer {})",
        signer.subject, signer.serial, signer.issuer
    )
}

/// The signed first body part (exactly as received) and the DER signature of a
/// `multipart/signed` body (RFC 1847).
fn split_signed(body: &[u8], boundary: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let delimiter = format!("--{boundary}");
    let starts: Vec<usize> = line_starts(body)
        .filter(|&at| body[at..].starts_with(delimiter.as_bytes()))
        .collect();
    let [first, second, ..] = starts[..] else {
        return Err("multipart/signed needs two body parts".to_owned());
    };
    let content_start = after_line(body, first);
    let content = trim_line_end(&body[content_start..second]);
    let closing = starts
        .get(2)
        .copied()
        .ok_or("multipart/signed has no closing delimiter")?;
    let signature_part = trim_line_end(&body[after_line(body, second)..closing]);
    let split = find(signature_part, b"\r\n\r\n")
        .map(|at| (at + 2, at + 4))
        .or_else(|| find(signature_part, b"\n\n").map(|at| (at + 1, at + 2)))
        .ok_or("the signature part has no header block")?;
    let headers = PartHeaders::parse(&signature_part[..split.0]).map_err(|err| err.to_string())?;
    let mut decoder = TransferDecoder::new(headers.transfer_encoding().map_err(|e| e.to_string())?);
    let mut signature = Vec::new();
    decoder
        .decode(&signature_part[split.1..], &mut signature)
        .and_then(|()| decoder.finish(&mut signature))
        .map_err(|err| format!("the signature part: {err}"))?;
    Ok((content.to_vec(), signature))
}

/// Offsets where lines start.
fn line_starts(body: &[u8]) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(
        body.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1),
    )
}

/// The offset after the line that starts at `at`.
fn after_line(body: &[u8], at: usize) -> usize {
    body[at..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(body.len(), |end| at + end + 1)
}

/// `bytes` without the line end that belongs to the following delimiter.
fn trim_line_end(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn describe(index: usize, datapart_type: Option<&str>) -> String {
    match datapart_type {
        Some(kind) => format!("data part {} ({kind})", index + 1),
        None => format!("data part {}", index + 1),
    }
}

/// The refusal of a message for a part that failed its check.
fn refuse(name: &str, reason: &str) -> BrokerError {
    BrokerError::Message(ProtocolError::Invalid {
        code: ErrorCode::IllegalDatapartContent,
        reason: format!("{name}: {reason}"),
    })
}

fn trust_of(
    anchors: &[std::path::PathBuf],
    crls: &[std::path::PathBuf],
) -> Result<SignerTrust, String> {
    let mut ders = Vec::new();
    for path in anchors {
        let certs = load_certs(path).map_err(|err| err.to_string())?;
        ders.extend(certs.into_iter().map(|cert| cert.to_vec()));
    }
    let crls = load_crls(crls.iter())
        .map_err(|err| err.to_string())?
        .into_iter()
        .map(|crl| crl.to_vec())
        .collect();
    SignerTrust::new(ders, crls).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_signed_splits_into_content_and_signature() {
        let body = b"This is an S/MIME signed message\r\n\r\n--b1\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n--b1\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nAQID\r\n--b1--\r\n";
        let (content, signature) = split_signed(body, "b1").unwrap();
        assert_eq!(content, b"Content-Type: text/xml\r\n\r\n<a/>");
        assert_eq!(signature, [1, 2, 3]);
        assert!(split_signed(b"--b1\r\nx\r\n", "b1").is_err());
        assert!(split_signed(b"--b1\r\nx\r\n--b1\r\nno headers\r\n--b1--\r\n", "b1").is_err());
    }
}
