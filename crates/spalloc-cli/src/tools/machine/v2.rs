//! `spalloc-machine` over the v2 protocol: the v2 machine list made into
//! the legacy `list_machines` entries, so the layouts and `--json` are the
//! same over both protocols. The jobs shown are those the user may see
//! (their own, or all for an administrator), as the v2 API lists them.

use crate::failure::Failure;
use spalloc::v2::{Client, MachineInfo};
use spalloc::MachineListing;

/// The machines, as legacy listings.
pub fn list_machines(client: &Client) -> Result<Vec<MachineListing>, Failure> {
    Ok(client.machines()?.iter().map(listing).collect())
}

fn listing(m: &MachineInfo) -> MachineListing {
    MachineListing {
        name: m.name.clone(),
        tags: m.tags.clone(),
        width: m.width,
        height: m.height,
        dead_boards: m.dead_boards.iter().map(|b| [b.x, b.y, b.z]).collect(),
        dead_links: m
            .dead_links
            .iter()
            .filter_map(|ends| {
                let end = ends.first()?;
                Some([end.board.x, end.board.y, end.board.z, link(&end.direction)?])
            })
            .collect(),
    }
}

/// A v2 direction name as the legacy link number.
fn link(direction: &str) -> Option<u32> {
    Some(match direction.to_ascii_uppercase().as_str() {
        "E" | "EAST" => 0,
        "NE" | "NORTH_EAST" => 1,
        "N" | "NORTH" => 2,
        "W" | "WEST" => 3,
        "SW" | "SOUTH_WEST" => 4,
        "S" | "SOUTH" => 5,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_are_the_legacy_link_numbers() {
        assert_eq!(link("E"), Some(0));
        assert_eq!(link("sw"), Some(4));
        assert_eq!(link("up"), None);
    }
}
