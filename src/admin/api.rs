//! The read-only admin JSON API (spec §11): message search, message detail and the
//! quarantine list, for operators and the console to come.
//!
//! - `GET /api/messages?txid=&corrid=&org=&product=&state=&since=&until=&limit=`: the
//!   matching messages as [`Summary`] objects, newest first (see [`AdminSearch`]).
//! - `GET /api/messages/{local_id}`: one message as a [`Detail`], state history included.
//! - `GET /api/quarantine`: the QUARANTINED messages as summaries; takes `limit`.
//!
//! Errors are JSON too (`{"error": …, "parameter": …}`): 400 names the parameter that was
//! refused, so a typo in a script fails loudly instead of widening the search; 404 for an
//! unknown local id; 500 without the cause, which is logged.

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::store::{LocalId, MessageRecord, State};

use super::AdminServer;
use super::search_params::{self, Dialect};

/// The path of the search; a detail is below it.
const MESSAGES: &str = "/api/messages";
/// The path of the quarantine list.
const QUARANTINE: &str = "/api/quarantine";

/// True for the paths this module answers (a detail path with any id: a malformed id is a
/// 400 from here, not a 404 for the path).
pub(super) fn is_api_path(path: &str) -> bool {
    path == MESSAGES
        || path == QUARANTINE
        || path == super::actions::AUDIT
        || path
            .strip_prefix(MESSAGES)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

impl AdminServer {
    /// Answers a GET on one of the [`is_api_path`] paths.
    pub(super) async fn api(&self, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
        let answer = match path {
            MESSAGES => self.search(query, None).await,
            QUARANTINE => self.search(query, Some(State::Quarantined)).await,
            super::actions::AUDIT => return self.audit_api(query).await,
            _ => {
                let id = path.rsplit('/').next().unwrap_or_default();
                self.detail(id).await
            }
        };
        answer.unwrap_or_else(ApiError::render)
    }

    async fn search(
        &self,
        query: Option<&str>,
        forced_state: Option<State>,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let allow_state = forced_state.is_none();
        let mut search = search_params::parse(query.unwrap_or(""), allow_state, Dialect::Api)
            .map_err(|err| ApiError::bad(&err.parameter, err.reason))?;
        if forced_state.is_some() {
            search.state = forced_state;
        }
        let records = self.broker.store().search(&search).await.map_err(|err| {
            tracing::error!(error = %err, "admin search failed");
            ApiError::Internal
        })?;
        let summaries: Vec<Summary<'_>> = records.iter().map(Summary::of).collect();
        Ok(json(StatusCode::OK, &summaries))
    }

    async fn detail(&self, id: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let local_id = uuid::Uuid::parse_str(id)
            .map(LocalId)
            .map_err(|_| ApiError::bad("local_id", format!("{id:?} is not a UUID")))?;
        let record = self.broker.store().message(local_id).await.map_err(|err| {
            tracing::error!(error = %err, "admin detail failed");
            ApiError::Internal
        })?;
        match record {
            Some(record) => Ok(json(StatusCode::OK, &Detail::of(&record))),
            None => Err(ApiError::NotFound(format!("no message with local id {id}"))),
        }
    }
}

/// The list view of one message.
#[derive(Serialize)]
pub(super) struct Summary<'a> {
    local_id: String,
    tx_id: &'a str,
    corr_id: &'a str,
    sender: &'a str,
    mailbox: Option<String>,
    state: State,
    arrival: String,
    product: &'a str,
    size: u64,
    error: Option<ErrorView<'a>>,
}

#[derive(Serialize)]
struct ErrorView<'a> {
    code: &'static str,
    text: &'a str,
}

/// Everything the node knows about one message except its payload bytes.
#[derive(Serialize)]
struct Detail<'a> {
    #[serde(flatten)]
    summary: Summary<'a>,
    content_id: &'a str,
    from: Option<&'a str>,
    to: Option<&'a str>,
    sequence_type: &'a str,
    signer: Option<&'a str>,
    state_history: Vec<StateView>,
    part_sizes: Vec<u64>,
    parent: Option<String>,
    copies: Vec<String>,
    /// The confirm or error that answered the message (spec §4.4), once one came.
    answer: Option<AnswerView<'a>>,
    /// The label as served on fetch; ISO-8859-1 labels show replacement characters.
    label: String,
}

