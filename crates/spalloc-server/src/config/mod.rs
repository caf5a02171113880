//! The server's configuration: a TOML file carrying exactly the fields of the
//! reference's `Configuration` and `Machine`, plus generators that reproduce
//! `Machine.with_standard_ips`, `Machine.single_board` and
//! `board_locations_from_spinner`, and the simulated-BMP settings.
//!
//! ```toml
//! port = 22244
//! ip = "127.0.0.1"
//! timeout_check_interval = 5.0
//! max_retired_jobs = 1200
//! seconds_before_free = 30.0
//!
//! [[machine]]
//! name = "m1"
//! tags = ["default"]
//! width = 2                          # in triads
//! height = 1
//! dead_boards = [[1, 0, 2]]
//! dead_links = [[0, 0, 1, "north"]]  # x, y, z, link name
//! base_ip = "127.0.1.0"
//! bmp = "simulated"
//! power_delay = 0.2
//! ```
//!
//! Every machine gets its board locations from (first that applies)
//! `board_locations = [[x, y, z, cabinet, frame, board], ...]`,
//! `board_locations_from_spinner = "file.csv"` (relative to the config file),
//! `single_board = true`, or the standard layout of [`board_layout`]. Its IPs
//! come from `bmp_ips = [[cabinet, frame, "ip"], ...]` and
//! `spinnaker_ips = [[x, y, z, "ip"], ...]`, or the standard scheme of
//! [`ip_scheme`] from `base_ip` (strides and offsets optional).

pub mod board_layout;
pub mod ip_scheme;
mod toml_schema;

use crate::core::coordinates::Board;
use crate::core::machine::{validate_machine_set, Machine, MachineSpec, Physical};
use ip_scheme::{parse_ip, IpScheme};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
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
    },
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
    /// Machines in priority order.
    pub machines: Vec<MachineConfig>,
}

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
            machines: Vec::new(),
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
        "#;
        // The embedded text is covered by a unit test; fall back to an empty
        // configuration rather than panicking if it were ever broken.
        ServerConfig::from_toml_str(DEMO).unwrap_or_default()
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
        let mut machines = Vec::with_capacity(raw.machines.len());
        for m in raw.machines {
            let name = m.name.clone();
            machines.push(
                build_machine(m, base_dir)
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
        Ok(ServerConfig {
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
        })
    }
}

fn build_machine(m: RawMachine, base_dir: &Path) -> Result<MachineConfig, String> {
    let bmp = match m.bmp.as_deref().unwrap_or("simulated") {
        "simulated" => {
            let power_delay = m.power_delay.unwrap_or(DEFAULT_POWER_DELAY);
            if !(power_delay.is_finite() && power_delay >= 0.0) {
                return Err(format!("power_delay must be a non-negative number, not {power_delay}"));
            }
            BmpBackend::Simulated {
                power_delay,
                fail_power: m.fail_power.unwrap_or(false),
            }
        }
        "scp" => {
            return Err("bmp = \"scp\" (real BMPs over SCP/UDP) is not supported by this build yet; use bmp = \"simulated\"".into())
        }
        other => return Err(format!("unknown bmp back end {other:?}: expected \"simulated\" or \"scp\"")),
    };
    let tags: BTreeSet<String> = m
        .tags
        .clone()
        .unwrap_or_else(|| vec!["default".to_owned()])
        .into_iter()
        .collect();
    let machine = if m.single_board.unwrap_or(false) {
        single_board(&m, tags)?
    } else {
        multi_board(&m, tags, base_dir)?
    };
    Ok(MachineConfig { machine, bmp })
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
bmp = "simulated"                  # the default; "scp" drives real BMPs (separate issue)
power_delay = 0.2                  # seconds a simulated power-on or power-off takes

[[machine]]
name = "one"
tags = ["special"]
single_board = true
bmp_ip = "127.0.2.0"
spinnaker_ip = "127.0.2.1"
"#;

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
                fail_power: false
            }
        );
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
