//! The server's configuration: a TOML file carrying exactly the fields of the
//! reference's `Configuration` and `Machine`, plus generators that reproduce
//! `Machine.with_standard_ips`, `Machine.single_board` and
//! `board_locations_from_spinner`, and the BMP back-end settings.
//!
//! ```toml
//! port = 22244
//! ip = "127.0.0.1"
//! timeout_check_interval = 5.0
//! max_retired_jobs = 1200
//! seconds_before_free = 30.0
//! max_connections = 1024             # more are refused with an exception
//! stalled_client_timeout = 60.0      # a client not reading its replies for this long is dropped
//! quarantine_after_reports = 2       # see below; 0 (the default) = never
//!
//! [[machine]]
//! name = "m1"
//! tags = ["default"]
//! width = 2                          # in triads
//! height = 1
//! dead_boards = [[1, 0, 2]]
//! dead_links = [[0, 0, 1, "north"]]  # x, y, z, link name
//! scheduler = "fifo"                 # or "backfill" (see core::scheduler)
//! base_ip = "127.0.1.0"
//! bmp = "simulated"
//! power_delay = 0.2
//! ```
//!
//! `quarantine_after_reports` is how many distinct jobs must report a board
//! broken (v2 `report-issue`, legacy `report_problem`) before it is taken
//! out of service automatically (see `core::board_service`); a machine may
//! set its own. 0 or absent: never (admins decide).
//!
//! # Quotas
//!
//! Optional budgets in board-seconds per group (see `core::usage`):
//!
//! ```toml
//! [quota]
//! legacy_group = "legacy"     # legacy-port jobs are charged to this group
//! warning_seconds = 600       # warn running jobs this long before the budget runs out
//! [quota.groups]
//! students = 3600000          # board-seconds; groups not listed are unlimited
//! legacy = 360000
//! ```
//!
//! A file must define its machines: one with no `[[machine]]` table at all
//! (such as an emptied file) is refused, at start-up and on reload. To run
//! with no machines on purpose, say so with an explicit empty list,
//! `machine = []`. Likewise a reload that would remove every running
//! machine (and so destroy every job) is refused unless the new file says
//! `allow_removing_every_machine = true` (or is `machine = []`).
//!
//! Every machine gets its board locations from (first that applies)
//! `board_locations = [[x, y, z, cabinet, frame, board], ...]`,
//! `board_locations_from_spinner = "file.csv"` (relative to the config file),
//! `single_board = true`, or the standard layout of [`board_layout`]. Its IPs
//! come from `bmp_ips = [[cabinet, frame, "ip"], ...]` and
//! `spinnaker_ips = [[x, y, z, "ip"], ...]`, or the standard scheme of
//! [`ip_scheme`] from `base_ip` (strides and offsets optional).
//!
//! # BMP back ends
//!
//! `bmp = "simulated"` (the default) needs no hardware: `power_delay`
//! (seconds, default 0.2) is how long each power command takes, and
//! `fail_power = true` makes every one fail (the job is destroyed, as by
//! the reference); `fail_power_on = [[x, y, z], ...]` makes those boards
//! fail their power-on checks (they go out of service and the job goes
//! back to the queue). `answer_scp = true` makes every
//! live board answer SCP on its IP, UDP port 17893, like a board running
//! SC&MP (the version command and memory reads and writes: see
//! `board_sim`); the embedded demo machine does.
//!
//! `bmp = "scp"` drives the machine's real BMPs over SCP/UDP, exactly as the
//! reference does. Its keys (all optional; the defaults are the reference's,
//! and only tests should need to change them) are:
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `bmp_port` | 17893 | the BMPs' UDP port |
//! | `scp_timeout` | 1.0 | seconds to wait for the reply to a version, FPGA read or FPGA write command before resending it |
//! | `scp_retries` | 3 | resends of those commands after a timeout or a "busy" result code |
//! | `version_check_retries` | 10 | resends of the version check made at start-up |
//! | `power_on_timeout` | 10.0 | seconds to wait for the reply to a power-on (never resent) |
//! | `power_off_timeout` | 0.5 | seconds to wait for the reply to a power-off (never resent) |
//! | `post_power_on_delay` | 5.0 | seconds to wait after a power-on before checking the FPGAs |
//! | `fpga_check_rounds` | 3 | power-on rounds before giving up on boards whose FPGAs report the wrong ID |
//! | `request_tries` | 2 | attempts at one batch of power and link commands |
//! | `retry_delay` | 15.0 | seconds between those attempts |
//!
//! ```toml
//! [[machine]]
//! name = "spin5"
//! width = 1
//! height = 1
//! base_ip = "10.11.192.0"
//! bmp = "scp"
//! ```

