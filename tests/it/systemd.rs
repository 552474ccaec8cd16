//! systemd integration of the real binary: READY, WATCHDOG and STOPPING through a
//! `NOTIFY_SOCKET` the test provides, and the shipped unit file checked by
//! `systemd-analyze verify`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shsd::pki::{ExamplePki, PkiOptions};

use crate::harness::config_text;

const SHSD: &str = env!("CARGO_BIN_EXE_shsd");

/// Collects notifications on a thread, like systemd does, so the daemon's datagrams never
/// pile up unread.
fn collect(socket: UnixDatagram) -> std::sync::mpsc::Receiver<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if sender
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                    {
                        return;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    });
    receiver
}

/// Waits for a notification containing `wanted`; returns it.
fn wait_for(
    messages: &std::sync::mpsc::Receiver<String>,
    wanted: &str,
    seen: &mut Vec<String>,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = messages
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {wanted:?} in {seen:?}"));
        seen.push(message.clone());
        if message.contains(wanted) {
            return message;
        }
    }
}

#[test]
fn the_daemon_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ExamplePki::generate(PkiOptions::default()).unwrap();
    pki.write_to(&dir.path().join("certs"), false).unwrap();
    std::fs::write(dir.path().join("shsd.toml"), config_text("")).unwrap();
    let socket_path = dir.path().join("notify.sock");
    let messages = collect(UnixDatagram::bind(&socket_path).unwrap());

    let mut child = Command::new(SHSD)
        .args(["serve", "--config"])
        .arg(dir.path().join("shsd.toml"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let ready = wait_for(&messages, "READY=1", &mut seen);
    assert!(ready.contains("STATUS=listening on 127.0.0.1:"), "{ready}");
    // Pings at half the interval: several within a second.
    for _ in 0..3 {
        wait_for(&messages, "WATCHDOG=1", &mut seen);
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(&messages, "STOPPING=1", &mut seen);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/shsd.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for needle in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "RestartPreventExitStatus=64",
        "User=shsd",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
        "CapabilityBoundingSet=",
        "ReadWritePaths=/var/lib/shsd",
    ] {
        assert!(text.contains(needle), "{needle} missing from the unit");
    }
    // verify wants the ExecStart binary to exist: point it at the one just built.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("shsd.service");
    std::fs::write(&copy, text.replace("/usr/local/bin/shsd", SHSD)).unwrap();
    let output = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
    {
        Ok(output) => output,
        Err(err) => panic!("systemd-analyze: {err} (scripts/test installs the systemd package)"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}
