//! Synchronous request/reply (spec §6): a label with `transfer-type="synch"` is checked like
//! an asynchronous one (authorised, validated, agreement-checked), then answered in the
//! same HTTP exchange — by this node for the built-in *ping* product, or by forwarding the
//! request to a local business system's request URL or another node's address, streaming
//! the request out and the reply back. No payload is kept; an answered exchange is kept in
//! the message log as a record in state SENT with its label.
//!
//! Failures: no answer in time → 504 `Timeout`; destination unreachable → 502
//! `MissingDeliveryExecution`; a destination's own SHS error is passed through with its
//! status and code.

use bytes::Bytes;
use chrono::Local;
use http::{HeaderMap, Method, Request, header};
use http_body_util::BodyExt;

use crate::body::ResponseBody;
use crate::clock;
use crate::directory::AgreementRefusal;
use crate::directory::agreements::{self, Exchange};
use crate::protocol::label::{ContentParts, Data, From, History, Label, SequenceType, To};
use crate::protocol::mime::{Event, MessageReader, MessageWriter, PartHeaders, new_boundary};
use crate::protocol::urn::{Address, ProductId};
use crate::protocol::{ErrorCode, ProtocolError};

use super::intake::{BodySource, CheckedLabel};
use super::push::excerpt;
use super::upstream::{self, OpenError, Target};
use super::{Broker, BrokerError};

/// The built-in ping product (spec §1): answered by the node itself.
pub const PING: &str = "00000000-0000-0000-0000-000000000000";

/// How many chunks may wait between the reading and the writing side of a forward.
const CHANNEL_CHUNKS: usize = 4;

/// The answer to a synchronous request: the reply message, as it streams in.
pub struct SynchReply {
    /// The reply's `Content-Type` (`message/rfc822` for ping; the destination's otherwise).
    pub content_type: String,
    /// The destination's `X-shs-*` headers, passed on.
    pub shs_headers: HeaderMap,
    /// The reply message.
    pub body: ResponseBody,
}

/// Where a synchronous request goes.
enum Destination {
    /// This node answers (ping).
    Ping,
    /// POST it to `url`.
    Forward {
        /// The destination.
        url: String,
        /// A local business system may be plain HTTP on the local network.
        allow_http: bool,
    },
}

impl Broker {
    /// Answers a synchronous request whose label passed the intake checks; `reader` and
    /// `body` continue after the label.
    pub(super) async fn synch<S: BodySource>(
        &self,
        checked: CheckedLabel,
        reader: &mut MessageReader,
        body: &mut S,
        received: &mut u64,
    ) -> Result<SynchReply, BrokerError> {
        let destination = self.synch_destination(&checked).await?;
        let label = &checked.label;
        tracing::info!(shs.txid = %label.tx_id, shs.corrid = %label.corr_id,
            product = %label.product.value, "synchronous request");
        let reply = match destination {
            Destination::Ping => {
                self.drain(reader, body, received).await?;
                self.pong(label)
            }
            Destination::Forward { url, allow_http } => {
                self.forward(&checked, &url, allow_http, reader, body, received)
                    .await?
            }
        };
        self.log_exchange(&checked).await;
        Ok(reply)
    }

    /// Keeps an answered exchange in the message log (spec §6): a record in state SENT
    /// with the label and no payload. A failure to log is logged; the reply still goes.
    async fn log_exchange(&self, checked: &CheckedLabel) {
        let label = &checked.label;
        let logged = async {
            let payload = self.store.begin_payload().await?.finish().await?;
            let local_id = crate::store::LocalId::random();
            let arrival = clock::now();
            let history = History::received(
                label,
                self.config.node_id.clone(),
                local_id.0.to_string(),
                clock::shs_datetime(arrival),
            );
            let message = crate::store::NewMessage {
                local_id,
                sender: checked.envelope.sender.org(),
                arrival,
                summary: super::summary::summarize(label, 0),
                label: crate::protocol::label::append_history_at(
                    &checked.original,
                    &checked.splice,
                    &[history],
                )?,
                payload,
                signer: None,
                route: crate::store::Route::Logged,
            };
            self.store.accept(message).await?;
            Ok::<(), BrokerError>(())
        };
        if let Err(err) = logged.await {
            tracing::warn!(shs.txid = %label.tx_id, error = %err, "could not log a synchronous exchange");
        }
    }

