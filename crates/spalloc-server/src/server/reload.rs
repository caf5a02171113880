//! Reloading the configuration of a running server (spalloc-server.md §7.2).
//!
//! A reload is triggered by SIGHUP (the binary, when it was started with a
//! config file) or by [`crate::RunningServer::reload`]. Unlike the
//! reference it is atomic: the new configuration is read and validated, the
//! BMPs of new and changed `bmp = "scp"` machines are version-checked, and
//! only then is everything applied at once under the state lock
//! ([`crate::core::controller::Controller::reconfigure`], then the BMP
//! dispatcher). Any failure is logged with its message and leaves the
//! running configuration untouched. A file with no machines is refused when
//! it is read (see [`crate::config`]), and a configuration that would
//! remove every running machine is refused here, unless it says it means
//! it (`allow_removing_every_machine = true` or `machine = []`): an emptied
//! or wrong file must not destroy every job.
//!
//! The listening address is not re-bound: if `ip` or `port` changed, a
//! warning says that a restart is needed. `timeout_check_interval` keeps its
//! start-up value too (the server checks at least every 0.1 s anyway).

use crate::bmp::scp::{check_bmps, BmpCheckError};
use crate::clock;
use crate::config::{BmpBackend, ConfigError, ServerConfig};
use crate::core::controller::ControllerSettings;
use crate::core::machine::Machine;
use crate::core::reconfigure::ReconfigureReport;
use crate::server::shared::{Shared, State};
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

/// Why a reload was refused; the running configuration is unchanged.
#[derive(Debug, Error)]
pub enum ReloadError {
    /// The file could not be read, parsed or validated.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A BMP of a new or changed machine failed its version check.
    #[error("{0}")]
    Bmp(#[from] BmpCheckError),
    /// The new configuration would remove every running machine without
    /// saying so ([`ServerConfig::allow_removing_every_machine`]).
    #[error(
        "the new configuration would remove every running machine ({}) and so destroy all \
         {jobs} live job(s); if that is what you want, add `allow_removing_every_machine = true` \
         to it (or write `machine = []` for no machines at all)",
        .machines.join(", ")
    )]
    RemovesEveryMachine {
        /// The running machines.
        machines: Vec<String>,
        /// The live jobs that would be destroyed.
        jobs: usize,
    },
    /// The server has stopped.
    #[error("the server is not running")]
    Stopped,
}

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The machines added, changed, modified and removed, and the jobs
    /// destroyed or cancelled as a result.
    pub report: ReconfigureReport,
    /// `ip` or `port` changed: the server still listens on the old address
    /// until it is restarted.
    pub restart_needed: bool,
}

/// Where the binary's configuration comes from, so SIGHUP can re-read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// The TOML file.
    pub path: PathBuf,
    /// `--ip` given on the command line (overrides the file's).
    pub ip: Option<String>,
    /// `--port` given on the command line (overrides the file's).
    pub port: Option<u16>,
}

impl ConfigSource {
    /// Reads and validates the file, then applies the command-line overrides.
    pub fn load(&self) -> Result<ServerConfig, ConfigError> {
        let mut config = ServerConfig::from_file(&self.path)?;
        if let Some(ip) = &self.ip {
            config.ip = ip.clone();
        }
        if let Some(port) = self.port {
            config.port = port;
        }
        Ok(config)
    }
}

/// A reload asked for by an embedding program, with where to send the result.
pub type ReloadRequest = (
    ServerConfig,
    oneshot::Sender<Result<ReloadOutcome, ReloadError>>,
);

/// What may trigger a reload of a server started by
/// [`crate::server::serve_with_reload`].
#[derive(Debug, Default)]
pub struct ReloadSources {
    /// Reload on SIGHUP (Unix only), listened for since
    /// [`Hangup::install`]. With no `file`, SIGHUP is logged and ignored
    /// (the built-in demo configuration has nothing to re-read).
    pub sighup: Option<Hangup>,
    /// The file SIGHUP re-reads.
    pub file: Option<ConfigSource>,
    /// Reloads asked for through a channel ([`crate::RunningServer::reload`]).
    pub requests: Option<mpsc::UnboundedReceiver<ReloadRequest>>,
}

