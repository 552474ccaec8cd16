//! The LDAP directory (spec §9): the SHS schema under a base DN (`L=SHS`), read with
//! `ldap3` from several servers in order of preference, answers cached for a short time.
//!
//! | model | entries | attributes |
//! | --- | --- | --- |
//! | organisation | `shsOrgExtension` | `organizationNumber`, `o` (name) |
//! | product | `shsProduct` | `serialNumber` (id), `productName`, `principal` |
//! | public agreement | `shsAgreement` | `serialNumber` (id), `principal`, `shsProductID`, `shsTransferType`, `shsDeliveryConfirmation` |
//! | address | `shsAddresses` | `organizationNumber` + `serialNumber` (product) → `shsDeliveryMethods` (URL) |
//!
//! The schema itself, for OpenLDAP's `cn=config`, is `packaging/ldap/shs-schema.ldif`.
//!
//! **Untrusted values.** A lookup by key (organisation, product, address) uses the first
//! matching entry that reads well; when every matching entry is broken the lookup is
//! [`DirectoryError::Invalid`] naming the DN and the attribute. Lists (the agreements of a
//! product, the snapshot) skip a broken entry with a warning in the log, so that one bad
//! entry does not hide the good ones.
//!
//! **Outages.** Connection refused, timeouts, a closed connection and a rejected bind are
//! [`DirectoryError::Unavailable`] after every server has been tried: never a verdict on a
//! message. The next call connects again, from the most preferred server; a search whose
//! connection fails runs once more on a new connection, the failed server tried last.

mod cache;
mod connection;
mod entries;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

pub use connection::SimpleBind;

use self::cache::TtlCache;
use self::connection::{Connector, Found};
use self::entries::Entry;
use super::{DeliveryAddress, Directory, DirectoryError, Listing, Organisation};
use crate::protocol::agreement::Agreement;
use crate::protocol::product_type::ProductType;
use crate::protocol::urn::{OrgNumber, ProductId};

/// How many entries a lookup by key reads (the same product or address may be listed in
/// several subtrees).
const KEYED_LIMIT: usize = 32;
/// How many answers each cache keeps at most.
const CACHE_CAPACITY: usize = 10_000;

/// How to reach the LDAP directory; the `[directory.ldap]` section of the configuration
/// is parsed into this.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    /// Server URLs in order of preference, `ldap://host:port` or `ldaps://host:port`; each
    /// is tried in turn when the one before it cannot be used.
    pub servers: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS (ldaps:// is TLS from the start).
    pub starttls: bool,
    /// A simple bind; `None` reads anonymously.
    pub bind: Option<SimpleBind>,
    /// Where the SHS tree starts (default `L=SHS`).
    pub base_dn: String,
    /// How long connecting (TCP, TLS, StartTLS) to one server may take (default 5 s).
    pub connect_timeout: Duration,
    /// How long one bind or search may take (default 10 s).
    pub operation_timeout: Duration,
    /// PEM file of the CAs that sign the servers' certificates; `None` uses the system's
    /// trust store. Read at start and on reload.
    pub ca_file: Option<PathBuf>,
    /// How long an answer is kept before the server is asked again (default 60 s; zero
    /// turns the cache off).
    pub cache_ttl: Duration,
    /// The most entries one search returns (default 1000): bounds snapshots and lists.
    /// The server's own limit may be lower (slapd: `olcSizeLimit`, 500 by default); a list
    /// cut short is logged.
    pub size_limit: usize,
}

impl LdapConfig {
    /// The defaults for `servers`.
    pub fn new(servers: Vec<String>) -> LdapConfig {
        LdapConfig {
            servers,
            starttls: false,
            bind: None,
            base_dn: "L=SHS".to_owned(),
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(10),
            ca_file: None,
            cache_ttl: Duration::from_secs(60),
            size_limit: 1000,
        }
    }

    /// True when some connection will use TLS.
    fn uses_tls(&self) -> bool {
        self.servers.iter().any(|url| {
            let url = url.to_ascii_lowercase();
            url.starts_with("ldaps://") || (self.starttls && url.starts_with("ldap://"))
        })
    }

    /// Every problem with the configuration, at once.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.servers.is_empty() {
            problems.push("name at least one LDAP server".to_owned());
        }
        for url in &self.servers {
            let lower = url.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("ldap://")
                .or_else(|| lower.strip_prefix("ldaps://"));
            if rest.is_none_or(|rest| rest.trim_end_matches('/').is_empty()) {
                problems.push(format!(
                    "LDAP server {url:?} must be an ldap://host[:port] or ldaps://host[:port] URL"
                ));
            }
        }
        if self.base_dn.trim().is_empty() {
            problems.push("the LDAP base DN is empty".to_owned());
        }
        if self.bind.as_ref().is_some_and(|b| b.dn.trim().is_empty()) {
            problems.push("the LDAP bind DN is empty".to_owned());
        }
        if self.connect_timeout.is_zero() || self.operation_timeout.is_zero() {
            problems.push("LDAP timeouts must be longer than zero".to_owned());
        }
        if self.size_limit == 0 {
            problems.push("the LDAP size limit must be at least 1".to_owned());
        }
        problems
    }
}

