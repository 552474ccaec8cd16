//! Group commit: concurrent writers share disk syncs.
//!
//! One dedicated thread loops: take every piece of [`Work`] queued so far and run it, in
//! arrival order, then note the highest [`Ticket`] taken so far, run the engine's sync
//! (flush + fdatasync), and publish that number as durable and tell each piece of work
//! the outcome. A writer either hands its whole read-check-write operation to the thread
//! ([`GroupCommit::submit`]: its writes and its answer share the next sync, and the
//! writer's task is woken once, with the answer), or applies its batch itself, takes a
//! ticket and waits for it ([`GroupCommit::request`], [`GroupCommit::wait`]). Every batch
//! applied before the sync started is covered by it, so all writers that arrived during
//! one sync are served by the next one together. No timer: when nothing is pending the
//! thread sleeps, and a lone writer's sync starts at once, so low load adds no latency.
//!
//! Running the writes on the thread that syncs (rather than on tokio's blocking pool)
//! saves two thread hand-offs per write and keeps writers from contending with the sync
//! for the engine's locks (sled's batch lock is exclusive while `flush()` holds it
//! shared).
//!
//! A failed sync is fatal for durability: after an fsync error the kernel may have dropped
//! the dirty pages and marked them clean ("fsyncgate"), so a later successful sync proves
//! nothing about earlier writes. The committer therefore poisons itself: every ticket and
//! piece of work not yet durable, and every later one, fails with
//! [`StoreError::Unavailable`] (later work is not even run); none is ever reported
//! durable. The broker answers 503 and the operator restarts once the disk is fixed; the
//! engine replays its log at open.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::StoreError;
use crate::metrics::{SyncRecorder, SyncSnapshot};

/// A sync at least this slow is logged: every write acknowledged after it waited as long.
const SLOW_SYNC: Duration = Duration::from_millis(500);
/// At most one slow-sync warning per this long, so that a failing disk does not flood the
/// log; the syncs in between are counted into the next warning (and all are in the
/// `shsd_store_sync_duration_seconds` histogram).
const SLOW_SYNC_WARNING_EVERY: Duration = Duration::from_secs(60);

/// A request for durability: durable once the committer has synced past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "a ticket means nothing until it is waited for"]
pub struct Ticket(u64);

/// The sync of the engine: flush and fdatasync everything applied so far. An error is
/// reported with its text.
pub type SyncFn = Box<dyn FnMut() -> Result<(), String> + Send>;

/// An operation for the committer thread. It runs there between syncs; it returns what
/// to do once the sync that covers its writes has ended, or `None` when it has answered
/// already (nothing of it needs to be durable).
pub type Work = Box<dyn FnOnce() -> Option<AfterSync> + Send>;

/// The second half of a [`Work`]: called with the outcome of the sync that covers it (the
/// failure's text on error).
pub type AfterSync = Box<dyn FnOnce(Result<(), Arc<str>>) + Send>;

/// The group committer, with its thread.
pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
    progress: watch::Sender<Progress>,
    syncs: SyncRecorder,
}

struct Requests {
    /// The highest ticket handed out.
    requested: u64,
    /// Work not yet taken by the thread.
    work: Vec<Work>,
    /// Set (with the reason) once a sync failed: no more work is taken.
    failed: Option<Arc<str>>,
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
                work: Vec::new(),
                failed: None,
                shutdown: false,
            }),
            wake: Condvar::new(),
            progress,
            syncs: SyncRecorder::default(),
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

    /// Queues `work` for the committer thread, which runs it before its next sync. Fails
    /// (without running it) once the committer is poisoned; a piece of work that is
    /// dropped unrun because a sync failed meanwhile is answered by dropping it, and
    /// [`GroupCommit::failure`] then says why.
    pub fn submit(&self, work: Work) -> Result<(), StoreError> {
        let mut requests = lock(&self.shared.requests);
        if let Some(reason) = &requests.failed {
            return Err(sync_failed(reason));
        }
        requests.work.push(work);
        drop(requests);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Why work is refused: the failed sync, or the thread having stopped.
    pub fn failure(&self) -> StoreError {
        match &self.shared.progress.borrow().failure {
            Some(reason) => sync_failed(reason),
            None => StoreError::Unavailable("sync thread stopped".into()),
        }
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
            Err(sync_failed(seen.failure.as_deref().unwrap_or("unknown")))
        }
    }

    /// Makes everything applied so far durable.
    pub async fn sync_now(&self) -> Result<(), StoreError> {
        let ticket = self.request();
        self.wait(ticket).await
    }

    /// How many syncs ran.
    pub fn rounds(&self) -> u64 {
        self.syncs().durations.count
    }

    /// The syncs so far: how long they took and how many writes they made durable.
    pub fn syncs(&self) -> SyncSnapshot {
        self.shared.syncs.snapshot()
    }
}

