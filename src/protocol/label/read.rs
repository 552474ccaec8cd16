//! Reading an `shs.label` (spec §4.2).
//!
//! Structure is checked against the DTD as far as a broker needs it: the children of
//! `shs.label` in DTD order with no duplicates of single elements, the required elements
//! (`product`, `datetime`, `content`) and attributes (`tx.id`, `corr.id`, `sequence-type`),
//! the enumerations, and the content models of `content` and `history`. Each failure is a
//! [`ProtocolError::Xml`] for `shs.label` (reported as `IllegalMessageStructure`).
//!
//! Deliberate choices:
//! - Neither `from` nor `originator` is accepted here: that is `IllegalSender`, decided
//!   by [`crate::protocol::validate`].
//! - `tx.id` and `corr.id` must be NMTOKENs, as the DTD says: they become storage keys and
//!   URL segments. Other NMTOKEN attributes are kept as written (Axel writes a `local.id`
//!   with a line break in it).
//! - Unknown attributes are ignored (they carry nothing a broker acts on, and refusing them
//!   would break on harmless extensions); unknown child elements of `shs.label`,
//!   `content` and `history` are refused, since the broker could not keep the round-trip
//!   promise for content it does not model.
//! - Requirements the field does not honour are not enforced: `from/@commonName` and
//!   `data/@datapartType` may be missing (and `datapartType` is absent in 1.1).
//! - 1.1 labels: `content/@uuid` is read as the content id (`content.id` wins if both are
//!   present); `history/@product.id` and `@corr.id` are kept.

use super::{
    Content, ContentParts, Data, EndRecipient, From, History, Label, Meta, Originator, Product, To,
};
use crate::protocol::ProtocolError;
use crate::protocol::xml::{self, Element, error, quote};
use std::str::FromStr;

const DOC: &str = "shs.label";

/// The children of `shs.label` in DTD order; `meta` and `history` repeat.
const ORDER: [&str; 10] = [
    "originator",
    "from",
    "to",
    "end-recipient",
    "product",
    "meta",
    "subject",
    "datetime",
    "content",
    "history",
];

impl Label {
    /// Parses an `shs.label` document from its bytes, in the encoding its XML declaration
    /// names (a MIME charset is not consulted).
    ///
    /// Every element and attribute of the DTD is kept, text as written (decoded, never
    /// trimmed); absent attributes take their DTD defaults (`version` 1.2, `transfer-type`
    /// asynch, `status` production) except `message-type`/`document-type`, which stay
    /// `None`. See the module documentation for what is refused.
    pub fn parse(bytes: &[u8]) -> Result<Label, ProtocolError> {
        let decoded = xml::decode(DOC, bytes)?;
        let document = xml::parse(DOC, &decoded)?;
        label_from(&document.root)
    }
}

/// Interprets the root element of a label.
pub(crate) fn label_from(root: &Element) -> Result<Label, ProtocolError> {
    root.no_text(DOC)?;
    let mut builder = Children::default();
    let mut last: Option<usize> = None;
    for child in &root.children {
        let slot = ORDER
            .iter()
            .position(|name| *name == child.name)
            .ok_or_else(|| {
                error(
                    DOC,
                    format!("unknown element <{}> in <shs.label>", child.name),
                )
            })?;
        if let Some(last) = last {
            let repeats = matches!(ORDER[slot], "meta" | "history");
            if slot < last {
                return Err(error(
                    DOC,
                    format!(
                        "<{}> is out of order (after <{}>)",
                        ORDER[slot], ORDER[last]
                    ),
                ));
            }
            if slot == last && !repeats {
                return Err(error(DOC, format!("duplicate <{}>", ORDER[slot])));
            }
        }
        last = Some(slot);
        builder.add(child)?;
    }

    let missing = |name: &str| error(DOC, format!("missing <{name}>"));
    Ok(Label {
        version: root
            .attr_owned("version")
            .unwrap_or_else(|| "1.2".to_owned()),
        tx_id: id_attr(root, "tx.id")?,
        corr_id: id_attr(root, "corr.id")?,
        shs_agreement: root.attr_owned("shs.agreement"),
        transfer_type: enum_attr(DOC, root, "transfer-type")?.unwrap_or_default(),
        message_type: enum_attr(DOC, root, "message-type")?,
        document_type: enum_attr(DOC, root, "document-type")?,
        sequence_type: enum_attr(DOC, root, "sequence-type")?
            .ok_or_else(|| error(DOC, "missing attribute sequence-type on <shs.label>"))?,
        status: enum_attr(DOC, root, "status")?.unwrap_or_default(),
        originator: builder.originator,
        from: builder.from,
        to: builder.to,
        end_recipient: builder.end_recipient,
        product: builder.product.ok_or_else(|| missing("product"))?,
        meta: builder.meta,
        subject: builder.subject,
        datetime: builder.datetime.ok_or_else(|| missing("datetime"))?,
        content: builder.content.ok_or_else(|| missing("content"))?,
        history: builder.history,
    })
}

