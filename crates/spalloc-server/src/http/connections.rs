//! What the HTTP listener does with each accepted TCP connection before
//! hyper sees it: turn off Nagle's algorithm and count it as open until it
//! closes.
//!
//! Why `TCP_NODELAY`: hyper (and rustls below it) writes a response in
//! more than one piece; with Nagle's algorithm on, the second piece waits
//! for the client's delayed ACK, which cost a tool over HTTPS about 40 ms
//! per request (`bench/v2_tools.sh`). Why the count: `/metrics` reports
//! open connections for both protocols, and axum-server does not keep one.

use axum_server::accept::Accept;
use std::future::{ready, Ready};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How many HTTP connections are open now (shared by the listener and the
/// metrics endpoint).
#[derive(Clone, Debug, Default)]
pub struct OpenConnections(Arc<AtomicI64>);

impl OpenConnections {
    /// The number open at this moment.
    pub fn count(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// The acceptor that counts into this counter.
    pub fn acceptor(&self) -> CountingAcceptor {
        CountingAcceptor { open: self.clone() }
    }
}

/// Sets `TCP_NODELAY` on each accepted stream and counts it open until
/// the stream is dropped (which hyper does when the connection ends).
#[derive(Clone, Debug)]
pub struct CountingAcceptor {
    open: OpenConnections,
}

impl<S> Accept<TcpStream, S> for CountingAcceptor {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        // A socket that refuses the option still works, only slower: keep it.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on an HTTP connection");
        }
        self.open.0.fetch_add(1, Ordering::Relaxed);
        ready(Ok((
            Counted {
                inner: stream,
                open: self.open.clone(),
            },
            service,
        )))
    }
}

/// A stream counted in [`OpenConnections`] for as long as it lives.
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    open: OpenConnections,
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.open.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_counts_while_open_and_has_nagle_turned_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let client = tokio::spawn(async move { TcpStream::connect(address).await });
        let (stream, _) = listener.accept().await.expect("accept");
        let _client = client.await.expect("join").expect("connect");

        let open = OpenConnections::default();
        let (counted, ()) = open.acceptor().accept(stream, ()).await.expect("accepted");
        assert_eq!(open.count(), 1);
        assert!(counted.inner.nodelay().expect("nodelay"));
        drop(counted);
        assert_eq!(open.count(), 0);
    }
}
