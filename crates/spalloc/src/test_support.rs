//! A scripted fake server for unit tests: a `TcpListener` on 127.0.0.1:0
//! whose connections are handed to a test-provided closure.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// One accepted connection, with line helpers.
pub struct FakeConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl FakeConn {
    /// The next line received, without its newline; `None` at EOF.
    pub fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_owned()),
        }
    }

    /// The next request, parsed.
    pub fn read_request(&mut self) -> Option<spalloc_protocol::Request> {
        self.read_line()
            .and_then(|l| spalloc_protocol::Request::parse(l.as_bytes()).ok())
    }

    /// Sends text followed by a newline.
    pub fn send(&mut self, text: &str) {
        let _ = self.writer.write_all(format!("{text}\n").as_bytes());
    }
}

/// A listening fake server; stops accepting when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    /// Serves every accepted connection (numbered from 0) with `handler`,
    /// each on its own thread.
    pub fn start<F>(handler: F) -> FakeServer
    where
        F: Fn(usize, FakeConn) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handler = Arc::new(handler);
        thread::spawn(move || {
            let mut n = 0;
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_nodelay(true);
                        let handler = handler.clone();
                        let index = n;
                        n += 1;
                        thread::spawn(move || {
                            let writer = stream.try_clone().expect("clone");
                            handler(
                                index,
                                FakeConn {
                                    reader: BufReader::new(stream),
                                    writer,
                                },
                            )
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeServer { addr, stop }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
