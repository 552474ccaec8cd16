//! The subcommands that run the daemon or write files: `serve`, `check-config`, `demo`,
//! `certs`, and the signal handling they share.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::{Config, ConfigErrors, DirectoryEngine};
use crate::directory::{FileDirectory, LdapDirectory};
use crate::pki::{ExamplePki, PkiOptions};

/// How a subcommand failed: a bad configuration (exit 64) or anything else (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The configuration file is wrong.
    #[error("{0}")]
    BadConfig(#[from] ConfigErrors),
    /// Anything else, as one line.
    #[error("{0}")]
    Other(String),
}

impl Failure {
    fn other(err: impl std::fmt::Display) -> Failure {
        Failure::Other(err.to_string())
    }
}

/// `shsd serve`: runs the broker until SIGTERM or SIGINT, then drains and flushes.
pub async fn serve(path: &Path) -> Result<(), Failure> {
    let config = Config::load(path)?;
    super::telemetry::init(config.log.format, &config.log.filter);
    // Signal handlers first: a signal that arrives during start-up is then handled, not
    // acted on with its default action (which would end the process abruptly).
    let shutdown = shutdown_signal();
    let app = App::build(config).await.map_err(Failure::other)?;
    reload_on_sighup(app.tls(), app.broker().directory().cloned());
    let listener = app.bind().await.map_err(Failure::other)?;
    let admin = app.bind_admin().await.map_err(Failure::other)?;
    app.with_admin(admin)
        .run(listener, shutdown)
        .await
        .map_err(Failure::other)
}

/// `shsd check-config`.
pub fn check_config(path: &Path) -> Result<(), Failure> {
    let config = Config::load(path)?;
    // The files the configuration names are part of it: the certificates, keys and CRLs
    // are loaded as a start would load them, and the directory is opened.
    let mut problems = crate::app::check_material(&config);
    if let Some(directory) = &config.directory {
        let opened = match &directory.engine {
            DirectoryEngine::File { path: file } => FileDirectory::open(file)
                .map(drop)
                .map_err(|err| format!("directory {}: {err}", file.display())),
            // Settings only: the servers themselves may be down while the file is checked.
            DirectoryEngine::Ldap(ldap) => LdapDirectory::new(ldap.clone())
                .map(drop)
                .map_err(|err| format!("directory.ldap: {err}")),
        };
        problems.extend(opened.err());
    }
    if !problems.is_empty() {
        return Err(Failure::BadConfig(ConfigErrors {
            source: path.to_owned(),
            problems,
        }));
    }
    println!("{}: ok", path.display());
    Ok(())
}

/// `shsd demo`.
pub async fn demo(path: &Path, once: bool) -> Result<(), Failure> {
    let config = Config::load(path)?;
    // The demo's story goes to stdout; only warnings from the daemon (RUST_LOG overrides).
    super::telemetry::init(config.log.format, "warn");
    super::demo::run(config, once, shutdown_signal())
        .await
        .map_err(Failure::Other)
}

/// `shsd certs`: writes the example PKI and says which file is whose.
pub fn certs(out: &Path, force: bool, validity_days: u64) -> Result<(), Failure> {
    let options = PkiOptions {
        validity: std::time::Duration::from_secs(validity_days.saturating_mul(24 * 3600)),
        ..PkiOptions::default()
    };
    let pki = ExamplePki::generate(options).map_err(Failure::other)?;
    let written = pki.write_to(out, force).map_err(Failure::other)?;
    for path in &written {
        println!("{}", path.display());
    }
    println!(
        "wrote {} files; private keys included (example use only): see {}",
        written.len(),
        out.join(crate::pki::README_FILE).display()
    );
    Ok(())
}

/// Reloads the TLS files (certificate, key, client CAs, CRLs) on every SIGHUP. A file that
/// does not load is reported and the previous configuration stays in force.
fn reload_on_sighup(
    tls: std::sync::Arc<crate::tls::ReloadableServerConfig>,
    directory: Option<std::sync::Arc<dyn crate::directory::Directory>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; reloading is unavailable");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: reloaded certificates and CRLs"),
                Err(err) => {
                    tracing::error!(error = %err, "SIGHUP: reload failed; keeping the previous certificates and CRLs")
                }
            }
            if let Some(directory) = &directory {
                match directory.reload().await {
                    Ok(()) => tracing::info!("SIGHUP: reloaded the directory"),
                    Err(err) => {
                        tracing::error!(error = %err, "SIGHUP: directory reload failed; keeping the previous directory")
                    }
                }
            }
        }
    });
}

/// A token that fires on SIGTERM or SIGINT (Ctrl-C). The handlers are installed before
/// this returns, so a signal that arrives while the daemon starts is not lost (nor does it
/// kill the process with the default action).
pub fn shutdown_signal() -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let fired = token.clone();
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    tokio::spawn(async move {
        let (mut terminate, mut interrupt) = match (terminate, interrupt) {
            (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
            (Err(err), _) | (_, Err(err)) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM/SIGINT; stop with SIGKILL");
                return;
            }
        };
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
        }
        fired.cancel();
    });
    token
}