pub mod allocserv_json;
pub mod board_layout;
pub mod http;
pub mod ip_scheme;
pub mod proxy;
mod toml_schema;

use crate::core::coordinates::Board;
use crate::core::machine::{validate_machine_set, Machine, MachineSpec, Physical};
use crate::core::scheduler::{Scheduler, UnknownScheduler};
use ip_scheme::{parse_ip, IpScheme};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use toml_schema::{RawConfig, RawMachine};

/// A configuration that could not be loaded. The message says what to fix.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config: {0}")]
    Syntax(String),
    /// A value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// How a machine's boards are powered and their links configured.
#[derive(Debug, Clone, PartialEq)]
pub enum BmpBackend {
    /// No hardware: power commands take `power_delay` seconds and succeed,
    /// unless `fail_power` injects the reference's BMP failure.
    Simulated {
        /// Seconds a power-on or power-off takes.
        power_delay: f64,
        /// Make every power command fail (for tests of the failure path).
        fail_power: bool,
        /// Boards, as (cabinet, frame, slot), whose power-on checks fail
        /// (`fail_power_on`): the failure-aware path (the board goes out
        /// of service, its job back to the queue).
        fail_power_on: BTreeSet<(u32, u32, u32)>,
        /// Each live board answers SCP on its IP, UDP port 17893 (see
        /// `board_sim`): off unless `answer_scp = true`, as binding the
        /// boards' addresses would clash between servers simulating the same
        /// machine (tests run many); the embedded demo turns it on.
        answer_scp: bool,
    },
    /// Real BMPs driven over SCP/UDP with these timings.
    Scp(ScpSettings),
}

/// Timeouts, waits and retry counts of the SCP back end. The defaults are
/// the reference's (SpiNNMan 1!7.0.0 and `async_bmp_controller`); tests
/// shorten them so that failure paths run in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ScpSettings {
    /// UDP port of every BMP of the machine (`bmp_port`).
    pub port: u16,
    /// Reply timeout of version, FPGA read and FPGA write commands (`scp_timeout`).
    pub timeout: Duration,
    /// Resends of those commands (`scp_retries`).
    pub retries: u32,
    /// Resends of the start-up version check (`version_check_retries`).
    pub version_check_retries: u32,
    /// Reply timeout of a power-on, never resent (`power_on_timeout`).
    pub power_on_timeout: Duration,
    /// Reply timeout of a power-off, never resent (`power_off_timeout`).
    pub power_off_timeout: Duration,
    /// Wait after each power-on, for the boards to start (`post_power_on_delay`).
    pub post_power_on_delay: Duration,
    /// Power-on rounds for boards with a wrongly loaded FPGA (`fpga_check_rounds`).
    pub fpga_check_rounds: u32,
    /// Attempts at one batch of commands (`request_tries`).
    pub request_tries: u32,
    /// Wait between those attempts (`retry_delay`).
    pub retry_delay: Duration,
}

impl Default for ScpSettings {
    fn default() -> Self {
        ScpSettings {
            port: 17893,
            timeout: Duration::from_secs(1),
            retries: 3,
            version_check_retries: 10,
            power_on_timeout: Duration::from_secs(10),
            power_off_timeout: Duration::from_millis(500),
            post_power_on_delay: Duration::from_secs(5),
            fpga_check_rounds: 3,
            request_tries: 2,
            retry_delay: Duration::from_secs(15),
        }
    }
}

/// One configured machine: its description and how to drive it.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineConfig {
    /// The validated machine.
    pub machine: Machine,
    /// Its BMP back end.
    pub bmp: BmpBackend,
}

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to listen on; `""` means every interface.
    pub ip: String,
    /// TCP port; 0 picks a free one.
    pub port: u16,
    /// How often keepalive expiry and delayed frees are checked, in seconds.
    pub timeout_check_interval: f64,
    /// How many destroyed jobs' reasons are remembered.
    pub max_retired_jobs: usize,
    /// Seconds between a destroyed job's power-off and its boards' reuse.
    pub seconds_before_free: f64,
    /// How many clients may be connected at once (`max_connections`, default
    /// [`DEFAULT_MAX_CONNECTIONS`]); a connection beyond it gets one
    /// `{"exception": "too many connections ..."}` line and is closed.
    pub max_connections: usize,
    /// Seconds a client may leave its replies unread, while it has more
    /// requests waiting, before it is disconnected (`stalled_client_timeout`,
    /// default [`DEFAULT_STALLED_CLIENT_TIMEOUT`]). A client that merely
    /// reads slowly is slowed down, not disconnected.
    pub stalled_client_timeout: f64,
    /// Whether a reload to this configuration may remove every running
    /// machine, destroying all their jobs (`allow_removing_every_machine =
    /// true`, or an explicit `machine = []`). Otherwise such a reload is
    /// refused as the likely result of a botched edit.
    pub allow_removing_every_machine: bool,
    /// Machines in priority order.
    pub machines: Vec<MachineConfig>,
    /// The durable state file (not a TOML key: `spalloc-server --state FILE`
    /// sets it, defaulting to `.NAME.state.sqlite` next to the config file
    /// NAME). `None` keeps no state across restarts.
    pub state_file: Option<PathBuf>,
    /// Ignore the saved state and start with no jobs (`--cold-start`), as
    /// the reference does; the state file is overwritten.
    pub cold_start: bool,
    /// `[store] synchronous`: whether a commit waits for the disk (`full`,
    /// surviving a power cut) or only for the operating system (`normal`,
    /// the default, surviving the server being killed).
    pub state_synchronous: crate::store::Synchronous,
    /// The v2 REST API's listener (`[http]`); `None` serves none.
    pub http: Option<http::HttpConfig>,
    /// The job proxy's settings (`[proxy]`).
    pub proxy: proxy::ProxyConfig,
    /// Per-group quotas (`[quota]`).
    pub quota: crate::core::usage::QuotaSettings,
}

