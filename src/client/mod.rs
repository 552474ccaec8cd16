//! The SHS client: send, list, fetch and acknowledge over mutual TLS, as a business system
//! or portal does. Used by the CLI subcommands (`shsd send|list|fetch|ack`), by `shsd demo`
//! and by the load generator.
//!
//! One [`ShsClient`] holds one keep-alive HTTP/1.1 connection and reconnects when it breaks.

mod message;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::protocol::ErrorCode;
use crate::protocol::management::ManagementDocument;
use crate::protocol::message_list::MessageList;
use crate::protocol::urn::Address;

pub use message::{OutgoingPart, build_message, write_message};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `https://host[:port][/prefix]`.
    #[error("bad node URL {0:?}: {1}")]
    Url(String, String),
    /// TCP or TLS could not be established (includes a refused client certificate).
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// The exchange broke off.
    #[error("HTTP exchange failed: {0}")]
    Http(String),
    /// The node answered with an SHS error.
    #[error("{status} {code}: {info}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// `X-shs-errorcode`.
        code: ErrorCode,
        /// `errorinfo` from the body, or the body text.
        info: String,
    },
    /// The answer could not be understood.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

/// The node's answer to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    /// The HTTP status (202 for asynchronous messages).
    pub status: StatusCode,
    /// `X-shs-txid`.
    pub tx_id: String,
    /// `X-shs-corrid`.
    pub corr_id: String,
    /// `X-shs-localid`.
    pub local_id: String,
    /// `X-shs-arrivaldate`.
    pub arrival: String,
    /// `X-shs-duplicatemsg: yes`.
    pub duplicate: bool,
}

/// A client of one SHS node.
pub struct ShsClient {
    authority: String,
    host: String,
    port: u16,
    prefix: String,
    connector: TlsConnector,
    connection: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl ShsClient {
    /// A client for the node at `url` (`https://host:port[/prefix]`) with a TLS client
    /// configuration that carries the caller's certificate.
    pub fn new(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<ShsClient, ClientError> {
        let uri: Uri = url
            .parse()
            .map_err(|err| ClientError::Url(url.to_owned(), format!("{err}")))?;
        if uri.scheme_str() != Some("https") {
            return Err(ClientError::Url(
                url.to_owned(),
                "SHS is spoken over https only".to_owned(),
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| ClientError::Url(url.to_owned(), "no host".to_owned()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        Ok(ShsClient {
            authority: format!("{}:{port}", uri.host().unwrap_or(&host)),
            host,
            port,
            prefix: uri.path().trim_end_matches('/').to_owned(),
            connector: TlsConnector::from(tls),
            connection: Mutex::new(None),
        })
    }

    /// Sends a whole SHS message (`multipart/mixed` body with `boundary`).
    pub async fn send(&self, body: Bytes, boundary: &str) -> Result<SendReceipt, ClientError> {
        let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
        let (status, headers, body) = self
            .exchange(Method::POST, "/shs/rs", Some((content_type, body)))
            .await?;
        if !status.is_success() {
            return Err(refusal(status, &headers, &body));
        }
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        Ok(SendReceipt {
            status,
            tx_id: get("x-shs-txid"),
            corr_id: get("x-shs-corrid"),
            local_id: get("x-shs-localid"),
            arrival: get("x-shs-arrivaldate"),
            duplicate: get("x-shs-duplicatemsg") == "yes",
        })
    }

    /// Lists a mailbox; `query` is the raw query string of spec §3.3 (may be empty).
    pub async fn list(&self, mailbox: &Address, query: &str) -> Result<MessageList, ClientError> {
        let mut path = format!("/shs/ds/{}", mailbox.bare());
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        let (status, headers, body) = self.exchange(Method::GET, &path, None).await?;
        if status != StatusCode::OK {
            return Err(refusal(status, &headers, &body));
        }
        MessageList::parse(&body).map_err(|err| ClientError::Unexpected(err.to_string()))
    }

    /// Fetches one message as stored by the node (`message/rfc822`).
    pub async fn fetch(&self, mailbox: &Address, tx_id: &str) -> Result<Bytes, ClientError> {
        let path = format!("/shs/ds/{}/{tx_id}", mailbox.bare());
        let (status, headers, body) = self.exchange(Method::GET, &path, None).await?;
        if status != StatusCode::OK {
            return Err(refusal(status, &headers, &body));
        }
        Ok(body)
    }

    /// Acknowledges one message.
    pub async fn ack(&self, mailbox: &Address, tx_id: &str) -> Result<(), ClientError> {
        let path = format!("/shs/ds/{}/{tx_id}?action=ack", mailbox.bare());
        let (status, headers, body) = self.exchange(Method::POST, &path, None).await?;
        if status != StatusCode::OK {
            return Err(refusal(status, &headers, &body));
        }
        Ok(())
    }

    /// One request on the kept-alive connection, reconnecting once if it was closed.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<(String, Bytes)>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), ClientError> {
        let mut connection = self.connection.lock().await;
        for attempt in 0..2 {
            let sender = match connection.as_mut() {
                Some(sender) if !sender.is_closed() => sender,
                _ => connection.insert(self.connect().await?),
            };
            if sender.ready().await.is_err() {
                *connection = None;
                continue;
            }
            let mut request = Request::builder()
                .method(method.clone())
                .uri(format!("{}{path}", self.prefix))
                .header(header::HOST, &self.authority);
            let payload = match &body {
                Some((content_type, bytes)) => {
                    request = request.header(header::CONTENT_TYPE, content_type);
                    bytes.clone()
                }
                None => Bytes::new(),
            };
            let request = request
                .body(Full::new(payload))
                .map_err(|err| ClientError::Http(err.to_string()))?;
            match sender.send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let bytes = body
                        .collect()
                        .await
                        .map_err(|err| ClientError::Http(err.to_string()))?
                        .to_bytes();
                    return Ok((parts.status, parts.headers, bytes));
                }
                // A kept-alive connection the server closed: retry once on a new one. A
                // request on a fresh connection is not retried (it may have been taken).
                Err(err) if attempt == 0 && err.is_canceled() => *connection = None,
                Err(err) => {
                    *connection = None;
                    return Err(ClientError::Http(err.to_string()));
                }
            }
        }
        Err(ClientError::Http("the connection closed twice".to_owned()))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let target = format!("{}:{}", self.host, self.port);
        let fail = |err: String| ClientError::Connect(target.clone(), err);
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|err| fail(err.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(self.host.clone()).map_err(|err| fail(err.to_string()))?;
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(|err| fail(err.to_string()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|err| fail(err.to_string()))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "client connection ended");
            }
        });
        Ok(sender)
    }
}

/// The error of a non-success answer: code from `X-shs-errorcode`, text from the
/// management document's `errorinfo` (or the body).
fn refusal(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> ClientError {
    let code = headers
        .get("x-shs-errorcode")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(ErrorCode::OtherError);
    let info = match ManagementDocument::parse(body) {
        Ok(document) => match document.body {
            crate::protocol::management::ManagementBody::Error { info, .. } => {
                info.unwrap_or_default()
            }
            _ => String::new(),
        },
        Err(_) => String::from_utf8_lossy(body).chars().take(200).collect(),
    };
    ClientError::Refused { status, code, info }
}
