//! A fake SpiNNaker BMP for tests: a UDP responder on a 127.x loopback
//! address that records every packet it receives and answers SCP the way a
//! BMP would (CMD_VER with a `BC&MP/Fake` version block, CMD_LINK_READ with
//! the FPGA ID the server expects, RC_OK to everything else), unless told
//! to answer with an error code, answer late, stay silent, or report a
//! wrong FPGA ID.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const CMD_VER: u16 = 0;
pub const CMD_LINK_READ: u16 = 17;
pub const CMD_LINK_WRITE: u16 = 18;
pub const CMD_BMP_POWER: u16 = 57;

/// How to treat a command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Answer normally.
    Answer,
    /// Answer with this result code and no payload.
    Error(u16),
    /// Never answer.
    Silent,
    /// Answer normally after this long (other packets wait meanwhile).
    Late(Duration),
}

/// One datagram received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub bytes: Vec<u8>,
    pub cmd: u16,
    pub seq: u16,
    pub board: u32,
    pub args: [u32; 3],
    pub data: Vec<u8>,
}

impl Received {
    /// The command as the reference kit's fake BMP logs it, without time,
    /// address or sequence number.
    pub fn line(&self) -> String {
        let name = match self.cmd {
            CMD_VER => "CMD_VER".to_owned(),
            CMD_LINK_READ => "CMD_LINK_READ".to_owned(),
            CMD_LINK_WRITE => "CMD_LINK_WRITE".to_owned(),
            CMD_BMP_POWER => "CMD_BMP_POWER".to_owned(),
            other => other.to_string(),
        };
        let data: String = self.data.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{name} board={} args=[{:#x}, {:#x}, {:#x}] data={data}",
            self.board, self.args[0], self.args[1], self.args[2]
        )
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    version: String,
    always: HashMap<u16, Action>,
    next: HashMap<u16, Vec<Action>>,
    wrong_fpga: HashMap<(u32, u32), usize>,
}

/// A running fake BMP; stops when dropped.
pub struct FakeBmp {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeBmp {
    /// Binds `ip` (which must be 127.x.x.x) on a free port and starts answering.
    pub fn start(ip: &str) -> FakeBmp {
        assert!(ip.starts_with("127."), "loopback addresses only");
        let socket = UdpSocket::bind((ip, 0)).expect("bind fake BMP");
        socket
            .set_read_timeout(Some(Duration::from_millis(10)))
            .expect("timeout");
        let address = socket.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State {
            version: "2.0.0".into(),
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || serve(socket, state, stop))
        };
        FakeBmp {
            address,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn ip(&self) -> String {
        self.address.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The software version reported by CMD_VER (`"1.0.0"` makes servers
    /// skip FPGA checks and link writes).
    pub fn set_version(&self, version: &str) {
        self.lock().version = version.to_owned();
    }

    /// Treat every `cmd` this way from now on.
    pub fn always(&self, cmd: u16, action: Action) {
        self.lock().always.insert(cmd, action);
    }

    /// Treat the next `n` `cmd`s this way (before the `always` rule).
    pub fn next(&self, cmd: u16, n: usize, action: Action) {
        self.lock()
            .next
            .entry(cmd)
            .or_default()
            .extend(std::iter::repeat(action).take(n));
    }

    /// The next `times` reads of FPGA `fpga`'s ID on `board` report a wrong
    /// ID (`usize::MAX`: always).
    pub fn wrong_fpga_id(&self, board: u32, fpga: u32, times: usize) {
        self.lock().wrong_fpga.insert((board, fpga), times);
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Every command received, as [`Received::line`]s.
    pub fn lines(&self) -> Vec<String> {
        self.received().iter().map(Received::line).collect()
    }

    pub fn clear(&self) {
        self.lock().received.clear();
    }

    /// Waits until `n` packets have been received (fails after 5 s).
    pub fn wait_for_packets(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "fake BMP got only {} packets: {:#?}",
                received.len(),
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for FakeBmp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(socket: UdpSocket, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let mut buffer = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let data = &buffer[..n];
        if n < 14 {
            continue;
        }
        let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
        let u32_at =
            |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let args = if n >= 26 {
            [u32_at(14), u32_at(18), u32_at(22)]
        } else {
            [0; 3]
        };
        let received = Received {
            at: Instant::now(),
            bytes: data.to_vec(),
            cmd: u16_at(10),
            seq: u16_at(12),
            board: u32::from(data[4] & 0x1f),
            args,
            data: data.get(26..).unwrap_or_default().to_vec(),
        };
        let (action, rc, payload) = {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            let queued = s.next.get_mut(&received.cmd).and_then(|q| {
                if q.is_empty() {
                    None
                } else {
                    Some(q.remove(0))
                }
            });
            let action = queued
                .or_else(|| s.always.get(&received.cmd).copied())
                .unwrap_or(Action::Answer);
            let (rc, payload) = match (action, received.cmd) {
                (Action::Error(rc), _) => (rc, Vec::new()),
                (_, CMD_VER) => {
                    let mut p = vec![received.board as u8, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
                    p.extend_from_slice(b"BC&MP/Fake\0");
                    p.extend_from_slice(s.version.as_bytes());
                    p.push(0);
                    (0x80, p)
                }
                (_, CMD_LINK_READ) => {
                    let fpga = args[2];
                    let mut id = fpga;
                    if let Some(left) = s.wrong_fpga.get_mut(&(received.board, fpga)) {
                        if *left > 0 {
                            *left = left.saturating_sub(1);
                            id = (fpga + 1) % 3;
                        }
                    }
                    (0x80, id.to_le_bytes().to_vec())
                }
                _ => (0x80, Vec::new()),
            };
            s.received.push(received.clone());
            (action, rc, payload)
        };
        match action {
            Action::Silent => continue,
            Action::Late(delay) => std::thread::sleep(delay),
            Action::Answer | Action::Error(_) => {}
        }
        let mut reply = vec![
            0, 0, 0x07, 0xff, data[5], data[4], data[8], data[9], data[6], data[7],
        ];
        reply.extend_from_slice(&rc.to_le_bytes());
        reply.extend_from_slice(&received.seq.to_le_bytes());
        reply.extend_from_slice(&payload);
        let _ = socket.send_to(&reply, peer);
    }
}