#[derive(Serialize)]
struct AnswerView<'a> {
    /// `confirm` or `error`.
    kind: &'static str,
    error: Option<ErrorView<'a>>,
    tx_id: &'a str,
    at: String,
}

#[derive(Serialize)]
struct StateView {
    state: State,
    at: String,
}

impl<'a> Summary<'a> {
    pub(super) fn of(record: &'a MessageRecord) -> Self {
        Summary {
            local_id: record.local_id.to_string(),
            tx_id: &record.tx_id,
            corr_id: &record.summary.corr_id,
            sender: record.sender.as_str(),
            mailbox: record.mailbox.as_ref().map(|m| m.bare()),
            state: record.state,
            arrival: time(record.arrival),
            product: &record.summary.product,
            size: record.payload.size,
            error: record.error.as_ref().map(|e| ErrorView {
                code: e.code.as_str(),
                text: &e.text,
            }),
        }
    }
}

impl<'a> Detail<'a> {
    fn of(record: &'a MessageRecord) -> Self {
        let s = &record.summary;
        Detail {
            summary: Summary::of(record),
            content_id: &s.content_id,
            from: s.from.as_deref(),
            to: s.to.as_deref(),
            sequence_type: &s.sequence_type,
            signer: record.signer.as_deref(),
            state_history: record
                .state_log
                .iter()
                .map(|change| StateView {
                    state: change.state,
                    at: time(change.at),
                })
                .collect(),
            part_sizes: record.payload.parts.iter().map(|p| p.len).collect(),
            parent: record.parent.map(|p| p.to_string()),
            copies: record.copies.iter().map(ToString::to_string).collect(),
            answer: record.answer.as_ref().map(|answer| AnswerView {
                kind: if answer.error.is_some() {
                    "error"
                } else {
                    "confirm"
                },
                error: answer.error.as_ref().map(|e| ErrorView {
                    code: e.code.as_str(),
                    text: &e.text,
                }),
                tx_id: &answer.tx_id,
                at: time(answer.at),
            }),
            label: String::from_utf8_lossy(&record.label).into_owned(),
        }
    }
}

/// UTC, RFC 3339 with microseconds (the stored precision), so times sort as text.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Why an API request failed; rendered as a JSON error in [`ApiError::render`].
pub(super) enum ApiError {
    BadParameter {
        parameter: String,
        reason: String,
    },
    NotFound(String),
    /// The request is valid but does not fit the message's state (409).
    Conflict(String),
    /// The store cannot answer now (503); the cause is logged.
    Unavailable,
    Internal,
}

impl ApiError {
    /// The answer for a failed broker operation; causes of 5xx are logged here.
    pub(super) fn of_broker(err: crate::broker::BrokerError) -> Self {
        use crate::broker::BrokerError;
        match err {
            BrokerError::NotFound(reason) => ApiError::NotFound(reason),
            BrokerError::Conflict(reason) => ApiError::Conflict(reason),
            BrokerError::BadRequest(reason) => ApiError::bad("request", reason),
            BrokerError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "admin request: store unavailable");
                ApiError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "admin request failed");
                ApiError::Internal
            }
        }
    }

    pub(super) fn bad(parameter: &str, reason: String) -> Self {
        ApiError::BadParameter {
            parameter: parameter.to_owned(),
            reason,
        }
    }

    pub(super) fn render(self) -> Response<Full<Bytes>> {
        #[derive(Serialize)]
        struct Body {
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            parameter: Option<String>,
        }
        let (status, body) = match self {
            ApiError::BadParameter { parameter, reason } => (
                StatusCode::BAD_REQUEST,
                Body {
                    error: format!("invalid {parameter}: {reason}"),
                    parameter: Some(parameter),
                },
            ),
            ApiError::NotFound(error) => (
                StatusCode::NOT_FOUND,
                Body {
                    error,
                    parameter: None,
                },
            ),
            ApiError::Conflict(error) => (
                StatusCode::CONFLICT,
                Body {
                    error,
                    parameter: None,
                },
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Body {
                    error: "the store cannot answer now; try again later".into(),
                    parameter: None,
                },
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Body {
                    error: "internal error; see the log".into(),
                    parameter: None,
                },
            ),
        };
        json(status, &body)
    }
}

/// A JSON response. Serialising these plain structs cannot fail; if it ever did, the
/// answer is a bare 500 rather than a panic.
pub(super) fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        Err(err) => {
            tracing::error!(error = %err, "admin json rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, b"{}".to_vec())
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
