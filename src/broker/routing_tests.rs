//! Routing with a file directory over a memory store: agreements (missing, named and
//! illegal), unknown parties, product addressing to one and to several receivers with a
//! shared payload, remote receivers with and without an address, and reload.

use std::sync::Arc;

use crate::broker::Broker;
use crate::directory::{Directory, FileDirectory};
use crate::protocol::ErrorCode;
use crate::protocol::label::Label;
use crate::protocol::urn::Address;
use crate::store::memory::MemoryEngine;
use crate::store::{
    Acceptance, KvStore, LocalId, MailboxQuery, MessageRecord, NewMessage, Route, RoutingJob,
    State, Store,
};

const PORTAL: &str = "urn:X-shs:5590000001";
const KOMMUN: &str = "2120000142";
const GRANNE: &str = "2021005489";
const REMOTE: &str = "5560000002";
const PRODUCT: &str = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00";

/// Two local organisations (the municipality and a neighbour); the portal is known to
/// the directory only; agreements let the portal send the product to both.
const DIRECTORY: &str = r#"
[[organisations]]
number = "5590000001"
name = "Portalen"

[[agreements]]
id = "kommun"
principal = "2120000142"
customer = "5590000001"
products = ["urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"]
flow = "from-customer"

[[agreements]]
id = "granne"
principal = "2021005489"
customer = "5590000001"
products = ["urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"]
flow = "from-customer"

[[agreements]]
id = "wrong-way"
principal = "2120000142"
customer = "5590000001"
products = ["urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"]
flow = "to-customer"
"#;

struct Fixture {
    broker: Arc<Broker>,
    directory: Arc<FileDirectory>,
    dir: tempfile::TempDir,
}

fn fixture(directory_toml: &str) -> Fixture {
    fixture_hosting(directory_toml, &[GRANNE])
}

/// A fixture whose node also hosts `more` organisations.
fn fixture_hosting(directory_toml: &str, more: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("directory.toml");
    std::fs::write(&path, directory_toml).unwrap();
    let organisations: String = more
        .iter()
        .map(|org| format!("[[organisations]]\nnumber = \"{org}\"\n"))
        .collect();
    let config = crate::config::for_tests_with(&format!(
        "{organisations}[directory]\nfile = {:?}\n",
        path.display().to_string()
    ));
    let directory = Arc::new(FileDirectory::open(&path).unwrap());
    let store: Arc<dyn Store> = Arc::new(KvStore::open(MemoryEngine::new()).unwrap());
    let shared: Arc<dyn Directory> = Arc::clone(&directory) as Arc<dyn Directory>;
    let routing = crate::broker::Routing {
        directory: Some(shared),
        push_tls: None,
        signatures: None,
    };
    let broker = Broker::with_routing(store, Arc::new(config), routing);
    Fixture {
        broker,
        directory,
        dir,
    }
}

/// Accepts a message from `from` to `to` (with `edit` applied to its label) and runs its
/// routing job, then every job it created.
async fn send(
    broker: &Broker,
    from: &str,
    to: Option<&str>,
    edit: impl FnOnce(&mut Label),
) -> MessageRecord {
    let record = route_once(broker, from, to, edit).await;
    assert_eq!(broker.sweep_jobs().await.unwrap(), 0);
    broker
        .store()
        .message(record.local_id)
        .await
        .unwrap()
        .unwrap()
}

/// Accepts a message and runs its own routing job, and no other.
async fn route_once(
    broker: &Broker,
    from: &str,
    to: Option<&str>,
    edit: impl FnOnce(&mut Label),
) -> MessageRecord {
    let mut label = crate::broker::test_support::label(from, to);
    edit(&mut label);
    let store = broker.store();
    let payload =
        crate::broker::test_support::upload(store.as_ref(), "text/xml", b"<ansokan/>").await;
    let sender = crate::protocol::urn::strip_prefix(from).parse().unwrap();
    let message = NewMessage {
        local_id: LocalId::random(),
        sender,
        arrival: crate::clock::now(),
        summary: crate::broker::summary::summarize(&label, payload.size),
        label: label.to_xml(),
        payload,
        signer: None,
        route: Route::Job,
    };
    let Acceptance::Accepted { record, job } = store.accept(message).await.unwrap() else {
        panic!("not accepted");
    };
    broker
        .run_job(&RoutingJob {
            id: job.unwrap(),
            message: record.clone(),
            retry: crate::store::Retry::default(),
        })
        .await
        .unwrap();
    store.message(record.local_id).await.unwrap().unwrap()
}

