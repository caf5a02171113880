//! The static description of one machine: its size in triads, dead boards and
//! links, where each board physically sits, and the IP addresses of its BMPs
//! and boards. Built once from the configuration and validated with the
//! reference server's messages (spalloc-server.md §3.2, §3.3).

use crate::core::coordinates::Board;
use crate::core::scheduler::Scheduler;
use spalloc_protocol::Link;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use thiserror::Error;

/// Where a board physically sits: cabinet, frame (one BMP each) and slot.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Physical {
    /// The cabinet.
    pub cabinet: u32,
    /// The frame within the cabinet; one BMP per (cabinet, frame).
    pub frame: u32,
    /// The board's slot within the frame.
    pub board: u32,
}

impl Physical {
    /// The BMP that controls this board.
    pub fn bmp(&self) -> (u32, u32) {
        (self.cabinet, self.frame)
    }
}

/// A machine description that failed validation. Messages are the reference's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct MachineError(pub String);

/// Everything needed to build a [`Machine`]; validated by [`Machine::new`].
#[derive(Debug, Clone, Default)]
pub struct MachineSpec {
    /// Unique name.
    pub name: String,
    /// Tags jobs can select the machine by.
    pub tags: BTreeSet<String>,
    /// Width in triads; inferred from the boards when both sizes are `None`.
    pub width: Option<u32>,
    /// Height in triads.
    pub height: Option<u32>,
    /// Boards that are missing or broken.
    pub dead_boards: BTreeSet<Board>,
    /// Broken links, from the sender's point of view.
    pub dead_links: BTreeSet<(Board, Link)>,
    /// Physical location of every live board (dead boards may have one too).
    pub board_locations: BTreeMap<Board, Physical>,
    /// The BMP of every (cabinet, frame) in use.
    pub bmp_ips: BTreeMap<(u32, u32), String>,
    /// The Ethernet-connected chip's hostname of every live board.
    pub spinnaker_ips: BTreeMap<Board, String>,
    /// How its queue is served.
    pub scheduler: Scheduler,
}

/// A validated machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Unique name.
    pub name: String,
    /// Tags jobs can select the machine by.
    pub tags: BTreeSet<String>,
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// Boards that are missing or broken.
    pub dead_boards: BTreeSet<Board>,
    /// Broken links.
    pub dead_links: BTreeSet<(Board, Link)>,
    /// Physical location of boards.
    pub board_locations: BTreeMap<Board, Physical>,
    /// BMP hostnames by (cabinet, frame).
    pub bmp_ips: BTreeMap<(u32, u32), String>,
    /// Board hostnames.
    pub spinnaker_ips: BTreeMap<Board, String>,
    /// How its queue is served (not part of the reference's description).
    pub scheduler: Scheduler,
    /// How many distinct jobs must report a board broken before it is
    /// taken out of service automatically; 0: never (an admin decides).
    /// Like `scheduler`, always from the configuration.
    pub quarantine_after_reports: u32,
}

/// Python's repr of a board tuple, `(x, y, z)`, used in messages.
pub fn board_repr(b: &Board) -> String {
    format!("({}, {}, {})", b.x, b.y, b.z)
}

fn set_repr<'a>(items: impl Iterator<Item = String> + 'a) -> String {
    let mut out = String::from("{");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
    }
    out.push('}');
    out
}

