//! `shs.management` confirm and error documents and the reply-label builder (spec §4.4).
//!
//! A confirm or error message is an ordinary SHS message: a label built by
//! [`reply_label`] (product `confirm`/`error`, sequence-type `adm`) and one `text/xml` data
//! part holding a [`ManagementDocument`]. Management messages are never answered with
//! another management message ([`may_be_answered`]).

use std::fmt;

use crate::protocol::label::{
    Content, ContentParts, Data, EndRecipient, From, Label, Originator, Product, SequenceType, To,
    TransferType,
};
use crate::protocol::urn::ProductId;
use crate::protocol::xml::{self, Element, XmlWriter, error, xml_error};
use crate::protocol::{ErrorCode, ProtocolError};

const DOC: &str = "shs.management";

/// An `shs.management` document (DTD 1.2; 1.1 documents are read too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementDocument {
    /// `corr.id` of the message this document is about.
    pub corr_id: String,
    /// `content.id` of the message this document is about.
    pub content_id: String,
    /// `datetime`, as written.
    pub datetime: String,
    /// `confirmation` or `error`.
    pub body: ManagementBody,
}

/// What a management document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagementBody {
    /// The message was delivered (`confirmation`).
    Confirmation {
        /// `appinfo*`.
        appinfo: Vec<AppInfo>,
    },
    /// The message failed (`error`).
    Error {
        /// `errorcode`, as the sending node wrote it.
        code: WireErrorCode,
        /// `errorinfo`: a human-readable reason.
        info: Option<String>,
        /// `appinfo*`.
        appinfo: Vec<AppInfo>,
    },
}

/// `appinfo`: application-specific name/value pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppInfo {
    /// `name`.
    pub name: String,
    /// The element text.
    pub value: String,
}

/// An error code as written in a document: usually one of [`ErrorCode`], but a remote node
/// may send a code SHS 1.2 does not define, which is kept readable rather than refused.
/// Never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WireErrorCode(String);

impl WireErrorCode {
    /// A code as read from the wire; `None` if it is empty or white space.
    pub fn new(text: impl Into<String>) -> Option<WireErrorCode> {
        let text = text.into();
        (!xml::is_blank(&text)).then_some(WireErrorCode(text))
    }

    /// The code as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SHS code (surrounding white space ignored, as for any NMTOKEN), or
    /// [`ErrorCode::OtherError`] for a code SHS 1.2 does not define.
    pub fn code(&self) -> ErrorCode {
        self.0
            .trim_matches(xml::is_xml_space)
            .parse()
            .unwrap_or(ErrorCode::OtherError)
    }
}

impl std::convert::From<ErrorCode> for WireErrorCode {
    fn from(code: ErrorCode) -> Self {
        WireErrorCode(code.as_str().to_owned())
    }
}

impl fmt::Display for WireErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which management message: a delivery confirmation or an error report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManagementKind {
    /// Product `confirm`, data part `confirm.xml`.
    Confirm,
    /// Product `error`, data part `error.xml`.
    Error,
}

impl ManagementKind {
    /// The `datapartType` of the data part: `confirm` or `error`.
    pub fn datapart_type(self) -> &'static str {
        match self {
            ManagementKind::Confirm => "confirm",
            ManagementKind::Error => "error",
        }
    }

    /// The file name of the data part: `confirm.xml` or `error.xml`.
    pub fn filename(self) -> &'static str {
        match self {
            ManagementKind::Confirm => "confirm.xml",
            ManagementKind::Error => "error.xml",
        }
    }

    /// The product of the message.
    pub fn product(self) -> ProductId {
        match self {
            ManagementKind::Confirm => ProductId::Confirm,
            ManagementKind::Error => ProductId::Error,
        }
    }
}

impl ManagementDocument {
    /// The confirmation of `original` (spec §4.4): its corr.id and content.id.
    pub fn confirmation(original: &Label, datetime: impl Into<String>) -> ManagementDocument {
        ManagementDocument {
            corr_id: original.corr_id.clone(),
            content_id: original.content.content_id.clone(),
            datetime: datetime.into(),
            body: ManagementBody::Confirmation {
                appinfo: Vec::new(),
            },
        }
    }

