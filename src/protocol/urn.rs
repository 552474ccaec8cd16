//! Organisation numbers, addresses and product ids, parsed once at the edge.
//!
//! On input the `urn:X-shs:` prefix is optional and matched case-insensitively (both
//! `urn:x-shs:` and bare values occur in the field); on output it is always written
//! `urn:X-shs:` (spec §1).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The canonical prefix written in front of every SHS address and product id.
pub const URN_PREFIX: &str = "urn:X-shs:";

/// Why a string is not a valid organisation number, address or product id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrnError {
    /// Nothing left after trimming the prefix and white space.
    #[error("empty value")]
    Empty,
    /// The organisation number is not exactly ten ASCII digits.
    #[error("{0:?} is not a 10-digit organisation number")]
    OrgNumber(String),
    /// The sub-address after the dot is empty or holds characters outside `[A-Za-z0-9._-]`.
    #[error("{0:?} is not a valid sub-address")]
    SubAddress(String),
    /// Neither a UUID nor one of `confirm`, `error`, `agreement`.
    #[error("{0:?} is not a UUID or a special product name")]
    ProductId(String),
}

/// Removes an optional, case-insensitive `urn:X-shs:` prefix and surrounding white space.
pub fn strip_prefix(value: &str) -> &str {
    let value = value.trim();
    match value.get(..URN_PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(URN_PREFIX) => value[URN_PREFIX.len()..].trim(),
        _ => value,
    }
}

/// A Swedish organisation number: exactly ten digits, no hyphen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgNumber([u8; 10]);

impl OrgNumber {
    /// The ten digits, without prefix.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("0000000000")
    }

    /// Finds the first run of exactly ten digits in `text` (as in a certificate's
    /// `serialNumber` or `organizationIdentifier` such as `NTRSE-5565317129`).
    pub fn find_in(text: &str) -> Option<OrgNumber> {
        let bytes = text.as_bytes();
        let mut start = 0;
        while start < bytes.len() {
            if !bytes[start].is_ascii_digit() {
                start += 1;
                continue;
            }
            let end = bytes[start..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(bytes.len(), |n| start + n);
            if end - start == 10 {
                return text[start..end].parse().ok();
            }
            start = end;
        }
        None
    }
}

impl FromStr for OrgNumber {
    type Err = UrnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = strip_prefix(s);
        if digits.is_empty() {
            return Err(UrnError::Empty);
        }
        let bytes: [u8; 10] = digits
            .as_bytes()
            .try_into()
            .map_err(|_| UrnError::OrgNumber(digits.to_owned()))?;
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(UrnError::OrgNumber(digits.to_owned()));
        }
        Ok(OrgNumber(bytes))
    }
}

impl fmt::Display for OrgNumber {
    /// Written with the canonical prefix, e.g. `urn:X-shs:5565317129`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{URN_PREFIX}{}", self.as_str())
    }
}

/// An SHS address: an organisation, optionally narrowed to one business system by a
/// sub-address (`urn:X-shs:5565317129.bygglov`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    org: OrgNumber,
    sub: Option<String>,
}

impl Address {
    /// An address for a whole organisation.
    pub fn organisation(org: OrgNumber) -> Self {
        Address { org, sub: None }
    }

    /// An address for one sub-address of an organisation; the sub-address is checked.
    pub fn with_sub(org: OrgNumber, sub: &str) -> Result<Self, UrnError> {
        Ok(Address {
            org,
            sub: Some(check_sub_address(sub)?.to_owned()),
        })
    }

    /// The organisation this address belongs to.
    pub fn org(&self) -> OrgNumber {
        self.org
    }

    /// The sub-address, if any, without the leading dot.
    pub fn sub_address(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    /// The address without prefix, as used in mailbox keys and URL paths.
    pub fn bare(&self) -> String {
        match &self.sub {
            Some(sub) => format!("{}.{sub}", self.org.as_str()),
            None => self.org.as_str().to_owned(),
        }
    }
}

fn check_sub_address(sub: &str) -> Result<&str, UrnError> {
    let valid = !sub.is_empty()
        && sub
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(sub)
    } else {
        Err(UrnError::SubAddress(sub.to_owned()))
    }
}

impl FromStr for Address {
    type Err = UrnError;

    /// The part before the first dot is the organisation number, the rest the sub-address.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = strip_prefix(s);
        match bare.split_once('.') {
            Some((org, sub)) => Address::with_sub(org.parse()?, sub),
            None => Ok(Address::organisation(bare.parse()?)),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{URN_PREFIX}{}", self.bare())
    }
}

/// What a message is: a product type UUID, or one of the special SHS products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProductId {
    /// An ordinary product type, e.g. a building-permit application.
    Uuid(Uuid),
    /// A delivery confirmation (spec §4.4).
    Confirm,
    /// An error report (spec §4.4).
    Error,
    /// An agreement document.
    Agreement,
}

impl ProductId {
    /// The built-in ping product, `00000000-0000-0000-0000-000000000000`.
    pub const PING: ProductId = ProductId::Uuid(Uuid::nil());

    /// True for `confirm` and `error`, which are never answered with another management
    /// message.
    pub fn is_management(self) -> bool {
        matches!(self, ProductId::Confirm | ProductId::Error)
    }

