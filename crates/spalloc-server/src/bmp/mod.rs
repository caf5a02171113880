//! BMP back ends: what carries out the core's power and link requests.
//!
//! Each BMP (one per cabinet and frame) gets a worker task with a FIFO inbox,
//! so requests to one BMP run in order and requests to different BMPs run
//! concurrently; the core never waits for a BMP. The back ends are
//! [`simulated`] (no hardware) and [`scp`] (real BMPs over SCP/UDP): each
//! only carries out one request ([`CarryOut`]); the loop that takes
//! requests in order and reports each outcome ([`run_worker`]) is shared.
//! Outcomes go to a [`Completions`] (the server's shared state), so this
//! module knows nothing of the server that owns it.

pub mod scp;
pub mod simulated;

use crate::config::{BmpBackend, ServerConfig};
use crate::core::bmp_request::{BmpFailure, BmpRequest};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::error;

type WorkerKey = (String, (u32, u32));

/// Where a BMP worker reports that requests are done: each `Ok`, or `Err`
/// with what failed (a BMP that failed: the core destroys the job with the
/// reference's reason; boards that failed their power-on checks: the core
/// takes them out of service and queues the job again).
pub trait Completions: Send + Sync {
    /// Each of `done` is done, in order: one turn of the server for them all
    /// (a worker reports together the requests that finished at once).
    fn bmp_requests_done(&self, done: Vec<(BmpRequest, Result<(), BmpFailure>)>);
}

/// A back end's way of carrying out one request.
pub trait CarryOut {
    /// Carries out `request` (one at a time, in order).
    fn carry_out(&mut self, request: &BmpRequest) -> impl Future<Output = Result<(), BmpFailure>>;
}

/// Carries out each request of `inbox` in order with `backend` and reports
/// it to `completions`, until the inbox closes or the server is gone.
///
/// Requests already waiting are carried out one after the other, and those
/// that finish at once (a simulated BMP's) are reported together: a burst
/// of a thousand power-ons is then a few turns of the server (a few commits
/// of the state file) instead of a thousand. Nothing finished is held back
/// while a request waits for its BMP: what is done is reported first.
pub async fn run_worker(
    mut inbox: mpsc::UnboundedReceiver<BmpRequest>,
    completions: Weak<dyn Completions>,
    mut backend: impl CarryOut,
) {
    let mut done = Vec::new();
    let no_wake = std::task::Waker::from(Arc::new(NoWake));
    while let Some(first) = inbox.recv().await {
        let mut next = Some(first);
        while let Some(request) = next.take() {
            let started = std::time::Instant::now();
            let result = {
                let mut work = std::pin::pin!(backend.carry_out(&request));
                match poll_once(work.as_mut(), &no_wake) {
                    Some(result) => result,
                    None => {
                        if !report(&completions, &mut done) {
                            return;
                        }
                        work.await
                    }
                }
            };
            crate::metrics::events::global().bmp_request(
                &request.machine,
                result.is_ok(),
                started.elapsed(),
            );
            done.push((request, result));
            next = inbox.try_recv().ok();
        }
        if !report(&completions, &mut done) {
            return;
        }
    }
}

/// Reports what is `done` (and empties it); `false` if the server is gone.
fn report(
    completions: &Weak<dyn Completions>,
    done: &mut Vec<(BmpRequest, Result<(), BmpFailure>)>,
) -> bool {
    if done.is_empty() {
        return true;
    }
    let Some(completions) = completions.upgrade() else {
        return false;
    };
    completions.bmp_requests_done(std::mem::take(done));
    true
}

/// A waker that does nothing: [`poll_once`] only asks whether work is
/// done already, and awaits it properly otherwise.
struct NoWake;

impl std::task::Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}

