//! Black-box tests of the real `shsd` binary: check-config, certs, demo, SIGTERM.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shsd::pki::{ExamplePki, PkiOptions};

use crate::harness::config_text;

/// The test configuration with JSON logs at info level: the daemon's own lines, easy to
/// search.
fn cli_config() -> String {
    config_text("").replace("filter = \"warn\"", "format = \"json\"\nfilter = \"info\"")
}

const SHSD: &str = env!("CARGO_BIN_EXE_shsd");

/// A folder with a generated PKI under `certs/` and a configuration listening on port 0.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pki = ExamplePki::generate(PkiOptions::default()).unwrap();
    pki.write_to(&dir.path().join("certs"), false).unwrap();
    std::fs::write(dir.path().join("shsd.toml"), cli_config()).unwrap();
    dir
}

fn config(dir: &Path) -> String {
    dir.join("shsd.toml").to_string_lossy().into_owned()
}

/// Runs `shsd check-config` on the configuration in `dir`.
fn check_config(dir: &Path) -> std::process::Output {
    Command::new(SHSD)
        .args(["check-config", "--config", &config(dir)])
        .output()
        .unwrap()
}

#[test]
fn check_config_accepts_a_good_file() {
    let dir = setup();
    let out = check_config(dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
}

#[test]
fn check_config_refuses_an_exposed_admin_listener_without_admin_identities() {
    let dir = setup();
    let exposed = cli_config().replace(
        "[admin]\naddress = \"127.0.0.1:0\"",
        "[admin]\naddress = \"0.0.0.0:0\"",
    );
    assert_ne!(exposed, cli_config());
    std::fs::write(dir.path().join("shsd.toml"), exposed).unwrap();
    let out = check_config(dir.path());
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 problem(s)"), "{stderr}");
    assert!(stderr.contains("admin.address"), "{stderr}");
    assert!(stderr.contains("[[admin.identities]]"), "{stderr}");
}

#[test]
fn check_config_reports_every_problem_and_exits_64() {
    let dir = setup();
    let bad = cli_config()
        .replace("node_id = \"test-node\"", "node_id = \"\"")
        // The first address is [listen]'s ([admin] has one too).
        .replacen("address = \"127.0.0.1:0\"", "address = \"nowhere\"", 1)
        .replace("certs/server.pem", "certs/missing.pem");
    std::fs::write(dir.path().join("shsd.toml"), bad).unwrap();
    let out = check_config(dir.path());
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "3 problem(s)",
        "node.node_id",
        "listen.address",
        "missing.pem",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing in {stderr}");
    }
    // serve refuses the same file with the same exit code.
    let out = Command::new(SHSD)
        .args(["serve", "--config", &config(dir.path())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn check_config_loads_the_certificates_and_crls() {
    let dir = setup();
    // A CRL in the CA's name, signed by another key; and a key that is no PEM key.
    let other = ExamplePki::generate(PkiOptions::default()).unwrap();
    std::fs::write(dir.path().join("certs/ca-crl.pem"), &other.crl.pem).unwrap();
    std::fs::write(dir.path().join("certs/server-key.pem"), "not a key\n").unwrap();
    let out = check_config(dir.path());
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in ["2 problem(s)", "tls:", "server-key.pem", "push:"] {
        assert!(stderr.contains(needle), "{needle:?} missing in {stderr}");
    }

    // With a good key, the CRL is what is left.
    let dir = setup();
    std::fs::write(dir.path().join("certs/ca-crl.pem"), &other.crl.pem).unwrap();
    let out = check_config(dir.path());
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in ["1 problem(s)", "CRL #1", "is not signed by the client CA"] {
        assert!(stderr.contains(needle), "{needle:?} missing in {stderr}");
    }
}

#[test]
fn certs_writes_the_example_pki_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("pki");
    let run = |force: bool| {
        let mut command = Command::new(SHSD);
        command.args(["certs", "--out", out_dir.to_str().unwrap()]);
        if force {
            command.arg("--force");
        }
        command.output().unwrap()
    };
    let first = run(false);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    for name in [
        "ca.pem",
        "ca-crl.pem",
        "server.pem",
        "server-key.pem",
        "client-portal.pem",
        "README.md",
    ] {
        assert!(out_dir.join(name).is_file(), "{name}");
    }
    let second = run(false);
    assert!(
        !second.status.success(),
        "a second run must not overwrite keys"
    );
    assert!(run(true).status.success());
}

#[test]
fn demo_runs_the_whole_round_trip() {
    let dir = setup();
    let out = Command::new(SHSD)
        .args(["demo", "--once", "--config", &config(dir.path())])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "202 Accepted",
        "byte-identical: true",
        "200 OK",
        "confirm ",
        "Round trip complete",
    ] {
        assert!(stdout.contains(step), "{step:?} missing in:\n{stdout}");
    }
}

/// `shsd serve` as a child process whose log lines are read on a thread.
struct Daemon {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn serve(dir: &Path) -> Daemon {
        let mut child = Command::new(SHSD)
            .args(["serve", "--config", &config(dir)])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = sender.send(line);
            }
        });
        Daemon {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next log line containing `needle` (all lines read are kept in `seen`).
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {needle:?} logged in {:?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The port of the SHS listener, from its `listening on … (shs)` line.
    fn shs_port(&mut self) -> u16 {
        let line = self.wait_for("(shs)");
        line.split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line}"))
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit status and every line logged.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        self.signal("-TERM");
        let exit = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        (exit, self.seen.join("\n"))
    }
}

