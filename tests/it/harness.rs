//! The test harness: a real shsd on 127.0.0.1:0 with a PKI generated for the test, a sled
//! store in a temporary folder, and reqwest clients (an independent HTTP implementation)
//! presenting each example identity's certificate.
//!
//! Message building lives here too: labels from [`shsd::client::build_message`], edited
//! and written with [`shsd::client::write_message`], or hand-written XML for the labels
//! the typed model cannot express (missing attributes, entities).

use std::sync::Arc;
use std::time::Duration;

use shsd::app::{App, AppError};
use shsd::client::{OutgoingPart, build_message, write_message};
use shsd::config::Config;
use shsd::pki::{ExamplePki, PkiItem, PkiOptions};
use shsd::protocol::label::{Label, SequenceType};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The example product used by tests.
pub const PRODUCT: &str = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00";
/// A second product.
pub const PRODUCT_2: &str = "urn:X-shs:0f2d7b9e-1c3a-4e5f-8a6b-7c8d9e0f1a2b";
/// A third product.
pub const PRODUCT_3: &str = "urn:X-shs:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
/// The portal organisation.
pub const PORTAL: &str = "urn:X-shs:5590000001";
/// The municipality.
pub const KOMMUN: &str = "urn:X-shs:2120000142";
/// The municipality's building-permit system.
pub const BYGGLOV: &str = "urn:X-shs:2120000142.bygglov";
/// The municipality's income-support system.
pub const SOCIALTJANST: &str = "urn:X-shs:2120000142.socialtjanst";
/// Every mailbox of the test configuration, bare, with the identity that may read it.
pub const MAILBOXES: [&str; 4] = [
    "5590000001",
    "2120000142",
    "2120000142.bygglov",
    "2120000142.socialtjanst",
];

/// A running node.
pub struct Node {
    /// The PKI the node's certificates come from: its own, or one shared with other nodes
    /// of the test ([`Node::start_sharing`]).
    pub pki: Arc<ExamplePki>,
    /// The node's folder (certificates, configuration, store), removed on drop.
    _dir: tempfile::TempDir,
    pub base: String,
    /// `http://127.0.0.1:PORT` of the admin listener.
    pub admin_base: String,
    pub app_broker: Arc<shsd::broker::Broker>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), AppError>>>,
}

/// Extra configuration lines appended to the default test configuration.
#[derive(Default, Clone)]
pub struct Extra(pub String);

/// The organisations a node hosts by default: the municipality with its two business
/// systems, and the portal.
pub const DEFAULT_ORGANISATIONS: &str = r#"
[[organisations]]
number = "2120000142"
name = "Exempelkommun"
sub_addresses = ["bygglov", "socialtjanst"]
[[organisations]]
number = "5590000001"
name = "Exempelportalen AB"
"#;

/// What makes one node of several different from the others: its id, the organisations
/// it hosts (`[[organisations]]` sections) and any further configuration lines.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `[node] node_id`.
    pub node_id: String,
    /// The `[[organisations]]` sections.
    pub organisations: String,
    /// Further lines (e.g. `[directory]`, `[[clients]]`, `[push]`).
    pub extra: String,
    /// The SHS listener's port on 127.0.0.1; 0 for any free one.
    pub port: u16,
}

/// Builds a node's app from its configuration in a test's own way (e.g. over a store with
/// injected faults).
type MakeApp = Box<dyn FnOnce(Config) -> App>;

impl Node {
    /// Starts a node with the default test configuration.
    pub async fn start() -> Node {
        Node::start_with(Extra::default()).await
    }

    /// Starts a node whose configuration has `extra` appended (e.g. `[limits]` or
    /// `[[clients]]` sections).
    pub async fn start_with(extra: Extra) -> Node {
        Node::start_custom("", |_| extra.0).await
    }

    /// Starts a node with the path prefix `prefix` (`""` for none) and the configuration
    /// lines that `extra` writes, which may name the generated certificates' fingerprints.
    pub async fn start_custom(prefix: &str, extra: impl FnOnce(&ExamplePki) -> String) -> Node {
        Node::launch(prefix, extra, None).await
    }

    /// Starts a node whose app is made by `make` from the test configuration (e.g. over a
    /// store with injected faults).
    pub async fn start_over(extra: Extra, make: impl FnOnce(Config) -> App + 'static) -> Node {
        Node::launch("", |_| extra.0, Some(Box::new(make))).await
    }

    /// Starts a node with certificates from `pki`, which other nodes of the test share
    /// (so each trusts the others' certificates), configured by `setup`.
    pub async fn start_sharing(pki: Arc<ExamplePki>, setup: &Setup) -> Node {
        let text = config_for(
            &setup.node_id,
            setup.port,
            "",
            &setup.organisations,
            &setup.extra,
        );
        Node::launch_with(pki, text, None).await
    }

    /// Starts a node with certificates from `pki` and the whole configuration `text`.
    pub async fn start_from(pki: Arc<ExamplePki>, text: String) -> Node {
        Node::launch_with(pki, text, None).await
    }