/// The label's children as they are found; order is checked by the caller.
#[derive(Default)]
struct Children {
    originator: Option<Originator>,
    from: Option<From>,
    to: Option<To>,
    end_recipient: Option<EndRecipient>,
    product: Option<Product>,
    meta: Vec<Meta>,
    subject: Option<String>,
    datetime: Option<String>,
    content: Option<Content>,
    history: Vec<History>,
}

impl Children {
    fn add(&mut self, el: &Element) -> Result<(), ProtocolError> {
        match el.name {
            "originator" => {
                self.originator = Some(Originator {
                    value: el.text_only(DOC)?,
                    name: el.attr_owned("name"),
                    labeled_uri: el.attr_owned("labeledURI"),
                });
            }
            "from" => {
                self.from = Some(From {
                    value: el.text_only(DOC)?,
                    common_name: el.attr_owned("commonName"),
                    e_mail: el.attr_owned("e-mail"),
                    labeled_uri: el.attr_owned("labeledURI"),
                });
            }
            "to" => {
                self.to = Some(To {
                    value: el.text_only(DOC)?,
                    common_name: el.attr_owned("commonName"),
                });
            }
            "end-recipient" => {
                self.end_recipient = Some(EndRecipient {
                    value: el.text_only(DOC)?,
                    name: el.attr_owned("name"),
                    labeled_uri: el.attr_owned("labeledURI"),
                });
            }
            "product" => {
                self.product = Some(Product {
                    value: el.text_only(DOC)?,
                    common_name: el.attr_owned("commonName"),
                    labeled_uri: el.attr_owned("labeledURI"),
                });
            }
            "meta" => self.meta.push(meta_from(DOC, el)?),
            "subject" => self.subject = Some(el.text_only(DOC)?),
            "datetime" => self.datetime = Some(el.text_only(DOC)?),
            "content" => self.content = Some(content_from(el)?),
            "history" => self.history.push(history_from(el)?),
            other => {
                return Err(error(
                    DOC,
                    format!("unknown element <{other}> in <shs.label>"),
                ));
            }
        }
        Ok(())
    }
}

/// A required id attribute (`tx.id`, `corr.id`): present and an NMTOKEN.
fn id_attr(el: &Element, name: &str) -> Result<String, ProtocolError> {
    let value = el.required_attr(DOC, name)?;
    if is_nmtoken(value) {
        Ok(value.to_owned())
    } else {
        Err(error(
            DOC,
            format!("attribute {name} is not an NMTOKEN: {}", quote(value)),
        ))
    }
}

/// An enumerated attribute, `None` when absent, an error when outside its enumeration.
pub(crate) fn enum_attr<T: FromStr>(
    document: &'static str,
    el: &Element,
    name: &str,
) -> Result<Option<T>, ProtocolError> {
    match el.attr(name) {
        None => Ok(None),
        Some(value) => value.parse().map(Some).map_err(|_| {
            error(
                document,
                format!("invalid {name} {} on <{}>", quote(value), el.name),
            )
        }),
    }
}

/// `meta` with its required `name` (shared with the message list).
pub(crate) fn meta_from(document: &'static str, el: &Element) -> Result<Meta, ProtocolError> {
    Ok(Meta {
        name: el.required_attr(document, "name")?.to_owned(),
        value: el.text_only(document)?,
    })
}

