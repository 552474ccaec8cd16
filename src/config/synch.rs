//! The `[synch]` section (spec §6): how long a synchronous request may take, and the
//! request URLs of local business systems per (organisation, product).

use std::time::Duration;

use super::Checker;
use super::file::SynchSection;
use crate::protocol::urn::{OrgNumber, ProductId};

/// Synchronous request/reply, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynchConfig {
    /// How long the destination may take to answer (default 60 s): then 504 `Timeout`.
    pub timeout: Duration,
    /// Local business systems that answer requests.
    pub services: Vec<SynchService>,
}

/// A local business system that answers synchronous requests for one product of one of
/// this node's organisations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynchService {
    /// The organisation the requests are addressed to.
    pub organisation: OrgNumber,
    /// The product.
    pub product: ProductId,
    /// Where the request is POSTed (`https://`, or `http://` on a local network).
    pub url: String,
}

impl Checker {
    pub(super) fn synch(&mut self, section: &SynchSection) -> SynchConfig {
        if section.timeout_secs == 0 {
            self.problem("synch.timeout_secs must be greater than 0".to_owned());
        }
        let mut services = Vec::new();
        for (i, service) in section.services.iter().enumerate() {
            let organisation = service.organisation.parse::<OrgNumber>();
            let product = service.product.parse::<ProductId>();
            let url_ok = service.url.starts_with("https://") || service.url.starts_with("http://");
            match (organisation, product) {
                (Ok(organisation), Ok(product)) if url_ok => services.push(SynchService {
                    organisation,
                    product,
                    url: service.url.clone(),
                }),
                (Err(err), _) => self.problem(format!("synch.services[{i}].organisation: {err}")),
                (_, Err(err)) => self.problem(format!("synch.services[{i}].product: {err}")),
                _ => self.problem(format!(
                    "synch.services[{i}].url {:?} must be an https:// or http:// URL",
                    service.url
                )),
            }
        }
        SynchConfig {
            timeout: Duration::from_secs(section.timeout_secs),
            services,
        }
    }
}
