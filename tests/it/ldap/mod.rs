//! The LDAP directory against a real OpenLDAP `slapd` (see [`slapd`]): the SHS schema read
//! as organisations, products, public agreements and addresses; the cache and reload;
//! servers in order; an outage and the recovery; binds; TLS by ldaps:// and StartTLS; and
//! the reference tree from `../shared/reference/axel/ldap/` when it is there.

mod slapd;

use std::path::Path;
use std::time::Duration;

use shsd::directory::{Directory, DirectoryError, LdapConfig, LdapDirectory, SimpleBind};
use shsd::protocol::agreement::{AgreementTransfer, Flow};
use shsd::protocol::urn::{OrgNumber, ProductId};

use slapd::{ADMIN_DN, ADMIN_PASSWORD, Slapd};

const BYGGLOV: &str = "6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00";
const KOMMUN: &str = "2120000142";
const GRANNE: &str = "2120000159";

/// A tree modelled on the reference: an organisation with products, public agreements and
/// addresses in its own subtrees, a product listed twice, and broken entries.
const TREE: &str = "\
dn: L=SHS
objectClass: locality
l: SHS

dn: o=Exempelkommun,L=SHS
objectClass: organization
objectClass: shsOrgExtension
o: Exempelkommun
organizationNumber: 2120000142

dn: ou=Product types,o=Exempelkommun,L=SHS
objectClass: organizationalUnit
ou: Product types

dn: productName=Bygglov,ou=Product types,o=Exempelkommun,L=SHS
objectClass: shsProduct
productName: Bygglov
serialNumber: 6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00
principal: urn:X-shs:2120000142

dn: o=Myndighetsprodukter,L=SHS
objectClass: organization
o: Myndighetsprodukter

dn: productName=Bygglov,o=Myndighetsprodukter,L=SHS
objectClass: shsProduct
productName: Bygglov
serialNumber: 6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00
principal: urn:X-shs:2120000142

dn: productName=Trasig,o=Myndighetsprodukter,L=SHS
objectClass: shsProduct
productName: Trasig
serialNumber: not-a-uuid

dn: ou=Agreements,o=Exempelkommun,L=SHS
objectClass: organizationalUnit
ou: Agreements

dn: serialNumber=7d3e1f30-1111-4222-8333-444455556666,ou=Agreements,o=Exempelkommun,L=SHS
objectClass: shsAgreement
serialNumber: 7d3e1f30-1111-4222-8333-444455556666
principal: urn:X-shs:2120000142
productName: Bygglov
shsProductID: 6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00
shsTransferType: asynch
shsDeliveryConfirmation: yes

dn: serialNumber=grannavtal,ou=Agreements,o=Exempelkommun,L=SHS
objectClass: shsAgreement
serialNumber: grannavtal
principal: 2120000159
shsProductID: urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00

dn: serialNumber=trasigt,ou=Agreements,o=Exempelkommun,L=SHS
objectClass: shsAgreement
serialNumber: trasigt
principal: kommunen
shsProductID: 6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00

dn: ou=Addresses,o=Exempelkommun,L=SHS
objectClass: organizationalUnit
ou: Addresses

dn: organizationNumber=2120000142+serialNumber=6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00,ou=Addresses,o=Exempelkommun,L=SHS
objectClass: shsAddresses
organizationNumber: 2120000142
serialNumber: 6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00
shsDeliveryMethods: https://shs.exempelkommun.se/shs/rs

dn: organizationNumber=2120000142+serialNumber=confirm,ou=Addresses,o=Exempelkommun,L=SHS
objectClass: shsAddresses
organizationNumber: 2120000142
serialNumber: confirm
shsDeliveryMethods: https://shs.exempelkommun.se/shs/confirm

dn: organizationNumber=2120000142+serialNumber=00000000-0000-0000-0000-000000000009,ou=Addresses,o=Exempelkommun,L=SHS
objectClass: shsAddresses
organizationNumber: 2120000142
serialNumber: 00000000-0000-0000-0000-000000000009
shsDeliveryMethods: www.exempelkommun.se
";

fn org(text: &str) -> OrgNumber {
    text.parse().unwrap()
}

fn product(text: &str) -> ProductId {
    text.parse().unwrap()
}

