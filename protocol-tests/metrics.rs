//! The Prometheus endpoint of a running strait: what the flows and proxies count, read
//! back over HTTP while real brokers and clients do the work.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::mirror::mirror_args;

/// One GET; the status code and the body.
pub(crate) fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("metrics endpoint {addr}: {e}"));
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// The sum of the samples of `name` whose labels contain every one of `labels`.
pub(crate) fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Scrapes until `done` holds for the text, or panics with the last scrape.
pub(crate) fn scrape_until(addr: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, text) = get(addr, "/metrics");
        assert_eq!(status, 200, "{text}");
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never showed:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn mirror_metrics_count_what_the_target_acknowledged() {
    let source = MockCluster::start(3);
    let target = MockCluster::start(3);
    produce_records(&source.bootstrap, "x.metered", 0, 1000, "lz4", "confluent");
    let addr = format!("127.0.0.1:{}", free_port());
    let strait = Strait::start(
        &[
            mirror_args(&source.bootstrap, &target.bootstrap, "x\\..*", "metered"),
            vec!["--metrics", &addr],
        ]
        .concat(),
    );
    wait_for_port(&addr, Duration::from_secs(10));
    assert_eq!(
        consume(&target.bootstrap, &["x.metered"], 1000, "read_committed").len(),
        1000
    );

    let flow = "flow=\"metered\"";
    let topic = "topic=\"x.metered\"";
    let text = scrape_until(&addr, "1000 records and no lag", |t| {
        sum(t, "strait_mirror_records_total", &[flow, topic]) == 1000.0
            && sum(t, "strait_mirror_lag_offsets", &[flow, topic]) == 0.0
    });
    let partition_2 = sum(&text, "strait_mirror_records_total", &[flow, topic, "partition=\"2\""]);
    assert_eq!(partition_2, 250.0, "records are counted per partition");
    let batches = sum(&text, "strait_mirror_batches_total", &[flow, topic]);
    assert!(batches >= 4.0, "{text}");
    let latencies = sum(&text, "strait_mirror_replication_latency_seconds_count", &[flow, topic]);
    assert_eq!(latencies, batches, "one latency sample per batch");
    assert!(
        sum(&text, "strait_mirror_bytes_total", &[flow, topic]) > 1000.0 * 10.0,
        "{text}"
    );
    // At most a heartbeat is under way now.
    assert!(sum(&text, "strait_mirror_in_flight_bytes", &[flow]) < 1000.0, "{text}");
    assert_eq!(sum(&text, "strait_mirror_up", &[flow]), 1.0);
    assert_eq!(get(&addr, "/readyz"), (200, "ready\n".into()));
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert_eq!(get(&addr, "/nothing").0, 404);
    assert!(strait.stop().success());
}

#[test]
fn a_flow_that_cannot_start_is_not_ready_but_alive_and_counts_nothing() {
    let target = MockCluster::start(1);
    let unreachable = format!("127.0.0.1:{}", free_port());
    let addr = format!("127.0.0.1:{}", free_port());
    let strait = Strait::start_with_env(
        &mirror_args(&unreachable, &target.bootstrap, "x\\..*", "stuck"),
        &[("STRAIT_METRICS", &addr)],
    );
    wait_for_port(&addr, Duration::from_secs(10));
    assert!(strait.log_shows("restarting"), "{}", strait.log_text());
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert_eq!(get(&addr, "/readyz"), (503, "not ready: flow stuck\n".into()));
    let (_, text) = get(&addr, "/metrics");
    assert_eq!(sum(&text, "strait_mirror_up", &["flow=\"stuck\""]), 0.0, "{text}");
    assert_eq!(sum(&text, "strait_mirror_records_total", &[]), 0.0, "{text}");
    assert!(strait.stop().success());
}

#[test]
fn proxy_metrics_count_connections_requests_bytes_and_rewrites() {
    let cluster = MockCluster::start(3);
    let addr = format!("127.0.0.1:{}", free_port());
    let (strait, listen) = crate::proxy::proxy(&cluster.bootstrap, &["--name", "edge", "--metrics", &addr]);
    produce_records(&listen, "x.proxied", 0, 200, "none", "confluent");
    assert_eq!(consume(&listen, &["x.proxied"], 200, "read_committed").len(), 200);

    let proxy = "proxy=\"edge\"";
    let text = scrape_until(&addr, "produce and fetch requests", |t| {
        sum(t, "strait_proxy_requests_total", &[proxy, "api=\"Produce\""]) > 0.0
            && sum(t, "strait_proxy_requests_total", &[proxy, "api=\"Fetch\""]) > 0.0
    });
    assert!(
        sum(&text, "strait_proxy_rewrites_total", &[proxy, "api=\"Metadata\""]) > 0.0,
        "{text}"
    );
    assert!(
        sum(&text, "strait_proxy_connections_accepted_total", &[proxy]) >= 2.0,
        "{text}"
    );
    // 200 records of a few dozen bytes each went up and came back down.
    assert!(sum(&text, "strait_proxy_bytes_total", &[proxy, "direction=\"to_broker\""]) > 200.0 * 20.0);
    assert!(sum(&text, "strait_proxy_bytes_total", &[proxy, "direction=\"to_client\""]) > 200.0 * 20.0);
    assert_eq!(get(&addr, "/readyz").0, 200);
    assert!(strait.stop().success());
}

