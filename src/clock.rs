//! Time as SHS writes it: `yyyy-MM-ddTHH:mm:ss` in the node's local time (spec §3.1).

use chrono::{DateTime, Local, Utc};

/// The current time; one function so that every timestamp of a request agrees.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// `yyyy-MM-ddTHH:mm:ss` in the node's local time zone, as in `X-shs-arrivaldate`, label
/// `datetime` and `history/datetime`.
pub fn shs_datetime(time: DateTime<Utc>) -> String {
    time.with_timezone(&Local)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shs_datetime_has_the_shs_shape() {
        let text = shs_datetime(now());
        assert_eq!(text.len(), 19, "{text}");
        assert_eq!(&text[4..5], "-");
        assert_eq!(&text[10..11], "T");
        assert!(chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S").is_ok());
    }
}