/// Short timeouts so a failing test fails fast.
fn config(servers: Vec<String>) -> LdapConfig {
    let mut config = LdapConfig::new(servers);
    config.connect_timeout = Duration::from_secs(2);
    config.operation_timeout = Duration::from_secs(5);
    config
}

fn loaded() -> Slapd {
    let slapd = Slapd::start();
    slapd.add(TREE);
    slapd
}

#[tokio::test]
async fn lookups_read_the_shs_schema() {
    let slapd = loaded();
    let directory = LdapDirectory::new(config(vec![slapd.url()])).unwrap();

    let kommun = directory.organisation(org(KOMMUN)).await.unwrap().unwrap();
    assert_eq!(kommun.name, "Exempelkommun");
    // Known only as the principal of an agreement.
    let granne = directory.organisation(org(GRANNE)).await.unwrap().unwrap();
    assert_eq!(granne.name, "");
    assert_eq!(
        directory.organisation(org("5560000000")).await.unwrap(),
        None
    );

    let bygglov = directory.product(&product(BYGGLOV)).await.unwrap().unwrap();
    assert_eq!(bygglov.name, "Bygglov");
    assert_eq!(bygglov.principal, Some(org(KOMMUN)));
    assert!(bygglov.data.is_empty(), "any data part");
    let unknown = product("11111111-2222-4333-8444-555555555555");
    assert_eq!(directory.product(&unknown).await.unwrap(), None);

    // The broken agreement is skipped; both public agreements are read.
    let agreements = directory.agreements(&product(BYGGLOV)).await.unwrap();
    let mut ids: Vec<_> = agreements.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["7d3e1f30-1111-4222-8333-444455556666", "grannavtal"]);
    let own = agreements
        .iter()
        .find(|a| a.principal == org(KOMMUN))
        .unwrap();
    assert_eq!(own.customer, None);
    assert_eq!(own.flow, Flow::FromCustomer);
    assert_eq!(own.transfer, AgreementTransfer::Asynch);
    assert!(own.confirm);
    let granne = agreements
        .iter()
        .find(|a| a.principal == org(GRANNE))
        .unwrap();
    assert_eq!(granne.transfer, AgreementTransfer::Any);
    assert!(!granne.confirm, "the schema's default is no confirmation");
    assert!(directory.agreements(&unknown).await.unwrap().is_empty());

    let address = directory
        .address(org(KOMMUN), &product(BYGGLOV))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(address.url, "https://shs.exempelkommun.se/shs/rs");
    assert_eq!(address.product, Some(product(BYGGLOV)));
    let confirm = directory
        .address(org(KOMMUN), &ProductId::Confirm)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(confirm.url, "https://shs.exempelkommun.se/shs/confirm");
    assert_eq!(
        directory
            .address(org(GRANNE), &product(BYGGLOV))
            .await
            .unwrap(),
        None
    );
    // A broken address is the operator's problem, named precisely.
    let broken = product("00000000-0000-0000-0000-000000000009");
    match directory.address(org(KOMMUN), &broken).await {
        Err(DirectoryError::Invalid(text)) => {
            assert!(
                text.contains("shsDeliveryMethods") && text.contains("www.exempelkommun.se"),
                "{text}"
            )
        }
        other => panic!("expected Invalid, got {other:?}"),
    }

    let listing = directory.snapshot().await.unwrap();
    let numbers: Vec<_> = listing.organisations.iter().map(|o| o.number).collect();
    assert_eq!(numbers, [org(KOMMUN), org(GRANNE)]);
    assert_eq!(
        listing.products.len(),
        1,
        "the listed-twice product once, the broken one skipped"
    );
    assert_eq!(listing.agreements.len(), 2);
    assert_eq!(listing.addresses.len(), 2);
}

/// The URL where the municipality receives Bygglov.
async fn url(directory: &LdapDirectory) -> String {
    let address = directory.address(org(KOMMUN), &product(BYGGLOV)).await;
    address.unwrap().unwrap().url
}

