//! systemd integration (`Type=notify`): READY once the listeners are bound, WATCHDOG pings
//! from a task of the runtime (so a hung runtime stops them and systemd restarts the
//! daemon), STOPPING when draining. Outside systemd (no `NOTIFY_SOCKET`) every call is a
//! no-op.
//!
//! The notification protocol is one datagram per message to the socket named by
//! `NOTIFY_SOCKET` (a path, or an abstract name after `@`). The socket is non-blocking: a
//! notification that cannot be queued at once is dropped with a log line, never allowed
//! to stall a runtime thread.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Tells systemd the daemon is up, with a status line for `systemctl status`.
pub fn ready(status: &str) {
    send(&format!("READY=1\nSTATUS={}", one_line(status)));
}

/// Tells systemd the daemon is draining and will exit.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=draining");
}

/// Pings the watchdog at half the interval systemd asked for (`WatchdogSec=`), until
/// `stop` fires. `None` when no watchdog is configured for this process.
pub fn spawn_watchdog(stop: CancellationToken) -> Option<JoinHandle<()>> {
    let interval = watchdog_interval()?;
    let period = (interval / 2).max(Duration::from_millis(10));
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "systemd watchdog enabled"
    );
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = ticks.tick() => send("WATCHDOG=1"),
                _ = stop.cancelled() => return,
            }
        }
    }))
}

/// `WATCHDOG_USEC`, when `WATCHDOG_PID` is unset or names this process.
fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.trim() != std::process::id().to_string()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

fn send(message: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(err) = send_to(&target.to_string_lossy(), message) {
        tracing::warn!(error = %err, "cannot notify systemd");
    }
}

fn send_to(target: &str, message: &str) -> io::Result<()> {
    let address = match target.strip_prefix('@') {
        Some(name) => abstract_address(name)?,
        None => SocketAddr::from_pathname(target)?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    socket.send_to_addr(message.as_bytes(), &address)?;
    Ok(())
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &str) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(target_os = "linux"))]
fn abstract_address(_name: &str) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets are Linux-only",
    ))
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket_and_a_full_queue_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let target = path.to_string_lossy().into_owned();
        send_to(&target, "READY=1\nSTATUS=listening").unwrap();
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=listening");
        // Nobody reads: the queue fills and sending fails fast instead of blocking.
        let started = std::time::Instant::now();
        let failed = (0..10_000).any(|_| send_to(&target, "WATCHDOG=1").is_err());
        assert!(failed, "a full queue must refuse, not block");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn abstract_names_are_supported() {
        let name = format!("shsd-test-{}", std::process::id());
        let receiver = UnixDatagram::bind_addr(&abstract_address(&name).unwrap()).unwrap();
        send_to(&format!("@{name}"), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
