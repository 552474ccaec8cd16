//! The stored form of every structured value: one format-version byte, then the body.
//!
//! The version byte lets a later shsd read what an older one wrote (decode the old body,
//! convert) and lets an older shsd refuse clearly, instead of misreading, what a newer one
//! wrote. Version 3 bodies are MessagePack with fields by position: records are decoded
//! several times per fetch and ack, and JSON's text (RFC 3339 times, escaped labels) cost
//! about a tenth of the server's time there; field names (version 2) made a mailbox index
//! entry 513 bytes instead of 311, which is more than what the log keeps apart
//! (`wal::value`), so every listed entry cost a log read, and more of sled's cache and
//! checkpoint work per message.
//!
//! Because fields are positional, **a field is only ever added at the end of its struct,
//! with `#[serde(default)]`** (serde then fills it in for shorter, older bodies), and never
//! reordered or removed; `version_3_layout_is_fixed` holds a body written by this build.
//! Versions 2 (MessagePack with named fields) and 1 (JSON) are still read; a value is
//! rewritten as version 3 when next written. Payload chunks are raw bytes and not framed.
//!
//! The `as_*` adapters write compact binary forms (bytes, microseconds) for MessagePack and
//! the readable forms (Latin-1 strings, RFC 3339) for JSON, which the admin API also uses.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StoreError;

/// The format version written by this build: a MessagePack body, fields by position.
pub const FORMAT_VERSION: u8 = 3;

/// The format version of a MessagePack body with named fields, written by earlier builds
/// and still read.
pub const NAMED_VERSION: u8 = 2;

/// The format version of a JSON body, written by earlier builds and still read.
pub const JSON_VERSION: u8 = 1;

/// Why stored bytes cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A value without even a version byte.
    #[error("empty value")]
    Empty,
    /// Written by another (newer) shsd, or not by shsd at all.
    #[error(
        "unknown format version {0} (this build reads versions {JSON_VERSION} to {FORMAT_VERSION})"
    )]
    UnknownVersion(u8),
    /// A version 1 body that does not match the structure.
    #[error("malformed body: {0}")]
    Json(#[from] serde_json::Error),
    /// A MessagePack body (version 2 or 3) that does not match the structure.
    #[error("malformed body: {0}")]
    Read(#[from] rmp_serde::decode::Error),
    /// A value that cannot be written (a map with non-string keys, say): a bug, not data.
    #[error("cannot encode: {0}")]
    Write(#[from] rmp_serde::encode::Error),
}

impl From<CodecError> for StoreError {
    fn from(err: CodecError) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

/// Writes `value` as version byte + MessagePack body, structs as arrays of their fields.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT_VERSION);
    value.serialize(&mut rmp_serde::Serializer::new(&mut out))?;
    Ok(out)
}

/// Reads a value written by [`encode`] or by an earlier build, refusing versions this build
/// does not know.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        // serde's derived structs read both arrays (version 3) and maps (version 2).
        Some((&FORMAT_VERSION | &NAMED_VERSION, body)) => Ok(rmp_serde::from_slice(body)?),
        Some((&JSON_VERSION, body)) => Ok(serde_json::from_slice(body)?),
        Some((&other, _)) => Err(CodecError::UnknownVersion(other)),
    }
}

/// Bytes: raw bytes in binary formats; in JSON a string of chars U+0000..=U+00FF, one per
/// byte, exact for any bytes and readable for ASCII labels.
pub(crate) mod as_latin1 {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(bytes);
        }
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        s.serialize_str(&text)
    }

    /// Straight from the reader's buffer into the bytes: no intermediate `String`. Records
    /// are read on every list, fetch and ack, and the label is most of a record.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(Latin1)
        } else {
            d.deserialize_byte_buf(Latin1)
        }
    }

    struct Latin1;

    impl serde::de::Visitor<'_> for Latin1 {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes, or a string of chars up to U+00FF")
        }

        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
            if text.is_ascii() {
                return Ok(text.as_bytes().to_vec());
            }
            text.chars()
                .map(|c| u8::try_from(c).map_err(|_| E::custom("char above U+00FF")))
                .collect()
        }
    }
}

