//! Fan-out (issue 7): one 1 MiB message addressed to a product that 100 local
//! organisations have agreements for, against the same message sent to one of them, on
//! the release `shsd` with a sled store (spec §5.2: the payload is stored once and each
//! copy gets its own tx.id and mailbox entry).
//!
//! Timed per message, client side: from the start of the send until the node has
//! delivered every copy (`shsd_messages_delivered_total` on the admin listener has risen
//! by the number of recipients). The store's size before and after shows that the
//! payload is not copied. Run: `cargo build --release && cargo bench --bench fanout`
//! (`FANOUT_ROUNDS`, default 7, ≤ 50; `FANOUT_RECEIVERS`, default 100, ≤ 500). Without
//! `--bench`: one round to 5 receivers, as a smoke run.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shsd::client::{OutgoingPart, ShsClient, build_message};
use shsd::pki::{ExamplePki, PkiOptions};
use shsd::protocol::label::SequenceType;

use common::Daemon;

const PORTAL: &str = "urn:X-shs:5590000001";
const PRODUCT: &str = "urn:X-shs:0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const SIZE: usize = 1 << 20;

fn main() -> ExitCode {
    let bench = std::env::args().skip(1).any(|arg| arg == "--bench");
    let binary = match common::binary_or_exit("fanout", bench) {
        Ok(binary) => binary,
        Err(exit) => return exit,
    };
    let env = |name: &str, default: usize, max: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
            .clamp(1, max)
    };
    let (rounds, receivers) = if bench {
        (
            env("FANOUT_ROUNDS", 7, 50),
            env("FANOUT_RECEIVERS", 100, 500),
        )
    } else {
        (1, 5)
    };
    match run(&binary, rounds, receivers) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("fanout: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn run(binary: &std::path::Path, rounds: usize, receivers: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
    let pki = ExamplePki::generate(PkiOptions::default()).map_err(|err| err.to_string())?;
    pki.write_to(&dir.path().join("certs"), false)
        .map_err(|err| err.to_string())?;
    let orgs: Vec<String> = (0..receivers)
        .map(|i| format!("{}", 2_120_001_000 + i))
        .collect();
    std::fs::write(dir.path().join("shsd.toml"), config_text(&orgs)).map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("directory.toml"), directory_text(&orgs))
        .map_err(|e| e.to_string())?;
    let daemon = Daemon::start(
        binary,
        &dir.path().join("shsd.toml"),
        &dir.path().join("shsd.log"),
    )?;
    let tls = pki
        .client_config(Some(&pki.portal))
        .map_err(|err| err.to_string())?;
    let client = ShsClient::new(&format!("https://127.0.0.1:{}", daemon.port), tls)
        .map_err(|err| err.to_string())?;
    let metrics = format!("http://127.0.0.1:{}/metrics", daemon.admin_port);
    let runtime = tokio::runtime::Runtime::new().map_err(|err| err.to_string())?;
    let part = OutgoingPart {
        datapart_type: "xml".to_owned(),
        content_type: "text/xml".to_owned(),
        filename: Some("kungorelse.xml".to_owned()),
        bytes: vec![b'k'; SIZE],
    };
    let first = format!("urn:X-shs:{}", orgs[0]);
    let (mut one, mut all, mut growth) = (Vec::new(), Vec::new(), Vec::new());
    runtime.block_on(async {
        // A warm-up of each, not counted.
        for round in 0..=rounds {
            let single = deliver(&client, &metrics, Some(&first), &part, 1).await?;
            let before = scrape(&metrics, "shsd_store_size_bytes").await?;
            let fanned = deliver(&client, &metrics, None, &part, receivers as u64).await?;
            let after = scrape(&metrics, "shsd_store_size_bytes").await?;
            if round > 0 {
                one.push(single);
                all.push(fanned);
                growth.push(after - before);
            }
        }
        Ok::<(), String>(())
    })?;
    drop(daemon);
    one.sort();
    all.sort();
    growth.sort_by(f64::total_cmp);
    let median = |v: &[Duration]| v[v.len() / 2].as_secs_f64() * 1000.0;
    println!("## Fan-out (`cargo bench --bench fanout`)");
    println!();
    println!(
        "{} — load average {}; {rounds} rounds after a warm-up, 1 MiB data part",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!("| case | min ms | median ms | max ms |");
    println!("|---|--:|--:|--:|");
    let row = |name: &str, v: &[Duration]| {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            v[0].as_secs_f64() * 1000.0,
            median(v),
            v[v.len() - 1].as_secs_f64() * 1000.0
        )
    };
    row("to one organisation", &one);
    row(&format!("fan-out to {receivers} organisations"), &all);
    println!();
    println!(
        "median fan-out / median single delivery: {:.2}×; store growth per fan-out \
         (the store's size on disk, median): {:.2} MiB for {receivers} copies of 1 MiB",
        median(&all) / median(&one),
        growth[growth.len() / 2] / (1 << 20) as f64
    );
    Ok(())
}

/// Sends one message (to `to`, or product-addressed) and waits until `copies` more
/// messages have been delivered; returns the time from the start of the send.
async fn deliver(
    client: &ShsClient,
    metrics: &str,
    to: Option<&str>,
    part: &OutgoingPart,
    copies: u64,
) -> Result<Duration, String> {
    let before = scrape(metrics, "shsd_messages_delivered_total").await?;
    let (body, boundary, _) = build_message(
        PORTAL,
        to,
        PRODUCT,
        SequenceType::Event,
        std::slice::from_ref(part),
    );
    let started = Instant::now();
    let receipt = client
        .send(Bytes::from(body), &boundary)
        .await
        .map_err(|err| err.to_string())?;
    if receipt.status != 202 {
        return Err(format!("send answered {}", receipt.status));
    }
    loop {
        let delivered = scrape(metrics, "shsd_messages_delivered_total").await?;
        if delivered >= before + copies as f64 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "only {} of {copies} copies delivered",
                delivered - before
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The value of an unlabelled series from the admin listener's `/metrics`.
async fn scrape(url: &str, series: &str) -> Result<f64, String> {
    let text = reqwest::get(url)
        .await
        .map_err(|err| err.to_string())?
        .text()
        .await
        .map_err(|err| err.to_string())?;
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
            rest.trim().parse::<f64>().ok()
        })
        .ok_or_else(|| format!("no {series} in /metrics"))
}

fn config_text(orgs: &[String]) -> String {
    let mut text = common::config_head("fanout.rs", "fanout-node");
    text.push_str(
        "[store]\npath = \"store\"\n[directory]\nfile = \"directory.toml\"\n\
         [[organisations]]\nnumber = \"5590000001\"\n",
    );
    for org in orgs {
        text.push_str(&format!("[[organisations]]\nnumber = \"{org}\"\n"));
    }
    text
}

fn directory_text(orgs: &[String]) -> String {
    let mut text = format!("[[products]]\nid = \"{PRODUCT}\"\nname = \"Kungörelse\"\n");
    for org in orgs {
        text.push_str(&format!(
            "[[agreements]]\nid = \"kungorelse-{org}\"\nprincipal = \"{org}\"\n\
             customer = \"5590000001\"\nproducts = [\"{PRODUCT}\"]\nflow = \"from-customer\"\n"
        ));
    }
    text
}
