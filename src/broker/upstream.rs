//! Connections this node opens to other HTTP servers: other nodes (push, synchronous
//! forwarding) and local business systems (synchronous requests). One request per
//! connection: these exchanges are rare next to intake, and a fresh connection never
//! carries state from a failed one.

use std::sync::Arc;

use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::body::ResponseBody;

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OpenError {
    /// The URL itself is unusable: trying again would not help.
    BadUrl(String),
    /// TCP, TLS or HTTP failed: may work later.
    Failed(String),
}

/// The parts of a URL a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub authority: String,
    pub path_and_query: String,
}

impl Target {
    /// Parses `url`; `http://` only where `allow_http` (a business system on the local
    /// network), otherwise `https://` only.
    pub fn parse(url: &str, allow_http: bool) -> Result<Target, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|err| format!("bad URL {url:?}: {err}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if allow_http => false,
            _ => return Err(format!("{url:?}: only https URLs are used here")),
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("{url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map_or_else(|| host.clone(), ToString::to_string);
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string);
        Ok(Target {
            https,
            host,
            port,
            authority,
            path_and_query,
        })
    }
}

/// Opens an HTTP/1.1 connection to `target` (TLS with `tls` for https, the server's host
/// name verified) and returns its request sender; the connection runs in its own task.
pub(super) async fn open(
    tls: Arc<rustls::ClientConfig>,
    target: &Target,
) -> Result<SendRequest<ResponseBody>, OpenError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|err| OpenError::Failed(format!("cannot connect: {err}")))?;
    let _ = tcp.set_nodelay(true);
    if !target.https {
        return handshake(tcp).await;
    }
    let name = ServerName::try_from(target.host.clone())
        .map_err(|_| OpenError::BadUrl(format!("{:?} is not a host name", target.host)))?;
    let stream = TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|err| OpenError::Failed(format!("TLS: {err}")))?;
    handshake(stream).await
}

async fn handshake<S>(stream: S) -> Result<SendRequest<ResponseBody>, OpenError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| OpenError::Failed(format!("HTTP: {err}")))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "upstream connection ended");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_their_parts_and_http_only_where_allowed() {
        let target = Target::parse("https://shs.example.se:8443/shs/rs?x=1", false).unwrap();
        assert!(target.https);
        assert_eq!(target.host, "shs.example.se");
        assert_eq!(target.port, 8443);
        assert_eq!(target.authority, "shs.example.se:8443");
        assert_eq!(target.path_and_query, "/shs/rs?x=1");
        assert_eq!(
            Target::parse("https://shs.example.se", false).unwrap().port,
            443
        );
        assert!(Target::parse("http://shs.example.se/shs/rs", false).is_err());
        let plain = Target::parse("http://10.0.0.5/svar", true).unwrap();
        assert!(!plain.https);
        assert_eq!(plain.port, 80);
        assert!(Target::parse("not a url", true).is_err());
    }
}
