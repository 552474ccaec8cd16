//! The `shsd` process under load: finding the binary, writing its PKI and configuration
//! into the temporary folder, starting it on port 0 and reading the port from its log,
//! and stopping it the way systemd does (SIGTERM, then wait for drain and flush).
//!
//! The bench builds nothing: it runs the `shsd` that sits beside its own executable, so
//! that the measured server is the same optimised binary operators run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use shsd::pki::{ExamplePki, PkiOptions};

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// `shsd` beside this executable's `deps/` folder.
pub fn server_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|err| format!("no executable path: {err}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected executable path {}", exe.display()))?;
    let binary = profile_dir.join("shsd");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("no shsd binary at {}", binary.display()))
    }
}

/// What `prepare` wrote and what the clients present: the portal sends, the municipality's
/// business system (`bygglov`) fetches and acknowledges.
pub struct Setup {
    pub config: PathBuf,
    pub portal_tls: Arc<rustls::ClientConfig>,
    pub bygglov_tls: Arc<rustls::ClientConfig>,
}

/// The server's settings for a run that differ from the bench's defaults: `[store]` sizes
/// (`None`: shsd's default) and whether the request log is on.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerOptions {
    /// `cache_mib`, sled's page cache.
    pub cache_mib: Option<u64>,
    /// `log_backlog_mib`, the log's writes held until they are in sled.
    pub backlog_mib: Option<u64>,
    /// Log at shsd's default level (`info`: a line per request and per accepted message,
    /// which the bench reads and drops) instead of warnings only.
    pub request_log: bool,
}

/// Generates a fresh example PKI into `dir/certs` and writes `dir/shsd.toml`, so that the
/// run depends on no fixture and leaves nothing behind.
pub fn prepare(dir: &Path, identity_limit: usize, options: ServerOptions) -> Result<Setup, String> {
    let pki = ExamplePki::generate(PkiOptions::default()).map_err(|err| err.to_string())?;
    pki.write_to(&dir.join("certs"), false)
        .map_err(|err| err.to_string())?;
    let config = dir.join("shsd.toml");
    std::fs::write(&config, config_text(identity_limit, options)).map_err(|err| err.to_string())?;
    let portal_tls = pki
        .client_config(Some(&pki.portal))
        .map_err(|e| e.to_string())?;
    let bygglov_tls = pki
        .client_config(Some(&pki.bygglov))
        .map_err(|e| e.to_string())?;
    Ok(Setup {
        config,
        portal_tls,
        bygglov_tls,
    })
}

/// A running `shsd serve`, killed on drop if not stopped.
pub struct Server {
    child: Child,
    pub port: u16,
    /// Its warning and error lines (INFO is dropped), at most 1000.
    log: Arc<Mutex<Vec<String>>>,
    /// The admin listener's port, once it said it listens (the ceiling server has none).
    admin_port: Arc<Mutex<Option<u16>>>,
}

impl Server {
    /// Starts `shsd serve` and waits for the line naming its port.
    pub fn start(binary: &Path, config: &Path) -> Result<Server, String> {
        Server::start_command(Command::new(binary), binary, config)
    }

    /// The ceiling server (`ceiling`): this bench executable again, in its serving role,
    /// on the same certificates.
    pub fn start_ceiling(config: &Path) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|err| format!("no executable path: {err}"))?;
        let dir = config.parent().ok_or("configuration without a folder")?;
        let mut command = Command::new(&exe);
        command.env(crate::ceiling::CEILING_ENV, dir);
        Server::start_command(command, &exe, config)
    }

    fn start_command(mut command: Command, binary: &Path, config: &Path) -> Result<Server, String> {
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let admin_port = Arc::new(Mutex::new(None));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        let admin_sink = Arc::clone(&admin_port);
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = port_tx.as_ref().and_then(|_| listening_port(&line, "shs")) {
                    let _ = port_tx.take().map(|tx| tx.send(port));
                    continue;
                }
                if let Some(port) = listening_port(&line, "admin") {
                    *admin_sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(port);
                    continue;
                }
                if line.contains(r#""level":"INFO""#) {
                    continue;
                }
                let mut log = sink.lock().unwrap_or_else(PoisonError::into_inner);
                if log.len() < 1000 {
                    log.push(line);
                }
            }
        });
        match port_rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => Ok(Server {
                child,
                port,
                log,
                admin_port,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                let log = log
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .join("\n");
                Err(format!(
                    "shsd did not report its port ({status}); its stderr:\n{log}"
                ))
            }
        }
    }

    /// The server's process id, for `/proc` readings.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin listener's port: `None` for the ceiling server, or if shsd has not named
    /// it within two seconds of naming its SHS port.
    pub fn admin_port(&self) -> Option<u16> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let port = *self
                .admin_port
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if port.is_some() || Instant::now() > deadline {
                return port;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then waits for the drain and flush; returns the time taken, the exit status
    /// and what the server logged.
    pub fn stop(mut self) -> Result<(Duration, ExitStatus, Vec<String>), String> {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status();
        if !signalled.is_ok_and(|status| status.success()) {
            return Err(format!("could not send SIGTERM to {pid}"));
        }
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let log = std::mem::take(
                        &mut *self.log.lock().unwrap_or_else(PoisonError::into_inner),
                    );
                    return Ok((started.elapsed(), status, log));
                }
                Ok(None) if started.elapsed() < STOP_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => return Err("shsd did not stop within 60 s of SIGTERM".to_owned()),
                Err(err) => return Err(format!("waiting for shsd: {err}")),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Does nothing once the child has been waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port of a `listening on <address> (<listener>)` line (JSON or plain).
fn listening_port(line: &str, listener: &str) -> Option<u16> {
    let message = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|value| value["fields"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| line.to_owned());
    if !message.contains(&format!("({listener})")) {
        return None;
    }
    let rest = message.split("listening on ").nth(1)?;
    let address = rest.split_whitespace().next()?;
    address
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.port())
}

/// The server's configuration: the two example organisations, a sled store in the
/// temporary folder (with the sizes given, or shsd's defaults), and JSON logs at warning
/// level plus the line naming the port, or at shsd's default level (`request_log`).
fn config_text(identity_limit: usize, options: ServerOptions) -> String {
    let cache = options
        .cache_mib
        .map_or(String::new(), |mib| format!("cache_mib = {mib}\n"));
    let backlog = options
        .backlog_mib
        .map_or(String::new(), |mib| format!("log_backlog_mib = {mib}\n"));
    let filter = if options.request_log {
        "info"
    } else {
        "warn,shsd::app=info"
    };
    format!(
        r#"# Written by benches/load (server.rs).
[node]
node_id = "load-node"
[listen]
address = "127.0.0.1:0"
[tls]
certificate = "certs/server.pem"
private_key = "certs/server-key.pem"
client_cas = ["certs/ca.pem"]
crls = ["certs/ca-crl.pem"]
[[organisations]]
number = "2120000142"
name = "Exempelkommun"
sub_addresses = ["bygglov", "socialtjanst"]
[[organisations]]
number = "5590000001"
name = "Exempelportalen AB"
[store]
engine = "sled"
path = "store"
{cache}{backlog}[admin]
address = "127.0.0.1:0"
[limits]
# All senders share the portal's identity; the default (64) would answer 503 above that.
max_requests_per_identity = {identity_limit}
[log]
format = "json"
# Warnings plus the lines naming the ports, or shsd's default (LOAD_REQUEST_LOG=1).
filter = "{filter}"
"#
    )
}
