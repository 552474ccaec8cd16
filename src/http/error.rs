//! The one place where errors become HTTP responses (spec §3.2): status, `X-shs-errorcode`
//! (never empty) and an `shs.management` error document as the body.
//!
//! 5xx bodies never carry internals: the cause is logged here, the caller gets a generic line.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::broker::BrokerError;
use crate::protocol::management::{ManagementBody, ManagementDocument};
use crate::protocol::{ErrorCode, ProtocolError};

use crate::body::{ResponseBody, full};

/// Why a request failed: a broker refusal, or a request that matches no endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The broker refused or failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// No such path (404).
    #[error("no such path")]
    NoSuchPath,
    /// Wrong method for the path (405 with `Allow`).
    #[error("method not allowed; allowed: {allow}")]
    MethodNotAllowed {
        /// The `Allow` header value.
        allow: &'static str,
    },
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Broker(err) => err.status(),
            ApiError::NoSuchPath => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The SHS error code sent in `X-shs-errorcode`.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Broker(err) => err.code(),
            _ => ErrorCode::OtherError,
        }
    }

    /// The one-line `errorinfo` shown to the caller.
    pub fn public_info(&self) -> String {
        match self {
            ApiError::Broker(err) => err.public_info(),
            other => other.to_string(),
        }
    }
}

impl From<ProtocolError> for ApiError {
    fn from(err: ProtocolError) -> Self {
        ApiError::Broker(BrokerError::Message(err))
    }
}

/// The corr.id and content.id of the label the error is about, where they could be read.
#[derive(Debug, Clone, Default)]
pub struct ErrorContext {
    /// The label's corr.id.
    pub corr_id: Option<String>,
    /// The label's content.id.
    pub content_id: Option<String>,
}

/// Renders an error as the response of spec §3.2 and logs it (5xx at error level with the
/// cause, 4xx at info level).
pub fn error_response(error: &ApiError, context: &ErrorContext) -> Response<ResponseBody> {
    let status = error.status();
    let code = error.code();
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), code = %code, cause = %error, "request failed");
    } else {
        tracing::info!(status = status.as_u16(), code = %code, reason = %error, "request refused");
    }
    let document = ManagementDocument {
        // NMTOKENs are required; "unknown" when the label could not be read.
        corr_id: context
            .corr_id
            .clone()
            .unwrap_or_else(|| "unknown".to_owned()),
        content_id: context
            .content_id
            .clone()
            .unwrap_or_else(|| "unknown".to_owned()),
        datetime: crate::clock::shs_datetime(crate::clock::now()),
        body: ManagementBody::Error {
            code: code.into(),
            info: Some(error.public_info()),
            appinfo: Vec::new(),
        },
    };
    let mut response = Response::new(full(Bytes::from(document.to_xml())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=UTF-8"),
    );
    headers.insert("x-shs-errorcode", HeaderValue::from_static(code.as_str()));
    if let ApiError::MethodNotAllowed { allow } = error {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(error: ApiError) -> (StatusCode, http::HeaderMap, ManagementDocument) {
        let context = ErrorContext {
            corr_id: Some("c-1".into()),
            content_id: None,
        };
        let response = error_response(&error, &context);
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, ManagementDocument::parse(&body).unwrap())
    }

    #[tokio::test]
    async fn every_error_has_its_status_and_a_non_empty_code() {
        let cases = [
            (
                ApiError::from(ProtocolError::mime("x")),
                400,
                "IllegalMessageStructure",
            ),
            (
                ApiError::from(ProtocolError::TooLarge {
                    what: "label",
                    limit: 1,
                }),
                413,
                "IllegalMessageStructure",
            ),
            (
                ApiError::Broker(BrokerError::BadRequest("maxhits".into())),
                400,
                "OtherError",
            ),
            (
                ApiError::Broker(BrokerError::Forbidden {
                    code: ErrorCode::IllegalSender,
                    reason: "not yours".into(),
                }),
                403,
                "IllegalSender",
            ),
            (
                ApiError::Broker(BrokerError::NotFound("no such".into())),
                404,
                "OtherError",
            ),
            (
                ApiError::MethodNotAllowed { allow: "GET" },
                405,
                "OtherError",
            ),
            (
                ApiError::Broker(BrokerError::Conflict("tx".into())),
                409,
                "OtherError",
            ),
            (
                ApiError::Broker(BrokerError::NotImplemented("synch".into())),
                501,
                "OtherError",
            ),
            (
                ApiError::Broker(BrokerError::Unavailable("disk full at /var/lib".into())),
                503,
                "OtherError",
            ),
            (
                ApiError::Broker(BrokerError::Internal("bug in x".into())),
                500,
                "OtherError",
            ),
        ];
        for (error, status, code) in cases {
            let (got, headers, document) = render(error.clone()).await;
            assert_eq!(got.as_u16(), status, "{error:?}");
            assert_eq!(headers["x-shs-errorcode"], code, "{error:?}");
            assert!(
                headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/xml")
            );
            assert_eq!(document.error_code().map(|c| c.as_str()), Some(code));
            assert_eq!(document.corr_id, "c-1");
            assert_eq!(document.content_id, "unknown");
        }
    }

    #[tokio::test]
    async fn server_errors_do_not_leak_their_cause() {
        let (_, _, document) = render(ApiError::Broker(BrokerError::Unavailable(
            "disk full at /var/lib".into(),
        )))
        .await;
        let ManagementBody::Error { info, .. } = document.body else {
            panic!("an error document");
        };
        assert!(!info.unwrap().contains("/var/lib"));
    }

    #[tokio::test]
    async fn method_not_allowed_names_the_allowed_methods() {
        let (_, headers, _) = render(ApiError::MethodNotAllowed { allow: "GET, POST" }).await;
        assert_eq!(headers["allow"], "GET, POST");
    }
}
