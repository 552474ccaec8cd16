//! The `shs.label` document (DTD 1.2 and 1.2.01; 1.1 is read too), spec §4.2.
//!
//! The model keeps every element and attribute of the DTD, in DTD order, with the text as
//! the sender wrote it (decoded to UTF-8): addresses are not normalised here, so that writing
//! a label never rewrites what the sender wrote. Typed views (`Address`, `ProductId`) are
//! parsed on demand by [`crate::protocol::validate`] and by the broker.
//!
//! - [`Label::parse`] reads a label from its bytes (encoding from the XML declaration,
//!   DTD order and required parts checked, entities refused; see `read.rs`).
//! - [`Label::to_xml`] writes a label the broker builds itself (confirm, error, fan-out).
//! - [`append_history`] adds history entries to a received label without rewriting a
//!   byte of it, and [`History::received`] builds the entry of spec §4.3.

use std::fmt;
use std::str::FromStr;

mod history;
mod read;
mod write;

pub use history::{HistorySplice, append_history, append_history_at};
pub(crate) use read::{data_from, enum_attr, meta_from};
pub(crate) use write::{write_data, write_meta};

/// A parsed `shs.label`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The `version` attribute: `1.2` for 1.2 and 1.2.01 labels, `1.1` for old ones.
    pub version: String,
    /// `tx.id`: unique per message and sender.
    pub tx_id: String,
    /// `corr.id`: ties a conversation (request, reply, confirm, error) together.
    pub corr_id: String,
    /// `shs.agreement`: an explicit agreement id, if the sender named one.
    pub shs_agreement: Option<String>,
    /// `transfer-type`, default `asynch`.
    pub transfer_type: TransferType,
    /// `message-type`, default `simple` (not in 1.1 labels).
    pub message_type: Option<Compoundness>,
    /// `document-type`, default `simple`.
    pub document_type: Option<Compoundness>,
    /// `sequence-type`, required.
    pub sequence_type: SequenceType,
    /// `status`, default `production`.
    pub status: Status,
    /// `originator`: the party on whose behalf the message is sent.
    pub originator: Option<Originator>,
    /// `from`: the sending organisation.
    pub from: Option<From>,
    /// `to`: the receiving address; absent for product addressing.
    pub to: Option<To>,
    /// `end-recipient`: the final recipient behind `to`.
    pub end_recipient: Option<EndRecipient>,
    /// `product`: the product type of the message.
    pub product: Product,
    /// `meta*`: name/value pairs in label order.
    pub meta: Vec<Meta>,
    /// `subject`.
    pub subject: Option<String>,
    /// `datetime`, as written (SHS writes `yyyy-MM-ddTHH:mm:ss`).
    pub datetime: String,
    /// `content`: the description of the data parts.
    pub content: Content,
    /// `history*`: one entry per node the message passed, oldest first.
    pub history: Vec<History>,
}

/// `transfer-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransferType {
    /// Stored in a mailbox or pushed; the default.
    #[default]
    Asynch,
    /// Request and reply in one HTTP exchange (spec §6).
    Synch,
}

/// `message-type` and `document-type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compoundness {
    /// The default.
    #[default]
    Simple,
    /// Several documents in one.
    Compound,
}

/// `sequence-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SequenceType {
    /// A one-way notification.
    Event,
    /// A question that expects a reply.
    Request,
    /// The answer to a request.
    Reply,
    /// Administrative: confirm and error messages.
    Adm,
}

/// `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    /// Real traffic; the default.
    #[default]
    Production,
    /// Test traffic, listed only when asked for.
    Test,
}

/// `originator` (attributes `name`, `labeledURI`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Originator {
    /// The address text as written.
    pub value: String,
    /// `name`.
    pub name: Option<String>,
    /// `labeledURI`.
    pub labeled_uri: Option<String>,
}

/// `from` (attributes `commonName`, `e-mail`, `labeledURI`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct From {
    /// The address text as written.
    pub value: String,
    /// `commonName` (required by the DTD, missing in the field).
    pub common_name: Option<String>,
    /// `e-mail`.
    pub e_mail: Option<String>,
    /// `labeledURI`.
    pub labeled_uri: Option<String>,
}

