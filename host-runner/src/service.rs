//! The one thread that owns the [`PluginHost`], and the cheap handle everyone
//! else calls it through (the shape of Zed's extension host: callers post
//! closures over a channel and await the reply).
//!
//! Keeping a single owner means every plugin call is serialised, as the plugin
//! requires, and a later hot swap only has to replace the host inside this
//! thread: callers hold [`Service`] handles, never the host.
//!
//! **Group commit.** A durable commit costs one sync of the database; one per
//! operation would cap the server at the disk's syncs per second. Operations
//! posted with [`Service::operation`] may share one: when the owner thread
//! finds several of them queued, it opens a batch in the plugin
//! ([`PluginHost::begin_batch`]), runs them (each still fails and rolls back
//! alone), commits once ([`PluginHost::commit_batch`]) and only then answers
//! them. No answer leaves before the commit that makes it true: if the commit
//! fails, or the instance dies during the batch (its open transaction dies
//! with it), every operation of the batch is answered with an error (its own,
//! if it had one). A failed commit leaves a live instance: the next one takes
//! over its uploads in flight as a hot swap does, settling what the batch left
//! half-recorded, so only the batch fails; one that died is replaced by one
//! that resumes the uploads its predecessor staged, settling the same way. A
//! batch closes after [`MAX_BATCH_OPS`] operations or [`MAX_BATCH_TIME`] of work, to bound the
//! latency it adds; an operation queued alone runs (and commits) alone, as
//! does anything posted with [`Service::call`] (hot swaps, crawler slices,
//! shutdowns, anything not a single operation).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::oneshot;

use crate::backend::{thread_cpu_time, ObjectStore};
use crate::plugin::wit::SliceOutcome;
use crate::plugin::{CallError, HostConfig, HostError, PluginHost};
use crate::Operations;

/// Most operations in one group commit.
pub const MAX_BATCH_OPS: usize = 256;

/// A batch takes no further operation once it has run this long.
pub const MAX_BATCH_TIME: Duration = Duration::from_millis(5);

/// An operation's answer, held until its batch commits: called with `None`
/// it delivers the answer, with the commit's error it delivers a failure.
type Reply = Box<dyn FnOnce(Option<&CallError>) + Send>;

enum Job {
    /// Runs on its own, outside any batch, and answers itself.
    Alone(Box<dyn FnOnce(&mut PluginHost) + Send>),
    /// One operation, which may share a batch; its answer waits for the commit.
    Operation(Box<dyn FnOnce(&mut PluginHost) -> Reply + Send>),
}

/// The service thread is gone (it panicked or was shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceGone;

impl fmt::Display for ServiceGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the plugin service thread has stopped")
    }
}

impl std::error::Error for ServiceGone {}

/// How operations were committed, since the service started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Group commits attempted (one database sync each).
    pub batches: u64,
    /// Operations run inside them.
    pub batched_operations: u64,
    /// Operations run (and committed) on their own.
    pub single_operations: u64,
    /// Batches whose commit failed or that died with their instance; every
    /// operation in them was answered with an error.
    pub failed_batches: u64,
}

struct Counters {
    batches: AtomicU64,
    batched_operations: AtomicU64,
    single_operations: AtomicU64,
    failed_batches: AtomicU64,
    /// Operations per commit: a batch's size, 1 for an operation alone.
    commit_sizes: Histogram,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            batches: AtomicU64::new(0),
            batched_operations: AtomicU64::new(0),
            single_operations: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            // 1, 2, 4, … 256 (MAX_BATCH_OPS).
            commit_sizes: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
        }
    }
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A handle to the service thread; clone it freely.
#[derive(Clone)]
pub struct Service {
    jobs: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    /// Jobs posted and not yet started.
    queued: Arc<AtomicUsize>,
}

/// The running service thread; joining waits until every handle is dropped.
pub struct ServiceThread {
    handle: JoinHandle<()>,
}

impl ServiceThread {
    /// Waits for the thread to finish (after the last [`Service`] is dropped);
    /// the plugin is shut down cleanly on the way out.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

impl Service {
    /// Starts the plugin on a new thread that will own it; returns once `init` ran.
    pub fn start(
        config: HostConfig,
        backend: Arc<dyn ObjectStore>,
    ) -> Result<(Service, ServiceThread), HostError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let counters = Arc::new(Counters::default());
        let owned = counters.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("plugin-service".into())
            .spawn(move || {
                let mut host = match PluginHost::start(config, backend) {
                    Ok(host) => {
                        let _ = ready_tx.send(Ok(()));
                        host
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                serve(&mut host, &queue, &owned);
                // Dropping the host shuts the plugin down cleanly.
            })
            .expect("spawning the plugin service thread");
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((
                Service {
                    jobs,
                    counters,
                    queued: Arc::default(),
                },
                ServiceThread { handle },
            )),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(HostError::Instantiate(
                    "the plugin service thread died while starting".into(),
                ))
            }
        }
    }

