//! Where a new message goes (spec §5.1, §5.2): the decision type, and the pure decision
//! for a node without a directory, which delivers direct-addressed messages to its local
//! mailboxes and quarantines everything else with a clear code. With a directory,
//! [`super::routing`] decides (agreements, product addressing, remote addresses).

use crate::config::Config;
use crate::protocol::ErrorCode;
use crate::protocol::urn::Address;

/// The routing decision for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deliver to this local mailbox.
    Deliver(Address),
    /// Send to another node or system by HTTPS POST (spec §5.3).
    Push {
        /// The receiver.
        to: Address,
        /// Its delivery address from the directory.
        url: String,
    },
    /// Product addressing found several receivers: one copy each (spec §5.2).
    FanOut(Vec<Recipient>),
    /// No way to deliver: quarantine with this code and reason.
    Quarantine {
        /// The SHS error code reported to the sender.
        code: ErrorCode,
        /// One line.
        reason: String,
    },
}

/// One receiver of a fan-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The receiving organisation: the copy's `to`.
    pub address: Address,
    /// The local mailbox the copy goes to, when its own routing (the same checks as a
    /// direct-addressed message's) already decided to deliver it here; `None`: the copy
    /// gets a routing job (a push, or a refusal with its error to the sender).
    pub local_mailbox: Option<Address>,
}

/// Decides where a message with receiver `to` goes.
pub fn decide(to: Option<&Address>, config: &Config) -> Decision {
    match to {
        Some(address) if config.is_local_mailbox(address) => Decision::Deliver(address.clone()),
        Some(address) if config.organisation(address.org()).is_some() => Decision::Quarantine {
            code: ErrorCode::MissingDeliveryAddress,
            reason: format!(
                "{address} is not a mailbox of this node: the organisation has no sub-address {:?}",
                address.sub_address().unwrap_or_default()
            ),
        },
        Some(address) => Decision::Quarantine {
            code: ErrorCode::MissingDeliveryAddress,
            reason: format!(
                "{address} is not hosted by this node and forwarding to other nodes is not configured"
            ),
        },
        None => Decision::Quarantine {
            code: ErrorCode::UnresolvedReceiver,
            reason: "the label has no to, and product addressing (agreements) is not configured on this node"
                .to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::for_tests()
    }

    fn addr(text: &str) -> Address {
        text.parse().unwrap()
    }

    #[test]
    fn local_mailboxes_are_delivered() {
        let config = config();
        for to in ["2120000142", "urn:X-shs:2120000142.bygglov"] {
            assert_eq!(
                decide(Some(&addr(to)), &config),
                Decision::Deliver(addr(to))
            );
        }
    }

    #[test]
    fn everything_else_is_quarantined_with_its_code() {
        let config = config();
        let code = |to: Option<&Address>| match decide(to, &config) {
            Decision::Quarantine { code, .. } => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            code(Some(&addr("2120000142.okand"))),
            ErrorCode::MissingDeliveryAddress
        );
        assert_eq!(
            code(Some(&addr("5590000001"))),
            ErrorCode::MissingDeliveryAddress
        );
        assert_eq!(code(None), ErrorCode::UnresolvedReceiver);
    }
}
