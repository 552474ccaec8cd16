//! The ceiling of durable intake on this machine, measured in the same run (`LOAD_CEILING=1`):
//! a server that does nothing but what every durable intake must do — the same mutual
//! TLS (shsd's own rustls configuration, from the same files), HTTP/1.1 with hyper, read the
//! whole body, append it to one file, and answer 202 only after an fdatasync that covers it,
//! with concurrent requests sharing syncs (group commit, no timer). No parsing, no routing,
//! no index. shsd's intake divided by this rate says how much of the machine's durable
//! intake shsd reaches; the brief measured it at about 7 500–9 500/s here.
//!
//! It runs as a child process (this bench executable again, with
//! [`CEILING_ENV`] set), so that the report measures its CPU and memory as it does shsd's,
//! and it announces its port on stderr as `shsd serve` does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use shsd::tls::{ServerTlsFiles, server_config};
use tokio::sync::oneshot;

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
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("ceiling.log"))
        .map_err(|err| err.to_string())?;
    let commit = Arc::new(Committer::default());
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
    let status = match request.into_body().collect().await {
        Ok(body) => match commit.write(body.to_bytes()).await {
            true => StatusCode::ACCEPTED,
            false => StatusCode::SERVICE_UNAVAILABLE,
        },
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Group commit: the thread takes every body queued so far, appends them, fdatasyncs once
/// and answers them all; it sleeps while nothing is queued.
#[derive(Default)]
struct Committer {
    queue: Mutex<Vec<(Bytes, oneshot::Sender<bool>)>>,
    wake: Condvar,
}

impl Committer {
    async fn write(&self, body: Bytes) -> bool {
        let (done, answer) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((body, done));
        self.wake.notify_one();
        answer.await.unwrap_or(false)
    }

    fn run(&self, mut log: File) {
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
            let written = batch.iter().all(|(body, _)| log.write_all(body).is_ok());
            let durable = written && log.sync_data().is_ok();
            for (_, done) in batch {
                let _ = done.send(durable);
            }
        }
    }
}
