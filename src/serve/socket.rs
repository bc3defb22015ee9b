//! The TCP socket under a connection's WebSocket (and TLS, on `wss://`).
//!
//! It gathers everything written between two flushes into one `write` to
//! the kernel, so tungstenite can hand over each frame as it is fed (its own
//! write buffer, which never shrinks, then holds one frame at most), and it
//! frees that buffer once flushed: an idle connection holds no write buffer
//! at all. It also counts the bytes that reach the kernel, so that a slow
//! peer can be told from a stalled one.

use std::io::{self, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use smol::Async;
use smol::io::{AsyncRead, AsyncWrite};

/// Gathered bytes beyond this are written out before the flush, so that a
/// burst costs one `write` per this many bytes and no more memory. Most of
/// a delivery's cost is the kernel's work per `write`: in fan-out at 500,000
/// deliveries/s, batches of 2 KiB meant ~11 frames per call, 32 KiB (with
/// `--flush-interval 5ms`) ~58 and 40 % less system time. The buffer is
/// freed after each flush, so the size costs an idle connection nothing.
const GATHER_BYTES: usize = 32 * 1024;

/// The first allocation of a gathering: room for a few chat frames, so that
/// a typical batch needs no reallocation.
const FIRST_GATHER_BYTES: usize = 1024;

pub(crate) struct Socket<'a> {
    tcp: &'a Async<TcpStream>,
    written: &'a AtomicU64,
    read: &'a AtomicU64,
    /// Written since the last flush, not yet handed to the kernel.
    gathered: Vec<u8>,
}

impl<'a> Socket<'a> {
    /// A socket that counts the bytes it writes in `written` and those it
    /// reads in `read`.
    pub(crate) fn new(
        tcp: &'a Async<TcpStream>,
        written: &'a AtomicU64,
        read: &'a AtomicU64,
    ) -> Self {
        Socket {
            tcp,
            written,
            read,
            gathered: Vec::new(),
        }
    }

    /// Writes `buf` (or part of it) to the kernel.
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut tcp = self.tcp;
        let n = ready!(Pin::new(&mut tcp).poll_write(cx, buf))?;
        if n == 0 && !buf.is_empty() {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }

    /// Hands everything gathered to the kernel, then frees the buffer.
    fn poll_send_gathered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.gathered.is_empty() {
            let n = ready!(self.poll_send(cx, &self.gathered))?;
            self.gathered.drain(..n);
        }
        self.gathered = Vec::new();
        Poll::Ready(Ok(()))
    }
}

impl Drop for Socket<'_> {
    /// tungstenite answers a peer's Close and ends the connection without a
    /// flush: what is gathered goes to the kernel now, as far as it takes it
    /// without waiting, as if tungstenite had written it straight through.
    fn drop(&mut self) {
        let mut tcp = self.tcp.get_ref();
        while !self.gathered.is_empty() {
            match tcp.write(&self.gathered) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.written.fetch_add(n as u64, Ordering::Relaxed);
                    drop(self.gathered.drain(..n));
                }
            }
        }
    }
}

impl AsyncRead for Socket<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut tcp = self.tcp;
        let n = ready!(Pin::new(&mut tcp).poll_read(cx, buf))?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Socket<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.gathered.len() + buf.len() > GATHER_BYTES {
            ready!(this.poll_send_gathered(cx))?;
            if buf.len() >= GATHER_BYTES {
                return this.poll_send(cx, buf);
            }
        }
        if this.gathered.capacity() == 0 {
            this.gathered.reserve(buf.len().max(FIRST_GATHER_BYTES));
        }
        this.gathered.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_gathered(cx))?;
        let mut tcp = this.tcp;
        Pin::new(&mut tcp).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_gathered(cx))?;
        let mut tcp = this.tcp;
        Pin::new(&mut tcp).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::net::TcpListener;

    use smol::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn pair() -> (Async<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        (Async::new(server).unwrap(), client)
    }

    #[test]
    fn writes_are_gathered_until_the_flush_and_the_buffer_is_freed() {
        let (tcp, mut peer) = pair();
        let (written, read) = (AtomicU64::new(0), AtomicU64::new(0));
        let mut socket = Socket::new(&tcp, &written, &read);
        smol::block_on(async {
            socket.write_all(b"one ").await.unwrap();
            socket.write_all(b"two").await.unwrap();
            assert_eq!(
                written.load(Ordering::Relaxed),
                0,
                "nothing sent before the flush"
            );
            assert!(socket.gathered.capacity() >= FIRST_GATHER_BYTES);
            socket.flush().await.unwrap();
        });
        assert_eq!(written.load(Ordering::Relaxed), 7);
        assert_eq!(
            socket.gathered.capacity(),
            0,
            "an idle socket holds no buffer"
        );
        let mut got = [0; 7];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"one two");
        peer.write_all(b"three").unwrap();
        let mut three = [0; 5];
        smol::block_on(socket.read_exact(&mut three)).unwrap();
        assert_eq!(read.load(Ordering::Relaxed), 5, "what is read is counted");
    }

    #[test]
    fn what_is_gathered_is_sent_when_dropped_without_a_flush() {
        let (tcp, mut peer) = pair();
        let (written, read) = (AtomicU64::new(0), AtomicU64::new(0));
        let mut socket = Socket::new(&tcp, &written, &read);
        smol::block_on(socket.write_all(b"close frame")).unwrap();
        drop(socket);
        drop(tcp);
        assert_eq!(written.load(Ordering::Relaxed), 11, "counted when sent");
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"close frame");
    }

    #[test]
    fn a_burst_is_sent_in_order_without_gathering_more_than_the_bound() {
        let (tcp, mut peer) = pair();
        let (written, read) = (AtomicU64::new(0), AtomicU64::new(0));
        let mut socket = Socket::new(&tcp, &written, &read);
        let chunks: Vec<Vec<u8>> = (0..40u8)
            .map(|i| vec![i; 100 + 97 * usize::from(i)])
            .collect();
        let total: usize = chunks.iter().map(Vec::len).sum();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0; total];
            peer.read_exact(&mut got).unwrap();
            got
        });
        smol::block_on(async {
            for chunk in &chunks {
                socket.write_all(chunk).await.unwrap();
                assert!(socket.gathered.len() <= GATHER_BYTES);
            }
            socket.close().await.unwrap();
        });
        assert_eq!(reader.join().unwrap(), chunks.concat());
        assert_eq!(written.load(Ordering::Relaxed), total as u64);
    }
}
