//! Admin actions over the JSON API (spec §11), and the audit log they write.
//!
//! - `POST /api/messages/{local_id}/{action}` with `action` one of `requeue`, `release`,
//!   `resend`, `delete` (see [`crate::broker::admin`] for what each means): 200 with
//!   `{"audit": …, "message": …}` (the message as it is afterwards, `null` once deleted);
//!   404 for an unknown id; 409 when the action does not apply to the message's state,
//!   with the reason; 400 for an unknown action.
//! - `GET /api/audit?limit=&before=`: the audit log, newest first; `before` is the `seq`
//!   of the oldest entry already seen, to page back.
//!
//! The request body is ignored. A request a browser marks as cross-site is refused
//! (403): on a loopback listener without credentials, any web page the operator visits
//! could otherwise post to it.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::broker::{AdminAction, BrokerError};
use crate::percent::query_pairs;
use crate::store::{Administered, AuditRecord, LocalId, State};

use super::api::{ApiError, Summary, json, time};
use super::{Actor, AdminServer};

/// The path of the audit log.
pub(super) const AUDIT: &str = "/api/audit";

/// The audit entries a request returns when it names no limit, and the most it may ask.
const AUDIT_DEFAULT_LIMIT: usize = 100;
const AUDIT_MAX_LIMIT: usize = 1000;

/// The local id and action of an action path, `/api/messages/{id}/{action}`.
pub(super) fn action_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/api/messages/")?;
    let (id, action) = rest.split_once('/')?;
    (!id.is_empty() && !action.is_empty() && !action.contains('/')).then_some((id, action))
}

/// True when a browser says the request comes from another site: `Sec-Fetch-Site` other
/// than `same-origin`/`none`, or an `Origin` whose host is not the `Host` asked for.
/// Scripts (curl) send neither header and pass.
pub(super) fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).map(|h| h.as_bytes());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host.as_bytes());
    origin_host.is_none() || origin_host != host
}

impl AdminServer {
    /// Performs `action` on message `id` for `actor`, with its audit record; the console
    /// and the JSON API both come here.
    pub async fn perform(
        &self,
        id: LocalId,
        action: AdminAction,
        actor: &Actor,
    ) -> Result<Administered, BrokerError> {
        self.broker.administer(id, action, &actor.to_string()).await
    }

    /// Answers `POST /api/messages/{id}/{action}`.
    pub(super) async fn action_api(
        &self,
        id: &str,
        action: &str,
        actor: &Actor,
    ) -> Response<Full<Bytes>> {
        let answer = async {
            let local_id = uuid::Uuid::parse_str(id)
                .map(LocalId)
                .map_err(|_| ApiError::bad("local_id", format!("{id:?} is not a UUID")))?;
            let action = AdminAction::parse(action).ok_or_else(|| {
                ApiError::bad(
                    "action",
                    format!("{action:?} is not one of requeue, release, resend, delete"),
                )
            })?;
            let done = self
                .perform(local_id, action, actor)
                .await
                .map_err(ApiError::of_broker)?;
            let body = ActionView {
                audit: AuditView::of(&done.audit),
                message: done.record.as_ref().map(Summary::of),
            };
            Ok::<_, ApiError>(json(StatusCode::OK, &body))
        };
        answer.await.unwrap_or_else(ApiError::render)
    }

    /// Answers `GET /api/audit`.
    pub(super) async fn audit_api(&self, query: Option<&str>) -> Response<Full<Bytes>> {
        let answer = async {
            let (limit, before) = audit_query(query.unwrap_or(""))?;
            let entries = self
                .broker
                .store()
                .audit_log(before, limit)
                .await
                .map_err(|err| {
                    tracing::error!(error = %err, "admin audit log read failed");
                    ApiError::Internal
                })?;
            let views: Vec<AuditView<'_>> = entries.iter().map(AuditView::of).collect();
            Ok::<_, ApiError>(json(StatusCode::OK, &views))
        };
        answer.await.unwrap_or_else(ApiError::render)
    }
}

fn audit_query(query: &str) -> Result<(usize, Option<u64>), ApiError> {
    let pairs = query_pairs(query)
        .ok_or_else(|| ApiError::bad("query", "it has a broken %-escape".into()))?;
    let (mut limit, mut before) = (AUDIT_DEFAULT_LIMIT, None);
    for (name, value) in pairs {
        let number = |parameter: &str| {
            value.parse::<u64>().map_err(|_| {
                ApiError::bad(parameter, format!("{value:?} is not a non-negative number"))
            })
        };
        match name.as_str() {
            "limit" => limit = usize::try_from(number("limit")?).unwrap_or(usize::MAX),
            "before" => before = Some(number("before")?),
            _ => return Err(ApiError::bad(&name, "unknown parameter".into())),
        }
    }
    Ok((limit.min(AUDIT_MAX_LIMIT), before))
}

#[derive(Serialize)]
struct ActionView<'a> {
    audit: AuditView<'a>,
    message: Option<Summary<'a>>,
}

/// One audit entry as the API shows it.
#[derive(Serialize)]
pub(super) struct AuditView<'a> {
    seq: u64,
    at: String,
    actor: &'a str,
    action: &'a str,
    local_id: String,
    tx_id: &'a str,
    from: State,
    to: Option<State>,
    detail: Option<&'a str>,
}

impl<'a> AuditView<'a> {
    pub(super) fn of(record: &'a AuditRecord) -> Self {
        AuditView {
            seq: record.seq,
            at: time(record.at),
            actor: &record.actor,
            action: &record.action,
            local_id: record.local_id.to_string(),
            tx_id: &record.tx_id,
            from: record.from,
            to: record.to,
            detail: record.detail.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn action_paths_name_an_id_and_an_action() {
        assert_eq!(
            action_path("/api/messages/abc/requeue"),
            Some(("abc", "requeue"))
        );
        assert_eq!(action_path("/api/messages/abc"), None);
        assert_eq!(action_path("/api/messages/abc/"), None);
        assert_eq!(action_path("/api/messages//requeue"), None);
        assert_eq!(action_path("/api/messages/abc/requeue/x"), None);
    }

    #[test]
    fn browsers_cross_site_requests_are_recognised() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(!cross_site(&headers(&[])));
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:9180")])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:9180"),
            ("origin", "http://127.0.0.1:9180"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:9180"),
            ("origin", "https://evil.example"),
        ])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:9180"),
            ("origin", "null"),
        ])));
    }
}