#[test]
fn sigterm_drains_flushes_and_exits_cleanly() {
    let dir = setup();
    let mut daemon = Daemon::serve(dir.path());
    daemon.wait_for("(admin)");
    let (exit, log) = daemon.terminate();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(log.contains("listening on 127.0.0.1:"), "{log}");
    assert!(log.contains("(shs)"), "{log}");
    assert!(log.contains("(admin)"), "{log}");
    assert!(log.contains("store flushed"), "{log}");
}

#[test]
fn sighup_reloads_the_crl_for_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ExamplePki::generate(PkiOptions::default()).unwrap();
    pki.write_to(&dir.path().join("certs"), false).unwrap();
    std::fs::write(dir.path().join("shsd.toml"), cli_config()).unwrap();
    let mut daemon = Daemon::serve(dir.path());
    let port = daemon.shs_port();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let list_as = |who: &shsd::pki::PkiItem, mailbox: &str| {
        runtime.block_on(async {
            let client = shsd::client::ShsClient::new(
                &format!("https://localhost:{port}"),
                pki.client_config(Some(who)).unwrap(),
            )
            .unwrap();
            client.list(&mailbox.parse().unwrap(), "").await
        })
    };
    assert!(
        list_as(&pki.portal, "5590000001").is_ok(),
        "trusted before the reload"
    );
    // One log line per request, with the caller, status and sizes.
    let line = daemon.wait_for("/shs/ds/5590000001");
    for field in [
        "\"status\":200",
        "\"caller\":\"urn:X-shs:5590000001\"",
        "\"bytes_in\":\"0\"",
        "\"bytes_out\":\"",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }

    let crl = pki.crl_revoking(&[&pki.portal]).unwrap();
    std::fs::write(dir.path().join("certs/ca-crl.pem"), &crl.pem).unwrap();
    daemon.signal("-HUP");
    daemon.wait_for("reloaded certificates and CRLs");
    assert!(
        list_as(&pki.portal, "5590000001").is_err(),
        "revoked after the reload"
    );

    // A broken CRL is reported and the previous set stays in force.
    std::fs::write(
        dir.path().join("certs/ca-crl.pem"),
        "-----BEGIN X509 CRL-----\nnot base64\n",
    )
    .unwrap();
    daemon.signal("-HUP");
    daemon.wait_for("reload failed");
    assert!(list_as(&pki.portal, "5590000001").is_err(), "still revoked");
    let bygglov = list_as(&pki.bygglov, "2120000142.bygglov");
    assert!(bygglov.is_ok(), "others keep working: {bygglov:?}");

    let (exit, _) = daemon.terminate();
    assert!(exit.success());
}

#[test]
fn sighup_reloads_the_directory_and_keeps_it_when_the_new_one_is_bad() {
    use shsd::protocol::ErrorCode;
    use shsd::protocol::label::{SequenceType, TransferType};

    let dir = tempfile::tempdir().unwrap();
    let pki = ExamplePki::generate(PkiOptions::default()).unwrap();
    pki.write_to(&dir.path().join("certs"), false).unwrap();
    let directory = dir.path().join("directory.toml");
    std::fs::write(&directory, "").unwrap();
    let text = format!("{}\n[directory]\nfile = \"directory.toml\"\n", cli_config());
    std::fs::write(dir.path().join("shsd.toml"), text).unwrap();
    let mut daemon = Daemon::serve(dir.path());
    let port = daemon.shs_port();

    // A synchronous ping answers at once whether an agreement allows it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ping = || {
        runtime.block_on(async {
            let (_, _, mut label) = shsd::client::build_message(
                "urn:X-shs:5590000001",
                Some("urn:X-shs:2120000142"),
                "urn:X-shs:00000000-0000-0000-0000-000000000000",
                SequenceType::Request,
                &[],
            );
            label.transfer_type = TransferType::Synch;
            let (body, boundary) = shsd::client::write_message(&label, &[]);
            let client = shsd::client::ShsClient::new(
                &format!("https://localhost:{port}"),
                pki.client_config(Some(&pki.portal)).unwrap(),
            )
            .unwrap();
            client.send(body.into(), &boundary).await
        })
    };
    let missing = |result: Result<_, shsd::client::ClientError>| {
        matches!(result, Err(shsd::client::ClientError::Refused { code, .. })
            if code == ErrorCode::MissingAgreement)
    };
    assert!(missing(ping()), "no agreement yet");

    std::fs::write(
        &directory,
        r#"
[[agreements]]
id = "ping"
principal = "2120000142"
customer = "5590000001"
products = ["urn:X-shs:00000000-0000-0000-0000-000000000000"]
flow = "from-customer"
"#,
    )
    .unwrap();
    daemon.signal("-HUP");
    daemon.wait_for("reloaded the directory");
    let answered = ping();
    assert!(answered.is_ok(), "the new agreement applies: {answered:?}");

    std::fs::write(&directory, "[[agreements]]\nid = \"broken\"\n").unwrap();
    daemon.signal("-HUP");
    daemon.wait_for("directory reload failed");
    let still = ping();
    assert!(still.is_ok(), "the previous directory stays: {still:?}");

    let (exit, _) = daemon.terminate();
    assert!(exit.success());
}
