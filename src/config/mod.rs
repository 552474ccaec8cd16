//! Configuration: one TOML file (every key documented in `config/shsd.toml`), parsed into
//! typed values. Unknown keys are rejected and every error is reported at once, so an
//! operator fixes a file in one round; `shsd` exits with 64 on a bad configuration.
//!
//! Relative paths resolve against the configuration file's own folder (spec §11), so the
//! example configuration works from any working directory.

mod admin;
mod directory;
mod file;
mod housekeeping;
mod push;
mod signatures;
mod store;
mod synch;

pub use directory::{DirectoryConfig, DirectoryEngine};
pub use housekeeping::HousekeepingConfig;
pub use push::PushConfig;
pub use signatures::{SignatureRule, SignaturesConfig};
pub use store::{PostgresConfig, StoreConfig};
pub use synch::{SynchConfig, SynchService};

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::urn::{Address, OrgNumber, ProductId};
use crate::tls::Fingerprint;

pub use admin::{AdminConfig, AdminIdentity};
use file::ConfigFile;

/// The exit code for a bad configuration (EX_USAGE), which systemd is told not to restart on.
pub const EXIT_BAD_CONFIG: i32 = 64;

/// Where the admin listener binds by default: loopback only, plain HTTP, on a port that
/// does not look like HTTPS (nor Prometheus' own 9090).
pub const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:9180";

/// The whole, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file was read from.
    pub source: PathBuf,
    /// This node's id, written into `history` and `X-shs-nodeid`.
    pub node_id: String,
    /// A path prefix before `/shs/...` (Axel uses `/axel`); empty by default.
    pub path_prefix: String,
    /// The public SHS listener.
    pub listen: SocketAddr,
    /// Server certificate, key, client CAs and CRLs.
    pub tls: TlsPaths,
    /// The organisations whose mailboxes this node hosts.
    pub organisations: Vec<LocalOrganisation>,
    /// Callers with other rights than their certificate's organisation gives by default.
    pub clients: Vec<ClientRule>,
    /// The storage engine.
    pub store: StoreConfig,
    /// Limits of spec §12.
    pub limits: Limits,
    /// How long SIGTERM waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Log output.
    pub log: LogConfig,
    /// The admin listener (health, readiness, metrics, API, console) and who may use it.
    pub admin: AdminConfig,
    /// Retention and expiry (spec §10).
    pub housekeeping: HousekeepingConfig,
    /// The directory; `None`: no agreement checks, local delivery only.
    pub directory: Option<DirectoryConfig>,
    /// Push delivery to other nodes (spec §5.3).
    pub push: PushConfig,
    /// Synchronous request/reply (spec §6).
    pub synch: SynchConfig,
    /// Signature checks at intake (spec §7); `None`: signatures are not looked at.
    pub signatures: Option<SignaturesConfig>,
}

/// TLS files, already resolved against the configuration folder.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    /// The node's certificate chain (PEM).
    pub certificate: PathBuf,
    /// The node's private key (PEM).
    pub private_key: PathBuf,
    /// CAs that client certificates must chain to (PEM).
    pub client_cas: Vec<PathBuf>,
    /// Certificate revocation lists (PEM).
    pub crls: Vec<PathBuf>,
}

/// An organisation hosted on this node, with the sub-addresses that have mailboxes.
#[derive(Debug, Clone)]
pub struct LocalOrganisation {
    /// The organisation number.
    pub number: OrgNumber,
    /// A display name for logs and the console.
    pub name: String,
    /// Sub-addresses (business systems) with their own mailboxes.
    pub sub_addresses: Vec<String>,
}

/// Which certificates a [`ClientRule`] applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMatch {
    /// Exactly one certificate, by the SHA-256 fingerprint of its DER encoding.
    Fingerprint(Fingerprint),
    /// Every certificate whose subject names this organisation.
    Organisation(OrgNumber),
}

/// What a caller may do beyond sending as, and reading the mailboxes of, its organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// A business system or portal: sends as its own organisation, reads its own mailboxes.
    #[default]
    Client,
    /// Another SHS node: may send on behalf of any organisation (it forwards traffic).
    PeerNode,
}

/// A configured exception to the default rights of spec §2.
#[derive(Debug, Clone)]
pub struct ClientRule {
    /// Which certificates this applies to.
    pub matches: ClientMatch,
    /// The role granted.
    pub role: Role,
    /// The organisation the certificate acts for, when its subject carries none.
    pub acts_for: Option<OrgNumber>,
    /// Mailbox reading narrowed to these sub-addresses (empty: all of the organisation's).
    pub sub_addresses: Vec<String>,
    /// Mailbox reading narrowed to these products (empty: all).
    pub products: Vec<ProductId>,
}