/// Api keys a client makes up are counted under one label, so that no client can make
/// the proxy grow a series per number it sends.
#[test]
fn requests_with_api_keys_the_proxy_does_not_know_share_one_label() {
    let cluster = MockCluster::start(1);
    let addr = format!("127.0.0.1:{}", free_port());
    let (strait, listen) = crate::proxy::proxy(&cluster.bootstrap, &["--name", "edge", "--metrics", &addr]);
    for api in 9001..9006i16 {
        let mut s = TcpStream::connect(&listen).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut request = api.to_be_bytes().to_vec();
        request.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0xff, 0xff]);
        let mut frame = (request.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&request);
        s.write_all(&frame).unwrap();
        let _ = s.read(&mut [0u8; 16]);
    }
    let text = scrape_until(&addr, "the unknown label", |t| {
        sum(t, "strait_proxy_requests_total", &["api=\"unknown\""]) >= 5.0
    });
    assert!(!text.contains("api=\"900"), "{text}");
    assert!(strait.stop().success());
}

#[test]
fn a_bad_metrics_address_is_refused_before_anything_starts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .args([
            "mirror",
            "--source",
            "a:1",
            "--target",
            "b:1",
            "--topics",
            "x",
            "--metrics",
            "localhost",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("--metrics") && text.contains("\"localhost\"") && text.contains("0.0.0.0:9464"),
        "{text}"
    );
}

#[test]
fn heartbeats_cross_an_idle_flow_and_their_delay_is_reported() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    let addr = format!("127.0.0.1:{}", free_port());
    let strait = Strait::start(
        &[
            mirror_args(&source.bootstrap, &target.bootstrap, "nothing\\..*", "beating"),
            vec!["--heartbeat-interval-ms", "200", "--metrics", &addr],
        ]
        .concat(),
    );
    wait_for_port(&addr, Duration::from_secs(10));
    let beats = consume(&target.bootstrap, &["__strait_heartbeats.beating"], 3, "read_committed");
    assert!(beats.len() >= 3, "{beats:?}");
    // The consumer prints values in hex; a heartbeat's value is its flow's name.
    let hex: String = "beating".bytes().map(|b| format!("{b:02x}")).collect();
    assert!(beats.iter().all(|b| b.value.as_ref() == Some(&hex)), "{beats:?}");

    let flow = "flow=\"beating\"";
    let first = scrape_until(&addr, "a heartbeat", |t| {
        sum(t, "strait_mirror_heartbeat_timestamp_seconds", &[flow]) > 0.0
    });
    let delay = sum(&first, "strait_mirror_heartbeat_delay_seconds", &[flow]);
    assert!((0.0..10.0).contains(&delay), "{first}");
    let stamp = sum(&first, "strait_mirror_heartbeat_timestamp_seconds", &[flow]);
    // The flow's topics are idle, yet newer heartbeats keep arriving.
    scrape_until(&addr, "a newer heartbeat", |t| {
        sum(t, "strait_mirror_heartbeat_timestamp_seconds", &[flow]) > stamp
    });
    assert!(strait.stop().success());
}

#[test]
fn heartbeats_can_be_turned_off() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    produce_records(&source.bootstrap, "quiet.data", 0, 10, "none", "confluent");
    let strait = Strait::start(
        &[
            mirror_args(&source.bootstrap, &target.bootstrap, "quiet\\..*", "quiet"),
            vec!["--heartbeat-interval-ms", "0"],
        ]
        .concat(),
    );
    assert_eq!(
        consume(&target.bootstrap, &["quiet.data"], 10, "read_committed").len(),
        10
    );
    assert!(strait.stop().success());
    let names = topics(&source.bootstrap);
    assert!(!names.iter().any(|t| t.starts_with("__strait_heartbeats")), "{names:?}");
}

/// `strait status` reads a running strait's endpoint and prints each flow with its
/// partitions, lag and state, and each proxy.
#[test]
fn status_prints_a_running_instances_flows_and_proxies() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    produce_records(&source.bootstrap, "x.status", 0, 400, "lz4", "confluent");
    let addr = format!("127.0.0.1:{}", free_port());
    let strait = Strait::start(
        &[
            mirror_args(&source.bootstrap, &target.bootstrap, "x\\.status", "shown"),
            // No heartbeats: one arriving between the scrapes would show as lag.
            vec!["--metrics", &addr, "--heartbeat-interval-ms", "0"],
        ]
        .concat(),
    );
    wait_for_port(&addr, Duration::from_secs(10));
    assert_eq!(
        consume(&target.bootstrap, &["x.status"], 400, "read_committed").len(),
        400
    );
    scrape_until(&addr, "no lag", |t| {
        sum(t, "strait_mirror_records_total", &["flow=\"shown\""]) >= 400.0
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["status", "--metrics", &addr, "--interval-secs", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let row = text
        .lines()
        .find(|l| l.starts_with("shown "))
        .unwrap_or_else(|| panic!("{text}"));
    let columns: Vec<&str> = row.split_whitespace().collect();
    // FLOW RECORDS/S MB/S LAG PARTS P99 HEARTBEAT STATE: the 4 partitions of x.status,
    // no lag, no heartbeat, running.
    assert_eq!(columns[3], "0", "{text}");
    assert_eq!(columns[4], "4", "{text}");
    assert_eq!(columns[6], "-", "{text}");
    assert_eq!(*columns.last().unwrap(), "running", "{text}");
    assert!(text.contains("FLOW") && text.contains("HEARTBEAT"), "{text}");

    let nobody = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["status", "--metrics", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no strait metrics endpoint"));
    assert!(strait.stop().success());
}