/// `data` (shared with the message list).
pub(crate) fn data_from(document: &'static str, el: &Element) -> Result<Data, ProtocolError> {
    el.empty(document)?;
    Ok(Data {
        datapart_type: el.attr_owned("datapartType"),
        filename: el.attr_owned("filename"),
        no_of_bytes: el.attr_owned("no-of-bytes"),
        no_of_records: el.attr_owned("no-of-records"),
    })
}

/// `content`: `((data* | compound), comment?)`.
fn content_from(el: &Element) -> Result<Content, ProtocolError> {
    el.no_text(DOC)?;
    let content_id = el
        .attr("content.id")
        .or_else(|| el.attr("uuid"))
        .ok_or_else(|| error(DOC, "missing attribute content.id on <content>"))?
        .to_owned();
    let mut data = Vec::new();
    let mut compound: Option<String> = None;
    let mut comment: Option<String> = None;
    for child in &el.children {
        if comment.is_some() {
            return Err(error(
                DOC,
                format!("<{}> after <comment> in <content>", child.name),
            ));
        }
        match child.name {
            "data" if compound.is_some() => {
                return Err(error(DOC, "<content> holds both <data> and <compound>"));
            }
            "data" => data.push(data_from(DOC, child)?),
            "compound" if compound.is_some() => {
                return Err(error(DOC, "duplicate <compound>"));
            }
            "compound" if !data.is_empty() => {
                return Err(error(DOC, "<content> holds both <data> and <compound>"));
            }
            "compound" => {
                child.empty(DOC)?;
                compound = Some(child.required_attr(DOC, "no-of-parts")?.to_owned());
            }
            "comment" => comment = Some(child.text_only(DOC)?),
            other => {
                return Err(error(
                    DOC,
                    format!("unknown element <{other}> in <content>"),
                ));
            }
        }
    }
    let parts = match compound {
        Some(no_of_parts) => ContentParts::Compound { no_of_parts },
        None => ContentParts::Data(data),
    };
    Ok(Content {
        content_id,
        parts,
        comment,
    })
}

/// `history`: `(datetime, comment?)` with its attributes (1.1 and 1.2).
fn history_from(el: &Element) -> Result<History, ProtocolError> {
    el.no_text(DOC)?;
    let mut datetime = None;
    let mut comment = None;
    for child in &el.children {
        match child.name {
            "datetime" if datetime.is_some() => {
                return Err(error(DOC, "duplicate <datetime> in <history>"));
            }
            "datetime" if comment.is_some() => {
                return Err(error(DOC, "<datetime> after <comment> in <history>"));
            }
            "datetime" => datetime = Some(child.text_only(DOC)?),
            "comment" if comment.is_some() => {
                return Err(error(DOC, "duplicate <comment> in <history>"));
            }
            "comment" if datetime.is_none() => {
                return Err(error(DOC, "<comment> before <datetime> in <history>"));
            }
            "comment" => comment = Some(child.text_only(DOC)?),
            other => {
                return Err(error(
                    DOC,
                    format!("unknown element <{other}> in <history>"),
                ));
            }
        }
    }
    Ok(History {
        node_id: el.required_attr(DOC, "node.id")?.to_owned(),
        content_id: el.attr_owned("content.id"),
        tx_id: el.attr_owned("tx.id"),
        from: el.attr_owned("from"),
        to: el.attr_owned("to"),
        local_id: el.attr_owned("local.id"),
        shs_agreement: el.attr_owned("shs.agreement"),
        product_id: el.attr_owned("product.id"),
        corr_id: el.attr_owned("corr.id"),
        datetime: datetime.ok_or_else(|| error(DOC, "missing <datetime> in <history>"))?,
        comment,
    })
}

/// True if `value` is an XML 1.0 `Nmtoken` (one or more name characters), the type of
/// `tx.id` and `corr.id` in the DTDs.
fn is_nmtoken(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(|c| {
            matches!(c,
                'A'..='Z' | 'a'..='z' | '0'..='9' | ':' | '_' | '-' | '.' | '\u{B7}'
                | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{37D}'
                | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{203F}'..='\u{2040}'
                | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
                | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
        })
}