    async fn launch(
        prefix: &str,
        extra: impl FnOnce(&ExamplePki) -> String,
        make: Option<MakeApp>,
    ) -> Node {
        let pki = Arc::new(ExamplePki::generate(PkiOptions::default()).expect("pki"));
        let text = config_with_prefix(prefix, &extra(&pki));
        Node::launch_with(pki, text, make).await
    }

    /// Writes `pki` and the configuration `text` into a new folder and serves from it.
    async fn launch_with(pki: Arc<ExamplePki>, text: String, make: Option<MakeApp>) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = dir.path().join("certs");
        pki.write_to(&certs, false).expect("write pki");
        let config_path = dir.path().join("shsd.toml");
        std::fs::write(&config_path, text).expect("write config");
        Node::serve(pki, dir, make).await
    }

    /// Stops the node cleanly and starts it again on the same folder (configuration,
    /// certificates, store); the ports change.
    pub async fn restart(mut self) -> Node {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await
                .expect("node task")
                .expect("the node stops cleanly");
        }
        let Node {
            pki,
            _dir: dir,
            app_broker,
            ..
        } = self;
        // The broker holds the store: it must be gone before the store is opened again.
        drop(app_broker);
        Node::serve(pki, dir, None).await
    }

    /// Builds the app from the configuration in `dir` (with `make`, or as the daemon
    /// does) and runs it.
    async fn serve(pki: Arc<ExamplePki>, dir: tempfile::TempDir, make: Option<MakeApp>) -> Node {
        let config_path = dir.path().join("shsd.toml");
        let config = Config::load(&config_path).unwrap_or_else(|err| panic!("{err}"));
        let app = match make {
            Some(make) => make(config),
            None => App::build(config).await.expect("build"),
        };
        let listener = app.bind().await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let admin = app.bind_admin().await.expect("bind admin");
        let admin_base = format!("http://{}", admin.local_addr().unwrap());
        let app = app.with_admin(admin);
        let app_broker = Arc::clone(app.broker());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(app.run(listener, stop));
        Node {
            pki,
            _dir: dir,
            base: format!("https://localhost:{port}"),
            admin_base,
            app_broker,
            shutdown,
            task: Some(task),
        }
    }

    /// A reqwest client presenting `identity` (`None`: no client certificate).
    pub fn client(&self, identity: Option<&PkiItem>) -> reqwest::Client {
        let tls = self.pki.client_config(identity).expect("client config");
        client_with((*tls).clone())
    }

    pub fn portal(&self) -> reqwest::Client {
        self.client(Some(&self.pki.portal))
    }

    pub fn bygglov(&self) -> reqwest::Client {
        self.client(Some(&self.pki.bygglov))
    }

    pub fn socialtjanst(&self) -> reqwest::Client {
        self.client(Some(&self.pki.socialtjanst))
    }

    pub fn peer_node(&self) -> reqwest::Client {
        self.client(Some(&self.pki.peer_node))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the node and waits for it to drain and flush; the final flush must succeed.
    pub async fn stop(self) {
        self.stop_result().await.expect("the node stops cleanly");
    }

    /// Stops the node and returns how its run ended; everything it held (the store
    /// included) is released when this returns.
    pub async fn stop_result(mut self) -> Result<(), AppError> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.expect("node task"),
            None => Ok(()),
        }
    }
}

