//! Several nodes on one PostgreSQL database (issue 8): nodes in this process sharing a
//! database ([`in_process`]), a database restart under load ([`db_restart`]), and three
//! real `shsd` processes with one killed by SIGKILL mid-load ([`processes`]).
//!
//! The database is a throwaway server that the tests start
//! (`shsd::store::postgres::test_server`: Debian's `initdb` + `pg_ctl` in a temporary
//! directory on a free loopback port).

mod db_restart;
mod in_process;
mod processes;

use std::sync::Arc;

use bytes::Bytes;
use shsd::client::ShsClient;
use shsd::pki::{ExamplePki, PkiItem};
use shsd::protocol::mime::{Limits, split_message};

use crate::harness::{BYGGLOV, PORTAL, message_with_tx, xml_part};

/// The data part of message `tx_id`: derived from the tx.id, so no test keeps payloads.
fn content_of(tx_id: &str) -> Vec<u8> {
    format!("<ansökan id=\"{tx_id}\">{}</ansökan>", "å".repeat(200)).into_bytes()
}

/// Sends message `tx_id` from the portal to bygglov through `client`.
async fn send_tx(
    client: &ShsClient,
    tx_id: &str,
) -> Result<shsd::client::SendReceipt, shsd::client::ClientError> {
    let (body, boundary, _) =
        message_with_tx(PORTAL, BYGGLOV, tx_id, &[xml_part(&content_of(tx_id))]);
    client.send(Bytes::from(body), &boundary).await
}

/// Checks that a fetched message carries exactly the data of `tx_id`.
fn assert_content(fetched: &[u8], tx_id: &str) {
    let split = split_message(fetched, Some("message/rfc822"), Limits::default())
        .unwrap_or_else(|err| panic!("fetched {tx_id} does not parse: {err}"));
    assert_eq!(split.parts.len(), 1, "{tx_id}");
    assert_eq!(split.parts[0].1, content_of(tx_id), "content of {tx_id}");
}

/// A client of the node at `base` (`https://localhost:PORT`) with `identity`.
fn client(pki: &ExamplePki, identity: &PkiItem, base: &str) -> ShsClient {
    let tls: Arc<rustls::ClientConfig> = pki.client_config(Some(identity)).expect("tls");
    ShsClient::new(base, tls).expect("client")
}

fn address(text: &str) -> shsd::protocol::urn::Address {
    text.parse().expect("address")
}
