//! Mutual-TLS handshakes per server core-second (issue 7: ≥ 2 500/s for ECDSA P-256 and
//! TLS 1.3): the server side of full handshakes (no resumption) with shsd's own listener
//! configuration (client certificate required, chain and CRL checked) and the caller's
//! identity taken from its certificate, as every new connection costs the node.
//!
//! Client and server run in two threads joined by in-memory channels, so no socket or
//! scheduler cost is counted; the server thread's CPU time is read from
//! `/proc/thread-self/schedstat` (nanoseconds on CPU), so time lost to other processes on
//! a busy machine is not counted either. The certificates are the example PKI's (rcgen,
//! ECDSA P-256).
//!
//! Two runs, each with a fresh server configuration: one client certificate reconnecting
//! (the server verifies its chain once and remembers it, `shsd::tls::known_chains`), and a
//! new certificate on every handshake (every chain and CRL check in full).
//!
//! Run: `cargo bench --bench handshake` (`HANDSHAKES`, default 3000, ≤ 100 000). Without
//! `--bench` (as `cargo test --all-targets` runs it): 20 handshakes as a smoke run.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use rustls::{ClientConnection, ServerConnection};
use shsd::pki::{ClientSpec, ExamplePki, PkiItem, PkiOptions};
use shsd::tls::identity::{IdentityMap, PeerIdentity};

fn main() {
    let bench = std::env::args().skip(1).any(|arg| arg == "--bench");
    let count: usize = if bench {
        std::env::var("HANDSHAKES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(3000)
            .clamp(1, 100_000)
    } else {
        20
    };
    let pki = ExamplePki::generate(PkiOptions::default()).expect("pki");
    println!("## mTLS handshakes (`cargo bench --bench handshake`)");
    println!();
    // A known caller: one certificate, as a business system reconnecting all day. The
    // server verifies its chain (and the CRL) once and remembers it (`tls::known_chains`).
    let known = vec![client_config(&pki, &pki.portal)];
    run(&pki, "the same client certificate each time", count, known);
    // New callers: a certificate the server has not seen on every handshake, so every
    // chain and CRL check runs in full.
    let new_callers = (0..count)
        .map(|n| {
            let org = format!("55{n:08}").parse().expect("org number");
            let spec = ClientSpec::new(&format!("bench-{n}"), "Bench", "bench", Some(org));
            let item = pki.issue_client(&spec).expect("client certificate");
            client_config(&pki, &item)
        })
        .collect();
    run(
        &pki,
        "a new client certificate each time",
        count,
        new_callers,
    );
}

/// A client configuration presenting `item`, without resumption (full handshakes).
fn client_config(pki: &ExamplePki, item: &PkiItem) -> Arc<rustls::ClientConfig> {
    let mut config = (*pki.client_config(Some(item)).expect("client config")).clone();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// `count` handshakes against a fresh server configuration, the clients taking turns with
/// `clients`; prints the server's CPU per handshake.
fn run(pki: &ExamplePki, what: &str, count: usize, clients: Vec<Arc<rustls::ClientConfig>>) {
    let server_config = pki.server_config().expect("server config");
    let (to_server, from_client) = channel::<Vec<u8>>();
    let (to_client, from_server) = channel::<Vec<u8>>();
    let started = Instant::now();
    let server = std::thread::spawn(move || serve(server_config, count, from_client, to_client));
    let version = connect(&clients, count, to_server, from_server);
    let (server_cpu, identified) = server.join().expect("server thread");
    let wall = started.elapsed();
    assert_eq!(identified, count, "every handshake identified its caller");

    let per_core_second = count as f64 / server_cpu.as_secs_f64();
    println!(
        "- {what}: {} full handshakes ({version}, ECDSA P-256 certificates, client \
         certificate required and checked, no resumption): server CPU {:.3} s = {:.0} \
         handshakes per server core-second ({:.0} µs each); wall time {:.3} s with the \
         client in the same run",
        count,
        server_cpu.as_secs_f64(),
        per_core_second,
        server_cpu.as_secs_f64() * 1e6 / count as f64,
        wall.as_secs_f64()
    );
}

/// The server side: `count` handshakes, each followed by taking the caller's identity.
/// Returns the thread's CPU time and how many callers were identified.
fn serve(
    config: Arc<rustls::ServerConfig>,
    count: usize,
    from_client: Receiver<Vec<u8>>,
    to_client: Sender<Vec<u8>>,
) -> (Duration, usize) {
    let map = IdentityMap::new();
    let cpu_before = thread_cpu();
    let mut identified = 0;
    for _ in 0..count {
        let mut server = ServerConnection::new(Arc::clone(&config)).expect("server connection");
        loop {
            let flight = from_client.recv().expect("client flight");
            server.read_tls(&mut flight.as_slice()).expect("read");
            server.process_new_packets().expect("server handshake");
            to_client
                .send(written(|out| server.write_tls(out)))
                .expect("send");
            if !server.is_handshaking() {
                break;
            }
        }
        if PeerIdentity::from_connection(&server, &map).is_some() {
            identified += 1;
        }
    }
    (thread_cpu() - cpu_before, identified)
}

/// The client side: `count` handshakes, the configurations taking turns; returns the
/// negotiated protocol version.
fn connect(
    configs: &[Arc<rustls::ClientConfig>],
    count: usize,
    to_server: Sender<Vec<u8>>,
    from_server: Receiver<Vec<u8>>,
) -> String {
    let mut version = String::new();
    for n in 0..count {
        let name = "localhost".try_into().expect("server name");
        let config = Arc::clone(&configs[n % configs.len()]);
        let mut client = ClientConnection::new(config, name).expect("client");
        to_server
            .send(written(|out| client.write_tls(out)))
            .expect("hello");
        loop {
            let flight = from_server.recv().expect("server flight");
            client.read_tls(&mut flight.as_slice()).expect("read");
            client.process_new_packets().expect("client handshake");
            if !client.is_handshaking() && !client.wants_write() {
                break;
            }
            to_server
                .send(written(|out| client.write_tls(out)))
                .expect("send");
            if !client.is_handshaking() {
                // The server's last flight (after our Finished): its session tickets.
                let last = from_server.recv().expect("last flight");
                client.read_tls(&mut last.as_slice()).expect("read");
                client.process_new_packets().expect("tickets");
                break;
            }
        }
        version = format!("{:?}", client.protocol_version().expect("version"));
    }
    version
}

/// Everything a connection wants to write.
fn written(mut write: impl FnMut(&mut Vec<u8>) -> std::io::Result<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    while write(&mut out).expect("write_tls") > 0 {}
    out
}

/// This thread's time on a CPU so far (`/proc/thread-self/schedstat`, first field, ns).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let nanos: u64 = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat field");
    Duration::from_nanos(nanos)
}
