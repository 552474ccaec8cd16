//! The concurrent senders and their deterministic messages. Each sender sends message
//! after message to whichever daemon is live and records in a shared ledger what became of
//! each tx.id; a message's content is derived from its tx.id alone, so the ledger keeps no
//! payloads and the checks recompute what a fetched message must contain.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use shsd::client::{ClientError, OutgoingPart, ShsClient};
use shsd::pki::{ExamplePki, PkiItem};
use tokio::sync::watch;

use super::{SOCIALTJANST, identity};
use crate::harness::{BYGGLOV, PORTAL, message_with_tx};

/// Who sends to whom; sender task `i` is lane `i % 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Lane {
    PortalToBygglov,
    PortalToSocialtjanst,
    BygglovToPortal,
    SocialtjanstToPortal,
}

impl Lane {
    pub(super) fn of(index: usize) -> Lane {
        [
            Lane::PortalToBygglov,
            Lane::PortalToSocialtjanst,
            Lane::BygglovToPortal,
            Lane::SocialtjanstToPortal,
        ][index % 4]
    }

    pub(super) fn from(self) -> &'static str {
        match self {
            Lane::PortalToBygglov | Lane::PortalToSocialtjanst => PORTAL,
            Lane::BygglovToPortal => BYGGLOV,
            Lane::SocialtjanstToPortal => SOCIALTJANST,
        }
    }

    pub(super) fn to(self) -> &'static str {
        match self {
            Lane::PortalToBygglov => BYGGLOV,
            Lane::PortalToSocialtjanst => SOCIALTJANST,
            Lane::BygglovToPortal | Lane::SocialtjanstToPortal => PORTAL,
        }
    }

    pub(super) fn sender(self, pki: &ExamplePki) -> &PkiItem {
        identity(pki, self.from())
    }
}

/// What became of one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Sent, no answer yet.
    InFlight,
    /// 202: must survive everything.
    Accepted,
    /// The exchange broke off (a kill): may or may not be stored, but whole if it is.
    Unknown,
    /// Any other answer (never expected).
    Refused,
}

/// One ledger entry: the lane a tx.id was sent on, its outcome, and the local id of its
/// 202 receipt (a resend must be answered as a duplicate of that one).
#[derive(Debug, Clone)]
pub(super) struct Sent {
    pub(super) lane: Lane,
    pub(super) outcome: Outcome,
    pub(super) local_id: String,
}

/// What the senders share with the orchestration.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) ledger: Mutex<HashMap<String, Sent>>,
    pub(super) stop: AtomicBool,
    /// The latest daemon generation that is being killed: errors up to it are expected.
    pub(super) killed: AtomicU64,
    pub(super) unexpected: Mutex<Vec<String>>,
}

impl Shared {
    fn settle(&self, tx_id: &str, outcome: Outcome, local_id: String) {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sent) = ledger.get_mut(tx_id) {
            sent.outcome = outcome;
            sent.local_id = local_id;
        }
    }

    fn note(&self, what: String) {
        self.unexpected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(what);
    }
}

/// One sender: sends message after message to whichever daemon is live (`(generation,
/// port)`), on one kept-alive connection, and records each tx.id's outcome.
pub(super) async fn sender(
    index: usize,
    seed: u64,
    tls: Arc<rustls::ClientConfig>,
    mut live: watch::Receiver<Option<(u64, u16)>>,
    shared: Arc<Shared>,
) {
    let lane = Lane::of(index);
    let mut seq = 0u64;
    'daemons: loop {
        let (generation, port) = loop {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            if let Some(current) = *live.borrow_and_update() {
                break current;
            }
            if live.changed().await.is_err() {
                return;
            }
        };
        let url = format!("https://127.0.0.1:{port}");
        let client = ShsClient::new(&url, Arc::clone(&tls)).expect("client");
        loop {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            if live.has_changed().unwrap_or(true) {
                continue 'daemons;
            }
            seq += 1;
            let tx_id = tx_id(seed, index, seq);
            let parts = parts_for(&tx_id);
            let (body, boundary, _) = message_with_tx(lane.from(), lane.to(), &tx_id, &parts);
            shared.ledger.lock().unwrap().insert(
                tx_id.clone(),
                Sent {
                    lane,
                    outcome: Outcome::InFlight,
                    local_id: String::new(),
                },
            );
            let result = client.send(Bytes::from(body), &boundary).await;
            let broken = match result {
                Ok(receipt)
                    if receipt.status == 202 && receipt.tx_id == tx_id && !receipt.duplicate =>
                {
                    shared.settle(&tx_id, Outcome::Accepted, receipt.local_id);
                    false
                }
                Ok(receipt) => {
                    shared.note(format!("odd receipt for {tx_id}: {receipt:?}"));
                    shared.settle(&tx_id, Outcome::Refused, String::new());
                    true
                }
                Err(err @ ClientError::Refused { .. }) => {
                    shared.note(format!("send of {tx_id} refused: {err}"));
                    shared.settle(&tx_id, Outcome::Refused, String::new());
                    true
                }
                Err(err) => {
                    if shared.killed.load(Ordering::SeqCst) < generation {
                        shared.note(format!(
                            "send of {tx_id} failed while daemon {generation} was alive: {err}"
                        ));
                    }
                    shared.settle(&tx_id, Outcome::Unknown, String::new());
                    true
                }
            };
            if broken {
                // Wait for the next daemon (or the stop).
                if live.changed().await.is_err() {
                    return;
                }
                continue 'daemons;
            }
        }
    }
}

/// A unique tx.id per (seed, sender, sequence number): a UUID, as in practice.
pub(super) fn tx_id(seed: u64, sender: usize, seq: u64) -> String {
    uuid::Uuid::from_u64_pair(seed, ((sender as u64) << 40) | seq).to_string()
}

/// The data parts of message `tx_id`, from the tx.id alone: 1–3 parts of a few bytes up to
/// 384 KiB, a third of them over one store chunk (32 KiB), some exact chunk multiples.
pub(super) fn parts_for(tx_id: &str) -> Vec<OutgoingPart> {
    const KIB: u64 = 1024;
    let mut rng = XorShift::new(fnv1a(tx_id.as_bytes()));
    let count = match rng.below(100) {
        0..80 => 1,
        80..95 => 2,
        _ => 3,
    };
    (0..count)
        .map(|_| {
            let len = match rng.below(100) {
                0..5 => 32 * KIB * (1 + rng.below(3)),
                5..40 => 1 + rng.below(256),
                40..70 => 257 + rng.below(32 * KIB - 257),
                70..90 => 32 * KIB + 1 + rng.below(96 * KIB),
                _ => 128 * KIB + rng.below(256 * KIB),
            } as usize;
            let mut bytes = Vec::with_capacity(len + 8);
            while bytes.len() < len {
                bytes.extend_from_slice(&rng.next().to_le_bytes());
            }
            bytes.truncate(len);
            OutgoingPart {
                datapart_type: "bin".into(),
                content_type: "application/octet-stream".into(),
                filename: None,
                bytes,
            }
        })
        .collect()
}

/// Marsaglia's xorshift64: deterministic, good enough for sizes, bytes and delays.
pub(super) struct XorShift(u64);

impl XorShift {
    pub(super) fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(super) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