/// The default cap on simultaneous client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The default [`ServerConfig::stalled_client_timeout`], in seconds.
pub const DEFAULT_STALLED_CLIENT_TIMEOUT: f64 = 60.0;

/// The default simulated power-on/off time, in seconds.
pub const DEFAULT_POWER_DELAY: f64 = 0.2;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ip: String::new(),
            port: spalloc_protocol::DEFAULT_PORT,
            timeout_check_interval: 5.0,
            max_retired_jobs: 1200,
            seconds_before_free: 30.0,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            stalled_client_timeout: DEFAULT_STALLED_CLIENT_TIMEOUT,
            allow_removing_every_machine: false,
            machines: Vec::new(),
            state_file: None,
            cold_start: false,
            state_synchronous: crate::store::Synchronous::Normal,
            http: None,
            proxy: proxy::ProxyConfig::default(),
            quota: crate::core::usage::QuotaSettings::default(),
        }
    }
}

impl ServerConfig {
    /// The embedded default: a simulated 24-board machine `demo` (4x2 triads,
    /// tag `default`) served on 127.0.0.1, so that anyone can try spalloc
    /// without hardware.
    pub fn demo() -> ServerConfig {
        const DEMO: &str = r#"
            ip = "127.0.0.1"
            timeout_check_interval = 1.0
            seconds_before_free = 2.0

            [[machine]]
            name = "demo"
            tags = ["default"]
            width = 4
            height = 2
            base_ip = "127.0.1.0"
            bmp = "simulated"
            power_delay = 0.5
            answer_scp = true
        "#;
        // The embedded text is covered by a unit test; fall back to an empty
        // configuration rather than panicking if it were ever broken.
        let mut demo = ServerConfig::from_toml_str(DEMO).unwrap_or_default();
        // The v2 REST API too, on any free port (logged at start-up).
        demo.http = Some(http::HttpConfig {
            port: 0,
            ..Default::default()
        });
        demo
    }

