//! The web console (spec §11): server-rendered HTML pages over the same data as the JSON
//! API, for a sysadmin with a browser. No JavaScript, no external assets.
//!
//! - `GET /` redirects to `GET /console`, the overview (traffic counters, quarantine count,
//!   mailbox depths): [`overview`].
//! - `GET /console/messages?txid=&corrid=&org=&product=&state=&since=&until=&limit=`: the
//!   search form and its results ([`messages`]); the parameters are the API's
//!   ([`super::search_params`]), empty fields ignored.
//! - `GET /console/messages/{local_id}`: one message, its state history, error and signer
//!   ([`detail`]), with a button for each admin action its state allows.
//! - `POST /console/messages/{local_id}/{action}`: performs the action (CSRF-checked) and
//!   redirects back with the outcome ([`actions`]).
//! - `GET /console/quarantine`: the quarantined messages ([`messages`]).
//! - `GET /console/directory`: organisations, clients and admin identities from the
//!   configuration ([`directory`]).
//!
//! Every value shown is escaped by [`html`]; the pages are laid out by [`layout`].

mod actions;
mod csrf;
mod detail;
mod directory;
mod html;
mod layout;
mod messages;
mod overview;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use super::{Actor, AdminServer};
use crate::store::LocalId;

pub(super) use csrf::CsrfToken;

/// The console's own state: the per-process token its forms carry.
pub(super) struct Console {
    csrf: CsrfToken,
}

impl Console {
    /// A console with a fresh random form token.
    pub(super) fn new() -> Console {
        Console {
            csrf: CsrfToken::random(),
        }
    }
}

/// The root of the console.
const ROOT: &str = "/console";

/// True for `/` and the paths under `/console`.
pub(super) fn is_console_path(path: &str) -> bool {
    path == "/" || path == ROOT || path.starts_with("/console/")
}

/// The pages, by path.
enum Page<'a> {
    Root,
    Overview,
    Search,
    Detail(&'a str),
    Action(&'a str, &'a str),
    Quarantine,
    Directory,
}

fn page_of(path: &str) -> Option<Page<'_>> {
    Some(match path {
        "/" => Page::Root,
        ROOT | "/console/" => Page::Overview,
        "/console/messages" => Page::Search,
        "/console/quarantine" => Page::Quarantine,
        "/console/directory" => Page::Directory,
        _ => {
            let rest = path.strip_prefix("/console/messages/")?;
            match rest.split_once('/') {
                None if !rest.is_empty() => Page::Detail(rest),
                Some((id, action)) if !id.is_empty() && !action.contains('/') => {
                    Page::Action(id, action)
                }
                _ => return None,
            }
        }
    })
}

impl AdminServer {
    /// Answers a request for one of the [`is_console_path`] paths.
    pub(super) async fn console(
        &self,
        request: &Request<Bytes>,
        actor: &Actor,
    ) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        let Some(page) = page_of(path) else {
            return layout::error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no console page at this address.",
                actor,
            );
        };
        let (allowed, allow) = match page {
            Page::Action(..) => (*request.method() == Method::POST, "POST"),
            _ => (
                matches!(*request.method(), Method::GET | Method::HEAD),
                "GET, HEAD",
            ),
        };
        if !allowed {
            let mut response = layout::error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                &format!("This console address answers {allow} only."),
                actor,
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            return response;
        }
        let query = request.uri().query().unwrap_or("");
        match page {
            Page::Root => layout::redirect(ROOT),
            Page::Overview => self.overview_page(actor).await,
            Page::Search => self.search_page(query, actor).await,
            Page::Quarantine => self.quarantine_page(query, actor).await,
            Page::Detail(id) => match parse_id(id) {
                Some(id) => self.detail_page(id, query, actor).await,
                None => layout::error_page(
                    StatusCode::BAD_REQUEST,
                    "Bad message id",
                    &format!("{id:?} is not a local id (a UUID)."),
                    actor,
                ),
            },
            Page::Action(id, action) => self.action_post(request, id, action, actor).await,
            Page::Directory => self.directory_page(actor).await,
        }
    }
}

/// A local id from a path segment.
fn parse_id(text: &str) -> Option<LocalId> {
    uuid::Uuid::parse_str(text).ok().map(LocalId)
}

/// A time as the console shows it: UTC, to the second.
fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The page shown when the store fails a read; the cause is logged by the caller.
fn store_failed(actor: &Actor) -> Response<Full<Bytes>> {
    layout::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Store error",
        "The store failed to answer; the cause is in the log.",
        actor,
    )
}

#[cfg(test)]
mod tests;
