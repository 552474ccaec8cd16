//! The tools of the durability check: `shsd serve` run under `strace`, the threads and
//! children found in `/proc`, and the reading of the trace into the store's disk syncs.
//! The test itself (which requests must wait for a sync) is in the parent module.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::daemon::{SHSD, log_path, serve, sigkill, wait_for_port};

/// `shsd serve` run by `strace -f -ttt -T -y -e trace=fsync,fdatasync -o strace.txt`: strace
/// is its parent, which ptrace allows also where attaching to a sibling (`-p`) is not
/// (Yama `ptrace_scope` 1, Ubuntu's default).
pub(super) struct Traced {
    strace: Child,
    /// shsd's pid (strace's child): not ours to `wait` for, so stopped with `kill`.
    pub(super) pid: u32,
    pub(super) port: u16,
    output: PathBuf,
}

impl Traced {
    pub(super) async fn start(dir: &Path) -> Traced {
        let output = dir.join("strace.txt");
        let mut strace = Command::new("strace");
        strace
            .args([
                "-f",
                "-ttt",
                "-T",
                "-y",
                "-e",
                "trace=fsync,fdatasync",
                "-o",
            ])
            .arg(&output)
            .arg("--")
            .arg(SHSD);
        let mut strace = serve(&mut strace, dir, 1).spawn().unwrap_or_else(|err| {
            panic!("cannot run strace: {err} (scripts/test installs it; SHSD_SKIP_STRACE=1 skips)")
        });
        let port = wait_for_port(&mut strace, &log_path(dir, 1), "shsd under strace").await;
        let pid = child_of(strace.id()).unwrap_or_else(|| {
            sigkill(&mut strace);
            panic!("strace runs no shsd");
        });
        Traced {
            strace,
            pid,
            port,
            output,
        }
    }

    /// Kills shsd, waits for strace to end with it and returns the trace.
    pub(super) async fn finish(mut self) -> String {
        kill_by_pid(self.pid);
        let since = Instant::now();
        while self.strace.try_wait().expect("try_wait").is_none() {
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "strace did not end"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::fs::read_to_string(&self.output).expect("strace output")
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if self.strace.try_wait().ok().flatten().is_none() {
            kill_by_pid(self.pid);
            sigkill(&mut self.strace);
        }
    }
}

/// The successful fsync/fdatasync calls on the write-ahead log (`store/wal/*.wal`) in an `strace -f -ttt -T -y` trace:
/// those of thread `tid` as (entry, return) times, and how many other threads made.
/// A call interrupted by another thread's is split in two lines, `fdatasync(11</…/db>
/// <unfinished ...>` and `<... fdatasync resumed>) = 0 <0.000410>`.
pub(super) fn store_syncs(trace: &str, tid: u32) -> (Vec<(f64, f64)>, usize) {
    let mut syncs = Vec::new();
    let mut others = 0;
    let mut unfinished = HashMap::new();
    for line in trace.lines() {
        let mut fields = line.splitn(2, char::is_whitespace);
        let (Some(thread), Some(rest)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((time, call)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let (Ok(thread), Ok(time)) = (thread.parse::<u32>(), time.parse::<f64>()) else {
            continue;
        };
        let is_sync = call.starts_with("fdatasync(") || call.starts_with("fsync(");
        let entry = if is_sync && call.contains("/store/wal/") {
            if call.ends_with("<unfinished ...>") {
                unfinished.insert(thread, time);
                continue;
            }
            time
        } else if call.starts_with("<... fdatasync resumed>")
            || call.starts_with("<... fsync resumed>")
        {
            match unfinished.remove(&thread) {
                Some(entry) => entry,
                None => continue,
            }
        } else {
            continue;
        };
        let duration = call
            .rsplit_once('<')
            .and_then(|(_, d)| d.strip_suffix('>')?.parse::<f64>().ok());
        match duration {
            Some(duration) if call.contains(") = 0 ") && thread == tid => {
                syncs.push((entry, entry + duration));
            }
            Some(_) => others += 1,
            None => {}
        }
    }
    (syncs, others)
}

/// The id of the thread of process `pid` named `name`.
pub(super) fn thread_named(pid: u32, name: &str) -> Option<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })?
        .file_name()
        .to_str()?
        .parse()
        .ok()
}

/// Wall-clock seconds, the clock of strace's `-ttt` timestamps.
pub(super) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// SIGKILL to a process that is not our child, by the shell's `kill` (no libc here).
fn kill_by_pid(pid: u32) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -KILL {pid}"))
        .status();
}

/// The (first) child process of `parent`, from `/proc/<pid>/stat` (parent pid: the second
/// field after the parenthesised command name).
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid.parse::<u32>().ok()? == parent).then_some(pid)
        })
}
