//! The whole allocation service as a sans-I/O state machine: the
//! [`Controller`] plus every client's notification watches, driven by lines
//! of protocol text.
//!
//! The network shell feeds it each complete line a client sends, the passage
//! of time ([`Service::tick`]) and BMP completions, and sends whatever it
//! returns. Nothing here blocks, so tests can drive full protocol sessions
//! without sockets or sleeps.

use crate::cmd::reply::Reply;
use crate::cmd::{self, Caller};
use crate::config::ServerConfig;
use crate::core::bmp_request::BmpRequest;
use crate::core::controller::{Controller, ControllerSettings};
use crate::core::watch::{ClientId, Watches};
use spalloc_protocol::{Notification, Request, RequestError};

/// The controller and the clients' watches.
#[derive(Debug, Clone)]
pub struct Service {
    /// Jobs, machines and allocation.
    pub controller: Controller,
    /// Who wants which notifications.
    pub watches: Watches,
    /// The known command the last [`Service::handle`] ran, for the shell's
    /// latency metrics (`None` for an unknown one).
    pub last_command: Option<&'static str>,
}

impl Service {
    /// A service for a configuration, with no jobs.
    pub fn new(config: &ServerConfig) -> Service {
        let settings = ControllerSettings {
            max_retired_jobs: config.max_retired_jobs,
            seconds_before_free: config.seconds_before_free,
        };
        let machines = config.machines.iter().map(|m| m.machine.clone()).collect();
        let mut controller = Controller::new(settings, machines);
        controller.set_quota_settings(config.quota.clone());
        Service {
            controller,
            watches: Watches::default(),
            last_command: None,
        }
    }

    /// Handles one line from a client. Returns `None` for a blank line
    /// (skipped, as by the reference) and otherwise the reply: a malformed
    /// request gets an `exception` explaining what is wrong instead of the
    /// reference's silent disconnect, since the stream is still in sync.
    pub fn handle_line(
        &mut self,
        caller: &Caller,
        line: &[u8],
        now: f64,
    ) -> Option<Result<Reply, String>> {
        self.last_command = None;
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(match Request::parse(line) {
            Ok(request) => self.handle(caller, request, now),
            Err(e) => Err(describe_bad_request(&e)),
        })
    }

    /// Handles one parsed request: its answer, or the message of an
    /// exception (see [`cmd::reply::line`] for the reply line).
    pub fn handle(&mut self, caller: &Caller, request: Request, now: f64) -> Result<Reply, String> {
        self.last_command = cmd::command::Command::from_name(&request.command).map(|c| c.name());
        cmd::dispatch(self, caller, request, now)
    }

    /// Expires jobs and performs due delayed frees.
    pub fn tick(&mut self, now: f64) {
        self.controller.tick(now);
    }

    /// BMP work decided since the last call.
    pub fn take_bmp_requests(&mut self) -> Vec<BmpRequest> {
        self.controller.take_bmp_requests()
    }

    /// Reports a finished BMP request (`Err(bmp_ip)` on failure).
    pub fn bmp_request_done(&mut self, request_id: u64, result: Result<(), String>, now: f64) {
        self.controller.bmp_request_done(request_id, result, now);
    }

    /// The notifications due for the changes since the last call. Changes
    /// nobody watches are dropped, as in the reference.
    pub fn take_notifications(&mut self) -> Vec<(ClientId, Notification)> {
        let changes = self.controller.take_changes();
        if changes.is_empty() || self.watches.is_empty() {
            return Vec::new();
        }
        self.watches.notifications(&changes.jobs, &changes.machines)
    }

    /// Forgets a disconnected client's watches (its jobs live on).
    pub fn client_disconnected(&mut self, client: ClientId) {
        self.watches.remove_client(client);
    }
}

fn describe_bad_request(e: &RequestError) -> String {
    format!(
        "{e}; a request is one JSON object per line: {{\"command\": \"name\", \"args\": [...], \"kwargs\": {{...}}}}"
    )
}
