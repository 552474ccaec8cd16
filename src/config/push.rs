//! The `[push]` section (spec §5.3): how this node delivers to other nodes and to business
//! systems that want push — its client identity, whom it trusts, and the retry schedule.

use std::path::PathBuf;
use std::time::Duration;

use super::file::PushSection;
use super::{Checker, TlsPaths};

/// Push delivery, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// Delivery attempts in all before the message is quarantined (default 10).
    pub attempts: u32,
    /// The wait after the first failed attempt; each further wait doubles (default 5 min).
    pub first_retry: Duration,
    /// The longest wait between attempts (default 6 h): 10 attempts span about 23 h.
    pub max_retry: Duration,
    /// How long one attempt may take, connect to answer (default 60 s).
    pub timeout: Duration,
    /// CA certificates a receiver's server certificate must chain to (default: the
    /// `[tls] client_cas`, the SHS network's CAs).
    pub cas: Vec<PathBuf>,
    /// The certificate this node presents (default: `[tls] certificate`; it needs the
    /// clientAuth extended key usage).
    pub certificate: PathBuf,
    /// Its private key (default: `[tls] private_key`).
    pub private_key: PathBuf,
}

impl Checker {
    pub(super) fn push(&mut self, section: &PushSection, tls: &TlsPaths) -> PushConfig {
        let mut positive = |key: &str, value: u64| -> u64 {
            if value == 0 {
                self.problem(format!("push.{key} must be greater than 0"));
            }
            value
        };
        let attempts = positive("attempts", section.attempts);
        let first_retry = positive("first_retry_secs", section.first_retry_secs);
        let max_retry = positive("max_retry_secs", section.max_retry_secs);
        let timeout = positive("timeout_secs", section.timeout_secs);
        if max_retry < first_retry {
            self.problem("push.max_retry_secs must not be less than first_retry_secs".to_owned());
        }
        if section.certificate.is_some() != section.private_key.is_some() {
            self.problem("push.certificate and push.private_key go together".to_owned());
        }
        let cas = if section.cas.is_empty() {
            tls.client_cas.clone()
        } else {
            section.cas.iter().map(|ca| self.path(ca)).collect()
        };
        PushConfig {
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            first_retry: Duration::from_secs(first_retry),
            max_retry: Duration::from_secs(max_retry),
            timeout: Duration::from_secs(timeout),
            cas,
            certificate: section
                .certificate
                .as_deref()
                .map_or_else(|| tls.certificate.clone(), |c| self.path(c)),
            private_key: section
                .private_key
                .as_deref()
                .map_or_else(|| tls.private_key.clone(), |k| self.path(k)),
        }
    }
}
