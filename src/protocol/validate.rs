//! The intake rules of spec §4.2, each failure mapped to its SHS error code.
//!
//! "Parse, don't validate": a label that passes yields an [`Envelope`] with the typed
//! sender, receiver and product, so later layers never re-parse label text.

use super::error::{ErrorCode, ProtocolError};
use super::label::{Compoundness, ContentParts, Label, SequenceType, TransferType};
use super::urn::{Address, ProductId};

/// The typed routing facts of a label that passed intake validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sending address: `from`, or `originator` when there is no `from`.
    pub sender: Address,
    /// The direct receiver (`to`); `None` means product addressing (spec §5.2).
    pub receiver: Option<Address>,
    /// The product type.
    pub product: ProductId,
}

/// Checks a parsed label against the intake rules and returns its envelope.
///
/// The parser already enforced the DTD (required attributes, enumerations, element order);
/// these are the rules the DTD cannot express.
pub fn check_label(label: &Label) -> Result<Envelope, ProtocolError> {
    check_nmtoken("tx.id", &label.tx_id)?;
    check_nmtoken("corr.id", &label.corr_id)?;
    check_nmtoken("content.id", &label.content.content_id)?;

    let sender_text = label
        .sender_text()
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| {
            ProtocolError::invalid(
                ErrorCode::IllegalSender,
                "the label has no from or originator",
            )
        })?;
    let sender: Address = sender_text.parse().map_err(|err| {
        ProtocolError::invalid(
            ErrorCode::IllegalSender,
            format!("sender {sender_text:?} is not an SHS address: {err}"),
        )
    })?;

    let receiver = match &label.to {
        Some(to) => Some(to.value.parse::<Address>().map_err(|err| {
            ProtocolError::invalid(
                ErrorCode::IllegalReceiver,
                format!("to {:?} is not an SHS address: {err}", to.value),
            )
        })?),
        None => None,
    };

    let product: ProductId = label.product.value.parse().map_err(|err| {
        ProtocolError::invalid(
            ErrorCode::IllegalProductType,
            format!(
                "product {:?} is not a product id: {err}",
                label.product.value
            ),
        )
    })?;

    if label.sequence_type == SequenceType::Adm && label.transfer_type == TransferType::Synch {
        return Err(ProtocolError::invalid(
            ErrorCode::IllegalMessageStructure,
            "an adm message cannot be synchronous",
        ));
    }
    if is_compound(label) && label.transfer_type == TransferType::Asynch {
        return Err(ProtocolError::invalid(
            ErrorCode::IllegalMessageStructure,
            "a compound message cannot be asynchronous",
        ));
    }

    Ok(Envelope {
        sender,
        receiver,
        product,
    })
}

/// Checks that the MIME body carries at least one data part per `data` element (spec §4.1).
///
/// More parts than `data` elements are accepted: they are stored and handed on as received.
pub fn check_part_count(label: &Label, parts: usize) -> Result<(), ProtocolError> {
    let described = label.data().len();
    if parts < described {
        return Err(ProtocolError::invalid(
            ErrorCode::IllegalMessageStructure,
            format!("the label describes {described} data parts but the message has {parts}"),
        ));
    }
    Ok(())
}

fn is_compound(label: &Label) -> bool {
    matches!(label.content.parts, ContentParts::Compound { .. })
        || label.message_type == Some(Compoundness::Compound)
}

