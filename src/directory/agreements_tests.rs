//! The agreement rules: every direction, reply reversal, validity edges, transfer type,
//! named agreements, public agreements, and product-addressing recipients.

use super::*;

const PORTAL: &str = "5590000001";
const KOMMUN: &str = "2120000142";
const OTHER: &str = "5560000002";
const PRODUCT: &str = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00";
const OTHER_PRODUCT: &str = "urn:X-shs:0f2d7b9e-1c3a-4e5f-8a6b-7c8d9e0f1a2b";

fn org(text: &str) -> OrgNumber {
    text.parse().unwrap()
}

fn product() -> ProductId {
    PRODUCT.parse().unwrap()
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// The municipality (principal) with the portal as customer, flow `flow`, all of 2024.
fn bilateral(id: &str, flow: Flow) -> Agreement {
    Agreement {
        id: id.into(),
        principal: org(KOMMUN),
        customer: Some(org(PORTAL)),
        products: vec![product()],
        flow,
        transfer: AgreementTransfer::Any,
        confirm: true,
        valid_from: Some(day("2024-01-01")),
        valid_to: Some(day("2024-12-31")),
    }
}

fn public(id: &str, principal: &str, flow: Flow) -> Agreement {
    Agreement {
        customer: None,
        principal: org(principal),
        ..bilateral(id, flow)
    }
}

fn exchange<'a>(sender: &str, receiver: &str, product: &'a ProductId) -> Exchange<'a> {
    Exchange {
        sender: org(sender),
        receiver: org(receiver),
        product,
        reply: false,
        transfer: TransferType::Asynch,
        date: day("2024-06-01"),
        named: None,
    }
}

#[test]
fn each_flow_allows_exactly_its_direction() {
    let p = product();
    let to_kommun = exchange(PORTAL, KOMMUN, &p);
    let to_portal = exchange(KOMMUN, PORTAL, &p);
    for (flow, portal_to_kommun, kommun_to_portal) in [
        (Flow::FromCustomer, true, false),
        (Flow::ToCustomer, false, true),
        (Flow::Any, true, true),
    ] {
        let agreements = [bilateral("a", flow)];
        assert_eq!(
            check(&to_kommun, &agreements).is_ok(),
            portal_to_kommun,
            "{flow:?}"
        );
        assert_eq!(
            check(&to_portal, &agreements).is_ok(),
            kommun_to_portal,
            "{flow:?}"
        );
    }
}

#[test]
fn a_reply_travels_against_the_agreement() {
    let p = product();
    // from-customer: the portal may send requests to the municipality...
    let agreements = [bilateral("a", Flow::FromCustomer)];
    // ...and the municipality may reply to the portal, but not send it events.
    let reply = Exchange {
        reply: true,
        ..exchange(KOMMUN, PORTAL, &p)
    };
    assert!(check(&reply, &agreements).is_ok());
    assert!(check(&exchange(KOMMUN, PORTAL, &p), &agreements).is_err());
    // A "reply" from the portal to the municipality is against the flow.
    let backwards = Exchange {
        reply: true,
        ..exchange(PORTAL, KOMMUN, &p)
    };
    assert!(check(&backwards, &agreements).is_err());
}

#[test]
fn validity_is_inclusive_at_both_ends() {
    let p = product();
    let agreements = [bilateral("a", Flow::Any)];
    for (date, ok) in [
        ("2023-12-31", false),
        ("2024-01-01", true),
        ("2024-12-31", true),
        ("2025-01-01", false),
    ] {
        let on = Exchange {
            date: day(date),
            ..exchange(PORTAL, KOMMUN, &p)
        };
        assert_eq!(check(&on, &agreements).is_ok(), ok, "{date}");
    }
    let open_ended = Agreement {
        valid_from: None,
        valid_to: None,
        ..bilateral("a", Flow::Any)
    };
    let far = Exchange {
        date: day("2999-01-01"),
        ..exchange(PORTAL, KOMMUN, &p)
    };
    assert!(check(&far, &[open_ended]).is_ok());
}

#[test]
fn the_transfer_type_must_be_covered() {
    let p = product();
    let asynch = exchange(PORTAL, KOMMUN, &p);
    let synch = Exchange {
        transfer: TransferType::Synch,
        ..asynch
    };
    for (transfer, asynch_ok, synch_ok) in [
        (AgreementTransfer::Asynch, true, false),
        (AgreementTransfer::Synch, false, true),
        (AgreementTransfer::Any, true, true),
    ] {
        let agreements = [Agreement {
            transfer,
            ..bilateral("a", Flow::Any)
        }];
        assert_eq!(
            check(&asynch, &agreements).is_ok(),
            asynch_ok,
            "{transfer:?}"
        );
        assert_eq!(check(&synch, &agreements).is_ok(), synch_ok, "{transfer:?}");
    }
}

