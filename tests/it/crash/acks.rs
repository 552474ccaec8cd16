//! Acknowledgements across a kill: a sample of the accepted messages is acknowledged, each
//! ack must store exactly one confirm for the sender, and after one more SIGKILL the
//! acknowledged messages stay acknowledged while every other accepted one is still listed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use shsd::client::ClientError;
use shsd::protocol::management::{ManagementBody, ManagementDocument};
use shsd::protocol::mime::{Limits, split_message};

use super::senders::{Outcome, Sent};
use super::verify::{LIST_QUERY, Readers};
use super::{MAILBOXES, address};
use crate::harness::PORTAL;

const ACK_SAMPLE: usize = 40;

/// Acknowledges an evenly spread sample of the accepted messages the portal sent (so that
/// the confirms land in one mailbox). Returns the acknowledged tx.ids and the findings.
pub(super) async fn ack_sample<'a>(
    readers: &Readers,
    ledger: &'a HashMap<String, Sent>,
) -> (HashSet<&'a str>, Vec<String>) {
    let mut findings = Vec::new();
    let mut acked: Vec<(&String, &Sent)> = ledger
        .iter()
        .filter(|(_, sent)| sent.outcome == Outcome::Accepted && sent.lane.from() == PORTAL)
        .collect();
    acked.sort_by_key(|(tx_id, _)| tx_id.as_str());
    let step = (acked.len() / ACK_SAMPLE).max(1);
    let acked: Vec<_> = acked.into_iter().step_by(step).take(ACK_SAMPLE).collect();
    for (tx_id, sent) in &acked {
        let mailbox = address(sent.lane.to());
        if let Err(err) = readers.of(sent.lane.to()).ack(&mailbox, tx_id).await {
            findings.push(format!("ack of {tx_id} in {}: {err}", sent.lane.to()));
        }
    }
    let acked_ids = acked.iter().map(|(tx_id, _)| tx_id.as_str()).collect();
    (acked_ids, findings)
}

/// Every acknowledged message has exactly one confirm in the portal's mailbox; `fetch`
/// also fetches each and checks its management document.
pub(super) async fn check_confirms(
    readers: &Readers,
    acked: &HashSet<&str>,
    fetch: bool,
) -> Vec<String> {
    let mut findings = Vec::new();
    let portal = address(PORTAL);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = match readers.portal.list(&portal, LIST_QUERY).await {
            Ok(list) => list,
            Err(err) => return vec![format!("list portal for confirms: {err}")],
        };
        let mut confirms: HashMap<&str, Vec<&str>> = HashMap::new();
        for message in &list.messages {
            if message
                .product
                .as_deref()
                .is_some_and(|p| p.contains("confirm"))
            {
                let corr_id = message.corr_id.as_deref().unwrap_or_default();
                confirms.entry(corr_id).or_default().push(&message.tx_id);
            }
        }
        let missing: Vec<_> = acked
            .iter()
            .filter(|t| !confirms.contains_key(*t))
            .collect();
        if !missing.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        for tx_id in missing {
            findings.push(format!("no confirm for acknowledged {tx_id}"));
        }
        for (corr_id, tx_ids) in &confirms {
            if !acked.contains(corr_id) {
                findings.push(format!(
                    "confirm for {corr_id}, which was never acknowledged"
                ));
            } else if tx_ids.len() != 1 {
                findings.push(format!("{} confirms for {corr_id}", tx_ids.len()));
            }
            if !fetch {
                continue;
            }
            for tx_id in tx_ids {
                let confirm = match readers.portal.fetch(&portal, tx_id).await {
                    Ok(body) => body,
                    Err(err) => {
                        findings.push(format!("confirm {tx_id}: fetch failed: {err}"));
                        continue;
                    }
                };
                let document = split_message(&confirm, Some("message/rfc822"), Limits::default())
                    .ok()
                    .and_then(|split| split.parts.into_iter().next())
                    .and_then(|(_, bytes)| ManagementDocument::parse(&bytes).ok());
                match document {
                    Some(doc)
                        if doc.corr_id == *corr_id
                            && matches!(doc.body, ManagementBody::Confirmation { .. }) => {}
                    other => findings.push(format!("confirm {tx_id} for {corr_id}: {other:?}")),
                }
            }
        }
        return findings;
    }
}

/// After the kill that followed the acks: acknowledged messages stay acknowledged (not
/// listed, not fetchable), all other accepted ones are still listed.
pub(super) async fn check_after_ack_kill(
    readers: &Readers,
    ledger: &HashMap<String, Sent>,
    acked: &HashSet<&str>,
) -> Vec<String> {
    let mut findings = Vec::new();
    for mailbox in MAILBOXES {
        let address = address(mailbox);
        let client = readers.of(mailbox);
        let list = match client.list(&address, LIST_QUERY).await {
            Ok(list) => list,
            Err(err) => {
                findings.push(format!("list {mailbox} after ack kill: {err}"));
                continue;
            }
        };
        let listed: HashSet<&str> = list.messages.iter().map(|m| m.tx_id.as_str()).collect();
        for (tx_id, sent) in ledger {
            if sent.lane.to() != mailbox || sent.outcome != Outcome::Accepted {
                continue;
            }
            let tx_id = tx_id.as_str();
            match (acked.contains(tx_id), listed.contains(tx_id)) {
                (true, true) => findings.push(format!("acknowledged {tx_id} listed again")),
                (false, false) => findings.push(format!("{tx_id} gone after the ack kill")),
                _ => {}
            }
            if acked.contains(tx_id) {
                match client.fetch(&address, tx_id).await {
                    Err(ClientError::Refused { status, .. }) if status == 404 => {}
                    other => findings.push(format!(
                        "fetch of acknowledged {tx_id}: {:?}",
                        other.map(|b| b.len())
                    )),
                }
            }
        }
    }
    findings
}