    /// Loads a TOML file; relative paths inside it are relative to its folder.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        ServerConfig::from_toml_str_in(&text, base)
    }

    /// Parses TOML text; relative paths are relative to the working directory.
    pub fn from_toml_str(text: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_toml_str_in(text, Path::new("."))
    }

    /// Parses TOML text; relative paths are relative to `base_dir`.
    pub fn from_toml_str_in(text: &str, base_dir: &Path) -> Result<ServerConfig, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let defaults = ServerConfig::default();
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(ConfigError::Invalid(format!(
                    "{name} must be a non-negative number of seconds, not {v}"
                )))
            }
        };
        // An emptied or unrelated file must not pass for "no machines".
        let explicitly_empty = raw.machines.as_ref().is_some_and(Vec::is_empty);
        let defines_machines = raw.machines.is_some();
        let raw_machines = raw.machines.unwrap_or_default();
        let mut machines = Vec::with_capacity(raw_machines.len());
        let quarantine_default = raw.quarantine_after_reports.unwrap_or(0);
        for m in raw_machines {
            let name = m.name.clone();
            machines.push(
                build_machine(m, base_dir, quarantine_default)
                    .map_err(|e| ConfigError::Invalid(format!("machine '{name}': {e}")))?,
            );
        }
        let plain: Vec<Machine> = machines.iter().map(|m| m.machine.clone()).collect();
        validate_machine_set(&plain).map_err(|e| ConfigError::Invalid(e.0))?;
        let interval = positive(
            "timeout_check_interval",
            raw.timeout_check_interval
                .unwrap_or(defaults.timeout_check_interval),
        )?;
        if interval == 0.0 {
            return Err(ConfigError::Invalid(
                "timeout_check_interval must be greater than 0".into(),
            ));
        }
        let max_connections = raw.max_connections.unwrap_or(defaults.max_connections);
        if max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be at least 1".into(),
            ));
        }
        let stalled_client_timeout = positive(
            "stalled_client_timeout",
            raw.stalled_client_timeout
                .unwrap_or(defaults.stalled_client_timeout),
        )?;
        if !(stalled_client_timeout > 0.0 && stalled_client_timeout < 1e9) {
            return Err(ConfigError::Invalid(format!(
                "stalled_client_timeout must be greater than 0 (and finite), not {stalled_client_timeout}"
            )));
        }
        if !defines_machines {
            return Err(ConfigError::Invalid(
                "the configuration defines no machines: add [[machine]] tables, or write \
                 `machine = []` to run with none on purpose"
                    .into(),
            ));
        }
        Ok(ServerConfig {
            max_connections,
            stalled_client_timeout,
            allow_removing_every_machine: explicitly_empty
                || raw.allow_removing_every_machine.unwrap_or(false),
            ip: raw.ip.unwrap_or(defaults.ip),
            port: raw.port.unwrap_or(defaults.port),
            timeout_check_interval: interval,
            max_retired_jobs: raw.max_retired_jobs.unwrap_or(defaults.max_retired_jobs),
            seconds_before_free: positive(
                "seconds_before_free",
                raw.seconds_before_free
                    .unwrap_or(defaults.seconds_before_free),
            )?,
            machines,
            state_file: None,
            cold_start: false,
            state_synchronous: raw.store.and_then(|s| s.synchronous).unwrap_or_default(),
            http: raw
                .http
                .map(|h| h.build(base_dir))
                .transpose()
                .map_err(ConfigError::Invalid)?,
            proxy: raw
                .proxy
                .map(|p| p.build())
                .transpose()
                .map_err(ConfigError::Invalid)?
                .unwrap_or_default(),
            quota: raw
                .quota
                .map(build_quota)
                .transpose()
                .map_err(ConfigError::Invalid)?
                .unwrap_or_default(),
        })
    }
}

/// Validates the `[quota]` table.
fn build_quota(raw: toml_schema::RawQuota) -> Result<crate::core::usage::QuotaSettings, String> {
    let defaults = crate::core::usage::QuotaSettings::default();
    let groups = raw.groups.unwrap_or_default();
    for (group, seconds) in &groups {
        crate::accounts::check_name(group).map_err(|e| format!("[quota.groups]: {e}"))?;
        if !(seconds.is_finite() && *seconds >= 0.0) {
            return Err(format!(
                "[quota.groups] {group} must be a non-negative number of board-seconds, not {seconds}"
            ));
        }
    }
    if let Some(group) = &raw.legacy_group {
        crate::accounts::check_name(group).map_err(|e| format!("[quota] legacy_group: {e}"))?;
    }
    let warning_seconds = raw.warning_seconds.unwrap_or(defaults.warning_seconds);
    if !(warning_seconds.is_finite() && warning_seconds >= 0.0) {
        return Err(format!(
            "[quota] warning_seconds must be a non-negative number of seconds, not {warning_seconds}"
        ));
    }
    Ok(crate::core::usage::QuotaSettings {
        groups,
        legacy_group: raw.legacy_group,
        warning_seconds,
    })
}

fn build_machine(
    m: RawMachine,
    base_dir: &Path,
    quarantine_default: u32,
) -> Result<MachineConfig, String> {
    let tags: BTreeSet<String> = m
        .tags
        .clone()
        .unwrap_or_else(|| vec!["default".to_owned()])
        .into_iter()
        .collect();
    let scheduler = match &m.scheduler {
        Some(name) => name.parse().map_err(|e: UnknownScheduler| e.to_string())?,
        None => Scheduler::default(),
    };
    let mut machine = if m.single_board.unwrap_or(false) {
        single_board(&m, tags)?
    } else {
        multi_board(&m, tags, base_dir)?
    };
    machine.scheduler = scheduler;
    machine.quarantine_after_reports = m.quarantine_after_reports.unwrap_or(quarantine_default);
    let bmp = bmp_backend(&m, &machine)?;
    Ok(MachineConfig { machine, bmp })
}