impl Machine {
    /// Validates a specification with the reference's rules and messages.
    pub fn new(spec: MachineSpec) -> Result<Machine, MachineError> {
        let err = |m: String| Err(MachineError(m));
        let (width, height) = match (spec.width, spec.height) {
            (Some(w), Some(h)) => (w, h),
            (None, None) => {
                let boards = spec.board_locations.keys().chain(spec.dead_boards.iter());
                let (mut w, mut h) = (0, 0);
                for b in boards {
                    w = w.max(b.x + 1);
                    h = h.max(b.y + 1);
                }
                (w, h)
            }
            _ => return err("Both or neither of width and height must be specified.".into()),
        };
        if width == 0 || height == 0 {
            return err(format!(
                "Machine '{}' has no boards: its width and height must be at least 1.",
                spec.name
            ));
        }
        let inside = |b: &Board| b.x < width && b.y < height && b.z < 3;
        if let Some(b) = spec.dead_boards.iter().find(|b| !inside(b)) {
            return err(format!("Dead board {} outside system.", board_repr(b)));
        }
        if let Some((b, _)) = spec.dead_links.iter().find(|(b, _)| !inside(b)) {
            return err(format!("Dead link {} outside system.", board_repr(b)));
        }
        if let Some(b) = spec.board_locations.keys().find(|b| !inside(b)) {
            return err(format!(
                "Board location given for board not in system {}.",
                board_repr(b)
            ));
        }
        let mut seen: BTreeMap<Physical, Board> = BTreeMap::new();
        for (b, p) in &spec.board_locations {
            if seen.insert(*p, *b).is_some() {
                return err(format!(
                    "Multiple boards given location c:{}, f:{}, b:{}.",
                    p.cabinet, p.frame, p.board
                ));
            }
        }
        let live: Vec<Board> = all_boards(width, height)
            .filter(|b| !spec.dead_boards.contains(b))
            .collect();
        let missing: Vec<&Board> = live
            .iter()
            .filter(|b| !spec.board_locations.contains_key(b))
            .collect();
        if !missing.is_empty() {
            return err(format!(
                "Board locations missing for {}",
                set_repr(missing.iter().map(|b| board_repr(b)))
            ));
        }
        let frames: BTreeSet<(u32, u32)> =
            spec.board_locations.values().map(Physical::bmp).collect();
        let missing_frames: Vec<_> = frames
            .iter()
            .filter(|f| !spec.bmp_ips.contains_key(f))
            .collect();
        if !missing_frames.is_empty() {
            return err(format!(
                "BMP IPs not given for frames {}",
                set_repr(missing_frames.iter().map(|(c, f)| format!("({c}, {f})")))
            ));
        }
        let missing_ips: Vec<&Board> = live
            .iter()
            .filter(|b| !spec.spinnaker_ips.contains_key(b))
            .collect();
        if !missing_ips.is_empty() {
            return err(format!(
                "SpiNNaker IPs not given for boards {}",
                set_repr(missing_ips.iter().map(|b| board_repr(b)))
            ));
        }
        Ok(Machine {
            name: spec.name,
            tags: spec.tags,
            width,
            height,
            dead_boards: spec.dead_boards,
            dead_links: spec.dead_links,
            board_locations: spec.board_locations,
            bmp_ips: spec.bmp_ips,
            spinnaker_ips: spec.spinnaker_ips,
            scheduler: spec.scheduler,
            quarantine_after_reports: 0,
        })
    }

    /// Whether a board exists in the machine and is not dead.
    pub fn is_live(&self, b: &Board) -> bool {
        b.x < self.width && b.y < self.height && b.z < 3 && !self.dead_boards.contains(b)
    }

    /// The logical board at a physical location (a linear search, as the reference).
    pub fn board_at(&self, p: Physical) -> Option<Board> {
        self.board_locations
            .iter()
            .find(|(_, loc)| **loc == p)
            .map(|(b, _)| *b)
    }

    /// Every live board.
    pub fn live_boards(&self) -> impl Iterator<Item = Board> + '_ {
        all_boards(self.width, self.height).filter(|b| !self.dead_boards.contains(b))
    }

    /// A one-line summary for logs.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{} ({}x{} triads, {} boards, {} BMPs)",
            self.name,
            self.width,
            self.height,
            self.live_boards().count(),
            self.bmp_ips.len()
        );
        s
    }
}

/// Every board position of a `width` x `height` triad machine, in (x, y, z) order.
pub fn all_boards(width: u32, height: u32) -> impl Iterator<Item = Board> {
    (0..width)
        .flat_map(move |x| (0..height).flat_map(move |y| (0..3).map(move |z| Board { x, y, z })))
}

