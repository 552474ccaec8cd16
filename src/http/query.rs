//! The query parameters of list and acknowledge requests (spec §3.3, §3.5), parsed into
//! typed values; every invalid value is a 400 naming its parameter.

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};

use crate::broker::BrokerError;
use crate::protocol::label::{SequenceType, Status};
use crate::protocol::urn::ProductId;
use crate::store::{MailboxQuery, MetaFilter, SortAttribute, SortBy, SortOrder};

use crate::percent::query_pairs;

/// Parses a list request's query string. `max_hits_cap` is the configured cap on `maxhits`.
pub fn list_query(query: Option<&str>, max_hits_cap: usize) -> Result<MailboxQuery, BrokerError> {
    let pairs = query_pairs(query.unwrap_or(""))
        .ok_or_else(|| bad("the query string", "it has a broken %-escape"))?;
    let mut out = MailboxQuery {
        max_hits: crate::store::query::DEFAULT_MAX_HITS.min(max_hits_cap),
        ..MailboxQuery::default()
    };
    let mut meta_name = None;
    let mut meta_value = None;
    let mut sort_attribute = None;
    let mut sort_order = SortOrder::Ascending;
    for (name, value) in pairs {
        match name.as_str() {
            "producttype" => {
                out.products = value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.parse::<ProductId>()
                            .map_err(|err| bad("producttype", &err.to_string()))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "filter" => match value.as_str() {
                "noack" => out.include_fetched = true,
                other => return Err(bad("filter", &format!("{other:?} is not \"noack\""))),
            },
            "maxhits" => {
                let hits: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("maxhits", &format!("{value:?} is not a number")))?;
                out.max_hits = hits.min(max_hits_cap);
            }
            "status" => {
                out.status = value
                    .parse::<Status>()
                    .map_err(|_| bad("status", &format!("{value:?} is not production or test")))?;
            }
            "corrid" => out.corr_id = Some(value),
            "contentid" => out.content_id = Some(value),
            "originator" => out.originator = Some(value),
            "endrecipient" => out.end_recipient = Some(value),
            "sequencetype" => {
                out.sequence_type = Some(value.parse::<SequenceType>().map_err(|_| {
                    bad(
                        "sequencetype",
                        &format!("{value:?} is not event, request, reply or adm"),
                    )
                })?);
            }
            "since" => out.since = Some(parse_since(&value)?),
            "metaname" => meta_name = Some(value),
            "metavalue" => meta_value = Some(value),
            "sortattribute" => sort_attribute = Some(sort_attribute_of(&value)?),
            "sortorder" => sort_order = order_of("sortorder", &value)?,
            "arrivalorder" => out.arrival_order = order_of("arrivalorder", &value)?,
            // Parameters of other SHS implementations that do not change the answer.
            _ => {}
        }
    }
    out.meta = match (meta_name, meta_value) {
        (Some(name), value) => Some(MetaFilter { name, value }),
        (None, Some(_)) => return Err(bad("metavalue", "it needs metaname")),
        (None, None) => None,
    };
    out.sort = sort_attribute.map(|attribute| SortBy {
        attribute,
        order: sort_order,
    });
    Ok(out)
}

/// Checks an acknowledge request's query: exactly `action=ack` (spec §3.5).
pub fn ack_action(query: Option<&str>) -> Result<(), BrokerError> {
    let pairs = query_pairs(query.unwrap_or(""))
        .ok_or_else(|| bad("the query string", "it has a broken %-escape"))?;
    match pairs.iter().find(|(name, _)| name == "action") {
        Some((_, value)) if value == "ack" => Ok(()),
        Some((_, value)) => Err(bad("action", &format!("{value:?} is not \"ack\""))),
        None => Err(bad("action", "it is missing (POST .../{txId}?action=ack)")),
    }
}

fn bad(parameter: &str, reason: &str) -> BrokerError {
    BrokerError::BadRequest(format!("invalid {parameter}: {reason}"))
}

/// `yyyy-MM-ddTHH:mm:ss` in the node's local time, or RFC 3339 with an offset.
fn parse_since(value: &str) -> Result<DateTime<Utc>, BrokerError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S").map_err(|_| {
        bad(
            "since",
            &format!("{value:?} is not yyyy-MM-ddTHH:mm:ss or RFC 3339"),
        )
    })?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|time| time.with_timezone(&Utc))
        .ok_or_else(|| {
            bad(
                "since",
                &format!("{value:?} does not exist in the node's time zone"),
            )
        })
}