/// The [`Directory`] read from LDAP servers with the SHS schema.
pub struct LdapDirectory {
    config: LdapConfig,
    connector: Connector,
    organisations: TtlCache<OrgNumber, Option<Organisation>>,
    products: TtlCache<ProductId, Option<ProductType>>,
    agreements: TtlCache<ProductId, Vec<Agreement>>,
    addresses: TtlCache<(OrgNumber, ProductId), Option<DeliveryAddress>>,
}

impl LdapDirectory {
    /// Checks `config` and reads its CA file; connects on the first lookup, so a directory
    /// that is down at start-up does not stop the node. Blocking (start-up, reload).
    pub fn new(config: LdapConfig) -> Result<LdapDirectory, DirectoryError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(DirectoryError::Invalid(problems.join("; ")));
        }
        let tls = tls_config(&config)?;
        let connector = Connector::new(
            config.servers.clone(),
            config.starttls,
            config.bind.clone(),
            config.base_dn.clone(),
            (config.connect_timeout, config.operation_timeout),
            tls,
        );
        let (ttl, capacity) = (config.cache_ttl, CACHE_CAPACITY);
        Ok(LdapDirectory {
            connector,
            organisations: TtlCache::new(ttl, capacity),
            products: TtlCache::new(ttl, capacity),
            agreements: TtlCache::new(ttl, capacity),
            addresses: TtlCache::new(ttl, capacity),
            config,
        })
    }

    async fn search(
        &self,
        filter: &str,
        attrs: &[&str],
        limit: usize,
    ) -> Result<Found, DirectoryError> {
        self.connector.search(filter, attrs, limit).await
    }

    async fn lookup_organisation(
        &self,
        number: OrgNumber,
    ) -> Result<Option<Organisation>, DirectoryError> {
        let filter = entries::organisation_filter(number);
        let found = self
            .search(&filter, entries::ORGANISATION_ATTRS, KEYED_LIMIT)
            .await?;
        if let Some(organisation) = first_valid(found, entries::organisation)? {
            return Ok(Some(organisation));
        }
        // Known as a party of an agreement or the owner of an address.
        let parties = self
            .search(&entries::party_filter(number), entries::NO_ATTRS, 1)
            .await?;
        Ok((!parties.entries.is_empty()).then(|| Organisation {
            number,
            name: String::new(),
        }))
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn organisation(
        &self,
        number: OrgNumber,
    ) -> Result<Option<Organisation>, DirectoryError> {
        if let Some(known) = self.organisations.get(&number) {
            return Ok(known);
        }
        let found = self.lookup_organisation(number).await?;
        self.organisations.insert(number, found.clone());
        Ok(found)
    }

    async fn product(&self, id: &ProductId) -> Result<Option<ProductType>, DirectoryError> {
        if let Some(known) = self.products.get(id) {
            return Ok(known);
        }
        let filter = entries::product_filter(id);
        let found = self
            .search(&filter, entries::PRODUCT_ATTRS, KEYED_LIMIT)
            .await?;
        let product = first_valid(found, entries::product)?;
        self.products.insert(*id, product.clone());
        Ok(product)
    }

    async fn agreements(&self, product: &ProductId) -> Result<Vec<Agreement>, DirectoryError> {
        if let Some(known) = self.agreements.get(product) {
            return Ok(known);
        }
        let filter = entries::agreements_filter(product);
        let found = self
            .search(&filter, entries::AGREEMENT_ATTRS, self.config.size_limit)
            .await?;
        let mut agreements: Vec<Agreement> = Vec::new();
        for agreement in valid_ones(found, entries::agreement, "agreements") {
            let seen = agreements
                .iter()
                .any(|a| a.id.eq_ignore_ascii_case(&agreement.id));
            if agreement.products.contains(product) && !seen {
                agreements.push(agreement);
            }
        }
        self.agreements.insert(*product, agreements.clone());
        Ok(agreements)
    }

    async fn address(
        &self,
        organisation: OrgNumber,
        product: &ProductId,
    ) -> Result<Option<DeliveryAddress>, DirectoryError> {
        let key = (organisation, *product);
        if let Some(known) = self.addresses.get(&key) {
            return Ok(known);
        }
        let filter = entries::address_filter(organisation, product);
        let found = self
            .search(&filter, entries::ADDRESS_ATTRS, KEYED_LIMIT)
            .await?;
        let address = first_valid(found, entries::address)?;
        self.addresses.insert(key, address.clone());
        Ok(address)
    }

    async fn reload(&self) -> Result<(), DirectoryError> {
        let config = self.config.clone();
        let tls = tokio::task::spawn_blocking(move || tls_config(&config))
            .await
            .map_err(|err| DirectoryError::Unavailable(format!("reload task failed: {err}")))??;
        *self
            .connector
            .tls
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = tls;
        self.connector.disconnect();
        self.organisations.clear();
        self.products.clear();
        self.agreements.clear();
        self.addresses.clear();
        tracing::info!("ldap directory reloaded");
        Ok(())
    }

    async fn snapshot(&self) -> Result<Listing, DirectoryError> {
        let limit = self.config.size_limit;
        let found = self
            .search(
                entries::ALL_ORGANISATIONS,
                entries::ORGANISATION_ATTRS,
                limit,
            )
            .await?;
        let mut organisations = valid_ones(found, entries::organisation, "organisations");
        let found = self
            .search(entries::ALL_PRODUCTS, entries::PRODUCT_ATTRS, limit)
            .await?;
        let mut products = valid_ones(found, entries::product, "products");
        let found = self
            .search(entries::ALL_AGREEMENTS, entries::AGREEMENT_ATTRS, limit)
            .await?;
        let mut agreements = valid_ones(found, entries::agreement, "agreements");
        let found = self
            .search(entries::ALL_ADDRESSES, entries::ADDRESS_ATTRS, limit)
            .await?;
        let mut addresses = valid_ones(found, entries::address, "addresses");

        // The same product, agreement or address may be listed in several subtrees.
        let mut product_ids = HashSet::new();
        products.retain(|p| product_ids.insert(p.id));
        products.sort_by(|a, b| a.name.cmp(&b.name));
        let mut ids = HashSet::new();
        agreements.retain(|a| ids.insert(a.id.to_ascii_lowercase()));
        let mut keys = HashSet::new();
        addresses.retain(|a| keys.insert((a.organisation, a.product)));
        // Parties of agreements and owners of addresses are known organisations too.
        let parties = agreements
            .iter()
            .map(|a| a.principal)
            .chain(addresses.iter().map(|a| a.organisation));
        for number in parties {
            if !organisations.iter().any(|o| o.number == number) {
                organisations.push(Organisation {
                    number,
                    name: String::new(),
                });
            }
        }
        organisations.sort_by_key(|o| o.number);
        organisations.dedup_by_key(|o| o.number);
        Ok(Listing {
            organisations,
            products,
            agreements,
            addresses,
        })
    }
}

