//! SHS error codes (spec §4.4) and the error type of the protocol layer.
//!
//! Every protocol error knows the SHS error code it is reported with, so the HTTP edge can
//! render it without guessing; the HTTP status is chosen there, not here.

use std::fmt;
use std::str::FromStr;

/// Every error code of SHS 1.2 (spec §4.4). Never rendered empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    IllegalMessageStructure,
    IllegalSender,
    IllegalReceiver,
    IllegalProductType,
    IllegalOriginator,
    IllegalEndRecipient,
    IllegalDatapartContent,
    UnknownSender,
    UnknownReceiver,
    UnknownProductType,
    UnresolvedReceiver,
    MissingAgreement,
    IllegalAgreement,
    MissingDeliveryAddress,
    MissingDeliveryExecution,
    Timeout,
    OtherError,
}

impl ErrorCode {
    /// All codes, in the order of spec §4.4.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::IllegalMessageStructure,
        ErrorCode::IllegalSender,
        ErrorCode::IllegalReceiver,
        ErrorCode::IllegalProductType,
        ErrorCode::IllegalOriginator,
        ErrorCode::IllegalEndRecipient,
        ErrorCode::IllegalDatapartContent,
        ErrorCode::UnknownSender,
        ErrorCode::UnknownReceiver,
        ErrorCode::UnknownProductType,
        ErrorCode::UnresolvedReceiver,
        ErrorCode::MissingAgreement,
        ErrorCode::IllegalAgreement,
        ErrorCode::MissingDeliveryAddress,
        ErrorCode::MissingDeliveryExecution,
        ErrorCode::Timeout,
        ErrorCode::OtherError,
    ];

    /// The code as written in `X-shs-errorcode` and in `shs.management` documents.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::IllegalMessageStructure => "IllegalMessageStructure",
            ErrorCode::IllegalSender => "IllegalSender",
            ErrorCode::IllegalReceiver => "IllegalReceiver",
            ErrorCode::IllegalProductType => "IllegalProductType",
            ErrorCode::IllegalOriginator => "IllegalOriginator",
            ErrorCode::IllegalEndRecipient => "IllegalEndRecipient",
            ErrorCode::IllegalDatapartContent => "IllegalDatapartContent",
            ErrorCode::UnknownSender => "UnknownSender",
            ErrorCode::UnknownReceiver => "UnknownReceiver",
            ErrorCode::UnknownProductType => "UnknownProductType",
            ErrorCode::UnresolvedReceiver => "UnresolvedReceiver",
            ErrorCode::MissingAgreement => "MissingAgreement",
            ErrorCode::IllegalAgreement => "IllegalAgreement",
            ErrorCode::MissingDeliveryAddress => "MissingDeliveryAddress",
            ErrorCode::MissingDeliveryExecution => "MissingDeliveryExecution",
            ErrorCode::Timeout => "Timeout",
            ErrorCode::OtherError => "OtherError",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error code that SHS 1.2 does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SHS error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    /// Exact match, as the codes are NMTOKENs written by machines; a remote node's unknown
    /// code is the caller's to map (usually to [`ErrorCode::OtherError`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

/// What went wrong while reading or checking an SHS document. All of these are the
/// sender's fault; each maps to exactly one SHS error code through [`ProtocolError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The MIME structure is broken: boundaries, headers, transfer encodings, part count.
    #[error("malformed MIME message: {0}")]
    Mime(String),
    /// The label (or another SHS XML document) is not well-formed or breaks its DTD.
    #[error("malformed {document}: {reason}")]
    Xml {
        /// Which document: `shs.label`, `shs.management`, `shs.message-list`.
        document: &'static str,
        /// One line saying what is wrong.
        reason: String,
    },
    /// A part of the message is larger than its limit.
    #[error("{what} is larger than its limit of {limit} bytes")]
    TooLarge {
        /// What was too large (`label`, `part header`, `message`).
        what: &'static str,
        /// The limit that was exceeded, in bytes.
        limit: u64,
    },
    /// The label is well-formed but breaks an intake rule (spec §4.2).
    #[error("{reason}")]
    Invalid {
        /// The SHS code for this rule.
        code: ErrorCode,
        /// One line saying what is wrong.
        reason: String,
    },
}

impl ProtocolError {
    /// The SHS error code this error is reported with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::Mime(_) | ProtocolError::Xml { .. } | ProtocolError::TooLarge { .. } => {
                ErrorCode::IllegalMessageStructure
            }
            ProtocolError::Invalid { code, .. } => *code,
        }
    }

    /// Shorthand for a broken MIME structure.
    pub fn mime(reason: impl Into<String>) -> Self {
        ProtocolError::Mime(reason.into())
    }

    /// Shorthand for an intake-rule failure with its code.
    pub fn invalid(code: ErrorCode, reason: impl Into<String>) -> Self {
        ProtocolError::Invalid {
            code,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for code in ErrorCode::ALL {
            assert!(!code.as_str().is_empty());
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
        }
    }

    #[test]
    fn unknown_code_is_an_error() {
        assert!("".parse::<ErrorCode>().is_err());
        assert!("illegalsender".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn structural_errors_map_to_illegal_message_structure() {
        assert_eq!(
            ProtocolError::mime("x").code(),
            ErrorCode::IllegalMessageStructure
        );
        let too_large = ProtocolError::TooLarge {
            what: "label",
            limit: 1,
        };
        assert_eq!(too_large.code(), ErrorCode::IllegalMessageStructure);
        let invalid = ProtocolError::invalid(ErrorCode::IllegalReceiver, "bad to");
        assert_eq!(invalid.code(), ErrorCode::IllegalReceiver);
    }
}
