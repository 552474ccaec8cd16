//! `shsd demo`: the broker on the example setup, and one whole SHS round trip against it
//! over real mutual TLS — what a portal and a municipality's business system do.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::client::{OutgoingPart, ShsClient, build_message};
use crate::config::Config;
use crate::protocol::label::{Label, SequenceType};
use crate::protocol::management::ManagementDocument;
use crate::protocol::mime::{Limits, split_message};
use crate::protocol::urn::Address;

use super::client_commands::example_client;

/// The product of the demo: a building-permit application (any UUID would do).
pub const DEMO_PRODUCT: &str = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00";

/// Starts the broker, runs the round trip, then serves until `shutdown` (or stops at once
/// with `once`). Returns a one-line failure reason.
pub async fn run(config: Config, once: bool, shutdown: CancellationToken) -> Result<(), String> {
    let certs = config
        .tls
        .client_cas
        .first()
        .and_then(|ca| ca.parent())
        .map(Path::to_path_buf)
        .ok_or("the configuration names no client CA")?;
    let app = App::build(config).await.map_err(|err| err.to_string())?;
    let listener = app.bind().await.map_err(|err| err.to_string())?;
    let port = listener.local_addr().map_err(|err| err.to_string())?.port();
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(app.run(listener, server_stop.clone()));

    let result = round_trip(&certs, port).await;
    match &result {
        Ok(()) if !once => {
            println!("\nThe broker keeps running on https://localhost:{port}; Ctrl-C stops it.");
            shutdown.cancelled().await;
        }
        _ => {}
    }
    server_stop.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(40), server).await;
    result?;
    match stopped {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(err))) => Err(err.to_string()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("the broker did not stop in time".to_owned()),
    }
}

async fn round_trip(certs: &Path, port: u16) -> Result<(), String> {
    let url = format!("https://localhost:{port}");
    let as_client = |stem: &str| -> Result<ShsClient, String> {
        let tls = example_client(certs, stem).map_err(|err| err.to_string())?;
        ShsClient::new(&url, tls).map_err(|err| err.to_string())
    };
    let portal = as_client("client-portal")?;
    let bygglov = as_client("client-bygglov")?;
    let portal_box: Address = "urn:X-shs:5590000001".parse().map_err(|_| "address")?;
    let bygglov_box: Address = "urn:X-shs:2120000142.bygglov"
        .parse()
        .map_err(|_| "address")?;
    let e = |err: crate::client::ClientError| err.to_string();

    println!(
        "1. The e-service portal (5590000001) sends a building-permit application to urn:X-shs:2120000142.bygglov"
    );
    let application = OutgoingPart {
        datapart_type: "xml".to_owned(),
        content_type: "text/xml".to_owned(),
        filename: Some("bygglovsansökan.xml".to_owned()),
        bytes: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ansokan><sokande>Anna Andersson</sokande><fastighet>Exempla 1:23</fastighet><atgard>Nybyggnad av carport</atgard></ansokan>\n".as_bytes().to_vec(),
    };
    let (body, boundary, label) = build_message(
        "urn:X-shs:5590000001",
        Some("urn:X-shs:2120000142.bygglov"),
        DEMO_PRODUCT,
        SequenceType::Event,
        std::slice::from_ref(&application),
    );
    let receipt = portal.send(Bytes::from(body), &boundary).await.map_err(e)?;
    println!(
        "   -> {} Accepted, durable on disk: tx.id {} local.id {} arrival {}",
        receipt.status.as_u16(),
        receipt.tx_id,
        receipt.local_id,
        receipt.arrival
    );

    println!("2. The building-permit system lists its mailbox");
    let list = bygglov.list(&bygglov_box, "").await.map_err(e)?;
    for message in &list.messages {
        println!(
            "   -> {} from {} product {} size {}",
            message.tx_id,
            message.from.as_deref().unwrap_or("?"),
            message.product.as_deref().unwrap_or("?"),
            message.size.unwrap_or(0)
        );
    }
    if !list.messages.iter().any(|m| m.tx_id == label.tx_id) {
        return Err("the sent message is not listed".to_owned());
    }

    println!("3. It fetches the message");
    let fetched = bygglov.fetch(&bygglov_box, &label.tx_id).await.map_err(e)?;
    let split = split_message(&fetched, Some("message/rfc822"), Limits::default())
        .map_err(|err| err.to_string())?;
    let fetched_label = Label::parse(&split.label).map_err(|err| err.to_string())?;
    let part = split.parts.first().ok_or("no data part")?;
    println!(
        "   -> {} bytes; data part {:?} byte-identical: {}; history: {}",
        fetched.len(),
        part.0.filename().unwrap_or_default(),
        part.1 == application.bytes,
        fetched_label
            .history
            .iter()
            .map(|h| format!(
                "{} {} {}",
                h.node_id,
                h.datetime,
                h.comment.as_deref().unwrap_or("")
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );

    println!("4. It acknowledges the message");
    bygglov.ack(&bygglov_box, &label.tx_id).await.map_err(e)?;
    println!("   -> 200 OK; the message leaves the mailbox");

    println!("5. The portal lists its own mailbox and finds the delivery confirmation");
    let confirms = portal
        .list(&portal_box, "producttype=confirm")
        .await
        .map_err(e)?;
    let confirm = confirms
        .messages
        .iter()
        .find(|m| m.corr_id.as_deref() == Some(label.corr_id.as_str()))
        .ok_or("no confirm for the application")?;
    let message = portal.fetch(&portal_box, &confirm.tx_id).await.map_err(e)?;
    let split = split_message(&message, Some("message/rfc822"), Limits::default())
        .map_err(|err| err.to_string())?;
    let document = ManagementDocument::parse(&split.parts.first().ok_or("no confirm document")?.1)
        .map_err(|err| err.to_string())?;
    println!(
        "   -> confirm {} for corr.id {} content.id {} ({:?})",
        confirm.tx_id,
        document.corr_id,
        document.content_id,
        document.kind()
    );
    portal.ack(&portal_box, &confirm.tx_id).await.map_err(e)?;
    println!("   -> acknowledged. Round trip complete.");
    Ok(())
}
