//! The SHS schema read as the directory's model: search filters for each lookup and the
//! mapping of one LDAP entry to an [`Organisation`], [`ProductType`], [`Agreement`] or
//! [`DeliveryAddress`]. Pure: no I/O, so every rule is unit tested without a server.
//!
//! Everything here reads untrusted data. A decoding or mapping problem is a `String` naming
//! the entry's DN and the attribute; the caller decides whether that skips the entry or
//! fails the lookup.

use std::collections::{HashMap, HashSet};

use ldap3::ResultEntry;
use ldap3::asn1::StructureTag;

use super::super::{DeliveryAddress, Organisation};
use crate::protocol::agreement::{Agreement, AgreementTransfer, Flow};
use crate::protocol::product_type::ProductType;
use crate::protocol::urn::{OrgNumber, ProductId, URN_PREFIX};

/// Attributes asked for organisations.
pub(super) const ORGANISATION_ATTRS: &[&str] = &["o", "organizationNumber"];
/// Attributes asked for products.
pub(super) const PRODUCT_ATTRS: &[&str] = &["serialNumber", "productName", "principal"];
/// Attributes asked for agreements.
pub(super) const AGREEMENT_ATTRS: &[&str] = &[
    "serialNumber",
    "principal",
    "shsProductID",
    "shsTransferType",
    "shsDeliveryConfirmation",
];
/// Attributes asked for addresses.
pub(super) const ADDRESS_ATTRS: &[&str] =
    &["organizationNumber", "serialNumber", "shsDeliveryMethods"];
/// No attributes (RFC 4511 §4.5.1.8): only whether something matches.
pub(super) const NO_ATTRS: &[&str] = &["1.1"];

/// Every organisation entry.
pub(super) const ALL_ORGANISATIONS: &str = "(objectClass=shsOrgExtension)";
/// Every product entry.
pub(super) const ALL_PRODUCTS: &str = "(objectClass=shsProduct)";
/// Every agreement entry.
pub(super) const ALL_AGREEMENTS: &str = "(objectClass=shsAgreement)";
/// Every address entry.
pub(super) const ALL_ADDRESSES: &str = "(objectClass=shsAddresses)";

/// `(|(attr=value)(attr=urn:X-shs:value))`: directories store numbers and ids with and
/// without the prefix; the schema's `caseIgnoreMatch` takes care of its case.
fn either_form(attr: &str, bare: &str) -> String {
    let bare = ldap3::ldap_escape(bare);
    format!("(|({attr}={bare})({attr}={URN_PREFIX}{bare}))")
}

/// The organisation entry of `number`.
pub(super) fn organisation_filter(number: OrgNumber) -> String {
    format!(
        "(&(objectClass=shsOrgExtension){})",
        either_form("organizationNumber", number.as_str())
    )
}

/// Agreements and addresses that name `number`: the directory knows the organisation even
/// without an entry of its own.
pub(super) fn party_filter(number: OrgNumber) -> String {
    format!(
        "(|(&(objectClass=shsAgreement){})(&(objectClass=shsAddresses){}))",
        either_form("principal", number.as_str()),
        either_form("organizationNumber", number.as_str())
    )
}

/// The product entries of `id` (a product may be listed under several subtrees).
pub(super) fn product_filter(id: &ProductId) -> String {
    format!(
        "(&(objectClass=shsProduct){})",
        either_form("serialNumber", &id.bare())
    )
}

/// The agreements that cover `product`.
pub(super) fn agreements_filter(product: &ProductId) -> String {
    format!(
        "(&(objectClass=shsAgreement){})",
        either_form("shsProductID", &product.bare())
    )
}

/// The address entries of `organisation` for `product`.
pub(super) fn address_filter(organisation: OrgNumber, product: &ProductId) -> String {
    format!(
        "(&(objectClass=shsAddresses){}{})",
        either_form("organizationNumber", organisation.as_str()),
        either_form("serialNumber", &product.bare())
    )
}

/// One entry of a search result: its DN and its attributes, names folded to lower case
/// (LDAP attribute names are case-insensitive and servers answer in their own spelling).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Entry {
    /// The entry's DN, for messages.
    pub dn: String,
    attrs: HashMap<String, Vec<String>>,
    binary: HashSet<String>,
}

impl Entry {
    /// An entry from text attributes (tests).
    #[cfg(test)]
    pub fn new(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
        let mut entry = Entry {
            dn: dn.to_owned(),
            ..Entry::default()
        };
        for (name, values) in attrs {
            for value in *values {
                entry.push(name, (*value).to_owned());
            }
        }
        entry
    }

    fn push(&mut self, name: &str, value: String) {
        self.attrs
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value);
    }

    /// Every text value of `name`; an error if one is not UTF-8.
    fn all(&self, name: &str) -> Result<&[String], String> {
        let key = name.to_ascii_lowercase();
        if self.binary.contains(&key) {
            return Err(format!(
                "{}: {name} holds a value that is not text",
                self.dn
            ));
        }
        Ok(self.attrs.get(&key).map(Vec::as_slice).unwrap_or_default())
    }

    /// The first value of `name`, trimmed, if it has a non-empty one.
    fn first(&self, name: &str) -> Result<Option<&str>, String> {
        Ok(self
            .all(name)?
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty()))
    }

    /// The first value of `name`, which the mapping needs.
    fn required(&self, name: &str) -> Result<&str, String> {
        self.first(name)?
            .ok_or_else(|| format!("{}: {name} is missing", self.dn))
    }
}

