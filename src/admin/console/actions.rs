//! The console's action buttons: requeue, release, resend and delete as small POST forms
//! on a message's detail page, each carrying the CSRF token ([`super::csrf`]). A post is
//! checked, performed through [`AdminServer::perform`] (the JSON API's path, so the
//! audit log records the same actor), and answered with `303 See Other` back to a page
//! that shows the outcome as a flash line — so a reload never posts twice.
//!
//! The flash travels in the redirect's query as two words from closed sets
//! (`?action=requeue&outcome=done`), never as free text: a crafted link cannot make the
//! console display a message of the linker's choosing.

use std::fmt::Write as _;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use super::csrf::FIELD;
use super::html::esc;
use super::layout;
use super::parse_id;
use crate::admin::{Actor, AdminServer};
use crate::broker::{AdminAction, BrokerError};
use crate::percent::query_pairs;
use crate::store::{MessageRecord, State};

/// How an action ended, as the flash line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Conflict,
    NotFound,
    Unavailable,
    Failed,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Done,
        Outcome::Conflict,
        Outcome::NotFound,
        Outcome::Unavailable,
        Outcome::Failed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Conflict => "conflict",
            Outcome::NotFound => "notfound",
            Outcome::Unavailable => "unavailable",
            Outcome::Failed => "failed",
        }
    }
}

impl AdminServer {
    /// Answers `POST /console/messages/{id}/{action}`.
    pub(super) async fn action_post(
        &self,
        request: &Request<Bytes>,
        id: &str,
        action: &str,
        actor: &Actor,
    ) -> Response<Full<Bytes>> {
        let form = std::str::from_utf8(request.body())
            .ok()
            .and_then(query_pairs)
            .unwrap_or_default();
        let token = form
            .iter()
            .find(|(name, _)| name == FIELD)
            .map(|(_, value)| value.as_str());
        if let Err(refusal) = self.console.csrf.check(request.headers(), token) {
            tracing::warn!(%actor, local_id = id, action, reason = %refusal, "console action refused");
            let message = format!("The action was not performed: {refusal}.");
            return layout::error_page(StatusCode::FORBIDDEN, "Action refused", &message, actor);
        }
        let (Some(local_id), Some(action)) = (parse_id(id), AdminAction::parse(action)) else {
            return layout::error_page(
                StatusCode::NOT_FOUND,
                "No such action",
                "The actions are requeue, release, resend and delete, on a message's local id.",
                actor,
            );
        };
        let outcome = match self.perform(local_id, action, actor).await {
            Ok(done) => {
                if done.record.is_none() {
                    // Deleted: back to the list it came from.
                    let list = if done.audit.from == State::Quarantined {
                        "/console/quarantine"
                    } else {
                        "/console/messages"
                    };
                    return layout::redirect(&flash_url(list, action, Outcome::Done));
                }
                Outcome::Done
            }
            Err(BrokerError::NotFound(_)) => Outcome::NotFound,
            Err(BrokerError::Conflict(reason)) => {
                tracing::info!(%actor, %local_id, action = action.as_str(), %reason, "console action did not apply");
                Outcome::Conflict
            }
            Err(BrokerError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, %local_id, "console action: store unavailable");
                Outcome::Unavailable
            }
            Err(other) => {
                tracing::error!(error = %other, %local_id, "console action failed");
                Outcome::Failed
            }
        };
        let detail = format!("/console/messages/{local_id}");
        layout::redirect(&flash_url(&detail, action, outcome))
    }

    /// The action forms for `record`: one button per action its state allows.
    pub(super) fn write_action_forms(&self, body: &mut String, record: &MessageRecord) {
        let applicable: Vec<AdminAction> = AdminAction::ALL
            .into_iter()
            .filter(|action| action.applies_to(record.state))
            .collect();
        if applicable.is_empty() {
            return;
        }
        body.push_str("<h2>Actions</h2><section class=\"card\" id=\"actions\">");
        for action in &applicable {
            let name = action.as_str();
            let class = if *action == AdminAction::Delete {
                " class=\"danger\""
            } else {
                ""
            };
            let _ = write!(
                body,
                "<form class=\"inline\" method=\"post\" action=\"/console/messages/{}/{name}\">\
                 <input type=\"hidden\" name=\"{FIELD}\" value=\"{}\">\
                 <button type=\"submit\" id=\"action-{name}\"{class}>{}</button></form>",
                record.local_id,
                esc(self.console.csrf.value()),
                title(*action)
            );
        }
        body.push_str("<dl class=\"kv note\">");
        for action in applicable {
            let _ = write!(
                body,
                "<dt>{}</dt><dd>{}</dd>",
                title(action),
                explanation(action)
            );
        }
        body.push_str(
            "</dl><p class=\"note\">Every action is written to the audit log with who did it \
             (<a href=\"/api/audit\">/api/audit</a>).</p></section>",
        );
    }
}

