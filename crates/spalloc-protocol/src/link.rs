//! The six links of a SpiNN-5 board, numbered anticlockwise from east.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// One of the six links leaving a board. The integer values are part of the
/// protocol (`dead_links` entries are `[x, y, z, link]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Link {
    /// Link 0.
    East = 0,
    /// Link 1.
    NorthEast = 1,
    /// Link 2.
    North = 2,
    /// Link 3.
    West = 3,
    /// Link 4.
    SouthWest = 4,
    /// Link 5.
    South = 5,
}

impl Link {
    /// All six links in numeric order.
    pub const ALL: [Link; 6] = [
        Link::East,
        Link::NorthEast,
        Link::North,
        Link::West,
        Link::SouthWest,
        Link::South,
    ];

    /// The link for a wire integer, if it is in `0..6`.
    pub fn from_wire(value: i64) -> Option<Link> {
        usize::try_from(value)
            .ok()
            .and_then(|i| Link::ALL.get(i).copied())
    }

    /// The wire integer.
    pub fn to_wire(self) -> i64 {
        self as i64
    }

    /// The link pointing the other way: `(l + 3) % 6`.
    pub fn opposite(self) -> Link {
        Link::ALL[(self as usize + 3) % 6]
    }

    /// The snake-case name used by the reference (`north_east`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Link::East => "east",
            Link::NorthEast => "north_east",
            Link::North => "north",
            Link::West => "west",
            Link::SouthWest => "south_west",
            Link::South => "south",
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a string that names no link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown link {0:?}: expected one of east, north_east, north, west, south_west, south")]
pub struct UnknownLink(pub String);

impl FromStr for Link {
    type Err = UnknownLink;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normal = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Link::ALL
            .into_iter()
            .find(|l| l.name() == normal || l.name().replace('_', "") == normal)
            .ok_or_else(|| UnknownLink(s.to_owned()))
    }
}

/// On the wire (and in saved state) a link is its integer.
impl Serialize for Link {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.to_wire())
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        Link::from_wire(value).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid link {value}: expected 0 to 5"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opposites_and_names() {
        assert_eq!(Link::East.opposite(), Link::West);
        assert_eq!(Link::NorthEast.opposite(), Link::SouthWest);
        assert_eq!(Link::South.opposite(), Link::North);
        assert_eq!("north_east".parse::<Link>().unwrap(), Link::NorthEast);
        assert_eq!("NorthEast".parse::<Link>().unwrap(), Link::NorthEast);
        assert!("up".parse::<Link>().is_err());
        assert_eq!(Link::from_wire(5), Some(Link::South));
        assert_eq!(Link::from_wire(6), None);
        assert_eq!(serde_json::to_string(&Link::North).unwrap(), "2");
        assert_eq!(serde_json::from_str::<Link>("4").unwrap(), Link::SouthWest);
        assert!(serde_json::from_str::<Link>("6").is_err());
    }
}