    /// Wraps a host already started (tests, or a caller that started it itself).
    pub fn from_host(host: PluginHost) -> (Service, ServiceThread) {
        let (jobs, queue) = mpsc::channel::<Job>();
        let counters = Arc::new(Counters::default());
        let owned = counters.clone();
        let handle = thread::Builder::new()
            .name("plugin-service".into())
            .spawn(move || {
                let mut host = host;
                serve(&mut host, &queue, &owned);
            })
            .expect("spawning the plugin service thread");
        (
            Service {
                jobs,
                counters,
                queued: Arc::default(),
            },
            ServiceThread { handle },
        )
    }

    /// How operations were committed so far.
    pub fn batch_stats(&self) -> BatchStats {
        let c = &self.counters;
        BatchStats {
            batches: c.batches.load(Ordering::Relaxed),
            batched_operations: c.batched_operations.load(Ordering::Relaxed),
            single_operations: c.single_operations.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
        }
    }

    /// Operations per database commit so far (a live handle, for metrics).
    pub fn commit_sizes(&self) -> Histogram {
        self.counters.commit_sizes.clone()
    }

    /// Jobs waiting for the service thread: what a caller that can be
    /// refused (a client request) checks before adding to the queue.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    fn post<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PluginHost) -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, ServiceGone> {
        let (tx, rx) = oneshot::channel();
        let queued = self.queued.clone();
        queued.fetch_add(1, Ordering::Relaxed);
        self.jobs
            .send(Job::Alone(Box::new(move |host: &mut PluginHost| {
                queued.fetch_sub(1, Ordering::Relaxed);
                let _ = tx.send(f(host));
            })))
            .map_err(|_| ServiceGone)?;
        Ok(rx)
    }

    fn post_operation<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PluginHost) -> Result<T, CallError> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<T, CallError>>, ServiceGone> {
        let (tx, rx) = oneshot::channel();
        let queued = self.queued.clone();
        queued.fetch_add(1, Ordering::Relaxed);
        self.jobs
            .send(Job::Operation(Box::new(move |host: &mut PluginHost| {
                queued.fetch_sub(1, Ordering::Relaxed);
                let answer = f(host);
                Box::new(move |commit_failed: Option<&CallError>| {
                    let _ = tx.send(match (answer, commit_failed) {
                        (Ok(_), Some(e)) => Err(e.clone()),
                        (answer, _) => answer,
                    });
                }) as Reply
            })))
            .map_err(|_| ServiceGone)?;
        Ok(rx)
    }

    /// Runs `f` on the service thread, alone (never inside a group commit),
    /// and awaits its result. Anything goes: several operations, a hot swap,
    /// a crawler slice.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PluginHost) -> T + Send + 'static,
    ) -> Result<T, ServiceGone> {
        self.post(f)?.await.map_err(|_| ServiceGone)
    }

    /// Runs `f` on the service thread, blocking this (non-async) thread until done.
    pub fn call_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PluginHost) -> T + Send + 'static,
    ) -> Result<T, ServiceGone> {
        self.post(f)?.blocking_recv().map_err(|_| ServiceGone)
    }

    /// Runs one operation `f` on the service thread and awaits its answer;
    /// it may share a group commit with operations queued with it, and is
    /// answered only once that commit returned (with the commit's error if it
    /// failed). `f` should be a request's worth of plugin calls: nothing long
    /// (a crawler slice), nothing that replaces the instance (a swap).
    pub async fn operation<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PluginHost) -> Result<T, CallError> + Send + 'static,
    ) -> Result<Result<T, CallError>, ServiceGone> {
        self.post_operation(f)?.await.map_err(|_| ServiceGone)
    }

    /// [`Service::operation`], blocking this (non-async) thread until answered.
    pub fn operation_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PluginHost) -> Result<T, CallError> + Send + 'static,
    ) -> Result<Result<T, CallError>, ServiceGone> {
        self.post_operation(f)?
            .blocking_recv()
            .map_err(|_| ServiceGone)
    }
}

