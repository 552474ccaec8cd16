//! The ceilings of this machine, measured in the same run (`LOAD_CEILING=1`): a server that
//! does nothing but what every durable broker must do — the same mutual TLS (shsd's own
//! rustls configuration, from the same files), HTTP/1.1 with hyper — and no parsing, no
//! routing, no index on disk.
//!
//! - Intake (phase 4): read the whole body, append it to one file, and answer 202 only after
//!   an fdatasync that covers it, with concurrent requests sharing syncs (group commit, no
//!   timer). The brief measured this at about 7 500–9 500/s here.
//! - Fetch+ack (phase 5), over what phase 4 stored: a list hands out the next
//!   [`MAX_HITS`] stored messages not listed before (from memory; the product filter is
//!   not applied, so the clients' shares are whatever the cursor gives them; once all
//!   were handed out it starts again from the first, so that a fast ceiling never waits
//!   on empty lists), a fetch
//!   answers one stored body read back from the file, and an ack appends one line to the
//!   same file and answers 200 after the group-committed fdatasync that covers it.
//!
//! shsd's rates divided by these say how much of what this machine can do at all shsd
//! reaches. It runs as a child process (this bench executable again, with [`CEILING_ENV`]
//! set), so that the report measures its CPU and memory as it does shsd's, and it announces
//! its port on stderr as `shsd serve` does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use shsd::protocol::label::SequenceType;
use shsd::protocol::message_list::{ListedMessage, MessageList};
use shsd::tls::{ServerTlsFiles, server_config};
use tokio::sync::oneshot;

use crate::phases::{BYGGLOV, MAX_HITS, PORTAL};

/// Set (to the configuration's folder) in the child that serves as the ceiling.
pub const CEILING_ENV: &str = "SHSD_LOAD_CEILING_SERVER";

/// Serves until killed; the certificates are those `server::prepare` wrote into `dir`.
pub fn serve(dir: &Path) -> Result<(), String> {
    let certs = dir.join("certs");
    let tls = server_config(&ServerTlsFiles {
        cert_chain: certs.join("server.pem"),
        key: certs.join("server-key.pem"),
        client_cas: vec![certs.join("ca.pem")],
        crls: vec![certs.join("ca-crl.pem")],
    })
    .map_err(|err| err.to_string())?;
    let path = dir.join("ceiling.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|err| err.to_string())?;
    let reader = File::open(&path).map_err(|err| err.to_string())?;
    let commit = Arc::new(Committer::new(reader));
    std::thread::spawn({
        let commit = Arc::clone(&commit);
        move || commit.run(log)
    });
    let runtime = tokio::runtime::Runtime::new().map_err(|err| err.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|err| err.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        eprintln!("ceiling server (shs) listening on 127.0.0.1:{port}");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let commit = Arc::clone(&commit);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    let commit = Arc::clone(&commit);
                    async move { Ok::<_, hyper::Error>(handle(request, &commit).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    })
}

async fn handle(request: Request<Incoming>, commit: &Committer) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let is_ack = request
        .uri()
        .query()
        .is_some_and(|q| q.contains("action=ack"));
    // `/shs/ds/{mailbox}` lists, `/shs/ds/{mailbox}/{tx.id}` fetches or acknowledges.
    let message = path
        .strip_prefix("/shs/ds/")
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, tx_id)| tx_id.to_owned());
    match (request.method().clone(), message) {
        (Method::GET, None) => respond(StatusCode::OK, "text/xml", commit.list()),
        (Method::GET, Some(tx_id)) => match commit.fetch(&tx_id) {
            Some(body) => respond(StatusCode::OK, "message/rfc822", body),
            None => respond(StatusCode::NOT_FOUND, "text/plain", Bytes::new()),
        },
        (Method::POST, Some(tx_id)) if is_ack => {
            let line = Bytes::from(format!("ack {tx_id}\n"));
            match commit.write(line, Kind::Ack).await {
                true => respond(StatusCode::OK, "text/plain", Bytes::new()),
                false => respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", Bytes::new()),
            }
        }
        (Method::POST, _) => {
            let status = match request.into_body().collect().await {
                Ok(body) => match commit.write(body.to_bytes(), Kind::Message).await {
                    true => StatusCode::ACCEPTED,
                    false => StatusCode::SERVICE_UNAVAILABLE,
                },
                Err(_) => StatusCode::BAD_REQUEST,
            };
            respond(status, "text/plain", Bytes::new())
        }
        _ => respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", Bytes::new()),
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        content_type.parse().expect("static value"),
    );
    response
}