fn order_of(parameter: &str, value: &str) -> Result<SortOrder, BrokerError> {
    match value.to_ascii_lowercase().as_str() {
        "asc" | "ascending" => Ok(SortOrder::Ascending),
        "desc" | "descending" => Ok(SortOrder::Descending),
        _ => Err(bad(parameter, &format!("{value:?} is not asc or desc"))),
    }
}

fn sort_attribute_of(value: &str) -> Result<SortAttribute, BrokerError> {
    Ok(match value {
        "tx.id" | "txid" => SortAttribute::TxId,
        "corr.id" | "corrid" => SortAttribute::CorrId,
        "content.id" | "contentid" => SortAttribute::ContentId,
        "timestamp" => SortAttribute::Timestamp,
        "size" => SortAttribute::Size,
        "originator" => SortAttribute::Originator,
        "from" => SortAttribute::From,
        "to" => SortAttribute::To,
        "end-recipient" | "endrecipient" => SortAttribute::EndRecipient,
        "product" | "producttype" => SortAttribute::Product,
        "sequence-type" | "sequencetype" => SortAttribute::SequenceType,
        "status" => SortAttribute::Status,
        "subject" => SortAttribute::Subject,
        _ => {
            return Err(bad(
                "sortattribute",
                &format!("{value:?} is not a message-list attribute"),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<MailboxQuery, BrokerError> {
        list_query(Some(query), 10_000)
    }

    fn param_of(err: BrokerError) -> String {
        err.to_string()
    }

    #[test]
    fn no_parameters_is_the_default_query() {
        assert_eq!(list_query(None, 10_000).unwrap(), MailboxQuery::default());
    }

    #[test]
    fn every_parameter_is_read() {
        let q = parse(
            "producttype=confirm,urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00&filter=noack&maxhits=5\
             &status=test&corrid=c1&contentid=k1&originator=urn:X-shs:5590000001&endrecipient=e1\
             &sequencetype=request&since=2026-11-22T10:00:00Z&metaname=arende&metavalue=BN+1\
             &sortattribute=corr.id&sortorder=desc&arrivalorder=desc",
        )
        .unwrap();
        assert_eq!(q.products.len(), 2);
        assert!(q.include_fetched);
        assert_eq!(q.max_hits, 5);
        assert_eq!(q.status, Status::Test);
        assert_eq!(q.corr_id.as_deref(), Some("c1"));
        assert_eq!(q.content_id.as_deref(), Some("k1"));
        assert_eq!(q.originator.as_deref(), Some("urn:X-shs:5590000001"));
        assert_eq!(q.end_recipient.as_deref(), Some("e1"));
        assert_eq!(q.sequence_type, Some(SequenceType::Request));
        assert_eq!(q.since.unwrap().to_rfc3339(), "2026-11-22T10:00:00+00:00");
        assert_eq!(
            q.meta,
            Some(MetaFilter {
                name: "arende".into(),
                value: Some("BN 1".into())
            })
        );
        assert_eq!(
            q.sort,
            Some(SortBy {
                attribute: SortAttribute::CorrId,
                order: SortOrder::Descending
            })
        );
        assert_eq!(q.arrival_order, SortOrder::Descending);
    }

    #[test]
    fn maxhits_is_capped() {
        assert_eq!(
            list_query(Some("maxhits=999999"), 10_000).unwrap().max_hits,
            10_000
        );
        assert_eq!(list_query(None, 50).unwrap().max_hits, 50);
    }

    #[test]
    fn local_since_is_accepted() {
        assert!(parse("since=2026-11-22T10:00:00").unwrap().since.is_some());
    }

    #[test]
    fn invalid_values_name_their_parameter() {
        for (query, parameter) in [
            ("maxhits=ten", "maxhits"),
            ("maxhits=-1", "maxhits"),
            ("filter=all", "filter"),
            ("status=prod", "status"),
            ("sequencetype=question", "sequencetype"),
            ("since=yesterday", "since"),
            ("producttype=bygglov", "producttype"),
            ("metavalue=x", "metavalue"),
            ("sortattribute=colour", "sortattribute"),
            ("sortorder=up", "sortorder"),
            ("arrivalorder=up", "arrivalorder"),
            ("corrid=%zz", "query string"),
        ] {
            let err = parse(query).unwrap_err();
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST, "{query}");
            assert!(param_of(err).contains(parameter), "{query}");
        }
    }

    #[test]
    fn ack_needs_action_ack() {
        assert!(ack_action(Some("action=ack")).is_ok());
        assert!(ack_action(Some("x=1&action=ack")).is_ok());
        assert!(ack_action(None).is_err());
        assert!(ack_action(Some("action=fetch")).is_err());
    }
}