async fn listed(broker: &Broker, mailbox: &str) -> Vec<MessageRecord> {
    let mailbox: Address = mailbox.parse().unwrap();
    broker
        .store()
        .list(&mailbox, &MailboxQuery::default())
        .await
        .unwrap()
}

fn quarantined_with(record: &MessageRecord, code: ErrorCode) {
    assert_eq!(record.state, State::Quarantined, "{record:?}");
    let error = record.error.as_ref().unwrap();
    assert_eq!(error.code, code, "{}", error.text);
}

#[tokio::test]
async fn an_agreement_lets_a_direct_message_through() {
    let f = fixture(DIRECTORY);
    let record = send(&f.broker, PORTAL, Some(KOMMUN), |_| {}).await;
    assert_eq!(record.state, State::Received);
    assert_eq!(listed(&f.broker, KOMMUN).await.len(), 1);
}

#[tokio::test]
async fn no_agreement_is_missing_and_a_misfit_named_one_illegal() {
    let f = fixture(DIRECTORY);
    // The neighbour may not send the product to the portal (from-customer only).
    let back = send(&f.broker, "urn:X-shs:2021005489", Some(PORTAL), |_| {}).await;
    quarantined_with(&back, ErrorCode::MissingAgreement);
    // Naming the to-customer agreement for a portal → municipality message.
    let named = send(&f.broker, PORTAL, Some(KOMMUN), |label| {
        label.shs_agreement = Some("wrong-way".into());
    })
    .await;
    quarantined_with(&named, ErrorCode::IllegalAgreement);
    // The error went to the neighbour's own mailbox (it is local).
    let errors = listed(&f.broker, GRANNE).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].summary.product, "urn:X-shs:error");
}

#[tokio::test]
async fn unknown_parties_are_refused_by_name() {
    let f = fixture(DIRECTORY);
    let stranger = send(&f.broker, "urn:X-shs:1111111111", Some(KOMMUN), |_| {}).await;
    quarantined_with(&stranger, ErrorCode::UnknownSender);
    let nowhere = send(&f.broker, PORTAL, Some("urn:X-shs:1111111111"), |_| {}).await;
    quarantined_with(&nowhere, ErrorCode::UnknownReceiver);
}

#[tokio::test]
async fn product_addressing_fans_out_to_every_receiver_sharing_the_payload() {
    let f = fixture(DIRECTORY);
    let parent = send(&f.broker, PORTAL, None, |_| {}).await;
    assert_eq!(parent.state, State::FannedOut);
    assert_eq!(parent.copies.len(), 2);
    for mailbox in [KOMMUN, GRANNE] {
        let copies = listed(&f.broker, mailbox).await;
        assert_eq!(copies.len(), 1, "{mailbox}");
        let copy = &copies[0];
        assert_eq!(copy.parent, Some(parent.local_id));
        assert_ne!(copy.tx_id, parent.tx_id);
        assert_eq!(copy.summary.corr_id, parent.summary.corr_id);
        assert_eq!(copy.summary.content_id, parent.summary.content_id);
        assert_eq!(
            copy.summary.to.as_deref(),
            Some(format!("urn:X-shs:{mailbox}").as_str())
        );
        assert_eq!(copy.payload.id, parent.payload.id);
        let label = Label::parse(&copy.label).unwrap();
        assert_eq!(label.tx_id, copy.tx_id);
    }
}

