//! allocserv's machine definitions (JSON, written by SpiNNMachine's
//! `py2json.py` from an old spalloc_server Python configuration) turned into
//! this server's TOML configuration, for `spalloc-server machine import`.
//!
//! The JSON is read as allocserv's `MachineDefinitionLoader` reads it:
//!
//! * keys are kebab-case (`dead-boards`, `bmp-ips`, `timeout-check-interval`);
//! * an unknown key, at the top level or in a machine, is refused: allocserv's
//!   Jackson mapper is built without turning `FAIL_ON_UNKNOWN_PROPERTIES`
//!   off, so such a file never loaded there either, and a typo (`dead-board`)
//!   must not silently drop the dead boards;
//! * map keys name boards as `[x:0,y:0,z:1]` and frames as `[c:0,f:0]`;
//!   `py2json.py` writes its `dead-links` keys with `=` (`[x=0,y=0,z=1]`),
//!   so both separators are taken, with spaces allowed around every part;
//! * dead links are legacy link names (`east`, `northEast`, `north`, `west`,
//!   `southWest`, `south`) or their numbers 0 to 5 (what `py2json.py`
//!   actually writes: its links are an `IntEnum`, which Python's `json`
//!   writes as a number; Jackson reads an enum from its ordinal too). These
//!   are exactly the links of this server's `dead_links` (the legacy
//!   numbering, read as the configuration reads them: [`LinkValue`]); only
//!   allocserv's own v2 directions are rotated;
//! * BMP and board addresses must be IPv4 addresses, as allocserv's
//!   `@IPAddress` requires;
//! * `width` and `height` are from 1 to 21 triads, allocserv's limits (which
//!   also bound the work of checking a hostile file, with
//!   [`MAX_BOARD_POSITIONS`] for all the machines together);
//! * a machine with exactly one board has depth 1 in allocserv: the two
//!   other boards of its triad do not exist. It becomes `single_board = true`
//!   when its board is the usual one ((0, 0, 0) at cabinet 0, frame 0,
//!   board 0, one triad, one BMP); otherwise its other board positions are
//!   written as dead boards, which keeps its physical location.
//!
//! Everything else is written out explicitly (`board_locations`, `bmp_ips`,
//! `spinnaker_ips`, `dead_boards`, `dead_links`, `tags`, `width`, `height`)
//! and then judged by the server's own parser and validator
//! ([`ServerConfig::from_toml_str`]), so that a definition the server would
//! refuse is refused here, with its message. In particular a multi-board
//! machine must list every board of its `width` x `height` triads that is
//! not dead, as spalloc_server required.
//!
//! The output is written by the `toml` crate from serde structures, one
//! row per board in each array (see [`Definitions::to_toml`]), after a
//! comment saying where it came from.

use super::toml_schema::LinkValue;
use super::ServerConfig;
use serde::{Deserialize, Serialize};
use spalloc_protocol::Link;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use thiserror::Error;

/// allocserv's limit on a machine's width and height, in triads
/// (`@ValidTriadWidth`, `@ValidTriadHeight`).
pub const MAX_TRIADS: u32 = 21;

/// The most board positions (3 x width x height, dead or alive) of all the
/// machines together. SpiNNaker1M, the largest machine, has 1200; the cap
/// keeps a hostile file of many one-board machines, each spread over 21 x 21
/// triads (every other position written out dead), from making gigabytes.
pub const MAX_BOARD_POSITIONS: u64 = 50_000;

/// Why a definition file could not be converted. The message names the
/// machine, the field and the key at fault, or is the validator's.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ImportError(pub String);

/// How the converted machines drive their boards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boards {
    /// `bmp = "scp"`: the machines' real BMPs.
    Real,
    /// `bmp = "simulated"`: no hardware, to try the definitions first.
    Simulated,
}

/// The whole JSON file: allocserv's `Configuration`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Definitions {
    /// The machines, in priority order.
    pub machines: Vec<MachineDefinition>,
    /// The legacy server's port (ignored by allocserv, used by this server).
    pub port: Option<u16>,
    /// The legacy server's address; `""` = every interface.
    pub ip: Option<String>,
    /// Seconds between keepalive checks.
    pub timeout_check_interval: Option<f64>,
    /// Destroyed jobs remembered.
    pub max_retired_jobs: Option<usize>,
    /// Seconds between a job's power-off and its boards' reuse.
    pub seconds_before_free: Option<f64>,
}

