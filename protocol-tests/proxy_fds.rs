//! The proxy under a low open-file limit: it serves only the connections the limit
//! holds, and flooded with more clients, it refuses the surplus at once (counted,
//! logged at a bounded rate), leaves none waiting, and keeps serving the clients it has.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::metrics::{scrape_until, sum};
use crate::proxy::{api_versions_request, raw_round_trip};

/// What became of a client that sent one request: answered, or refused (closed), or
/// left hanging.
#[derive(Debug, PartialEq)]
enum Fate {
    Answered,
    Refused,
    Hanging,
}

fn fate(mut s: &TcpStream) -> Fate {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request = api_versions_request(0, 9);
    let mut frame = (request.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    if s.write_all(&frame).is_err() {
        return Fate::Refused;
    }
    match s.read(&mut [0u8; 64]) {
        Ok(0) => Fate::Refused,
        Ok(_) => Fate::Answered,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Fate::Hanging,
        Err(_) => Fate::Refused,
    }
}

#[test]
fn under_a_low_open_file_limit_the_proxy_serves_what_fits_and_refuses_the_rest_at_once() {
    let mock = MockCluster::start(1);
    let listen = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let base = free_port_base(4).to_string();
    let args = [
        "proxy",
        "--upstream",
        &mock.bootstrap,
        "--listen",
        &listen,
        "--advertise",
        "127.0.0.1",
        "--port-base",
        &base,
        "--name",
        "edge",
        "--metrics",
        &metrics,
    ];
    let started = Instant::now();
    let strait = Strait::start_under(&["prlimit", "--nofile=128:128"], &args, &[]);
    wait_for_port(&listen, Duration::from_secs(10));
    assert!(
        strait.log_shows("the open-file limit cannot hold max_connections"),
        "{}",
        strait.log_text()
    );
    let mut existing = TcpStream::connect(&listen).unwrap();
    existing.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(raw_round_trip(&mut existing, &api_versions_request(0, 1)).is_some());

    let flood: Vec<TcpStream> = (0..400).filter_map(|_| TcpStream::connect(&listen).ok()).collect();
    let fates: Vec<Fate> = std::thread::scope(|scope| {
        let asked: Vec<_> = flood.iter().map(|s| scope.spawn(move || fate(s))).collect();
        asked.into_iter().map(|a| a.join().unwrap()).collect()
    });
    let count = |f: Fate| fates.iter().filter(|x| **x == f).count();
    let (answered, refused) = (count(Fate::Answered), count(Fate::Refused));
    eprintln!("of {} clients: {answered} answered, {refused} refused", flood.len());
    assert_eq!(
        count(Fate::Hanging),
        0,
        "clients left unanswered: {}",
        strait.log_text()
    );
    assert!(refused >= 200, "{refused} refused: {}", strait.log_text());
    // 128 descriptors hold 10 connections at 6 each after 64 kept for the rest; one
    // is the client that came before the flood.
    assert!(answered <= 9, "{answered} answered: {}", strait.log_text());
    assert!(
        raw_round_trip(&mut existing, &api_versions_request(0, 2)).is_some(),
        "a client the proxy had is still served"
    );
    drop(flood);

    let text = scrape_until(&metrics, "refused connections", |t| {
        sum(t, "strait_proxy_connections_refused_total", &["proxy=\"edge\""]) >= refused as f64
    });
    eprintln!(
        "refused: {}",
        sum(&text, "strait_proxy_connections_refused_total", &["proxy=\"edge\""])
    );
    produce_records(&listen, "after-flood", 0, 20, "none", "confluent");
    assert_eq!(consume(&listen, &["after-flood"], 20, "read_committed").len(), 20);

    let log = strait.log_text();
    let lines = log
        .lines()
        .filter(|l| l.contains("refusing (at most one such line"))
        .count();
    let allowed = started.elapsed().as_secs() as usize / 5 + 2;
    assert!(
        (1..=allowed).contains(&lines),
        "{lines} refusal lines in {:?}:\n{log}",
        started.elapsed()
    );
    assert!(strait.stop().success());
}
