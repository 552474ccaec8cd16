//! The checks of what the senders sent: every accepted message is listed and fetches
//! byte-identical, nothing listed was never sent, in-flight messages are whole or absent,
//! and a resent accepted message is a duplicate of the original.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shsd::client::{OutgoingPart, ShsClient};
use shsd::pki::ExamplePki;
use shsd::protocol::label::Label;
use shsd::protocol::mime::{Limits, split_message};

use super::senders::{Lane, Outcome, Sent, parts_for};
use super::{SOCIALTJANST, address, identity};
use crate::harness::{BYGGLOV, PORTAL, message_with_tx};

const MAX_HITS: usize = 10_000;
/// Lists every unacknowledged message; `MAX_HITS` is far above what the test sends.
pub(super) const LIST_QUERY: &str = "filter=noack&maxhits=10000";
const RESEND_SAMPLE: usize = 16;

/// One client per mailbox owner.
pub(super) struct Readers {
    pub(super) bygglov: ShsClient,
    socialtjanst: ShsClient,
    pub(super) portal: ShsClient,
}

impl Readers {
    pub(super) fn new(pki: &ExamplePki, url: &str) -> Readers {
        let client = |mailbox| {
            let tls = pki
                .client_config(Some(identity(pki, mailbox)))
                .expect("tls");
            ShsClient::new(url, tls).expect("client")
        };
        Readers {
            bygglov: client(BYGGLOV),
            socialtjanst: client(SOCIALTJANST),
            portal: client(PORTAL),
        }
    }

    pub(super) fn of(&self, mailbox: &str) -> &ShsClient {
        match mailbox {
            BYGGLOV => &self.bygglov,
            SOCIALTJANST => &self.socialtjanst,
            _ => &self.portal,
        }
    }
}

/// What the verification of one mailbox (or of all three, merged) found.
pub(super) struct MailboxReport {
    /// Every tx.id listed.
    pub(super) listed: HashSet<String>,
    /// Listed messages that fetched byte-identical.
    pub(super) verified: usize,
    /// Listed messages whose send had no answer (stored at the kill, which is allowed).
    pub(super) visible_unknown: usize,
    /// How long until every accepted message was listed (the slowest mailbox).
    pub(super) listed_after: Duration,
    pub(super) findings: Vec<String>,
}

/// Verifies the three mailboxes at once (see [`verify_mailbox`]) and merges their reports.
pub(super) async fn verify_mailboxes(
    readers: &Readers,
    ledger: &HashMap<String, Sent>,
    deadline: Instant,
) -> MailboxReport {
    let verify = |mailbox| verify_mailbox(readers.of(mailbox), mailbox, ledger, deadline);
    let (bygglov, socialtjanst, portal) =
        tokio::join!(verify(BYGGLOV), verify(SOCIALTJANST), verify(PORTAL));
    let mut merged = MailboxReport {
        listed: HashSet::new(),
        verified: 0,
        visible_unknown: 0,
        listed_after: Duration::ZERO,
        findings: Vec::new(),
    };
    for report in [bygglov, socialtjanst, portal] {
        merged.verified += report.verified;
        merged.visible_unknown += report.visible_unknown;
        merged.listed_after = merged.listed_after.max(report.listed_after);
        merged.listed.extend(report.listed);
        merged.findings.extend(report.findings);
    }
    merged
}