/// The limits of spec §12.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted message body (413 above).
    pub max_message_bytes: u64,
    /// Largest accepted label part (413 above).
    pub max_label_bytes: usize,
    /// Most data parts in one message.
    pub max_data_parts: usize,
    /// Time allowed for a request's header to arrive.
    pub header_timeout: Duration,
    /// Longest pause while a request body streams in.
    pub body_idle_timeout: Duration,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Most simultaneous requests from one identity.
    pub max_requests_per_identity: usize,
    /// The cap on `maxhits` in list requests.
    pub list_max_hits: usize,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event (the default).
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `shsd=debug,info`; `RUST_LOG` overrides it.
    pub filter: String,
}

/// Everything wrong with a configuration file, reported at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file.
    pub source: PathBuf,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} problem(s):",
            self.source.display(),
            self.problems.len()
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigErrors {
            source: path.to_owned(),
            problems: vec![format!("cannot read the file: {err}")],
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses configuration text as if it had been read from `path`.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let fail = |problems| ConfigErrors {
            source: path.to_owned(),
            problems,
        };
        let file: ConfigFile = toml::from_str(text).map_err(|err| {
            let line = err
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let at = line.map(|n| format!("line {n}: ")).unwrap_or_default();
            fail(vec![format!("{at}{}", err.message())])
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut checker = Checker {
            base,
            problems: Vec::new(),
        };
        let config = checker.build(file, path);
        if checker.problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(checker.problems))
        }
    }

    /// The local organisation with this number, if this node hosts it.
    pub fn organisation(&self, org: OrgNumber) -> Option<&LocalOrganisation> {
        self.organisations.iter().find(|local| local.number == org)
    }

    /// True when `address` names a mailbox on this node: a local organisation, or one of its
    /// configured sub-addresses (exact match, never a substring test).
    pub fn is_local_mailbox(&self, address: &Address) -> bool {
        self.organisation(address.org())
            .is_some_and(|local| match address.sub_address() {
                None => true,
                Some(sub) => local.sub_addresses.iter().any(|known| known == sub),
            })
    }
}

/// Collects problems while converting the file into typed values.
struct Checker {
    base: PathBuf,
    problems: Vec<String>,
}

impl Checker {
    fn build(&mut self, file: ConfigFile, source: &Path) -> Config {
        let node_id = file.node.node_id.trim().to_owned();
        if node_id.is_empty()
            || node_id
                .chars()
                .any(|c| !(c.is_alphanumeric() || "._-".contains(c)))
        {
            self.problem(format!(
                "node.node_id {node_id:?} must be a non-empty NMTOKEN (letters, digits, . _ -)"
            ));
        }
        let path_prefix = file.node.path_prefix.trim_end_matches('/').to_owned();
        if !path_prefix.is_empty() && !path_prefix.starts_with('/') {
            self.problem(format!(
                "node.path_prefix {path_prefix:?} must start with '/'"
            ));
        }
        let listen = file.listen.address.parse().unwrap_or_else(|err| {
            self.problem(format!("listen.address {:?}: {err}", file.listen.address));
            SocketAddr::from(([127, 0, 0, 1], 0))
        });

        let tls = TlsPaths {
            certificate: self.existing_file("tls.certificate", &file.tls.certificate),
            private_key: self.existing_file("tls.private_key", &file.tls.private_key),
            client_cas: file
                .tls
                .client_cas
                .iter()
                .map(|p| self.existing_file("tls.client_cas", p))
                .collect(),
            crls: file
                .tls
                .crls
                .iter()
                .map(|p| self.existing_file("tls.crls", p))
                .collect(),
        };
        if tls.client_cas.is_empty() {
            self.problem("tls.client_cas must name at least one CA file".to_owned());
        }

        let organisations = self.organisations(&file.organisations);
        let clients = file
            .clients
            .iter()
            .enumerate()
            .filter_map(|(i, client)| self.client(i, client))
            .collect();
        let limits = self.limits(&file.limits);
        let log = LogConfig {
            format: match file.log.format.as_str() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                other => {
                    self.problem(format!(
                        "log.format {other:?} must be \"human\" or \"json\""
                    ));
                    LogFormat::Human
                }
            },
            filter: file.log.filter,
        };

        let admin = self.admin(&file.admin, &organisations);
        let housekeeping = self.housekeeping(&file.housekeeping);
        let directory = self.directory(file.directory.as_ref());
        let push = self.push(&file.push, &tls);
        let store = self.store(&file.store, push.timeout);
        let synch = self.synch(&file.synch);
        let signatures = self.signatures(file.signatures.as_ref());