/// A reqwest client over a rustls configuration built by the test.
pub fn client_with(tls: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// The default test configuration with `extra` appended; relative paths (`certs/…`,
/// `store`) resolve against the folder the file is written to.
pub fn config_text(extra: &str) -> String {
    config_with_prefix("", extra)
}

/// [`config_text`] with a path prefix.
fn config_with_prefix(prefix: &str, extra: &str) -> String {
    config_for("test-node", 0, prefix, DEFAULT_ORGANISATIONS, extra)
}

/// The test configuration of node `node_id` on `port` (0: any) hosting `organisations`,
/// with `extra` appended.
fn config_for(node_id: &str, port: u16, prefix: &str, organisations: &str, extra: &str) -> String {
    format!(
        r#"
[node]
node_id = "{node_id}"
path_prefix = "{prefix}"
[listen]
address = "127.0.0.1:{port}"
[tls]
certificate = "certs/server.pem"
private_key = "certs/server-key.pem"
client_cas = ["certs/ca.pem"]
crls = ["certs/ca-crl.pem"]
{organisations}
{SLED_STORE}[shutdown]
drain_timeout_secs = 5
[log]
filter = "warn"
[admin]
address = "127.0.0.1:0"
{extra}
"#
    )
}

/// The test configuration's `[store]` section: sled in the node's folder.
const SLED_STORE: &str = "[store]\npath = \"store\"\ncache_mib = 16\n";

/// The default test configuration with `extra` appended, on the PostgreSQL database
/// `conninfo` instead of sled; routing jobs of a dead node are taken over after
/// `job_lease_secs` (pushes time out after 1 s, so it must be more).
pub fn config_on_postgres(conninfo: &str, job_lease_secs: u64, extra: &str) -> String {
    let store = format!(
        "[store]\nengine = \"postgres\"\n[store.postgres]\nconninfo = \"{conninfo}\"\n\
         pool_size = 8\nconnect_timeout_secs = 2\njob_lease_secs = {job_lease_secs}\n"
    );
    let text = config_text(&format!("[push]\ntimeout_secs = 1\n{extra}"));
    assert!(text.contains(SLED_STORE));
    text.replace(SLED_STORE, &store)
}

/// The configuration lines that make the peer node's organisation a peer node.
pub const PEER_NODE_RULE: &str = r#"
[[clients]]
organisation = "5560000002"
role = "peer-node"
"#;

/// A message from the portal to `to` with one XML data part; returns (body, content type,
/// label).
pub fn message_to(to: Option<&str>, data: &[u8]) -> (Vec<u8>, String, Label) {
    message_from(PORTAL, to, data)
}

/// A message from `from` to `to` with one XML data part.
pub fn message_from(from: &str, to: Option<&str>, data: &[u8]) -> (Vec<u8>, String, Label) {
    let (body, boundary, label) =
        build_message(from, to, PRODUCT, SequenceType::Event, &[xml_part(data)]);
    (body, multipart(&boundary), label)
}

/// A label from the portal to `to` describing one XML data part, to edit before
/// [`body_of`] writes it.
pub fn label_to(to: Option<&str>) -> Label {
    message_to(to, b"<x/>").2
}

/// One XML data part.
pub fn xml_part(data: &[u8]) -> OutgoingPart {
    OutgoingPart {
        datapart_type: "xml".into(),
        content_type: "text/xml".into(),
        filename: Some("ansökan.xml".into()),
        bytes: data.to_vec(),
    }
}

/// A message from `from` to `to` of [`PRODUCT`] whose tx.id (and corr.id) is `tx_id`, so a
/// test can derive the content from the tx.id: returns the bare multipart body and its
/// boundary (for `ShsClient::send`), and the label.
pub fn message_with_tx(
    from: &str,
    to: &str,
    tx_id: &str,
    parts: &[OutgoingPart],
) -> (Vec<u8>, String, Label) {
    // The label as build_message makes it (data elements with byte counts), re-numbered.
    let (_, _, mut label) = build_message(from, Some(to), PRODUCT, SequenceType::Event, parts);
    label.tx_id = tx_id.to_owned();
    label.corr_id = tx_id.to_owned();
    let (body, boundary) = write_message(&label, parts);
    (body, boundary, label)
}

/// Writes `label` with one data part holding `data`; returns (body, content type).
pub fn body_of(label: &Label, data: &[u8]) -> (Vec<u8>, String) {
    let (body, boundary) = write_message(label, &[xml_part(data)]);
    (body, multipart(&boundary))
}

/// The HTTP content type of a bare multipart body.
pub fn multipart(boundary: &str) -> String {
    format!("multipart/mixed; boundary=\"{boundary}\"")
}

/// The boundary of [`raw_message`].
pub const RAW_BOUNDARY: &str = "=_test_boundary_";

/// Writes a label and raw parts (already encoded) into a body, for hand-made messages.
pub fn raw_message(label_xml: &str, parts: &[&[u8]]) -> (Vec<u8>, String) {
    let boundary = RAW_BOUNDARY;
    let mut body =
        format!("--{boundary}\r\nContent-Type: text/xml\r\n\r\n{label_xml}\r\n").into_bytes();
    for part in parts {
        body.extend(
            format!("--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend(*part);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (body, multipart(boundary))
}

/// The tx.id of [`raw_label`] (one raw label per node and test).
pub const RAW_TX_ID: &str = "7d0c6f0e-2a55-4d7e-9f51-3b1f6c1b9a10";
/// The corr.id of [`raw_label`].
pub const RAW_CORR_ID: &str = "corr-raw-1";
/// The content.id of [`raw_label`].
pub const RAW_CONTENT_ID: &str = "content-raw-1";

/// A hand-written, valid label from the portal to bygglov with one data part, for tests
/// that break one thing in it with `str::replace`.
pub fn raw_label() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<shs.label version="1.2" tx.id="{RAW_TX_ID}" corr.id="{RAW_CORR_ID}" transfer-type="asynch" sequence-type="event" status="production">
<from>{PORTAL}</from>
<to>{BYGGLOV}</to>
<product>{PRODUCT}</product>
<datetime>2026-11-22T12:00:00</datetime>
<content content.id="{RAW_CONTENT_ID}"><data datapartType="xml" filename="a.xml"/></content>
</shs.label>"#
    )
}

/// Sends a message with `client`.
pub async fn send(
    node: &Node,
    client: &reqwest::Client,
    body: Vec<u8>,
    content_type: &str,
) -> reqwest::Response {
    client
        .post(node.url("/shs/rs"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("send")
}

/// The `X-shs-errorcode` of a response.
pub fn error_code(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-shs-errorcode")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}