    /// The error report about `original` (spec §4.4) with its code and one-line reason.
    pub fn error(
        original: &Label,
        code: ErrorCode,
        info: impl Into<String>,
        datetime: impl Into<String>,
    ) -> ManagementDocument {
        ManagementDocument {
            body: ManagementBody::Error {
                code: code.into(),
                info: Some(info.into()),
                appinfo: Vec::new(),
            },
            ..ManagementDocument::confirmation(original, datetime)
        }
    }

    /// Confirm or error.
    pub fn kind(&self) -> ManagementKind {
        match self.body {
            ManagementBody::Confirmation { .. } => ManagementKind::Confirm,
            ManagementBody::Error { .. } => ManagementKind::Error,
        }
    }

    /// The error code of an error document, `None` for a confirmation.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match &self.body {
            ManagementBody::Error { code, .. } => Some(code.code()),
            ManagementBody::Confirmation { .. } => None,
        }
    }

    /// Parses an `shs.management` document (UTF-8, ISO-8859-1 or US-ASCII by its XML
    /// declaration; DOCTYPE ignored, entities refused, as for labels). Unknown attributes
    /// are ignored; unknown elements are refused.
    pub fn parse(bytes: &[u8]) -> Result<ManagementDocument, ProtocolError> {
        let decoded = xml::decode(DOC, bytes)?;
        let root = xml::parse(DOC, &decoded)?.root;
        root.no_text(DOC)?;
        let (datetime, body) = match root.children.as_slice() {
            [datetime, body] => (datetime, body),
            [] => return Err(error(DOC, "missing <datetime>")),
            [only] if only.name == "datetime" => {
                return Err(error(DOC, "missing <confirmation> or <error>"));
            }
            [only] => (only, only),
            [_, _, extra, ..] => {
                return Err(xml_error!(
                    DOC,
                    "unexpected <{}> after the body",
                    extra.name
                ));
            }
        };
        if datetime.name != "datetime" {
            return Err(xml_error!(
                DOC,
                "expected <datetime>, found <{}>",
                datetime.name
            ));
        }
        let appinfo = body
            .children
            .iter()
            .map(appinfo_from)
            .collect::<Result<Vec<_>, _>>()?;
        body.no_text(DOC)?;
        let body = match body.name {
            "confirmation" => ManagementBody::Confirmation { appinfo },
            "error" => {
                let code = body.required_attr(DOC, "errorcode")?;
                ManagementBody::Error {
                    code: WireErrorCode::new(code).ok_or_else(|| error(DOC, "empty errorcode"))?,
                    info: body.attr_owned("errorinfo"),
                    appinfo,
                }
            }
            other => {
                return Err(xml_error!(
                    DOC,
                    "expected <confirmation> or <error>, found <{other}>"
                ));
            }
        };
        Ok(ManagementDocument {
            corr_id: root.required_attr(DOC, "corr.id")?.to_owned(),
            content_id: root.required_attr(DOC, "content.id")?.to_owned(),
            datetime: datetime.text_only(DOC)?,
            body,
        })
    }

    /// The document as UTF-8 XML (`shs.management` version 1.2).
    pub fn to_xml(&self) -> Vec<u8> {
        let mut w = XmlWriter::document(DOC, "shs-management-1.2.dtd");
        w.start(
            DOC,
            &[
                ("version", Some("1.2")),
                ("corr.id", Some(self.corr_id.as_str())),
                ("content.id", Some(self.content_id.as_str())),
            ],
        );
        w.text("datetime", &[], &self.datetime);
        let (name, attrs, appinfo) = match &self.body {
            ManagementBody::Confirmation { appinfo } => ("confirmation", [None, None], appinfo),
            ManagementBody::Error {
                code,
                info,
                appinfo,
            } => ("error", [Some(code.as_str()), info.as_deref()], appinfo),
        };
        let attrs = [("errorcode", attrs[0]), ("errorinfo", attrs[1])];
        if appinfo.is_empty() {
            w.empty(name, &attrs);
        } else {
            w.start(name, &attrs);
            for info in appinfo {
                w.text(
                    "appinfo",
                    &[("name", Some(info.name.as_str()))],
                    &info.value,
                );
            }
            w.end(name);
        }
        w.end(DOC);
        w.into_bytes()
    }
}

