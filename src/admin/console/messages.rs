//! The message search page (a form and its result table) and the quarantine list, which
//! is the same table over the QUARANTINED messages.

use std::fmt::Write as _;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::html::{esc, url};
use super::layout::{self, Nav, state_badge};
use super::{store_failed, when};
use crate::admin::search_params::{self, Dialect};
use crate::admin::{Actor, AdminServer};
use crate::percent::query_pairs;
use crate::store::{AdminSearch, MessageRecord, State};

/// The form's text fields: (parameter, label, placeholder, input type).
const FIELDS: [(&str, &str, &str, &str); 6] = [
    ("txid", "tx.id", "exact tx.id", "text"),
    ("corrid", "corr.id", "exact corr.id", "text"),
    (
        "org",
        "Organisation",
        "sender or receiver, e.g. 2120000142",
        "text",
    ),
    ("product", "Product", "urn:X-shs:…", "text"),
    ("since", "Arrived from (UTC)", "", "datetime-local"),
    ("until", "Arrived before (UTC)", "", "datetime-local"),
];

impl AdminServer {
    /// The search form, filled in with `query`, and the matching messages.
    pub(super) async fn search_page(&self, query: &str, actor: &Actor) -> Response<Full<Bytes>> {
        let (flash, query) = super::actions::take_flash(query);
        let query = query.as_str();
        let mut body = format!("<h1>Messages</h1>{}", flash.unwrap_or_default());
        let searched = !query.is_empty();
        let result = search_params::parse(query, true, Dialect::Form);
        write_form(&mut body, query);
        match result {
            Err(err) => {
                let _ = write!(
                    body,
                    "<div class=\"flash error\">Invalid {}: {}</div>",
                    esc(&err.parameter),
                    esc(&err.reason)
                );
                let mut response = layout::page("Messages", Nav::Messages, actor, &body);
                *response.status_mut() = StatusCode::BAD_REQUEST;
                return response;
            }
            Ok(search) => {
                let Some(records) = self.console_search(&search).await else {
                    return store_failed(actor);
                };
                let heading = if searched {
                    "Results"
                } else {
                    "Newest messages"
                };
                let _ = write!(body, "<h2>{heading} ({})</h2>", records.len());
                write_table(&mut body, &records, "No message matches.");
            }
        }
        layout::page("Messages", Nav::Messages, actor, &body)
    }

    /// The QUARANTINED messages, newest first.
    pub(super) async fn quarantine_page(
        &self,
        query: &str,
        actor: &Actor,
    ) -> Response<Full<Bytes>> {
        let (flash, query) = super::actions::take_flash(query);
        let mut search = match search_params::parse(&query, false, Dialect::Form) {
            Ok(search) => search,
            Err(err) => {
                let message = format!("Invalid {}: {}", err.parameter, err.reason);
                return layout::error_page(StatusCode::BAD_REQUEST, "Quarantine", &message, actor);
            }
        };
        search.state = Some(State::Quarantined);
        let Some(records) = self.console_search(&search).await else {
            return store_failed(actor);
        };
        let mut body = format!(
            "<h1>Quarantine ({})</h1>{}<p class=\"note\">Messages that could not be routed or \
             delivered. They stay here until an administrator acts; open one to see why and \
             what can be done.</p>",
            records.len(),
            flash.unwrap_or_default()
        );
        write_table(&mut body, &records, "The quarantine is empty.");
        layout::page("Quarantine", Nav::Quarantine, actor, &body)
    }

    /// Runs a search; `None` when the store failed (logged).
    pub(super) async fn console_search(&self, search: &AdminSearch) -> Option<Vec<MessageRecord>> {
        match self.broker.store().search(search).await {
            Ok(records) => Some(records),
            Err(err) => {
                tracing::error!(error = %err, "console search failed");
                None
            }
        }
    }
}

/// The search form, with the submitted values put back into their fields.
fn write_form(body: &mut String, query: &str) {
    let values = query_pairs(query).unwrap_or_default();
    let value = |name: &str| {
        values
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or("")
    };
    body.push_str(
        "<section class=\"card\"><form class=\"search\" method=\"get\" action=\"/console/messages\">",
    );
    for (name, label, placeholder, kind) in FIELDS {
        let _ = write!(
            body,
            "<label>{label}<input type=\"{kind}\" name=\"{name}\" id=\"{name}\" \
             placeholder=\"{placeholder}\" value=\"{}\"></label>",
            esc(value(name))
        );
    }
    let chosen = value("state").to_ascii_uppercase();
    body.push_str(
        "<label>State<select name=\"state\" id=\"state\"><option value=\"\">any</option>",
    );
    for state in State::ALL {
        let name = state.as_str();
        let selected = if name == chosen { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{name}\"{selected}>{name}</option>");
    }
    let limit = value("limit");
    let _ = write!(
        body,
        "</select></label><label>At most<input type=\"number\" name=\"limit\" min=\"1\" \
         max=\"1000\" placeholder=\"100\" value=\"{}\"></label>\
         <div><button type=\"submit\" id=\"search\">Search</button> \
         <a href=\"/console/messages\">clear</a></div></form>\
         <p class=\"note\">Exact matches; empty fields match everything. Organisation matches \
         the sender or the receiving mailbox. Without a tx.id every stored message is scanned.</p>\
         </section>",
        esc(limit)
    );
}

/// The result table; `empty` is shown instead when there are no records.
pub(super) fn write_table(body: &mut String, records: &[MessageRecord], empty: &str) {
    if records.is_empty() {
        let _ = write!(
            body,
            "<p class=\"note\" id=\"no-results\">{}</p>",
            esc(empty)
        );
        return;
    }
    body.push_str(
        "<table id=\"messages\"><thead><tr><th>Arrival</th><th>State</th><th>tx.id</th>\
         <th>From</th><th>Mailbox / to</th><th>Product</th><th>corr.id</th><th>Size</th>\
         <th>Error</th></tr></thead><tbody>",
    );
    for record in records {
        let s = &record.summary;
        let to = match &record.mailbox {
            Some(mailbox) => mailbox.bare(),
            None => s.to.clone().unwrap_or_default(),
        };
        let error = record.error.as_ref().map(|e| e.code.as_str()).unwrap_or("");
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"mono\"><a href=\"/console/messages/{}\">{}</a></td>\
             <td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">\
             <a href=\"/console/messages?corrid={}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            esc(&when(record.arrival)),
            state_badge(record.state),
            record.local_id,
            esc(&record.tx_id),
            esc(s.from.as_deref().unwrap_or(record.sender.as_str())),
            esc(&to),
            esc(&s.product),
            esc(&url(&s.corr_id)),
            esc(&s.corr_id),
            record.payload.size,
            esc(error),
        );
    }
    body.push_str("</tbody></table>");
}
