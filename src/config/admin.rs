//! The `[admin]` section: where the admin listener binds, whether it speaks HTTPS with
//! client certificates (admin mTLS), and which certificates are administrators.
//!
//! The rule it enforces (spec §11): plain HTTP without authentication only on loopback;
//! anywhere else, HTTPS with a client certificate that chains to the node's client CAs
//! *and* is one of the configured admin identities.

use std::net::SocketAddr;

use crate::protocol::urn::OrgNumber;
use crate::tls::Fingerprint;

use super::file::{AdminIdentitySection, AdminSection};
use super::{Checker, ClientMatch, LocalOrganisation};

/// The admin listener's configuration.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where it binds.
    pub address: SocketAddr,
    /// HTTPS with a required client certificate of an admin identity (admin mTLS). Always
    /// true for a non-loopback address; plain HTTP is only ever served on loopback.
    pub tls: bool,
    /// The certificates allowed in over admin TLS; empty when `tls` is off.
    pub identities: Vec<AdminIdentity>,
}

/// One administrator, as the audit log and the console name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminIdentity {
    /// The name recorded as the actor of admin requests.
    pub name: String,
    /// Which client certificates are this administrator.
    pub matches: ClientMatch,
}

impl AdminConfig {
    /// The admin identity a client certificate belongs to, if any: a fingerprint match
    /// wins over an organisation match, so a named certificate keeps its own name.
    pub fn identity(
        &self,
        fingerprint: &Fingerprint,
        org: Option<OrgNumber>,
    ) -> Option<&AdminIdentity> {
        let by_fingerprint = self
            .identities
            .iter()
            .find(|id| matches!(&id.matches, ClientMatch::Fingerprint(f) if f == fingerprint));
        by_fingerprint.or_else(|| {
            let org = org?;
            self.identities
                .iter()
                .find(|id| matches!(id.matches, ClientMatch::Organisation(o) if o == org))
        })
    }
}

impl Checker {
    /// Checks the section against the rule above; `organisations` are the local ones, whose
    /// numbers may not be admin organisations (their business systems would all be admins).
    pub(super) fn admin(
        &mut self,
        section: &AdminSection,
        organisations: &[LocalOrganisation],
    ) -> AdminConfig {
        let address: SocketAddr = section.address.parse().unwrap_or_else(|err| {
            self.problem(format!("admin.address {:?}: {err}", section.address));
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let loopback = address.ip().is_loopback();
        let tls = section.tls.unwrap_or(!loopback);
        if !tls && !loopback {
            self.problem(format!(
                "admin.address {address} is not a loopback address, and admin.tls = false: \
                 plain HTTP without authentication is only served on loopback (127.0.0.1 or \
                 [::1]); remove admin.tls (a non-loopback address serves HTTPS with admin \
                 client certificates) or reach a loopback listener through an SSH tunnel"
            ));
        }
        let identities: Vec<AdminIdentity> = section
            .identities
            .iter()
            .enumerate()
            .filter_map(|(i, id)| self.admin_identity(i, id, organisations))
            .collect();
        if tls && section.identities.is_empty() {
            self.problem(format!(
                "admin.address {address} is served over admin TLS (HTTPS, client certificate \
                 required), which needs at least one [[admin.identities]] entry: nobody could \
                 use it otherwise"
            ));
        }
        if !tls && !section.identities.is_empty() {
            self.problem(
                "admin.identities are only checked over admin TLS, and this listener is plain \
                 HTTP: set admin.tls = true, or remove the identities"
                    .to_owned(),
            );
        }
        let mut names: Vec<&str> = section.identities.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            self.problem(format!(
                "admin.identities: the name {:?} is used twice",
                pair[0]
            ));
        }
        AdminConfig {
            address,
            tls,
            identities,
        }
    }

    fn admin_identity(
        &mut self,
        index: usize,
        section: &AdminIdentitySection,
        organisations: &[LocalOrganisation],
    ) -> Option<AdminIdentity> {
        let key = format!("admin.identities[{index}]");
        let name = section.name.trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            self.problem(format!(
                "{key}.name must be a non-empty name without control characters"
            ));
        }
        let matches = match (&section.fingerprint, &section.organisation) {
            (Some(fingerprint), None) => match fingerprint.parse::<Fingerprint>() {
                Ok(parsed) => ClientMatch::Fingerprint(parsed),
                Err(err) => {
                    self.problem(format!("{key}.fingerprint: {err}"));
                    return None;
                }
            },
            (None, Some(org)) => {
                let org = self.org(&format!("{key}.organisation"), org)?;
                if organisations.iter().any(|local| local.number == org) {
                    self.problem(format!(
                        "{key}.organisation {} is an organisation hosted on this node: every \
                         certificate of its business systems would be an administrator; name \
                         the administrator's certificate by fingerprint instead",
                        org.as_str()
                    ));
                    return None;
                }
                ClientMatch::Organisation(org)
            }
            _ => {
                self.problem(format!(
                    "{key} needs exactly one of fingerprint or organisation"
                ));
                return None;
            }
        };
        Some(AdminIdentity {
            name: name.to_owned(),
            matches,
        })
    }
}