/// `to` (attribute `commonName`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct To {
    /// The address text as written.
    pub value: String,
    /// `commonName`.
    pub common_name: Option<String>,
}

/// `end-recipient` (attributes `name`, `labeledURI`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndRecipient {
    /// The address text as written.
    pub value: String,
    /// `name`.
    pub name: Option<String>,
    /// `labeledURI`.
    pub labeled_uri: Option<String>,
}

/// `product` (attributes `commonName`, `labeledURI`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Product {
    /// The product id text as written.
    pub value: String,
    /// `commonName`.
    pub common_name: Option<String>,
    /// `labeledURI`.
    pub labeled_uri: Option<String>,
}

/// `meta` with its required `name`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// `name`.
    pub name: String,
    /// The element text.
    pub value: String,
}

/// `content`: the content id and what the data parts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// `content.id` (`uuid` in 1.1 labels).
    pub content_id: String,
    /// The `data*` elements or one `compound`.
    pub parts: ContentParts,
    /// `comment`.
    pub comment: Option<String>,
}

/// The body of `content`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentParts {
    /// One `data` element per MIME data part, in MIME order.
    Data(Vec<Data>),
    /// `compound` with its `no-of-parts`.
    Compound {
        /// `no-of-parts`, as written.
        no_of_parts: String,
    },
}

/// `data`: describes one MIME data part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Data {
    /// `datapartType` (required in 1.2, absent in 1.1).
    pub datapart_type: Option<String>,
    /// `filename`.
    pub filename: Option<String>,
    /// `no-of-bytes`, as written.
    pub no_of_bytes: Option<String>,
    /// `no-of-records`, as written.
    pub no_of_records: Option<String>,
}

/// `history`: what one node did with the message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    /// `node.id`.
    pub node_id: String,
    /// `content.id`.
    pub content_id: Option<String>,
    /// `tx.id`.
    pub tx_id: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `local.id`.
    pub local_id: Option<String>,
    /// `shs.agreement`.
    pub shs_agreement: Option<String>,
    /// `product.id` (1.1 labels only).
    pub product_id: Option<String>,
    /// `corr.id` (1.1 labels only).
    pub corr_id: Option<String>,
    /// `datetime`.
    pub datetime: String,
    /// `comment`.
    pub comment: Option<String>,
}

/// An attribute value outside its DTD enumeration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {attribute}")]
pub struct InvalidEnumValue {
    /// The attribute name.
    pub attribute: &'static str,
    /// The value found.
    pub value: String,
}

macro_rules! xml_enum {
    ($ty:ident, $attr:literal, $($variant:ident => $text:literal),+ $(,)?) => {
        impl $ty {
            /// The value as written in XML.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl FromStr for $ty {
            type Err = InvalidEnumValue;

            /// Exact match: the DTD enumerations are case-sensitive.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(InvalidEnumValue { attribute: $attr, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

xml_enum!(TransferType, "transfer-type", Asynch => "asynch", Synch => "synch");
xml_enum!(Compoundness, "message-type/document-type", Simple => "simple", Compound => "compound");
xml_enum!(SequenceType, "sequence-type", Event => "event", Request => "request", Reply => "reply", Adm => "adm");
xml_enum!(Status, "status", Production => "production", Test => "test");

impl Label {
    /// The data part descriptions, empty for a compound content.
    pub fn data(&self) -> &[Data] {
        match &self.content.parts {
            ContentParts::Data(data) => data,
            ContentParts::Compound { .. } => &[],
        }
    }

    /// The address text that identifies the sender: `from`, or `originator` without `from`
    /// (spec §2, §3.2).
    pub fn sender_text(&self) -> Option<&str> {
        self.from
            .as_ref()
            .map(|from| from.value.as_str())
            .or(self.originator.as_ref().map(|o| o.value.as_str()))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_write;
