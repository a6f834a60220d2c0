//! Requests that begin and never end: a client that states a large frame and then
//! trickles (or sends nothing more) loses its connection by a deadline, and such
//! connections do not hold the proxy up when it is told to stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::metrics::{scrape_until, sum};
use crate::proxy::{api_versions_request, proxy, raw_round_trip};
use crate::proxy_faults::large_produce;

/// The first bytes of a request that never ends: half a megabyte stated (below what
/// the mock cluster accepts) and, for `body`, a
/// whole Produce header (the proxy passes such a request on as it arrives), otherwise
/// only three bytes of its header.
fn partial_request(body: bool, correlation: i32) -> Vec<u8> {
    if body {
        large_produce(correlation, 1, 500_000)[..5000].to_vec()
    } else {
        let mut start = 500_100i32.to_be_bytes().to_vec();
        start.extend_from_slice(&[0, 0, 0]);
        start
    }
}

/// Opens a connection and sends the start of a request that never ends.
fn begin(listen: &str, body: bool, correlation: i32) -> TcpStream {
    let mut s = TcpStream::connect(listen).unwrap();
    s.write_all(&partial_request(body, correlation)).unwrap();
    s
}

/// Whether the proxy closed `s` within `within` (it never answers these).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    match s.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

#[test]
fn requests_that_trickle_are_closed_by_their_deadline() {
    let mock = MockCluster::start(1);
    let (strait, listen) = proxy(&mock.bootstrap, &["--idle-timeout-secs", "5"]);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut trickling = Vec::new();
    for (i, body) in [false, true, false, true].into_iter().enumerate() {
        let s = begin(&listen, body, i as i32);
        let mut writer = s.try_clone().unwrap();
        let stop = stop.clone();
        let trickler = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) && writer.write_all(&[7]).is_ok() {
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        trickling.push((s, trickler));
    }
    // 5 s of patience and half a megabyte at 256 KiB/s: closed within 7 s of the start.
    for (s, _) in &mut trickling {
        assert!(
            closed_within(s, Duration::from_secs(20)),
            "a trickling request still held its connection after {:?}: {}",
            started.elapsed(),
            strait.log_text()
        );
    }
    let waited = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    trickling.into_iter().for_each(|(_, t)| t.join().unwrap());
    assert!(waited < Duration::from_secs(15), "closed after {waited:?}");
    assert!(
        strait.log_shows("was not whole by its deadline"),
        "{}",
        strait.log_text()
    );
    let mut good = TcpStream::connect(&listen).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(raw_round_trip(&mut good, &api_versions_request(0, 1)).is_some());
    assert!(strait.stop().success());
}

#[test]
fn connections_with_partial_requests_do_not_hold_shutdown() {
    let mock = MockCluster::start(1);
    let metrics = format!("127.0.0.1:{}", free_port());
    let (mut strait, listen) = proxy(&mock.bootstrap, &["--name", "edge", "--metrics", &metrics]);
    let mut waiting: Vec<TcpStream> = (0..200).map(|i| begin(&listen, i % 2 == 1, i)).collect();
    scrape_until(&metrics, "200 connections open", |t| {
        sum(t, "strait_proxy_connections", &["proxy=\"edge\""]) >= 200.0
    });
    // Give the proxy a moment to read what each of them sent.
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    strait.terminate();
    let status = loop {
        if let Some(status) = strait.exited() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(25),
            "partial requests held the proxy up: {}",
            strait.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = asked.elapsed();
    assert!(status.success(), "{}", strait.log_text());
    assert!(
        took < Duration::from_secs(5),
        "the proxy took {took:?} to stop (grace: 30 s)"
    );
    let log = strait.log_text();
    assert!(
        log.contains("proxy stopping: accepting no more connections and letting in-flight requests finish")
            && log.contains("no progress to commit")
            && log.contains("waiting_for="),
        "{log}"
    );
    // Those that had sent only a header's first bytes may be gone before the count.
    let waited_for: usize = log
        .split("waiting_for=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .expect("a count");
    assert!(waited_for <= 200, "{log}");
    for s in &mut waiting {
        assert!(closed_within(s, Duration::from_secs(5)), "a connection was left open");
    }
}