    /// The destination of a synchronous request, after the directory and agreement checks.
    async fn synch_destination(&self, checked: &CheckedLabel) -> Result<Destination, BrokerError> {
        let label = &checked.label;
        let product = label
            .product
            .value
            .parse::<ProductId>()
            .map_err(|err| refuse(ErrorCode::UnknownProductType, err.to_string()))?;
        let to = label
            .to
            .as_ref()
            .map(|to| to.value.parse::<Address>())
            .transpose()
            .map_err(|err| refuse(ErrorCode::IllegalReceiver, err.to_string()))?;
        let is_ping = product.bare() == PING;
        let local = to
            .as_ref()
            .is_none_or(|to| self.config.organisation(to.org()).is_some());
        if let Some(directory) = self.directory.as_deref() {
            let sender = checked.envelope.sender.org();
            // Ping without `to` is addressed to this node itself: no agreement is involved.
            if let Some(to) = &to {
                let known = |org| async move {
                    self.config.organisation(org).is_some()
                        || directory.organisation(org).await.ok().flatten().is_some()
                };
                if !known(sender).await {
                    let reason = format!("the directory does not know the sender {sender}");
                    return Err(refuse(ErrorCode::UnknownSender, reason));
                }
                if !known(to.org()).await {
                    let reason = format!("the directory does not know the receiver {}", to.org());
                    return Err(refuse(ErrorCode::UnknownReceiver, reason));
                }
                let candidates = directory
                    .agreements(&product)
                    .await
                    .map_err(|err| BrokerError::Unavailable(err.to_string()))?;
                let exchange = Exchange {
                    sender,
                    receiver: to.org(),
                    product: &product,
                    reply: label.sequence_type == SequenceType::Reply,
                    transfer: label.transfer_type,
                    date: Local::now().date_naive(),
                    named: label.shs_agreement.as_deref(),
                };
                if let Err(refusal) = agreements::check(&exchange, &candidates) {
                    let code = match refusal {
                        AgreementRefusal::Missing { .. } => ErrorCode::MissingAgreement,
                        AgreementRefusal::Illegal { .. } => ErrorCode::IllegalAgreement,
                    };
                    return Err(refuse(code, refusal.to_string()));
                }
            }
        }
        if is_ping && local {
            return Ok(Destination::Ping);
        }
        let Some(to) = to else {
            return Err(refuse(
                ErrorCode::UnresolvedReceiver,
                "a synchronous request needs a to address".to_owned(),
            ));
        };
        if self.config.organisation(to.org()).is_some() {
            let service = self
                .config
                .synch
                .services
                .iter()
                .find(|s| s.organisation == to.org() && s.product == product);
            return match service {
                Some(service) => Ok(Destination::Forward {
                    url: service.url.clone(),
                    allow_http: true,
                }),
                None => Err(refuse(
                    ErrorCode::MissingDeliveryAddress,
                    format!("no business system of {to} answers requests for {product}"),
                )),
            };
        }
        let address = match self.directory.as_deref() {
            Some(directory) => directory
                .address(to.org(), &product)
                .await
                .map_err(|err| BrokerError::Unavailable(err.to_string()))?,
            None => None,
        };
        match address {
            Some(address) => Ok(Destination::Forward {
                url: address.url,
                allow_http: false,
            }),
            None => Err(refuse(
                ErrorCode::MissingDeliveryAddress,
                format!("no address for {to} and product {product}"),
            )),
        }
    }

    /// Reads the rest of a request this node answers itself.
    async fn drain<S: BodySource>(
        &self,
        reader: &mut MessageReader,
        body: &mut S,
        received: &mut u64,
    ) -> Result<(), BrokerError> {
        loop {
            match reader.next_event()? {
                Event::NeedMore => self.pull(reader, body, received).await?,
                Event::End => return Ok(()),
                _ => {}
            }
        }
    }

    /// The reply to a ping: a `reply` label from the pinged organisation (or this node)
    /// with one `text/plain` part.
    fn pong(&self, request: &Label) -> SynchReply {
        let mut reply = request.clone();
        reply.tx_id = super::new_tx_id();
        reply.sequence_type = SequenceType::Reply;
        let answering = request.to.as_ref().map(|to| to.value.clone()).or_else(|| {
            self.config
                .organisations
                .first()
                .map(|org| Address::organisation(org.number).to_string())
        });
        reply.to = request.from.as_ref().map(|from| To {
            value: from.value.clone(),
            common_name: None,
        });
        reply.from = answering.map(|value| From {
            value,
            ..From::default()
        });
        reply.originator = None;
        reply.end_recipient = None;
        reply.datetime = clock::shs_datetime(clock::now());
        let text = format!("pong from {}\r\n", self.config.node_id);
        reply.content.parts = ContentParts::Data(vec![Data {
            datapart_type: Some("ping".to_owned()),
            no_of_bytes: Some(text.len().to_string()),
            ..Data::default()
        }]);
        reply.history.push(History::received(
            &reply,
            self.config.node_id.clone(),
            uuid::Uuid::new_v4().to_string(),
            reply.datetime.clone(),
        ));
        let writer = MessageWriter::new(new_boundary());
        let label_headers = PartHeaders::from_fields(&[
            ("Content-Type", "text/xml; charset=UTF-8"),
            ("Content-Transfer-Encoding", "binary"),
        ]);
        let part_headers = PartHeaders::from_fields(&[
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("Content-Transfer-Encoding", "binary"),
        ]);
        let mut message = writer.message_head();
        message.extend(writer.label_part(&label_headers, &reply.to_xml()));
        message.extend(writer.part_head(&part_headers));
        message.extend(text.as_bytes());
        message.extend(writer.end());
        SynchReply {
            content_type: "message/rfc822".to_owned(),
            shs_headers: HeaderMap::new(),
            body: crate::body::full(message),
        }
    }

