//! The one way strait reaches a broker, for the client and the proxy alike: TCP, then
//! TLS if asked, all within one deadline. A broker that accepts TCP and then says
//! nothing costs a caller the deadline, never more.

use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use super::connection::Io;
use super::tls::TlsSettings;
use super::NetError;

/// Socket buffer sizes asked of the kernel; `None` leaves a size to its tuning, which is
/// what suits most paths. A long, fast path may need larger ones than the kernel grows
/// to by itself (its limits: net.core.rmem_max, wmem_max).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketBuffers {
    pub send: Option<u32>,
    pub receive: Option<u32>,
}

/// A dialled broker: plain TCP (whose bytes the proxy can splice) or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<dyn Io>),
}

impl Stream {
    pub fn boxed(self) -> Box<dyn Io> {
        match self {
            Stream::Plain(tcp) => Box::new(tcp),
            Stream::Tls(io) => io,
        }
    }
}

/// The error for a dial that ran out of time, saying which steps the deadline covers.
pub fn timed_out(addr: &str, within: Duration, steps: &str) -> NetError {
    NetError::Connect {
        broker: addr.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{steps} did not finish within {within:?} (connect_timeout_ms)"),
        ),
    }
}

/// TCP and, with `tls`, the TLS handshake to `addr` ("host:port"), within `within`.
pub async fn dial(
    addr: &str,
    tls: Option<&TlsSettings>,
    buffers: SocketBuffers,
    within: Duration,
) -> Result<Stream, NetError> {
    let steps = if tls.is_some() {
        "TCP connect and TLS handshake"
    } else {
        "TCP connect"
    };
    tokio::time::timeout(within, open(addr, tls, buffers))
        .await
        .map_err(|_| timed_out(addr, within, steps))?
}

/// The same steps with no deadline of their own, for callers whose deadline covers more.
pub async fn open(addr: &str, tls: Option<&TlsSettings>, buffers: SocketBuffers) -> Result<Stream, NetError> {
    let connect_error = |source| NetError::Connect {
        broker: addr.to_owned(),
        source,
    };
    let tcp = connect(addr, buffers).await.map_err(connect_error)?;
    tcp.set_nodelay(true).map_err(connect_error)?;
    Ok(match tls {
        Some(tls) => Stream::Tls(Box::new(tls.connect(addr, tcp).await?)),
        None => Stream::Plain(tcp),
    })
}

/// TCP to the first of `addr`'s addresses that answers, with the buffer sizes set
/// before connecting, when the window scale is agreed.
async fn connect(addr: &str, buffers: SocketBuffers) -> std::io::Result<TcpStream> {
    let mut last = None;
    for ip in tokio::net::lookup_host(addr).await? {
        // A family this host lacks, or a size refused, fails this address only.
        match connect_one(ip, buffers).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")))
}

async fn connect_one(ip: std::net::SocketAddr, buffers: SocketBuffers) -> std::io::Result<TcpStream> {
    let socket = if ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(size) = buffers.send {
        socket.set_send_buffer_size(size)?;
    }
    if let Some(size) = buffers.receive {
        socket.set_recv_buffer_size(size)?;
    }
    socket.connect(ip).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that accepts and never speaks: TLS toward it must end at the deadline.
    #[tokio::test]
    async fn a_tls_handshake_with_a_silent_peer_ends_at_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let silent = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        let tls = TlsSettings::from_files(&super::super::tls::TlsFiles::default()).unwrap();
        let started = std::time::Instant::now();
        let result = dial(&addr, Some(&tls), SocketBuffers::default(), Duration::from_millis(300)).await;
        let err = result.err().expect("a silent peer cannot complete a handshake");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(err.to_string().contains("TLS handshake did not finish"), "{err}");
        silent.abort();
    }

    #[tokio::test]
    async fn socket_buffers_are_asked_of_the_kernel() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let asked = SocketBuffers {
            send: Some(64 * 1024),
            receive: Some(96 * 1024),
        };
        let Stream::Plain(tcp) = dial(&addr, None, asked, Duration::from_secs(5)).await.unwrap() else {
            panic!("no TLS was asked");
        };
        let socket = socket2::SockRef::from(&tcp);
        // Linux doubles what it is asked, for its bookkeeping.
        assert!(socket.send_buffer_size().unwrap() >= 64 * 1024);
        assert!(socket.recv_buffer_size().unwrap() >= 96 * 1024);
        let plain = connect(&addr, SocketBuffers::default()).await.unwrap();
        let default_send = socket2::SockRef::from(&plain).send_buffer_size().unwrap();
        assert_ne!(
            default_send,
            socket.send_buffer_size().unwrap(),
            "the asked size took effect"
        );
    }
}
