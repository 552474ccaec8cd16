//! Helpers shared by the broker's unit tests: a test label and a stored one-part payload.

use crate::client::{OutgoingPart, build_message};
use crate::protocol::label::{Label, SequenceType};
use crate::store::{PayloadInfo, Store};

/// The test product.
pub(super) const PRODUCT: &str = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00";

/// An `event` label from `from` to `to` with one XML data part.
pub(super) fn label(from: &str, to: Option<&str>) -> Label {
    let part = OutgoingPart {
        datapart_type: "xml".into(),
        content_type: "text/xml".into(),
        filename: None,
        bytes: b"<ansokan/>".to_vec(),
    };
    build_message(from, to, PRODUCT, SequenceType::Event, &[part]).2
}

/// Uploads one data part of `content_type` holding `body`; not yet accepted.
pub(super) async fn upload(store: &dyn Store, content_type: &str, body: &[u8]) -> PayloadInfo {
    let mut writer = store.begin_payload().await.unwrap();
    let headers = format!("Content-Type: {content_type}\r\n").into_bytes();
    writer.start_part(headers).await.unwrap();
    writer.write(body).await.unwrap();
    writer.end_part().await.unwrap();
    writer.finish().await.unwrap()
}
