//! Group commit: concurrent writers share disk syncs.
//!
//! A writer applies its batch, takes a [`Ticket`] (a number from a counter) and waits. One
//! dedicated thread loops: wait until a ticket is outstanding, note the highest ticket
//! taken so far, run the engine's sync (flush + fdatasync), publish that number as
//! durable. Every batch applied before its ticket was taken is covered by the next sync
//! that starts after it, so all writers that arrived during one sync are served by the
//! next one together. No timer: when nothing is pending the thread sleeps, and a lone
//! writer's sync starts at once, so low load adds no latency.
//!
//! A failed sync is fatal for durability: after an fsync error the kernel may have dropped
//! the dirty pages and marked them clean ("fsyncgate"), so a later successful sync proves
//! nothing about earlier writes. The committer therefore poisons itself: every ticket not
//! yet durable, and every later one, fails with [`StoreError::Unavailable`]; none is ever
//! reported durable. The broker answers 503 and the operator restarts once the disk is
//! fixed; sled replays its log at open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::error::StoreError;

/// A request for durability: durable once the committer has synced past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "a ticket means nothing until it is waited for"]
pub struct Ticket(u64);

/// The sync of the engine: flush and fdatasync everything applied so far. An error is
/// reported with its text.
pub type SyncFn = Box<dyn FnMut() -> Result<(), String> + Send>;

/// The group committer, with its thread.
pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
    progress: watch::Sender<Progress>,
    rounds: AtomicU64,
}

struct Requests {
    /// The highest ticket handed out.
    requested: u64,
    shutdown: bool,
}

#[derive(Debug, Clone)]
struct Progress {
    /// Every ticket up to this one is durable.
    durable: u64,
    /// Set once a sync failed; nothing after `durable` will ever be.
    failure: Option<Arc<str>>,
}

impl GroupCommit {
    /// Starts the sync thread.
    pub fn start(sync: SyncFn) -> std::io::Result<Self> {
        let (progress, _) = watch::channel(Progress {
            durable: 0,
            failure: None,
        });
        let shared = Arc::new(Shared {
            requests: Mutex::new(Requests {
                requested: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
            progress,
            rounds: AtomicU64::new(0),
        });
        let thread = std::thread::Builder::new()
            .name("shsd-store-sync".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&shared, sync)
            })?;
        Ok(GroupCommit {
            shared,
            thread: Some(thread),
        })
    }

    /// Takes a ticket covering every batch applied before this call.
    pub fn request(&self) -> Ticket {
        let mut requests = lock(&self.shared.requests);
        requests.requested += 1;
        let ticket = Ticket(requests.requested);
        drop(requests);
        self.shared.wake.notify_one();
        ticket
    }

    /// Waits until `ticket` is durable, or fails if the committer is poisoned.
    pub async fn wait(&self, ticket: Ticket) -> Result<(), StoreError> {
        let mut progress = self.shared.progress.subscribe();
        let seen = progress
            .wait_for(|p| p.durable >= ticket.0 || p.failure.is_some())
            .await
            .map_err(|_| StoreError::Unavailable("sync thread stopped".into()))?;
        if seen.durable >= ticket.0 {
            Ok(())
        } else {
            let reason = seen.failure.as_deref().unwrap_or("sync failed");
            Err(StoreError::Unavailable(format!("sync failed: {reason}")))
        }
    }

    /// Makes everything applied so far durable.
    pub async fn sync_now(&self) -> Result<(), StoreError> {
        let ticket = self.request();
        self.wait(ticket).await
    }

    /// How many syncs ran (for metrics and tests).
    pub fn rounds(&self) -> u64 {
        self.shared.rounds.load(Ordering::Relaxed)
    }
}

impl Drop for GroupCommit {
    /// Serves the tickets still outstanding, then stops the thread.
    fn drop(&mut self) {
        lock(&self.shared.requests).shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(requests: &Mutex<Requests>) -> std::sync::MutexGuard<'_, Requests> {
    requests.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(shared: &Shared, mut sync: SyncFn) {
    let mut durable = 0;
    loop {
        let target = {
            let mut requests = lock(&shared.requests);
            loop {
                if requests.requested > durable {
                    break requests.requested;
                }
                if requests.shutdown {
                    return;
                }
                requests = shared
                    .wake
                    .wait(requests)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        // Every batch applied before ticket `target` was taken is in the engine now, so
        // this sync covers tickets up to `target`.
        match sync() {
            Ok(()) => {
                durable = target;
                shared.rounds.fetch_add(1, Ordering::Relaxed);
                shared.progress.send_modify(|p| p.durable = target);
            }
            Err(reason) => {
                tracing::error!(error = %reason, "store sync failed; refusing writes until restart");
                shared
                    .progress
                    .send_modify(|p| p.failure = Some(reason.into()));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use super::*;

    fn slow_sync(counter: Arc<AtomicU64>, fail: Arc<AtomicBool>) -> SyncFn {
        Box::new(move || {
            std::thread::sleep(Duration::from_millis(2));
            if fail.load(Ordering::SeqCst) {
                return Err("injected EIO".into());
            }
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_writers_share_syncs() {
        let syncs = Arc::new(AtomicU64::new(0));
        let commit =
            Arc::new(GroupCommit::start(slow_sync(syncs.clone(), Arc::default())).unwrap());
        let writers = 400;
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let commit = commit.clone();
                tokio::spawn(async move { commit.sync_now().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let syncs = syncs.load(Ordering::SeqCst);
        assert!(syncs >= 1);
        assert!(syncs < writers / 4, "{syncs} syncs for {writers} writers");
        assert_eq!(commit.rounds(), syncs);
    }

    #[tokio::test]
    async fn a_lone_writer_is_synced_at_once() {
        let syncs = Arc::new(AtomicU64::new(0));
        let commit = GroupCommit::start(slow_sync(syncs.clone(), Arc::default())).unwrap();
        let started = Instant::now();
        for _ in 0..3 {
            commit.sync_now().await.unwrap();
        }
        assert_eq!(syncs.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_sync_fails_every_waiter_and_poisons() {
        let syncs = Arc::new(AtomicU64::new(0));
        let fail = Arc::new(AtomicBool::new(false));
        let commit = Arc::new(GroupCommit::start(slow_sync(syncs.clone(), fail.clone())).unwrap());
        commit.sync_now().await.unwrap();

        fail.store(true, Ordering::SeqCst);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let commit = commit.clone();
                tokio::spawn(async move { commit.sync_now().await })
            })
            .collect();
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert!(err.is_unavailable(), "{err}");
            assert!(err.to_string().contains("injected EIO"));
        }
        // Even when the disk recovers, nothing later is reported durable.
        fail.store(false, Ordering::SeqCst);
        assert!(commit.sync_now().await.unwrap_err().is_unavailable());
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn drop_serves_outstanding_tickets() {
        let syncs = Arc::new(AtomicU64::new(0));
        let commit = GroupCommit::start(slow_sync(syncs.clone(), Arc::default())).unwrap();
        let _ticket = commit.request();
        drop(commit);
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
    }
}