/// An XML NMTOKEN, restricted to the characters that are safe in URL paths and file names
/// (letters, digits, `.`, `-`, `_`, `:`): tx.ids travel in `/shs/ds/{address}/{txId}`.
fn check_nmtoken(name: &str, value: &str) -> Result<(), ProtocolError> {
    let valid = !value.is_empty()
        && value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if valid {
        Ok(())
    } else {
        Err(ProtocolError::invalid(
            ErrorCode::IllegalMessageStructure,
            format!("{name} {value:?} is not a valid NMTOKEN"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::label::{Content, Data, From, Originator, Product, Status, To};

    fn label() -> Label {
        Label {
            version: "1.2".into(),
            tx_id: "4c9fd3e8-b4c4-49aa-926a-52a68864a7b8".into(),
            corr_id: "5a01ff87-e641-486e-8521-8e82d1ee1052".into(),
            shs_agreement: None,
            transfer_type: TransferType::Asynch,
            message_type: None,
            document_type: None,
            sequence_type: SequenceType::Event,
            status: Status::Production,
            originator: None,
            from: Some(From {
                value: "urn:X-shs:5590000001".into(),
                ..From::default()
            }),
            to: Some(To {
                value: "urn:x-shs:2120000142.bygglov".into(),
                common_name: None,
            }),
            end_recipient: None,
            product: Product {
                value: "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00".into(),
                ..Product::default()
            },
            meta: vec![],
            subject: None,
            datetime: "2026-11-22T12:00:00".into(),
            content: Content {
                content_id: "82b9c7e7-59ab-4d5d-b430-d5101c8b690b".into(),
                parts: ContentParts::Data(vec![Data::default()]),
                comment: None,
            },
            history: vec![],
        }
    }

    fn code_of(label: &Label) -> ErrorCode {
        check_label(label).unwrap_err().code()
    }

    #[test]
    fn a_good_label_yields_its_envelope() {
        let envelope = check_label(&label()).unwrap();
        assert_eq!(envelope.sender.to_string(), "urn:X-shs:5590000001");
        let receiver = envelope.receiver.unwrap();
        assert_eq!(receiver.to_string(), "urn:X-shs:2120000142.bygglov");
        assert_eq!(
            envelope.product.bare(),
            "6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"
        );
    }

    #[test]
    fn originator_is_the_sender_without_from() {
        let mut l = label();
        l.from = None;
        l.originator = Some(Originator {
            value: "2120000142".into(),
            ..Originator::default()
        });
        assert_eq!(check_label(&l).unwrap().sender.bare(), "2120000142");
    }

    #[test]
    fn missing_or_blank_sender_is_illegal_sender() {
        let mut l = label();
        l.from = None;
        assert_eq!(code_of(&l), ErrorCode::IllegalSender);
        l.from = Some(From {
            value: "  ".into(),
            ..From::default()
        });
        assert_eq!(code_of(&l), ErrorCode::IllegalSender);
        l.from = Some(From {
            value: "Kalle Anka".into(),
            ..From::default()
        });
        assert_eq!(code_of(&l), ErrorCode::IllegalSender);
    }

    #[test]
    fn bad_receiver_is_illegal_receiver() {
        let mut l = label();
        l.to = Some(To {
            value: "urn:X-shs:21200001".into(),
            common_name: None,
        });
        assert_eq!(code_of(&l), ErrorCode::IllegalReceiver);
    }

    #[test]
    fn product_addressing_has_no_receiver() {
        let mut l = label();
        l.to = None;
        assert_eq!(check_label(&l).unwrap().receiver, None);
    }

    #[test]
    fn bad_product_is_illegal_product_type() {
        let mut l = label();
        l.product.value = "bygglov".into();
        assert_eq!(code_of(&l), ErrorCode::IllegalProductType);
        l.product.value = "urn:X-shs:confirm".into();
        assert_eq!(check_label(&l).unwrap().product, ProductId::Confirm);
    }

    #[test]
    fn synchronous_adm_is_illegal_structure() {
        let mut l = label();
        l.sequence_type = SequenceType::Adm;
        l.transfer_type = TransferType::Synch;
        assert_eq!(code_of(&l), ErrorCode::IllegalMessageStructure);
    }

    #[test]
    fn asynchronous_compound_is_illegal_structure() {
        let mut l = label();
        l.content.parts = ContentParts::Compound {
            no_of_parts: "2".into(),
        };
        assert_eq!(code_of(&l), ErrorCode::IllegalMessageStructure);
        l.transfer_type = TransferType::Synch;
        assert!(check_label(&l).is_ok());

        let mut l = label();
        l.message_type = Some(Compoundness::Compound);
        assert_eq!(code_of(&l), ErrorCode::IllegalMessageStructure);
    }

    #[test]
    fn ids_must_be_nmtokens() {
        for bad in ["", "a b", "../etc", "x/y", "a?b"] {
            let mut l = label();
            l.tx_id = bad.into();
            assert_eq!(
                code_of(&l),
                ErrorCode::IllegalMessageStructure,
                "tx.id {bad:?}"
            );
            let mut l = label();
            l.corr_id = bad.into();
            assert_eq!(
                code_of(&l),
                ErrorCode::IllegalMessageStructure,
                "corr.id {bad:?}"
            );
        }
        let mut l = label();
        l.tx_id = "x".repeat(257);
        assert_eq!(code_of(&l), ErrorCode::IllegalMessageStructure);
    }

    #[test]
    fn fewer_parts_than_data_elements_is_illegal_structure() {
        let l = label();
        assert!(check_part_count(&l, 1).is_ok());
        assert!(check_part_count(&l, 2).is_ok());
        let err = check_part_count(&l, 0).unwrap_err();
        assert_eq!(err.code(), ErrorCode::IllegalMessageStructure);
    }
}
