//! The connection to the LDAP servers: servers tried in order of preference, TLS (ldaps://
//! or StartTLS) with rustls, an optional simple bind, a timeout on every step, and one
//! search operation that reconnects once when the connection it used has failed.
//!
//! Nothing the network does is a permanent verdict: a refused connection, a timeout, a
//! closed socket or a rejected bind is [`DirectoryError::Unavailable`] once every server has
//! been tried, and the next call connects again.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchOptions};
use rustls::ClientConfig;

use super::super::DirectoryError;
use super::entries::{self, Entry};

/// A simple bind: the DN and its password.
#[derive(Clone)]
pub struct SimpleBind {
    /// The DN to bind as.
    pub dn: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for SimpleBind {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleBind")
            .field("dn", &self.dn)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a search found.
pub(super) struct Found {
    /// The entries that decoded; malformed ones are in `problems`.
    pub entries: Vec<Entry>,
    /// Entries the server sent in a shape that could not be read.
    pub problems: Vec<String>,
    /// True when the server stopped at the size limit.
    pub truncated: bool,
}

/// The live connection and the server it goes to.
#[derive(Clone)]
struct Live {
    ldap: Ldap,
    url: String,
}

/// Connects to the servers and runs searches.
pub(super) struct Connector {
    servers: Vec<String>,
    starttls: bool,
    bind: Option<SimpleBind>,
    base_dn: String,
    connect_timeout: Duration,
    operation_timeout: Duration,
    /// The TLS configuration, when a server needs TLS; replaced on reload.
    pub tls: Mutex<Option<Arc<ClientConfig>>>,
    live: Mutex<Option<Live>>,
    /// One caller connects at a time; the others wait and use its connection. The only
    /// lock held across `.await` (an async mutex, made for it); `live` never is.
    connecting: tokio::sync::Mutex<()>,
}

/// A search failed because of the connection (retry on a new one), or the server answered
/// with an error (final for this call).
enum Failure {
    Connection(String),
    Answer(DirectoryError),
}

impl Connector {
    /// A connector that has not connected yet.
    pub fn new(
        servers: Vec<String>,
        starttls: bool,
        bind: Option<SimpleBind>,
        base_dn: String,
        (connect_timeout, operation_timeout): (Duration, Duration),
        tls: Option<Arc<ClientConfig>>,
    ) -> Connector {
        Connector {
            servers,
            starttls,
            bind,
            base_dn,
            connect_timeout,
            operation_timeout,
            tls: Mutex::new(tls),
            live: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// Searches the subtree under the base DN for `filter`, returning at most
    /// `size_limit` entries. A failed connection is dropped and the search runs once more
    /// on a new one (every server in order) before the directory counts as unavailable.
    pub async fn search(
        &self,
        filter: &str,
        attrs: &[&str],
        size_limit: usize,
    ) -> Result<Found, DirectoryError> {
        let mut failed: Option<String> = None;
        let mut first_failure = None;
        for _attempt in 0..2 {
            let live = self.connection(failed.as_deref()).await?;
            match self.search_on(&live, filter, attrs, size_limit).await {
                Ok(found) => return Ok(found),
                Err(Failure::Answer(err)) => return Err(err),
                Err(Failure::Connection(err)) => {
                    tracing::warn!(server = %live.url, error = %err, "ldap connection failed");
                    self.forget(&live);
                    first_failure.get_or_insert(format!("{}: {err}", live.url));
                    failed = Some(live.url);
                }
            }
        }
        Err(DirectoryError::Unavailable(format!(
            "LDAP search failed: {}",
            first_failure.unwrap_or_default()
        )))
    }

    /// Drops the connection, so that the next call connects anew (reload, failure).
    pub fn disconnect(&self) {
        let old = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut old) = old {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), old.ldap.unbind()).await;
            });
        }
    }

    async fn search_on(
        &self,
        live: &Live,
        filter: &str,
        attrs: &[&str],
        size_limit: usize,
    ) -> Result<Found, Failure> {
        let limit = i32::try_from(size_limit).unwrap_or(i32::MAX);
        let mut ldap = live.ldap.clone();
        let result = ldap
            .with_timeout(self.operation_timeout)
            .with_search_options(SearchOptions::new().sizelimit(limit))
            .search(&self.base_dn, Scope::Subtree, filter, attrs.to_vec())
            .await
            .map_err(|err| Failure::Connection(describe(&err)))?;
        let (raw, outcome) = (result.0, result.1);
        let truncated = match outcome.rc {
            0 => false,
            4 => true,
            32 => {
                return Err(Failure::Answer(DirectoryError::Invalid(format!(
                    "base DN {:?} does not exist on {}",
                    self.base_dn, live.url
                ))));
            }
            // busy (51), unavailable (52), and the client-side codes (80 and up: server
            // down, timeout, connect error): this server cannot answer now, another may.
            51 | 52 => return Err(Failure::Connection(outcome.to_string())),
            rc if rc >= 80 => return Err(Failure::Connection(outcome.to_string())),
            _ => {
                return Err(Failure::Answer(DirectoryError::Unavailable(format!(
                    "{} refused the search: {outcome}",
                    live.url
                ))));
            }
        };
        let mut found = Found {
            entries: Vec::with_capacity(raw.len()),
            problems: Vec::new(),
            truncated,
        };
        for entry in raw.into_iter().filter_map(entries::decode) {
            match entry {
                Ok(entry) => found.entries.push(entry),
                Err(problem) => found.problems.push(format!("{}: {problem}", live.url)),
            }
        }
        Ok(found)
    }

    /// The live connection, connecting first when there is none. A server whose
    /// connection just `failed` is tried last.
    async fn connection(&self, failed: Option<&str>) -> Result<Live, DirectoryError> {
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let live = self.connect_in_order(failed).await?;
        *self.live.lock().unwrap_or_else(PoisonError::into_inner) = Some(live.clone());
        Ok(live)
    }

    fn current(&self) -> Option<Live> {
        let mut slot = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let open = slot.as_mut().is_some_and(|live| !live.ldap.is_closed());
        if !open {
            *slot = None;
        }
        slot.clone()
    }

    fn forget(&self, failed: &Live) {
        let mut slot = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|live| live.url == failed.url) {
            *slot = None;
        }
    }

    async fn connect_in_order(&self, failed: Option<&str>) -> Result<Live, DirectoryError> {
        let mut failures = Vec::new();
        let first = self
            .servers
            .iter()
            .filter(|url| Some(url.as_str()) != failed);
        let last = self
            .servers
            .iter()
            .filter(|url| Some(url.as_str()) == failed);
        for url in first.chain(last) {
            match self.connect(url).await {
                Ok(ldap) => {
                    tracing::info!(server = %url, "ldap connected");
                    return Ok(Live {
                        ldap,
                        url: url.clone(),
                    });
                }
                Err(err) => {
                    tracing::warn!(server = %url, error = %err, "ldap server unusable");
                    failures.push(format!("{url}: {err}"));
                }
            }
        }
        Err(DirectoryError::Unavailable(format!(
            "no LDAP server could be used: {}",
            failures.join("; ")
        )))
    }

    async fn connect(&self, url: &str) -> Result<Ldap, String> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.connect_timeout);
        let tls = self
            .tls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(tls) = tls {
            settings = settings.set_config(tls);
        }
        if self.starttls && url.to_ascii_lowercase().starts_with("ldap://") {
            settings = settings.set_starttls(true);
        }
        let (driver, mut ldap) = LdapConnAsync::with_settings(settings, url)
            .await
            .map_err(|err| describe(&err))?;
        let server = url.to_owned();
        tokio::spawn(async move {
            if let Err(err) = driver.drive().await {
                tracing::debug!(server = %server, error = %err, "ldap connection ended");
            }
        });
        if let Some(bind) = &self.bind {
            let answer = ldap
                .with_timeout(self.operation_timeout)
                .simple_bind(&bind.dn, &bind.password)
                .await
                .map_err(|err| describe(&err))?;
            if answer.rc != 0 {
                let _ = tokio::time::timeout(Duration::from_secs(1), ldap.unbind()).await;
                return Err(format!("bind as {:?} rejected: {answer}", bind.dn));
            }
        }
        Ok(ldap)
    }
}

/// A transport error in words (ldap3's timeout error says only "elapsed").
fn describe(err: &LdapError) -> String {
    match err {
        LdapError::Timeout { .. } => "timed out".to_owned(),
        other => other.to_string(),
    }
}