impl Drop for GroupCommit {
    /// Serves the tickets and work still outstanding, then stops the thread. When the
    /// last owner is dropped by a piece of work on the thread itself, the thread is left
    /// to finish on its own (it cannot join itself).
    fn drop(&mut self) {
        lock(&self.shared.requests).shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

fn sync_failed(reason: &str) -> StoreError {
    StoreError::Unavailable(format!("sync failed: {reason}"))
}

fn lock(requests: &Mutex<Requests>) -> std::sync::MutexGuard<'_, Requests> {
    requests.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(shared: &Shared, mut sync: SyncFn) {
    let mut durable = 0;
    let mut slow = SlowSyncs::default();
    loop {
        let work = {
            let mut requests = lock(&shared.requests);
            loop {
                if !requests.work.is_empty() || requests.requested > durable {
                    break std::mem::take(&mut requests.work);
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
        let waiting: Vec<AfterSync> = work.into_iter().filter_map(|work| work()).collect();
        // Every batch applied before a ticket up to `target` was taken, and every batch of
        // the work just run, is in the engine now: this sync covers them.
        let target = lock(&shared.requests).requested;
        if waiting.is_empty() && target <= durable {
            continue;
        }
        let started = Instant::now();
        match sync() {
            Ok(()) => {
                let took = started.elapsed();
                // Every write that waits for durability took one ticket.
                shared.syncs.synced(took, target - durable);
                durable = target;
                shared.progress.send_modify(|p| p.durable = target);
                for after in waiting {
                    after(Ok(()));
                }
                // After the waiters are answered: they have waited long enough.
                if let Some((syncs, slowest)) = slow.note(took, Instant::now()) {
                    tracing::warn!(
                        syncs,
                        slowest_ms = slowest.as_millis() as u64,
                        "the disk was slow to make writes durable; the requests waiting for \
                         them waited as long (shsd_store_sync_duration_seconds)"
                    );
                }
            }
            Err(reason) => {
                tracing::error!(error = %reason, "store sync failed; refusing writes until restart");
                let reason: Arc<str> = reason.into();
                shared
                    .progress
                    .send_modify(|p| p.failure = Some(Arc::clone(&reason)));
                // Refuse new work before telling anyone, so that no one who has heard of
                // the failure can still queue work.
                let unrun = {
                    let mut requests = lock(&shared.requests);
                    requests.failed = Some(Arc::clone(&reason));
                    std::mem::take(&mut requests.work)
                };
                for after in waiting {
                    after(Err(Arc::clone(&reason)));
                }
                // Dropped unrun: their submitters see the failure.
                drop(unrun);
                return;
            }
        }
    }
}

/// The slow syncs not yet warned of, and when the last warning was.
#[derive(Debug, Default)]
struct SlowSyncs {
    last_warning: Option<Instant>,
    unreported: u64,
    slowest: Duration,
}

impl SlowSyncs {
    /// Notes a sync that took `took`, ending at `now`; returns what to warn of now, if
    /// anything: how many slow syncs there were since the last warning, and the slowest.
    fn note(&mut self, took: Duration, now: Instant) -> Option<(u64, Duration)> {
        if took < SLOW_SYNC {
            return None;
        }
        self.unreported += 1;
        self.slowest = self.slowest.max(took);
        if self
            .last_warning
            .is_some_and(|at| now.duration_since(at) < SLOW_SYNC_WARNING_EVERY)
        {
            return None;
        }
        self.last_warning = Some(now);
        let report = (self.unreported, self.slowest);
        self.unreported = 0;
        self.slowest = Duration::ZERO;
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
        // The metrics: each writer's ticket counted once, each sync timed (2 ms each).
        let recorded = commit.syncs();
        assert_eq!(recorded.writes, writers);
        assert_eq!(recorded.durations.count, syncs);
        assert!(recorded.durations.sum_micros >= 2_000 * syncs);
        assert_eq!(
            recorded.durations.buckets[..3],
            [0, 0, 0],
            "none under 2 ms"
        );
    }

    #[test]
    fn slow_syncs_are_warned_of_at_most_once_a_minute_with_a_count() {
        let mut slow = SlowSyncs::default();
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        assert_eq!(
            slow.note(Duration::from_millis(20), at(0)),
            None,
            "not slow"
        );
        let first = Duration::from_millis(700);
        assert_eq!(slow.note(first, at(1)), Some((1, first)));
        assert_eq!(
            slow.note(Duration::from_secs(3), at(10)),
            None,
            "warned a minute ago"
        );
        assert_eq!(slow.note(first, at(30)), None);
        assert_eq!(
            slow.note(Duration::from_millis(600), at(62)),
            Some((3, Duration::from_secs(3))),
            "the ones in between, counted, with the slowest"
        );
        assert_eq!(slow.note(Duration::from_millis(100), at(200)), None);
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

    /// Work runs on the committer thread, and hears the outcome only after a sync that
    /// started after it ran.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn submitted_work_shares_syncs_and_is_answered_after_one() {
        let syncs = Arc::new(AtomicU64::new(0));
        let commit =
            Arc::new(GroupCommit::start(slow_sync(syncs.clone(), Arc::default())).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (commit, syncs) = (commit.clone(), syncs.clone());
                tokio::spawn(async move {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let thread = std::thread::current().id();
                    commit
                        .submit(Box::new(move || {
                            assert_ne!(std::thread::current().id(), thread);
                            let ran_before = syncs.load(Ordering::SeqCst);
                            let after: AfterSync = Box::new(move |synced| {
                                let _ = tx.send((ran_before, synced.is_ok()));
                            });
                            Some(after)
                        }))
                        .unwrap();
                    rx.await.unwrap()
                })
            })
            .collect();
        for task in tasks {
            let (ran_before, ok) = task.await.unwrap();
            assert!(ok);
            // The sync that answered it came later.
            assert!(syncs.load(Ordering::SeqCst) > ran_before);
        }
        let syncs = syncs.load(Ordering::SeqCst);
        assert!(syncs < 50, "{syncs} syncs for 200 pieces of work");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn work_is_refused_after_a_failed_sync() {
        let syncs = Arc::new(AtomicU64::new(0));
        let fail = Arc::new(AtomicBool::new(true));
        let commit = GroupCommit::start(slow_sync(syncs.clone(), fail.clone())).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        commit
            .submit(Box::new(move || {
                let after: AfterSync = Box::new(move |synced| {
                    let _ = tx.send(synced);
                });
                Some(after)
            }))
            .unwrap();
        let reason = rx.await.unwrap().unwrap_err();
        assert!(reason.contains("injected EIO"));
        fail.store(false, Ordering::SeqCst);
        let refused = commit.submit(Box::new(|| -> Option<AfterSync> { panic!("must not run") }));
        assert!(refused.unwrap_err().to_string().contains("injected EIO"));
        assert!(commit.failure().to_string().contains("injected EIO"));
        assert_eq!(syncs.load(Ordering::SeqCst), 0);
    }
}