/// The owner thread's loop: runs jobs until every handle is dropped.
fn serve(host: &mut PluginHost, queue: &mpsc::Receiver<Job>, counters: &Counters) {
    // A job taken off the queue that could not join the batch before it.
    let mut held: Option<Job> = None;
    loop {
        let job = match held.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Alone(f) => f(host),
            Job::Operation(first) => match queue.try_recv() {
                Ok(Job::Operation(second)) => {
                    held = run_batch(host, queue, first, second, counters)
                }
                Ok(alone) => {
                    run_single(host, first, counters);
                    held = Some(alone);
                }
                // Nothing else waiting (or no handle left): no batch to share.
                Err(_) => run_single(host, first, counters),
            },
        }
    }
}

/// Runs one operation, which commits on its own, and answers it.
fn run_single(
    host: &mut PluginHost,
    op: Box<dyn FnOnce(&mut PluginHost) -> Reply + Send>,
    counters: &Counters,
) {
    Counters::add(&counters.single_operations, 1);
    counters.commit_sizes.observe(1.0);
    op(host)(None);
}

/// Runs `first`, `second` and whatever operations follow them in the queue
/// (up to the bounds) in one batch, commits it, then answers them all.
/// Returns a job taken off the queue that did not join the batch.
fn run_batch(
    host: &mut PluginHost,
    queue: &mpsc::Receiver<Job>,
    first: Box<dyn FnOnce(&mut PluginHost) -> Reply + Send>,
    second: Box<dyn FnOnce(&mut PluginHost) -> Reply + Send>,
    counters: &Counters,
) -> Option<Job> {
    if host.begin_batch().is_err() || !host.batch_open() {
        // No batch now (no instance, or an interface without group commit):
        // one operation at a time.
        run_single(host, first, counters);
        return Some(Job::Operation(second));
    }
    let started = Instant::now();
    let mut replies: Vec<Reply> = Vec::new();
    replies.push(first(host));
    let mut next = Some(second);
    let mut held = None;
    loop {
        if !host.batch_open() {
            // The instance died: the batch is lost, take nothing more into it.
            held = next.take().map(Job::Operation);
            break;
        }
        if replies.len() >= MAX_BATCH_OPS || started.elapsed() >= MAX_BATCH_TIME {
            held = next.take().map(Job::Operation);
            break;
        }
        let op = match next.take() {
            Some(op) => op,
            None => match queue.try_recv() {
                Ok(Job::Operation(op)) => op,
                Ok(alone) => {
                    held = Some(alone);
                    break;
                }
                Err(_) => break,
            },
        };
        replies.push(op(host));
    }
    let committed = host.commit_batch();
    let n = replies.len() as u64;
    Counters::add(&counters.batches, 1);
    Counters::add(&counters.batched_operations, n);
    counters.commit_sizes.observe(n as f64);
    if let Err(e) = &committed {
        Counters::add(&counters.failed_batches, 1);
        tracing::error!("plugin service: a group commit of {n} operation(s) failed: {e}");
    }
    let failure = committed.err();
    for reply in replies {
        reply(failure.as_ref());
    }
    held
}

/// How the background crawler is paced.
#[derive(Debug, Clone, Copy)]
pub struct CrawlerPacing {
    /// Share of one core the crawler may use, in percent (0 < p <= 100).
    pub cpu_percent: f64,
    /// Budget of one slice. Every other call waits while a slice runs (one
    /// plugin thread), so a slice is what a crawling server adds to a
    /// request's latency: kept short.
    pub slice: Duration,
}

impl Default for CrawlerPacing {
    fn default() -> Self {
        CrawlerPacing {
            cpu_percent: 10.0,
            slice: Duration::from_millis(20),
        }
    }
}

impl CrawlerPacing {
    /// The pause after a slice that ran for `ran`, keeping within the CPU share.
    pub fn pause_after(&self, ran: Duration) -> Duration {
        let p = self.cpu_percent.clamp(0.1, 100.0);
        ran.mul_f64((100.0 - p) / p)
    }
}

/// The crawler's work as its share counts it. A slice holds the plugin
/// thread for its whole run, syncs included: that wall time is paced, as it
/// is what requests wait behind. Its CPU time, with what the store did ahead
/// for it on threads of its own (listings walked ahead: a third of a first
/// cycle's CPU), is paced too, so the crawler keeps to its share of a core
/// when its slices hardly wait.
struct CrawlerWork {
    /// The store's [`ObjectStore::cpu_ahead`] when last counted.
    ahead_counted: Duration,
}