#[tokio::test]
async fn answers_are_cached_until_reload() {
    let slapd = loaded();
    let directory = LdapDirectory::new(config(vec![slapd.url()])).unwrap();
    assert_eq!(url(&directory).await, "https://shs.exempelkommun.se/shs/rs");
    slapd.modify(
        "dn: organizationNumber=2120000142+serialNumber=6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00,ou=Addresses,o=Exempelkommun,L=SHS
changetype: modify
replace: shsDeliveryMethods
shsDeliveryMethods: https://ny.exempelkommun.se/shs/rs
",
    );
    assert_eq!(
        url(&directory).await,
        "https://shs.exempelkommun.se/shs/rs",
        "still the cached answer"
    );
    directory.reload().await.unwrap();
    assert_eq!(url(&directory).await, "https://ny.exempelkommun.se/shs/rs");

    // With the cache off, every call asks the server.
    let mut uncached = config(vec![slapd.url()]);
    uncached.cache_ttl = Duration::ZERO;
    let uncached = LdapDirectory::new(uncached).unwrap();
    assert_eq!(url(&uncached).await, "https://ny.exempelkommun.se/shs/rs");
    slapd.modify(
        "dn: organizationNumber=2120000142+serialNumber=6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00,ou=Addresses,o=Exempelkommun,L=SHS
changetype: modify
replace: shsDeliveryMethods
shsDeliveryMethods: https://tredje.exempelkommun.se/shs/rs
",
    );
    assert_eq!(
        url(&uncached).await,
        "https://tredje.exempelkommun.se/shs/rs"
    );
}