/// Decodes a search result entry without trusting its shape: ldap3's own
/// `SearchEntry::construct` panics on a malformed entry, which a broken or hostile server
/// could send. `None` for anything that is not an entry (referrals, intermediates).
pub(super) fn decode(raw: ResultEntry) -> Option<Result<Entry, String>> {
    if raw.is_ref() || raw.is_intermediate() {
        return None;
    }
    Some(decode_tag(raw.0).ok_or_else(|| "the server sent a malformed search entry".to_owned()))
}

fn decode_tag(tag: StructureTag) -> Option<Entry> {
    let mut parts = tag.match_id(4)?.expect_constructed()?.into_iter();
    let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
    let mut entry = Entry {
        dn,
        ..Entry::default()
    };
    for attribute in parts.next()?.expect_constructed()? {
        let mut pair = attribute.expect_constructed()?.into_iter();
        let name = String::from_utf8(pair.next()?.expect_primitive()?).ok()?;
        for value in pair.next()?.expect_constructed()? {
            match String::from_utf8(value.expect_primitive()?) {
                Ok(text) => entry.push(&name, text),
                Err(_) => {
                    entry.binary.insert(name.to_ascii_lowercase());
                }
            }
        }
    }
    Some(entry)
}

fn org_number(entry: &Entry, attr: &str, text: &str) -> Result<OrgNumber, String> {
    text.parse::<OrgNumber>()
        .map_err(|err| format!("{}: {attr} {text:?}: {err}", entry.dn))
}

fn product_id(entry: &Entry, attr: &str, text: &str) -> Result<ProductId, String> {
    text.parse::<ProductId>()
        .map_err(|err| format!("{}: {attr} {text:?}: {err}", entry.dn))
}

/// An `shsOrgExtension` entry: `organizationNumber`, and `o` as its name.
pub(super) fn organisation(entry: &Entry) -> Result<Organisation, String> {
    let number = org_number(
        entry,
        "organizationNumber",
        entry.required("organizationNumber")?,
    )?;
    let name = entry.first("o")?.unwrap_or_default().to_owned();
    Ok(Organisation { number, name })
}

/// An `shsProduct` entry: `serialNumber` is the product id, `productName` its name,
/// `principal` its owner. The schema says nothing of data parts, so any are allowed, and
/// no reply is required (as for products of the file directory's TOML).
pub(super) fn product(entry: &Entry) -> Result<ProductType, String> {
    let id = product_id(entry, "serialNumber", entry.required("serialNumber")?)?;
    let principal = match entry.first("principal")? {
        Some(text) => Some(org_number(entry, "principal", text)?),
        None => None,
    };
    Ok(ProductType {
        id,
        name: entry.first("productName")?.unwrap_or_default().to_owned(),
        principal,
        reply_required: false,
        data: Vec::new(),
        reply_data: Vec::new(),
    })
}

/// An `shsAgreement` entry, always a *public* agreement of its `principal`: the schema has
/// no customer, direction or validity, so anyone may send the products (`shsProductID`) to
/// the principal (flow `from-customer`) at any date. `shsTransferType` is `asynch`,
/// `synch` or `any` (absent: `any`); `shsDeliveryConfirmation` is `yes` or `no` (absent:
/// `no`, the schema's default).
pub(super) fn agreement(entry: &Entry) -> Result<Agreement, String> {
    let id = entry.required("serialNumber")?.to_owned();
    let principal = org_number(entry, "principal", entry.required("principal")?)?;
    let mut products = Vec::new();
    for text in entry.all("shsProductID")? {
        let product = product_id(entry, "shsProductID", text)?;
        if !products.contains(&product) {
            products.push(product);
        }
    }
    if products.is_empty() {
        return Err(format!("{}: shsProductID is missing", entry.dn));
    }
    let transfer = match entry.first("shsTransferType")? {
        None => AgreementTransfer::Any,
        Some(text) => AgreementTransfer::parse(&text.to_ascii_lowercase()).ok_or_else(|| {
            format!(
                "{}: shsTransferType {text:?} must be asynch, synch or any",
                entry.dn
            )
        })?,
    };
    let confirm = match entry.first("shsDeliveryConfirmation")? {
        None => false,
        Some(text) if text.eq_ignore_ascii_case("yes") || text.eq_ignore_ascii_case("true") => true,
        Some(text) if text.eq_ignore_ascii_case("no") || text.eq_ignore_ascii_case("false") => {
            false
        }
        Some(text) => {
            return Err(format!(
                "{}: shsDeliveryConfirmation {text:?} must be yes or no",
                entry.dn
            ));
        }
    };
    Ok(Agreement {
        id,
        principal,
        customer: None,
        products,
        flow: Flow::FromCustomer,
        transfer,
        confirm,
        valid_from: None,
        valid_to: None,
    })
}

/// An `shsAddresses` entry: `organizationNumber` receives product `serialNumber` (a UUID,
/// or `confirm`/`error` for management messages) at the URL in `shsDeliveryMethods`,
/// which must be `https://` or `http://`.
pub(super) fn address(entry: &Entry) -> Result<DeliveryAddress, String> {
    let organisation = org_number(
        entry,
        "organizationNumber",
        entry.required("organizationNumber")?,
    )?;
    let product = product_id(entry, "serialNumber", entry.required("serialNumber")?)?;
    let url = entry.required("shsDeliveryMethods")?;
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://"))
        || url.chars().any(char::is_whitespace)
    {
        return Err(format!(
            "{}: shsDeliveryMethods {url:?} must be an https:// (or http://) URL",
            entry.dn
        ));
    }
    Ok(DeliveryAddress {
        organisation,
        product: Some(product),
        url: url.to_owned(),
    })
}

#[cfg(test)]
#[path = "entries_tests.rs"]
mod tests;
