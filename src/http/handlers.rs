//! One function per SHS endpoint: authorise, call the broker, shape the answer of spec §3.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::broker::{
    Answer as IntakeAnswer, BodyError, BodySource, Broker, Caller, IntakeError, Receipt, SynchReply,
};
use crate::clock;
use crate::protocol::urn::{Address, ProductId};

use super::error::{ApiError, ErrorContext};
use super::query;
use crate::body::{ResponseBody, channel, full};

/// How many store chunks may wait between the store and a slow fetching client.
const FETCH_CHANNEL_CHUNKS: usize = 8;

/// Messages whose data parts are at most this big are fetched from one buffer instead of
/// streamed (see [`Broker::whole_message`]); larger ones stream, so memory per fetch
/// stays bounded by this and the channel above.
const WHOLE_FETCH_MAX: u64 = 64 * 1024;

/// A handler's answer: a response, or an error with the label ids it concerns.
pub type Answer = Result<Response<ResponseBody>, (ApiError, ErrorContext)>;

/// `POST /shs/rs`.
pub async fn send(
    broker: &Broker,
    caller: &Caller,
    request: http::Request<Incoming>,
    idle: Duration,
) -> Answer {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = IncomingBody {
        body: request.into_body(),
        idle,
    };
    match broker.intake(caller, content_type.as_deref(), body).await {
        Ok(IntakeAnswer::Stored(receipt)) => Ok(accepted(broker, &receipt)),
        Ok(IntakeAnswer::Reply(reply)) => Ok(replied(reply)),
        Err(IntakeError { error, ids }) => Err((
            error.into(),
            ErrorContext {
                corr_id: ids.as_ref().map(|ids| ids.corr_id.clone()),
                content_id: ids.map(|ids| ids.content_id),
            },
        )),
    }
}

/// The 200 of a synchronous exchange (spec §6): the reply message, streamed.
fn replied(reply: SynchReply) -> Response<ResponseBody> {
    let mut response = Response::new(reply.body);
    let headers = response.headers_mut();
    for (name, value) in &reply.shs_headers {
        headers.append(name.clone(), value.clone());
    }
    if let Ok(value) = HeaderValue::from_str(&reply.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    response
}

/// The 202 of spec §3.1.
fn accepted(broker: &Broker, receipt: &Receipt) -> Response<ResponseBody> {
    let mut response = Response::new(full(Bytes::from(receipt.tx_id.clone())));
    *response.status_mut() = StatusCode::ACCEPTED;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("x-shs-txid", &receipt.tx_id);
    put("x-shs-corrid", &receipt.corr_id);
    put("x-shs-contentid", &receipt.content_id);
    put("x-shs-nodeid", &broker.config().node_id);
    put("x-shs-localid", &receipt.local_id.0.to_string());
    put("x-shs-arrivaldate", &clock::shs_datetime(receipt.arrival));
    put(
        "x-shs-duplicatemsg",
        if receipt.duplicate { "yes" } else { "no" },
    );
    response
}

/// `GET /shs/ds/{address}[/{product}]`.
pub async fn list(
    broker: &Broker,
    caller: &Caller,
    mailbox: &Address,
    product: Option<ProductId>,
    raw_query: Option<&str>,
) -> Answer {
    let mut query =
        query::list_query(raw_query, broker.config().limits.list_max_hits).map_err(plain)?;
    if let Some(product) = product {
        // The product in the path narrows the list to that product alone.
        query.products = vec![product];
    }
    let list = broker.list(caller, mailbox, query).await.map_err(plain)?;
    let mut response = Response::new(full(list.to_xml()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=UTF-8"),
    );
    Ok(response)
}

/// `GET /shs/ds/{address}/{txId}`: the message streamed from the store.
pub async fn fetch(
    broker: &std::sync::Arc<Broker>,
    caller: &Caller,
    mailbox: &Address,
    tx_id: &str,
) -> Answer {
    let record = broker
        .fetchable(caller, mailbox, tx_id)
        .await
        .map_err(|error| (error.into(), ErrorContext::default()))?;
    let corr_id = record.summary.corr_id.clone();
    let signer = record.signer.clone();
    let body = if record.payload.size <= WHOLE_FETCH_MAX {
        let whole = broker
            .whole_message(&record)
            .await
            .map_err(|error| (error.into(), ErrorContext::default()))?;
        full(whole)
    } else {
        let (sender, body) = channel(FETCH_CHANNEL_CHUNKS);
        let streaming = std::sync::Arc::clone(broker);
        tokio::spawn(async move { streaming.stream_message(record, sender).await });
        body
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    if let Ok(value) = HeaderValue::from_str(tx_id) {
        headers.insert("x-shs-txid", value);
    }
    if let Ok(value) = HeaderValue::from_str(&corr_id) {
        headers.insert("x-shs-corrid", value);
    }
    // Who signed the message's data, as verified at intake (spec §7); UTF-8,
    // percent-encoded where a header cannot carry it.
    if let Some(signer) = signer
        && let Ok(value) = HeaderValue::from_str(&crate::percent::percent_encode_header(&signer))
    {
        headers.insert("x-shs-signer", value);
    }
    Ok(response)
}

/// `POST /shs/ds/{address}/{txId}?action=ack`.
pub async fn ack(
    broker: &Broker,
    caller: &Caller,
    mailbox: &Address,
    tx_id: &str,
    raw_query: Option<&str>,
) -> Answer {
    query::ack_action(raw_query).map_err(plain)?;
    broker
        .acknowledge(caller, mailbox, tx_id)
        .await
        .map_err(plain)?;
    let mut response = Response::new(full("OK"));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

fn plain(error: crate::broker::BrokerError) -> (ApiError, ErrorContext) {
    (error.into(), ErrorContext::default())
}

/// A hyper request body as the broker reads it, with the idle timeout of spec §12.
struct IncomingBody {
    body: Incoming,
    idle: Duration,
}

impl BodySource for IncomingBody {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, BodyError>> {
        loop {
            match tokio::time::timeout(self.idle, self.body.frame()).await {
                Err(_) => return Some(Err(BodyError::IdleTimeout(self.idle.as_secs()))),
                Ok(None) => return None,
                Ok(Some(Err(err))) => return Some(Err(BodyError::Broken(err.to_string()))),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                    // Trailers carry nothing for SHS.
                }
            }
        }
    }
}
