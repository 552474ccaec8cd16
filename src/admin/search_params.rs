//! The message-search parameters shared by the JSON API and the console's search form:
//! `txid`, `corrid`, `org`, `product`, `state`, `since`, `until`, `limit`, parsed into an
//! [`AdminSearch`] in one place so both answer the same question the same way.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::percent::query_pairs;
use crate::protocol::urn::{OrgNumber, ProductId};
use crate::store::{AdminSearch, State};

/// Who sends the parameters, which decides how forgiving the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// A script: every parameter given must be valid; times are RFC 3339.
    Api,
    /// An HTML form: empty fields are not filters (a browser sends every field), and times
    /// may also be `datetime-local` values (`2026-11-22T12:00`), read as UTC.
    Form,
}

/// A refused parameter: which one and why, for a 400 or the form's error line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParamError {
    /// The parameter's name (`query` for a query string that is not decodable at all).
    pub parameter: String,
    /// What is wrong with its value.
    pub reason: String,
}

impl ParamError {
    fn new(parameter: &str, reason: String) -> Self {
        ParamError {
            parameter: parameter.to_owned(),
            reason,
        }
    }
}

/// Parses the search parameters; `state` only where `allow_state`. Unknown parameters are
/// refused rather than ignored: an ignored typo would silently widen the search.
pub(super) fn parse(
    query: &str,
    allow_state: bool,
    dialect: Dialect,
) -> Result<AdminSearch, ParamError> {
    let pairs = query_pairs(query)
        .ok_or_else(|| ParamError::new("query", "it has a broken %-escape".into()))?;
    let mut search = AdminSearch::default();
    for (name, value) in pairs {
        let value = match dialect {
            Dialect::Api => value,
            Dialect::Form => value.trim().to_owned(),
        };
        if dialect == Dialect::Form && value.is_empty() {
            continue;
        }
        match name.as_str() {
            "txid" => search.tx_id = Some(value),
            "corrid" => search.corr_id = Some(value),
            "org" => {
                let org = value.parse::<OrgNumber>();
                search.organisation = Some(org.map_err(|e| ParamError::new("org", e.to_string()))?);
            }
            "product" => {
                let product = value.parse::<ProductId>();
                search.product =
                    Some(product.map_err(|e| ParamError::new("product", e.to_string()))?);
            }
            "state" if allow_state => search.state = Some(state_of(&value)?),
            "since" => search.arrived_from = Some(time_of("since", &value, dialect)?),
            "until" => search.arrived_until = Some(time_of("until", &value, dialect)?),
            "limit" => {
                search.limit = value.parse().map_err(|_| {
                    ParamError::new("limit", format!("{value:?} is not a non-negative number"))
                })?;
            }
            _ => return Err(ParamError::new(&name, "unknown parameter".into())),
        }
    }
    Ok(search)
}

fn state_of(value: &str) -> Result<State, ParamError> {
    State::parse(value).ok_or_else(|| ParamError::new("state", format!("{value:?} is not a state")))
}

fn time_of(parameter: &str, value: &str, dialect: Dialect) -> Result<DateTime<Utc>, ParamError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&Utc));
    }
    if dialect == Dialect::Form {
        for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(value, format) {
                return Ok(naive.and_utc());
            }
        }
    }
    Err(ParamError::new(
        parameter,
        format!("{value:?} is not an RFC 3339 time"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_dialect_refuses_empty_values_and_local_times() {
        let err = parse("org=", true, Dialect::Api).unwrap_err();
        assert_eq!(err.parameter, "org");
        let err = parse("since=2026-11-22T12:00", true, Dialect::Api).unwrap_err();
        assert_eq!(err.parameter, "since");
        let err = parse("sice=x", true, Dialect::Api).unwrap_err();
        assert_eq!(err.parameter, "sice");
        let err = parse("state=RECEIVED", false, Dialect::Api).unwrap_err();
        assert_eq!(err.parameter, "state");
    }

    #[test]
    fn the_form_dialect_skips_empty_fields_and_reads_local_times_as_utc() {
        let search = parse(
            "txid=&corrid=+c1+&org=&product=&state=quarantined&since=2026-11-22T12%3A00&until=&limit=5",
            true,
            Dialect::Form,
        )
        .unwrap();
        assert_eq!(search.tx_id, None);
        assert_eq!(search.corr_id.as_deref(), Some("c1"));
        assert_eq!(search.state, Some(State::Quarantined));
        assert_eq!(
            search.arrived_from.map(|t| t.to_rfc3339()),
            Some("2026-11-22T12:00:00+00:00".to_owned())
        );
        assert_eq!(search.limit, 5);
        assert!(parse("org=12", true, Dialect::Form).is_err());
    }
}
