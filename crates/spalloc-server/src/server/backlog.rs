//! How far behind one client is: the messages queued for it and not yet
//! written to its socket, shared by its [`Outbox`](super::outbox::Outbox)
//! (which adds) and its connection task (which subtracts what it writes,
//! and waits while the level is high).
//!
//! Two levels matter. Below [`REPLY_LEVEL`] (counting the replies still
//! waiting for the state file's commit, which are queued after it) the
//! connection takes new requests;
//! above it the connection stops reading the socket until the client has
//! read enough of its replies, so a client that pipelines requests faster
//! than it reads the replies is slowed down to its own pace (TCP flow
//! control does the rest) instead of being cut off. The hard caps ([`CLIENT_QUEUE_LIMIT`] messages,
//! [`CLIENT_QUEUE_BYTES`] bytes) are twice as high and are reached only by
//! messages the client did not ask for (notifications) piling up unread:
//! that client is disconnected.
//!
//! [`CLIENT_QUEUE_LIMIT`]: super::shared::CLIENT_QUEUE_LIMIT
//! [`CLIENT_QUEUE_BYTES`]: super::shared::CLIENT_QUEUE_BYTES

use super::shared::{CLIENT_QUEUE_BYTES, CLIENT_QUEUE_LIMIT};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The level (half of each hard cap) above which a client's requests wait
/// for its replies to drain: `(messages, bytes)`.
pub const REPLY_LEVEL: (usize, usize) = (CLIENT_QUEUE_LIMIT / 2, CLIENT_QUEUE_BYTES / 2);

/// Counters of one client's unsent messages.
#[derive(Debug, Default)]
pub struct Backlog {
    messages: AtomicUsize,
    bytes: AtomicUsize,
}

/// How many more replies (and bytes of them) a connection may produce before
/// it must wait for the client to read: what is left below [`REPLY_LEVEL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyBudget {
    messages: usize,
    bytes: usize,
}

impl ReplyBudget {
    /// Whether another request may be handled now. Its reply may overshoot
    /// the level by its own size; the hard caps leave room for that.
    pub fn has_room(&self) -> bool {
        self.messages > 0 && self.bytes > 0
    }

    /// Accounts for `n` replies produced but not yet queued (waiting for
    /// the state file's commit).
    pub fn hold_back(&mut self, n: usize) {
        self.messages = self.messages.saturating_sub(n);
    }

    /// Accounts for one reply of `len` bytes.
    pub fn spend(&mut self, len: usize) {
        self.messages = self.messages.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(len);
    }
}

impl Backlog {
    /// Counts a message being queued.
    pub fn add(&self, len: usize) {
        self.messages.fetch_add(1, Ordering::AcqRel);
        self.bytes.fetch_add(len, Ordering::AcqRel);
    }

    /// `bytes` bytes were written, finishing `messages` messages.
    pub fn written(&self, messages: usize, bytes: usize) {
        self.messages.fetch_sub(messages, Ordering::AcqRel);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes queued and not yet written.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Messages queued and not completely written.
    pub fn messages(&self) -> usize {
        self.messages.load(Ordering::Acquire)
    }

    /// What a connection may still produce before reaching [`REPLY_LEVEL`].
    pub fn reply_budget(&self) -> ReplyBudget {
        ReplyBudget {
            messages: REPLY_LEVEL.0.saturating_sub(self.messages()),
            bytes: REPLY_LEVEL.1.saturating_sub(self.bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_what_is_left_below_the_reply_level() {
        let backlog = Backlog::default();
        assert_eq!(
            backlog.reply_budget(),
            ReplyBudget {
                messages: REPLY_LEVEL.0,
                bytes: REPLY_LEVEL.1
            }
        );
        backlog.add(100);
        let mut budget = backlog.reply_budget();
        assert_eq!(budget.messages, REPLY_LEVEL.0 - 1);
        budget.spend(REPLY_LEVEL.1);
        assert!(!budget.has_room());
        backlog.written(1, 100);
        assert!(backlog.reply_budget().has_room());
        assert_eq!((backlog.messages(), backlog.bytes()), (0, 0));
    }
}
