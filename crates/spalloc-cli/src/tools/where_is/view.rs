//! The `spalloc-where-is` answer block.

use crate::python_text::tuple_text;
use crate::render::render_definitions;
use spalloc_protocol::WhereIsRecord;

/// The location of a board or chip; `show_board_chip` adds the chip's
/// coordinates within its board (for the chip queries).
pub fn render_location(record: &WhereIsRecord, show_board_chip: bool) -> String {
    let [cabinet, frame, board] = record.physical;
    let mut entries = vec![
        ("Machine", record.machine.clone()),
        (
            "Physical location",
            format!("Cabinet {cabinet}, Frame {frame}, Board {board}"),
        ),
        ("Board coordinate", tuple_text(&record.logical)),
        ("Machine chip coordinates", tuple_text(&record.chip)),
    ];
    if show_board_chip {
        entries.push(("Coordinates within board", tuple_text(&record.board_chip)));
    }
    entries.push((
        "Job using board",
        record
            .job_id
            .map_or_else(|| "None".to_owned(), |id| id.to_string()),
    ));
    if let (Some(job_id), Some(job_chip)) = (record.job_id, record.job_chip) {
        if job_id != 0 {
            entries.push(("Coordinates within job", tuple_text(&job_chip)));
        }
    }
    render_definitions(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> WhereIsRecord {
        WhereIsRecord {
            machine: "m1".to_owned(),
            logical: [0, 0, 1],
            physical: [0, 0, 3],
            chip: [8, 4],
            board_chip: [0, 0],
            job_id: Some(1),
            job_chip: Some([8, 4]),
        }
    }

    #[test]
    fn reference_job_chip_output() {
        assert_eq!(
            render_location(&record(), true),
            "                 Machine: m1
       Physical location: Cabinet 0, Frame 0, Board 3
        Board coordinate: (0, 0, 1)
Machine chip coordinates: (8, 4)
Coordinates within board: (0, 0)
         Job using board: 1
  Coordinates within job: (8, 4)"
        );
    }

    #[test]
    fn free_board_without_board_chip() {
        let mut free = record();
        free.job_id = None;
        free.job_chip = None;
        assert_eq!(
            render_location(&free, false),
            "                 Machine: m1
       Physical location: Cabinet 0, Frame 0, Board 3
        Board coordinate: (0, 0, 1)
Machine chip coordinates: (8, 4)
         Job using board: None"
        );
    }
}
