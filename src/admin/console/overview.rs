//! The overview: traffic since the process started (the [`Metrics`] totals), how many
//! messages wait in quarantine, and how deep each local mailbox is.
//!
//! Mailbox depths come from the mailboxes' own list index (never a scan of all messages),
//! counted up to [`DEPTH_CAP`] so one page view stays cheap however full a mailbox is.
//!
//! [`Metrics`]: crate::metrics::Metrics

use std::fmt::Write as _;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use super::html::{esc, url};
use super::layout::{self, Nav};
use super::store_failed;
use crate::admin::{Actor, AdminServer};
use crate::protocol::label::Status;
use crate::protocol::urn::Address;
use crate::store::search::MAX_LIMIT;
use crate::store::{AdminSearch, MailboxQuery, State};

/// Mailbox depths are counted up to this many messages per mailbox and status.
const DEPTH_CAP: usize = 1000;

impl AdminServer {
    /// The overview page.
    pub(super) async fn overview_page(&self, actor: &Actor) -> Response<Full<Bytes>> {
        let totals = self.broker.metrics().totals();
        let quarantine = AdminSearch {
            state: Some(State::Quarantined),
            limit: MAX_LIMIT,
            ..AdminSearch::default()
        };
        let Some(quarantined) = self.console_search(&quarantine).await else {
            return store_failed(actor);
        };
        let config = self.broker.config();
        let mut body = format!(
            "<h1>Overview</h1><p class=\"note\">Node <b>{}</b>, shsd {}. Counters since the \
             process started; <a href=\"/metrics\">/metrics</a> has every series.</p>",
            esc(&config.node_id),
            env!("CARGO_PKG_VERSION")
        );
        let waiting = if quarantined.len() >= MAX_LIMIT {
            format!("{MAX_LIMIT}+")
        } else {
            quarantined.len().to_string()
        };
        let _ = write!(
            body,
            "<h2>Quarantine</h2><div class=\"tiles\"><a class=\"tile{}\" id=\"quarantine-count\" \
             href=\"/console/quarantine\" style=\"text-decoration:none;color:inherit\">\
             <div class=\"n\">{waiting}</div><div class=\"l\">messages in quarantine now</div></a></div>",
            if quarantined.is_empty() { "" } else { " warn" }
        );
        body.push_str("<h2>Traffic</h2><div class=\"tiles\" id=\"traffic\">");
        for (label, value, id) in [
            ("received (accepted)", totals.accepted, "received"),
            ("duplicates", totals.duplicates, "duplicates"),
            ("refused at intake", totals.refused, "refused"),
            ("failed at intake", totals.failed, "failed"),
            ("delivered to mailboxes", totals.delivered, "delivered"),
            ("quarantined", totals.quarantined, "quarantined"),
            ("fetched", totals.fetched, "fetched"),
            ("acknowledged", totals.acknowledged, "acknowledged"),
            (
                "TLS handshakes refused",
                totals.tls_failures,
                "tls-failures",
            ),
            (
                "limit rejections",
                totals.limit_rejections,
                "limit-rejections",
            ),
        ] {
            let _ = write!(
                body,
                "<div class=\"tile\" id=\"{id}\"><div class=\"n\">{value}</div>\
                 <div class=\"l\">{label}</div></div>"
            );
        }
        let _ = write!(
            body,
            "<div class=\"tile\"><div class=\"n\">{}</div><div class=\"l\">open SHS \
             connections</div></div></div>",
            totals.open_connections
        );
        self.write_depths(&mut body).await;
        layout::page("Overview", Nav::Overview, actor, &body)
    }

    /// The table of mailbox depths: messages waiting (RECEIVED) or fetched but not yet
    /// acknowledged (FETCHED), production and test traffic together.
    async fn write_depths(&self, body: &mut String) {
        body.push_str(
            "<h2>Mailboxes</h2><table id=\"mailboxes\"><thead><tr><th>Mailbox</th>\
             <th>Organisation</th><th>Not yet acknowledged</th></tr></thead><tbody>",
        );
        let config = self.broker.config();
        for org in &config.organisations {
            let mut mailboxes = vec![Address::organisation(org.number)];
            mailboxes.extend(
                org.sub_addresses
                    .iter()
                    .filter_map(|sub| Address::with_sub(org.number, sub).ok()),
            );
            for mailbox in mailboxes {
                let depth = match self.depth(&mailbox).await {
                    Some(n) if n >= DEPTH_CAP => format!("{DEPTH_CAP}+"),
                    Some(n) => n.to_string(),
                    None => "store error".to_owned(),
                };
                let bare = mailbox.bare();
                let _ = write!(
                    body,
                    "<tr><td class=\"mono\"><a href=\"/console/messages?org={}\">{}</a></td>\
                     <td>{}</td><td>{}</td></tr>",
                    esc(&url(org.number.as_str())),
                    esc(&bare),
                    esc(&org.name),
                    esc(&depth)
                );
            }
        }
        body.push_str("</tbody></table>");
    }

    /// How many messages sit in `mailbox`'s list, up to [`DEPTH_CAP`] per status.
    async fn depth(&self, mailbox: &Address) -> Option<usize> {
        let mut total = 0;
        for status in [Status::Production, Status::Test] {
            let query = MailboxQuery {
                include_fetched: true,
                max_hits: DEPTH_CAP,
                status,
                ..MailboxQuery::default()
            };
            match self.broker.store().list(mailbox, &query).await {
                Ok(records) => total += records.len(),
                Err(err) => {
                    tracing::error!(error = %err, mailbox = %mailbox.bare(), "console depth failed");
                    return None;
                }
            }
        }
        Some(total)
    }
}