/// A UTC time: microseconds since 1970 in binary formats (no text to parse on every record
/// read); in JSON an RFC 3339 string with microseconds.
pub(crate) mod as_timestamp {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_i64(at.timestamp_micros());
        }
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        if !d.is_human_readable() {
            let micros = i64::deserialize(d)?;
            return DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| D::Error::custom(format!("time out of range: {micros} µs")));
        }
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(D::Error::custom)
    }
}

/// An organisation number as its ten digits.
pub(crate) mod as_org {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::protocol::urn::OrgNumber;

    pub fn serialize<S: Serializer>(org: &OrgNumber, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(org.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OrgNumber, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// An optional address in its bare form (`5565317129.bygglov`).
pub(crate) mod as_opt_address {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::protocol::urn::Address;

    pub fn serialize<S: Serializer>(addr: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
        match addr {
            Some(addr) => s.serialize_some(&addr.bare()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Address>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(D::Error::custom))
            .transpose()
    }
}

/// An SHS error code by its name.
pub(crate) mod as_error_code {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::protocol::ErrorCode;

    pub fn serialize<S: Serializer>(code: &ErrorCode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(code.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::protocol::ErrorCode;
    use crate::store::record::*;

    fn record() -> MessageRecord {
        let at = Utc.with_ymd_and_hms(2024, 5, 17, 8, 30, 0).unwrap();
        MessageRecord {
            local_id: LocalId(Uuid::from_u128(1)),
            tx_id: "tx-1".into(),
            sender: "5565317129".parse().unwrap(),
            mailbox: Some("urn:X-shs:2120000142.bygglov".parse().unwrap()),
            state: State::Quarantined,
            state_log: vec![
                StateChange {
                    state: State::New,
                    at,
                },
                StateChange {
                    state: State::Quarantined,
                    at,
                },
            ],
            arrival: at,
            arrival_seq: 7,
            label: b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\r\n<shs.label>\xe5\xe4\xf6\x00\xff</shs.label>".to_vec(),
            summary: MessageSummary {
                tx_id: "tx-1".into(),
                subject: Some("Bygglov \u{e5}\u{e4}\u{f6}".into()),
                ..MessageSummary::default()
            },
            payload: PayloadInfo {
                id: PayloadId(Uuid::from_u128(2)),
                parts: vec![PartInfo {
                    raw_headers: b"Content-Disposition: attachment; filename=\"r\xe4kning.pdf\"\r\n"
                        .to_vec(),
                    len: 3,
                    chunks: 1,
                }],
                size: 3,
            },
            error: Some(ErrorInfo {
                code: ErrorCode::MissingAgreement,
                text: "no agreement".into(),
            }),
            signer: None,
            parent: None,
            copies: vec![LocalId(Uuid::from_u128(3))],
            answer: None,
        }
    }

    #[test]
    fn record_round_trips_byte_exact() {
        let original = record();
        let bytes = encode(&original).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        let back: MessageRecord = decode(&bytes).unwrap();
        assert_eq!(back, original);
    }

    /// Stores written by earlier builds hold version 1 (JSON) values; they stay readable.
    #[test]
    fn version_1_json_is_still_read() {
        let original = record();
        let mut bytes = vec![JSON_VERSION];
        bytes.extend(serde_json::to_vec(&original).unwrap());
        let back: MessageRecord = decode(&bytes).unwrap();
        assert_eq!(back, original);
    }

    /// Stores written by builds of 2026-11-23 hold version 2 (named fields); they stay
    /// readable, and shorter than JSON but longer than version 3.
    #[test]
    fn version_2_named_fields_are_still_read() {
        let original = record();
        let mut bytes = vec![NAMED_VERSION];
        original
            .serialize(&mut rmp_serde::Serializer::new(&mut bytes).with_struct_map())
            .unwrap();
        let back: MessageRecord = decode(&bytes).unwrap();
        assert_eq!(back, original);
        assert!(encode(&original).unwrap().len() < bytes.len());
    }

    /// Fields are positional in version 3: a body written by this build must read back the
    /// same forever. If this fails, a field was reordered, removed, or added in the middle.
    #[test]
    fn version_3_layout_is_fixed() {
        let written = hex_decode(VERSION_3_RECORD);
        let back: MessageRecord = decode(&written).unwrap();
        assert_eq!(back, record());
        assert_eq!(encode(&record()).unwrap(), written);
    }

    /// `record()` as this build writes it.
    const VERSION_3_RECORD: &str = concat!(
        "03dc0010c41000000000000000000000000000000001a474782d31aa35353635333137313239b232",
        "3132303030303134322e627967676c6f76ab51554152414e54494e45449292a34e4557cf000618a2",
        "284a720092ab51554152414e54494e4544cf000618a2284a7200cf000618a2284a720007c4493c3f",
        "786d6c2076657273696f6e3d22312e302220656e636f64696e673d2249534f2d383835392d31223f",
        "3e0d0a3c7368732e6c6162656c3ee5e4f600ff3c2f7368732e6c6162656c3e9fa474782d31a0a0a0",
        "00c0c0c0c0a0a0a090ae427967676c6f7620c3a5c3a4c3b69093c410000000000000000000000000",
        "000000029193c439436f6e74656e742d446973706f736974696f6e3a206174746163686d656e743b",
        "2066696c656e616d653d2272e46b6e696e672e706466220d0a03010392b04d697373696e67416772",
        "65656d656e74ac6e6f2061677265656d656e74c0c091c41000000000000000000000000000000003",
        "c0",
    );

    fn hex_decode(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn unknown_version_is_a_clear_error() {
        let mut bytes = encode(&record()).unwrap();
        bytes[0] = 4;
        let err = decode::<MessageRecord>(&bytes).unwrap_err();
        assert!(matches!(err, CodecError::UnknownVersion(4)));
        assert!(err.to_string().contains("unknown format version 4"));
        let store_err: StoreError = err.into();
        assert!(matches!(store_err, StoreError::Corrupt(_)));
        assert!(matches!(
            decode::<MessageRecord>(&[]),
            Err(CodecError::Empty)
        ));
    }

    #[test]
    fn malformed_body_is_an_error() {
        assert!(matches!(
            decode::<MessageRecord>(b"\x01{\"local_id\":"),
            Err(CodecError::Json(_))
        ));
        let bytes = encode(&record()).unwrap();
        assert!(matches!(
            decode::<MessageRecord>(&bytes[..bytes.len() / 2]),
            Err(CodecError::Read(_))
        ));
        // A label char above U+00FF cannot come from `as_latin1` and is refused.
        let mut json = serde_json::to_value(record()).unwrap();
        json["label"] = serde_json::Value::String("\u{20ac}".into());
        let mut bytes = vec![JSON_VERSION];
        bytes.extend(serde_json::to_vec(&json).unwrap());
        assert!(decode::<MessageRecord>(&bytes).is_err());
    }

    /// The JSON form (version 1, and what the admin API shows) uses plain strings.
    #[test]
    fn json_form_uses_plain_strings() {
        let json = serde_json::to_value(record()).unwrap();
        assert_eq!(json["sender"], "5565317129");
        assert_eq!(json["mailbox"], "2120000142.bygglov");
        assert_eq!(json["state"], "QUARANTINED");
        assert_eq!(json["arrival"], "2024-05-17T08:30:00.000000Z");
        assert_eq!(json["error"]["code"], "MissingAgreement");
    }

    /// MessagePack keeps the label as raw bytes (no per-byte escaping or UTF-8 expansion) and
    /// is smaller than the JSON form.
    #[test]
    fn binary_form_keeps_bytes_raw() {
        let original = record();
        let bytes = encode(&original).unwrap();
        assert!(
            bytes
                .windows(original.label.len())
                .any(|window| window == original.label.as_slice())
        );
        assert!(bytes.len() < serde_json::to_vec(&original).unwrap().len());
    }

    proptest::proptest! {
        /// Any bytes, ASCII or not, escaped in JSON or not, come back exactly.
        #[test]
        fn any_label_bytes_round_trip(label in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let mut stored = record();
            stored.label = label.clone();
            let back: MessageRecord = decode(&encode(&stored).unwrap()).unwrap();
            proptest::prop_assert_eq!(&back.label, &label);
            let mut json = vec![JSON_VERSION];
            json.extend(serde_json::to_vec(&stored).unwrap());
            let back: MessageRecord = decode(&json).unwrap();
            proptest::prop_assert_eq!(back.label, label);
        }
    }
}
