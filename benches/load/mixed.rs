//! Phases 3 and 5 with intake alongside (`LOAD_MIXED`): the performance target asks for
//! fetch+ack "with concurrent intake still durable", so the senders of phase 2 keep
//! starting `LOAD_MIXED` messages per second on a fixed schedule (open loop, latency from
//! the scheduled start) to the same mailbox and products while the fetch+ack clients work.
//!
//! The fetch+ack clients connect first; then the senders run a warm-up of `LOAD_WARMUP`
//! alone (their own handshakes) and both run for the same window of `LOAD_SECONDS`. New
//! messages keep arriving, so fetch+ack ends at time-up rather than on an empty mailbox.
//! The server's CPU and memory over the window are those of both together and are
//! recorded with the fetch+ack result; the intake result carries none.

use std::sync::Arc;

use crate::Params;
use crate::phases::{self, Fetch, Intake, Window};

/// Fetch+ack (phase 3 or 5) as `phases::fetch_ack` runs it, or with intake at
/// `params.mixed` alongside; the second value is that intake.
pub async fn fetch_ack(
    params: &Params,
    url: &str,
    portal_tls: &Arc<rustls::ClientConfig>,
    bygglov_tls: &Arc<rustls::ClientConfig>,
    products: &[String],
    expected: &[u64],
    pid: u32,
) -> Result<(Fetch, Option<Intake>), String> {
    let Some(rate) = params.mixed else {
        let fetch = phases::fetch_ack(params, url, bygglov_tls, products, expected, pid).await?;
        return Ok((fetch, None));
    };
    let clients = phases::connect(url, bygglov_tls, products).await?;
    let window = Window::from_now(params.warmup, params.seconds);
    let intake = phases::send(params, Some(rate), window, url, portal_tls, products);
    let fetch = async {
        tokio::time::sleep_until(window.measured.into()).await;
        phases::fetch_until(params, clients, products, None, window.measured, pid).await
    };
    let (intake, fetch) = tokio::join!(intake, fetch);
    Ok((fetch?, Some(intake?)))
}
