//! The `shs.message-list` 1.2.01 document answered by list requests (spec §3.3).
//!
//! The server builds one [`ListedMessage`] per message from its stored label
//! ([`ListedMessage::from_label`]) and writes the list with [`MessageList::to_xml`]; the
//! client reads any node's list with [`MessageList::parse`].

use crate::protocol::ProtocolError;
use crate::protocol::label::{
    self, Data, Label, Meta, SequenceType, Status, data_from, enum_attr, meta_from,
};
use crate::protocol::xml::{self, Element, XmlWriter, error, quote, xml_error};

const DOC: &str = "shs.message-list";

/// An `shs.message-list`: the messages of a mailbox, in the order the server chose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageList {
    /// `message*`.
    pub messages: Vec<ListedMessage>,
}

/// One `message` of a list: the label's addressing in attributes, its `meta`, `subject`
/// and `data` as children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMessage {
    /// `tx.id` (required).
    pub tx_id: String,
    /// `timestamp` (required): the label's datetime (spec §3.3).
    pub timestamp: String,
    /// `corr.id`.
    pub corr_id: Option<String>,
    /// `content.id`.
    pub content_id: Option<String>,
    /// `size`: the message size in bytes.
    pub size: Option<u64>,
    /// `originator`.
    pub originator: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `end-recipient`.
    pub end_recipient: Option<String>,
    /// `product`.
    pub product: Option<String>,
    /// `sequence-type` (required).
    pub sequence_type: SequenceType,
    /// `status`, default `production`.
    pub status: Status,
    /// `meta*`.
    pub meta: Vec<Meta>,
    /// `subject`.
    pub subject: Option<String>,
    /// `data*`.
    pub data: Vec<Data>,
}

impl ListedMessage {
    /// The list entry for a stored message: its label's addressing, ids, meta, subject and
    /// data descriptions as written, with the message `size` in bytes and the `timestamp`
    /// to show (spec §3.3 uses the label's datetime, `label.datetime`).
    pub fn from_label(label: &Label, size: u64, timestamp: String) -> ListedMessage {
        ListedMessage {
            tx_id: label.tx_id.clone(),
            timestamp,
            corr_id: Some(label.corr_id.clone()),
            content_id: Some(label.content.content_id.clone()),
            size: Some(size),
            originator: label.originator.as_ref().map(|o| o.value.clone()),
            from: label.from.as_ref().map(|f| f.value.clone()),
            to: label.to.as_ref().map(|t| t.value.clone()),
            end_recipient: label.end_recipient.as_ref().map(|e| e.value.clone()),
            product: Some(label.product.value.clone()),
            sequence_type: label.sequence_type,
            status: label.status,
            meta: label.meta.clone(),
            subject: label.subject.clone(),
            data: label.data().to_vec(),
        }
    }
}

impl MessageList {
    /// The list as UTF-8 XML (`shs.message-list` version 1.2, DTD 1.2.01).
    pub fn to_xml(&self) -> Vec<u8> {
        let mut w = XmlWriter::document(DOC, "shs-message-list-1.2.01.dtd");
        if self.messages.is_empty() {
            w.empty(DOC, &[("version", Some("1.2"))]);
            return w.into_bytes();
        }
        w.start(DOC, &[("version", Some("1.2"))]);
        for m in &self.messages {
            let size = m.size.map(|s| s.to_string());
            let attrs = [
                ("tx.id", Some(m.tx_id.as_str())),
                ("timestamp", Some(m.timestamp.as_str())),
                ("corr.id", m.corr_id.as_deref()),
                ("content.id", m.content_id.as_deref()),
                ("size", size.as_deref()),
                ("originator", m.originator.as_deref()),
                ("from", m.from.as_deref()),
                ("to", m.to.as_deref()),
                ("end-recipient", m.end_recipient.as_deref()),
                ("product", m.product.as_deref()),
                ("sequence-type", Some(m.sequence_type.as_str())),
                ("status", Some(m.status.as_str())),
            ];
            if m.meta.is_empty() && m.subject.is_none() && m.data.is_empty() {
                w.empty("message", &attrs);
                continue;
            }
            w.start("message", &attrs);
            for meta in &m.meta {
                label::write_meta(&mut w, meta);
            }
            if let Some(subject) = &m.subject {
                w.text("subject", &[], subject);
            }
            for data in &m.data {
                label::write_data(&mut w, data);
            }
            w.end("message");
        }
        w.end(DOC);
        w.into_bytes()
    }

    /// Parses an `shs.message-list` (UTF-8, ISO-8859-1 or US-ASCII by its XML declaration;
    /// DOCTYPE and comments ignored, entities refused, as for labels). Unknown attributes
    /// are ignored; unknown elements are refused.
    pub fn parse(bytes: &[u8]) -> Result<MessageList, ProtocolError> {
        let decoded = xml::decode(DOC, bytes)?;
        let root = xml::parse(DOC, &decoded)?.root;
        root.no_text(DOC)?;
        let messages = root
            .children
            .iter()
            .map(|el| match el.name {
                "message" => message_from(el),
                other => Err(xml_error!(DOC, "unknown element <{other}> in <{DOC}>")),
            })
            .collect::<Result<_, _>>()?;
        Ok(MessageList { messages })
    }
}