/// One machine: allocserv's `Machine`, with its map keys still strings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MachineDefinition {
    /// Its name.
    pub name: String,
    /// Its tags (none if absent, as in allocserv).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// Boards that are missing or broken.
    #[serde(default)]
    pub dead_boards: Vec<TriadObject>,
    /// Board key → its dead links.
    #[serde(default)]
    pub dead_links: BTreeMap<String, Vec<LinkValue>>,
    /// Board key → where it sits.
    #[serde(default)]
    pub board_locations: BTreeMap<String, PhysicalObject>,
    /// Frame key (`[c:0,f:0]`) → its BMP's address.
    #[serde(default)]
    pub bmp_ips: BTreeMap<String, String>,
    /// Board key → its Ethernet chip's address.
    #[serde(default)]
    pub spinnaker_ips: BTreeMap<String, String>,
}

/// A board as an object, `{"x": 0, "y": 0, "z": 1}` (in `dead-boards`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriadObject {
    /// Triad X.
    pub x: u32,
    /// Triad Y.
    pub y: u32,
    /// Board within the triad.
    pub z: u32,
}

/// A physical place, `{"c": 0, "f": 0, "b": 2}`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicalObject {
    /// Cabinet.
    pub c: u32,
    /// Frame.
    pub f: u32,
    /// Board (slot) in the frame.
    pub b: u32,
}

/// Parses one map key, `[x:0,y:0,z:1]` or `[c:0,f:0]`, given the names its
/// parts must have in order. A name and its number are separated by `:` or
/// `=`; spaces around any part are allowed.
///
/// Written by hand rather than with a regular expression crate: the grammar
/// is a bracketed list of `name:number` pairs, which `split` says plainly,
/// and the error can say which part is wrong.
fn parse_key<const N: usize>(key: &str, names: [&str; N]) -> Result<[u32; N], String> {
    let expected = || {
        let parts: Vec<String> = names.iter().map(|n| format!("{n}:N")).collect();
        format!("[{}]", parts.join(","))
    };
    let inner = key
        .trim()
        .strip_prefix('[')
        .and_then(|k| k.strip_suffix(']'))
        .ok_or_else(|| format!("is not of the form {}", expected()))?;
    let parts: Vec<&str> = inner.split(',').collect();
    if parts.len() != N {
        return Err(format!("is not of the form {}", expected()));
    }
    let mut out = [0; N];
    for ((slot, part), name) in out.iter_mut().zip(parts).zip(names) {
        let (given, value) = part
            .split_once([':', '='])
            .ok_or_else(|| format!("is not of the form {}", expected()))?;
        if given.trim() != name {
            return Err(format!("is not of the form {}", expected()));
        }
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("has {name} {value:?}, which is not a number"));
        }
        *slot = value
            .parse()
            .map_err(|_| format!("has {name} {value}, which is too large"))?;
    }
    Ok(out)
}

/// One machine's definitions, with its keys parsed.
struct ParsedMachine {
    locations: BTreeMap<[u32; 3], [u32; 3]>,
    bmp_ips: BTreeMap<[u32; 2], String>,
    spinnaker_ips: BTreeMap<[u32; 3], String>,
    dead_boards: BTreeSet<[u32; 3]>,
    dead_links: BTreeSet<([u32; 3], Link)>,
}

impl MachineDefinition {
    /// An error naming this machine, a field and (if any) a key.
    fn fault(&self, field: &str, key: Option<&str>, problem: &str) -> ImportError {
        match key {
            Some(key) => ImportError(format!(
                "machine '{}': {field} key {key:?} {problem}",
                self.name
            )),
            None => ImportError(format!("machine '{}': {field} {problem}", self.name)),
        }
    }