#[tokio::test]
async fn servers_are_tried_in_order_and_an_outage_is_unavailable() {
    let mut slapd = loaded();
    let dead = format!("ldap://127.0.0.1:{}", slapd::free_port());
    let mut settings = config(vec![dead.clone(), slapd.url()]);
    settings.cache_ttl = Duration::ZERO;
    let directory = LdapDirectory::new(settings).unwrap();
    let kommun = directory.organisation(org(KOMMUN)).await.unwrap();
    assert_eq!(kommun.unwrap().name, "Exempelkommun");

    slapd.stop();
    match directory.product(&product(BYGGLOV)).await {
        Err(DirectoryError::Unavailable(text)) => {
            assert!(
                text.contains(&dead) && text.contains(&slapd.url()),
                "{text}"
            )
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    match directory.snapshot().await {
        Err(DirectoryError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }

    // Back up: the next call connects again.
    slapd.run();
    let bygglov = directory.product(&product(BYGGLOV)).await.unwrap();
    assert_eq!(bygglov.unwrap().name, "Bygglov");

    // A server that does not answer at all runs into the connect timeout, then the next.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("ldap://{}", silent.local_addr().unwrap());
    let mut settings = config(vec![silent_url, slapd.url()]);
    settings.connect_timeout = Duration::from_millis(500);
    settings.operation_timeout = Duration::from_millis(500);
    let directory = LdapDirectory::new(settings).unwrap();
    let started = std::time::Instant::now();
    assert!(directory.organisation(org(KOMMUN)).await.unwrap().is_some());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn binds_with_the_configured_password() {
    let slapd = loaded();
    let mut good = config(vec![slapd.url()]);
    good.bind = Some(SimpleBind {
        dn: ADMIN_DN.to_owned(),
        password: ADMIN_PASSWORD.to_owned(),
    });
    let directory = LdapDirectory::new(good.clone()).unwrap();
    assert!(directory.organisation(org(KOMMUN)).await.unwrap().is_some());

    let mut wrong = good;
    wrong.bind = Some(SimpleBind {
        dn: ADMIN_DN.to_owned(),
        password: "not-the-password".to_owned(),
    });
    assert!(
        !format!("{wrong:?}").contains("not-the-password"),
        "Debug hides it"
    );
    let directory = LdapDirectory::new(wrong).unwrap();
    match directory.organisation(org(KOMMUN)).await {
        Err(DirectoryError::Unavailable(text)) => {
            assert!(
                text.contains("bind") && text.contains("invalidCredentials"),
                "{text}"
            );
            assert!(!text.contains("not-the-password"));
        }
        other => panic!("expected a rejected bind, got {other:?}"),
    }
}

#[tokio::test]
async fn tls_by_ldaps_and_starttls() {
    let slapd = loaded();
    let mut ldaps = config(vec![slapd.tls_url()]);
    ldaps.ca_file = Some(slapd.ca_file());
    let directory = LdapDirectory::new(ldaps).unwrap();
    assert!(directory.organisation(org(KOMMUN)).await.unwrap().is_some());

    let mut starttls = config(vec![slapd.url()]);
    starttls.starttls = true;
    starttls.ca_file = Some(slapd.ca_file());
    let directory = LdapDirectory::new(starttls).unwrap();
    assert!(directory.organisation(org(KOMMUN)).await.unwrap().is_some());

    // A server whose certificate the trust store does not vouch for is not used.
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_ca.path(), slapd::unrelated_ca_pem()).unwrap();
    let mut untrusted = config(vec![slapd.tls_url()]);
    untrusted.ca_file = Some(other_ca.path().to_owned());
    let directory = LdapDirectory::new(untrusted).unwrap();
    assert!(matches!(
        directory.organisation(org(KOMMUN)).await,
        Err(DirectoryError::Unavailable(_))
    ));

    // A CA file that is not one is a configuration error.
    let mut missing = config(vec![slapd.tls_url()]);
    missing.ca_file = Some(Path::new("/nonexistent/ca.pem").to_owned());
    assert!(matches!(
        LdapDirectory::new(missing),
        Err(DirectoryError::Invalid(_))
    ));
}

#[test]
fn bad_configurations_are_refused_at_once() {
    let mut config = LdapConfig::new(vec!["http://x".into(), "ldap://".into()]);
    config.base_dn = " ".into();
    config.size_limit = 0;
    let Err(DirectoryError::Invalid(text)) = LdapDirectory::new(config) else {
        panic!("expected Invalid");
    };
    for part in ["http://x", "\"ldap://\"", "base DN", "size limit"] {
        assert!(text.contains(part), "{part} in {text}");
    }
    assert!(matches!(
        LdapDirectory::new(LdapConfig::new(Vec::new())),
        Err(DirectoryError::Invalid(_))
    ));
}

#[tokio::test]
async fn the_reference_tree_reads() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/axel/ldap/axel-systemtest.ldif");
    if !reference.exists() {
        eprintln!("skipped: {} is not there", reference.display());
        return;
    }
    let slapd = Slapd::start();
    slapd.add(&std::fs::read_to_string(&reference).unwrap());
    let directory = LdapDirectory::new(config(vec![slapd.url()])).unwrap();

    let r2m = directory
        .organisation(org("5565317129"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r2m.name, "R2M");
    let product3 = directory
        .product(&product("00000000-0000-0000-0000-000000000003"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(product3.name, "testProdukt3");
    assert_eq!(product3.principal, Some(org("1111111111")));

    let agreements = directory
        .agreements(&product("0f696d90-e854-11e1-aff1-0800200c9a66"))
        .await
        .unwrap();
    let mut principals: Vec<_> = agreements.iter().map(|a| a.principal).collect();
    principals.sort();
    assert_eq!(principals, [org("1234567890"), org("5565317129")]);
    assert!(
        agreements
            .iter()
            .all(|a| a.transfer == AgreementTransfer::Synch)
    );
    let any = directory
        .agreements(&product("00000000-0000-0000-0000-000000000003"))
        .await
        .unwrap();
    assert_eq!(any.len(), 1);
    assert_eq!(any[0].id, "de93113b-4721-4d8c-b55b-87551355d4e9");
    assert_eq!(any[0].transfer, AgreementTransfer::Any);
    assert!(!any[0].confirm);

    let address = directory
        .address(org("1111111111"), &ProductId::Error)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(address.url, "http://192.168.1.43:8080/R2M/rs");
    // `shsDeliveryMethods: www.r2m.se` is not a URL.
    assert!(matches!(
        directory
            .address(
                org("5565317129"),
                &product("545b12e0-f020-11e1-aff1-0800200c9a66")
            )
            .await,
        Err(DirectoryError::Invalid(_))
    ));

    let listing = directory.snapshot().await.unwrap();
    for number in ["0000000000", "1111111111", "1234567890", "5565317129"] {
        assert!(
            listing
                .organisations
                .iter()
                .any(|o| o.number == org(number)),
            "{number}"
        );
    }
    assert_eq!(listing.agreements.len(), 4);
    // Ids listed more than once count once; the serialNumber that is no UUID is skipped.
    assert_eq!(listing.products.len(), 3);
}
