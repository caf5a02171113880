//! What a v2 job asks for: every create form of allocserv's
//! `CreateJobRequest`, as explicit parameters (SpiNNMan hides them in
//! sPyNNaker's config file).
//!
//! ```
//! use spalloc::v2::{BoardSelector, CreateJob};
//! use std::time::Duration;
//!
//! let four = CreateJob::boards(4).machine("spin5");
//! let rectangle = CreateJob::dimensions(2, 1).tags(["default"]).max_dead_boards(1);
//! let one = CreateJob::board(BoardSelector::Physical { cabinet: 0, frame: 0, board: 3 });
//! let rooted = CreateJob::dimensions_at(2, 2, BoardSelector::Triad { x: 4, y: 0, z: 0 })
//!     .keepalive(Duration::from_secs(120));
//! assert_eq!(four.to_json()["num-boards"], 4);
//! ```

use serde_json::{json, Map, Value};
use std::time::Duration;

/// allocserv's smallest and largest keepalive intervals.
pub const KEEPALIVE_RANGE: (Duration, Duration) =
    (Duration::from_secs(30), Duration::from_secs(300));

/// The keepalive interval asked for when none is given (the legacy
/// client's default, 60 s).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);

/// One board, named in one of the three ways the API knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardSelector {
    /// By triad coordinates.
    Triad {
        /// x.
        x: u32,
        /// y.
        y: u32,
        /// z (0, 1 or 2).
        z: u32,
    },
    /// By physical location.
    Physical {
        /// Cabinet.
        cabinet: u32,
        /// Frame.
        frame: u32,
        /// Board.
        board: u32,
    },
    /// By its IP address.
    Address(String),
}

impl BoardSelector {
    /// The JSON the API takes (`board` in a create request).
    pub fn to_json(&self) -> Value {
        match self {
            BoardSelector::Triad { x, y, z } => json!({"x": x, "y": y, "z": z}),
            BoardSelector::Physical {
                cabinet,
                frame,
                board,
            } => json!({"cabinet": cabinet, "frame": frame, "board": board}),
            BoardSelector::Address(a) => json!({ "address": a }),
        }
    }
}

/// How big the job is, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// The server's default: one board.
    OneBoard,
    /// At least this many boards.
    Boards(u32),
    /// A rectangle of triads.
    Dimensions {
        /// Width in triads.
        width: u32,
        /// Height in triads.
        height: u32,
    },
    /// One given board.
    Board(BoardSelector),
    /// A rectangle of triads whose corner is the given board (z = 0).
    DimensionsAt {
        /// Width in triads.
        width: u32,
        /// Height in triads.
        height: u32,
        /// The root board.
        root: BoardSelector,
    },
}

/// Which machine the job may go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Any machine tagged `default`.
    DefaultTags,
    /// The named machine.
    Machine(String),
    /// Any machine with all these tags.
    Tags(Vec<String>),
}

/// A create request; build it with the constructors and chained setters.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateJob {
    /// Size and position.
    pub shape: Shape,
    /// Which machine.
    pub placement: Placement,
    /// How many dead boards the allocation may include (server default 0).
    pub max_dead_boards: Option<u32>,
    /// How often the job must be kept alive.
    pub keepalive: Duration,
    /// The group to charge (needed when the user is in several).
    pub group: Option<String>,
    /// Another owner (administrators only).
    pub owner: Option<String>,
    /// Boards the job must never be given (this project's server only:
    /// `avoid-boards`; allocserv ignores the field).
    pub avoid_boards: Vec<BoardSelector>,
}

impl Default for CreateJob {
    fn default() -> Self {
        CreateJob {
            shape: Shape::OneBoard,
            placement: Placement::DefaultTags,
            max_dead_boards: None,
            keepalive: DEFAULT_KEEPALIVE,
            group: None,
            owner: None,
            avoid_boards: Vec::new(),
        }
    }
}

impl CreateJob {
    /// One board, anywhere.
    pub fn one_board() -> CreateJob {
        CreateJob::default()
    }

    /// At least `n` boards.
    pub fn boards(n: u32) -> CreateJob {
        CreateJob::with_shape(Shape::Boards(n))
    }

    /// A `width` × `height` rectangle of triads.
    pub fn dimensions(width: u32, height: u32) -> CreateJob {
        CreateJob::with_shape(Shape::Dimensions { width, height })
    }

    /// One given board.
    pub fn board(board: BoardSelector) -> CreateJob {
        CreateJob::with_shape(Shape::Board(board))
    }

    /// A rectangle of triads rooted at a board.
    pub fn dimensions_at(width: u32, height: u32, root: BoardSelector) -> CreateJob {
        CreateJob::with_shape(Shape::DimensionsAt {
            width,
            height,
            root,
        })
    }

    /// Any shape.
    pub fn with_shape(shape: Shape) -> CreateJob {
        CreateJob {
            shape,
            ..CreateJob::default()
        }
    }

