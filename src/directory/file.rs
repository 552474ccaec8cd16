//! The file directory: one TOML file naming organisations, products, agreements and
//! delivery addresses, plus SHS `shs.agreement` and `shs.product` documents loaded as they
//! are. Read whole at start and on reload; every problem is reported at once, and a reload
//! that fails keeps the previous contents.
//!
//! ```toml
//! agreement_documents = ["agreements"]   # files, or folders whose *.xml files are read
//! product_documents = ["products"]
//!
//! [[organisations]]
//! number = "2120000142"
//! name = "Exempelkommunen"
//!
//! [[products]]
//! id = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"
//! name = "Bygglovsansökan"
//! datapart_types = ["ansokan", "bilaga"]    # empty: any
//!
//! [[agreements]]
//! id = "bygglov-portal"
//! principal = "2120000142"
//! customer = "5590000001"                  # absent: a public agreement
//! products = ["urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"]
//! flow = "from-customer"                   # to-customer | from-customer | any
//! transfer_type = "asynch"                 # asynch | synch | any (default any)
//! confirm = true                           # default true
//! valid_from = "2024-01-01"                # optional, inclusive
//! valid_to = "2030-12-31"                  # optional, inclusive
//!
//! [[addresses]]
//! organisation = "5560000002"
//! product = "urn:X-shs:…"                  # optional: all products
//! url = "https://shs.example.se/shs/rs"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use serde::Deserialize;

use super::{DeliveryAddress, Directory, DirectoryError, Listing, Organisation};
use crate::protocol::agreement::{Agreement, AgreementTransfer, Flow, parse_date};
use crate::protocol::product_type::{DataPartSpec, ProductType};
use crate::protocol::urn::{OrgNumber, ProductId};

/// A directory read from a TOML file and the documents it names.
pub struct FileDirectory {
    path: PathBuf,
    contents: RwLock<Arc<Contents>>,
}

impl FileDirectory {
    /// Reads `path` and its documents. Blocking (start-up, reload).
    pub fn open(path: &Path) -> Result<FileDirectory, DirectoryError> {
        let contents = Contents::load(path)?;
        Ok(FileDirectory {
            path: path.to_owned(),
            contents: RwLock::new(Arc::new(contents)),
        })
    }