    /// The id without prefix: a lower-case hyphenated UUID or the special name.
    pub fn bare(&self) -> String {
        match self {
            ProductId::Uuid(uuid) => uuid.hyphenated().to_string(),
            ProductId::Confirm => "confirm".to_owned(),
            ProductId::Error => "error".to_owned(),
            ProductId::Agreement => "agreement".to_owned(),
        }
    }
}

impl FromStr for ProductId {
    type Err = UrnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = strip_prefix(s);
        if bare.is_empty() {
            return Err(UrnError::Empty);
        }
        if bare.eq_ignore_ascii_case("confirm") {
            Ok(ProductId::Confirm)
        } else if bare.eq_ignore_ascii_case("error") {
            Ok(ProductId::Error)
        } else if bare.eq_ignore_ascii_case("agreement") {
            Ok(ProductId::Agreement)
        } else if bare.len() == 36 {
            // Only the hyphenated form: braces, `urn:uuid:` and the simple form are not SHS.
            Uuid::try_parse(bare)
                .map(ProductId::Uuid)
                .map_err(|_| UrnError::ProductId(bare.to_owned()))
        } else {
            Err(UrnError::ProductId(bare.to_owned()))
        }
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{URN_PREFIX}{}", self.bare())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_number_accepts_prefix_in_any_case() {
        for input in [
            "5565317129",
            "urn:X-shs:5565317129",
            "URN:x-SHS:5565317129",
            " urn:x-shs:5565317129 ",
        ] {
            let org: OrgNumber = input.parse().unwrap();
            assert_eq!(org.as_str(), "5565317129");
            assert_eq!(org.to_string(), "urn:X-shs:5565317129");
        }
    }

    #[test]
    fn org_number_rejects_wrong_length_and_non_digits() {
        assert_eq!("".parse::<OrgNumber>(), Err(UrnError::Empty));
        assert_eq!("urn:X-shs:".parse::<OrgNumber>(), Err(UrnError::Empty));
        assert!(matches!(
            "556531712".parse::<OrgNumber>(),
            Err(UrnError::OrgNumber(_))
        ));
        assert!(matches!(
            "55653171290".parse::<OrgNumber>(),
            Err(UrnError::OrgNumber(_))
        ));
        assert!(matches!(
            "556531-7129".parse::<OrgNumber>(),
            Err(UrnError::OrgNumber(_))
        ));
        assert!(matches!(
            "５５６５３１７１２９".parse::<OrgNumber>(),
            Err(UrnError::OrgNumber(_))
        ));
    }

    #[test]
    fn org_number_found_in_certificate_fields() {
        let found = OrgNumber::find_in("NTRSE-5565317129").unwrap();
        assert_eq!(found.as_str(), "5565317129");
        assert_eq!(
            OrgNumber::find_in("SE556531712901").map(|o| o.to_string()),
            None
        );
        assert_eq!(
            OrgNumber::find_in("12-5565317129-x").map(|o| o.as_str().to_owned()),
            Some("5565317129".to_owned())
        );
        assert_eq!(OrgNumber::find_in("no digits"), None);
    }

    #[test]
    fn address_with_and_without_sub_address() {
        let plain: Address = "urn:x-shs:2120000142".parse().unwrap();
        assert_eq!(plain.sub_address(), None);
        assert_eq!(plain.to_string(), "urn:X-shs:2120000142");

        let sub: Address = "2120000142.bygglov".parse().unwrap();
        assert_eq!(sub.org().as_str(), "2120000142");
        assert_eq!(sub.sub_address(), Some("bygglov"));
        assert_eq!(sub.bare(), "2120000142.bygglov");
        assert_eq!(sub.to_string(), "urn:X-shs:2120000142.bygglov");
    }

    #[test]
    fn address_rejects_bad_sub_address() {
        assert!(matches!(
            "2120000142.".parse::<Address>(),
            Err(UrnError::SubAddress(_))
        ));
        assert!(matches!(
            "2120000142.a b".parse::<Address>(),
            Err(UrnError::SubAddress(_))
        ));
        assert!(matches!(
            "212000014.x".parse::<Address>(),
            Err(UrnError::OrgNumber(_))
        ));
    }

    #[test]
    fn product_ids() {
        let ping: ProductId = "urn:X-shs:00000000-0000-0000-0000-000000000000"
            .parse()
            .unwrap();
        assert_eq!(ping, ProductId::PING);
        let upper: ProductId = "URN:X-SHS:6B4A4E2C-0F8B-4C1D-9E5A-0C7F3B2A1D00"
            .parse()
            .unwrap();
        assert_eq!(
            upper.to_string(),
            "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00"
        );
        assert_eq!("urn:X-shs:confirm".parse(), Ok(ProductId::Confirm));
        assert_eq!("error".parse(), Ok(ProductId::Error));
        assert_eq!("Agreement".parse(), Ok(ProductId::Agreement));
        assert!(ProductId::Confirm.is_management());
        assert!(!ProductId::Agreement.is_management());
        assert!(matches!(
            "ping".parse::<ProductId>(),
            Err(UrnError::ProductId(_))
        ));
        assert!(matches!(
            "6b4a4e2c0f8b4c1d9e5a0c7f3b2a1d00".parse::<ProductId>(),
            Err(UrnError::ProductId(_))
        ));
        assert_eq!("".parse::<ProductId>(), Err(UrnError::Empty));
    }
}
