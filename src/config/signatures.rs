//! The `[signatures]` section (spec §7): which data parts must be signed, and whom to
//! trust as signers. Without the section signatures are not looked at.

use std::path::PathBuf;

use super::Checker;
use super::file::SignaturesSection;
use crate::protocol::urn::ProductId;
use crate::signature::SignaturePolicy;

/// Signature checking at intake, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignaturesConfig {
    /// The policy where no rule below names the product and data part type (default
    /// `if-present`: a signature that is there must verify).
    pub default_policy: SignaturePolicy,
    /// Signer trust anchors (PEM CA certificates), separate from the TLS client CAs.
    pub trust_anchors: Vec<PathBuf>,
    /// CRLs (PEM) of the signer CAs.
    pub crls: Vec<PathBuf>,
    /// Whether SHA-1 digests and signatures are accepted by default.
    pub allow_legacy_sha1: bool,
    /// The largest data part verified (decoded bytes, held in memory while verified).
    pub max_part_bytes: u64,
    /// Rules per product and data part type, first match wins.
    pub rules: Vec<SignatureRule>,
}

/// The policy of one product (and optionally one data part type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRule {
    /// The product.
    pub product: ProductId,
    /// The label's `datapartType`, case-insensitive; `None`: every part of the product.
    pub datapart_type: Option<String>,
    /// What is demanded.
    pub policy: SignaturePolicy,
    /// Trust anchors for this product instead of the node-wide ones (empty: node-wide).
    pub trust_anchors: Vec<PathBuf>,
    /// SHA-1 for this product (legacy); `None`: the node-wide setting.
    pub allow_legacy_sha1: Option<bool>,
}

impl Checker {
    pub(super) fn signatures(
        &mut self,
        section: Option<&SignaturesSection>,
    ) -> Option<SignaturesConfig> {
        let section = section?;
        let default_policy = self.policy("signatures.default_policy", &section.default_policy);
        if section.max_part_bytes == 0 {
            self.problem("signatures.max_part_bytes must be greater than 0".to_owned());
        }
        let mut rules = Vec::new();
        for (i, rule) in section.products.iter().enumerate() {
            let policy = self.policy(&format!("signatures.products[{i}].policy"), &rule.policy);
            match rule.product.parse::<ProductId>() {
                Ok(product) => rules.push(SignatureRule {
                    product,
                    datapart_type: rule.datapart_type.clone(),
                    policy,
                    trust_anchors: rule.trust_anchors.iter().map(|p| self.path(p)).collect(),
                    allow_legacy_sha1: rule.allow_legacy_sha1,
                }),
                Err(err) => self.problem(format!("signatures.products[{i}].product: {err}")),
            }
        }
        Some(SignaturesConfig {
            default_policy,
            trust_anchors: section.trust_anchors.iter().map(|p| self.path(p)).collect(),
            crls: section.crls.iter().map(|p| self.path(p)).collect(),
            allow_legacy_sha1: section.allow_legacy_sha1,
            max_part_bytes: section.max_part_bytes,
            rules,
        })
    }

    fn policy(&mut self, key: &str, text: &str) -> SignaturePolicy {
        match text {
            "required" => SignaturePolicy::Required,
            "if-present" => SignaturePolicy::IfPresent,
            "ignore" => SignaturePolicy::Ignore,
            other => {
                self.problem(format!(
                    "{key} {other:?} must be \"required\", \"if-present\" or \"ignore\""
                ));
                SignaturePolicy::IfPresent
            }
        }
    }
}