/// Lists `mailbox` until every accepted message for it is there (or `deadline`), then
/// fetches every listed message and compares it with what was sent.
async fn verify_mailbox(
    client: &ShsClient,
    mailbox: &str,
    ledger: &HashMap<String, Sent>,
    deadline: Instant,
) -> MailboxReport {
    let mut report = MailboxReport {
        listed: HashSet::new(),
        verified: 0,
        visible_unknown: 0,
        listed_after: Duration::ZERO,
        findings: Vec::new(),
    };
    let address = address(mailbox);
    let accepted: HashSet<&str> = ledger
        .iter()
        .filter(|(_, s)| s.lane.to() == mailbox && s.outcome == Outcome::Accepted)
        .map(|(tx_id, _)| tx_id.as_str())
        .collect();
    let since = Instant::now();
    let list = loop {
        let list = match client.list(&address, LIST_QUERY).await {
            Ok(list) => list,
            Err(err) => {
                report.findings.push(format!("list {mailbox}: {err}"));
                return report;
            }
        };
        let listed: HashSet<&str> = list.messages.iter().map(|m| m.tx_id.as_str()).collect();
        if accepted.is_subset(&listed) || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    report.listed_after = since.elapsed();
    if list.messages.len() >= MAX_HITS {
        report.findings.push(format!("{mailbox}: list hit maxhits"));
    }
    let mut listed = HashSet::new();
    for message in &list.messages {
        report.listed.insert(message.tx_id.clone());
        if !listed.insert(message.tx_id.as_str()) {
            report
                .findings
                .push(format!("{mailbox}: {} listed twice", message.tx_id));
        }
    }
    for tx_id in accepted.difference(&listed) {
        let why = match client.fetch(&address, tx_id).await {
            Ok(_) => "fetchable but not listed (routing job not resumed?)".to_owned(),
            Err(err) => format!("LOST: {err}"),
        };
        report
            .findings
            .push(format!("{mailbox}: accepted {tx_id} missing: {why}"));
    }
    for message in &list.messages {
        let tx_id = message.tx_id.as_str();
        let Some(sent) = ledger.get(tx_id).filter(|s| s.lane.to() == mailbox) else {
            report.findings.push(format!(
                "{mailbox}: {tx_id} listed but never sent here (product {:?})",
                message.product
            ));
            continue;
        };
        if sent.outcome != Outcome::Accepted {
            report.visible_unknown += 1;
        }
        let expected = parts_for(tx_id);
        let size: u64 = expected.iter().map(|p| p.bytes.len() as u64).sum();
        if message.size != Some(size) {
            report.findings.push(format!(
                "{mailbox}: {tx_id} ({:?}) listed with size {:?}, sent {size}",
                sent.outcome, message.size
            ));
        }
        match client.fetch(&address, tx_id).await {
            Ok(body) => match check_fetched(tx_id, &body, &expected) {
                Ok(()) => report.verified += 1,
                Err(why) => report.findings.push(format!(
                    "{mailbox}: {tx_id} ({:?}) fetched wrong: {why}",
                    sent.outcome
                )),
            },
            Err(err) => report.findings.push(format!(
                "{mailbox}: {tx_id} ({:?}) listed but fetch failed: {err}",
                sent.outcome
            )),
        }
    }
    report
}

/// Sends every in-flight message that is not visible again, lane by lane. A duplicate
/// answer means it was stored at the kill: then it must be listed by now. Returns how many
/// were stored but hidden (expected: none), and the findings.
pub(super) async fn resend_unknown(
    pki: &ExamplePki,
    readers: &Readers,
    url: &str,
    ledger: &HashMap<String, Sent>,
    visible: &HashSet<String>,
) -> (usize, Vec<String>) {
    let resend_lane = |lane: Lane| async move {
        let tls = pki.client_config(Some(lane.sender(pki))).expect("tls");
        let client = ShsClient::new(url, tls).expect("client");
        let mut stored = Vec::new();
        let mut findings = Vec::new();
        for (tx_id, sent) in ledger {
            if sent.lane != lane || sent.outcome == Outcome::Accepted || visible.contains(tx_id) {
                continue;
            }
            let (body, boundary, _) =
                message_with_tx(lane.from(), lane.to(), tx_id, &parts_for(tx_id));
            match client.send(Bytes::from(body), &boundary).await {
                Ok(receipt) if receipt.status == 202 && receipt.duplicate => {
                    stored.push(tx_id.as_str());
                }
                Ok(receipt) if receipt.status == 202 => {}
                other => findings.push(format!("resend of in-flight {tx_id}: {other:?}")),
            }
        }
        (lane, stored, findings)
    };
    let lanes = tokio::join!(
        resend_lane(Lane::PortalToBygglov),
        resend_lane(Lane::PortalToSocialtjanst),
        resend_lane(Lane::BygglovToPortal),
        resend_lane(Lane::SocialtjanstToPortal),
    );
    let mut hidden = 0;
    let mut findings = Vec::new();
    for (lane, stored, more) in [lanes.0, lanes.1, lanes.2, lanes.3] {
        findings.extend(more);
        if stored.is_empty() {
            continue;
        }
        hidden += stored.len();
        let list = readers
            .of(lane.to())
            .list(&address(lane.to()), LIST_QUERY)
            .await;
        let listed: HashSet<String> = match list {
            Ok(list) => list.messages.into_iter().map(|m| m.tx_id).collect(),
            Err(err) => {
                findings.push(format!("list {} after resend: {err}", lane.to()));
                continue;
            }
        };
        for tx_id in stored {
            let state = if listed.contains(tx_id) {
                "listed only now"
            } else {
                "still not listed"
            };
            findings.push(format!(
                "in-flight {tx_id} was stored but not listed after restart ({state})"
            ));
        }
    }
    (hidden, findings)
}

/// Accepted messages sent again (same tx.id, same content) are duplicates of the
/// original: the tx.id index survived the kills with the record.
pub(super) async fn check_resend(
    pki: &ExamplePki,
    url: &str,
    ledger: &HashMap<String, Sent>,
) -> Vec<String> {
    let mut findings = Vec::new();
    let mut accepted: Vec<_> = ledger
        .iter()
        .filter(|(_, s)| s.outcome == Outcome::Accepted)
        .collect();
    accepted.sort_by_key(|(tx_id, _)| tx_id.as_str());
    let step = (accepted.len() / RESEND_SAMPLE).max(1);
    for (tx_id, sent) in accepted.into_iter().step_by(step).take(RESEND_SAMPLE) {
        let tls = pki.client_config(Some(sent.lane.sender(pki))).expect("tls");
        let client = ShsClient::new(url, tls).expect("client");
        let (body, boundary, _) =
            message_with_tx(sent.lane.from(), sent.lane.to(), tx_id, &parts_for(tx_id));
        match client.send(Bytes::from(body), &boundary).await {
            Ok(receipt) if receipt.duplicate && receipt.local_id == sent.local_id => {}
            other => findings.push(format!("resend of accepted {tx_id}: {other:?}")),
        }
    }
    findings
}

/// The fetched message is complete: a label that parses with its tx.id and one history
/// entry, and data parts byte-identical to the ones sent.
fn check_fetched(tx_id: &str, body: &[u8], expected: &[OutgoingPart]) -> Result<(), String> {
    let split = split_message(body, Some("message/rfc822"), Limits::default())
        .map_err(|err| format!("MIME: {err}"))?;
    let label = Label::parse(&split.label).map_err(|err| format!("label: {err}"))?;
    if label.tx_id != tx_id || label.corr_id != tx_id {
        return Err(format!("label names tx.id {}", label.tx_id));
    }
    if label.history.len() != 1 {
        return Err(format!("{} history entries", label.history.len()));
    }
    if split.parts.len() != expected.len() {
        return Err(format!(
            "{} data parts, sent {}",
            split.parts.len(),
            expected.len()
        ));
    }
    for (index, ((_, got), want)) in split.parts.iter().zip(expected).enumerate() {
        if *got != want.bytes {
            let first = got.iter().zip(&want.bytes).position(|(a, b)| a != b);
            return Err(format!(
                "part {index}: {} bytes, sent {}; first difference at {first:?}",
                got.len(),
                want.bytes.len()
            ));
        }
    }
    Ok(())
}
