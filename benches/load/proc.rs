//! What the server and the bench process cost, read from Linux's `/proc`: CPU seconds,
//! bytes written, peak RSS. Every reading is optional, so that a missing or unreadable
//! file shows as "?" or "–" in the report instead of failing the run.

use std::process::Command;
use std::time::Instant;

/// CPU seconds of the server and of this process, and the server's bytes written.
#[derive(Default, Clone, Copy)]
pub struct Sample {
    server_cpu: Option<f64>,
    own_cpu: Option<f64>,
    written: Option<u64>,
    syscall_written: Option<u64>,
    at: Option<Instant>,
}

impl Sample {
    /// Reads the counters of server `pid` and of this process now.
    pub fn take(pid: u32) -> Sample {
        let proc = format!("/proc/{pid}");
        Sample {
            server_cpu: cpu_seconds(&proc),
            own_cpu: cpu_seconds("/proc/self"),
            written: field_of(&format!("{proc}/io"), "write_bytes:"),
            syscall_written: field_of(&format!("{proc}/io"), "wchar:"),
            at: Some(Instant::now()),
        }
    }
}

/// What the server (and this process) used during a phase.
#[derive(Default)]
pub struct Usage {
    pub server_cpu: Option<f64>,
    pub own_cpu: Option<f64>,
    pub written: Option<u64>,
    pub syscall_written: Option<u64>,
    pub wall: f64,
    pub peak_rss_kib: Option<u64>,
    /// Whether the peak was reset at the start of the phase (else it covers the process).
    pub peak_reset: bool,
    /// The server's RSS at each second of the phase: a peak alone cannot tell a plateau
    /// from growth that the window cut short.
    pub rss_trace_kib: Vec<u64>,
}

impl Usage {
    /// The difference of two samples, with the server's peak RSS as of now.
    pub fn between(before: &Sample, after: &Sample, pid: u32, peak_reset: bool) -> Usage {
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        Usage {
            server_cpu: diff(before.server_cpu, after.server_cpu),
            own_cpu: diff(before.own_cpu, after.own_cpu),
            written: after.written.zip(before.written).map(|(b, a)| b - a),
            syscall_written: after
                .syscall_written
                .zip(before.syscall_written)
                .map(|(b, a)| b - a),
            wall: match (before.at, after.at) {
                (Some(a), Some(b)) => (b - a).as_secs_f64(),
                _ => 0.0,
            },
            peak_rss_kib: field_of(&format!("/proc/{pid}/status"), "VmHWM:"),
            peak_reset,
            rss_trace_kib: Vec::new(),
        }
    }
}

/// Resets the server's peak RSS (VmHWM) so that it covers one phase.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The server's resident set now (VmRSS), in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    field_of(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// The server's RSS sampled once a second in a task, so the phase's own timing is
/// untouched. [`RssTrace::finish`] ends it early (a fetch phase may finish before its
/// bound).
pub struct RssTrace {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<u64>>,
}

impl RssTrace {
    /// Samples from `start` (once a second) until `end` or [`RssTrace::finish`].
    pub fn start(pid: u32, start: Instant, end: Instant) -> RssTrace {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut trace = Vec::new();
            let mut at = start;
            while at < end {
                at += std::time::Duration::from_secs(1);
                tokio::select! {
                    _ = tokio::time::sleep_until(at.min(end).into()) => {}
                    _ = &mut stopped => break,
                }
                if let Some(kib) = rss_kib(pid) {
                    trace.push(kib);
                }
            }
            trace
        });
        RssTrace { stop, task }
    }

    /// The samples taken so far.
    pub async fn finish(self) -> Vec<u64> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// CPU seconds of each of the server's threads, summed by name with a trailing number
/// dropped (`sled-io-3` counts as `sled-io`): Linux cuts names at 15 bytes, so the
/// checkpoint thread shows as `shsd-store-chec`. Empty if unreadable.
pub fn thread_cpu(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut threads = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = read_trimmed(&format!("{}/comm", path.display()));
        let Some(seconds) = cpu_seconds(&path.display().to_string()) else {
            continue;
        };
        let group = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let group = group.strip_suffix('-').unwrap_or(group).to_owned();
        *threads.entry(group).or_insert(0.0) += seconds;
    }
    threads
}

/// What each thread group used from `before` to `after` (two [`thread_cpu`] readings).
pub fn threads_between(
    before: &std::collections::BTreeMap<String, f64>,
    after: std::collections::BTreeMap<String, f64>,
) -> std::collections::BTreeMap<String, f64> {
    after
        .into_iter()
        .map(|(name, seconds)| {
            let earlier = before.get(&name).copied().unwrap_or(0.0);
            (name, seconds - earlier)
        })
        .collect()
}

/// A whole small file such as `/proc/loadavg`, trimmed; empty if unreadable.
pub fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

/// utime + stime of `/proc/<pid>/stat`, in seconds.
fn cpu_seconds(proc: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("{proc}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

/// `getconf CLK_TCK`, asked once (100 if that fails): the unit of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The first number after `key` in a `key: value [kB]` file.
fn field_of(path: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