        Config {
            source: source.to_owned(),
            node_id,
            path_prefix,
            listen,
            tls,
            organisations,
            clients,
            store,
            limits,
            drain_timeout: Duration::from_secs(file.shutdown.drain_timeout_secs),
            log,
            admin,
            housekeeping,
            directory,
            push,
            synch,
            signatures,
        }
    }

    fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    fn path(&self, value: &str) -> PathBuf {
        let path = Path::new(value);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base.join(path)
        }
    }

    fn existing_file(&mut self, key: &str, value: &str) -> PathBuf {
        let path = self.path(value);
        if !path.is_file() {
            self.problem(format!("{key}: {} is not a readable file", path.display()));
        }
        path
    }

    fn org(&mut self, key: &str, value: &str) -> Option<OrgNumber> {
        value
            .parse()
            .map_err(|err| self.problem(format!("{key} {value:?}: {err}")))
            .ok()
    }

    fn organisations(&mut self, sections: &[file::OrganisationSection]) -> Vec<LocalOrganisation> {
        let mut organisations: Vec<LocalOrganisation> = Vec::new();
        for section in sections {
            let Some(number) = self.org("organisations.number", &section.number) else {
                continue;
            };
            if organisations.iter().any(|known| known.number == number) {
                self.problem(format!("organisation {number} is listed twice"));
                continue;
            }
            for sub in &section.sub_addresses {
                if let Err(err) = Address::with_sub(number, sub) {
                    self.problem(format!("organisation {number}: sub-address: {err}"));
                }
            }
            organisations.push(LocalOrganisation {
                number,
                name: section.name.clone(),
                sub_addresses: section.sub_addresses.clone(),
            });
        }
        if organisations.is_empty() {
            self.problem("at least one [[organisations]] entry is needed: whose mailboxes does this node host?".to_owned());
        }
        organisations
    }

    fn client(&mut self, index: usize, section: &file::ClientSection) -> Option<ClientRule> {
        let key = format!("clients[{index}]");
        let matches = match (&section.fingerprint, &section.organisation) {
            (Some(fingerprint), None) => match fingerprint.parse::<Fingerprint>() {
                Ok(parsed) => ClientMatch::Fingerprint(parsed),
                Err(err) => {
                    self.problem(format!("{key}.fingerprint: {err}"));
                    return None;
                }
            },
            (None, Some(org)) => {
                ClientMatch::Organisation(self.org(&format!("{key}.organisation"), org)?)
            }
            _ => {
                self.problem(format!(
                    "{key} needs exactly one of fingerprint or organisation"
                ));
                return None;
            }
        };
        let role = match section.role.as_deref() {
            None | Some("client") => Role::Client,
            Some("peer-node") => Role::PeerNode,
            Some(other) => {
                self.problem(format!(
                    "{key}.role {other:?} must be \"client\" or \"peer-node\""
                ));
                Role::Client
            }
        };
        let acts_for = match &section.acts_for {
            Some(org) => Some(self.org(&format!("{key}.acts_for"), org)?),
            None => None,
        };
        if acts_for.is_some() && matches!(matches, ClientMatch::Organisation(_)) {
            self.problem(format!("{key}.acts_for needs a fingerprint match"));
        }
        let products = section
            .products
            .iter()
            .filter_map(|p| {
                p.parse()
                    .map_err(|err| self.problem(format!("{key}.products {p:?}: {err}")))
                    .ok()
            })
            .collect();
        Some(ClientRule {
            matches,
            role,
            acts_for,
            sub_addresses: section.sub_addresses.clone(),
            products,
        })
    }

    fn limits(&mut self, section: &file::LimitsSection) -> Limits {
        let mut positive = |key: &str, value: u64| -> u64 {
            if value == 0 {
                self.problem(format!("limits.{key} must be greater than 0"));
            }
            value
        };
        let to_usize = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        Limits {
            max_message_bytes: positive("max_message_bytes", section.max_message_bytes),
            max_label_bytes: to_usize(positive("max_label_bytes", section.max_label_bytes)),
            max_data_parts: to_usize(positive("max_data_parts", section.max_data_parts)),
            header_timeout: Duration::from_secs(positive(
                "header_timeout_secs",
                section.header_timeout_secs,
            )),
            body_idle_timeout: Duration::from_secs(positive(
                "body_idle_timeout_secs",
                section.body_idle_timeout_secs,
            )),
            max_connections: to_usize(positive("max_connections", section.max_connections)),
            max_requests_per_identity: to_usize(positive(
                "max_requests_per_identity",
                section.max_requests_per_identity,
            )),
            list_max_hits: to_usize(positive("list_max_hits", section.list_max_hits)),
        }
    }
}

/// A small valid configuration for unit tests elsewhere in the crate: one organisation
/// (2120000142) with the sub-address `bygglov`; the files it names are written to a
/// temporary folder that is gone again when this returns (nothing reads them later).
#[cfg(test)]
pub(crate) fn for_tests() -> Config {
    for_tests_with("")
}

/// [`for_tests`] with `extra` TOML appended (more organisations, a directory…).
#[cfg(test)]
pub(crate) fn for_tests_with(extra: &str) -> Config {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["n.pem", "k.pem", "ca.pem"] {
        std::fs::write(dir.path().join(name), "x").expect("write");
    }
    let text = r#"
[node]
node_id = "n"
[listen]
address = "127.0.0.1:0"
[tls]
certificate = "n.pem"
private_key = "k.pem"
client_cas = ["ca.pem"]
[[organisations]]
number = "2120000142"
sub_addresses = ["bygglov"]
"#;
    let text = format!("{text}\n{extra}");
    Config::from_toml(&text, &dir.path().join("c.toml")).unwrap_or_else(|err| panic!("{err}"))
}

#[cfg(test)]
mod tests;
