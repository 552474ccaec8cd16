//! The directory (spec §9): which organisations and products exist, which agreements hold
//! between whom, and where remote organisations receive messages.
//!
//! [`Directory`] is what routing asks; engines answer it: [`file`](mod@file) (TOML plus SHS
//! `shs.agreement`/`shs.product` documents, the default) and [`ldap`] (the SHS schema on
//! LDAP servers).
//! The rules themselves are pure functions in [`agreements`], so every engine gives the
//! same answers for the same data.
//!
//! Without a `[directory]` in the configuration there is no directory: messages are routed
//! to the local organisations without agreement checks (a closed node), as documented.

use async_trait::async_trait;

use crate::protocol::agreement::Agreement;
use crate::protocol::product_type::ProductType;
use crate::protocol::urn::{OrgNumber, ProductId};

pub mod agreements;
pub mod file;
pub mod ldap;

pub use agreements::{AgreementRefusal, Exchange};
pub use file::FileDirectory;
pub use ldap::{LdapConfig, LdapDirectory, SimpleBind};

/// An organisation the directory knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// Its number.
    pub number: OrgNumber,
    /// Its name, for people (may be empty).
    pub name: String,
}

/// Where an organisation receives messages of a product by push or synchronous request
/// (`shsDeliveryMethods` in LDAP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAddress {
    /// The receiving organisation.
    pub organisation: OrgNumber,
    /// The product; `None` for every product of the organisation.
    pub product: Option<ProductId>,
    /// The HTTPS URL messages are POSTed to.
    pub url: String,
}

/// Why the directory could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The directory cannot be reached now (LDAP down, timeout): retry later, never a
    /// permanent verdict on a message.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The directory's data is broken (a file that does not parse, an entry with a bad
    /// value): the operator must fix it.
    #[error("directory data is invalid: {0}")]
    Invalid(String),
}

/// What routing asks the directory. Engines may cache; [`Directory::reload`] empties the
/// caches and re-reads the source.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The organisation with `number`, if the directory knows it (as an entry, a party of
    /// an agreement or the owner of an address).
    async fn organisation(&self, number: OrgNumber)
    -> Result<Option<Organisation>, DirectoryError>;

    /// The product type with `id`, if known.
    async fn product(&self, id: &ProductId) -> Result<Option<ProductType>, DirectoryError>;

    /// Every agreement (bilateral and public) that covers `product`.
    async fn agreements(&self, product: &ProductId) -> Result<Vec<Agreement>, DirectoryError>;

    /// Where `organisation` receives `product`: an address for that product, else one for
    /// all its products.
    async fn address(
        &self,
        organisation: OrgNumber,
        product: &ProductId,
    ) -> Result<Option<DeliveryAddress>, DirectoryError>;

    /// Re-reads the source and empties caches (SIGHUP, admin reload). On failure the
    /// previous data stays in force and the error says why.
    async fn reload(&self) -> Result<(), DirectoryError>;

    /// Everything, for the console and `check-config`: organisations, products,
    /// agreements, addresses. Engines that cannot list cheaply return what they have.
    async fn snapshot(&self) -> Result<Listing, DirectoryError>;
}

/// The directory's contents, as the console shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Known organisations.
    pub organisations: Vec<Organisation>,
    /// Product types.
    pub products: Vec<ProductType>,
    /// Agreements.
    pub agreements: Vec<Agreement>,
    /// Delivery addresses.
    pub addresses: Vec<DeliveryAddress>,
}
