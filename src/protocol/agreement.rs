//! The `shs.agreement` document (DTD `shs-agreement-1.2.dtd`): who may exchange which
//! products with whom, in which direction, when (spec §9).
//!
//! Only what the agreement check needs is kept: parties, products, direction, transfer
//! type, confirm and the validity dates. Billing, schedule and QoS are accepted and
//! ignored. An agreement without `customer` is a *public* agreement of its principal.

use chrono::NaiveDate;

use super::ProtocolError;
use super::urn::{OrgNumber, ProductId};
use super::xml::{self, Element, xml_error};

const DOCUMENT: &str = "shs.agreement";

/// Which way messages may flow under an agreement, seen from its principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// From the principal to the customer.
    ToCustomer,
    /// From the customer to the principal.
    FromCustomer,
    /// Both ways.
    Any,
}

impl Flow {
    /// The value of the `flow` attribute.
    pub fn parse(text: &str) -> Option<Flow> {
        match text {
            "to-customer" => Some(Flow::ToCustomer),
            "from-customer" => Some(Flow::FromCustomer),
            "any" => Some(Flow::Any),
            _ => None,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::ToCustomer => "to-customer",
            Flow::FromCustomer => "from-customer",
            Flow::Any => "any",
        }
    }
}

/// The transfer types an agreement covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgreementTransfer {
    /// Asynchronous deliveries only.
    Asynch,
    /// Synchronous request/reply only.
    Synch,
    /// Both.
    Any,
}

impl AgreementTransfer {
    /// The value of the `transfer-type` attribute.
    pub fn parse(text: &str) -> Option<AgreementTransfer> {
        match text {
            "asynch" => Some(AgreementTransfer::Asynch),
            "synch" => Some(AgreementTransfer::Synch),
            "any" => Some(AgreementTransfer::Any),
            _ => None,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementTransfer::Asynch => "asynch",
            AgreementTransfer::Synch => "synch",
            AgreementTransfer::Any => "any",
        }
    }
}

/// One agreement, from an `shs.agreement` document or the directory's own formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// The agreement's id (`uuid`), which a label can name in `shs.agreement`.
    pub id: String,
    /// The organisation that offers the agreement.
    pub principal: OrgNumber,
    /// The other party; `None` for a public agreement (anyone may be the customer).
    pub customer: Option<OrgNumber>,
    /// The products covered (at least one).
    pub products: Vec<ProductId>,
    /// Which way messages flow.
    pub flow: Flow,
    /// Which transfer types are covered.
    pub transfer: AgreementTransfer,
    /// Whether the receiver's acknowledgement produces a `confirm` (default yes).
    pub confirm: bool,
    /// First day of validity, inclusive.
    pub valid_from: Option<NaiveDate>,
    /// Last day of validity, inclusive.
    pub valid_to: Option<NaiveDate>,
}