/// The physical places of the live boards `fail_power_on` names.
fn failing_slots(
    boards: &[[u32; 3]],
    machine: &Machine,
) -> Result<BTreeSet<(u32, u32, u32)>, String> {
    boards
        .iter()
        .map(|&[x, y, z]| {
            let board = Board::new(x, y, z);
            match machine.board_locations.get(&board) {
                Some(p) if machine.is_live(&board) => Ok((p.cabinet, p.frame, p.board)),
                _ => Err(format!(
                    "fail_power_on names ({x}, {y}, {z}), which is not a live board"
                )),
            }
        })
        .collect()
}

fn bmp_backend(m: &RawMachine, machine: &Machine) -> Result<BmpBackend, String> {
    match m.bmp.as_deref().unwrap_or("simulated") {
        "simulated" => {
            if let Some(key) = m.given_scp_key() {
                return Err(format!("{key} is for bmp = \"scp\" machines"));
            }
            let power_delay = m.power_delay.unwrap_or(DEFAULT_POWER_DELAY);
            if !(power_delay.is_finite() && power_delay >= 0.0) {
                return Err(format!(
                    "power_delay must be a non-negative number, not {power_delay}"
                ));
            }
            Ok(BmpBackend::Simulated {
                power_delay,
                fail_power: m.fail_power.unwrap_or(false),
                fail_power_on: failing_slots(m.fail_power_on.as_deref().unwrap_or(&[]), machine)?,
                answer_scp: m.answer_scp.unwrap_or(false),
            })
        }
        "scp" => {
            if m.power_delay.is_some()
                || m.fail_power.is_some()
                || m.fail_power_on.is_some()
                || m.answer_scp.is_some()
            {
                return Err(
                    "power_delay, fail_power, fail_power_on and answer_scp are for bmp = \"simulated\" machines"
                        .into(),
                );
            }
            scp_settings(m).map(BmpBackend::Scp)
        }
        other => Err(format!(
            "unknown bmp back end {other:?}: expected \"simulated\" or \"scp\""
        )),
    }
}

fn scp_settings(raw: &RawMachine) -> Result<ScpSettings, String> {
    let d = ScpSettings::default();
    let seconds = |key: &str, value: Option<f64>, default: Duration, zero_ok: bool| {
        let Some(v) = value else {
            return Ok(default);
        };
        if v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) && v < 1e9 {
            Ok(Duration::from_secs_f64(v))
        } else {
            let what = if zero_ok { "non-negative" } else { "positive" };
            Err(format!("{key} must be a {what} number of seconds, not {v}"))
        }
    };
    let at_least_one = |key: &str, value: Option<u32>, default: u32| match value {
        Some(0) => Err(format!("{key} must be at least 1")),
        Some(v) => Ok(v),
        None => Ok(default),
    };
    let port = match raw.bmp_port {
        Some(0) => return Err("bmp_port must be a UDP port number from 1 to 65535".into()),
        Some(p) => p,
        None => d.port,
    };
    Ok(ScpSettings {
        port,
        timeout: seconds("scp_timeout", raw.scp_timeout, d.timeout, false)?,
        retries: raw.scp_retries.unwrap_or(d.retries),
        version_check_retries: raw.version_check_retries.unwrap_or(d.version_check_retries),
        power_on_timeout: seconds(
            "power_on_timeout",
            raw.power_on_timeout,
            d.power_on_timeout,
            false,
        )?,
        power_off_timeout: seconds(
            "power_off_timeout",
            raw.power_off_timeout,
            d.power_off_timeout,
            false,
        )?,
        post_power_on_delay: seconds(
            "post_power_on_delay",
            raw.post_power_on_delay,
            d.post_power_on_delay,
            true,
        )?,
        fpga_check_rounds: at_least_one(
            "fpga_check_rounds",
            raw.fpga_check_rounds,
            d.fpga_check_rounds,
        )?,
        request_tries: at_least_one("request_tries", raw.request_tries, d.request_tries)?,
        retry_delay: seconds("retry_delay", raw.retry_delay, d.retry_delay, true)?,
    })
}

fn single_board(m: &RawMachine, tags: BTreeSet<String>) -> Result<Machine, String> {
    let conflicting = [
        ("width", m.width.is_some()),
        ("height", m.height.is_some()),
        ("board_locations", m.board_locations.is_some()),
        (
            "board_locations_from_spinner",
            m.board_locations_from_spinner.is_some(),
        ),
        ("dead_boards", m.dead_boards.is_some()),
        ("base_ip", m.base_ip.is_some()),
    ];
    if let Some((key, _)) = conflicting.iter().find(|(_, given)| *given) {
        return Err(format!("{key} cannot be combined with single_board = true"));
    }
    let bmp_ip = m.bmp_ip.clone().ok_or("bmp_ip must be given.")?;
    let spinnaker_ip = m
        .spinnaker_ip
        .clone()
        .ok_or("spinnaker_ip must be given.")?;
    let b0 = Board { x: 0, y: 0, z: 0 };
    let mut spec = MachineSpec {
        name: m.name.clone(),
        tags,
        width: Some(1),
        height: Some(1),
        dead_boards: [Board { x: 0, y: 0, z: 1 }, Board { x: 0, y: 0, z: 2 }].into(),
        dead_links: dead_links(m)?,
        ..Default::default()
    };
    spec.board_locations.insert(
        b0,
        Physical {
            cabinet: 0,
            frame: 0,
            board: 0,
        },
    );
    spec.bmp_ips.insert((0, 0), bmp_ip);
    spec.spinnaker_ips.insert(b0, spinnaker_ip);
    Machine::new(spec).map_err(|e| e.0)
}