    /// Parses the keys of `map` as `names`, refusing two keys that name the
    /// same thing (`[x:0,y:0,z:0]` and `[x=0,y=0,z=0]`).
    fn keyed<const N: usize, V: Clone>(
        &self,
        field: &str,
        names: [&str; N],
        map: &BTreeMap<String, V>,
    ) -> Result<BTreeMap<[u32; N], V>, ImportError> {
        let mut out = BTreeMap::new();
        for (key, value) in map {
            let coords = parse_key(key, names).map_err(|e| self.fault(field, Some(key), &e))?;
            if out.insert(coords, value.clone()).is_some() {
                return Err(self.fault(field, Some(key), "names a place given twice"));
            }
        }
        Ok(out)
    }

    fn ipv4s<const N: usize>(
        &self,
        field: &str,
        names: [&str; N],
        map: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<[u32; N], String>, ImportError> {
        if let Some((key, ip)) = map.iter().find(|(_, ip)| ip.parse::<Ipv4Addr>().is_err()) {
            return Err(self.fault(
                field,
                Some(key),
                &format!("has address {ip:?}, which is not an IPv4 address"),
            ));
        }
        self.keyed(field, names, map)
    }

    /// Refuses a size allocserv refuses; returns the board positions.
    fn board_positions(&self) -> Result<u64, ImportError> {
        for (field, value) in [("width", self.width), ("height", self.height)] {
            if !(1..=MAX_TRIADS).contains(&value) {
                return Err(self.fault(
                    field,
                    None,
                    &format!("is {value}: allocserv takes 1 to {MAX_TRIADS} triads"),
                ));
            }
        }
        Ok(3 * u64::from(self.width) * u64::from(self.height))
    }

    fn parse(&self) -> Result<ParsedMachine, ImportError> {
        self.board_positions()?;
        let triad = ["x", "y", "z"];
        let locations = self
            .keyed("board-locations", triad, &self.board_locations)?
            .into_iter()
            .map(|(board, p)| (board, [p.c, p.f, p.b]))
            .collect();
        let mut dead_links = BTreeSet::new();
        for (key, links) in &self.dead_links {
            let [x, y, z] =
                parse_key(key, triad).map_err(|e| self.fault("dead-links", Some(key), &e))?;
            for link in links {
                let link = link
                    .to_link()
                    .map_err(|e| self.fault("dead-links", Some(key), &e))?;
                dead_links.insert(([x, y, z], link));
            }
        }
        Ok(ParsedMachine {
            locations,
            bmp_ips: self.ipv4s("bmp-ips", ["c", "f"], &self.bmp_ips)?,
            spinnaker_ips: self.ipv4s("spinnaker-ips", triad, &self.spinnaker_ips)?,
            dead_boards: self.dead_boards.iter().map(|b| [b.x, b.y, b.z]).collect(),
            dead_links,
        })
    }

    /// This machine as a `[[machine]]` table.
    fn to_table(&self, boards: Boards) -> Result<MachineTable, ImportError> {
        let parsed = self.parse()?;
        let mut table = MachineTable {
            keys: MachineKeys {
                name: self.name.clone(),
                tags: self.tags.clone(),
                single_board: None,
                bmp_ip: None,
                spinnaker_ip: None,
                width: Some(self.width),
                height: Some(self.height),
                bmp: match boards {
                    Boards::Real => "scp",
                    Boards::Simulated => "simulated",
                },
            },
            rows: Vec::new(),
        };
        let dead_links = rows(
            parsed
                .dead_links
                .iter()
                .map(|([x, y, z], link)| (x, y, z, link.name())),
        )?;
        let mut dead_boards = parsed.dead_boards.clone();
        if let [(&only, &place)] = parsed.locations.iter().collect::<Vec<_>>()[..] {
            let usual = only == [0, 0, 0]
                && place == [0, 0, 0]
                && (self.width, self.height) == (1, 1)
                && dead_boards
                    .iter()
                    .all(|b| b[..2] == [0, 0] && b[2] < 3 && *b != only)
                && parsed.bmp_ips.keys().eq([[0, 0]].iter())
                && parsed.spinnaker_ips.keys().eq([only].iter());
            if usual {
                table.keys.width = None;
                table.keys.height = None;
                table.keys.single_board = Some(true);
                table.keys.bmp_ip = parsed.bmp_ips.values().next().cloned();
                table.keys.spinnaker_ip = parsed.spinnaker_ips.values().next().cloned();
                table.rows.push(("dead_links", dead_links));
                return Ok(table);
            }
            // Depth 1: the triad's other boards do not exist.
            dead_boards.extend(
                crate::core::machine::all_boards(self.width, self.height)
                    .map(|b| [b.x, b.y, b.z])
                    .filter(|b| *b != only),
            );
        }
        let locations = parsed.locations.iter();
        table.rows = vec![
            ("dead_boards", rows(&dead_boards)?),
            ("dead_links", dead_links),
            (
                "board_locations",
                rows(locations.map(|([x, y, z], [c, f, b])| [x, y, z, c, f, b]))?,
            ),
            (
                "bmp_ips",
                rows(parsed.bmp_ips.iter().map(|([c, f], ip)| (c, f, ip)))?,
            ),
            (
                "spinnaker_ips",
                rows(
                    parsed
                        .spinnaker_ips
                        .iter()
                        .map(|([x, y, z], ip)| (x, y, z, ip)),
                )?,
            ),
        ];
        Ok(table)
    }
}

/// The rows of a table's array (each like `[0, 0, 1, "north"]`), as the
/// `toml` crate writes an inline array.
fn rows<T: Serialize>(items: impl IntoIterator<Item = T>) -> Result<Vec<String>, ImportError> {
    items
        .into_iter()
        .map(|item| {
            toml::Value::try_from(item)
                .map(|v| v.to_string())
                .map_err(|e| ImportError(format!("cannot write the configuration: {e}")))
        })
        .collect()
}

/// The top-level settings: the keys of `config::toml_schema`'s `RawConfig`
/// that the JSON carries.
#[derive(Debug, Serialize)]
struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_check_interval: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_retired_jobs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_before_free: Option<f64>,
}

