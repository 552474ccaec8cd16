//! The `[directory]` section (spec §9): where organisations, products, agreements and
//! delivery addresses come from. Without the section there is no directory: the node
//! delivers to its own organisations without agreement checks (a closed node).

use std::path::PathBuf;
use std::time::Duration;

use super::Checker;
use super::file::{DirectorySection, LdapSection};
use crate::directory::{LdapConfig, SimpleBind};

/// The directory the node routes with.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Where the data lives.
    pub engine: DirectoryEngine,
    /// Refuse products the directory does not know with `UnknownProductType` (default
    /// false: any product with a fitting agreement may pass).
    pub known_products_only: bool,
}

/// A directory engine and its settings.
#[derive(Debug, Clone)]
pub enum DirectoryEngine {
    /// A TOML file with SHS documents beside it (see `directory::file`).
    File {
        /// The TOML file, resolved against the configuration's folder.
        path: PathBuf,
    },
    /// An LDAP server (or several) with the SHS schema.
    Ldap(LdapConfig),
}

impl Checker {
    pub(super) fn directory(
        &mut self,
        section: Option<&DirectorySection>,
    ) -> Option<DirectoryConfig> {
        let section = section?;
        let engine = match section.engine.as_str() {
            "file" => match &section.file {
                Some(file) => DirectoryEngine::File {
                    path: self.path(file),
                },
                None => {
                    self.problem("directory.file: the file engine needs a file".to_owned());
                    return None;
                }
            },
            "ldap" => match &section.ldap {
                Some(ldap) => DirectoryEngine::Ldap(self.ldap(ldap)?),
                None => {
                    self.problem(
                        "directory.ldap: the ldap engine needs [directory.ldap]".to_owned(),
                    );
                    return None;
                }
            },
            other => {
                self.problem(format!(
                    "directory.engine {other:?} must be \"file\" or \"ldap\""
                ));
                return None;
            }
        };
        Some(DirectoryConfig {
            engine,
            known_products_only: section.known_products_only,
        })
    }
}

impl Checker {
    /// `[directory.ldap]`; the bind password is read from its file here, so a missing file
    /// is reported with every other problem.
    fn ldap(&mut self, section: &LdapSection) -> Option<LdapConfig> {
        let mut config = LdapConfig::new(section.servers.clone());
        if section.servers.is_empty() {
            self.problem("directory.ldap.servers: name at least one server".to_owned());
        }
        config.starttls = section.starttls;
        match (&section.bind_dn, &section.bind_password_file) {
            (Some(dn), Some(file)) => {
                let path = self.path(file);
                match std::fs::read_to_string(&path) {
                    Ok(password) => {
                        config.bind = Some(SimpleBind {
                            dn: dn.clone(),
                            password: password.trim_end_matches(['\r', '\n']).to_owned(),
                        });
                    }
                    Err(err) => self.problem(format!(
                        "directory.ldap.bind_password_file {}: {err}",
                        path.display()
                    )),
                }
            }
            (None, None) => {}
            _ => {
                self.problem("directory.ldap.bind_dn and bind_password_file go together".to_owned())
            }
        }
        if let Some(base) = &section.base_dn {
            config.base_dn = base.clone();
        }
        if let Some(secs) = section.connect_timeout_secs {
            config.connect_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = section.operation_timeout_secs {
            config.operation_timeout = Duration::from_secs(secs);
        }
        config.ca_file = section.ca_file.as_deref().map(|file| self.path(file));
        if let Some(secs) = section.cache_ttl_secs {
            config.cache_ttl = Duration::from_secs(secs);
        }
        if let Some(limit) = section.size_limit {
            config.size_limit = limit;
        }
        Some(config)
    }
}
