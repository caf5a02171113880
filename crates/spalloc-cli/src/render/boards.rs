//! The hexagonal board map, as the reference's `render_boards`.
//!
//! Each board is drawn as a hexagon three characters wide:
//!
//! ```text
//!  ___
//! /ABC\
//! \___/
//! ```
//!
//! Boards are placed on a Cartesian grid where every board occupies one cell
//! and edges are shared between neighbours, so a group of boards draws its
//! inner edges (between two of its own boards) and outer edges differently.

use std::collections::{HashMap, HashSet};

/// The three strings drawing a board's edges: index 0 is the bottom `___`,
/// 1 the lower-left `\`, 2 the upper-left `/`.
pub type EdgeStyle = [String; 3];

/// The plain edges: `___`, `\`, `/`.
pub fn default_board_edges() -> EdgeStyle {
    ["___".to_owned(), "\\".to_owned(), "/".to_owned()]
}

/// Edges each painted by `paint` (for example in a colour).
pub fn painted_edges(paint: impl Fn(&str) -> String) -> EdgeStyle {
    default_board_edges().map(|edge| paint(&edge))
}

/// A set of boards drawn alike: later groups draw over earlier ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardGroup {
    /// Logical board coordinates `[x, y, z]`.
    pub boards: Vec<[u32; 3]>,
    /// What is written inside each hexagon; three visible characters.
    pub label: String,
    /// Edges between two boards of this group.
    pub inner_edges: EdgeStyle,
    /// Edges between a board of this group and anything else.
    pub outer_edges: EdgeStyle,
}

/// Per link (east, north-east, north, west, south-west, south): the offset
/// of the neighbouring board on the Cartesian grid.
const LINK_TO_NEIGHBOUR: [(i64, i64); 6] = [(1, -1), (1, 1), (0, 2), (-1, 1), (-1, -1), (0, -2)];

/// Per link: the grid cell holding the edge drawn for it, and which edge.
const LINK_TO_EDGE: [(i64, i64, usize); 6] = [
    (1, -1, 2),
    (1, 0, 1),
    (0, 1, 0),
    (0, 0, 2),
    (0, -1, 1),
    (0, -1, 0),
];

fn board_to_cartesian([x, y, z]: [u32; 3]) -> (i64, i64) {
    let (x, y, z) = (i64::from(x), i64::from(y), i64::from(z));
    (2 * x - y + i64::from(z == 1), 3 * y + z)
}

fn edge_slot(board: (i64, i64), link: usize) -> (i64, i64, usize) {
    let (ex, ey, edge) = LINK_TO_EDGE[link];
    (board.0 + ex, board.1 + ey, edge)
}

/// Draws the groups, then the dead links `[x, y, z, link]` as `XXX`/`X`.
pub fn render_boards(groups: &[BoardGroup], dead_links: &[[u32; 4]]) -> String {
    let dead_edge = ["XXX".to_owned(), "X".to_owned(), "X".to_owned()];
    render_boards_with_dead_edge(groups, dead_links, &dead_edge)
}

/// Draws the groups, then the dead links `[x, y, z, link]` in `dead_edge`.
pub fn render_boards_with_dead_edge(
    groups: &[BoardGroup],
    dead_links: &[[u32; 4]],
    dead_edge: &EdgeStyle,
) -> String {
    const BLANK_LABEL: &str = "   ";
    const BLANK_EDGE: [&str; 3] = ["   ", " ", " "];

    let mut labels: HashMap<(i64, i64), &str> = HashMap::new();
    let mut edges: HashMap<(i64, i64, usize), &str> = HashMap::new();
    for group in groups {
        let positions: HashSet<(i64, i64)> = group
            .boards
            .iter()
            .copied()
            .map(board_to_cartesian)
            .collect();
        for &(x, y) in &positions {
            labels.insert((x, y), &group.label);
            for (link, (dx, dy)) in LINK_TO_NEIGHBOUR.iter().enumerate() {
                let slot = edge_slot((x, y), link);
                let style = if positions.contains(&(x + dx, y + dy)) {
                    &group.inner_edges
                } else {
                    &group.outer_edges
                };
                edges.insert(slot, &style[slot.2]);
            }
        }
    }
    for &[x, y, z, link] in dead_links {
        let Some(link) = usize::try_from(link).ok().filter(|link| *link < 6) else {
            continue;
        };
        let slot = edge_slot(board_to_cartesian([x, y, z]), link);
        edges.insert(slot, &dead_edge[slot.2]);
    }

    let points = labels
        .keys()
        .copied()
        .chain(edges.keys().map(|&(x, y, _)| (x, y)));
    let bounds: Option<(i64, i64, i64, i64)> = points.fold(None, |bounds, (x, y)| {
        Some(match bounds {
            None => (x, x, y, y),
            Some((x0, x1, y0, y1)) => (x0.min(x), x1.max(x), y0.min(y), y1.max(y)),
        })
    });
    let Some((x_min, x_max, y_min, y_max)) = bounds else {
        return String::new();
    };

    let edge = |x: i64, y: i64, e: usize| edges.get(&(x, y, e)).copied().unwrap_or(BLANK_EDGE[e]);
    let mut rows = Vec::new();
    for y in (y_min..=y_max).rev() {
        let mut row = String::new();
        for x in x_min..=x_max {
            if (y.rem_euclid(2) == 0) == (x.rem_euclid(2) == 0) {
                row.push_str(edge(x, y, 2));
                row.push_str(labels.get(&(x, y)).copied().unwrap_or(BLANK_LABEL));
            } else {
                row.push_str(edge(x, y, 1));
                row.push_str(edge(x, y, 0));
            }
        }
        let row = row.trim_end();
        if !row.is_empty() {
            rows.push(row.to_owned());
        }
    }
    rows.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner() -> EdgeStyle {
        ["===".to_owned(), "`".to_owned(), ",".to_owned()]
    }

    fn group(boards: &[[u32; 3]], label: &str) -> BoardGroup {
        BoardGroup {
            boards: boards.to_vec(),
            label: label.to_owned(),
            inner_edges: inner(),
            outer_edges: default_board_edges(),
        }
    }

    #[test]
    fn single_board() {
        assert_eq!(
            render_boards(&[group(&[[0, 0, 0]], "ABC")], &[]),
            " ___\n/ABC\\\n\\___/"
        );
    }

    #[test]
    fn one_triad() {
        let triad = group(&[[0, 0, 0], [0, 0, 1], [0, 0, 2]], "ABC");
        assert_eq!(
            render_boards(&[triad], &[]),
            " ___\n/ABC\\___\n\\===,ABC\\\n/ABC`___/\n\\___/"
        );
    }

    #[test]
    fn nothing_to_draw() {
        assert_eq!(render_boards(&[], &[]), "");
    }

    #[test]
    fn dead_links_are_drawn_last() {
        let board = group(&[[0, 0, 0]], "ABC");
        // North (link 2) is the bottom edge of the cell above; west (link 3) the upper-left.
        assert_eq!(
            render_boards(&[board], &[[0, 0, 0, 2], [0, 0, 0, 3]]),
            " XXX\nXABC\\\n\\___/"
        );
    }

    #[test]
    fn later_groups_overwrite_earlier_ones() {
        let all = group(&[[0, 0, 0], [0, 0, 1], [0, 0, 2]], " . ");
        let mut job = group(&[[0, 0, 1]], " J ");
        job.outer_edges = ["---".to_owned(), "(".to_owned(), ")".to_owned()];
        assert_eq!(
            render_boards(&[all, job], &[]),
            " ___\n/ . \\---\n\\===) J (\n/ . (---)\n\\___/"
        );
    }
}
