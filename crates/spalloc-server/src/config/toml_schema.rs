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
    #[serde(default, rename = "machine")]
    pub machines: Vec<RawMachine>,
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
    pub fail_power: Option<bool>,
}

/// A link given by name (`"north"`) or by number (`2`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum LinkValue {
    Name(String),
    Number(i64),
}

impl LinkValue {
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
