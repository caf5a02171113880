//! Pure text layouts shared by the tools, each golden-tested against the reference.

pub mod boards;
pub mod cells;
pub mod definitions;
pub mod table;
pub mod timestamp;

pub use boards::{render_boards, BoardGroup};
pub use cells::render_cells;
pub use definitions::render_definitions;
pub use table::{render_table, TableCell};
pub use timestamp::render_timestamp;