/// Splits the flash words off a page's query: the flash line's HTML (if the words are
/// known) and the rest of the query for the page itself.
pub(super) fn take_flash(query: &str) -> (Option<String>, String) {
    let mut action = None;
    let mut outcome = None;
    let mut rest = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        match part.split_once('=') {
            Some(("action", value)) => action = AdminAction::parse(value),
            Some(("outcome", value)) => {
                outcome = Outcome::ALL.into_iter().find(|o| o.as_str() == value);
            }
            _ => rest.push(part),
        }
    }
    let flash = match (action, outcome) {
        (Some(action), Some(outcome)) => Some(flash_html(action, outcome)),
        _ => None,
    };
    (flash, rest.join("&"))
}

fn flash_url(path: &str, action: AdminAction, outcome: Outcome) -> String {
    format!(
        "{path}?action={}&outcome={}",
        action.as_str(),
        outcome.as_str()
    )
}

fn flash_html(action: AdminAction, outcome: Outcome) -> String {
    let title = title(action);
    let (class, text) = match outcome {
        Outcome::Done => ("flash", format!("{title}: done.")),
        Outcome::Conflict => (
            "flash error",
            format!("{title}: not possible in the message's state; nothing was changed."),
        ),
        Outcome::NotFound => (
            "flash error",
            format!("{title}: the message no longer exists."),
        ),
        Outcome::Unavailable => (
            "flash error",
            format!("{title}: the store is unavailable; nothing was changed. Try again."),
        ),
        Outcome::Failed => (
            "flash error",
            format!("{title}: failed; the cause is in the log."),
        ),
    };
    format!("<div class=\"{class}\" id=\"flash\">{}</div>", esc(&text))
}

fn title(action: AdminAction) -> &'static str {
    match action {
        AdminAction::Requeue => "Requeue",
        AdminAction::Release => "Release",
        AdminAction::Resend => "Resend",
        AdminAction::Delete => "Delete",
    }
}

fn explanation(action: AdminAction) -> &'static str {
    match action {
        AdminAction::Requeue => "route it again with the current configuration, now",
        AdminAction::Release => {
            "deliver it to the label's <i>to</i> mailbox despite the failed check (only a \
             mailbox of this node)"
        }
        AdminAction::Resend => "list it in its mailbox again, to be fetched again",
        AdminAction::Delete => "remove it and its payload for good",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flashes_are_closed_words_and_the_rest_of_the_query_is_kept() {
        let (flash, rest) = take_flash("action=requeue&outcome=done&state=NEW");
        assert_eq!(rest, "state=NEW");
        let flash = flash.unwrap();
        assert!(flash.contains("Requeue: done."), "{flash}");
        let (flash, rest) = take_flash("action=%3Cscript%3E&outcome=done");
        assert_eq!((flash, rest.as_str()), (None, ""));
        let (flash, _) = take_flash("action=delete&outcome=%3Cb%3E");
        assert_eq!(flash, None);
        let (flash, _) = take_flash("action=release&outcome=conflict");
        assert!(flash.unwrap().contains("flash error"));
    }
}