/// Checks the cross-machine rules of the reference's `Configuration`: unique
/// names, BMP IPs and SpiNNaker IPs.
pub fn validate_machine_set(machines: &[Machine]) -> Result<(), MachineError> {
    let mut names = BTreeSet::new();
    let mut bmps = BTreeSet::new();
    let mut boards = BTreeSet::new();
    for m in machines {
        if !names.insert(m.name.as_str()) {
            return Err(MachineError(format!(
                "Machine name '{}' used multiple times.",
                m.name
            )));
        }
        for ip in m.bmp_ips.values() {
            if !bmps.insert(ip.as_str()) {
                return Err(MachineError(format!("BMP IP '{ip}' used multiple times.")));
            }
        }
        for ip in m.spinnaker_ips.values() {
            if !boards.insert(ip.as_str()) {
                return Err(MachineError(format!(
                    "SpiNNaker IP '{ip}' used multiple times."
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: u32, y: u32, z: u32) -> Board {
        Board { x, y, z }
    }

    fn spec_1x1() -> MachineSpec {
        let mut s = MachineSpec {
            name: "m".into(),
            width: Some(1),
            height: Some(1),
            ..Default::default()
        };
        for z in 0..3 {
            s.board_locations.insert(
                b(0, 0, z),
                Physical {
                    cabinet: 0,
                    frame: 0,
                    board: z,
                },
            );
            s.spinnaker_ips.insert(b(0, 0, z), format!("10.0.0.{z}"));
        }
        s.bmp_ips.insert((0, 0), "10.0.0.100".into());
        s
    }

    #[test]
    fn valid_machine_is_accepted() {
        let m = Machine::new(spec_1x1()).unwrap();
        assert_eq!(m.live_boards().count(), 3);
        assert_eq!(
            m.board_at(Physical {
                cabinet: 0,
                frame: 0,
                board: 2
            }),
            Some(b(0, 0, 2))
        );
    }

    #[test]
    fn messages_match_the_reference() {
        let mut s = spec_1x1();
        s.width = None;
        assert_eq!(
            Machine::new(s).unwrap_err().0,
            "Both or neither of width and height must be specified."
        );
        let mut s = spec_1x1();
        s.dead_boards.insert(b(1, 0, 0));
        assert_eq!(
            Machine::new(s).unwrap_err().0,
            "Dead board (1, 0, 0) outside system."
        );
        let mut s = spec_1x1();
        s.dead_links.insert((b(0, 0, 3), Link::North));
        assert_eq!(
            Machine::new(s).unwrap_err().0,
            "Dead link (0, 0, 3) outside system."
        );
        let mut s = spec_1x1();
        s.board_locations.insert(
            b(0, 0, 0),
            Physical {
                cabinet: 0,
                frame: 0,
                board: 1,
            },
        );
        assert_eq!(
            Machine::new(s).unwrap_err().0,
            "Multiple boards given location c:0, f:0, b:1."
        );
        let mut s = spec_1x1();
        s.board_locations.remove(&b(0, 0, 1));
        s.board_locations.remove(&b(0, 0, 2));
        assert_eq!(
            Machine::new(s).unwrap_err().0,
            "Board locations missing for {(0, 0, 1), (0, 0, 2)}"
        );
        let mut s = spec_1x1();
        s.bmp_ips.clear();
        assert_eq!(
            Machine::new(s).unwrap_err().0,
            "BMP IPs not given for frames {(0, 0)}"
        );
        let mut s = spec_1x1();
        s.spinnaker_ips.remove(&b(0, 0, 2));
        assert_eq!(
            Machine::new(s).unwrap_err().0,
            "SpiNNaker IPs not given for boards {(0, 0, 2)}"
        );
        let mut s = spec_1x1();
        s.board_locations.insert(
            b(0, 1, 0),
            Physical {
                cabinet: 1,
                frame: 0,
                board: 0,
            },
        );
        assert_eq!(
            Machine::new(s).unwrap_err().0,
            "Board location given for board not in system (0, 1, 0)."
        );
    }

    #[test]
    fn size_is_inferred_from_boards() {
        let mut s = spec_1x1();
        s.width = None;
        s.height = None;
        let m = Machine::new(s).unwrap();
        assert_eq!((m.width, m.height), (1, 1));
    }

    #[test]
    fn machine_set_rules() {
        let a = Machine::new(spec_1x1()).unwrap();
        assert_eq!(
            validate_machine_set(&[a.clone(), a.clone()]).unwrap_err().0,
            "Machine name 'm' used multiple times."
        );
        let mut c = a.clone();
        c.name = "n".into();
        assert_eq!(
            validate_machine_set(&[a.clone(), c.clone()]).unwrap_err().0,
            "BMP IP '10.0.0.100' used multiple times."
        );
        c.bmp_ips.insert((0, 0), "10.0.0.200".into());
        assert_eq!(
            validate_machine_set(&[a, c]).unwrap_err().0,
            "SpiNNaker IP '10.0.0.0' used multiple times."
        );
    }
}
