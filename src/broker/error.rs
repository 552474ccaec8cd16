//! Why a broker operation failed, grouped by whose fault it is. Each kind maps to one HTTP
//! status and SHS error code; the HTTP layer renders them (`http::error`).

use http::StatusCode;

use crate::protocol::{ErrorCode, ProtocolError};
use crate::store::StoreError;

/// Why a request failed, grouped by whose fault it is; each maps to one status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The message or request is malformed (400; 413 for size limits).
    #[error(transparent)]
    Message(#[from] ProtocolError),
    /// A query parameter is invalid (400, `OtherError`).
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this (403).
    #[error("{reason}")]
    Forbidden {
        /// `IllegalSender`, `IllegalReceiver` or `OtherError` (spec §3.2).
        code: ErrorCode,
        /// One line for the caller.
        reason: String,
    },
    /// No such message in that mailbox (404).
    #[error("{0}")]
    NotFound(String),
    /// The tx.id is already used by another sender (409).
    #[error("{0}")]
    Conflict(String),
    /// Not built yet (501).
    #[error("{0}")]
    NotImplemented(String),
    /// A synchronous destination cannot be reached (502, `MissingDeliveryExecution`).
    #[error("{0}")]
    Unreachable(String),
    /// A synchronous destination did not answer in time (504, `Timeout`).
    #[error("{0}")]
    Timeout(String),
    /// A synchronous destination answered with its own SHS error: passed through with
    /// its status and code (spec §6).
    #[error("{reason}")]
    Remote {
        /// The destination's HTTP status.
        status: StatusCode,
        /// Its `X-shs-errorcode`.
        code: ErrorCode,
        /// Its `errorinfo`, or the start of its body.
        reason: String,
    },
    /// The store is unavailable or full, or the node is shutting down (503); the text is
    /// logged, not sent.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt data (500); the text is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BrokerError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            BrokerError::Message(ProtocolError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            BrokerError::Message(_) | BrokerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            BrokerError::Forbidden { .. } => StatusCode::FORBIDDEN,
            BrokerError::NotFound(_) => StatusCode::NOT_FOUND,
            BrokerError::Conflict(_) => StatusCode::CONFLICT,
            BrokerError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            BrokerError::Unreachable(_) => StatusCode::BAD_GATEWAY,
            BrokerError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            BrokerError::Remote { status, .. } => *status,
            BrokerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            BrokerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The SHS error code sent in `X-shs-errorcode`.
    pub fn code(&self) -> ErrorCode {
        match self {
            BrokerError::Message(err) => err.code(),
            BrokerError::Forbidden { code, .. } => *code,
            BrokerError::Unreachable(_) => ErrorCode::MissingDeliveryExecution,
            BrokerError::Timeout(_) => ErrorCode::Timeout,
            BrokerError::Remote { code, .. } => *code,
            _ => ErrorCode::OtherError,
        }
    }

    /// The one-line `errorinfo` shown to the caller: the reason for 4xx, a generic line for
    /// 5xx (whose causes are only logged).
    pub fn public_info(&self) -> String {
        match self {
            BrokerError::Unavailable(_) => {
                "the node cannot take this request now; try again later".to_owned()
            }
            BrokerError::Internal(_) => "internal error; the node's log has the details".to_owned(),
            other => one_line(&other.to_string()),
        }
    }
}

impl From<StoreError> for BrokerError {
    /// Store failures are the node's fault: unavailable (503, retry later) or a bug/corrupt
    /// data (500). A missing message is answered by the caller before it gets here.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => BrokerError::Unavailable(err.to_string()),
            other => BrokerError::Internal(other.to_string()),
        }
    }
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n']).collect::<Vec<_>>().join(" ")
}
