//! Wires the parts together: store, TLS, broker, router task, the SHS listener and the
//! admin listener; runs until the shutdown token fires, then drains and flushes.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{AdminServer, Readiness};
use crate::broker::signatures::SignatureChecks;
use crate::broker::{Broker, Routing, housekeeping, jobs};
use crate::config::{Config, DirectoryEngine, StoreConfig};
use crate::directory::{Directory, DirectoryError, FileDirectory, LdapDirectory};
use crate::http::Server;
use crate::store::postgres::{PgConfig, PgStore, node_name};
use crate::store::sled::SledConfig;
use crate::store::wal::WalConfig;
use crate::store::{KvStore, Store, StoreError};
use crate::systemd;
use crate::tls::client::{ClientTlsFiles, client_config};
use crate::tls::{ReloadableServerConfig, ServerTlsFiles, TlsError};

/// Opens the configured store engine: sled (blocking, start-up only) or PostgreSQL
/// (connects, migrates the schema).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, AppError> {
    Ok(match &config.store {
        StoreConfig::Sled {
            path,
            cache_bytes,
            log_backlog_bytes,
        } => {
            let sled = SledConfig {
                path: path.clone(),
                cache_capacity: *cache_bytes,
                segment_size: crate::store::sled::INDEX_SEGMENT_SIZE,
            };
            let log = WalConfig {
                max_pending_bytes: *log_backlog_bytes,
                ..WalConfig::default()
            };
            let engine = crate::store::wal::open_sled(&sled, log).map_err(|err| {
                StoreError::Unavailable(format!("cannot open {}: {err}", path.display()))
            })?;
            Arc::new(KvStore::open(engine)?)
        }
        StoreConfig::Postgres(postgres) => {
            let password = match &postgres.password_file {
                Some(file) => Some(read_password(file)?),
                None => None,
            };
            let tls = if postgres.ca_files.is_empty() {
                None
            } else {
                Some(client_config(&ClientTlsFiles {
                    roots: postgres.ca_files.clone(),
                    cert_chain: None,
                    key: None,
                })?)
            };
            let store = PgStore::open(&PgConfig {
                conninfo: postgres.conninfo.clone(),
                password,
                pool_size: postgres.pool_size,
                statement_timeout: postgres.statement_timeout,
                connect_timeout: postgres.connect_timeout,
                node: node_name(&config.node_id),
                job_lease: postgres.job_lease,
                tls,
            })
            .await?;
            Arc::new(store)
        }
    })
}

