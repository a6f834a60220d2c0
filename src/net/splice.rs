//! Moving the body of a large frame from one socket to another through a pipe, so the
//! bytes never enter this process (Linux `splice`). A proxy needs only the first bytes
//! of a produce request; copying the megabytes behind them in from one socket and out
//! to the other was about half of its CPU time (perf: `_copy_to_iter`,
//! `_copy_from_iter`), taken from the clients and brokers on the same host.

use std::io;

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A socket half whose bytes may be spliced: plain TCP, not TLS, where the bytes in
/// the socket are not the bytes of the frame.
pub trait Spliceable {
    fn tcp(&self) -> Option<&TcpStream>;
}

impl Spliceable for OwnedReadHalf {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl Spliceable for OwnedWriteHalf {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<T> Spliceable for tokio::io::ReadHalf<T> {
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
}

impl<T> Spliceable for tokio::io::WriteHalf<T> {
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
}

/// Which socket failed while bytes were carried.
#[derive(Debug)]
pub enum Broken {
    Reading(io::Error),
    Writing(io::Error),
}

/// A pipe between two sockets, kept for a connection's life. Its default size (64 KiB)
/// is kept: pipes of 256 KiB and 1 MiB moved produce traffic no faster, and large pipes
/// count against a per-user limit that shrinks every later pipe once reached.
pub struct Pipe {
    #[cfg(target_os = "linux")]
    ends: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
}

#[cfg(target_os = "linux")]
mod linux {
    use rustix::pipe::{pipe_with, splice, PipeFlags, SpliceFlags};
    use tokio::io::Interest;

    use super::*;

    const FLAGS: SpliceFlags = SpliceFlags::MOVE.union(SpliceFlags::NONBLOCK);

    impl Pipe {
        pub fn new() -> io::Result<Pipe> {
            let ends = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
            Ok(Pipe { ends })
        }

        /// Moves exactly `len` bytes from `from` to `to`. The pipe is empty before and
        /// after; after an error it may hold bytes, and the connection must close.
        pub async fn carry(&self, from: &TcpStream, to: &TcpStream, mut len: usize) -> Result<(), Broken> {
            let (out, into) = (&self.ends.0, &self.ends.1);
            let mut in_pipe = 0;
            while len > 0 || in_pipe > 0 {
                if in_pipe == 0 {
                    // An empty pipe cannot refuse bytes: a refusal here means the socket
                    // has none, and its readiness is rightly cleared.
                    from.readable().await.map_err(Broken::Reading)?;
                    let read = from.try_io(Interest::READABLE, || Ok(splice(from, None, into, None, len, FLAGS)?));
                    match read {
                        Ok(0) => return Err(Broken::Reading(io::ErrorKind::UnexpectedEof.into())),
                        Ok(n) => (len, in_pipe) = (len - n, n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Err(Broken::Reading(e)),
                    }
                } else if len > 0 {
                    // A refusal may mean a full pipe, not an empty socket: it must not
                    // clear the socket's readiness, so this tries without `try_io`.
                    match splice(from, None, into, None, len, FLAGS) {
                        Ok(0) => return Err(Broken::Reading(io::ErrorKind::UnexpectedEof.into())),
                        Ok(n) => (len, in_pipe) = (len - n, in_pipe + n),
                        Err(e) if e == rustix::io::Errno::AGAIN => {}
                        Err(e) => return Err(Broken::Reading(e.into())),
                    }
                }
                // A non-empty pipe always has bytes to give: a refusal is the socket's.
                to.writable().await.map_err(Broken::Writing)?;
                match to.try_io(Interest::WRITABLE, || Ok(splice(out, None, to, None, in_pipe, FLAGS)?)) {
                    Ok(n) => in_pipe -= n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(Broken::Writing(e)),
                }
            }
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl Pipe {
    /// Elsewhere bytes are copied as they are read.
    pub fn new() -> io::Result<Pipe> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub async fn carry(&self, _: &TcpStream, _: &TcpStream, _: usize) -> Result<(), Broken> {
        Err(Broken::Reading(io::ErrorKind::Unsupported.into()))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    async fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        (near, listener.accept().await.unwrap().0)
    }

    /// More than the sockets and the pipe hold at once, so both sides must wait for
    /// each other; the bytes after the frame stay in the source socket for the reader.
    #[tokio::test]
    async fn carries_exactly_the_bytes_asked_for_in_order() {
        let (mut sender, from) = connected().await;
        let (to, mut receiver) = connected().await;
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = body.clone();
        let sending = tokio::spawn(async move {
            sender.write_all(&sent).await.unwrap();
            sender.write_all(b"next").await.unwrap();
            sender
        });
        let receiving = tokio::spawn(async move {
            let mut got = Vec::new();
            receiver.read_to_end(&mut got).await.unwrap();
            got
        });
        Pipe::new().unwrap().carry(&from, &to, body.len()).await.unwrap();
        drop(to);
        assert!(
            receiving.await.unwrap() == body,
            "the receiver got the frame's bytes and no more"
        );
        let _sender = sending.await.unwrap();
        let mut next = [0u8; 4];
        let mut from = from;
        from.read_exact(&mut next).await.unwrap();
        assert_eq!(&next, b"next");
    }

    #[tokio::test]
    async fn a_sender_closing_before_the_end_is_a_reading_error() {
        let (mut sender, from) = connected().await;
        let (to, _receiver) = connected().await;
        sender.write_all(&[7; 1000]).await.unwrap();
        drop(sender);
        let carried = Pipe::new().unwrap().carry(&from, &to, 5000).await;
        assert!(
            matches!(&carried, Err(Broken::Reading(e)) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{carried:?}"
        );
    }
}