/// Polls `work` once with `waker` (a [`NoWake`]): its output if it
/// finished without waiting.
fn poll_once<F: Future>(
    work: std::pin::Pin<&mut F>,
    waker: &std::task::Waker,
) -> Option<F::Output> {
    let mut context = std::task::Context::from_waker(waker);
    match work.poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// Nowhere to report to (before [`BmpDispatcher::attach`]).
struct Unattached;

impl Completions for Unattached {
    fn bmp_requests_done(&self, _: Vec<(BmpRequest, Result<(), BmpFailure>)>) {}
}

/// A running worker: its inbox and its task.
struct Worker {
    inbox: mpsc::UnboundedSender<BmpRequest>,
    task: JoinHandle<()>,
}

/// Routes each request to its BMP's worker, starting workers on demand.
pub struct BmpDispatcher {
    backends: HashMap<String, BmpBackend>,
    workers: HashMap<WorkerKey, Worker>,
    /// Per machine retired by a reload: closed once every retired worker of
    /// that machine has finished, so that its new workers never talk to a
    /// BMP at the same time as the old ones (the reference's
    /// `on_thread_start` wait).
    retired: HashMap<String, watch::Receiver<()>>,
    completions: Weak<dyn Completions>,
    runtime: tokio::runtime::Handle,
}

impl BmpDispatcher {
    /// A dispatcher for the machines of a configuration. `shared` is where
    /// workers report completions.
    pub fn new(config: &ServerConfig, runtime: tokio::runtime::Handle) -> BmpDispatcher {
        BmpDispatcher {
            backends: config
                .machines
                .iter()
                .map(|m| (m.machine.name.clone(), m.bmp.clone()))
                .collect(),
            workers: HashMap::new(),
            retired: HashMap::new(),
            completions: Weak::<Unattached>::new(),
            runtime,
        }
    }

    /// Sets where completions are reported (the server's shared state owns
    /// the dispatcher, so this is filled in once that exists).
    pub fn attach<C: Completions + 'static>(&mut self, completions: &Arc<C>) {
        let completions: Weak<C> = Arc::downgrade(completions);
        self.completions = completions;
    }

    /// Queues a request on its BMP's worker.
    pub fn dispatch(&mut self, request: BmpRequest) {
        let key = (request.machine.clone(), request.bmp);
        if let Some(worker) = self.workers.get(&key) {
            match worker.inbox.send(request) {
                Ok(()) => return,
                Err(mpsc::error::SendError(request)) => {
                    self.workers.remove(&key);
                    return self.dispatch(request);
                }
            }
        }
        let Some(backend) = self.backends.get(&request.machine).cloned() else {
            error!(machine = %request.machine, "BMP request for a machine with no back end");
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let completions = self.completions.clone();
        let mut predecessors = self.retired.get(&request.machine).cloned();
        let bmp_ip = request.bmp_ip.clone();
        let task = self.runtime.spawn(async move {
            if let Some(done) = &mut predecessors {
                // Completes with an error once every retired worker has ended.
                while done.changed().await.is_ok() {}
            }
            match backend {
                BmpBackend::Simulated {
                    power_delay,
                    fail_power,
                    fail_power_on,
                    ..
                } => {
                    let bmp = simulated::SimulatedBmp {
                        power_delay,
                        fail_power,
                        fail_power_on,
                    };
                    run_worker(rx, completions, bmp).await
                }
                BmpBackend::Scp(settings) => {
                    let bmp = scp::worker::Bmp::new(bmp_ip, settings);
                    run_worker(rx, completions, bmp).await
                }
            }
        });
        // A freshly created channel's receiver is alive, so this cannot fail.
        let _ = tx.send(request);
        self.workers.insert(key, Worker { inbox: tx, task });
    }

    /// Adopts a reloaded configuration. `gone` names the machines whose
    /// workers must stop (removed machines, reshaped ones and ones whose
    /// back end changed): they finish the requests already queued (such as
    /// the power-off of jobs destroyed by the reload) and then end. `fresh`
    /// names the machines that get new workers (added, reshaped, back end
    /// changed): as in the reference, those start only once every worker
    /// stopped by this reload has ended, so a BMP that moved from one machine
    /// to another is never driven by two workers at once. Back ends are then
    /// taken from `config`.
    pub fn reconfigure(&mut self, config: &ServerConfig, gone: &[String], fresh: &[String]) {
        if !gone.is_empty() {
            let keys: Vec<WorkerKey> = self
                .workers
                .keys()
                .filter(|(machine, _)| gone.contains(machine))
                .cloned()
                .collect();
            // Dropping a worker's inbox lets it drain its queue and end.
            let tasks: Vec<JoinHandle<()>> = keys
                .iter()
                .filter_map(|k| self.workers.remove(k))
                .map(|w| w.task)
                .collect();
            // Workers of earlier reloads not yet ended count too.
            let earlier: Vec<watch::Receiver<()>> = gone
                .iter()
                .chain(fresh)
                .filter_map(|n| self.retired.remove(n))
                .collect();
            let (done, waiting) = watch::channel(());
            self.runtime.spawn(async move {
                for mut earlier in earlier {
                    while earlier.changed().await.is_ok() {}
                }
                for task in tasks {
                    let _ = task.await;
                }
                drop(done);
            });
            for name in gone.iter().chain(fresh) {
                self.retired.insert(name.clone(), waiting.clone());
            }
        }
        self.backends = config
            .machines
            .iter()
            .map(|m| (m.machine.name.clone(), m.bmp.clone()))
            .collect();
    }

    /// The back end of a machine, if configured.
    pub fn backend(&self, machine: &str) -> Option<&BmpBackend> {
        self.backends.get(machine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::sync::oneshot;

    fn request(id: u64) -> BmpRequest {
        BmpRequest {
            id,
            job_id: id,
            machine: "m".into(),
            bmp: (0, 0),
            bmp_ip: "10.0.0.0".into(),
            power: true,
            boards: vec![0],
            links: Vec::new(),
        }
    }

    /// Records each report's request IDs.
    #[derive(Default)]
    struct Reports(Mutex<Vec<Vec<u64>>>);

    impl Completions for Reports {
        fn bmp_requests_done(&self, done: Vec<(BmpRequest, Result<(), BmpFailure>)>) {
            let ids = done.iter().map(|(r, _)| r.id).collect();
            self.0.lock().expect("reports").push(ids);
        }
    }

    /// Finishes at once, except request 3, which waits for `gate`.
    struct Backend {
        gate: Option<oneshot::Receiver<()>>,
    }

    impl CarryOut for Backend {
        async fn carry_out(&mut self, request: &BmpRequest) -> Result<(), BmpFailure> {
            if request.id == 3 {
                if let Some(gate) = self.gate.take() {
                    let _ = gate.await;
                }
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn requests_waiting_together_are_reported_together_and_nothing_done_waits_for_a_slow_one()
    {
        let reports = Arc::new(Reports::default());
        let completions: Weak<dyn Completions> = Arc::downgrade(&reports) as Weak<dyn Completions>;
        let (tx, rx) = mpsc::unbounded_channel();
        for id in 1..=5 {
            tx.send(request(id)).expect("queued");
        }
        let (open, gate) = oneshot::channel();
        let worker = tokio::spawn(run_worker(rx, completions, Backend { gate: Some(gate) }));
        // Requests 1 and 2 finish at once and are reported before request 3
        // is done (it waits for the gate).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while reports.0.lock().expect("reports").is_empty() {
            assert!(std::time::Instant::now() < deadline, "nothing reported");
            tokio::task::yield_now().await;
        }
        assert_eq!(*reports.0.lock().expect("reports"), vec![vec![1, 2]]);
        open.send(()).expect("gate");
        drop(tx);
        worker.await.expect("worker");
        assert_eq!(
            *reports.0.lock().expect("reports"),
            vec![vec![1, 2], vec![3, 4, 5]]
        );
    }
}