    fn contents(&self) -> Arc<Contents> {
        Arc::clone(&self.contents.read().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl Directory for FileDirectory {
    async fn organisation(
        &self,
        number: OrgNumber,
    ) -> Result<Option<Organisation>, DirectoryError> {
        Ok(self.contents().organisations.get(&number).cloned())
    }

    async fn product(&self, id: &ProductId) -> Result<Option<ProductType>, DirectoryError> {
        Ok(self.contents().products.get(id).cloned())
    }

    async fn agreements(&self, product: &ProductId) -> Result<Vec<Agreement>, DirectoryError> {
        let contents = self.contents();
        Ok(contents
            .agreements
            .iter()
            .filter(|a| a.products.contains(product))
            .cloned()
            .collect())
    }

    async fn address(
        &self,
        organisation: OrgNumber,
        product: &ProductId,
    ) -> Result<Option<DeliveryAddress>, DirectoryError> {
        let contents = self.contents();
        let of_org = || {
            contents
                .addresses
                .iter()
                .filter(|a| a.organisation == organisation)
        };
        let exact = of_org().find(|a| a.product.as_ref() == Some(product));
        Ok(exact
            .or_else(|| of_org().find(|a| a.product.is_none()))
            .cloned())
    }

    async fn reload(&self) -> Result<(), DirectoryError> {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || Contents::load(&path))
            .await
            .map_err(|err| DirectoryError::Unavailable(format!("reload task failed: {err}")))?;
        let contents = loaded?;
        *self
            .contents
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(contents);
        Ok(())
    }

    async fn snapshot(&self) -> Result<Listing, DirectoryError> {
        let contents = self.contents();
        let mut organisations: Vec<_> = contents.organisations.values().cloned().collect();
        organisations.sort_by_key(|o| o.number);
        let mut products: Vec<_> = contents.products.values().cloned().collect();
        products.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Listing {
            organisations,
            products,
            agreements: contents.agreements.clone(),
            addresses: contents.addresses.clone(),
        })
    }
}

/// Everything the files say, indexed.
#[derive(Debug, Default)]
struct Contents {
    organisations: HashMap<OrgNumber, Organisation>,
    products: HashMap<ProductId, ProductType>,
    agreements: Vec<Agreement>,
    addresses: Vec<DeliveryAddress>,
}

impl Contents {
    fn load(path: &Path) -> Result<Contents, DirectoryError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| DirectoryError::Invalid(format!("{}: {err}", path.display())))?;
        let file: DirectoryFile = toml::from_str(&text)
            .map_err(|err| DirectoryError::Invalid(format!("{}: {err}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut loader = Loader::default();
        loader.read(&file, base);
        loader.finish()
    }
}

/// Collects the contents and every problem, so that one run reports them all.
#[derive(Default)]
struct Loader {
    contents: Contents,
    problems: Vec<String>,
    agreement_ids: BTreeMap<String, String>,
}

impl Loader {
    fn read(&mut self, file: &DirectoryFile, base: &Path) {
        for (i, entry) in file.organisations.iter().enumerate() {
            match entry.number.parse::<OrgNumber>() {
                Ok(number) => {
                    let organisation = Organisation {
                        number,
                        name: entry.name.clone(),
                    };
                    self.contents.organisations.insert(number, organisation);
                }
                Err(err) => self.problem(format!("organisations[{i}].number: {err}")),
            }
        }
        for (i, entry) in file.products.iter().enumerate() {
            if let Some(product) = self.product(i, entry) {
                self.add_product(product, &format!("products[{i}]"));
            }
        }
        for (i, entry) in file.agreements.iter().enumerate() {
            if let Some(agreement) = self.agreement(i, entry) {
                self.add_agreement(agreement, format!("agreements[{i}]"));
            }
        }
        for (i, entry) in file.addresses.iter().enumerate() {
            self.address(i, entry);
        }
        for path in documents(base, &file.agreement_documents, &mut self.problems) {
            match std::fs::read(&path) {
                Ok(bytes) => match Agreement::parse(&bytes) {
                    Ok(agreement) => self.add_agreement(agreement, path.display().to_string()),
                    Err(err) => self.problem(format!("{}: {err}", path.display())),
                },
                Err(err) => self.problem(format!("{}: {err}", path.display())),
            }
        }
        for path in documents(base, &file.product_documents, &mut self.problems) {
            match std::fs::read(&path) {
                Ok(bytes) => match ProductType::parse(&bytes) {
                    Ok(product) => self.add_product(product, &path.display().to_string()),
                    Err(err) => self.problem(format!("{}: {err}", path.display())),
                },
                Err(err) => self.problem(format!("{}: {err}", path.display())),
            }
        }
    }

    fn finish(mut self) -> Result<Contents, DirectoryError> {
        if !self.problems.is_empty() {
            return Err(DirectoryError::Invalid(self.problems.join("; ")));
        }
        // Parties of agreements and owners of addresses are known organisations too.
        let mut parties: Vec<OrgNumber> = Vec::new();
        for agreement in &self.contents.agreements {
            parties.push(agreement.principal);
            parties.extend(agreement.customer);
        }
        parties.extend(self.contents.addresses.iter().map(|a| a.organisation));
        for number in parties {
            self.contents
                .organisations
                .entry(number)
                .or_insert_with(|| Organisation {
                    number,
                    name: String::new(),
                });
        }
        Ok(self.contents)
    }

    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    fn add_product(&mut self, product: ProductType, source: &str) {
        if self.contents.products.contains_key(&product.id) {
            self.problem(format!("{source}: product {} is defined twice", product.id));
            return;
        }
        self.contents.products.insert(product.id, product);
    }

    fn add_agreement(&mut self, agreement: Agreement, source: String) {
        let key = agreement.id.to_ascii_lowercase();
        if let Some(first) = self.agreement_ids.get(&key) {
            let text = format!(
                "{source}: agreement {} is already defined in {first}",
                agreement.id
            );
            self.problem(text);
            return;
        }
        self.agreement_ids.insert(key, source);
        self.contents.agreements.push(agreement);
    }

    fn product(&mut self, i: usize, entry: &ProductEntry) -> Option<ProductType> {
        let id = match entry.id.parse::<ProductId>() {
            Ok(id) => id,
            Err(err) => {
                self.problem(format!("products[{i}].id: {err}"));
                return None;
            }
        };
        let data = entry
            .datapart_types
            .iter()
            .map(|datapart_type| DataPartSpec {
                datapart_type: datapart_type.clone(),
                min_occurs: 0,
                max_occurs: None,
                mime_type: String::new(),
                signed: false,
            })
            .collect();
        Some(ProductType {
            id,
            name: entry.name.clone(),
            principal: None,
            reply_required: false,
            data,
            reply_data: Vec::new(),
        })
    }

    fn agreement(&mut self, i: usize, entry: &AgreementEntry) -> Option<Agreement> {
        let before = self.problems.len();
        let mut org = |key: &str, text: &str| match text.parse::<OrgNumber>() {
            Ok(org) => Some(org),
            Err(err) => {
                self.problems.push(format!("agreements[{i}].{key}: {err}"));
                None
            }
        };
        let principal = org("principal", &entry.principal);
        let customer = entry.customer.as_deref().map(|c| org("customer", c));
        let mut products = Vec::new();
        for text in &entry.products {
            match text.parse::<ProductId>() {
                Ok(product) => products.push(product),
                Err(err) => self.problem(format!("agreements[{i}].products: {text:?}: {err}")),
            }
        }
        if entry.products.is_empty() {
            self.problem(format!(
                "agreements[{i}].products: name at least one product"
            ));
        }
        let flow = Flow::parse(&entry.flow);
        if flow.is_none() {
            self.problem(format!(
                "agreements[{i}].flow {:?} must be to-customer, from-customer or any",
                entry.flow
            ));
        }
        let transfer = AgreementTransfer::parse(&entry.transfer_type);
        if transfer.is_none() {
            self.problem(format!(
                "agreements[{i}].transfer_type {:?} must be asynch, synch or any",
                entry.transfer_type
            ));
        }
        let mut date = |key: &str, text: &Option<String>| match text {
            None => None,
            Some(text) => {
                let parsed = parse_date(text);
                if parsed.is_none() {
                    self.problems
                        .push(format!("agreements[{i}].{key} {text:?} is not yyyy-mm-dd"));
                }
                parsed
            }
        };
        let valid_from = date("valid_from", &entry.valid_from);
        let valid_to = date("valid_to", &entry.valid_to);
        if let (Some(from), Some(to)) = (valid_from, valid_to)
            && to < from
        {
            self.problem(format!("agreements[{i}]: valid_to is before valid_from"));
        }
        if self.problems.len() > before {
            return None;
        }
        Some(Agreement {
            id: entry.id.clone(),
            principal: principal?,
            customer: customer.flatten(),
            products,
            flow: flow?,
            transfer: transfer?,
            confirm: entry.confirm,
            valid_from,
            valid_to,
        })
    }

    fn address(&mut self, i: usize, entry: &AddressEntry) {
        let organisation = entry.organisation.parse::<OrgNumber>();
        let product = entry.product.as_deref().map(str::parse::<ProductId>);
        let url_ok = entry.url.starts_with("https://") || entry.url.starts_with("http://");
        match (organisation, product.transpose()) {
            (Ok(organisation), Ok(product)) if url_ok => {
                self.contents.addresses.push(DeliveryAddress {
                    organisation,
                    product,
                    url: entry.url.clone(),
                });
            }
            (Err(err), _) => self.problem(format!("addresses[{i}].organisation: {err}")),
            (_, Err(err)) => self.problem(format!("addresses[{i}].product: {err}")),
            _ => self.problem(format!(
                "addresses[{i}].url {:?} must be an https:// (or http://) URL",
                entry.url
            )),
        }
    }
}

/// The `.xml` files named by `entries` (files, or folders read one level deep), sorted.
fn documents(base: &Path, entries: &[String], problems: &mut Vec<String>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in entries {
        let path = base.join(entry);
        if path.is_dir() {
            match std::fs::read_dir(&path) {
                Ok(listing) => {
                    let mut files: Vec<PathBuf> = listing
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")))
                        .collect();
                    files.sort();
                    found.extend(files);
                }
                Err(err) => problems.push(format!("{}: {err}", path.display())),
            }
        } else if path.is_file() {
            found.push(path);
        } else {
            problems.push(format!("{}: no such file or folder", path.display()));
        }
    }
    found
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    #[serde(default)]
    agreement_documents: Vec<String>,
    #[serde(default)]
    product_documents: Vec<String>,
    #[serde(default)]
    organisations: Vec<OrganisationEntry>,
    #[serde(default)]
    products: Vec<ProductEntry>,
    #[serde(default)]
    agreements: Vec<AgreementEntry>,
    #[serde(default)]
    addresses: Vec<AddressEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganisationEntry {
    number: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductEntry {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    datapart_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgreementEntry {
    id: String,
    principal: String,
    customer: Option<String>,
    products: Vec<String>,
    flow: String,
    #[serde(default = "any")]
    transfer_type: String,
    #[serde(default = "yes")]
    confirm: bool,
    valid_from: Option<String>,
    valid_to: Option<String>,
}

fn any() -> String {
    "any".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressEntry {
    organisation: String,
    product: Option<String>,
    url: String,
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
