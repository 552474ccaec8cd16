//! Property tests for the SHS XML documents: whatever valid value is written is read back
//! unchanged (labels, management documents, message lists), history appends keep the
//! original bytes, and no input makes a parser panic.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use shsd::protocol::ErrorCode;
use shsd::protocol::label::{
    Compoundness, Content, ContentParts, Data, EndRecipient, From, History, Label, Meta,
    Originator, Product, SequenceType, Status, To, TransferType, append_history,
};
use shsd::protocol::management::{AppInfo, ManagementBody, ManagementDocument, WireErrorCode};
use shsd::protocol::message_list::{ListedMessage, MessageList};

/// Text with Swedish letters, XML-special characters, all kinds of white space, a CDATA
/// end marker and characters outside Latin-1.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{0,12}",
        "[a-zA-Z0-9 åäöÅÄÖé<>&\"'\t\n\r\\]€😀:=/.-]{0,24}",
        Just(String::new()),
        Just("]]>".to_owned()),
        Just(" \r\n\t ".to_owned()),
    ]
    .boxed()
}

fn opt_text() -> BoxedStrategy<Option<String>> {
    option::of(text()).boxed()
}

fn nmtoken() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,40}"
}

fn compoundness() -> impl Strategy<Value = Compoundness> {
    prop_oneof![Just(Compoundness::Simple), Just(Compoundness::Compound)]
}

fn sequence_type() -> impl Strategy<Value = SequenceType> {
    prop_oneof![
        Just(SequenceType::Event),
        Just(SequenceType::Request),
        Just(SequenceType::Reply),
        Just(SequenceType::Adm),
    ]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![Just(Status::Production), Just(Status::Test)]
}

fn meta() -> BoxedStrategy<Meta> {
    (text(), text())
        .prop_map(|(name, value)| Meta { name, value })
        .boxed()
}

fn data() -> BoxedStrategy<Data> {
    (opt_text(), opt_text(), opt_text(), opt_text())
        .prop_map(
            |(datapart_type, filename, no_of_bytes, no_of_records)| Data {
                datapart_type,
                filename,
                no_of_bytes,
                no_of_records,
            },
        )
        .boxed()
}

fn history() -> BoxedStrategy<History> {
    (
        (text(), opt_text(), opt_text(), opt_text(), opt_text()),
        (
            opt_text(),
            opt_text(),
            opt_text(),
            opt_text(),
            text(),
            opt_text(),
        ),
    )
        .prop_map(
            |(
                (node_id, content_id, tx_id, from, to),
                (local_id, shs_agreement, product_id, corr_id, datetime, comment),
            )| History {
                node_id,
                content_id,
                tx_id,
                from,
                to,
                local_id,
                shs_agreement,
                product_id,
                corr_id,
                datetime,
                comment,
            },
        )
        .boxed()
}

fn content() -> BoxedStrategy<Content> {
    let parts = prop_oneof![
        vec(data(), 0..4).prop_map(ContentParts::Data),
        text().prop_map(|no_of_parts| ContentParts::Compound { no_of_parts }),
    ];
    (text(), parts, opt_text())
        .prop_map(|(content_id, parts, comment)| Content {
            content_id,
            parts,
            comment,
        })
        .boxed()
}

prop_compose! {
    fn parties()(
        originator in option::of((text(), opt_text(), opt_text())),
        from in option::of((text(), opt_text(), opt_text(), opt_text())),
        to in option::of((text(), opt_text())),
        end_recipient in option::of((text(), opt_text(), opt_text())),
    ) -> (Option<Originator>, Option<From>, Option<To>, Option<EndRecipient>) {
        (
            originator.map(|(value, name, labeled_uri)| Originator { value, name, labeled_uri }),
            from.map(|(value, common_name, e_mail, labeled_uri)| From {
                value,
                common_name,
                e_mail,
                labeled_uri,
            }),
            to.map(|(value, common_name)| To { value, common_name }),
            end_recipient.map(|(value, name, labeled_uri)| EndRecipient {
                value,
                name,
                labeled_uri,
            }),
        )
    }
}

prop_compose! {
    fn label()(
        version in prop_oneof![Just("1.2".to_owned()), Just("1.1".to_owned()), text()],
        tx_id in nmtoken(),
        corr_id in nmtoken(),
        shs_agreement in opt_text(),
        synch in any::<bool>(),
        message_type in option::of(compoundness()),
        document_type in option::of(compoundness()),
        sequence_type in sequence_type(),
        status in status(),
        (originator, from, to, end_recipient) in parties(),
        product in (text(), opt_text(), opt_text()),
        meta in vec(meta(), 0..4),
        subject in opt_text(),
        datetime in text(),
        content in content(),
        history in vec(history(), 0..3),
    ) -> Label {
        Label {
            version,
            tx_id,
            corr_id,
            shs_agreement,
            transfer_type: if synch { TransferType::Synch } else { TransferType::Asynch },
            message_type,
            document_type,
            sequence_type,
            status,
            originator,
            from,
            to,
            end_recipient,
            product: Product { value: product.0, common_name: product.1, labeled_uri: product.2 },
            meta,
            subject,
            datetime,
            content,
            history,
        }
    }
}

