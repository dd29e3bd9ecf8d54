//! The one thread that owns the [`PluginHost`], and the cheap handle everyone
//! else calls it through (the shape of Zed's extension host: callers post
//! closures over a channel and await the reply).
//!
//! Keeping a single owner means every plugin call is serialised, as the plugin
//! requires, and a later hot swap only has to replace the host inside this
//! thread: callers hold [`Service`] handles, never the host.
//!
//! Each call commits durably on its own inside the plugin; there is no group
//! commit across calls.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use crate::backend::ObjectStore;
use crate::plugin::wit::SliceOutcome;
use crate::plugin::{HostConfig, HostError, PluginHost};

type Job = Box<dyn FnOnce(&mut PluginHost) + Send>;

/// The service thread is gone (it panicked or was shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceGone;

impl fmt::Display for ServiceGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the plugin service thread has stopped")
    }
}

impl std::error::Error for ServiceGone {}

/// A handle to the service thread; clone it freely.
#[derive(Clone)]
pub struct Service {
    jobs: mpsc::Sender<Job>,
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
                while let Ok(job) = queue.recv() {
                    job(&mut host);
                }
                // Dropping the host shuts the plugin down cleanly.
            })
            .expect("spawning the plugin service thread");
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((Service { jobs }, ServiceThread { handle })),
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
        let handle = thread::Builder::new()
            .name("plugin-service".into())
            .spawn(move || {
                let mut host = host;
                while let Ok(job) = queue.recv() {
                    job(&mut host);
                }
            })
            .expect("spawning the plugin service thread");
        (Service { jobs }, ServiceThread { handle })
    }

    fn post<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PluginHost) -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, ServiceGone> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |host: &mut PluginHost| {
                let _ = tx.send(f(host));
            }))
            .map_err(|_| ServiceGone)?;
        Ok(rx)
    }

    /// Runs `f` on the service thread and awaits its result.
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
}

/// How the background crawler is paced.
#[derive(Debug, Clone, Copy)]
pub struct CrawlerPacing {
    /// Share of one core the crawler may use, in percent (0 < p <= 100).
    pub cpu_percent: f64,
    /// Budget of one slice.
    pub slice: Duration,
}

impl Default for CrawlerPacing {
    fn default() -> Self {
        CrawlerPacing {
            cpu_percent: 10.0,
            slice: Duration::from_millis(100),
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

fn crawl(service: Service, pacing: CrawlerPacing, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let slice = pacing.slice;
        let outcome = service.call_blocking(move |host| {
            let started = Instant::now();
            let outcome = host.crawler_run_slice(slice, false);
            (outcome, started.elapsed())
        });
        let pause = match outcome {
            Err(ServiceGone) => return,
            Ok((Ok(SliceOutcome::Progressed(_)), ran)) => pacing.pause_after(ran),
            Ok((Ok(SliceOutcome::Waiting(until)), _)) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                // Re-ask at least once a minute, so a changed configuration is noticed.
                Duration::from_secs(until.saturating_sub(now).clamp(1, 60) as u64)
            }
            Ok((Err(e), _)) => {
                eprintln!("crawler: slice failed: {e}");
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
    fn service_handle_is_send_and_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Service>();
    }
}
