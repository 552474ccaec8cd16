//! Who is calling and what they may do (spec §2), resolved once per connection from the
//! TLS identity and the configuration's `[[clients]]` rules.

use crate::config::{ClientMatch, ClientRule, Role};
use crate::protocol::ErrorCode;
use crate::protocol::urn::{Address, OrgNumber, ProductId};
use crate::tls::PeerIdentity;

use super::error::BrokerError;

/// An authenticated caller with an organisation: the only thing handlers authorise against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The organisation the caller acts for.
    pub org: OrgNumber,
    /// Its role.
    pub role: Role,
    /// Mailbox reading narrowed to these sub-addresses (empty: no narrowing).
    pub sub_addresses: Vec<String>,
    /// Mailbox reading narrowed to these products (empty: no narrowing).
    pub products: Vec<ProductId>,
    /// The certificate subject, for logs.
    pub subject: String,
}

impl Caller {
    /// Resolves a TLS identity: a fingerprint rule wins over an organisation rule, which
    /// wins over the defaults. `None` when no organisation can be found (403).
    pub fn resolve(identity: &PeerIdentity, rules: &[ClientRule]) -> Option<Caller> {
        let by_fingerprint = rules
            .iter()
            .find(|rule| rule.matches == ClientMatch::Fingerprint(identity.fingerprint()));
        let org_from_cert = identity.org();
        let by_org = org_from_cert.and_then(|org| {
            rules
                .iter()
                .find(|rule| rule.matches == ClientMatch::Organisation(org))
        });
        let rule = by_fingerprint.or(by_org);
        let org = rule.and_then(|rule| rule.acts_for).or(org_from_cert)?;
        Some(Caller {
            org,
            role: rule.map(|rule| rule.role).unwrap_or_default(),
            sub_addresses: rule
                .map(|rule| rule.sub_addresses.clone())
                .unwrap_or_default(),
            products: rule.map(|rule| rule.products.clone()).unwrap_or_default(),
            subject: identity.subject().to_owned(),
        })
    }

    /// May this caller send a message whose sender is `sender`? Its own organisation, or
    /// any organisation for a peer node.
    pub fn authorise_send(&self, sender: &Address) -> Result<(), BrokerError> {
        if self.role == Role::PeerNode || sender.org() == self.org {
            Ok(())
        } else {
            Err(BrokerError::Forbidden {
                code: ErrorCode::IllegalSender,
                reason: format!(
                    "the sender {sender} is not the caller's organisation {}",
                    self.org
                ),
            })
        }
    }

    /// May this caller list, fetch and acknowledge in `mailbox`? Only its own
    /// organisation's mailboxes, narrowed to the configured sub-addresses if any.
    pub fn authorise_read(&self, mailbox: &Address) -> Result<(), BrokerError> {
        let own = mailbox.org() == self.org;
        let allowed_sub = self.sub_addresses.is_empty()
            || mailbox
                .sub_address()
                .is_some_and(|sub| self.sub_addresses.iter().any(|allowed| allowed == sub));
        if own && allowed_sub {
            Ok(())
        } else {
            Err(BrokerError::Forbidden {
                code: ErrorCode::IllegalReceiver,
                reason: format!("the caller may not read the mailbox {mailbox}"),
            })
        }
    }

    /// May this caller see messages of `product` (the configured product narrowing)?
    pub fn may_see_product(&self, product: &str) -> bool {
        self.products.is_empty()
            || product
                .parse::<ProductId>()
                .is_ok_and(|product| self.products.contains(&product))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{ExamplePki, PkiOptions};
    use std::sync::OnceLock;

    fn pki() -> &'static ExamplePki {
        static PKI: OnceLock<ExamplePki> = OnceLock::new();
        PKI.get_or_init(|| ExamplePki::generate(PkiOptions::default()).unwrap())
    }

    fn identity(item: &crate::pki::PkiItem) -> PeerIdentity {
        PeerIdentity::from_der(&item.cert_der, &Default::default()).unwrap()
    }

    fn addr(text: &str) -> Address {
        text.parse().unwrap()
    }

    #[test]
    fn defaults_come_from_the_certificate() {
        let caller = Caller::resolve(&identity(&pki().portal), &[]).unwrap();
        assert_eq!(caller.org.as_str(), "5590000001");
        assert_eq!(caller.role, Role::Client);
        assert!(caller.authorise_send(&addr("5590000001")).is_ok());
        assert!(caller.authorise_send(&addr("5590000001.sub")).is_ok());
        let refused = caller.authorise_send(&addr("2120000142")).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::IllegalSender);
        assert_eq!(refused.status(), http::StatusCode::FORBIDDEN);
        assert!(caller.authorise_read(&addr("5590000001")).is_ok());
        assert!(caller.authorise_read(&addr("2120000142")).is_err());
    }

    #[test]
    fn no_organisation_means_no_caller() {
        assert_eq!(Caller::resolve(&identity(&pki().no_org), &[]), None);
    }

    #[test]
    fn a_fingerprint_rule_can_give_an_organisation_and_a_role() {
        let no_org = identity(&pki().no_org);
        let rule = ClientRule {
            matches: ClientMatch::Fingerprint(no_org.fingerprint()),
            role: Role::PeerNode,
            acts_for: Some("5560000002".parse().unwrap()),
            sub_addresses: vec![],
            products: vec![],
        };
        let caller = Caller::resolve(&no_org, &[rule]).unwrap();
        assert_eq!(caller.org.as_str(), "5560000002");
        assert!(
            caller.authorise_send(&addr("2120000142")).is_ok(),
            "a peer node sends for anyone"
        );
        assert!(
            caller.authorise_read(&addr("2120000142")).is_err(),
            "but reads only its own"
        );
    }

    #[test]
    fn reading_can_be_narrowed_to_sub_addresses_and_products() {
        let bygglov = identity(&pki().bygglov);
        let product: ProductId = "6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00".parse().unwrap();
        let rule = ClientRule {
            matches: ClientMatch::Fingerprint(bygglov.fingerprint()),
            role: Role::Client,
            acts_for: None,
            sub_addresses: vec!["bygglov".into()],
            products: vec![product],
        };
        let caller = Caller::resolve(&bygglov, &[rule]).unwrap();
        assert!(caller.authorise_read(&addr("2120000142.bygglov")).is_ok());
        assert!(
            caller
                .authorise_read(&addr("2120000142.socialtjanst"))
                .is_err()
        );
        assert!(caller.authorise_read(&addr("2120000142")).is_err());
        assert!(caller.may_see_product("urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"));
        assert!(!caller.may_see_product("urn:X-shs:confirm"));
    }

    #[test]
    fn an_organisation_rule_applies_to_every_certificate_of_it() {
        let rule = ClientRule {
            matches: ClientMatch::Organisation("5560000002".parse().unwrap()),
            role: Role::PeerNode,
            acts_for: None,
            sub_addresses: vec![],
            products: vec![],
        };
        let caller = Caller::resolve(&identity(&pki().peer_node), &[rule]).unwrap();
        assert_eq!(caller.role, Role::PeerNode);
    }
}
