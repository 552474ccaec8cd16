//! Writing an `shs.label`: UTF-8, canonical DTD order, every attribute the model holds.

use super::{ContentParts, Data, History, Label, Meta};
use crate::protocol::xml::XmlWriter;

impl Label {
    /// The label as a UTF-8 XML document with declaration and DOCTYPE, elements in DTD
    /// order, every attribute present in the model written (`transfer-type` and `status`
    /// always, as Axel does). [`Label::parse`] gives back an equal label for every label it
    /// could have produced; characters XML cannot hold are written as U+FFFD.
    ///
    /// The content id is written as `content.id`, or `uuid` for a version 1.1 label.
    /// This builds a new label (e.g. a confirm or error); a received label is never
    /// rewritten, only extended with [`super::append_history`].
    pub fn to_xml(&self) -> Vec<u8> {
        let dtd = if self.version == "1.1" {
            "shs-label-1.1.dtd"
        } else {
            "shs-label-1.2.dtd"
        };
        let mut w = XmlWriter::document("shs.label", dtd);
        w.start(
            "shs.label",
            &[
                ("version", Some(self.version.as_str())),
                ("tx.id", Some(self.tx_id.as_str())),
                ("corr.id", Some(self.corr_id.as_str())),
                ("shs.agreement", self.shs_agreement.as_deref()),
                ("transfer-type", Some(self.transfer_type.as_str())),
                ("message-type", self.message_type.map(|m| m.as_str())),
                ("document-type", self.document_type.map(|d| d.as_str())),
                ("sequence-type", Some(self.sequence_type.as_str())),
                ("status", Some(self.status.as_str())),
            ],
        );
        if let Some(o) = &self.originator {
            let attrs = [
                ("name", o.name.as_deref()),
                ("labeledURI", o.labeled_uri.as_deref()),
            ];
            w.text("originator", &attrs, &o.value);
        }
        if let Some(f) = &self.from {
            let attrs = [
                ("commonName", f.common_name.as_deref()),
                ("e-mail", f.e_mail.as_deref()),
                ("labeledURI", f.labeled_uri.as_deref()),
            ];
            w.text("from", &attrs, &f.value);
        }
        if let Some(t) = &self.to {
            w.text("to", &[("commonName", t.common_name.as_deref())], &t.value);
        }
        if let Some(e) = &self.end_recipient {
            let attrs = [
                ("name", e.name.as_deref()),
                ("labeledURI", e.labeled_uri.as_deref()),
            ];
            w.text("end-recipient", &attrs, &e.value);
        }
        let p = &self.product;
        let attrs = [
            ("commonName", p.common_name.as_deref()),
            ("labeledURI", p.labeled_uri.as_deref()),
        ];
        w.text("product", &attrs, &p.value);
        for meta in &self.meta {
            write_meta(&mut w, meta);
        }
        if let Some(subject) = &self.subject {
            w.text("subject", &[], subject);
        }
        w.text("datetime", &[], &self.datetime);

        let id_name = if self.version == "1.1" {
            "uuid"
        } else {
            "content.id"
        };
        w.start(
            "content",
            &[(id_name, Some(self.content.content_id.as_str()))],
        );
        match &self.content.parts {
            ContentParts::Data(data) => data.iter().for_each(|d| write_data(&mut w, d)),
            ContentParts::Compound { no_of_parts } => {
                w.empty("compound", &[("no-of-parts", Some(no_of_parts.as_str()))]);
            }
        }
        if let Some(comment) = &self.content.comment {
            w.text("comment", &[], comment);
        }
        w.end("content");
        for history in &self.history {
            write_history(&mut w, history);
        }
        w.end("shs.label");
        w.into_bytes()
    }
}

/// `<meta name="…">value</meta>` (shared with the message list).
pub(crate) fn write_meta(w: &mut XmlWriter, meta: &Meta) {
    w.text("meta", &[("name", Some(meta.name.as_str()))], &meta.value);
}

/// `<data …/>` (shared with the message list).
pub(crate) fn write_data(w: &mut XmlWriter, data: &Data) {
    w.empty(
        "data",
        &[
            ("datapartType", data.datapart_type.as_deref()),
            ("filename", data.filename.as_deref()),
            ("no-of-bytes", data.no_of_bytes.as_deref()),
            ("no-of-records", data.no_of_records.as_deref()),
        ],
    );
}

/// `<history …>` with its `datetime` and `comment`, attributes in DTD order (1.2 first,
/// then the 1.1-only `product.id` and `corr.id`).
pub(crate) fn write_history(w: &mut XmlWriter, h: &History) {
    w.start(
        "history",
        &[
            ("node.id", Some(h.node_id.as_str())),
            ("content.id", h.content_id.as_deref()),
            ("tx.id", h.tx_id.as_deref()),
            ("from", h.from.as_deref()),
            ("to", h.to.as_deref()),
            ("local.id", h.local_id.as_deref()),
            ("shs.agreement", h.shs_agreement.as_deref()),
            ("product.id", h.product_id.as_deref()),
            ("corr.id", h.corr_id.as_deref()),
        ],
    );
    w.text("datetime", &[], &h.datetime);
    if let Some(comment) = &h.comment {
        w.text("comment", &[], comment);
    }
    w.end("history");
}
