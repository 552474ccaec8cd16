//! What the end-to-end benches that run the real binary share (`nodes`, `fanout`): finding
//! the release `shsd` beside the bench executable, starting it with its log in a file and
//! reading its ports from that log, and stopping it as systemd does.

#![allow(dead_code, reason = "each bench uses part of this")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `shsd` beside this executable's `deps/` folder: the binary `cargo build --release`
/// made, so the measured server is the one operators run.
pub fn server_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|err| format!("no executable path: {err}"))?;
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("shsd"))
        .ok_or_else(|| format!("unexpected executable path {}", exe.display()))?;
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("no shsd binary at {}", binary.display()))
    }
}

/// The binary for bench `name`, or the exit the bench should take: without `--bench` (the
/// smoke run under `cargo test --all-targets`) a missing binary is a skip, under
/// `--bench` a failure that says how to build it.
pub fn binary_or_exit(name: &str, bench: bool) -> Result<PathBuf, std::process::ExitCode> {
    match server_binary() {
        Ok(binary) => Ok(binary),
        Err(reason) if !bench => {
            println!("{name}: smoke run skipped: {reason}");
            Err(std::process::ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("{name}: {reason}; run `cargo build --release` first");
            Err(std::process::ExitCode::FAILURE)
        }
    }
}

/// The part of a bench node's configuration every bench shares: node `node_id` on free
/// loopback ports (SHS and admin), the example PKI in `certs/`, warnings logged plus the
/// lines naming the ports. The bench appends its organisations, store and the rest.
pub fn config_head(bench: &str, node_id: &str) -> String {
    format!(
        r#"# Written by benches/{bench}.
[node]
node_id = "{node_id}"
[listen]
address = "127.0.0.1:0"
[tls]
certificate = "certs/server.pem"
private_key = "certs/server-key.pem"
client_cas = ["certs/ca.pem"]
[admin]
address = "127.0.0.1:0"
[log]
filter = "warn,shsd::app=info"
"#
    )
}

/// A running `shsd serve` with its SHS and admin ports; SIGTERMed and waited for on drop.
pub struct Daemon {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
}

impl Daemon {
    /// Starts `shsd serve --config <config>` with stderr to `log` and waits (up to a
    /// minute) for the lines naming its ports.
    pub fn start(binary: &Path, config: &Path, log: &Path) -> Result<Daemon, String> {
        let file = std::fs::File::create(log).map_err(|err| err.to_string())?;
        let mut child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let (Some(port), Some(admin_port)) =
                (listening(&text, "(shs)"), listening(&text, "(admin)"))
            {
                return Ok(Daemon {
                    child,
                    port,
                    admin_port,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("shsd exited with {status}:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        Err("shsd did not report its ports in 60 s".to_owned())
    }

    /// The server's process id, for `/proc` readings.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The port of the `listening on <address> <tag>` line of `log`.
fn listening(log: &str, tag: &str) -> Option<u16> {
    log.lines().find_map(|line| {
        let rest = line.split("listening on ").nth(1)?;
        let address = rest
            .split(tag)
            .next()
            .filter(|_| rest.contains(tag))?
            .trim();
        address
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|a| a.port())
    })
}
