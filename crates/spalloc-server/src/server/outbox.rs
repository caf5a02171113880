//! A client's outgoing messages on their way from whoever produces them to
//! its socket.
//!
//! Messages are produced under the server lock by any task or thread: the
//! client's own connection task (its replies), other clients' tasks and BMP
//! workers (notifications), the state file's writer (replies and
//! notifications released by a commit). They go into the client's
//! [`Outbox`], which only queues them; the client's connection task empties
//! it through its [`Inbox`] and writes to the socket itself. A message
//! produced by the connection task itself is therefore written without
//! waking any other task; only a message from elsewhere wakes the
//! connection task, and only while it is waiting ([`Inbox::listen`]).
//!
//! Everything queued and not yet written, in the outbox or in the inbox's
//! unwritten tail, counts in the client's [`Backlog`], whose hard caps
//! ([`CLIENT_QUEUE_LIMIT`] messages, [`CLIENT_QUEUE_BYTES`] bytes) make
//! [`Outbox::try_send`] refuse.
//!
//! Dropping the outbox (removing the client from
//! [`State::clients`](super::shared::State::clients)) hangs up: the
//! connection task is woken and closes at once, even while its socket does
//! not take what it has to write.

use super::backlog::Backlog;
use super::shared::{CLIENT_QUEUE_BYTES, CLIENT_QUEUE_LIMIT};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::tcp::WriteHalf;
use tokio::sync::Notify;

/// The most messages handed to one vectored write.
const WRITE_SLICES: usize = 64;

/// Queues of more entries than this are not kept once empty, so that one
/// burst does not cost its connection memory for the rest of its life.
const KEEP_CAPACITY: usize = 256;

/// What both halves share.
#[derive(Debug, Default)]
struct Mailbox {
    /// Messages queued and not yet taken by the connection task.
    queue: Mutex<VecDeque<Vec<u8>>>,
    /// Everything queued and not yet written.
    backlog: Backlog,
    /// The connection task is waiting: a message must wake it.
    listening: AtomicBool,
    /// The outbox was dropped.
    hung_up: AtomicBool,
    /// Wakes the connection task.
    wake: Notify,
}

