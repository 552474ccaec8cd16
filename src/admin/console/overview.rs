//! The overview: traffic since the process started (the [`Metrics`] totals), how many
//! messages wait in quarantine, and how deep each local mailbox is.
//!
//! Mailbox depths are the store's running counts ([`Store::mailbox_depths`]), so a page
//! view costs no scan; the quarantine count is a search capped at [`MAX_LIMIT`].
//!
//! [`Store::mailbox_depths`]: crate::store::Store::mailbox_depths
//! [`Metrics`]: crate::metrics::Metrics

use std::fmt::Write as _;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use super::html::{esc, url};
use super::layout::{self, Nav};
use super::store_failed;
use crate::admin::{Actor, AdminServer};
use crate::protocol::urn::Address;
use crate::store::search::MAX_LIMIT;
use crate::store::{AdminSearch, State};

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
    /// acknowledged (FETCHED), from the store's running counts (no scan). Every
    /// configured mailbox is listed, empty ones too.
    async fn write_depths(&self, body: &mut String) {
        let depths = match self.broker.store().mailbox_depths().await {
            Ok(depths) => Some(depths),
            Err(err) => {
                tracing::error!(error = %err, "console mailbox depths failed");
                None
            }
        };
        body.push_str(
            "<h2>Mailboxes</h2><table id=\"mailboxes\"><thead><tr><th>Mailbox</th>\
             <th>Organisation</th><th>Not yet acknowledged</th></tr></thead><tbody>",
        );
        let config = self.broker.config();
        let mut rows: Vec<(Address, String)> = Vec::new();
        for org in &config.organisations {
            rows.push((Address::organisation(org.number), org.name.clone()));
            rows.extend(
                org.sub_addresses
                    .iter()
                    .filter_map(|sub| Address::with_sub(org.number, sub).ok())
                    .map(|address| (address, org.name.clone())),
            );
        }
        // Mailboxes that hold messages but are no longer configured still show.
        for (address, _) in depths.iter().flatten() {
            if !rows.iter().any(|(known, _)| known == address) {
                rows.push((address.clone(), "(not configured)".to_owned()));
            }
        }
        for (mailbox, name) in rows {
            let depth = match &depths {
                Some(depths) => depths
                    .iter()
                    .find(|(address, _)| *address == mailbox)
                    .map_or(0, |(_, n)| *n)
                    .to_string(),
                None => "store error".to_owned(),
            };
            let _ = write!(
                body,
                "<tr><td class=\"mono\"><a href=\"/console/messages?org={}\">{}</a></td>\
                 <td>{}</td><td>{}</td></tr>",
                esc(&url(mailbox.org().as_str())),
                esc(&mailbox.bare()),
                esc(&name),
                esc(&depth)
            );
        }
        body.push_str("</tbody></table>");
    }
}
