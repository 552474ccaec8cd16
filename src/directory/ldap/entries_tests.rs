//! The SHS schema mapping: entries as the reference tree writes them, and broken values
//! that must be errors naming the entry, never panics.

use ldap3::asn1::{PL, StructureTag, TagClass};

use super::*;

/// An attribute and its values.
type Attr<'a> = (&'a str, &'a [&'a str]);

const PRODUCT: &str = "0f696d90-e854-11e1-aff1-0800200c9a66";

#[test]
fn organisation_reads_number_and_name() {
    let entry = Entry::new(
        "o=R2M,l=SHS",
        &[("O", &["R2M"]), ("organizationnumber", &["5565317129"])],
    );
    let org = organisation(&entry).unwrap();
    assert_eq!(org.number.as_str(), "5565317129");
    assert_eq!(org.name, "R2M");

    let bad = Entry::new("o=X,l=SHS", &[("organizationNumber", &["55-65"])]);
    let err = organisation(&bad).unwrap_err();
    assert!(
        err.contains("o=X,l=SHS") && err.contains("organizationNumber"),
        "{err}"
    );
    let missing = Entry::new("o=Y,l=SHS", &[("o", &["Y"])]);
    assert!(organisation(&missing).unwrap_err().contains("missing"));
}

#[test]
fn product_reads_id_name_and_principal() {
    let entry = Entry::new(
        "productName=axelTestProduct,ou=Product types,o=R2M,l=SHS",
        &[
            ("productName", &["axelTestProduct"]),
            ("principal", &["urn:X-shs:5565317129"]),
            ("serialNumber", &["00000000-0000-0000-0000-000000000000"]),
        ],
    );
    let product = product(&entry).unwrap();
    assert_eq!(product.id, ProductId::PING);
    assert_eq!(product.name, "axelTestProduct");
    assert_eq!(product.principal.unwrap().as_str(), "5565317129");
    assert!(product.data.is_empty());

    // The reference tree has a product whose serialNumber is not a UUID.
    let odd = Entry::new(
        "productName=axelTestProduct02,l=SHS",
        &[
            ("productName", &["axelTestProduct02"]),
            ("serialNumber", &["5051e4c0ef8685cb7ed1006a"]),
        ],
    );
    assert!(super::product(&odd).unwrap_err().contains("serialNumber"));
}

#[test]
fn agreement_is_public_with_transfer_and_confirm() {
    let entry = Entry::new(
        "serialNumber=a1,ou=Agreements,o=R2M,l=SHS",
        &[
            ("serialNumber", &["a1"]),
            ("principal", &["urn:X-shs:5565317129"]),
            (
                "shsProductID",
                &[PRODUCT, "urn:x-shs:00000000-0000-0000-0000-000000000003"],
            ),
            ("shsTransferType", &["Synch"]),
            ("shsDeliveryConfirmation", &["yes"]),
        ],
    );
    let agreement = agreement(&entry).unwrap();
    assert_eq!(agreement.id, "a1");
    assert_eq!(agreement.principal.as_str(), "5565317129");
    assert_eq!(agreement.customer, None);
    assert_eq!(agreement.flow, Flow::FromCustomer);
    assert_eq!(agreement.transfer, AgreementTransfer::Synch);
    assert!(agreement.confirm);
    assert_eq!(agreement.products.len(), 2);
    assert_eq!(agreement.products[0], PRODUCT.parse().unwrap());
    assert_eq!((agreement.valid_from, agreement.valid_to), (None, None));

    // Defaults: any transfer type, no confirm (the schema's default).
    let plain = Entry::new(
        "serialNumber=a2,l=SHS",
        &[
            ("serialNumber", &["a2"]),
            ("principal", &["1111111111"]),
            ("shsProductID", &[PRODUCT]),
        ],
    );
    let plain = super::agreement(&plain).unwrap();
    assert_eq!(plain.transfer, AgreementTransfer::Any);
    assert!(!plain.confirm);
}

#[test]
fn broken_agreements_say_what_is_wrong() {
    let cases: &[(&[Attr], &str)] = &[
        (
            &[("principal", &["1111111111"]), ("shsProductID", &[PRODUCT])],
            "serialNumber",
        ),
        (
            &[("serialNumber", &["a"]), ("shsProductID", &[PRODUCT])],
            "principal",
        ),
        (
            &[("serialNumber", &["a"]), ("principal", &["1111111111"])],
            "shsProductID",
        ),
        (
            &[
                ("serialNumber", &["a"]),
                ("principal", &["1111111111"]),
                ("shsProductID", &["x"]),
            ],
            "shsProductID",
        ),
        (
            &[
                ("serialNumber", &["a"]),
                ("principal", &["1111111111"]),
                ("shsProductID", &[PRODUCT]),
                ("shsTransferType", &["sometimes"]),
            ],
            "shsTransferType",
        ),
        (
            &[
                ("serialNumber", &["a"]),
                ("principal", &["1111111111"]),
                ("shsProductID", &[PRODUCT]),
                ("shsDeliveryConfirmation", &["maybe"]),
            ],
            "shsDeliveryConfirmation",
        ),
    ];
    for (attrs, attr) in cases {
        let entry = Entry::new("serialNumber=a,l=SHS", attrs);
        let err = agreement(&entry).unwrap_err();
        assert!(
            err.contains(attr) && err.contains("serialNumber=a,l=SHS"),
            "{err}"
        );
    }
}

