//! The raw shape of the TOML file, before validation. Unknown keys are
//! refused so that a typo is reported instead of silently ignored.

use serde::Deserialize;
use spalloc_protocol::Link;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub port: Option<u16>,
    pub ip: Option<String>,
    pub timeout_check_interval: Option<f64>,
    pub max_retired_jobs: Option<usize>,
    pub seconds_before_free: Option<f64>,
    pub max_connections: Option<usize>,
    pub stalled_client_timeout: Option<f64>,
    pub allow_removing_every_machine: Option<bool>,
    /// Distinct jobs whose reports take a board out of service, for every
    /// machine that does not set its own (0: never).
    pub quarantine_after_reports: Option<u32>,
    /// `[store]`: how the state file is written.
    pub store: Option<RawStore>,
    /// `None` when the file has no `machine` key at all (neither
    /// `[[machine]]` tables nor an explicit `machine = []`).
    #[serde(rename = "machine")]
    pub machines: Option<Vec<RawMachine>>,
    /// `[http]`: the v2 REST API's listener.
    pub http: Option<super::http::RawHttp>,
    /// `[proxy]`: the job proxy's settings.
    pub proxy: Option<super::proxy::RawProxy>,
    /// `[quota]`: per-group budgets in board-seconds.
    pub quota: Option<RawQuota>,
}

/// The `[quota]` table (see `core::usage`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuota {
    /// `[quota.groups]`: group name → board-seconds.
    pub groups: Option<std::collections::BTreeMap<String, f64>>,
    /// The group legacy jobs are charged to.
    pub legacy_group: Option<String>,
    /// Warn this many seconds before a group's quota runs out.
    pub warning_seconds: Option<f64>,
}

/// The `[store]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    /// `"normal"` or `"full"`.
    pub synchronous: Option<crate::store::Synchronous>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMachine {
    pub name: String,
    pub tags: Option<Vec<String>>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub dead_boards: Option<Vec<[u32; 3]>>,
    pub dead_links: Option<Vec<(u32, u32, u32, LinkValue)>>,
    pub board_locations: Option<Vec<[u32; 6]>>,
    pub board_locations_from_spinner: Option<PathBuf>,
    pub bmp_ips: Option<Vec<(u32, u32, String)>>,
    pub spinnaker_ips: Option<Vec<(u32, u32, u32, String)>>,
    pub base_ip: Option<String>,
    pub cabinet_stride: Option<String>,
    pub frame_stride: Option<String>,
    pub board_stride: Option<String>,
    pub bmp_offset: Option<String>,
    pub spinnaker_offset: Option<String>,
    pub single_board: Option<bool>,
    pub bmp_ip: Option<String>,
    pub spinnaker_ip: Option<String>,
    pub bmp: Option<String>,
    pub power_delay: Option<f64>,
    /// `"fifo"` (the default) or `"backfill"`: see `core::scheduler`.
    pub scheduler: Option<String>,
    pub fail_power: Option<bool>,
    /// Simulated boards (`[x, y, z]`) that fail their power-on checks.
    pub fail_power_on: Option<Vec<[u32; 3]>>,
    /// This machine's own `quarantine_after_reports`.
    pub quarantine_after_reports: Option<u32>,
    /// Simulated boards answer SCP on their IPs (see `board_sim`).
    pub answer_scp: Option<bool>,
    // The keys of the `bmp = "scp"` back end (see the `config` module docs).
    pub bmp_port: Option<u16>,
    pub scp_timeout: Option<f64>,
    pub scp_retries: Option<u32>,
    pub version_check_retries: Option<u32>,
    pub power_on_timeout: Option<f64>,
    pub power_off_timeout: Option<f64>,
    pub post_power_on_delay: Option<f64>,
    pub fpga_check_rounds: Option<u32>,
    pub request_tries: Option<u32>,
    pub retry_delay: Option<f64>,
}

impl RawMachine {
    /// The first SCP key given, to refuse it on a simulated machine.
    pub fn given_scp_key(&self) -> Option<&'static str> {
        [
            ("bmp_port", self.bmp_port.is_some()),
            ("scp_timeout", self.scp_timeout.is_some()),
            ("scp_retries", self.scp_retries.is_some()),
            (
                "version_check_retries",
                self.version_check_retries.is_some(),
            ),
            ("power_on_timeout", self.power_on_timeout.is_some()),
            ("power_off_timeout", self.power_off_timeout.is_some()),
            ("post_power_on_delay", self.post_power_on_delay.is_some()),
            ("fpga_check_rounds", self.fpga_check_rounds.is_some()),
            ("request_tries", self.request_tries.is_some()),
            ("retry_delay", self.retry_delay.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(key, _)| key)
    }
}

/// A link given by name (`"north"`, `"north_east"`, or allocserv's
/// `"northEast"`) or by number (`2`): in a configuration's `dead_links`
/// and in allocserv's machine definitions alike.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LinkValue {
    /// A link's name (see [`Link`]'s `FromStr`).
    Name(String),
    /// A link's number, 0 to 5.
    Number(i64),
}

impl LinkValue {
    /// The link it names, or why it names none.
    pub fn to_link(&self) -> Result<Link, String> {
        match self {
            LinkValue::Name(n) => n
                .parse()
                .map_err(|e: spalloc_protocol::link::UnknownLink| e.to_string()),
            LinkValue::Number(v) => {
                Link::from_wire(*v).ok_or_else(|| format!("unknown link {v}: expected 0 to 5"))
            }
        }
    }
}
