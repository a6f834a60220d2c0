//! A broker listener whose port is taken when the proxy starts: retried until it binds,
//! its address not advertised meanwhile, and `/readyz` naming it.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::metrics::{get, scrape_until, sum};
use crate::proxy::proxy;

/// The brokers `kcat -L` lists at `bootstrap`: (node id, "host:port").
fn listed_brokers(bootstrap: &str) -> Vec<(i32, String)> {
    let out = Command::new("kcat")
        .args(["-b", bootstrap, "-L", "-m", "5"])
        .output()
        .expect("kcat is installed by scripts/setup.sh");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("broker ")?;
            let (id, rest) = rest.split_once(" at ")?;
            Some((id.parse().ok()?, rest.split_whitespace().next()?.to_owned()))
        })
        .collect()
}

#[test]
fn a_broker_listener_whose_port_is_taken_is_retried_and_not_advertised_until_bound() {
    let mock = MockCluster::start(3);
    let base = free_port_base(4);
    let taken_port = base + 2;
    let squatter = TcpListener::bind(("127.0.0.1", taken_port)).expect("the port for broker 2 is free to take");
    let metrics = format!("127.0.0.1:{}", free_port());
    let base_arg = base.to_string();
    let (strait, listen) = proxy(
        &mock.bootstrap,
        &["--name", "edge", "--metrics", &metrics, "--port-base", &base_arg],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = get(&metrics, "/readyz");
        if status == 503 && body.contains("broker 2") {
            break body;
        }
        assert!(Instant::now() < deadline, "/readyz: {status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.contains(&format!("127.0.0.1:{taken_port}")), "{body}");
    let text = scrape_until(&metrics, "the listener gauge", |t| {
        sum(t, "strait_proxy_broker_listener_up", &["node=\"1\""]) == 1.0
    });
    assert_eq!(
        sum(&text, "strait_proxy_broker_listener_up", &["node=\"2\""]),
        0.0,
        "{text}"
    );
    let brokers = listed_brokers(&listen);
    assert_eq!(brokers.len(), 3, "{brokers:?}");
    for (node, addr) in &brokers {
        assert!(
            !addr.ends_with(&format!(":{taken_port}")),
            "broker {node} at {addr}: the taken port is advertised"
        );
        if *node != 2 {
            assert_eq!(addr, &format!("127.0.0.1:{}", base + *node as u16));
        }
    }
    assert!(
        strait.log_shows("cannot open the broker listener; retrying"),
        "{}",
        strait.log_text()
    );

    drop(squatter);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(&metrics, "/readyz");
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready once the port was free: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let brokers = listed_brokers(&listen);
    assert!(
        brokers.contains(&(2, format!("127.0.0.1:{taken_port}"))),
        "broker 2 advertised once bound: {brokers:?}"
    );
    produce_records(&listen, "after-bind", 0, 30, "none", "confluent");
    assert_eq!(consume(&listen, &["after-bind"], 30, "read_committed").len(), 30);
    assert!(strait.stop().success());
}