impl CrawlerWork {
    /// Counts from the store's CPU time ahead so far (`ahead`): work the
    /// store did before the crawler started is not the crawler's.
    fn since(ahead: Duration) -> Self {
        CrawlerWork {
            ahead_counted: ahead,
        }
    }

    /// A slice that ran for `ran` using `cpu` of its thread, the store's
    /// CPU time ahead now being `ahead`: the work to pace by, the larger of
    /// the slice's run and the CPU it and the store used since the last slice.
    fn after_slice(&mut self, ran: Duration, cpu: Duration, ahead: Duration) -> Duration {
        ran.max(cpu + self.count_to(ahead))
    }

    /// Counts the store's CPU time ahead up to `ahead`; returns what was new.
    fn count_to(&mut self, ahead: Duration) -> Duration {
        let new = ahead.saturating_sub(self.ahead_counted);
        self.ahead_counted = self.ahead_counted.max(ahead);
        new
    }
}

/// The background crawler: a thread that asks the service thread for slices.
pub struct CrawlerThread {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl CrawlerThread {
    /// Starts crawling through `service`, paced by `pacing`.
    pub fn spawn(service: Service, pacing: CrawlerPacing) -> CrawlerThread {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let handle = thread::Builder::new()
            .name("crawler".into())
            .spawn(move || crawl(service, pacing, stopping))
            .expect("spawning the crawler thread");
        CrawlerThread { stop, handle }
    }

    /// Stops after the slice in progress.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.thread().unpark();
        let _ = self.handle.join();
    }
}

/// What one slice measured of itself.
struct Work {
    /// Its run, start to end.
    ran: Duration,
    /// Its thread's CPU time.
    cpu: Duration,
    /// The store's CPU time ahead at its end ([`ObjectStore::cpu_ahead`]).
    ahead: Duration,
}

fn crawl(service: Service, pacing: CrawlerPacing, stop: Arc<AtomicBool>) {
    let Ok(ahead) = service.call_blocking(|host| host.backend().cpu_ahead()) else {
        return;
    };
    let mut work = CrawlerWork::since(ahead);
    while !stop.load(Ordering::SeqCst) {
        let slice = pacing.slice;
        let outcome = service.call_blocking(move |host| {
            let (started, cpu) = (Instant::now(), thread_cpu_time());
            let outcome = host.crawler_run_slice(slice, false);
            let measured = Work {
                ran: started.elapsed(),
                cpu: thread_cpu_time().saturating_sub(cpu),
                ahead: host.backend().cpu_ahead(),
            };
            (outcome, measured)
        });
        let pause = match outcome {
            Err(ServiceGone) => return,
            Ok((Ok(SliceOutcome::Progressed(_)), w)) => {
                pacing.pause_after(work.after_slice(w.ran, w.cpu, w.ahead))
            }
            Ok((Ok(SliceOutcome::Waiting(until)), w)) => {
                // Whatever was walked ahead before a wait is not paced for
                // after it.
                work.count_to(w.ahead);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                // Re-ask at least once a minute, so a changed configuration is noticed.
                Duration::from_secs(until.saturating_sub(now).clamp(1, 60) as u64)
            }
            Ok((Err(e), _)) => {
                tracing::warn!("crawler: slice failed: {e}");
                Duration::from_secs(10)
            }
        };
        let deadline = Instant::now() + pause;
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            thread::park_timeout(deadline - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_percent_means_nine_times_the_slice_asleep() {
        let pacing = CrawlerPacing::default();
        assert_eq!(
            pacing.pause_after(Duration::from_millis(100)),
            Duration::from_millis(900)
        );
    }

    #[test]
    fn a_slice_is_paced_with_the_walks_done_ahead_for_it() {
        let ms = Duration::from_millis;
        // The store had walked 1 s of CPU ahead (for another caller) before.
        let mut work = CrawlerWork::since(ms(1000));
        // A slice of 10 ms, 8 of them CPU, and 30 ms walked ahead for it.
        assert_eq!(work.after_slice(ms(10), ms(8), ms(1030)), ms(38));
        // Nothing walked since: the slice alone, nothing counted twice.
        assert_eq!(work.after_slice(ms(10), ms(8), ms(1030)), ms(10));
        // A slice mostly waiting for its sync: its run is paced.
        assert_eq!(work.after_slice(ms(20), ms(2), ms(1040)), ms(20));
        let pacing = CrawlerPacing::default();
        assert_eq!(
            pacing.pause_after(work.after_slice(ms(20), ms(15), ms(1125))),
            ms(900)
        );
    }

    #[test]
    fn service_handle_is_send_and_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Service>();
    }
}