    /// Streams the request to `url` and the reply back.
    async fn forward<S: BodySource>(
        &self,
        checked: &CheckedLabel,
        url: &str,
        allow_http: bool,
        reader: &mut MessageReader,
        body: &mut S,
        received: &mut u64,
    ) -> Result<SynchReply, BrokerError> {
        let target = Target::parse(url, allow_http)
            .map_err(|reason| BrokerError::Unreachable(format!("{url}: {reason}")))?;
        let tls = self.push_tls.clone().ok_or_else(|| {
            BrokerError::Unreachable(format!("{url}: no TLS client is configured (no directory)"))
        })?;
        let timeout = self.config.synch.timeout;
        let exchange = async {
            let mut sender = upstream::open(tls, &target)
                .await
                .map_err(|err| match err {
                    OpenError::BadUrl(reason) | OpenError::Failed(reason) => {
                        BrokerError::Unreachable(format!("{url}: {reason}"))
                    }
                })?;
            let (out, request_body) = crate::body::channel(CHANNEL_CHUNKS);
            let request = Request::builder()
                .method(Method::POST)
                .uri(target.path_and_query.as_str())
                .header(header::HOST, target.authority.as_str())
                .header(header::CONTENT_TYPE, "message/rfc822")
                .body(request_body)
                .map_err(|err| BrokerError::Internal(format!("request: {err}")))?;
            let feed = self.feed(checked, reader, body, received, out);
            let (response, fed) = tokio::join!(sender.send_request(request), feed);
            fed?;
            response.map_err(|err| BrokerError::Unreachable(format!("{url}: {err}")))
        };
        let response = match tokio::time::timeout(timeout, exchange).await {
            Ok(response) => response?,
            Err(_) => {
                return Err(BrokerError::Timeout(format!(
                    "{url} did not answer within {} s",
                    timeout.as_secs()
                )));
            }
        };
        let (parts, incoming) = response.into_parts();
        let mut shs_headers = HeaderMap::new();
        for (name, value) in &parts.headers {
            if name.as_str().starts_with("x-shs-") {
                shs_headers.append(name.clone(), value.clone());
            }
        }
        if !parts.status.is_success() {
            let code = parts
                .headers
                .get("x-shs-errorcode")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<ErrorCode>().ok());
            let text = match incoming.collect().await {
                Ok(collected) => excerpt(&collected.to_bytes()),
                Err(_) => String::new(),
            };
            return Err(match code {
                Some(code) => BrokerError::Remote {
                    status: parts.status,
                    code,
                    reason: format!("{url} answered {}: {text}", parts.status),
                },
                None => {
                    BrokerError::Unreachable(format!("{url} answered {}: {text}", parts.status))
                }
            });
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("message/rfc822")
            .to_owned();
        Ok(SynchReply {
            content_type,
            shs_headers,
            body: incoming.map_err(std::io::Error::other).boxed(),
        })
    }

    /// Writes the request (label with this node's history, then the data parts as they
    /// come in) into `out`.
    async fn feed<S: BodySource>(
        &self,
        checked: &CheckedLabel,
        reader: &mut MessageReader,
        body: &mut S,
        received: &mut u64,
        out: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    ) -> Result<(), BrokerError> {
        let writer = MessageWriter::new(new_boundary());
        let label = self.synch_label(checked)?;
        let label_headers = PartHeaders::from_fields(&[
            ("Content-Type", "text/xml"),
            ("Content-Transfer-Encoding", "binary"),
        ]);
        let mut head = writer.message_head();
        head.extend(writer.label_part(&label_headers, &label));
        let send = |bytes: Vec<u8>| out.send(Ok(Bytes::from(bytes)));
        if send(head).await.is_err() {
            return Ok(());
        }
        loop {
            let chunk = match reader.next_event()? {
                Event::NeedMore => {
                    self.pull(reader, body, received).await?;
                    continue;
                }
                Event::PartStart { headers, .. } => writer.part_head(&headers),
                Event::PartData(bytes) => bytes.to_vec(),
                Event::PartEnd | Event::Label { .. } => continue,
                Event::End => {
                    let _ = send(writer.end()).await;
                    return Ok(());
                }
            };
            if send(chunk).await.is_err() {
                // The destination stopped reading: its answer says why.
                return Ok(());
            }
        }
    }

    /// The request's label as forwarded: the sender's bytes with this node's history.
    fn synch_label(&self, checked: &CheckedLabel) -> Result<Vec<u8>, BrokerError> {
        let history = History::received(
            &checked.label,
            self.config.node_id.clone(),
            uuid::Uuid::new_v4().to_string(),
            clock::shs_datetime(clock::now()),
        );
        Ok(crate::protocol::label::append_history(
            &checked.original,
            &[history],
        )?)
    }
}

/// A 400 refusal with `code`.
fn refuse(code: ErrorCode, reason: String) -> BrokerError {
    BrokerError::Message(ProtocolError::Invalid { code, reason })
}
