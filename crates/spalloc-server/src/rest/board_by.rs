//! The three ways allocserv names one board of a machine: by triad
//! coordinates, by physical location, or by its Ethernet chip's IP
//! address. Job creation (`board`), issue reports and the admin API's
//! board lookup all use them.

use crate::core::coordinates::Board;
use crate::core::machine::{Machine, Physical};

/// Which board is meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardBy {
    /// Triad coordinates `(x, y, z)`.
    Triad(Board),
    /// `(cabinet, frame, board)`.
    Physical(Physical),
    /// The IP address of the board's Ethernet chip.
    Address(String),
}

impl BoardBy {
    /// The board of `machine` meant, if the machine has it (dead boards
    /// included: they exist, they just cannot be used).
    pub fn find_on(&self, machine: &Machine) -> Option<Board> {
        match self {
            BoardBy::Triad(b) => {
                (b.x < machine.width && b.y < machine.height && b.z < 3).then_some(*b)
            }
            BoardBy::Physical(p) => machine.board_at(*p),
            BoardBy::Address(a) => machine
                .spinnaker_ips
                .iter()
                .find(|(_, ip)| *ip == a)
                .map(|(b, _)| *b),
        }
    }
}
