//! The file directory: TOML entries and SHS documents, every problem at once, reload that
//! keeps the old contents on failure.

use super::*;

const PRODUCT: &str = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00";

const TOML: &str = r#"
agreement_documents = ["agreements"]

[[organisations]]
number = "2120000142"
name = "Exempelkommunen"

[[products]]
id = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"
name = "Bygglovsansökan"
datapart_types = ["ansokan"]

[[agreements]]
id = "bygglov-portal"
principal = "2120000142"
customer = "5590000001"
products = ["urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"]
flow = "from-customer"
valid_to = "2030-12-31"

[[addresses]]
organisation = "5560000002"
url = "https://shs.example.se/shs/rs"

[[addresses]]
organisation = "5560000002"
product = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"
url = "https://bygglov.example.se/shs/rs"
"#;

const PUBLIC_AGREEMENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<shs.agreement version="1.2" uuid="pub-1" transfer-type="any">
  <shs>
    <principal>urn:X-shs:2120000142</principal>
    <product>urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00</product>
    <direction flow="from-customer"/>
  </shs>
</shs.agreement>"#;

fn folder(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("directory.toml"), toml).unwrap();
    std::fs::create_dir(dir.path().join("agreements")).unwrap();
    std::fs::write(dir.path().join("agreements/pub-1.xml"), PUBLIC_AGREEMENT).unwrap();
    std::fs::write(dir.path().join("agreements/notes.txt"), "not read").unwrap();
    dir
}

fn org(text: &str) -> OrgNumber {
    text.parse().unwrap()
}

#[tokio::test]
async fn entries_and_documents_are_read() {
    let dir = folder(TOML);
    let directory = FileDirectory::open(&dir.path().join("directory.toml")).unwrap();
    let product: ProductId = PRODUCT.parse().unwrap();

    let kommun = directory.organisation(org("2120000142")).await.unwrap();
    assert_eq!(kommun.unwrap().name, "Exempelkommunen");
    // Parties of agreements and address owners are known, nameless.
    assert!(
        directory
            .organisation(org("5590000001"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        directory
            .organisation(org("5560000002"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        directory
            .organisation(org("1111111111"))
            .await
            .unwrap()
            .is_none()
    );

    let found = directory.product(&product).await.unwrap().unwrap();
    assert_eq!(found.name, "Bygglovsansökan");
    assert_eq!(found.data[0].datapart_type, "ansokan");

    let agreements = directory.agreements(&product).await.unwrap();
    let ids: Vec<&str> = agreements.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["bygglov-portal", "pub-1"]);
    assert_eq!(agreements[0].transfer, AgreementTransfer::Any);
    assert!(agreements[0].confirm);
    assert_eq!(agreements[1].customer, None);
    let other: ProductId = "urn:X-shs:0f2d7b9e-1c3a-4e5f-8a6b-7c8d9e0f1a2b"
        .parse()
        .unwrap();
    assert!(directory.agreements(&other).await.unwrap().is_empty());

    // The product's own address wins over the organisation-wide one.
    let exact = directory
        .address(org("5560000002"), &product)
        .await
        .unwrap();
    assert_eq!(exact.unwrap().url, "https://bygglov.example.se/shs/rs");
    let fallback = directory.address(org("5560000002"), &other).await.unwrap();
    assert_eq!(fallback.unwrap().url, "https://shs.example.se/shs/rs");
    assert!(
        directory
            .address(org("2120000142"), &product)
            .await
            .unwrap()
            .is_none()
    );

    let listing = directory.snapshot().await.unwrap();
    assert_eq!(listing.agreements.len(), 2);
    assert_eq!(listing.addresses.len(), 2);
    assert_eq!(listing.organisations.len(), 3);
}

#[test]
fn every_problem_is_reported_at_once() {
    let broken = r#"
agreement_documents = ["missing-folder"]
[[organisations]]
number = "12"
[[agreements]]
id = "a"
principal = "2120000142"
products = []
flow = "sideways"
transfer_type = "sometimes"
valid_from = "2024-02-30"
[[agreements]]
id = "b"
principal = "2120000142"
products = ["not a product"]
flow = "any"
valid_from = "2025-01-01"
valid_to = "2024-01-01"
[[addresses]]
organisation = "5560000002"
url = "ftp://example.se"
"#;
    let dir = folder(broken);
    let Err(DirectoryError::Invalid(text)) =
        FileDirectory::open(&dir.path().join("directory.toml"))
    else {
        panic!("a broken directory was accepted");
    };
    for expected in [
        "organisations[0].number",
        "agreements[0].products: name at least one",
        "agreements[0].flow",
        "agreements[0].transfer_type",
        "agreements[0].valid_from",
        "agreements[1].products",
        "agreements[1]: valid_to is before valid_from",
        "addresses[0].url",
        "missing-folder",
    ] {
        assert!(text.contains(expected), "{expected} missing from: {text}");
    }
}

#[test]
fn unknown_keys_and_duplicate_ids_are_refused() {
    let dir = folder("[[organisations]]\nnumber = \"2120000142\"\ncolour = \"red\"\n");
    let err = FileDirectory::open(&dir.path().join("directory.toml"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("colour"), "{err}");

    let twice = TOML.replace("id = \"bygglov-portal\"", "id = \"PUB-1\"");
    let dir = folder(&twice);
    let err = FileDirectory::open(&dir.path().join("directory.toml"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("already defined"), "{err}");
}

#[tokio::test]
async fn reload_reads_anew_and_keeps_the_old_contents_on_failure() {
    let dir = folder(TOML);
    let path = dir.path().join("directory.toml");
    let directory = FileDirectory::open(&path).unwrap();
    let product: ProductId = PRODUCT.parse().unwrap();
    assert_eq!(directory.agreements(&product).await.unwrap().len(), 2);

    std::fs::remove_file(dir.path().join("agreements/pub-1.xml")).unwrap();
    directory.reload().await.unwrap();
    assert_eq!(directory.agreements(&product).await.unwrap().len(), 1);

    std::fs::write(&path, "this is not toml [").unwrap();
    assert!(directory.reload().await.is_err());
    assert_eq!(directory.agreements(&product).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_reference_documents_load_as_they_are() {
    let reference =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/axel");
    if !reference.exists() {
        return; // The reference folder is optional outside CI.
    }
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "agreement_documents = [{:?}]\nproduct_documents = [{:?}]\n",
        reference.join("agreements").display().to_string(),
        reference.join("products").display().to_string(),
    );
    std::fs::write(dir.path().join("directory.toml"), toml).unwrap();
    let directory = FileDirectory::open(&dir.path().join("directory.toml")).unwrap();
    let listing = directory.snapshot().await.unwrap();
    assert_eq!(listing.agreements.len(), 8);
    assert_eq!(listing.products.len(), 6);
    let product: ProductId = "urn:X-shs:00000000-0000-0000-0000-000000000001"
        .parse()
        .unwrap();
    assert_eq!(directory.agreements(&product).await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_shipped_example_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/directory.toml");
    let directory = FileDirectory::open(&path).unwrap_or_else(|err| panic!("{err}"));
    let listing = directory.snapshot().await.unwrap();
    assert_eq!(listing.agreements.len(), 1);
    assert_eq!(listing.agreements[0].id, "bygglov-portal");
}
