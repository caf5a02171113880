//! Which proxy channel carries which board's datagrams, with no I/O: the
//! forwarder opens one channel per board (correlation ID = the board's
//! index) and routes by it both ways.

use std::collections::HashMap;

/// The channels of one websocket connection.
#[derive(Debug, Default)]
pub struct Channels {
    by_channel: HashMap<u32, usize>,
    by_board: HashMap<usize, u32>,
}

impl Channels {
    /// Records that the OPEN call `corr` (a board index below `boards`)
    /// gave `channel`; false for a reply to no call of ours.
    pub fn opened(&mut self, corr: u32, channel: u32, boards: usize) -> bool {
        let Ok(board) = usize::try_from(corr) else {
            return false;
        };
        if board >= boards || channel == 0 || self.by_board.contains_key(&board) {
            return false;
        }
        self.by_channel.insert(channel, board);
        self.by_board.insert(board, channel);
        true
    }

    /// The board a datagram on `channel` comes from.
    pub fn board_of(&self, channel: u32) -> Option<usize> {
        self.by_channel.get(&channel).copied()
    }

    /// The channel to send board `board`'s datagrams on.
    pub fn channel_of(&self, board: usize) -> Option<u32> {
        self.by_board.get(&board).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_route_both_ways_between_a_board_and_its_channel() {
        let mut c = Channels::default();
        assert!(c.opened(1, 40, 2));
        assert!(c.opened(0, 41, 2));
        assert_eq!((c.board_of(40), c.channel_of(0)), (Some(1), Some(41)));
    }

    #[test]
    fn replies_to_calls_we_did_not_make_are_not_channels() {
        let mut c = Channels::default();
        assert!(!c.opened(2, 40, 2));
        assert!(!c.opened(0, 0, 2));
        assert!(c.opened(0, 7, 2));
        assert!(!c.opened(0, 8, 2));
        assert_eq!(c.board_of(8), None);
    }
}
