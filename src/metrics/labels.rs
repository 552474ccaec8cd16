//! The fixed label values of the metrics. Every label set is a closed enum, so each series
//! is an array slot (no map, no lock) and every series is rendered from the first scrape on,
//! at 0 until it counts: a dashboard never has to tell "absent" from "zero".

/// What became of a message offered to intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored durably and answered 202.
    Accepted,
    /// A tx.id the same sender sent before: answered 202, nothing new stored.
    Duplicate,
    /// Refused for the sender's fault (4xx), counted by code in `shsd_messages_refused_total`.
    Refused,
    /// Failed on this node's side (5xx): the store or a bug.
    Failed,
}

impl Received {
    /// Every value, in rendering order.
    pub const ALL: [Received; 4] = [
        Received::Accepted,
        Received::Duplicate,
        Received::Refused,
        Received::Failed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Received::Accepted => "accepted",
            Received::Duplicate => "duplicate",
            Received::Refused => "refused",
            Received::Failed => "failed",
        }
    }
}

/// A message the node generated for a sender (spec §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A confirm, on the first acknowledgement.
    Confirm,
    /// An error, when a message is quarantined.
    Error,
}

impl NoticeKind {
    /// Every value, in rendering order.
    pub const ALL: [NoticeKind; 2] = [NoticeKind::Confirm, NoticeKind::Error];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Confirm => "confirm",
            NoticeKind::Error => "error",
        }
    }
}

/// Why a TLS handshake on the SHS listener failed. Mapped from rustls errors by the HTTP
/// layer, so this module stays free of TLS types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The client certificate does not chain to a configured CA.
    UnknownIssuer,
    /// The client certificate is expired (or not yet valid).
    Expired,
    /// The client certificate is on a CRL.
    Revoked,
    /// The client presented no certificate.
    NoCertificate,
    /// The handshake did not finish within the header timeout.
    Timeout,
    /// Anything else: protocol errors, scanners, plain HTTP on the TLS port.
    Other,
}

impl TlsFailure {
    /// Every value, in rendering order.
    pub const ALL: [TlsFailure; 6] = [
        TlsFailure::UnknownIssuer,
        TlsFailure::Expired,
        TlsFailure::Revoked,
        TlsFailure::NoCertificate,
        TlsFailure::Timeout,
        TlsFailure::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsFailure::UnknownIssuer => "unknown_issuer",
            TlsFailure::Expired => "expired",
            TlsFailure::Revoked => "revoked",
            TlsFailure::NoCertificate => "no_certificate",
            TlsFailure::Timeout => "timeout",
            TlsFailure::Other => "other",
        }
    }
}

/// A limit of spec §12 that refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `limits.max_message_bytes`.
    MessageSize,
    /// `limits.max_label_bytes`.
    LabelSize,
    /// `limits.max_data_parts`.
    Parts,
    /// `limits.max_requests_per_identity`.
    PerIdentity,
    /// `limits.body_idle_timeout_secs`.
    BodyIdle,
}

impl Limit {
    /// Every value, in rendering order.
    pub const ALL: [Limit; 5] = [
        Limit::MessageSize,
        Limit::LabelSize,
        Limit::Parts,
        Limit::PerIdentity,
        Limit::BodyIdle,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MessageSize => "message_size",
            Limit::LabelSize => "label_size",
            Limit::Parts => "parts",
            Limit::PerIdentity => "per_identity",
            Limit::BodyIdle => "body_idle",
        }
    }
}

/// The SHS endpoint a request was for; `Other` for requests that matched none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointLabel {
    /// `POST /shs/rs`.
    Send,
    /// `GET /shs/ds/{address}`.
    List,
    /// `GET /shs/ds/{address}/{txId}`.
    Fetch,
    /// `POST /shs/ds/{address}/{txId}?action=ack`.
    Ack,
    /// No endpoint (404, 405, a bad address).
    Other,
}

impl EndpointLabel {
    /// Every value, in rendering order.
    pub const ALL: [EndpointLabel; 5] = [
        EndpointLabel::Send,
        EndpointLabel::List,
        EndpointLabel::Fetch,
        EndpointLabel::Ack,
        EndpointLabel::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointLabel::Send => "send",
            EndpointLabel::List => "list",
            EndpointLabel::Fetch => "fetch",
            EndpointLabel::Ack => "ack",
            EndpointLabel::Other => "other",
        }
    }
}

/// The admin actions, by their names (`AdminAction::as_str` in the broker, which checks in
/// a test that the two lists agree).
pub const ADMIN_ACTIONS: [&str; 4] = ["requeue", "release", "resend", "delete"];

/// What became of one push attempt (spec §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Answered 2xx: the message is SENT.
    Sent,
    /// Failed (network, timeout, 5xx): another attempt is scheduled.
    Retried,
    /// Refused (4xx) or out of attempts: quarantined.
    Failed,
}

impl Pushed {
    /// Every value, in rendering order.
    pub const ALL: [Pushed; 3] = [Pushed::Sent, Pushed::Retried, Pushed::Failed];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Pushed::Sent => "sent",
            Pushed::Retried => "retried",
            Pushed::Failed => "failed",
        }
    }
}

/// What housekeeping did to a message (spec §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Housekept {
    /// Not fetched in time: expired, `error` sent to the sender.
    Expired,
    /// Removed after the retention period (acknowledged, sent, expired or, where acks
    /// are not used, fetched).
    Removed,
}

impl Housekept {
    /// Every value, in rendering order.
    pub const ALL: [Housekept; 2] = [Housekept::Expired, Housekept::Removed];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Housekept::Expired => "expired",
            Housekept::Removed => "removed",
        }
    }
}

/// The status classes a response is counted under, `1xx` to `5xx`.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The slot of a status code in [`STATUS_CLASSES`]; out-of-range codes count as `5xx`.
pub fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// The position of `value` in `all`; the enums above are small and `Copy`, so a scan is
/// as cheap as a match and cannot drift from the `ALL` arrays.
pub(super) fn slot<T: PartialEq + Copy>(all: &[T], value: T) -> usize {
    all.iter().position(|known| *known == value).unwrap_or(0)
}
