//! The `shs.product` document (DTD `shs-product-type-1.2.dtd`): a product type, its
//! owner and the data parts a message of it carries (spec §9).

use super::ProtocolError;
use super::urn::{OrgNumber, ProductId};
use super::xml::{self, Element, xml_error};

const DOCUMENT: &str = "shs.product";

/// One kind of data part a product allows: `data` (requests, events) or `reply-data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPartSpec {
    /// `datapartType`, compared case-insensitively with the label's `datapartType`.
    pub datapart_type: String,
    /// `minOccurs` (default 1).
    pub min_occurs: u32,
    /// `maxOccurs` (default 1); `None` for `unbounded`.
    pub max_occurs: Option<u32>,
    /// `mime` `type/subtype` (default `text/xml`).
    pub mime_type: String,
    /// Whether `security/dsig` asks for a signature.
    pub signed: bool,
}

/// A product type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductType {
    /// The product id (`uuid`).
    pub id: ProductId,
    /// `commonName`, for people.
    pub name: String,
    /// The organisation that defines the product.
    pub principal: Option<OrgNumber>,
    /// `resp-required`: whether a request of this product expects a reply (default yes).
    pub reply_required: bool,
    /// The data parts of a message of this product.
    pub data: Vec<DataPartSpec>,
    /// The data parts of a reply.
    pub reply_data: Vec<DataPartSpec>,
}

impl ProductType {
    /// Parses an `shs.product` document.
    pub fn parse(bytes: &[u8]) -> Result<ProductType, ProtocolError> {
        let decoded = xml::decode(DOCUMENT, bytes)?;
        let document = xml::parse(DOCUMENT, &decoded)?;
        let root = &document.root;
        let uuid = root.required_attr(DOCUMENT, "uuid")?;
        let id = uuid
            .trim()
            .parse::<ProductId>()
            .map_err(|err| xml_error!(DOCUMENT, "uuid {uuid:?}: {err}"))?;
        let principal = match root.children.iter().find(|c| c.name == "principal") {
            Some(principal) => {
                let text = principal.text_only(DOCUMENT)?;
                let org = text.trim().parse::<OrgNumber>();
                Some(org.map_err(|err| xml_error!(DOCUMENT, "principal {text:?}: {err}"))?)
            }
            None => return Err(xml_error!(DOCUMENT, "<shs.product> has no <principal>")),
        };
        let specs = |name: &str| -> Result<Vec<DataPartSpec>, ProtocolError> {
            root.children
                .iter()
                .filter(|c| c.name == name)
                .map(data_part)
                .collect()
        };
        let data = specs("data")?;
        if data.is_empty() {
            return Err(xml_error!(DOCUMENT, "<shs.product> has no <data>"));
        }
        Ok(ProductType {
            id,
            name: root.attr_owned("commonName").unwrap_or_default(),
            principal,
            reply_required: root.attr("resp-required") != Some("no"),
            data,
            reply_data: specs("reply-data")?,
        })
    }
}

fn data_part(element: &Element) -> Result<DataPartSpec, ProtocolError> {
    let datapart_type = element.required_attr(DOCUMENT, "datapartType")?.to_owned();
    let occurs = |name: &str| -> Result<Option<u32>, ProtocolError> {
        match element.attr(name) {
            None => Ok(Some(1)),
            Some("unbounded") => Ok(None),
            Some(text) => text
                .trim()
                .parse::<u32>()
                .map(Some)
                .map_err(|_| xml_error!(DOCUMENT, "{name} {text:?} is not a number")),
        }
    };
    let min_occurs = occurs("minOccurs")?.unwrap_or(0);
    let max_occurs = occurs("maxOccurs")?;
    let mime = element.children.iter().find(|c| c.name == "mime");
    let mime_type = match mime {
        Some(mime) => format!(
            "{}/{}",
            mime.attr("type").unwrap_or("text"),
            mime.attr("subtype").unwrap_or("xml")
        ),
        None => return Err(xml_error!(DOCUMENT, "<{}> has no <mime>", element.name)),
    };
    let signed = element
        .children
        .iter()
        .filter(|c| c.name == "security")
        .any(|security| security.children.iter().any(|c| c.name == "dsig"));
    Ok(DataPartSpec {
        datapart_type,
        min_occurs,
        max_occurs,
        mime_type,
        signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCT: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE shs.product SYSTEM "shs-product-type-1.2.dtd">
<shs.product version="1.2" uuid="6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00" resp-required="no" commonName="Bygglovsansökan">
    <principal commonName="Kommunen">urn:X-shs:2120000142</principal>
    <data maxOccurs="unbounded" minOccurs="0" datapartType="bilaga">
        <mime type="application" subtype="pdf"/>
    </data>
    <data datapartType="ansokan">
        <mime transfer-encoding="binary" text-charset="ISO-8859-1" subtype="xml" type="text"/>
        <security><dsig/></security>
    </data>
    <reply-data datapartType="beslut"><mime/></reply-data>
    <description>Ansökan om bygglov</description>
</shs.product>"#;

    #[test]
    fn a_product_type_is_read() {
        // The document says ISO-8859-1, so it is given in ISO-8859-1 (one byte per char).
        let latin1: Vec<u8> = PRODUCT.chars().map(|c| c as u8).collect();
        let product = ProductType::parse(&latin1).unwrap();
        assert_eq!(
            product.id.to_string(),
            "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"
        );
        assert_eq!(product.name, "Bygglovsansökan");
        assert_eq!(product.principal.unwrap().as_str(), "2120000142");
        assert!(!product.reply_required);
        assert_eq!(product.data.len(), 2);
        assert_eq!(product.data[0].min_occurs, 0);
        assert_eq!(product.data[0].max_occurs, None);
        assert_eq!(product.data[0].mime_type, "application/pdf");
        assert!(!product.data[0].signed);
        assert_eq!(product.data[1].max_occurs, Some(1));
        assert!(product.data[1].signed);
        assert_eq!(product.reply_data[0].datapart_type, "beslut");
        assert_eq!(product.reply_data[0].mime_type, "text/xml");
    }

    #[test]
    fn the_reference_products_parse_and_the_broken_one_does_not() {
        let base =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/axel");
        let Ok(entries) = std::fs::read_dir(base.join("products")) else {
            return; // The reference folder is optional outside CI.
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let product = ProductType::parse(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            assert!(path.to_string_lossy().contains(product.id.bare().as_str()));
        }
        let broken = std::fs::read(base.join("broken-product.xml")).unwrap();
        assert!(ProductType::parse(&broken).is_err());
    }
}