    /// On the named machine.
    pub fn machine(mut self, name: impl Into<String>) -> CreateJob {
        self.placement = Placement::Machine(name.into());
        self
    }

    /// On a machine with all these tags.
    pub fn tags<I, S>(mut self, tags: I) -> CreateJob
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.placement = Placement::Tags(tags.into_iter().map(Into::into).collect());
        self
    }

    /// At most `n` dead boards in the allocation.
    pub fn max_dead_boards(mut self, n: u32) -> CreateJob {
        self.max_dead_boards = Some(n);
        self
    }

    /// The keepalive interval (30 to 300 s on allocserv).
    pub fn keepalive(mut self, interval: Duration) -> CreateJob {
        self.keepalive = interval;
        self
    }

    /// The group to charge.
    pub fn group(mut self, group: impl Into<String>) -> CreateJob {
        self.group = Some(group.into());
        self
    }

    /// Another owner (administrators only).
    pub fn owner(mut self, owner: impl Into<String>) -> CreateJob {
        self.owner = Some(owner.into());
        self
    }

    /// Never on these boards (each named as [`CreateJob::board`] names
    /// one; a physical location or address names the board there on every
    /// machine the job may run on). Only this project's server knows the
    /// field: allocserv drops it, which the job's
    /// [`original_request`](crate::v2::JobStatus::original_request) shows.
    pub fn avoid_boards(mut self, boards: impl IntoIterator<Item = BoardSelector>) -> CreateJob {
        self.avoid_boards.extend(boards);
        self
    }

    /// The request body.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        if let Some(owner) = &self.owner {
            o.insert("owner".into(), json!(owner));
        }
        if let Some(group) = &self.group {
            o.insert("group".into(), json!(group));
        }
        o.insert(
            "keepalive-interval".into(),
            json!(iso_duration(self.keepalive)),
        );
        match &self.shape {
            Shape::OneBoard => {}
            Shape::Boards(n) => {
                o.insert("num-boards".into(), json!(n));
            }
            Shape::Dimensions { width, height } => {
                o.insert(
                    "dimensions".into(),
                    json!({"width": width, "height": height}),
                );
            }
            Shape::Board(b) => {
                o.insert("board".into(), b.to_json());
            }
            Shape::DimensionsAt {
                width,
                height,
                root,
            } => {
                o.insert(
                    "dimensions".into(),
                    json!({"width": width, "height": height}),
                );
                o.insert("board".into(), root.to_json());
            }
        }
        match &self.placement {
            Placement::DefaultTags => {
                o.insert("tags".into(), json!(["default"]));
            }
            Placement::Machine(m) => {
                o.insert("machine-name".into(), json!(m));
            }
            Placement::Tags(t) => {
                o.insert("tags".into(), json!(t));
            }
        }
        if let Some(n) = self.max_dead_boards {
            o.insert("max-dead-boards".into(), json!(n));
        }
        if !self.avoid_boards.is_empty() {
            let boards: Vec<Value> = self
                .avoid_boards
                .iter()
                .map(BoardSelector::to_json)
                .collect();
            o.insert("avoid-boards".into(), Value::Array(boards));
        }
        Value::Object(o)
    }
}

/// An ISO-8601 duration (`PT60S`, `PT0.5S`), as allocserv reads them.
pub fn iso_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("PT{}S", d.as_secs())
    } else {
        format!("PT{}.{:03}S", d.as_secs(), d.subsec_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_has_allocservs_field_names() {
        let r = CreateJob::dimensions_at(2, 1, BoardSelector::Address("10.0.0.1".into()))
            .machine("m")
            .max_dead_boards(1)
            .group("g")
            .keepalive(Duration::from_millis(90_500))
            .to_json();
        assert_eq!(
            r,
            json!({"group": "g", "keepalive-interval": "PT90.500S",
                   "dimensions": {"width": 2, "height": 1}, "board": {"address": "10.0.0.1"},
                   "machine-name": "m", "max-dead-boards": 1})
        );
        assert_eq!(
            CreateJob::one_board().to_json(),
            json!({"keepalive-interval": "PT60S", "tags": ["default"]})
        );
        assert_eq!(
            CreateJob::board(BoardSelector::Triad { x: 1, y: 0, z: 2 }).to_json()["board"],
            json!({"x": 1, "y": 0, "z": 2})
        );
    }

    #[test]
    fn boards_to_avoid_are_sent_only_when_there_are_some() {
        let r = CreateJob::boards(2)
            .avoid_boards([
                BoardSelector::Triad { x: 0, y: 0, z: 1 },
                BoardSelector::Physical {
                    cabinet: 0,
                    frame: 0,
                    board: 4,
                },
                BoardSelector::Address("127.0.1.9".into()),
            ])
            .to_json();
        assert_eq!(
            r["avoid-boards"],
            json!([{"x": 0, "y": 0, "z": 1}, {"cabinet": 0, "frame": 0, "board": 4},
                   {"address": "127.0.1.9"}])
        );
        assert!(CreateJob::boards(2).to_json().get("avoid-boards").is_none());
    }
}