/// One `[[machine]]` table (see the `config` module docs).
struct MachineTable {
    /// Its single-valued keys.
    keys: MachineKeys,
    /// Its arrays of boards, links and frames: key → rows.
    rows: Vec<(&'static str, Vec<String>)>,
}

/// The single-valued keys of a `[[machine]]` table.
#[derive(Debug, Serialize)]
struct MachineKeys {
    name: String,
    tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    single_board: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bmp_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spinnaker_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    bmp: &'static str,
}

impl Definitions {
    /// Reads allocserv's JSON. A file that is not JSON, or not of this
    /// shape, gets serde_json's one-line message (with line and column).
    pub fn from_json(bytes: &[u8]) -> Result<Definitions, ImportError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ImportError(format!("not an allocserv machine definition file: {e}")))
    }

    /// The TOML configuration of these definitions, after `header` (comment
    /// lines, each starting with `#`). It has been loaded with
    /// [`ServerConfig::from_toml_str`]: what it returns, the server loads.
    ///
    /// Every key and value is written by the `toml` crate; only the layout
    /// is put together here: each array of boards (`board_locations`,
    /// `spinnaker_ips`, ...) gets one row per line, where `toml`'s writer
    /// puts a whole array on one line (a 1200-board machine's locations on
    /// one line) or, "pretty", every number on its own line.
    pub fn to_toml(&self, boards: Boards, header: &str) -> Result<String, ImportError> {
        let mut positions = 0;
        for machine in &self.machines {
            positions += machine.board_positions()?;
        }
        if positions > MAX_BOARD_POSITIONS {
            return Err(ImportError(format!(
                "the machines have {positions} board positions in all; more than \
                 {MAX_BOARD_POSITIONS} is not a SpiNNaker installation"
            )));
        }
        let tables = self
            .machines
            .iter()
            .map(|m| m.to_table(boards))
            .collect::<Result<Vec<_>, _>>()?;
        let write_error =
            |e: toml::ser::Error| ImportError(format!("cannot write the configuration: {e}"));
        let settings = Settings {
            port: self.port,
            ip: self.ip.clone(),
            timeout_check_interval: self.timeout_check_interval,
            max_retired_jobs: self.max_retired_jobs,
            seconds_before_free: self.seconds_before_free,
        };
        let mut text = format!(
            "{header}\n{}",
            toml::to_string(&settings).map_err(write_error)?
        );
        if tables.is_empty() {
            // Says "no machines on purpose" (see the `config` module docs).
            text.push_str("machine = []\n");
        }
        for table in &tables {
            text.push_str("\n[[machine]]\n");
            text.push_str(&toml::to_string(&table.keys).map_err(write_error)?);
            for (key, rows) in &table.rows {
                if rows.is_empty() {
                    text.push_str(&format!("{key} = []\n"));
                } else {
                    text.push_str(&format!("{key} = [\n"));
                    for row in rows {
                        text.push_str(&format!("    {row},\n"));
                    }
                    text.push_str("]\n");
                }
            }
        }
        ServerConfig::from_toml_str(&text)
            .map_err(|e| ImportError(format!("the server would refuse this definition: {e}")))?;
        Ok(text)
    }
}