fn dead_links(m: &RawMachine) -> Result<BTreeSet<(Board, spalloc_protocol::Link)>, String> {
    let mut out = BTreeSet::new();
    for (x, y, z, link) in m.dead_links.iter().flatten() {
        out.insert((
            Board {
                x: *x,
                y: *y,
                z: *z,
            },
            link.to_link()?,
        ));
    }
    Ok(out)
}

fn multi_board(m: &RawMachine, tags: BTreeSet<String>, base_dir: &Path) -> Result<Machine, String> {
    if m.bmp_ip.is_some() || m.spinnaker_ip.is_some() {
        return Err("bmp_ip and spinnaker_ip are for single_board = true machines; use base_ip, or bmp_ips and spinnaker_ips".into());
    }
    let dead_boards: BTreeSet<Board> = m
        .dead_boards
        .iter()
        .flatten()
        .map(|[x, y, z]| Board {
            x: *x,
            y: *y,
            z: *z,
        })
        .collect();
    let locations = match (&m.board_locations, &m.board_locations_from_spinner) {
        (Some(_), Some(_)) => {
            return Err("give board_locations or board_locations_from_spinner, not both".into())
        }
        (Some(list), None) => {
            let mut out = BTreeMap::new();
            for [x, y, z, c, f, b] in list {
                out.insert(
                    Board { x: *x, y: *y, z: *z },
                    Physical { cabinet: *c, frame: *f, board: *b },
                );
            }
            out
        }
        (None, Some(file)) => {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            board_layout::locations_from_spinner_csv(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        (None, None) => match (m.width, m.height) {
            (Some(w), Some(h)) => board_layout::standard_layout(w, h),
            _ => {
                return Err(
                    "give width and height (in triads), or board_locations, or board_locations_from_spinner"
                        .into(),
                )
            }
        },
    };
    let (bmp_ips, spinnaker_ips) = match (&m.base_ip, &m.bmp_ips, &m.spinnaker_ips) {
        (Some(base), None, None) => {
            let ip = |v: &Option<String>, default: u32| -> Result<u32, String> {
                v.as_deref().map(parse_ip).unwrap_or(Ok(default))
            };
            let d = IpScheme::with_base(parse_ip(base)?);
            let scheme = IpScheme {
                base: d.base,
                cabinet_stride: ip(&m.cabinet_stride, d.cabinet_stride)?,
                frame_stride: ip(&m.frame_stride, d.frame_stride)?,
                board_stride: ip(&m.board_stride, d.board_stride)?,
                bmp_offset: ip(&m.bmp_offset, d.bmp_offset)?,
                spinnaker_offset: ip(&m.spinnaker_offset, d.spinnaker_offset)?,
            };
            scheme.assign(&locations)
        }
        (None, Some(bmps), Some(boards)) => (
            bmps.iter()
                .map(|(c, f, ip)| ((*c, *f), ip.clone()))
                .collect(),
            boards
                .iter()
                .map(|(x, y, z, ip)| {
                    (
                        Board {
                            x: *x,
                            y: *y,
                            z: *z,
                        },
                        ip.clone(),
                    )
                })
                .collect(),
        ),
        (None, None, None) => {
            return Err(
                "give base_ip (the standard IP scheme), or both bmp_ips and spinnaker_ips".into(),
            )
        }
        _ => return Err("give either base_ip, or both bmp_ips and spinnaker_ips".into()),
    };
    let spec = MachineSpec {
        name: m.name.clone(),
        tags,
        width: m.width,
        height: m.height,
        dead_boards,
        dead_links: dead_links(m)?,
        board_locations: locations,
        bmp_ips,
        spinnaker_ips,
        ..Default::default()
    };
    Machine::new(spec).map_err(|e| e.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spalloc_protocol::Link;

    const ISSUE_EXAMPLE: &str = r#"
port = 22244
ip = "127.0.0.1"
timeout_check_interval = 5.0
max_retired_jobs = 1200
seconds_before_free = 30.0

[[machine]]
name = "m1"
tags = ["default"]
width = 2                          # in triads
height = 1
dead_boards = [[1, 0, 2]]
dead_links = [[0, 0, 1, "north"]]  # x, y, z, link name
base_ip = "127.0.1.0"              # the standard IP scheme of with_standard_ips (strides optional)
bmp = "simulated"                  # the default; "scp" drives real BMPs
power_delay = 0.2                  # seconds a simulated power-on or power-off takes

[[machine]]
name = "one"
tags = ["special"]
single_board = true
bmp_ip = "127.0.2.0"
spinnaker_ip = "127.0.2.1"
"#;

    #[test]
    fn quarantine_after_reports_has_a_default_that_a_machine_may_override() {
        let c = ServerConfig::from_toml_str(
            "quarantine_after_reports = 2\n\
             [[machine]]\nname = \"a\"\nwidth = 1\nheight = 1\nbase_ip = \"10.0.0.0\"\n\
             [[machine]]\nname = \"b\"\nwidth = 1\nheight = 1\nbase_ip = \"10.1.0.0\"\n\
             quarantine_after_reports = 0\n",
        )
        .unwrap();
        let got: Vec<u32> = c
            .machines
            .iter()
            .map(|m| m.machine.quarantine_after_reports)
            .collect();
        assert_eq!(got, [2, 0]);
        let none = ServerConfig::from_toml_str(
            "[[machine]]\nname = \"a\"\nwidth = 1\nheight = 1\nbase_ip = \"10.0.0.0\"\n",
        )
        .unwrap();
        assert_eq!(none.machines[0].machine.quarantine_after_reports, 0);
    }

    #[test]
    fn the_issue_example_loads_as_written() {
        let c = ServerConfig::from_toml_str(ISSUE_EXAMPLE).unwrap();
        assert_eq!(c.ip, "127.0.0.1");
        assert_eq!(c.machines.len(), 2);
        let m1 = &c.machines[0].machine;
        assert_eq!((m1.width, m1.height), (2, 1));
        assert!(m1.dead_boards.contains(&Board { x: 1, y: 0, z: 2 }));
        assert!(m1
            .dead_links
            .contains(&(Board { x: 0, y: 0, z: 1 }, Link::North)));
        assert_eq!(m1.bmp_ips[&(0, 0)], "127.0.1.0");
        assert_eq!(m1.spinnaker_ips[&Board { x: 1, y: 0, z: 1 }], "127.0.1.33");
        let one = &c.machines[1].machine;
        assert_eq!(one.live_boards().count(), 1);
        assert_eq!(one.tags, ["special".to_owned()].into());
        assert_eq!(
            c.machines[0].bmp,
            BmpBackend::Simulated {
                power_delay: 0.2,
                fail_power: false,
                fail_power_on: BTreeSet::new(),
                answer_scp: false
            }
        );
    }

    #[test]
    fn scp_back_end_defaults_are_the_reference_timings() {
        let c = ServerConfig::from_toml_str(
            "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\nbase_ip = \"10.0.0.0\"\nbmp = \"scp\"\n",
        )
        .unwrap();
        let BmpBackend::Scp(s) = &c.machines[0].bmp else {
            panic!("not scp: {:?}", c.machines[0].bmp);
        };
        assert_eq!(s, &ScpSettings::default());
        assert_eq!(s.port, 17893);
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!((s.retries, s.version_check_retries), (3, 10));
        assert_eq!(s.power_on_timeout, Duration::from_secs(10));
        assert_eq!(s.power_off_timeout, Duration::from_millis(500));
        assert_eq!(s.post_power_on_delay, Duration::from_secs(5));
        assert_eq!((s.fpga_check_rounds, s.request_tries), (3, 2));
        assert_eq!(s.retry_delay, Duration::from_secs(15));
    }

    #[test]
    fn scp_timings_are_configurable_and_validated() {
        let base = "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\nbase_ip = \"127.0.9.0\"\n";
        let c = ServerConfig::from_toml_str(&format!(
            "{base}bmp = \"scp\"\nbmp_port = 17000\nscp_timeout = 0.05\nscp_retries = 1\n\
             version_check_retries = 2\npower_on_timeout = 0.2\npower_off_timeout = 0.1\n\
             post_power_on_delay = 0\nfpga_check_rounds = 2\nrequest_tries = 1\nretry_delay = 0.01\n"
        ))
        .unwrap();
        assert_eq!(
            c.machines[0].bmp,
            BmpBackend::Scp(ScpSettings {
                port: 17000,
                timeout: Duration::from_millis(50),
                retries: 1,
                version_check_retries: 2,
                power_on_timeout: Duration::from_millis(200),
                power_off_timeout: Duration::from_millis(100),
                post_power_on_delay: Duration::ZERO,
                fpga_check_rounds: 2,
                request_tries: 1,
                retry_delay: Duration::from_millis(10),
            })
        );
        for (extra, complaint) in [
            (
                "bmp = \"scp\"\nscp_timeout = 0",
                "scp_timeout must be a positive",
            ),
            ("bmp = \"scp\"\npower_on_timeout = -1", "power_on_timeout"),
            ("bmp = \"scp\"\nretry_delay = nan", "retry_delay"),
            (
                "bmp = \"scp\"\nfpga_check_rounds = 0",
                "fpga_check_rounds must be at least 1",
            ),
            (
                "bmp = \"scp\"\nrequest_tries = 0",
                "request_tries must be at least 1",
            ),
            ("bmp = \"scp\"\nbmp_port = 0", "bmp_port"),
            (
                "bmp = \"scp\"\npower_delay = 1.0",
                "power_delay, fail_power, fail_power_on and answer_scp",
            ),
            (
                "fail_power_on = [[5, 0, 0]]",
                "fail_power_on names (5, 0, 0), which is not a live board",
            ),
            (
                "bmp = \"scp\"\nanswer_scp = true",
                "answer_scp are for bmp = \"simulated\"",
            ),
            ("scp_timeout = 1.0", "scp_timeout is for bmp = \"scp\""),
            ("bmp = \"snmp\"", "unknown bmp back end"),
        ] {
            let e = ServerConfig::from_toml_str(&format!("{base}{extra}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(complaint), "{extra}: {e}");
        }
    }

    #[test]
    fn demo_is_24_boards() {
        let c = ServerConfig::demo();
        assert_eq!(c.machines.len(), 1);
        assert_eq!(c.machines[0].machine.name, "demo");
        assert_eq!(c.machines[0].machine.live_boards().count(), 24);
        assert_eq!(c.ip, "127.0.0.1");
    }

    #[test]
    fn errors_name_the_machine_and_the_problem() {
        let e = ServerConfig::from_toml_str("[[machine]]\nname = \"x\"\nwidth = 1\nheight = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("machine 'x'") && e.contains("base_ip"), "{e}");
        let e = ServerConfig::from_toml_str("bogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = ServerConfig::from_toml_str(
            "[[machine]]\nname = \"a\"\nwidth = 1\nheight = 1\nbase_ip = \"10.0.0.0\"\n\
             [[machine]]\nname = \"a\"\nwidth = 1\nheight = 1\nbase_ip = \"10.1.0.0\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Machine name 'a' used multiple times."), "{e}");
        let e = ServerConfig::from_toml_str(
            "[[machine]]\nname = \"a\"\nsingle_board = true\nbmp_ip = \"1.2.3.4\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("spinnaker_ip must be given."), "{e}");
        let e = ServerConfig::from_toml_str(
            "[[machine]]\nname = \"a\"\nwidth = 1\nheight = 1\nbase_ip = \"10.0.0.0\"\ndead_links = [[0,0,0,\"up\"]]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown link"), "{e}");
        assert!(ServerConfig::from_toml_str("this is = not toml [").is_err());
    }

    #[test]
    fn explicit_locations_and_ips() {
        let c = ServerConfig::from_toml_str(
            r#"[[machine]]
               name = "m"
               board_locations = [[0,0,0, 0,0,0], [0,0,1, 0,0,1], [0,0,2, 0,0,2]]
               bmp_ips = [[0, 0, "bmp"]]
               spinnaker_ips = [[0,0,0,"a"], [0,0,1,"b"], [0,0,2,"c"]]
               dead_links = [[0,0,0,2]]
            "#,
        )
        .unwrap();
        let m = &c.machines[0].machine;
        assert_eq!((m.width, m.height), (1, 1));
        assert_eq!(m.spinnaker_ips[&Board { x: 0, y: 0, z: 2 }], "c");
        assert!(m
            .dead_links
            .contains(&(Board { x: 0, y: 0, z: 0 }, Link::North)));
    }

    #[test]
    fn spinner_csv_is_relative_to_the_config_file() {
        let dir = std::env::temp_dir().join(format!("spalloc-cfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("chips.csv"),
            "board,cabinet,frame,x,y\n0,0,0,0,0\n1,0,0,8,4\n2,0,0,4,8\n",
        )
        .unwrap();
        let cfg = dir.join("server.toml");
        std::fs::write(
            &cfg,
            "[[machine]]\nname = \"s\"\nboard_locations_from_spinner = \"chips.csv\"\nbase_ip = \"10.0.0.0\"\n",
        )
        .unwrap();
        let c = ServerConfig::from_file(&cfg).unwrap();
        assert_eq!(c.machines[0].machine.live_boards().count(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