/// The first matching entry that reads well; `Invalid` when every one is broken.
fn first_valid<T>(
    found: Found,
    map: fn(&Entry) -> Result<T, String>,
) -> Result<Option<T>, DirectoryError> {
    let mut problems = found.problems;
    for entry in &found.entries {
        match map(entry) {
            Ok(value) => return Ok(Some(value)),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(None)
    } else {
        Err(DirectoryError::Invalid(problems.join("; ")))
    }
}

/// Every entry that reads well; the others are logged and skipped.
fn valid_ones<T>(found: Found, map: fn(&Entry) -> Result<T, String>, what: &str) -> Vec<T> {
    if found.truncated {
        tracing::warn!(list = what, "ldap size limit reached, list is incomplete");
    }
    for problem in &found.problems {
        tracing::warn!(list = what, problem = %problem, "ldap entry skipped");
    }
    found
        .entries
        .iter()
        .filter_map(|entry| match map(entry) {
            Ok(value) => Some(value),
            Err(problem) => {
                tracing::warn!(list = what, problem = %problem, "ldap entry skipped");
                None
            }
        })
        .collect()
}

/// The TLS client configuration when some server uses TLS: the CA file's certificates, or
/// the system's trust store. Hostnames are verified by rustls (ring).
fn tls_config(config: &LdapConfig) -> Result<Option<Arc<ClientConfig>>, DirectoryError> {
    if !config.uses_tls() {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let invalid = |cause: String| {
                DirectoryError::Invalid(format!("LDAP CA file {}: {cause}", path.display()))
            };
            let pem = std::fs::read(path).map_err(|err| invalid(err.to_string()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|err| invalid(err.to_string()))?;
                roots.add(cert).map_err(|err| invalid(err.to_string()))?;
            }
            if roots.is_empty() {
                return Err(invalid("no certificate in it".to_owned()));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for err in &native.errors {
                tracing::warn!(error = %err, "system trust store: certificate not read");
            }
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(DirectoryError::Invalid(
                    "LDAP over TLS: the system trust store is empty; name a CA file".to_owned(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| DirectoryError::Invalid(format!("LDAP TLS: {err}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(tls)))
}