impl Mailbox {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
        // Nothing panics while holding it; a poisoned queue is still whole.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The producers' side of a client's outgoing queue.
#[derive(Debug)]
pub struct Outbox(Arc<Mailbox>);

/// Why [`Outbox::try_send`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// A new outgoing queue: the outbox for [`State::clients`](super::shared::State::clients)
/// and the inbox for the connection task.
pub fn channel() -> (Outbox, Inbox) {
    let mailbox = Arc::new(Mailbox::default());
    (
        Outbox(Arc::clone(&mailbox)),
        Inbox {
            mailbox,
            unsent: VecDeque::new(),
            offset: 0,
        },
    )
}

impl Outbox {
    /// Queues a line without waiting; refuses it if the client already has
    /// [`CLIENT_QUEUE_LIMIT`] messages or [`CLIENT_QUEUE_BYTES`] bytes
    /// unwritten. Below those, a line of any size is taken.
    pub fn try_send(&self, line: Vec<u8>) -> Result<(), QueueFull> {
        if line.is_empty() {
            return Ok(()); // nothing to write (and a zero-length write means a closed socket)
        }
        let backlog = &self.0.backlog;
        // Producers hold the server lock, so the levels only fall between
        // this check and the addition below.
        if backlog.messages() >= CLIENT_QUEUE_LIMIT || backlog.bytes() >= CLIENT_QUEUE_BYTES {
            return Err(QueueFull);
        }
        backlog.add(line.len());
        self.0.queue().push_back(line);
        // After the push: a task that starts listening after this load
        // finds the line when it checks its queue (see `Inbox::listen`).
        if self.0.listening.swap(false, Ordering::SeqCst) {
            self.0.wake.notify_one();
        }
        Ok(())
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.0.hung_up.store(true, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}

/// The connection task's side: takes what was queued and writes it,
/// keeping what the socket did not take yet.
#[derive(Debug)]
pub struct Inbox {
    mailbox: Arc<Mailbox>,
    /// Taken from the queue and not completely written, in order.
    unsent: VecDeque<Vec<u8>>,
    /// How much of the first of `unsent` is written.
    offset: usize,
}

impl Inbox {
    /// The client's backlog.
    pub fn backlog(&self) -> &Backlog {
        &self.mailbox.backlog
    }

    /// Whether the outbox was dropped (the client was disconnected by the
    /// server, or removed by its own connection task).
    pub fn is_hung_up(&self) -> bool {
        self.mailbox.hung_up.load(Ordering::SeqCst)
    }

    /// Whether something taken is not completely written yet.
    pub fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Takes everything queued so far, behind what is still unsent.
    pub fn collect(&mut self) {
        let mut queue = self.mailbox.queue();
        if queue.is_empty() {
            return;
        }
        if self.unsent.is_empty() {
            std::mem::swap(&mut self.unsent, &mut queue);
        } else {
            self.unsent.append(&mut queue);
        }
        if queue.capacity() > KEEP_CAPACITY {
            *queue = VecDeque::new();
        }
    }

    /// Writes what the socket takes without waiting. Returns whether
    /// anything was written; an error means the socket is unusable.
    pub fn write(&mut self, socket: &WriteHalf<'_>) -> io::Result<bool> {
        let mut progress = false;
        while let Some(first) = self.unsent.front() {
            let written = if self.unsent.len() == 1 {
                socket.try_write(&first[self.offset..])
            } else {
                let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
                let mut used = 0;
                for (slot, line) in slices.iter_mut().zip(&self.unsent) {
                    *slot = IoSlice::new(line);
                    used += 1;
                }
                slices[0] = IoSlice::new(&first[self.offset..]);
                socket.try_write_vectored(&slices[..used])
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    progress = true;
                    self.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }

    /// Accounts for `n` bytes written from the front of `unsent`.
    fn consume(&mut self, mut n: usize) {
        let bytes = n;
        let mut messages = 0;
        while let Some(first) = self.unsent.front() {
            let left = first.len() - self.offset;
            if n < left {
                self.offset += n;
                break;
            }
            n -= left;
            self.offset = 0;
            self.unsent.pop_front();
            messages += 1;
        }
        if self.unsent.is_empty() && self.unsent.capacity() > KEEP_CAPACITY {
            self.unsent = VecDeque::new();
        }
        self.mailbox.backlog.written(messages, bytes);
    }

    /// Starts listening for messages from elsewhere (and hang-ups), before
    /// the task waits. Returns `false`, not listening, if there is
    /// something to take or the outbox is gone already: do not wait then.
    pub fn listen(&self) -> bool {
        self.mailbox.listening.store(true, Ordering::SeqCst);
        // After the store: a message pushed before it is seen here, one
        // pushed after it sees the flag (see `Outbox::try_send`).
        if self.is_hung_up() || !self.mailbox.queue().is_empty() {
            self.stop_listening();
            return false;
        }
        true
    }

    /// Stops listening once the task is awake: messages it produces itself
    /// from now on wake nobody.
    pub fn stop_listening(&self) {
        self.mailbox.listening.store(false, Ordering::SeqCst);
    }

    /// Completes when a message arrives or the outbox is dropped while
    /// [listening](Self::listen) (or did since the last call: the wake-up is
    /// kept until then).
    pub async fn woken(&self) {
        self.mailbox.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_queue_is_bounded_in_bytes_as_well_as_messages() {
        let (outbox, mut inbox) = channel();
        let big = vec![b'x'; 1 << 20];
        let mut accepted = 0;
        while outbox.try_send(big.clone()).is_ok() {
            accepted += 1;
            assert!(accepted <= 64, "the byte limit is not enforced");
        }
        assert_eq!(accepted, CLIENT_QUEUE_BYTES >> 20);
        assert_eq!(inbox.backlog().bytes(), CLIENT_QUEUE_BYTES);
        // Small messages still fit only once some has been written.
        assert_eq!(outbox.try_send(vec![b'y'; 10]), Err(QueueFull));
        inbox.collect();
        inbox.consume(100);
        assert!(outbox.try_send(vec![b'y'; 10]).is_ok());
        // Below the cap, one message of any size is taken: a listing bigger
        // than what is left of the cap is still delivered.
        let huge = vec![b'z'; 2 << 20];
        assert!(outbox.try_send(huge).is_ok());
        assert!(inbox.backlog().bytes() > CLIENT_QUEUE_BYTES);
    }

    #[test]
    fn a_client_queue_is_bounded_in_messages() {
        let (outbox, mut inbox) = channel();
        for _ in 0..CLIENT_QUEUE_LIMIT {
            assert!(outbox.try_send(b"{}\n".to_vec()).is_ok());
        }
        assert_eq!(outbox.try_send(b"{}\n".to_vec()), Err(QueueFull));
        inbox.collect();
        // A message counts until it is completely written.
        inbox.consume(2);
        assert_eq!(outbox.try_send(b"{}\n".to_vec()), Err(QueueFull));
        inbox.consume(1);
        assert_eq!(inbox.backlog().messages(), CLIENT_QUEUE_LIMIT - 1);
        assert!(outbox.try_send(b"{}\n".to_vec()).is_ok());
    }

    #[test]
    fn messages_are_written_whole_and_in_order_across_partial_writes() {
        let (outbox, mut inbox) = channel();
        for line in ["one\n", "two\n", "three\n"] {
            outbox.try_send(line.as_bytes().to_vec()).unwrap();
        }
        inbox.collect();
        outbox.try_send(b"four\n".to_vec()).unwrap();
        inbox.consume(6);
        inbox.collect();
        assert_eq!(inbox.offset, 2);
        let rest: Vec<u8> = inbox.unsent.iter().flatten().copied().collect();
        assert_eq!(&rest[inbox.offset..], b"o\nthree\nfour\n");
        assert_eq!(inbox.backlog().messages(), 3);
        inbox.consume(rest.len() - inbox.offset);
        assert_eq!(
            (inbox.backlog().messages(), inbox.backlog().bytes()),
            (0, 0)
        );
        assert!(!inbox.has_unsent());
    }

    #[test]
    fn only_a_listening_inbox_is_woken_and_a_hang_up_always_is() {
        let (outbox, mut inbox) = channel();
        // Not listening: the message waits without a wake-up.
        outbox.try_send(b"a\n".to_vec()).unwrap();
        assert!(!inbox.mailbox.listening.load(Ordering::SeqCst));
        // Something is queued: no waiting.
        assert!(!inbox.listen());
        inbox.collect();
        assert!(inbox.listen());
        outbox.try_send(b"b\n".to_vec()).unwrap();
        // The wake-up is kept for the next wait.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), inbox.woken())
                .await
                .expect("woken by the message");
        });
        drop(outbox);
        assert!(inbox.is_hung_up());
        assert!(!inbox.listen());
        runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), inbox.woken())
                .await
                .expect("woken by the hang-up");
        });
    }
}
