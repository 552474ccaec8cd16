//! An HTTPS server written in the tests, standing in for another node or a business system
//! that a node pushes to or forwards synchronous requests to. It answers from a script.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::harness::Node;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub content_type: String,
    pub body: Vec<u8>,
    /// The client certificate the node presented.
    pub client_cert: Vec<u8>,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    /// Bare answers with these statuses.
    pub fn statuses(statuses: &[u16]) -> Vec<Reply> {
        statuses
            .iter()
            .map(|status| Reply {
                status: *status,
                headers: Vec::new(),
                body: b"answer".to_vec(),
                delay: Duration::ZERO,
            })
            .collect()
    }
}

/// An HTTPS server with the node's own server identity (for `localhost`), requiring a
/// client certificate from the test CA. It answers the replies of its script in turn, then
/// 202 to everything.
pub struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start_on(node: &Node, port: u16, script: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let acceptor = TlsAcceptor::from(node.pki.server_config().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let client_cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|cert| cert.to_vec())
                    .unwrap_or_default();
                let (log, script) = (Arc::clone(&log), Arc::clone(&script));
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let (log, script, client_cert) =
                        (Arc::clone(&log), Arc::clone(&script), client_cert.clone());
                    async move {
                        let content_type = request
                            .headers()
                            .get("content-type")
                            .map(|v| v.to_str().unwrap_or_default().to_owned())
                            .unwrap_or_default();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        log.lock().unwrap().push(Received {
                            content_type,
                            body: body.to_vec(),
                            client_cert,
                        });
                        let reply = script.lock().unwrap().next().unwrap_or(Reply {
                            status: 202,
                            headers: Vec::new(),
                            body: b"answer".to_vec(),
                            delay: Duration::ZERO,
                        });
                        tokio::time::sleep(reply.delay).await;
                        let mut response = Response::new(Full::new(Bytes::from(reply.body)));
                        *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
                        for (name, value) in reply.headers {
                            response.headers_mut().insert(name, value.parse().unwrap());
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Receiver { received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A free loopback port, known before the node that names it starts.
pub async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
