//! The TOML file as written by the operator: plain serde structs with defaults, unknown
//! keys rejected. Turned into typed values by [`super::Config::from_file`].

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    pub node: NodeSection,
    pub listen: ListenSection,
    pub tls: TlsSection,
    #[serde(default)]
    pub organisations: Vec<OrganisationSection>,
    #[serde(default)]
    pub clients: Vec<ClientSection>,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub shutdown: ShutdownSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub admin: AdminSection,
    #[serde(default)]
    pub housekeeping: HousekeepingSection,
    pub directory: Option<DirectorySection>,
    #[serde(default)]
    pub push: PushSection,
    #[serde(default)]
    pub synch: SynchSection,
    pub signatures: Option<SignaturesSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignaturesSection {
    #[serde(default = "if_present")]
    pub default_policy: String,
    #[serde(default)]
    pub trust_anchors: Vec<String>,
    #[serde(default)]
    pub crls: Vec<String>,
    #[serde(default)]
    pub allow_legacy_sha1: bool,
    #[serde(default = "max_signed_part")]
    pub max_part_bytes: u64,
    #[serde(default)]
    pub products: Vec<SignatureRuleEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignatureRuleEntry {
    pub product: String,
    pub datapart_type: Option<String>,
    pub policy: String,
    #[serde(default)]
    pub trust_anchors: Vec<String>,
    pub allow_legacy_sha1: Option<bool>,
}

fn if_present() -> String {
    "if-present".to_owned()
}

fn max_signed_part() -> u64 {
    64 << 20
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SynchSection {
    pub timeout_secs: u64,
    pub services: Vec<SynchServiceEntry>,
}

impl Default for SynchSection {
    fn default() -> Self {
        SynchSection {
            timeout_secs: 60,
            services: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SynchServiceEntry {
    pub organisation: String,
    pub product: String,
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct PushSection {
    pub attempts: u64,
    pub first_retry_secs: u64,
    pub max_retry_secs: u64,
    pub timeout_secs: u64,
    pub cas: Vec<String>,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
}

impl Default for PushSection {
    fn default() -> Self {
        PushSection {
            attempts: 10,
            first_retry_secs: 300,
            max_retry_secs: 6 * 3600,
            timeout_secs: 60,
            cas: Vec::new(),
            certificate: None,
            private_key: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DirectorySection {
    #[serde(default = "default_directory_engine")]
    pub engine: String,
    pub file: Option<String>,
    #[serde(default)]
    pub known_products_only: bool,
    #[serde(default)]
    pub ldap: Option<LdapSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LdapSection {
    pub servers: Vec<String>,
    #[serde(default)]
    pub starttls: bool,
    pub bind_dn: Option<String>,
    pub bind_password_file: Option<String>,
    pub base_dn: Option<String>,
    pub connect_timeout_secs: Option<u64>,
    pub operation_timeout_secs: Option<u64>,
    pub ca_file: Option<String>,
    pub cache_ttl_secs: Option<u64>,
    pub size_limit: Option<usize>,
}

fn default_directory_engine() -> String {
    "file".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NodeSection {
    pub node_id: String,
    #[serde(default)]
    pub path_prefix: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListenSection {
    pub address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsSection {
    pub certificate: String,
    pub private_key: String,
    pub client_cas: Vec<String>,
    #[serde(default)]
    pub crls: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OrganisationSection {
    pub number: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub sub_addresses: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientSection {
    pub fingerprint: Option<String>,
    pub organisation: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    pub acts_for: Option<String>,
    #[serde(default)]
    pub sub_addresses: Vec<String>,
    #[serde(default)]
    pub products: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreSection {
    #[serde(default = "default_engine")]
    pub engine: String,
    #[serde(default = "default_store_path")]
    pub path: String,
    #[serde(default = "default_cache_mib")]
    pub cache_mib: u64,
    #[serde(default = "default_log_backlog_mib")]
    pub log_backlog_mib: u64,
    pub postgres: Option<PostgresSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostgresSection {
    pub conninfo: String,
    pub password_file: Option<String>,
    #[serde(default)]
    pub ca_files: Vec<String>,
    #[serde(default = "default_pool_size")]
    pub pool_size: u64,
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_secs: u64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    #[serde(default = "default_job_lease")]
    pub job_lease_secs: u64,
}

fn default_pool_size() -> u64 {
    16
}
fn default_statement_timeout() -> u64 {
    30
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_job_lease() -> u64 {
    120
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            engine: default_engine(),
            path: default_store_path(),
            cache_mib: default_cache_mib(),
            log_backlog_mib: default_log_backlog_mib(),
            postgres: None,
        }
    }
}

fn default_engine() -> String {
    "sled".to_owned()
}
fn default_store_path() -> String {
    "data".to_owned()
}
fn default_cache_mib() -> u64 {
    crate::store::sled::DEFAULT_CACHE_CAPACITY >> 20
}
fn default_log_backlog_mib() -> u64 {
    (crate::store::wal::DEFAULT_BACKLOG_BYTES >> 20) as u64
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LimitsSection {
    pub max_message_bytes: u64,
    pub max_label_bytes: u64,
    pub max_data_parts: u64,
    pub header_timeout_secs: u64,
    pub body_idle_timeout_secs: u64,
    pub max_connections: u64,
    pub max_requests_per_identity: u64,
    pub list_max_hits: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_message_bytes: 1 << 30,
            max_label_bytes: 1 << 20,
            max_data_parts: 1000,
            header_timeout_secs: 30,
            body_idle_timeout_secs: 60,
            max_connections: 1024,
            max_requests_per_identity: 64,
            list_max_hits: 10_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ShutdownSection {
    pub drain_timeout_secs: u64,
}

impl Default for ShutdownSection {
    fn default() -> Self {
        ShutdownSection {
            drain_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct HousekeepingSection {
    pub enabled: bool,
    pub retention_days: u64,
    pub expiry_days: u64,
    pub remove_fetched_without_ack: bool,
    pub interval_secs: u64,
    pub batch_size: u64,
}

impl Default for HousekeepingSection {
    fn default() -> Self {
        HousekeepingSection {
            enabled: true,
            retention_days: 14,
            expiry_days: 30,
            remove_fetched_without_ack: false,
            interval_secs: 600,
            batch_size: 500,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LogSection {
    pub format: String,
    pub filter: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: "human".to_owned(),
            filter: "info".to_owned(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct AdminSection {
    pub address: String,
    pub tls: Option<bool>,
    pub identities: Vec<AdminIdentitySection>,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            address: super::DEFAULT_ADMIN_ADDRESS.to_owned(),
            tls: None,
            identities: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminIdentitySection {
    pub name: String,
    pub fingerprint: Option<String>,
    pub organisation: Option<String>,
}
