//! Building an SHS message to send: a label and data parts as one multipart body.

use crate::protocol::label::{
    Content, ContentParts, Data, From, Label, Product, SequenceType, Status, To, TransferType,
};
use crate::protocol::mime::{MessageWriter, PartHeaders, new_boundary};

/// One data part to send.
#[derive(Debug, Clone)]
pub struct OutgoingPart {
    /// `datapartType` in the label.
    pub datapart_type: String,
    /// The MIME content type, e.g. `text/xml` or `application/pdf`.
    pub content_type: String,
    /// The file name (may hold Swedish characters; sent RFC 2231-encoded).
    pub filename: Option<String>,
    /// The bytes, sent with `Content-Transfer-Encoding: binary`.
    pub bytes: Vec<u8>,
}

/// A complete asynchronous message from `from` to `to` of `product`: returns the body, its
/// boundary and the label. `to` of `None` makes a product-addressed message.
pub fn build_message(
    from: &str,
    to: Option<&str>,
    product: &str,
    sequence_type: SequenceType,
    parts: &[OutgoingPart],
) -> (Vec<u8>, String, Label) {
    let tx_id = uuid::Uuid::new_v4().to_string();
    let label = Label {
        version: "1.2".to_owned(),
        corr_id: tx_id.clone(),
        tx_id,
        shs_agreement: None,
        transfer_type: TransferType::Asynch,
        message_type: None,
        document_type: None,
        sequence_type,
        status: Status::Production,
        originator: None,
        from: Some(From {
            value: from.to_owned(),
            ..From::default()
        }),
        to: to.map(|to| To {
            value: to.to_owned(),
            common_name: None,
        }),
        end_recipient: None,
        product: Product {
            value: product.to_owned(),
            ..Product::default()
        },
        meta: Vec::new(),
        subject: None,
        datetime: crate::clock::shs_datetime(crate::clock::now()),
        content: Content {
            content_id: uuid::Uuid::new_v4().to_string(),
            parts: ContentParts::Data(
                parts
                    .iter()
                    .map(|part| Data {
                        datapart_type: Some(part.datapart_type.clone()),
                        filename: part.filename.clone(),
                        no_of_bytes: Some(part.bytes.len().to_string()),
                        no_of_records: None,
                    })
                    .collect(),
            ),
            comment: None,
        },
        history: Vec::new(),
    };
    let (body, boundary) = write_message(&label, parts);
    (body, boundary, label)
}

/// Writes `label` and `parts` as a bare multipart body; returns it with its boundary.
pub fn write_message(label: &Label, parts: &[OutgoingPart]) -> (Vec<u8>, String) {
    let boundary = new_boundary();
    let writer = MessageWriter::new(boundary.clone());
    let label_headers = PartHeaders::from_fields(&[
        ("Content-Type", "text/xml; charset=UTF-8"),
        ("Content-Transfer-Encoding", "binary"),
    ]);
    let mut body = writer.label_part(&label_headers, &label.to_xml());
    for part in parts {
        let disposition = match &part.filename {
            Some(name) => format!("attachment; filename*=UTF-8''{}", rfc2231(name)),
            None => "attachment".to_owned(),
        };
        let headers = PartHeaders::from_fields(&[
            ("Content-Type", part.content_type.as_str()),
            ("Content-Transfer-Encoding", "binary"),
            ("Content-Disposition", disposition.as_str()),
        ]);
        body.extend(writer.part_head(&headers));
        body.extend(&part.bytes);
    }
    body.extend(writer.end());
    (body, String::from_utf8_lossy(&boundary).into_owned())
}

/// Percent-encodes a file name for an RFC 2231 `filename*` parameter.
fn rfc2231(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mime::{Limits, split_message};

    #[test]
    fn built_messages_parse_back_with_their_parts_and_names() {
        let parts = [
            OutgoingPart {
                datapart_type: "xml".into(),
                content_type: "text/xml".into(),
                filename: Some("ansökan åäö.xml".into()),
                bytes: b"<ansokan/>".to_vec(),
            },
            OutgoingPart {
                datapart_type: "pdf".into(),
                content_type: "application/pdf".into(),
                filename: None,
                bytes: vec![0, 1, 2, 255],
            },
        ];
        let (body, boundary, label) = build_message(
            "urn:X-shs:5590000001",
            Some("urn:X-shs:2120000142.bygglov"),
            "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00",
            SequenceType::Event,
            &parts,
        );
        let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
        let split = split_message(&body, Some(&content_type), Limits::default()).unwrap();
        assert_eq!(Label::parse(&split.label).unwrap(), label);
        assert_eq!(split.parts.len(), 2);
        assert_eq!(
            split.parts[0].0.filename().as_deref(),
            Some("ansökan åäö.xml")
        );
        assert_eq!(split.parts[0].1, b"<ansokan/>");
        assert_eq!(split.parts[1].1, vec![0, 1, 2, 255]);
        assert!(crate::protocol::validate::check_label(&label).is_ok());
    }
}