/// `message`: `(meta*, subject?, data*)` and its attributes.
fn message_from(el: &Element) -> Result<ListedMessage, ProtocolError> {
    el.no_text(DOC)?;
    let mut meta = Vec::new();
    let mut subject = None;
    let mut data = Vec::new();
    for child in &el.children {
        match child.name {
            "meta" if subject.is_some() || !data.is_empty() => {
                return Err(error(DOC, "<meta> is out of order in <message>"));
            }
            "meta" => meta.push(meta_from(DOC, child)?),
            "subject" if subject.is_some() => return Err(error(DOC, "duplicate <subject>")),
            "subject" if !data.is_empty() => {
                return Err(error(DOC, "<subject> is out of order in <message>"));
            }
            "subject" => subject = Some(child.text_only(DOC)?),
            "data" => data.push(data_from(DOC, child)?),
            other => return Err(xml_error!(DOC, "unknown element <{other}> in <message>")),
        }
    }
    let size = match el.attr("size") {
        None => None,
        Some(size) => Some(
            size.parse::<u64>()
                .map_err(|_| xml_error!(DOC, "size {} is not a number of bytes", quote(size)))?,
        ),
    };
    Ok(ListedMessage {
        tx_id: el.required_attr(DOC, "tx.id")?.to_owned(),
        timestamp: el.required_attr(DOC, "timestamp")?.to_owned(),
        corr_id: el.attr_owned("corr.id"),
        content_id: el.attr_owned("content.id"),
        size,
        originator: el.attr_owned("originator"),
        from: el.attr_owned("from"),
        to: el.attr_owned("to"),
        end_recipient: el.attr_owned("end-recipient"),
        product: el.attr_owned("product"),
        sequence_type: enum_attr(DOC, el, "sequence-type")?
            .ok_or_else(|| error(DOC, "missing attribute sequence-type on <message>"))?,
        status: enum_attr(DOC, el, "status")?.unwrap_or_default(),
        meta,
        subject,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_message() -> ListedMessage {
        ListedMessage {
            tx_id: "tx-1".into(),
            timestamp: "2024-01-02T03:04:05".into(),
            corr_id: Some("corr-1".into()),
            content_id: Some("content-1".into()),
            size: Some(1234),
            originator: Some("urn:X-shs:1111111111".into()),
            from: Some("urn:X-shs:2222222222".into()),
            to: Some("urn:X-shs:3333333333.sub".into()),
            end_recipient: Some("urn:X-shs:4444444444".into()),
            product: Some("urn:X-shs:00000000-0000-0000-0000-000000000000".into()),
            sequence_type: SequenceType::Request,
            status: Status::Test,
            meta: vec![Meta {
                name: "m".into(),
                value: "åäö & <v>".into(),
            }],
            subject: Some("Ärende \"1\"".into()),
            data: vec![Data {
                datapart_type: Some("xml".into()),
                filename: Some("a b.xml".into()),
                no_of_bytes: Some("10".into()),
                no_of_records: Some("1".into()),
            }],
        }
    }

    fn minimal_message() -> ListedMessage {
        ListedMessage {
            tx_id: "tx-2".into(),
            timestamp: "t".into(),
            corr_id: None,
            content_id: None,
            size: None,
            originator: None,
            from: None,
            to: None,
            end_recipient: None,
            product: None,
            sequence_type: SequenceType::Adm,
            status: Status::Production,
            meta: vec![],
            subject: None,
            data: vec![],
        }
    }

    fn reason(result: Result<MessageList, ProtocolError>) -> String {
        match result {
            Err(ProtocolError::Xml { document, reason }) => {
                assert_eq!(document, DOC);
                reason
            }
            other => panic!("expected an XML error, got {other:?}"),
        }
    }

    #[test]
    fn lists_round_trip() {
        for list in [
            MessageList::default(),
            MessageList {
                messages: vec![full_message(), minimal_message(), full_message()],
            },
        ] {
            let xml = list.to_xml();
            assert!(xml.starts_with(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
            assert_eq!(MessageList::parse(&xml), Ok(list));
        }
    }

    #[test]
    fn every_attribute_is_written_in_dtd_order() {
        let list = MessageList {
            messages: vec![full_message()],
        };
        let xml = String::from_utf8(list.to_xml()).unwrap();
        assert!(
            xml.contains(
                "<message tx.id=\"tx-1\" timestamp=\"2024-01-02T03:04:05\" corr.id=\"corr-1\" \
                 content.id=\"content-1\" size=\"1234\" originator=\"urn:X-shs:1111111111\" \
                 from=\"urn:X-shs:2222222222\" to=\"urn:X-shs:3333333333.sub\" \
                 end-recipient=\"urn:X-shs:4444444444\" \
                 product=\"urn:X-shs:00000000-0000-0000-0000-000000000000\" \
                 sequence-type=\"request\" status=\"test\">\n"
            ),
            "{xml}"
        );
        let meta = xml
            .find("<meta name=\"m\">åäö &amp; &lt;v&gt;</meta>")
            .unwrap();
        let subject = xml.find("<subject>Ärende \"1\"</subject>").unwrap();
        let data = xml
            .find("<data datapartType=\"xml\" filename=\"a b.xml\"")
            .unwrap();
        assert!(meta < subject && subject < data);
    }

    #[test]
    fn from_label_copies_what_a_list_shows() {
        let label = Label::parse(
            r#"<shs.label tx.id="tx-1" corr.id="corr-1" sequence-type="request" status="test">
              <originator>urn:X-shs:1111111111</originator>
              <from>urn:X-shs:2222222222</from>
              <to>urn:X-shs:3333333333.sub</to>
              <end-recipient>urn:X-shs:4444444444</end-recipient>
              <product>urn:X-shs:00000000-0000-0000-0000-000000000000</product>
              <meta name="m">åäö &amp; &lt;v&gt;</meta>
              <subject>Ärende "1"</subject>
              <datetime>2024-01-02T03:04:05</datetime>
              <content content.id="content-1">
                <data datapartType="xml" filename="a b.xml" no-of-bytes="10" no-of-records="1"/>
              </content>
            </shs.label>"#
                .as_bytes(),
        )
        .unwrap();
        let listed = ListedMessage::from_label(&label, 1234, label.datetime.clone());
        assert_eq!(listed, full_message());
    }

    #[test]
    fn axel_list_response_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/axel/messages/listMessagesResponse.xml"
        );
        let Ok(bytes) = std::fs::read(path) else {
            eprintln!("reference messages absent: skipped");
            return;
        };
        let list = MessageList::parse(&bytes).unwrap();
        assert_eq!(list.messages.len(), 3);
        let first = &list.messages[0];
        assert_eq!(first.tx_id, "e41a8be7-5e81-46cd-8418-11a250348c29");
        assert_eq!(first.timestamp, "2013-06-01T23:44:05");
        assert_eq!(first.size, Some(0));
        assert_eq!(first.from.as_deref(), Some("urn:X-shs:0000000000"));
        assert_eq!(first.to.as_deref(), Some("urn:X-shs:1111111111"));
        assert_eq!(first.sequence_type, SequenceType::Request);
        assert_eq!(first.status, Status::Production);
        assert_eq!(
            (first.content_id.as_ref(), first.originator.as_ref()),
            (None, None)
        );
        assert_eq!(first.data[0].filename.as_deref(), Some("config.properties"));
        assert_eq!(list.messages[2].data[0].filename, None);
        assert_eq!(MessageList::parse(&list.to_xml()), Ok(list));
    }

    #[test]
    fn every_error_path_has_its_reason() {
        let good = "<shs.message-list version=\"1.2\"><message tx.id=\"t\" timestamp=\"s\" \
                    sequence-type=\"event\" size=\"1\"><meta name=\"n\">v</meta>\
                    <subject>s</subject><data datapartType=\"x\"/></message></shs.message-list>";
        assert!(MessageList::parse(good.as_bytes()).is_ok());
        let cases = [
            ("tx.id=\"t\" ", "", "missing attribute tx.id on <message>"),
            (
                "timestamp=\"s\" ",
                "",
                "missing attribute timestamp on <message>",
            ),
            (
                "sequence-type=\"event\" ",
                "",
                "missing attribute sequence-type on <message>",
            ),
            (
                "\"event\"",
                "\"events\"",
                "invalid sequence-type \"events\" on <message>",
            ),
            (
                "size=\"1\"",
                "size=\"1\" status=\"x\"",
                "invalid status \"x\" on <message>",
            ),
            (
                "size=\"1\"",
                "size=\"-1\"",
                "size \"-1\" is not a number of bytes",
            ),
            (
                "<subject>s</subject>",
                "<subject>s</subject><meta name=\"a\"/>",
                "<meta> is out of order",
            ),
            (
                "<subject>s</subject>",
                "<subject>s</subject><subject>t</subject>",
                "duplicate <subject>",
            ),
            ("<subject>s</subject>", "", "ok"),
            (
                "<subject>s</subject><data datapartType=\"x\"/>",
                "<data/><subject>t</subject>",
                "<subject> is out of order",
            ),
            (
                "<meta name=\"n\">v</meta>",
                "<meta>v</meta>",
                "missing attribute name on <meta>",
            ),
            (
                "<meta name=\"n\">v</meta>",
                "<note/>",
                "unknown element <note> in <message>",
            ),
            (
                "</message>",
                "</message><msg/>",
                "unknown element <msg> in <shs.message-list>",
            ),
            (
                "<data datapartType=\"x\"/>",
                "<data>x</data>",
                "unexpected text \"x\" in <data>",
            ),
            (
                "</shs.message-list>",
                "</shs.message-list>x",
                "trailing content",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(good.contains(from), "{from}");
            let text = good.replace(from, to);
            if expected == "ok" {
                assert!(MessageList::parse(text.as_bytes()).is_ok());
                continue;
            }
            let reason = reason(MessageList::parse(text.as_bytes()));
            assert!(
                reason.contains(expected),
                "{to}: {reason:?} lacks {expected:?}"
            );
        }
    }
}