#[tokio::test]
async fn local_fan_out_copies_are_delivered_with_the_fan_out_without_jobs() {
    let f = fixture(DIRECTORY);
    let parent = route_once(&f.broker, PORTAL, None, |_| {}).await;
    assert_eq!(parent.state, State::FannedOut);
    // No routing job ran for the copies, and none waits.
    assert!(
        f.broker
            .store()
            .pending_jobs(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    for mailbox in [KOMMUN, GRANNE] {
        let copies = listed(&f.broker, mailbox).await;
        assert_eq!(copies.len(), 1, "{mailbox}");
        assert_eq!(copies[0].state, State::Received);
    }
    // A copy whose own routing refuses it still gets a job, which quarantines it with an
    // error to the sender: here the label names an agreement that fits neither receiver.
    let named = route_once(&f.broker, PORTAL, None, |label| {
        label.shs_agreement = Some("no-such-agreement".into());
    })
    .await;
    assert_eq!(named.state, State::FannedOut);
    assert_eq!(
        f.broker.store().pending_jobs(None, 10).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn product_addressing_with_one_receiver_delivers_the_message_itself() {
    let only_kommun = DIRECTORY.replace("principal = \"2021005489\"", "principal = \"2120000142\"");
    let f = fixture(&only_kommun);
    let record = send(&f.broker, PORTAL, None, |_| {}).await;
    assert_eq!(record.state, State::Received);
    assert_eq!(record.mailbox.unwrap().to_string(), "urn:X-shs:2120000142");
    // With no agreement at all: unresolved.
    let none = fixture("");
    let record = send(&none.broker, "urn:X-shs:2120000142", None, |_| {}).await;
    quarantined_with(&record, ErrorCode::UnresolvedReceiver);
}

#[tokio::test]
async fn remote_receivers_need_an_address() {
    let remote = format!(
        "{DIRECTORY}\n[[agreements]]\nid = \"remote\"\nprincipal = \"{REMOTE}\"\ncustomer = \"2120000142\"\nproducts = [\"{PRODUCT}\"]\nflow = \"any\"\n"
    );
    let f = fixture(&remote);
    let from = "urn:X-shs:2120000142";
    let to = format!("urn:X-shs:{REMOTE}");
    let record = send(&f.broker, from, Some(&to), |_| {}).await;
    quarantined_with(&record, ErrorCode::MissingDeliveryAddress);

    let with_address = format!(
        "{remote}\n[[addresses]]\norganisation = \"{REMOTE}\"\nurl = \"https://127.0.0.1:1/shs/rs\"\n"
    );
    std::fs::write(f.dir.path().join("directory.toml"), with_address).unwrap();
    f.directory.reload().await.unwrap();
    let record = send(&f.broker, from, Some(&to), |_| {}).await;
    // Routed to push, which this broker has no TLS configuration for: quarantined so.
    quarantined_with(&record, ErrorCode::MissingDeliveryExecution);
    assert!(
        record
            .error
            .unwrap()
            .text
            .contains("https://127.0.0.1:1/shs/rs")
    );
}

#[tokio::test]
async fn an_agreement_without_confirm_gets_no_confirm_on_ack() {
    let silent = DIRECTORY.replacen(
        "flow = \"from-customer\"\n",
        "flow = \"from-customer\"\nconfirm = false\n",
        1,
    );
    let f = fixture(&silent);
    let record = send(&f.broker, PORTAL, Some(KOMMUN), |_| {}).await;
    let label = Label::parse(&record.label).unwrap();
    assert!(!f.broker.confirm_wanted(&record, &label).await);
    // The neighbour's agreement keeps the default: a confirm.
    let other = send(&f.broker, PORTAL, Some(GRANNE), |_| {}).await;
    let label = Label::parse(&other.label).unwrap();
    assert!(f.broker.confirm_wanted(&other, &label).await);
}

#[tokio::test]
async fn a_confirm_is_noted_only_on_the_message_of_the_same_pair() {
    let f = fixture_hosting(DIRECTORY, &[GRANNE, "5590000001"]);
    let same = |label: &mut Label| {
        label.corr_id = "conversation-1".into();
        label.content.content_id = "content-1".into();
    };
    let to_kommun = send(&f.broker, PORTAL, Some(KOMMUN), same).await;
    let to_granne = send(&f.broker, PORTAL, Some(GRANNE), same).await;
    assert_eq!(to_kommun.state, State::Received);
    assert_eq!(to_granne.state, State::Received);
    // The municipality confirms: same corr.id and content.id, from the municipality.
    let confirm = send(&f.broker, "urn:X-shs:2120000142", Some(PORTAL), |label| {
        same(label);
        label.sequence_type = crate::protocol::label::SequenceType::Adm;
        label.product.value = "urn:X-shs:confirm".into();
    })
    .await;
    assert_eq!(confirm.state, State::Received);
    let store = f.broker.store();
    let answered = store.message(to_kommun.local_id).await.unwrap().unwrap();
    let answer = answered
        .answer
        .expect("the municipality's message is answered");
    assert_eq!(answer.tx_id, confirm.tx_id);
    assert_eq!(answer.error, None);
    // The neighbour's message with the same ids is another pair: untouched.
    let other = store.message(to_granne.local_id).await.unwrap().unwrap();
    assert_eq!(other.answer, None);
}

/// The ack that generates a confirm for a local sender notes it on the acknowledged
/// message in its own batch; correlating the delivered confirm then leaves that message
/// alone and still finds any other message it answers.
#[tokio::test]
async fn an_ack_notes_its_local_confirm_on_the_acknowledged_message() {
    let f = fixture_hosting(DIRECTORY, &["5590000001"]);
    let same = |label: &mut Label| {
        label.corr_id = "conversation-2".into();
        label.content.content_id = "content-2".into();
    };
    let first = send(&f.broker, PORTAL, Some(KOMMUN), same).await;
    let second = send(&f.broker, PORTAL, Some(KOMMUN), same).await;
    let kommun = crate::broker::Caller {
        org: KOMMUN.parse().unwrap(),
        role: crate::config::Role::default(),
        sub_addresses: Vec::new(),
        products: Vec::new(),
        subject: "CN=test".into(),
    };
    let mailbox: Address = format!("urn:X-shs:{KOMMUN}").parse().unwrap();
    f.broker
        .acknowledge(&kommun, &mailbox, &first.tx_id)
        .await
        .unwrap();

    let store = f.broker.store();
    let portal: Address = PORTAL.parse().unwrap();
    let confirms = store
        .list(&portal, &crate::store::MailboxQuery::default())
        .await
        .unwrap();
    let [confirm] = confirms.as_slice() else {
        panic!("one confirm for the portal, got {confirms:?}");
    };
    let acked = store.message(first.local_id).await.unwrap().unwrap();
    assert_eq!(acked.state, State::Acknowledged);
    let answer = acked.answer.expect("noted by the ack");
    assert_eq!(
        (answer.tx_id.as_str(), answer.error),
        (confirm.tx_id.as_str(), None)
    );
    // The same conversation's other message is answered by the same confirm (spec §4.4).
    let other = store.message(second.local_id).await.unwrap().unwrap();
    assert_eq!(other.answer.map(|a| a.tx_id), Some(confirm.tx_id.clone()));
}

#[tokio::test]
async fn a_known_product_allows_only_its_data_part_types() {
    let with_product = format!(
        "{DIRECTORY}\n[[products]]\nid = \"{PRODUCT}\"\nname = \"Bygglov\"\ndatapart_types = [\"ansokan\"]\n"
    );
    let f = fixture(&with_product);
    // The test label's one part is of type "xml".
    let record = send(&f.broker, PORTAL, Some(KOMMUN), |_| {}).await;
    quarantined_with(&record, ErrorCode::IllegalDatapartContent);
    assert!(record.error.unwrap().text.contains("allows ansokan"));
    let allowed = send(&f.broker, PORTAL, Some(KOMMUN), |label| {
        if let crate::protocol::label::ContentParts::Data(data) = &mut label.content.parts {
            data[0].datapart_type = Some("ANSOKAN".into());
        }
    })
    .await;
    assert_eq!(allowed.state, State::Received);
}

/// Intake decides a local delivery before storing (`route_at_intake`): the message goes
/// into its mailbox in the accepting batch. Every other decision leaves it to a job.
#[tokio::test]
async fn intake_stores_a_local_delivery_in_its_mailbox_and_leaves_the_rest_to_jobs() {
    let f = fixture(DIRECTORY);
    let store = f.broker.store();
    let payload =
        crate::broker::test_support::upload(store.as_ref(), "text/xml", b"<ansokan/>").await;
    let new_message = |to: Option<&str>| {
        let label = crate::broker::test_support::label(PORTAL, to);
        NewMessage {
            local_id: LocalId::random(),
            sender: crate::protocol::urn::strip_prefix(PORTAL).parse().unwrap(),
            arrival: crate::clock::now(),
            summary: crate::broker::summary::summarize(&label, payload.size),
            label: label.to_xml(),
            payload: payload.clone(),
            signer: None,
            route: Route::Job,
        }
    };
    let kommun = format!("urn:X-shs:{KOMMUN}");
    let local = new_message(Some(&kommun));
    assert_eq!(
        f.broker.route_at_intake(&local).await,
        Route::Mailbox(kommun.parse().unwrap())
    );
    // Product addressing with two receivers: a fan-out, which its job makes.
    assert_eq!(
        f.broker.route_at_intake(&new_message(None)).await,
        Route::Job
    );
    // A receiver the directory does not know: the job quarantines it.
    let unknown = format!("urn:X-shs:{REMOTE}");
    assert_eq!(
        f.broker.route_at_intake(&new_message(Some(&unknown))).await,
        Route::Job
    );
}
