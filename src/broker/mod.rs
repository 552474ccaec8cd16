//! The broker: intake, routing, mailboxes — the SHS logic between the HTTP edge and the
//! store. No hyper or sled type appears here.
//!
//! - [`intake`]: a message body in, a durable message and a receipt out (spec §3.1, §5.1).
//! - [`router`]: where a message goes (pure); [`jobs`]: applying that, now and after restarts.
//! - [`mailbox`]: list, fetch and acknowledge (spec §3.3–§3.5).
//! - [`notice`]: the confirm and error messages the node generates (spec §4.4).
//! - [`caller`]: who is calling and what they may do (spec §2).

pub mod admin;
mod answers;
pub mod caller;
pub mod error;
pub mod fanout;
pub mod housekeeping;
pub mod intake;
pub mod jobs;
pub mod mailbox;
pub mod notice;
pub mod push;
pub mod router;
pub mod routing;
pub mod signatures;
pub mod summary;
mod synch;
#[cfg(test)]
mod test_support;
mod upstream;

use std::sync::Arc;

use crate::config::Config;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::store::Store;

pub use admin::AdminAction;
pub use caller::Caller;
pub use error::BrokerError;
pub use intake::{Answer, BodyError, BodySource, IntakeError, LabelIds, Receipt};
pub use synch::SynchReply;

/// A fresh tx.id for a message this node makes (confirm, error, fan-out copy, pong): a
/// UUID v7, whose text sorts by creation time, so the store's tx.id key of a stored one
/// goes to the end of its index, on a page in cache, instead of to a random page that is
/// read from disk and rewritten (spec §8; see `BENCHMARKS.md`).
pub(crate) fn new_tx_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What a broker routes with beyond its own configuration.
#[derive(Default)]
pub struct Routing {
    /// The directory; `None`: local delivery only, no agreement checks.
    pub directory: Option<Arc<dyn Directory>>,
    /// The TLS client configuration for push (this node's certificate, the network's
    /// CAs); `None`: a push decision quarantines the message.
    pub push_tls: Option<Arc<rustls::ClientConfig>>,
    /// Signature checks at intake (spec §7); `None`: signatures are not looked at.
    pub signatures: Option<Arc<signatures::SignatureChecks>>,
}

/// The broker: one per process, shared behind `Arc` by every connection and task.
pub struct Broker {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    directory: Option<Arc<dyn Directory>>,
    push_tls: Option<Arc<rustls::ClientConfig>>,
    signatures: Option<Arc<signatures::SignatureChecks>>,
    jobs: jobs::JobQueue,
    metrics: Metrics,
}

impl Broker {
    /// A broker over `store`, configured by `config`. Call [`jobs::run_router`] to resume
    /// routing jobs left from before a restart.
    pub fn new(store: Arc<dyn Store>, config: Arc<Config>) -> Arc<Broker> {
        Broker::with_routing(store, config, Routing::default())
    }

    /// A broker that routes with a directory (agreements, product addressing, remote
    /// addresses) and pushes with the given TLS client configuration; without a
    /// directory it delivers to local organisations without agreement checks.
    pub fn with_routing(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        routing: Routing,
    ) -> Arc<Broker> {
        Arc::new(Broker {
            store,
            config,
            directory: routing.directory,
            push_tls: routing.push_tls,
            signatures: routing.signatures,
            jobs: jobs::JobQueue::default(),
            metrics: Metrics::new(),
        })
    }

    /// The configuration the broker runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node's metrics: recorded here and by the HTTP layer, rendered by the admin
    /// listener.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The store, for the admin side and tests.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The directory, if the node has one (reload, console).
    pub fn directory(&self) -> Option<&Arc<dyn Directory>> {
        self.directory.as_ref()
    }
}