/// The first line of a password file.
fn read_password(file: &std::path::Path) -> Result<String, AppError> {
    let text = std::fs::read_to_string(file).map_err(|err| {
        StoreError::Unavailable(format!(
            "cannot read the database password from {}: {err}",
            file.display()
        ))
    })?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The TLS files could not be loaded (a configuration fault).
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The directory could not be opened (a configuration fault).
    #[error("directory: {0}")]
    Directory(#[from] DirectoryError),
    /// The signer trust anchors or CRLs could not be loaded (a configuration fault).
    #[error("signatures: {0}")]
    Signatures(String),
    /// The listener could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// Loads every certificate, key and CRL that `config` names (the listener's, push's and the
/// signer trust), as starting the daemon would, and returns what fails: `check-config`
/// reports it, so a broken file is found before a start or a reload meets it.
pub fn check_material(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(err) = crate::tls::server_config(&server_tls_files(config)) {
        problems.push(format!("tls: {err}"));
    }
    if let Err(err) = client_config(&push_tls_files(config)) {
        problems.push(format!("push: {err}"));
    }
    if let Some(signatures) = &config.signatures
        && let Err(err) = SignatureChecks::load(signatures)
    {
        problems.push(format!("signatures: {err}"));
    }
    problems
}

/// The listener's TLS files.
fn server_tls_files(config: &Config) -> ServerTlsFiles {
    ServerTlsFiles {
        cert_chain: config.tls.certificate.clone(),
        key: config.tls.private_key.clone(),
        client_cas: config.tls.client_cas.clone(),
        crls: config.tls.crls.clone(),
    }
}

/// The client side of push and of synchronous forwarding: this node's certificate, the
/// network's CAs.
fn push_tls_files(config: &Config) -> ClientTlsFiles {
    ClientTlsFiles {
        roots: config.push.cas.clone(),
        cert_chain: Some(config.push.certificate.clone()),
        key: Some(config.push.private_key.clone()),
    }
}

/// A built daemon, ready to serve a bound listener.
pub struct App {
    broker: Arc<Broker>,
    tls: Arc<ReloadableServerConfig>,
    admin: Option<TcpListener>,
    readiness: Arc<Readiness>,
}

impl App {
    /// Opens the store and loads the TLS material of `config`.
    pub async fn build(config: Config) -> Result<App, AppError> {
        let store = open_store(&config).await?;
        App::with_store(config, store)
    }

    /// Like [`App::build`] but over a store the caller opened (tests inject faults this way;
    /// the configuration's `[store]` section is not used).
    pub fn with_store(config: Config, store: Arc<dyn Store>) -> Result<App, AppError> {
        let tls = ReloadableServerConfig::load(server_tls_files(&config))?;
        let directory = open_directory(&config)?;
        let push_tls = Some(client_config(&push_tls_files(&config))?);
        let signatures = match &config.signatures {
            Some(signatures) => Some(Arc::new(
                SignatureChecks::load(signatures).map_err(AppError::Signatures)?,
            )),
            None => None,
        };
        let routing = Routing {
            directory,
            push_tls,
            signatures,
        };
        Ok(App {
            broker: Broker::with_routing(store, Arc::new(config), routing),
            tls: Arc::new(tls),
            admin: None,
            readiness: Readiness::new(),
        })
    }

    /// The TLS configuration, which SIGHUP reloads from its files (certificates, client
    /// CAs, CRLs) for new connections; established connections are not touched.
    pub fn tls(&self) -> Arc<ReloadableServerConfig> {
        Arc::clone(&self.tls)
    }

    /// The broker, for tests that look behind the HTTP layer.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Binds the configured SHS listener and logs `listening on <address> (shs)` with the
    /// real port (scripts and tests read it).
    pub async fn bind(&self) -> Result<TcpListener, AppError> {
        bind_logged(self.broker.config().listen, "shs").await
    }

    /// Binds the configured admin listener and logs `listening on <address> (admin)` with
    /// the real port. Hand it to [`App::with_admin`] to serve it; tests read its address.
    pub async fn bind_admin(&self) -> Result<TcpListener, AppError> {
        bind_logged(self.broker.config().admin.address, "admin").await
    }

    /// Serves `listener` as the admin listener (health, readiness, metrics) alongside the
    /// SHS listener; both stop on the same shutdown token. Without it, [`App::run`] serves
    /// SHS alone (the demo and the load generator do).
    pub fn with_admin(mut self, listener: TcpListener) -> App {
        self.admin = Some(listener);
        self
    }

    /// Serves until `shutdown` fires: resumes routing jobs, runs housekeeping, accepts
    /// connections, then drains in-flight requests within the deadline and flushes the store.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), AppError> {
        let background_stop = CancellationToken::new();
        let router = tokio::spawn(jobs::run_router(
            Arc::clone(&self.broker),
            background_stop.clone(),
        ));
        let housekeeping = tokio::spawn(housekeeping::run_housekeeping(
            Arc::clone(&self.broker),
            background_stop.clone(),
        ));
        let watchdog = systemd::spawn_watchdog(background_stop.clone());
        let admin = self.admin.map(|admin| {
            let server = AdminServer::with_tls(
                Arc::clone(&self.broker),
                Arc::clone(&self.readiness),
                Arc::clone(&self.tls),
            );
            tokio::spawn(server.run(admin, shutdown.clone()))
        });
        self.readiness.set_shs_serving(true);
        let address = listener
            .local_addr()
            .map(|address| address.to_string())
            .unwrap_or_default();
        systemd::ready(&format!("listening on {address}"));
        let draining = shutdown.clone();
        tokio::spawn(async move {
            draining.cancelled().await;
            systemd::stopping();
        });
        Server::new(Arc::clone(&self.broker), self.tls)
            .run(listener, shutdown)
            .await;
        self.readiness.set_shs_serving(false);
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        background_stop.cancel();
        let _ = router.await;
        let _ = housekeeping.await;
        if let Some(watchdog) = watchdog {
            let _ = watchdog.await;
        }
        self.broker.store().flush().await?;
        tracing::info!("stopped; store flushed");
        Ok(())
    }
}

/// Opens the configured directory, if any. Blocking (start-up only).
fn open_directory(config: &Config) -> Result<Option<Arc<dyn Directory>>, DirectoryError> {
    let Some(directory) = &config.directory else {
        return Ok(None);
    };
    match &directory.engine {
        DirectoryEngine::File { path } => {
            let directory = FileDirectory::open(path)?;
            tracing::info!(path = %path.display(), "directory loaded");
            Ok(Some(Arc::new(directory)))
        }
        DirectoryEngine::Ldap(ldap) => {
            // Connects on the first lookup: an LDAP server that is down at start does not
            // keep the node from starting (routing waits and retries).
            let directory = LdapDirectory::new(ldap.clone())?;
            tracing::info!(servers = ?ldap.servers, "LDAP directory configured");
            Ok(Some(Arc::new(directory)))
        }
    }
}

/// Binds `address` and logs `listening on <address> (<name>)` with the real port (spec
/// §11: scripts and tests read it).
async fn bind_logged(address: SocketAddr, name: &str) -> Result<TcpListener, AppError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|err| AppError::Bind(address, err))?;
    let local = listener
        .local_addr()
        .map_err(|err| AppError::Bind(address, err))?;
    tracing::info!("listening on {local} ({name})");
    Ok(listener)
}