/// SIGHUP, caught from the moment [`Hangup::install`] returns. Install it
/// before any start-up work: until then SIGHUP's default action kills the
/// process, and one that arrives during start-up is kept and acted on (the
/// file re-read) once the server runs.
#[derive(Debug)]
pub struct Hangup {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Hangup {
    /// Starts catching SIGHUP. Must be called inside a tokio runtime.
    #[cfg(unix)]
    pub fn install() -> std::io::Result<Hangup> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Hangup {
            signal: signal(SignalKind::hangup())?,
        })
    }

    /// There is no SIGHUP off Unix.
    #[cfg(not(unix))]
    pub fn install() -> std::io::Result<Hangup> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "SIGHUP exists on Unix only",
        ))
    }

    /// The next SIGHUP; `None` once no more can come.
    async fn recv(&mut self) -> Option<()> {
        #[cfg(unix)]
        {
            self.signal.recv().await
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

/// Applies new configurations to a running server, one at a time.
pub struct Reloader {
    current: ServerConfig,
    shared: Arc<Shared>,
    /// The simulated boards answering SCP, which follow each reload.
    simulated_boards: crate::board_sim::SimulatedBoards,
}

impl Reloader {
    /// A reloader for a server running `config`.
    pub fn new(config: ServerConfig, shared: Arc<Shared>) -> Reloader {
        Reloader {
            current: config,
            shared,
            simulated_boards: crate::board_sim::SimulatedBoards::default(),
        }
    }

    /// Hands the running simulated boards to the reloader, which rebinds
    /// them to each new configuration's machines.
    pub fn with_simulated_boards(mut self, boards: crate::board_sim::SimulatedBoards) -> Reloader {
        self.simulated_boards = boards;
        self
    }

    /// Checks and applies a new (already validated) configuration. On error
    /// nothing has changed.
    pub async fn apply(&mut self, new: ServerConfig) -> Result<ReloadOutcome, ReloadError> {
        self.refuse_removing_every_machine(&new)?;
        let machines: Vec<_> = new.machines.iter().map(|m| m.machine.clone()).collect();
        let plan = self
            .shared
            .with(|s| s.service.controller.plan_reconfigure(&machines));
        // Machines equal in the core but driven differently get new workers.
        let backend_changed: Vec<String> = new
            .machines
            .iter()
            .filter(|m| {
                self.current
                    .machines
                    .iter()
                    .any(|old| old.machine.name == m.machine.name && old.bmp != m.bmp)
                    && !plan.new_machines().any(|n| *n == m.machine.name)
            })
            .map(|m| m.machine.name.clone())
            .collect();
        let to_check = ServerConfig {
            machines: new
                .machines
                .iter()
                .filter(|m| matches!(m.bmp, BmpBackend::Scp(_)))
                .filter(|m| {
                    plan.new_machines()
                        .chain(&backend_changed)
                        .any(|n| *n == m.machine.name)
                })
                .cloned()
                .collect(),
            ..new.clone()
        };
        if !to_check.machines.is_empty() {
            check_bmps(&to_check).await?;
        }

        let settings = ControllerSettings {
            max_retired_jobs: new.max_retired_jobs,
            seconds_before_free: new.seconds_before_free,
        };
        let report = self
            .shared
            .with(|s| apply_to_state(s, &new, settings, machines, &backend_changed));

        let restart_needed = new.ip != self.current.ip || new.port != self.current.port;
        if restart_needed {
            warn!(
                ip = %new.ip, port = new.port,
                "the listening address changed: restart the server to listen there \
                 (it still listens on the old address)"
            );
        }
        info!(
            added = ?report.added,
            changed = ?report.changed,
            modified = ?report.modified,
            removed = ?report.removed,
            reordered = report.reordered,
            destroyed_jobs = ?report.destroyed_jobs,
            cancelled_jobs = ?report.cancelled_jobs,
            "configuration reloaded"
        );
        // Keep comparing with the address actually bound.
        let (ip, port) = (self.current.ip.clone(), self.current.port);
        self.current = ServerConfig { ip, port, ..new };
        self.simulated_boards.reconfigure(&self.current);
        Ok(ReloadOutcome {
            report,
            restart_needed,
        })
    }

    /// An emptied file, or one meant for another server, would destroy every
    /// job: refused unless the new configuration says it means it.
    fn refuse_removing_every_machine(&self, new: &ServerConfig) -> Result<(), ReloadError> {
        let running: Vec<String> = self
            .current
            .machines
            .iter()
            .map(|m| m.machine.name.clone())
            .collect();
        let keeps_one = new
            .machines
            .iter()
            .any(|m| running.contains(&m.machine.name));
        if running.is_empty() || keeps_one || new.allow_removing_every_machine {
            return Ok(());
        }
        let jobs = self
            .shared
            .with(|s| s.service.controller.live_jobs().count());
        Err(ReloadError::RemovesEveryMachine {
            machines: running,
            jobs,
        })
    }

    /// Re-reads a config file and applies it, logging the outcome; a file
    /// that fails to load or check is logged and changes nothing.
    pub async fn reload_file(&mut self, source: &ConfigSource) {
        info!(file = %source.path.display(), "rereading the configuration file");
        let result = match source.load() {
            Ok(config) => self.apply(config).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            error!(
                file = %source.path.display(), error = %e,
                "failed to reread configuration file; keeping the running configuration"
            );
        }
    }
}

/// Applies a checked configuration to the server's state: the controller
/// first, then the BMP back ends, whose work and reconfiguration leave
/// once the reload's records are committed (see
/// [`State::reconfigure_bmp`]). `backend_changed` names the machines equal
/// in the core whose back end changed (they get new workers).
pub(crate) fn apply_to_state(
    s: &mut State,
    new: &ServerConfig,
    settings: ControllerSettings,
    machines: Vec<Machine>,
    backend_changed: &[String],
) -> ReconfigureReport {
    s.service.controller.set_quota_settings(new.quota.clone());
    let report = s
        .service
        .controller
        .reconfigure(settings, machines, clock::now());
    // Power-offs of jobs destroyed with their machine go to the old
    // machine's workers, then the dispatcher adopts the new back ends, then
    // everything else goes to the new configuration's workers.
    let (old, current): (Vec<_>, Vec<_>) = s
        .service
        .take_bmp_requests()
        .into_iter()
        .partition(|r| !r.power && report.destroyed_jobs.contains(&r.job_id));
    let gone: Vec<String> = report
        .gone_machines()
        .chain(backend_changed)
        .cloned()
        .collect();
    let fresh: Vec<String> = report
        .new_machines()
        .chain(backend_changed)
        .cloned()
        .collect();
    s.reconfigure_bmp(old, new.clone(), gone, fresh, current);
    report
}

/// Serves reload triggers until the task is aborted.
pub async fn run(mut reloader: Reloader, mut sources: ReloadSources) {
    loop {
        tokio::select! {
            Some(()) = next_hangup(&mut sources.sighup) => match &sources.file {
                Some(file) => reloader.reload_file(file).await,
                None => info!("SIGHUP ignored: the built-in configuration has no file to reread"),
            },
            Some((config, reply)) = next_request(&mut sources.requests) => {
                let result = reloader.apply(config).await;
                if let Err(e) = &result {
                    error!(error = %e, "configuration reload refused; keeping the running configuration");
                }
                let _ = reply.send(result);
            }
            else => return,
        }
    }
}

async fn next_hangup(hangup: &mut Option<Hangup>) -> Option<()> {
    match hangup {
        Some(h) => h.recv().await,
        None => None,
    }
}

async fn next_request(
    requests: &mut Option<mpsc::UnboundedReceiver<ReloadRequest>>,
) -> Option<ReloadRequest> {
    match requests {
        Some(r) => r.recv().await,
        None => None,
    }
}
