//! BMP back ends: what carries out the core's power and link requests.
//!
//! Each BMP (one per cabinet and frame) gets a worker task with a FIFO inbox,
//! so requests to one BMP run in order and requests to different BMPs run
//! concurrently; the core never waits for a BMP. The back ends are
//! [`simulated`] (no hardware) and [`scp`] (real BMPs over SCP/UDP).

pub mod scp;
pub mod simulated;

use crate::config::{BmpBackend, ServerConfig};
use crate::core::bmp_request::BmpRequest;
use crate::server::shared::Shared;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;
use tracing::error;

type WorkerKey = (String, (u32, u32));

/// Routes each request to its BMP's worker, starting workers on demand.
pub struct BmpDispatcher {
    backends: HashMap<String, BmpBackend>,
    workers: HashMap<WorkerKey, mpsc::UnboundedSender<BmpRequest>>,
    shared: Weak<Shared>,
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
            shared: Weak::new(),
            runtime,
        }
    }

    /// Sets where completions are reported (the shared state owns the
    /// dispatcher, so this is filled in once that exists).
    pub fn attach(&mut self, shared: &Arc<Shared>) {
        self.shared = Arc::downgrade(shared);
    }

    /// Queues a request on its BMP's worker.
    pub fn dispatch(&mut self, request: BmpRequest) {
        let key = (request.machine.clone(), request.bmp);
        if let Some(worker) = self.workers.get(&key) {
            match worker.send(request) {
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
        let shared = self.shared.clone();
        match backend {
            BmpBackend::Simulated {
                power_delay,
                fail_power,
            } => {
                self.runtime
                    .spawn(simulated::worker(rx, shared, power_delay, fail_power));
            }
            BmpBackend::Scp(settings) => {
                self.runtime.spawn(scp::worker::worker(
                    rx,
                    shared,
                    request.bmp_ip.clone(),
                    settings,
                ));
            }
        }
        // A freshly created channel's receiver is alive, so this cannot fail.
        let _ = tx.send(request);
        self.workers.insert(key, tx);
    }
}
