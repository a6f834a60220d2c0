//! Just enough HTTP/1.1 for scrapers and probes: one GET per connection, a bounded
//! request head read within a deadline, then the answer and close.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Endpoint;

const MAX_HEAD: usize = 8 * 1024;
const READ_DEADLINE: Duration = Duration::from_secs(5);
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Reads up to the end of the request head; `None` if it is too long, too slow or cut.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 || head.len() + n > MAX_HEAD {
                return None;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(READ_DEADLINE, read).await.ok()??;
    Some(head)
}

/// Status, content type and body for a request line.
fn route(request_line: &str, endpoint: &Endpoint) -> (&'static str, &'static str, String) {
    let mut words = request_line.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" {
        return ("405 Method Not Allowed", TEXT, "only GET\n".into());
    }
    match path {
        "/metrics" => ("200 OK", OPENMETRICS, endpoint.encode()),
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
        "/readyz" => match endpoint.not_ready() {
            waiting if waiting.is_empty() => ("200 OK", TEXT, "ready\n".into()),
            waiting => (
                "503 Service Unavailable",
                TEXT,
                format!("not ready: {}\n", waiting.join(", ")),
            ),
        },
        _ => ("404 Not Found", TEXT, "try /metrics, /healthz or /readyz\n".into()),
    }
}

pub async fn answer(mut stream: TcpStream, endpoint: &Endpoint) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    let head = String::from_utf8_lossy(&head);
    let request_line = head.lines().next().unwrap_or("");
    let (status, content_type, body) = route(request_line, endpoint);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // A scraper that stops reading must not keep its slot: the answer goes out within a
    // deadline or the connection is dropped.
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(WRITE_DEADLINE, write).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    /// A scraper that asks and never reads holds its connection only until the write
    /// deadline: the answer (made large here, so it cannot sit in the socket buffers)
    /// is given up on, not waited on forever.
    #[tokio::test]
    async fn a_scraper_that_never_reads_is_let_go_at_the_write_deadline() {
        let metrics = Metrics::default();
        for partition in 0..40_000 {
            let labels = crate::mirror::metrics::PartitionLabels {
                flow: "big".into(),
                topic: "a-topic-with-a-long-name-to-fill-the-answer".into(),
                partition,
            };
            metrics.mirror.lag.get_or_create(&labels).set(1);
        }
        let endpoint = Endpoint::new(metrics, crate::metrics::Expected::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket.connect(listener.local_addr().unwrap()).await.unwrap();
        client.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let started = std::time::Instant::now();
        let answered = tokio::time::timeout(WRITE_DEADLINE * 3, answer(stream, &endpoint)).await;
        assert!(answered.is_ok(), "the answer waited on a scraper that never reads");
        assert!(
            started.elapsed() >= WRITE_DEADLINE,
            "the answer fit in the buffers: {:?}",
            started.elapsed()
        );
        drop(client);
    }

    #[test]
    fn routes_probes_and_refuses_the_rest() {
        let metrics = Metrics::default();
        let expected = crate::metrics::Expected {
            flows: vec!["f".into()],
            proxies: vec![],
        };
        let endpoint = Endpoint::new(metrics.clone(), expected);
        assert_eq!(route("GET /healthz HTTP/1.1", &endpoint).0, "200 OK");
        let (status, _, body) = route("GET /readyz HTTP/1.1", &endpoint);
        assert_eq!(
            (status, body.as_str()),
            ("503 Service Unavailable", "not ready: flow f\n")
        );
        let flow = crate::mirror::metrics::FlowLabels { flow: "f".into() };
        metrics.mirror.up.get_or_create(&flow).set(1);
        assert_eq!(route("GET /readyz HTTP/1.1", &endpoint).0, "200 OK");
        let (status, content_type, body) = route("GET /metrics?x=1 HTTP/1.1", &endpoint);
        assert_eq!((status, content_type), ("200 OK", OPENMETRICS));
        assert!(body.contains("strait_mirror_up{flow=\"f\"} 1"), "{body}");
        assert_eq!(route("POST /metrics HTTP/1.1", &endpoint).0, "405 Method Not Allowed");
        assert_eq!(route("GET /nope HTTP/1.1", &endpoint).0, "404 Not Found");
        assert_eq!(route("", &endpoint).0, "405 Method Not Allowed");
    }
}
