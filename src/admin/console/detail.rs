//! One message: the label summary, where it is, the state history (spec §5.4), the error
//! that quarantined it, the verified signer, and the label as a fetch serves it.

use std::fmt::Write as _;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::html::{esc, url};
use super::layout::{self, Nav, state_badge};
use super::{store_failed, when};
use crate::admin::{Actor, AdminServer};
use crate::store::{LocalId, MessageRecord};

impl AdminServer {
    /// The detail page of `id`; `query` may carry a flash message after an action.
    pub(super) async fn detail_page(
        &self,
        id: LocalId,
        query: &str,
        actor: &Actor,
    ) -> Response<Full<Bytes>> {
        let record = match self.broker.store().message(id).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                return layout::error_page(
                    StatusCode::NOT_FOUND,
                    "No such message",
                    &format!("No message has the local id {id}."),
                    actor,
                );
            }
            Err(err) => {
                tracing::error!(error = %err, local_id = %id, "console detail failed");
                return store_failed(actor);
            }
        };
        let (flash, _) = super::actions::take_flash(query);
        let mut body = flash.unwrap_or_default();
        let _ = write!(
            body,
            "<h1>Message <span class=\"mono\">{}</span> {}</h1>",
            esc(&record.tx_id),
            state_badge(record.state)
        );
        write_summary(&mut body, &record);
        write_error_and_signer(&mut body, &record);
        self.write_action_forms(&mut body, &record);
        write_history(&mut body, &record);
        write_label(&mut body, &record);
        layout::page("Message", Nav::Messages, actor, &body)
    }
}

fn write_summary(body: &mut String, record: &MessageRecord) {
    let s = &record.summary;
    let mut rows: Vec<(&str, String)> = vec![
        ("local id", record.local_id.to_string()),
        ("tx.id", record.tx_id.clone()),
        ("corr.id", s.corr_id.clone()),
        ("content.id", s.content_id.clone()),
        ("sender (organisation)", record.sender.as_str().to_owned()),
        ("from", s.from.clone().unwrap_or_default()),
        ("to", s.to.clone().unwrap_or_default()),
        ("originator", s.originator.clone().unwrap_or_default()),
        ("end-recipient", s.end_recipient.clone().unwrap_or_default()),
        (
            "mailbox",
            record
                .mailbox
                .as_ref()
                .map(|m| m.bare())
                .unwrap_or_default(),
        ),
        ("product", s.product.clone()),
        ("sequence-type", s.sequence_type.clone()),
        (
            "status",
            if s.status.is_empty() {
                "production".to_owned()
            } else {
                s.status.clone()
            },
        ),
        ("subject", s.subject.clone().unwrap_or_default()),
        ("label datetime", s.timestamp.clone()),
        ("arrival", when(record.arrival)),
        ("size", format!("{} bytes", record.payload.size)),
    ];
    for (i, part) in record.payload.parts.iter().enumerate() {
        let described = s.data.get(i).map(|d| {
            format!(
                " ({}{})",
                d.datapart_type.as_deref().unwrap_or("?"),
                d.filename
                    .as_deref()
                    .map(|f| format!(", {f}"))
                    .unwrap_or_default()
            )
        });
        rows.push((
            "data part",
            format!("{} bytes{}", part.len, described.unwrap_or_default()),
        ));
    }
    for meta in &s.meta {
        rows.push(("meta", format!("{} = {}", meta.name, meta.value)));
    }
    body.push_str("<section class=\"card\"><dl class=\"kv\" id=\"summary\">");
    for (name, value) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = write!(body, "<dt>{}</dt><dd>{}</dd>", esc(name), esc(value));
    }
    if let Some(parent) = record.parent {
        let _ = write!(
            body,
            "<dt>fan-out parent</dt><dd><a href=\"/console/messages/{parent}\">{parent}</a></dd>"
        );
    }
    for copy in &record.copies {
        let _ = write!(
            body,
            "<dt>copy</dt><dd><a href=\"/console/messages/{copy}\">{copy}</a></dd>"
        );
    }
    let _ = write!(
        body,
        "</dl><p class=\"note\"><a href=\"/console/messages?corrid={}\">Other messages of this \
         corr.id</a> · <a href=\"/api/messages/{}\">as JSON</a></p></section>",
        esc(&url(&s.corr_id)),
        record.local_id
    );
}

fn write_error_and_signer(body: &mut String, record: &MessageRecord) {
    if let Some(error) = &record.error {
        let _ = write!(
            body,
            "<h2>Error</h2><section class=\"card\" id=\"error\"><dl class=\"kv\">\
             <dt>code</dt><dd class=\"mono\">{}</dd><dt>reason</dt><dd>{}</dd></dl></section>",
            esc(error.code.as_str()),
            esc(&error.text)
        );
    }
    if let Some(signer) = &record.signer {
        let _ = write!(
            body,
            "<h2>Signer</h2><section class=\"card\" id=\"signer\"><p>{}</p></section>",
            esc(signer)
        );
    }
    if let Some(answer) = &record.answer {
        let said = match &answer.error {
            None => "confirm".to_owned(),
            Some(error) => format!("error {}: {}", error.code.as_str(), error.text),
        };
        let _ = write!(
            body,
            "<h2>Answer</h2><section class=\"card\" id=\"answer\"><dl class=\"kv\">\
             <dt>answer</dt><dd>{}</dd><dt>tx.id</dt><dd class=\"mono\">{}</dd></dl></section>",
            esc(&said),
            esc(&answer.tx_id)
        );
    }
}

fn write_history(body: &mut String, record: &MessageRecord) {
    body.push_str(
        "<h2>State history</h2><table id=\"history\"><thead><tr><th>When</th><th>State</th>\
         </tr></thead><tbody>",
    );
    for change in &record.state_log {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&when(change.at)),
            state_badge(change.state)
        );
    }
    body.push_str("</tbody></table>");
}

fn write_label(body: &mut String, record: &MessageRecord) {
    let label = String::from_utf8_lossy(&record.label);
    let _ = write!(
        body,
        "<h2>Label</h2><pre class=\"label\" id=\"label\">{}</pre>",
        esc(&label)
    );
}
