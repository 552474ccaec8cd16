//! The admin endpoints. Probe and metrics answers are short plain-text bodies built by
//! [`text`]; the JSON API renders its own in [`super::api`], the console its pages in
//! [`super::console`]. Causes of failures are logged, not shown.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use crate::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, StoreGauges};
use crate::store::LocalId;

use super::{Actor, AdminServer};

/// How long `/readyz` waits for the store before calling it unready: a probe must answer
/// even when the store hangs.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The most pending routing jobs a scrape counts: jobs are read whole, so the gauge is
/// capped ("at least this many") to keep a scrape cheap during a backlog.
const PENDING_JOBS_COUNTED: usize = 1000;

impl AdminServer {
    /// Answers one admin request from `actor`. The body, read whole (and bounded) by the
    /// listener, is only used by the console's form posts.
    pub(super) async fn handle(
        &self,
        request: Request<Bytes>,
        actor: &Actor,
    ) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        if super::console::is_console_path(path) {
            return self.console(&request, actor).await;
        }
        if let Some((id, action)) = super::actions::action_path(path) {
            if request.method() != Method::POST {
                let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
                return response;
            }
            if super::actions::cross_site(request.headers()) {
                tracing::warn!(%actor, path, "refused a cross-site admin request");
                return text(StatusCode::FORBIDDEN, "cross-site requests are refused\n");
            }
            return self.action_api(id, action, actor).await;
        }
        let api = super::api::is_api_path(path);
        if !api && !matches!(path, "/healthz" | "/readyz" | "/metrics") {
            return text(StatusCode::NOT_FOUND, "no such path\n");
        }
        if request.method() != Method::GET {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            return response;
        }
        if api {
            return self.api(path, request.uri().query()).await;
        }
        match path {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => match self.unready_reason().await {
                None => text(StatusCode::OK, "ready\n"),
                Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{reason}\n")),
            },
            _ => {
                let gauges = self.store_gauges().await;
                let mut response = text(StatusCode::OK, &self.broker.metrics().render(&gauges));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(METRICS_CONTENT_TYPE),
                );
                response
            }
        }
    }

    /// The store's side of a scrape. A store that fails or hangs costs the gauges it
    /// reads, not the scrape: the counters still tell what happened, and so do the disk
    /// syncs (kept in memory), which are what to look at when the store hangs.
    async fn store_gauges(&self) -> StoreGauges {
        let store = self.broker.store();
        let syncs = store.syncs();
        let backlog = store.backlog();
        let without_reads = StoreGauges {
            syncs,
            backlog,
            ..StoreGauges::default()
        };
        let read = async {
            let mailbox_depths = store
                .mailbox_depths()
                .await?
                .into_iter()
                .map(|(mailbox, depth)| (mailbox.bare(), depth))
                .collect();
            let size_on_disk = store.size_on_disk().await?;
            let pending = store.pending_jobs(None, PENDING_JOBS_COUNTED).await?;
            let retrying = pending.iter().filter(|job| job.retry.attempts > 0).count();
            Ok::<_, crate::store::StoreError>(StoreGauges {
                mailbox_depths,
                size_on_disk,
                pending_jobs: pending.len() as u64,
                push_retries_pending: retrying as u64,
                syncs,
                backlog,
            })
        };
        match tokio::time::timeout(STORE_PROBE_TIMEOUT, read).await {
            Ok(Ok(gauges)) => gauges,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "metrics: the store failed a read");
                without_reads
            }
            Err(_) => {
                tracing::warn!("metrics: the store did not answer in time");
                without_reads
            }
        }
    }

    /// Why the node should not get traffic, or `None` when it should.
    async fn unready_reason(&self) -> Option<&'static str> {
        if !self.readiness.shs_serving() {
            return Some("not ready: the SHS listener is not serving");
        }
        // A point read of an id that does not exist: touches the store, costs one lookup.
        let probe = self.broker.store().message(LocalId::random());
        match tokio::time::timeout(STORE_PROBE_TIMEOUT, probe).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "readiness: the store failed a read");
                return Some("not ready: the store fails reads");
            }
            Err(_) => {
                tracing::warn!("readiness: the store did not answer in time");
                return Some("not ready: the store does not answer");
            }
        }
        self.directory_unready_reason().await
    }

    /// Why the directory makes the node unready: it must answer a lookup (of the first
    /// local organisation) in time, or routing would stall.
    async fn directory_unready_reason(&self) -> Option<&'static str> {
        let directory = self.broker.directory()?;
        let org = self.broker.config().organisations.first()?.number;
        match tokio::time::timeout(STORE_PROBE_TIMEOUT, directory.organisation(org)).await {
            Ok(Ok(_)) => None,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "readiness: the directory failed a lookup");
                Some("not ready: the directory fails lookups")
            }
            Err(_) => {
                tracing::warn!("readiness: the directory did not answer in time");
                Some("not ready: the directory does not answer")
            }
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
