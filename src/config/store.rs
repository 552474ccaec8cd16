//! The `[store]` section (spec §8): sled in one directory (the default), or a PostgreSQL
//! database that several nodes share (`engine = "postgres"` with `[store.postgres]`).

use std::path::PathBuf;
use std::time::Duration;

use super::Checker;
use super::file::{PostgresSection, StoreSection};

/// The storage engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// sled in one directory, the embedded default.
    Sled {
        /// The directory.
        path: PathBuf,
        /// sled's page cache in bytes (sled's own default of 1 GiB is too much).
        cache_bytes: u64,
        /// How many bytes of writes the write-ahead log holds in memory until they are in
        /// sled; writers wait beyond it (bounds memory when sled falls behind a burst).
        log_backlog_bytes: usize,
    },
    /// A PostgreSQL database, possibly shared with other shsd nodes.
    Postgres(PostgresConfig),
}

/// Where the shared database is and how this node uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// A libpq-style connection string or URL, without the password.
    pub conninfo: String,
    /// A file whose first line is the database password (kept out of the TOML file).
    pub password_file: Option<PathBuf>,
    /// CA certificates the database server's certificate must chain to; set: TLS to the
    /// database (with `sslmode=require` in `conninfo` to refuse a server without it).
    pub ca_files: Vec<PathBuf>,
    /// The most connections this node holds open (default 16).
    pub pool_size: usize,
    /// The server cancels any statement after this long (default 30 s), so a stuck
    /// database becomes a 503 rather than a hung request.
    pub statement_timeout: Duration,
    /// How long connecting, or waiting for a free pooled connection, may take (default
    /// 5 s).
    pub connect_timeout: Duration,
    /// How long a routing job another node took stays its own (default 120 s): a node
    /// that dies mid-job leaves the job to the others after this. Longer than
    /// `push.timeout_secs`, so a slow push is not taken over while it runs.
    pub job_lease: Duration,
}

impl Checker {
    pub(super) fn store(&mut self, section: &StoreSection, push_timeout: Duration) -> StoreConfig {
        match section.engine.as_str() {
            "sled" => {
                if section.postgres.is_some() {
                    self.problem("[store.postgres] is set but store.engine is \"sled\"".to_owned());
                }
                if section.cache_mib == 0 {
                    self.problem("store.cache_mib must be at least 1".to_owned());
                }
                if section.log_backlog_mib == 0 {
                    self.problem("store.log_backlog_mib must be at least 1".to_owned());
                }
                sled_config(self.path(&section.path), section)
            }
            "postgres" => {
                let Some(postgres) = &section.postgres else {
                    self.problem(
                        "store.engine \"postgres\" needs a [store.postgres] section with conninfo"
                            .to_owned(),
                    );
                    return StoreConfig::Postgres(PostgresConfig::default_for(String::new()));
                };
                StoreConfig::Postgres(self.postgres(postgres, push_timeout))
            }
            other => {
                self.problem(format!(
                    "store.engine {other:?} must be \"sled\" or \"postgres\""
                ));
                sled_config(self.path(&section.path), section)
            }
        }
    }

    fn postgres(&mut self, section: &PostgresSection, push_timeout: Duration) -> PostgresConfig {
        let mut positive = |key: &str, value: u64| -> u64 {
            if value == 0 {
                self.problem(format!("store.postgres.{key} must be greater than 0"));
            }
            value
        };
        let pool_size = positive("pool_size", section.pool_size);
        let statement_timeout = positive("statement_timeout_secs", section.statement_timeout_secs);
        let connect_timeout = positive("connect_timeout_secs", section.connect_timeout_secs);
        let job_lease = Duration::from_secs(positive("job_lease_secs", section.job_lease_secs));
        if section.conninfo.trim().is_empty() {
            self.problem("store.postgres.conninfo must not be empty".to_owned());
        } else if let Err(err) = section.conninfo.parse::<tokio_postgres::Config>() {
            self.problem(format!("store.postgres.conninfo: {err}"));
        }
        if job_lease <= push_timeout {
            self.problem(format!(
                "store.postgres.job_lease_secs ({}) must be longer than push.timeout_secs ({})",
                job_lease.as_secs(),
                push_timeout.as_secs()
            ));
        }
        let password_file = section
            .password_file
            .as_deref()
            .map(|file| self.existing_file("store.postgres.password_file", file));
        let ca_files = section
            .ca_files
            .iter()
            .map(|file| self.existing_file("store.postgres.ca_files", file))
            .collect();
        PostgresConfig {
            conninfo: section.conninfo.clone(),
            password_file,
            ca_files,
            pool_size: usize::try_from(pool_size).unwrap_or(usize::MAX),
            statement_timeout: Duration::from_secs(statement_timeout),
            connect_timeout: Duration::from_secs(connect_timeout),
            job_lease,
        }
    }
}

fn sled_config(path: PathBuf, section: &StoreSection) -> StoreConfig {
    StoreConfig::Sled {
        path,
        cache_bytes: section.cache_mib.saturating_mul(1 << 20),
        log_backlog_bytes: usize::try_from(section.log_backlog_mib.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
    }
}

impl PostgresConfig {
    /// `conninfo` with every default.
    pub fn default_for(conninfo: String) -> Self {
        PostgresConfig {
            conninfo,
            password_file: None,
            ca_files: Vec::new(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            job_lease: Duration::from_secs(120),
        }
    }
}