/// The header comment of a converted file: where it came from and how its
/// boards are driven. `source` is quoted with Rust's escapes, so that no
/// file name can end the comment line.
pub fn header(source: &str, boards: Boards) -> String {
    let how = match boards {
        Boards::Real => "bmp = \"scp\": the machines' real BMPs",
        Boards::Simulated => "bmp = \"simulated\" (--simulated): no hardware is touched",
    };
    format!(
        "# Converted by `spalloc-server machine import` from allocserv's machine\n\
         # definitions in {source:?}.\n\
         # Boards: {how}.\n"
    )
}

/// Converts allocserv's JSON to a configuration this server loads.
pub fn convert(json: &[u8], source: &str, boards: Boards) -> Result<String, ImportError> {
    Definitions::from_json(json)?.to_toml(boards, &header(source, boards))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BmpBackend;
    use crate::core::coordinates::Board;
    use crate::core::machine::Physical;

    /// A one-triad machine with its boards at slots 0, 1 and 2 of frame 0.
    fn one_triad(name: &str, extra: &str) -> String {
        format!(
            r#"{{"machines": [{{"name": "{name}", "tags": ["t"], "width": 1, "height": 1,
                "board-locations": {{"[x:0,y:0,z:0]": {{"c":0,"f":0,"b":0}}, "[x:0,y:0,z:1]": {{"c":0,"f":0,"b":1}}, "[x:0,y:0,z:2]": {{"c":0,"f":0,"b":2}}}},
                "bmp-ips": {{"[c:0,f:0]": "10.0.0.0"}},
                "spinnaker-ips": {{"[x:0,y:0,z:0]": "10.0.0.1", "[x:0,y:0,z:1]": "10.0.0.2",
                                   "[x:0,y:0,z:2]": "10.0.0.3"}}
                {extra}}}]}}"#
        )
    }

    /// Fails, showing `text`, unless it mentions every one of `parts`.
    fn assert_mentions(text: &str, parts: &[&str]) {
        for part in parts {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
    }

    fn load(json: &str) -> Result<ServerConfig, ImportError> {
        let toml = convert(json.as_bytes(), "test.json", Boards::Simulated)?;
        Ok(ServerConfig::from_toml_str(&toml).expect("the converter checked it"))
    }

    fn error(json: &str) -> String {
        convert(json.as_bytes(), "test.json", Boards::Simulated)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn board_and_frame_keys_are_read_with_colons_equals_signs_and_spaces() {
        for key in [
            "[x:1,y:2,z:0]",
            "[x=1,y=2,z=0]",
            " [ x : 1 , y = 2 , z:0 ] ",
        ] {
            assert_eq!(parse_key(key, ["x", "y", "z"]), Ok([1, 2, 0]), "{key}");
        }
        for key in ["[c:3,f:4]", "[c=3,f=4]", "[ c = 3, f : 4 ]"] {
            assert_eq!(parse_key(key, ["c", "f"]), Ok([3, 4]), "{key}");
        }
    }

    #[test]
    fn malformed_keys_are_refused_saying_what_is_wrong() {
        let triad = ["x", "y", "z"];
        for key in [
            "x:1,y:2,z:0",
            "[x:1,y:2]",
            "[y:1,x:2,z:0]",
            "[x1,y:2,z:0]",
            "[]",
            "",
        ] {
            let e = parse_key(key, triad).expect_err(key);
            assert!(e.contains("not of the form [x:N,y:N,z:N]"), "{key}: {e}");
        }
        let e = parse_key("[x:a,y:2,z:0]", triad).unwrap_err();
        assert!(e.contains("x \"a\", which is not a number"), "{e}");
        let e = parse_key("[x:-1,y:2,z:0]", triad).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        let e = parse_key("[x:1,y:99999999999,z:0]", triad).unwrap_err();
        assert!(e.contains("too large"), "{e}");
    }

    #[test]
    fn legacy_link_names_and_numbers_map_onto_the_legacy_links() {
        let cases = [
            ("east", Link::East),
            ("northEast", Link::NorthEast),
            ("north", Link::North),
            ("west", Link::West),
            ("southWest", Link::SouthWest),
            ("south", Link::South),
        ];
        for (name, link) in cases {
            assert_eq!(LinkValue::Name(name.into()).to_link(), Ok(link));
            assert_eq!(LinkValue::Number(link.to_wire()).to_link(), Ok(link));
        }
        let e = LinkValue::Name("up".into()).to_link().unwrap_err();
        assert!(e.contains("\"up\""), "{e}");
        assert!(LinkValue::Number(6).to_link().is_err());
    }

    #[test]
    fn dead_links_keyed_either_way_reach_the_server_configuration() {
        let c = load(&one_triad(
            "m",
            r#", "dead-links": {"[x=0,y=0,z=1]": ["northEast", "south"], "[x:0,y:0,z:2]": [2]}"#,
        ))
        .unwrap();
        let m = &c.machines[0].machine;
        let want: BTreeSet<(Board, Link)> = [
            (Board::new(0, 0, 1), Link::NorthEast),
            (Board::new(0, 0, 1), Link::South),
            (Board::new(0, 0, 2), Link::North),
        ]
        .into();
        assert_eq!(m.dead_links, want);
    }

    #[test]
    fn an_unknown_link_name_is_refused_naming_the_machine_the_field_the_key_and_the_name() {
        let e = error(&one_triad(
            "spin",
            r#", "dead-links": {"[x=0,y=0,z=1]": ["up"]}"#,
        ));
        assert_mentions(
            &e,
            &["machine 'spin'", "dead-links", "[x=0,y=0,z=1]", "\"up\""],
        );
    }

    #[test]
    fn a_key_with_a_coordinate_that_is_not_a_number_is_refused_naming_machine_field_and_key() {
        let json = one_triad("spin", "").replace("[x:0,y:0,z:2]\": {", "[x:0,y:zero,z:2]\": {");
        let e = error(&json);
        assert_mentions(
            &e,
            &[
                "machine 'spin'",
                "board-locations",
                "[x:0,y:zero,z:2]",
                "not a number",
            ],
        );
        let json = one_triad("spin", "").replace("[c:0,f:0]", "[cabinet:0,f:0]");
        let e = error(&json);
        assert_mentions(&e, &["machine 'spin'", "bmp-ips", "[cabinet:0,f:0]"]);
    }

    #[test]
    fn two_keys_naming_one_board_are_refused() {
        let json = one_triad("m", "").replace(
            r#""[x:0,y:0,z:0]": "10.0.0.1""#,
            r#""[x:0,y:0,z:0]": "10.0.0.1", "[x=0, y=0, z=0]": "10.0.0.9""#,
        );
        let e = error(&json);
        assert_mentions(&e, &["spinnaker-ips", "given twice"]);
    }

    #[test]
    fn an_address_that_is_not_ipv4_is_refused_naming_the_key() {
        let json = one_triad("m", "").replace("10.0.0.2", "board-two");
        let e = error(&json);
        assert_mentions(
            &e,
            &[
                "machine 'm'",
                "spinnaker-ips",
                "[x:0,y:0,z:1]",
                "\"board-two\"",
            ],
        );
    }

    #[test]
    fn dead_boards_are_objects_and_their_locations_may_be_left_out() {
        let json = one_triad("m", r#", "dead-boards": [{"x": 0, "y": 0, "z": 2}]"#)
            .replace(r#", "[x:0,y:0,z:2]": {"c":0,"f":0,"b":2}"#, "");
        assert!(!json.contains(r#""b":2"#), "{json}");
        let c = load(&json).unwrap();
        let m = &c.machines[0].machine;
        assert_eq!(m.dead_boards, [Board::new(0, 0, 2)].into());
        assert_eq!(m.live_boards().count(), 2);
        let e = error(&one_triad("m", r#", "dead-boards": [{"x": 0, "y": 0}]"#));
        assert!(e.contains("missing field `z`"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_as_allocserv_refuses_them() {
        let e = error(r#"{"machines": [], "colour": "blue"}"#);
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = error(&one_triad("m", r#", "dead-board": []"#));
        assert!(e.contains("unknown field `dead-board`"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_json_or_not_this_shape_gets_one_line_with_the_position() {
        for bad in [
            "port = 22244\n",
            "{\"machines\": [",
            "[1, 2, 3]",
            "{}",
            "{\"machines\": [{\"name\": \"m\", \"width\": \"two\"}]}",
            "\u{feff}garbage",
        ] {
            let e = error(bad);
            assert!(
                e.starts_with("not an allocserv machine definition file") && !e.contains('\n'),
                "{bad}: {e}"
            );
        }
        assert!(error("{\"machines\": [").contains("line 1 column"));
        assert!(error("{}").contains("missing field `machines`"));
    }

    #[test]
    fn deeply_nested_or_huge_sizes_are_refused_without_work() {
        // A dead link is read as any JSON value first (a name or a number):
        // the one place where nesting is followed, up to serde_json's limit.
        let nest = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep = one_triad(
            "m",
            &format!(r#", "dead-links": {{"[x:0,y:0,z:0]": {nest}}}"#),
        );
        assert!(error(&deep).contains("recursion limit"), "{}", error(&deep));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(error(&deep).starts_with("not an allocserv"));
        let huge = one_triad("m", "").replace("\"width\": 1", "\"width\": 4000000000");
        let e = error(&huge);
        assert!(e.contains("machine 'm': width is 4000000000"), "{e}");
    }

    #[test]
    fn many_machines_spread_over_many_triads_are_refused_before_any_is_written() {
        let machine = r#"{"name": "NAME", "width": 21, "height": 21,
            "board-locations": {"[x:20,y:20,z:2]": {"c": 0, "f": 0, "b": 0}},
            "bmp-ips": {"[c:0,f:0]": "10.0.0.0"}, "spinnaker-ips": {"[x:20,y:20,z:2]": "10.0.0.1"}}"#;
        let one = convert(
            format!(r#"{{"machines": [{}]}}"#, machine.replace("NAME", "m")).as_bytes(),
            "x.json",
            Boards::Real,
        )
        .unwrap();
        assert_eq!(one.matches("\n    [").count(), 3 * 21 * 21 - 1 + 3, "{one}");
        let machines: Vec<String> = (0..40)
            .map(|i| machine.replace("NAME", &format!("m{i}")))
            .collect();
        let e = error(&format!(r#"{{"machines": [{}]}}"#, machines.join(",")));
        assert!(e.contains("52920 board positions in all"), "{e}");
    }

    #[test]
    fn settings_are_renamed_and_absent_ones_left_out() {
        let json = r#"{"machines": [], "port": 22244, "ip": "127.0.0.1",
            "timeout-check-interval": 5.0, "max-retired-jobs": 1200, "seconds-before-free": 30}"#;
        let toml = convert(json.as_bytes(), "x.json", Boards::Real).unwrap();
        let c = ServerConfig::from_toml_str(&toml).unwrap();
        assert_eq!((c.port, c.ip.as_str()), (22244, "127.0.0.1"));
        assert_eq!(c.timeout_check_interval, 5.0);
        assert_eq!((c.max_retired_jobs, c.seconds_before_free), (1200, 30.0));
        assert!(toml.contains("machine = []"), "{toml}");
        let toml = convert(br#"{"machines": []}"#, "x.json", Boards::Real).unwrap();
        for key in ["port", "ip", "timeout_check_interval", "max_retired_jobs"] {
            assert!(!toml.contains(&format!("{key} =")), "{toml}");
        }
        assert!(toml.starts_with("# Converted by `spalloc-server machine import`"));
    }

    #[test]
    fn names_tags_and_file_names_with_quotes_and_newlines_cannot_break_the_output() {
        let json = one_triad("m", "")
            .replace(r#""name": "m""#, r#""name": "a \"b\"\n[[machine]]""#)
            .replace(r#""tags": ["t"]"#, r#""tags": ["x\ny = 1", "]"]"#);
        let toml = convert(json.as_bytes(), "evil\nport = 1.json", Boards::Real).unwrap();
        let c = ServerConfig::from_toml_str(&toml).unwrap();
        assert_eq!(c.machines.len(), 1, "{toml}");
        let m = &c.machines[0].machine;
        assert_eq!(m.name, "a \"b\"\n[[machine]]");
        assert_eq!(m.tags, ["x\ny = 1".to_owned(), "]".to_owned()].into());
        assert_eq!(c.port, spalloc_protocol::DEFAULT_PORT);
        assert!(
            toml.contains(r#"definitions in "evil\nport = 1.json""#),
            "{toml}"
        );
    }

    #[test]
    fn the_usual_one_board_machine_becomes_single_board() {
        // As py2json writes spalloc_server's `Machine.single_board`: the
        // triad's two other boards dead.
        let json = r#"{"machines": [{"name": "one", "tags": ["small"], "width": 1, "height": 1,
            "dead-boards": [{"x": 0, "y": 0, "z": 1}, {"x": 0, "y": 0, "z": 2}],
            "dead-links": {"[x:0,y:0,z:0]": ["west"]},
            "board-locations": {"[x:0,y:0,z:0]": {"c": 0, "f": 0, "b": 0}},
            "bmp-ips": {"[c:0,f:0]": "10.2.0.0"},
            "spinnaker-ips": {"[x:0,y:0,z:0]": "10.2.0.1"}}]}"#;
        let toml = convert(json.as_bytes(), "x.json", Boards::Real).unwrap();
        assert!(toml.contains("single_board = true"), "{toml}");
        let c = ServerConfig::from_toml_str(&toml).unwrap();
        let m = &c.machines[0].machine;
        assert_eq!(m.live_boards().collect::<Vec<_>>(), [Board::new(0, 0, 0)]);
        assert_eq!(m.bmp_ips[&(0, 0)], "10.2.0.0");
        assert_eq!(m.spinnaker_ips[&Board::new(0, 0, 0)], "10.2.0.1");
        assert!(m.dead_links.contains(&(Board::new(0, 0, 0), Link::West)));
        assert!(matches!(c.machines[0].bmp, BmpBackend::Scp(_)));
    }

    #[test]
    fn a_one_board_machine_elsewhere_keeps_its_place_with_the_rest_of_its_triad_dead() {
        let json = r#"{"machines": [{"name": "one", "width": 1, "height": 1,
            "board-locations": {"[x:0,y:0,z:0]": {"c": 1, "f": 2, "b": 7}},
            "bmp-ips": {"[c:1,f:2]": "10.2.0.0"},
            "spinnaker-ips": {"[x:0,y:0,z:0]": "10.2.0.1"}}]}"#;
        let c = load(json).unwrap();
        let m = &c.machines[0].machine;
        assert_eq!(m.live_boards().collect::<Vec<_>>(), [Board::new(0, 0, 0)]);
        assert_eq!(
            m.board_locations[&Board::new(0, 0, 0)],
            Physical {
                cabinet: 1,
                frame: 2,
                board: 7
            }
        );
        assert!(m.tags.is_empty());
    }

    #[test]
    fn a_definition_the_server_refuses_is_refused_with_the_validators_message() {
        let json = one_triad("m", "").replace(
            r#""[x:0,y:0,z:2]": "10.0.0.3""#,
            r#""[x:0,y:0,z:2]": "10.0.0.2""#,
        );
        let e = error(&json);
        assert_mentions(
            &e,
            &[
                "the server would refuse this definition",
                "SpiNNaker IP '10.0.0.2' used multiple times.",
            ],
        );
        let json = one_triad("m", "").replace(r#", "[x:0,y:0,z:2]": {"c":0,"f":0,"b":2}"#, "");
        let e = error(&json);
        assert!(e.contains("Board locations missing for {(0, 0, 2)}"), "{e}");
    }
}