/// The same document in ISO-8859-1: the declaration changed, characters above U+00FF as
/// references (all of them are in text or attribute values).
fn to_latin1(utf8: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(utf8).expect("to_xml writes UTF-8");
    let text = text.replacen("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"", 1);
    let mut out = Vec::new();
    for ch in text.chars() {
        match u8::try_from(u32::from(ch)) {
            Ok(byte) => out.push(byte),
            Err(_) => out.extend_from_slice(format!("&#{};", u32::from(ch)).as_bytes()),
        }
    }
    out
}

fn listed_message() -> impl Strategy<Value = ListedMessage> {
    (
        (
            nmtoken(),
            text(),
            opt_text(),
            opt_text(),
            option::of(any::<u64>()),
        ),
        (opt_text(), opt_text(), opt_text(), opt_text(), opt_text()),
        (
            sequence_type(),
            status(),
            vec(meta(), 0..3),
            opt_text(),
            vec(data(), 0..3),
        ),
    )
        .prop_map(
            |(
                (tx_id, timestamp, corr_id, content_id, size),
                (originator, from, to, end_recipient, product),
                (sequence_type, status, meta, subject, data),
            )| ListedMessage {
                tx_id,
                timestamp,
                corr_id,
                content_id,
                size,
                originator,
                from,
                to,
                end_recipient,
                product,
                sequence_type,
                status,
                meta,
                subject,
                data,
            },
        )
}

fn management_document() -> impl Strategy<Value = ManagementDocument> {
    let appinfo = || {
        vec(
            (text(), text()).prop_map(|(name, value)| AppInfo { name, value }),
            0..3,
        )
    };
    let code = prop_oneof![
        proptest::sample::select(ErrorCode::ALL.to_vec()).prop_map(WireErrorCode::from),
        nmtoken().prop_map(|c| WireErrorCode::new(c).expect("non-blank")),
    ];
    let body = prop_oneof![
        appinfo().prop_map(|appinfo| ManagementBody::Confirmation { appinfo }),
        (code, opt_text(), appinfo()).prop_map(|(code, info, appinfo)| ManagementBody::Error {
            code,
            info,
            appinfo
        }),
    ];
    (text(), text(), text(), body).prop_map(|(corr_id, content_id, datetime, body)| {
        ManagementDocument {
            corr_id,
            content_id,
            datetime,
            body,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn label_round_trips(label in label()) {
        let xml = label.to_xml();
        prop_assert_eq!(Label::parse(&xml), Ok(label.clone()));
        prop_assert_eq!(Label::parse(&to_latin1(&xml)), Ok(label));
    }

    #[test]
    fn history_append_keeps_the_original(label in label(), entries in vec(history(), 0..3)) {
        for original in [label.to_xml(), to_latin1(&label.to_xml())] {
            let appended = append_history(&original, &entries).expect("valid label");
            let at = original.windows(12).rposition(|w| w == b"</shs.label>").expect("end tag");
            let inserted = appended.len() - original.len();
            prop_assert_eq!(&appended[..at], &original[..at]);
            prop_assert_eq!(&appended[at + inserted..], &original[at..]);
            let mut expected = label.clone();
            expected.history.extend(entries.iter().cloned());
            prop_assert_eq!(Label::parse(&appended), Ok(expected));
        }
    }

    #[test]
    fn message_list_round_trips(messages in vec(listed_message(), 0..4)) {
        let list = MessageList { messages };
        let xml = list.to_xml();
        prop_assert_eq!(MessageList::parse(&xml), Ok(list.clone()));
        prop_assert_eq!(MessageList::parse(&to_latin1(&xml)), Ok(list));
    }

    #[test]
    fn management_document_round_trips(document in management_document()) {
        let xml = document.to_xml();
        prop_assert_eq!(ManagementDocument::parse(&xml), Ok(document.clone()));
        prop_assert_eq!(ManagementDocument::parse(&to_latin1(&xml)), Ok(document));
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = Label::parse(&bytes);
        let _ = ManagementDocument::parse(&bytes);
        let _ = MessageList::parse(&bytes);
        let _ = append_history(&bytes, &[]);
    }

    #[test]
    fn parsers_never_panic_on_damaged_labels(
        label in label(),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut xml = label.to_xml();
        let at = cut.index(xml.len());
        xml[at] = byte;
        let _ = Label::parse(&xml);
        let complete = xml.len() - 1; // everything but the final line break
        xml.truncate(at);
        if at < complete {
            prop_assert!(Label::parse(&xml).is_err());
        }
    }
}