#[test]
fn no_fitting_agreement_is_missing() {
    let p = product();
    let other: ProductId = OTHER_PRODUCT.parse().unwrap();
    let agreements = [Agreement {
        products: vec![other],
        ..bilateral("a", Flow::Any)
    }];
    let err = check(&exchange(PORTAL, KOMMUN, &p), &agreements).unwrap_err();
    assert!(matches!(err, AgreementRefusal::Missing { .. }), "{err}");
    let only_portal = [bilateral("a", Flow::Any)];
    let stranger = check(&exchange(OTHER, KOMMUN, &p), &only_portal);
    assert!(matches!(stranger, Err(AgreementRefusal::Missing { .. })));
    assert!(check(&exchange(PORTAL, KOMMUN, &p), &[]).is_err());
}

#[test]
fn a_named_agreement_must_exist_and_fit() {
    let p = product();
    let agreements = [
        bilateral("fits", Flow::Any),
        bilateral("wrong-way", Flow::ToCustomer),
    ];
    let named = |id: &'static str| Exchange {
        named: Some(id),
        ..exchange(PORTAL, KOMMUN, &p)
    };
    assert_eq!(check(&named("FITS"), &agreements).unwrap().id, "fits");
    let err = check(&named("wrong-way"), &agreements).unwrap_err();
    assert!(matches!(err, AgreementRefusal::Illegal { .. }), "{err}");
    assert!(err.to_string().contains("direction"), "{err}");
    let err = check(&named("unknown"), &agreements).unwrap_err();
    assert!(err.to_string().contains("no such agreement"), "{err}");
}

#[test]
fn public_agreements_let_anyone_send_to_their_principal() {
    let p = product();
    let agreements = [public("pub", KOMMUN, Flow::FromCustomer)];
    assert_eq!(
        check(&exchange(OTHER, KOMMUN, &p), &agreements).unwrap().id,
        "pub"
    );
    assert_eq!(
        check(&exchange(PORTAL, KOMMUN, &p), &agreements)
            .unwrap()
            .id,
        "pub"
    );
    // Not the other way, and not to someone else.
    assert!(check(&exchange(KOMMUN, OTHER, &p), &agreements).is_err());
    assert!(check(&exchange(PORTAL, OTHER, &p), &agreements).is_err());
    // A reply to a request made under it is allowed.
    let reply = Exchange {
        reply: true,
        ..exchange(KOMMUN, OTHER, &p)
    };
    assert!(check(&reply, &agreements).is_ok());
    // A public agreement flowing only to-customer receives nothing.
    let outbound = [public("out", KOMMUN, Flow::ToCustomer)];
    assert!(check(&exchange(OTHER, KOMMUN, &p), &outbound).is_err());
}

#[test]
fn bilateral_agreements_win_over_public_ones() {
    let p = product();
    let agreements = [public("pub", KOMMUN, Flow::Any), bilateral("bi", Flow::Any)];
    assert_eq!(
        check(&exchange(PORTAL, KOMMUN, &p), &agreements)
            .unwrap()
            .id,
        "bi"
    );
    assert_eq!(
        check(&exchange(OTHER, KOMMUN, &p), &agreements).unwrap().id,
        "pub"
    );
}

#[test]
fn product_addressing_finds_every_receiver_once() {
    let p = product();
    let date = day("2024-06-01");
    let agreements = [
        // The portal sends to the municipality (customer side, from-customer).
        bilateral("kommun", Flow::FromCustomer),
        // The portal is principal towards OTHER, flow to-customer.
        Agreement {
            principal: org(PORTAL),
            customer: Some(org(OTHER)),
            ..bilateral("other", Flow::ToCustomer)
        },
        // The same municipality again through a public agreement: not twice.
        public("pub-kommun", KOMMUN, Flow::Any),
        // A public agreement of a third party.
        public("pub-third", "2021005489", Flow::FromCustomer),
        // Expired, wrong direction, synch only: none of these count.
        Agreement {
            valid_to: Some(day("2024-05-31")),
            principal: org("2021001234"),
            ..bilateral("expired", Flow::FromCustomer)
        },
        Agreement {
            principal: org("2021009999"),
            ..bilateral("wrong-way", Flow::ToCustomer)
        },
        Agreement {
            transfer: AgreementTransfer::Synch,
            principal: org("2021008888"),
            ..bilateral("synch", Flow::Any)
        },
    ];
    let found = recipients(org(PORTAL), &p, date, &agreements);
    assert_eq!(found, [org(KOMMUN), org(OTHER), org("2021005489")]);
    assert!(recipients(org("2021007777"), &p, date, &agreements[..2]).is_empty());
}