#[test]
fn address_needs_a_web_url() {
    let entry = Entry::new(
        "organizationNumber=5565317129+serialNumber=confirm,ou=Addresses,o=R2M,l=SHS",
        &[
            ("organizationNumber", &["5565317129"]),
            ("serialNumber", &["confirm"]),
            ("shsDeliveryMethods", &["https://shs.r2m.se/shs/rs"]),
        ],
    );
    let address = address(&entry).unwrap();
    assert_eq!(address.organisation.as_str(), "5565317129");
    assert_eq!(address.product, Some(ProductId::Confirm));
    assert_eq!(address.url, "https://shs.r2m.se/shs/rs");

    // The reference tree has `shsDeliveryMethods: www.r2m.se`.
    for url in ["www.r2m.se", "ftp://x/", "https://a b/"] {
        let bad = Entry::new(
            "a=b",
            &[
                ("organizationNumber", &["5565317129"]),
                ("serialNumber", &[PRODUCT]),
                ("shsDeliveryMethods", &[url]),
            ],
        );
        assert!(
            super::address(&bad)
                .unwrap_err()
                .contains("shsDeliveryMethods")
        );
    }
}

#[test]
fn filters_escape_and_accept_both_forms() {
    let org: OrgNumber = "5565317129".parse().unwrap();
    let product: ProductId = PRODUCT.parse().unwrap();
    assert_eq!(
        address_filter(org, &product),
        "(&(objectClass=shsAddresses)\
         (|(organizationNumber=5565317129)(organizationNumber=urn:X-shs:5565317129))\
         (|(serialNumber=0f696d90-e854-11e1-aff1-0800200c9a66)\
         (serialNumber=urn:X-shs:0f696d90-e854-11e1-aff1-0800200c9a66)))"
    );
    assert_eq!(
        either_form("a", "x*(y)"),
        "(|(a=x\\2a\\28y\\29)(a=urn:X-shs:x\\2a\\28y\\29))"
    );
    for filter in [
        organisation_filter(org),
        party_filter(org),
        product_filter(&product),
        agreements_filter(&product),
    ] {
        assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
    }
}

fn primitive(id: u64, bytes: &[u8]) -> StructureTag {
    StructureTag {
        class: TagClass::Universal,
        id,
        payload: PL::P(bytes.to_vec()),
    }
}

fn constructed(class: TagClass, id: u64, inner: Vec<StructureTag>) -> StructureTag {
    StructureTag {
        class,
        id,
        payload: PL::C(inner),
    }
}

#[test]
fn decode_reads_entries_and_refuses_malformed_ones() {
    let attribute = |name: &str, values: &[&[u8]]| {
        constructed(
            TagClass::Universal,
            16,
            vec![
                primitive(4, name.as_bytes()),
                constructed(
                    TagClass::Universal,
                    17,
                    values.iter().map(|v| primitive(4, v)).collect(),
                ),
            ],
        )
    };
    let good = constructed(
        TagClass::Application,
        4,
        vec![
            primitive(4, b"o=R2M,l=SHS"),
            constructed(
                TagClass::Universal,
                16,
                vec![
                    attribute("organizationNumber", &[b"5565317129"]),
                    attribute("o", &[b"R2M"]),
                    attribute("description", &[b"\xff\xfe"]),
                ],
            ),
        ],
    );
    let entry = decode(ResultEntry::new(good)).unwrap().unwrap();
    assert_eq!(entry.dn, "o=R2M,l=SHS");
    assert_eq!(organisation(&entry).unwrap().name, "R2M");
    assert!(entry.first("description").unwrap_err().contains("not text"));

    // An entry whose attributes are a primitive, and one without attributes at all.
    let flat = constructed(
        TagClass::Application,
        4,
        vec![primitive(4, b"o=X"), primitive(4, b"oops")],
    );
    assert!(decode(ResultEntry::new(flat)).unwrap().is_err());
    let short = constructed(TagClass::Application, 4, vec![primitive(4, b"o=X")]);
    assert!(decode(ResultEntry::new(short)).unwrap().is_err());
    let bad_dn = constructed(TagClass::Application, 4, vec![primitive(4, b"\xff")]);
    assert!(decode(ResultEntry::new(bad_dn)).unwrap().is_err());
    // A referral is not an entry.
    let referral = constructed(TagClass::Application, 19, vec![]);
    assert!(decode(ResultEntry::new(referral)).is_none());
}