/// What a queued write is: a message, which a list can hand out once it is durable, or an
/// acknowledgement line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Message,
    Ack,
}

/// The messages stored so far, as places in the log file, and how many were listed.
#[derive(Default)]
struct Stored {
    messages: Vec<(u64, usize)>,
    listed: usize,
}

/// Group commit: the thread takes every write queued so far, appends them, fdatasyncs once
/// and answers them all; it sleeps while nothing is queued. It also remembers where each
/// durable message is, for lists and fetches.
struct Committer {
    queue: Mutex<Vec<(Bytes, Kind, oneshot::Sender<bool>)>>,
    wake: Condvar,
    stored: Mutex<Stored>,
    reader: File,
}

impl Committer {
    fn new(reader: File) -> Committer {
        Committer {
            queue: Mutex::default(),
            wake: Condvar::new(),
            stored: Mutex::default(),
            reader,
        }
    }

    async fn write(&self, body: Bytes, kind: Kind) -> bool {
        let (done, answer) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((body, kind, done));
        self.wake.notify_one();
        answer.await.unwrap_or(false)
    }

    /// The next messages not listed before (from the first again once all were), as an
    /// `shs.message-list` of about the size shsd's lists have (addressing, ids, product,
    /// size).
    fn list(&self) -> Bytes {
        let range = {
            let mut stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
            if stored.listed >= stored.messages.len() {
                stored.listed = 0;
            }
            let start = stored.listed;
            let end = stored.messages.len().min(start + MAX_HITS);
            stored.listed = end;
            start..end
        };
        let messages = range
            .map(|n| ListedMessage {
                tx_id: format!("ceiling-{n}"),
                timestamp: "2026-11-23T04:00:00".to_owned(),
                corr_id: Some(format!("ceiling-{n}")),
                content_id: Some(format!("ceiling-{n}")),
                size: Some(10240),
                originator: None,
                from: Some(PORTAL.to_owned()),
                to: Some(BYGGLOV.to_owned()),
                end_recipient: None,
                product: Some("urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-000000000000".to_owned()),
                sequence_type: SequenceType::Event,
                status: Default::default(),
                meta: Vec::new(),
                subject: None,
                data: Vec::new(),
            })
            .collect();
        Bytes::from(MessageList { messages }.to_xml())
    }

    /// The stored body of `ceiling-{n}`, read back from the log file.
    fn fetch(&self, tx_id: &str) -> Option<Bytes> {
        let n: usize = tx_id.strip_prefix("ceiling-")?.parse().ok()?;
        let (offset, len) = *self
            .stored
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .messages
            .get(n)?;
        let mut body = vec![0; len];
        self.reader.read_exact_at(&mut body, offset).ok()?;
        Some(Bytes::from(body))
    }

    fn run(&self, mut log: File) {
        let mut end = log.metadata().map_or(0, |m| m.len());
        loop {
            let batch = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                while queue.is_empty() {
                    queue = self
                        .wake
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                std::mem::take(&mut *queue)
            };
            let mut placed = Vec::new();
            let mut written = true;
            for (body, kind, _) in &batch {
                written = written && log.write_all(body).is_ok();
                if *kind == Kind::Message {
                    placed.push((end, body.len()));
                }
                end += body.len() as u64;
            }
            if !written {
                // A short write leaves the file's end unknown: ask the file.
                end = log.metadata().map_or(end, |m| m.len());
            }
            let durable = written && log.sync_data().is_ok();
            if durable {
                self.stored
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .messages
                    .extend(placed);
            }
            for (_, _, done) in batch {
                let _ = done.send(durable);
            }
        }
    }
}