fn appinfo_from(el: &Element) -> Result<AppInfo, ProtocolError> {
    if el.name != "appinfo" {
        return Err(xml_error!(DOC, "unknown element <{}> in the body", el.name));
    }
    Ok(AppInfo {
        name: el.required_attr(DOC, "name")?.to_owned(),
        value: el.text_only(DOC)?,
    })
}

/// The label of a confirm or error message answering `original` (spec §4.4): a new tx.id,
/// asynch, sequence-type `adm`, product `confirm`/`error`, one data part described as
/// `confirm`/`confirm.xml` or `error`/`error.xml`; the same corr.id, content.id and status;
/// `from` = original `to`, `to` = original `from` (or `originator` without `from`), `originator` = original end-recipient,
/// `end-recipient` = original originator, each missing one staying missing.
pub fn reply_label(
    original: &Label,
    kind: ManagementKind,
    new_tx_id: String,
    datetime: String,
) -> Label {
    Label {
        version: "1.2".to_owned(),
        tx_id: new_tx_id,
        corr_id: original.corr_id.clone(),
        shs_agreement: None,
        transfer_type: TransferType::Asynch,
        message_type: None,
        document_type: None,
        sequence_type: SequenceType::Adm,
        status: original.status,
        originator: original.end_recipient.as_ref().map(|e| Originator {
            value: e.value.clone(),
            name: e.name.clone(),
            labeled_uri: e.labeled_uri.clone(),
        }),
        from: original.to.as_ref().map(|to| From {
            value: to.value.clone(),
            common_name: to.common_name.clone(),
            ..From::default()
        }),
        // Without `from`, the originator is the sender (spec §2), so the answer goes there.
        to: original
            .from
            .as_ref()
            .map(|from| To {
                value: from.value.clone(),
                common_name: from.common_name.clone(),
            })
            .or_else(|| {
                original.originator.as_ref().map(|o| To {
                    value: o.value.clone(),
                    common_name: None,
                })
            }),
        end_recipient: original.originator.as_ref().map(|o| EndRecipient {
            value: o.value.clone(),
            name: o.name.clone(),
            labeled_uri: o.labeled_uri.clone(),
        }),
        product: Product {
            value: kind.product().to_string(),
            ..Product::default()
        },
        meta: Vec::new(),
        subject: None,
        datetime,
        content: Content {
            content_id: original.content.content_id.clone(),
            parts: ContentParts::Data(vec![Data {
                datapart_type: Some(kind.datapart_type().to_owned()),
                filename: Some(kind.filename().to_owned()),
                ..Data::default()
            }]),
            comment: None,
        },
        history: Vec::new(),
    }
}

/// A whole management message answering `original`: its label ([`reply_label`]) and the
/// document for its data part, both stamped with `datetime`.
pub fn reply(
    original: &Label,
    body: ManagementBody,
    new_tx_id: String,
    datetime: String,
) -> (Label, ManagementDocument) {
    let document = ManagementDocument {
        corr_id: original.corr_id.clone(),
        content_id: original.content.content_id.clone(),
        datetime: datetime.clone(),
        body,
    };
    let label = reply_label(original, document.kind(), new_tx_id, datetime);
    (label, document)
}

/// False for management messages (product `confirm` or `error`, or sequence-type `adm`),
/// which are never answered with a confirm or error (spec §4.4).
pub fn may_be_answered(label: &Label) -> bool {
    let management_product = label
        .product
        .value
        .parse::<ProductId>()
        .is_ok_and(ProductId::is_management);
    label.sequence_type != SequenceType::Adm && !management_product
}

#[cfg(test)]
mod tests;
