//! `spalloc --avoid-board BOARD`: boards the job must never be given, for
//! users who know a board is bad before the operators do.
//!
//! A board is named as the server's `avoid-boards` list names one: `X,Y,Z`
//! (triad coordinates), `C:F:B` (cabinet, frame, board) or its IP address.
//! The legacy protocol's `avoid_boards` keyword takes `[x, y, z]` only, so
//! the other two forms need a v2 server; and only this project's server
//! knows avoid-lists at all: the reference server answers the keyword with
//! a Python `TypeError`, allocserv drops the v2 field. Both are turned into
//! a message saying so ([`UNSUPPORTED`]), never a job on an avoided board.

use spalloc::v2::BoardSelector;
use spalloc::BoardCoord;
use std::net::IpAddr;

/// What a value of `--avoid-board` may be, for its error message and help.
pub const FORMS: &str = "X,Y,Z (triad coordinates), C:F:B (cabinet, frame, board) or an IP address";

/// Why a create carrying an avoid-list failed on a server without them.
pub const UNSUPPORTED: &str = "this server does not support --avoid-board (only this project's spalloc-server keeps jobs off given boards): leave --avoid-board out, or ask the operators to take the board out of service";

/// Three numbers separated by `separator`, or `None`.
fn three_numbers(text: &str, separator: char) -> Option<[u32; 3]> {
    let parts: Vec<&str> = text.split(separator).map(str::trim).collect();
    match parts.as_slice() {
        [a, b, c] => Some([a.parse().ok()?, b.parse().ok()?, c.parse().ok()?]),
        _ => None,
    }
}

/// Parses one `--avoid-board` value (clap's value parser: the error is
/// shown after the option and value, and the tool exits 2).
pub fn parse_board(text: &str) -> Result<BoardSelector, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(BoardSelector::Address(address.to_string()));
    }
    if let Some([cabinet, frame, board]) = three_numbers(text, ':') {
        return Ok(BoardSelector::Physical {
            cabinet,
            frame,
            board,
        });
    }
    match three_numbers(text, ',') {
        Some([x, y, z]) if z < 3 => Ok(BoardSelector::Triad { x, y, z }),
        Some(_) => Err("the Z of X,Y,Z is 0, 1 or 2 (a triad has three boards)".to_owned()),
        None => Err(format!("expected {FORMS}")),
    }
}

/// The boards as the legacy `avoid_boards` keyword takes them; an error
/// (a usage message) names a board given in a form only v2 knows.
pub fn legacy_boards(boards: &[BoardSelector]) -> Result<Vec<BoardCoord>, String> {
    boards
        .iter()
        .map(|board| match board {
            BoardSelector::Triad { x, y, z } => Ok([*x, *y, *z]),
            BoardSelector::Physical {
                cabinet,
                frame,
                board,
            } => Err(format!(
                "--avoid-board {cabinet}:{frame}:{board}: the legacy protocol names boards to avoid by X,Y,Z only (`spalloc-where-is --physical MACHINE {cabinet} {frame} {board}` gives them), or give --url of a v2 server"
            )),
            BoardSelector::Address(address) => Err(format!(
                "--avoid-board {address}: the legacy protocol names boards to avoid by X,Y,Z only: give the board's X,Y,Z, or --url of a v2 server"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_are_read() {
        assert_eq!(
            parse_board("1,0,2"),
            Ok(BoardSelector::Triad { x: 1, y: 0, z: 2 })
        );
        assert_eq!(
            parse_board(" 3, 4 ,1 "),
            Ok(BoardSelector::Triad { x: 3, y: 4, z: 1 })
        );
        assert_eq!(
            parse_board("0:1:14"),
            Ok(BoardSelector::Physical {
                cabinet: 0,
                frame: 1,
                board: 14
            })
        );
        assert_eq!(
            parse_board("10.11.194.1"),
            Ok(BoardSelector::Address("10.11.194.1".into()))
        );
        assert_eq!(parse_board("::1"), Ok(BoardSelector::Address("::1".into())));
    }

    #[test]
    fn malformed_values_say_what_is_expected() {
        for bad in [
            "",
            "1,2",
            "1,2,3,4",
            "a,b,c",
            "-1,0,0",
            "1:2",
            "10.11.194",
            "1;2;3",
        ] {
            assert_eq!(parse_board(bad), Err(format!("expected {FORMS}")), "{bad}");
        }
        assert!(parse_board("0,0,3").is_err_and(|e| e.contains("0, 1 or 2")));
    }

    #[test]
    fn the_legacy_protocol_takes_triads_only_and_names_the_others() {
        let triads = [
            BoardSelector::Triad { x: 1, y: 0, z: 2 },
            BoardSelector::Triad { x: 0, y: 0, z: 0 },
        ];
        assert_eq!(legacy_boards(&triads), Ok(vec![[1, 0, 2], [0, 0, 0]]));
        let physical = [BoardSelector::Physical {
            cabinet: 0,
            frame: 0,
            board: 4,
        }];
        assert!(legacy_boards(&physical).is_err_and(|e| e.starts_with("--avoid-board 0:0:4:")));
        let address = [BoardSelector::Address("127.0.1.9".into())];
        assert!(legacy_boards(&address).is_err_and(|e| e.starts_with("--avoid-board 127.0.1.9:")));
    }
}