impl Agreement {
    /// Parses an `shs.agreement` document (encoding from its declaration, DOCTYPE
    /// ignored, no entity expanded: the rules of every SHS document here).
    pub fn parse(bytes: &[u8]) -> Result<Agreement, ProtocolError> {
        let decoded = xml::decode(DOCUMENT, bytes)?;
        let document = xml::parse(DOCUMENT, &decoded)?;
        let root = &document.root;
        let id = root.required_attr(DOCUMENT, "uuid")?.trim().to_owned();
        let transfer_text = root.required_attr(DOCUMENT, "transfer-type")?;
        let transfer = AgreementTransfer::parse(transfer_text)
            .ok_or_else(|| xml_error!(DOCUMENT, "unknown transfer-type {transfer_text:?}"))?;
        let shs = child(root, "shs")?;
        let principal = org(&text_of(child(shs, "principal")?)?)?;
        let customer = match shs.children.iter().find(|c| c.name == "customer") {
            Some(customer) => Some(org(&customer.text_only(DOCUMENT)?)?),
            None => None,
        };
        let products = shs
            .children
            .iter()
            .filter(|c| c.name == "product")
            .map(|product| {
                let text = text_of(product)?;
                text.parse::<ProductId>()
                    .map_err(|err| xml_error!(DOCUMENT, "product {text:?}: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if products.is_empty() {
            return Err(xml_error!(DOCUMENT, "<shs> names no product"));
        }
        let flow_text = child(shs, "direction")?.required_attr(DOCUMENT, "flow")?;
        let flow = Flow::parse(flow_text)
            .ok_or_else(|| xml_error!(DOCUMENT, "unknown direction flow {flow_text:?}"))?;
        let confirm = match shs.children.iter().find(|c| c.name == "confirm") {
            Some(confirm) => confirm.attr("required") != Some("no"),
            None => true,
        };
        let (valid_from, valid_to) = match root.children.iter().find(|c| c.name == "general") {
            Some(general) => validity(general)?,
            None => (None, None),
        };
        Ok(Agreement {
            id,
            principal,
            customer,
            products,
            flow,
            transfer,
            confirm,
            valid_from,
            valid_to,
        })
    }
}

/// `general/valid/valid-from` and `valid-to`, dates as `yyyy-mm-dd`.
fn validity(general: &Element) -> Result<(Option<NaiveDate>, Option<NaiveDate>), ProtocolError> {
    let Some(valid) = general.children.iter().find(|c| c.name == "valid") else {
        return Ok((None, None));
    };
    let date = |name: &str| -> Result<Option<NaiveDate>, ProtocolError> {
        match valid.children.iter().find(|c| c.name == name) {
            Some(element) => {
                let text = element.required_attr(DOCUMENT, "date")?;
                parse_date(text)
                    .map(Some)
                    .ok_or_else(|| xml_error!(DOCUMENT, "{name} date {text:?} is not yyyy-mm-dd"))
            }
            None => Ok(None),
        }
    };
    Ok((date("valid-from")?, date("valid-to")?))
}

/// A `yyyy-mm-dd` date (SHS documents write them so).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

fn child<'a, 't>(element: &'a Element<'t>, name: &str) -> Result<&'a Element<'t>, ProtocolError> {
    element
        .children
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| xml_error!(DOCUMENT, "<{}> has no <{name}>", element.name))
}

fn text_of(element: &Element) -> Result<String, ProtocolError> {
    Ok(element.text_only(DOCUMENT)?.trim().to_owned())
}

fn org(text: &str) -> Result<OrgNumber, ProtocolError> {
    text.parse::<OrgNumber>()
        .map_err(|err| xml_error!(DOCUMENT, "organisation {text:?}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE shs.agreement SYSTEM "shs-agreement-1.2.dtd">
<shs.agreement version="1.2" uuid="7477c939-bba9-4b3a-8017-1dd656a0a6f1" transfer-type="asynch">
  <shs>
    <principal commonName="Kommunen">urn:X-shs:2120000142</principal>
    <product commonName="bygglov">urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00</product>
    <product>urn:X-shs:0f2d7b9e-1c3a-4e5f-8a6b-7c8d9e0f1a2b</product>
    <customer commonName="Portalen">urn:X-shs:5590000001</customer>
    <direction flow="from-customer"/>
    <confirm required="no"/>
  </shs>
  <general>
    <valid><valid-from date="2024-01-01"/><valid-to date="2024-12-31"/></valid>
    <schedule><intervaltime/></schedule>
    <QoS><open><when hours="all" day="every"/></open></QoS>
  </general>
</shs.agreement>"#;

    #[test]
    fn a_full_agreement_is_read() {
        let agreement = Agreement::parse(FULL.as_bytes()).unwrap();
        assert_eq!(agreement.id, "7477c939-bba9-4b3a-8017-1dd656a0a6f1");
        assert_eq!(agreement.principal.as_str(), "2120000142");
        assert_eq!(agreement.customer.unwrap().as_str(), "5590000001");
        assert_eq!(agreement.products.len(), 2);
        assert_eq!(agreement.flow, Flow::FromCustomer);
        assert_eq!(agreement.transfer, AgreementTransfer::Asynch);
        assert!(!agreement.confirm);
        assert_eq!(agreement.valid_from, parse_date("2024-01-01"));
        assert_eq!(agreement.valid_to, parse_date("2024-12-31"));
    }

    #[test]
    fn a_public_agreement_has_no_customer() {
        let text = FULL
            .replace(
                "<customer commonName=\"Portalen\">urn:X-shs:5590000001</customer>",
                "",
            )
            .replace("<confirm required=\"no\"/>", "");
        let agreement = Agreement::parse(text.as_bytes()).unwrap();
        assert_eq!(agreement.customer, None);
        assert!(agreement.confirm);
    }

    #[test]
    fn broken_agreements_are_refused_with_the_reason() {
        for (from, to, reason) in [
            (
                "transfer-type=\"asynch\"",
                "transfer-type=\"sometimes\"",
                "transfer-type",
            ),
            ("flow=\"from-customer\"", "flow=\"sideways\"", "flow"),
            ("urn:X-shs:2120000142", "urn:X-shs:12", "organisation"),
            ("date=\"2024-12-31\"", "date=\"31/12/2024\"", "valid-to"),
            ("uuid=\"7477c939-bba9-4b3a-8017-1dd656a0a6f1\"", "", "uuid"),
        ] {
            let text = FULL.replace(from, to);
            let err = Agreement::parse(text.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(reason), "{reason}: {err}");
        }
        let entity = FULL.replace("Kommunen", "&xxe;");
        assert!(Agreement::parse(entity.as_bytes()).is_err());
    }

    #[test]
    fn the_reference_agreements_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/reference/axel/agreements");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return; // The reference folder is optional outside CI.
        };
        let mut count = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let agreement =
                Agreement::parse(&bytes).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            assert!(path.to_string_lossy().contains(&agreement.id));
            count += 1;
        }
        assert!(count >= 8, "{count}");
    }
}
