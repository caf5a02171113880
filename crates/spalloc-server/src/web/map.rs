//! A machine's boards as a hexagonal map in SVG.
//!
//! Boards sit where their Ethernet chips are on SpiNNaker's hexagonal chip
//! grid (board `(x, y, z)` starts at chip `(12x, 12y)`, `+ (8, 4)` for
//! `z = 1`, `+ (4, 8)` for `z = 2`), drawn with the grid's axes 60° apart,
//! so neighbouring boards touch as in the hardware. Each board is a
//! hexagon coloured by its job; dead boards are dark and crossed, dead
//! links are red strokes towards the neighbour; boards an operator took
//! out of service are amber (or, while a job still holds one, outlined
//! in amber); hovering shows a board's logical and physical coordinates,
//! IP address and job.

use crate::core::coordinates::Board;
use crate::core::machine::Machine;
use maud::{html, Markup};
use spalloc_protocol::Link;
use std::collections::{BTreeMap, BTreeSet};

/// One board's job, as the map shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardJob {
    /// The job's ID.
    pub id: u64,
    /// Its owner.
    pub owner: String,
}

/// Distance between the centres of neighbouring boards, in SVG units.
const PITCH: f64 = 40.0;

/// A board's centre on the plane, in units of [`PITCH`]-ish chips.
fn centre(b: &Board) -> (f64, f64) {
    let (dx, dy) = match b.z {
        1 => (8.0, 4.0),
        2 => (4.0, 8.0),
        _ => (0.0, 0.0),
    };
    let cx = 12.0 * f64::from(b.x) + dx + 3.5;
    let cy = 12.0 * f64::from(b.y) + dy + 3.5;
    let scale = PITCH / (48.0_f64).sqrt();
    ((cx - cy * 0.5) * scale, cy * (3.0_f64).sqrt() / 2.0 * scale)
}

/// A job's colour: hues spread by the golden angle, so consecutive jobs
/// differ.
pub fn job_colour(id: u64) -> String {
    let hue = (id.wrapping_mul(137_508) / 1000) % 360;
    format!("hsl({hue},65%,62%)")
}

fn link_angle(link: Link) -> f64 {
    let degrees: f64 = match link {
        Link::East => 0.0,
        Link::NorthEast => 60.0,
        Link::North => 120.0,
        Link::West => 180.0,
        Link::SouthWest => 240.0,
        Link::South => 300.0,
    };
    degrees.to_radians()
}

/// The colour of a board out of service.
const OUT_OF_SERVICE: &str = "#f0b040";

/// The SVG map of `machine`, boards coloured by `jobs`, boards
/// `out_of_service` marked; boards in `highlight` (a job's own) are
/// outlined.
pub fn render(
    machine: &Machine,
    jobs: &BTreeMap<Board, BoardJob>,
    out_of_service: &BTreeSet<Board>,
    highlight: Option<u64>,
) -> Markup {
    let boards: Vec<Board> =
        crate::core::machine::all_boards(machine.width, machine.height).collect();
    let points: Vec<(f64, f64)> = boards.iter().map(centre).collect();
    let radius = PITCH / (3.0_f64).sqrt();
    let min_x = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min) - radius;
    let max_x = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max) + radius;
    let max_y = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max) + radius;
    let min_y = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) - radius;
    let (width, height) = ((max_x - min_x).max(1.0), (max_y - min_y).max(1.0));
    let view = format!("0 0 {width:.1} {height:.1}");
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(view) width=(format!("{:.0}", (width * 2.0).min(1200.0)))
            role="img" aria-label=(format!("board map of {}", machine.name)) {
            @for (b, (px, py)) in boards.iter().zip(&points) {
                @let (x, y) = (px - min_x, max_y - py);
                @let hexagon = hexagon_points(x, y, radius * 0.97);
                @let dead = machine.dead_boards.contains(b);
                @let job = jobs.get(b);
                @let off = !dead && out_of_service.contains(b);
                @let fill = if dead { "#555".to_owned() } else { job.map_or_else(|| if off { OUT_OF_SERVICE.to_owned() } else { "#e4e4e4".to_owned() }, |j| job_colour(j.id)) };
                @let mine = job.is_some_and(|j| Some(j.id) == highlight);
                g class=(if off { "board out-of-service" } else { "board" }) data-board=(format!("{},{},{}", b.x, b.y, b.z))
                    data-job=(job.map(|j| j.id.to_string()).unwrap_or_default()) {
                    title { (describe(machine, b, job, dead, off)) }
                    polygon points=(hexagon) fill=(fill)
                        stroke=(if mine { "#000" } else if off { OUT_OF_SERVICE } else { "#fff" })
                        stroke-width=(if mine || off { "3" } else { "1.5" }) {}
                    @if dead {
                        line x1=(x - radius / 2.0) y1=(y - radius / 2.0) x2=(x + radius / 2.0) y2=(y + radius / 2.0) stroke="#e33" stroke-width="3" {}
                        line x1=(x - radius / 2.0) y1=(y + radius / 2.0) x2=(x + radius / 2.0) y2=(y - radius / 2.0) stroke="#e33" stroke-width="3" {}
                    } @else if let Some(j) = job {
                        text x=(format!("{x:.1}")) y=(format!("{:.1}", y + 4.0)) text-anchor="middle" font-size="11" { (j.id) }
                    }
                    @for (_, link) in machine.dead_links.iter().filter(|(d, _)| d == b) {
                        @let a = link_angle(*link);
                        line class="dead-link" x1=(format!("{:.1}", x + a.cos() * radius * 0.45)) y1=(format!("{:.1}", y - a.sin() * radius * 0.45))
                            x2=(format!("{:.1}", x + a.cos() * radius * 0.95)) y2=(format!("{:.1}", y - a.sin() * radius * 0.95))
                            stroke="#d00" stroke-width="4" {}
                    }
                }
            }
        }
    }
}

fn hexagon_points(x: f64, y: f64, r: f64) -> String {
    (0..6)
        .map(|i| {
            let a = (f64::from(i) * 60.0).to_radians();
            format!("{:.1},{:.1}", x + r * a.cos(), y + r * a.sin())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A board's hover text.
fn describe(
    machine: &Machine,
    b: &Board,
    job: Option<&BoardJob>,
    dead: bool,
    out_of_service: bool,
) -> String {
    let mut text = format!("board ({}, {}, {})", b.x, b.y, b.z);
    if let Some(p) = machine.board_locations.get(b) {
        text.push_str(&format!(
            "\ncabinet {}, frame {}, board {}",
            p.cabinet, p.frame, p.board
        ));
    }
    if let Some(ip) = machine.spinnaker_ips.get(b) {
        text.push_str(&format!("\nIP {ip}"));
    }
    if dead {
        text.push_str("\ndead");
    } else if let Some(j) = job {
        text.push_str(&format!("\njob {} ({})", j.id, j.owner));
    } else {
        text.push_str("\nfree");
    }
    if out_of_service {
        text.push_str("\nout of service");
    }
    for (_, link) in machine.dead_links.iter().filter(|(d, _)| d == b) {
        text.push_str(&format!("\ndead link {}", link.name()));
    }
    text
}
