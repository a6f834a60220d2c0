//! The Grafana dashboard, `deploy/grafana/strait.json`, asks only for what strait
//! exports: every `strait_*` name in it is read back as a sample from the `/metrics` of
//! a running `strait mirror` and `strait proxy` while real clients use them.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::metrics::get;
use crate::mirror::mirror_args;
use crate::proxy::raw_round_trip;

fn dashboard() -> (String, Value) {
    let text = String::from_utf8(read(repo().join("deploy/grafana/strait.json"))).unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("strait.json: {e}"));
    (text, json)
}

/// The panels, those inside collapsed rows included.
fn panels(dash: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for p in dash["panels"].as_array().expect("a panels list") {
        all.push(p);
        all.extend(p["panels"].as_array().into_iter().flatten());
    }
    all
}

/// A histogram's series by the name of its family.
fn family(name: &str) -> &str {
    ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The metric names a dashboard's text uses, by family.
fn used(text: &str) -> BTreeSet<String> {
    regex::Regex::new(r"strait_[a-z_]+")
        .unwrap()
        .find_iter(text)
        .map(|m| family(m.as_str()).to_owned())
        .collect()
}

/// The names a scrape has samples of (not just HELP or TYPE lines), by family.
fn sampled(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| family(n).to_owned())
        .collect()
}

/// Scrapes `addr` until it has samples of every name in `want`; the names it never had.
fn missing_after_waiting(addr: &str, want: &BTreeSet<String>) -> (Vec<String>, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, text) = get(addr, "/metrics");
        assert_eq!(status, 200, "{text}");
        let have = sampled(&text);
        let missing: Vec<String> = want.difference(&have).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            return (missing, text);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Metadata v1 for every topic, the way an old client asks.
fn metadata_request(correlation: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&3i16.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&correlation.to_be_bytes());
    b.extend_from_slice(&9i16.to_be_bytes());
    b.extend_from_slice(b"dashboard");
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_with_its_variables_and_units() {
    let (_, dash) = dashboard();
    assert!(dash["schemaVersion"].as_u64().unwrap_or(0) >= 36, "schemaVersion");
    let vars = dash["templating"]["list"].as_array().expect("template variables");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for name in ["flow", "topic", "proxy"] {
        let v = var(name);
        assert_eq!(v["type"], "query", "${name}");
        let query = v["definition"].as_str().unwrap_or_default();
        assert!(
            query.starts_with("label_values(") && query.contains(&format!(", {name})")),
            "${name} comes from label_values: {query}"
        );
    }

    let shown: Vec<&Value> = panels(&dash).into_iter().filter(|p| p["type"] != "row").collect();
    assert!(shown.len() >= 15, "{} panels", shown.len());
    for p in &shown {
        let title = p["title"].as_str().expect("a title");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or_default();
        assert!(!unit.is_empty(), "{title} has no unit");
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        for t in targets.unwrap_or_else(|| panic!("{title} has no query")) {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(expr.contains("strait_"), "{title}: {expr}");
            if expr.contains("rate(") {
                assert!(expr.contains("[$__rate_interval]"), "{title}: {expr}");
            }
            if expr.starts_with("histogram_quantile(") {
                assert_eq!(unit, "s", "{title}: a latency quantile");
            } else if expr.contains("rate(") {
                assert!(
                    unit.ends_with("ps") || unit == "ops" || unit == "short",
                    "{title}: a rate in {unit}"
                );
            }
        }
    }
    let staleness = shown
        .iter()
        .find(|p| {
            p["targets"][0]["expr"]
                .as_str()
                .unwrap_or_default()
                .starts_with("time() - ")
        })
        .expect("a heartbeat staleness panel");
    let steps = staleness["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap();
    assert!(steps.len() >= 2, "staleness has thresholds");
    assert_eq!(staleness["fieldConfig"]["defaults"]["unit"], "s");
}

#[test]
fn every_metric_the_dashboard_uses_is_one_strait_exports() {
    let (text, _) = dashboard();
    let names = used(&text);
    // The dashboard covers the mirror and the proxy; nothing below checks an empty set.
    assert!(names.len() >= 15, "{names:?}");
    let (mirror_names, proxy_names): (BTreeSet<String>, BTreeSet<String>) =
        names.iter().cloned().partition(|n| n.starts_with("strait_mirror_"));
    assert!(
        proxy_names.iter().all(|n| n.starts_with("strait_proxy_")),
        "{proxy_names:?}"
    );

    // A mirror with data through it: records, lag, latency, heartbeats.
    let source = MockCluster::start(3);
    let target = MockCluster::start(3);
    produce_records(&source.bootstrap, "board.events", 0, 300, "none", "confluent");
    let mirror_metrics = format!("127.0.0.1:{}", free_port());
    let mirror = Strait::start(
        &[
            mirror_args(&source.bootstrap, &target.bootstrap, "board\\..*", "board"),
            vec!["--heartbeat-interval-ms", "200", "--metrics", &mirror_metrics],
        ]
        .concat(),
    );
    wait_for_port(&mirror_metrics, Duration::from_secs(10));
    assert_eq!(
        consume(&target.bootstrap, &["board.events"], 300, "read_committed").len(),
        300
    );
    let (missing, scrape) = missing_after_waiting(&mirror_metrics, &mirror_names);
    assert!(
        missing.is_empty(),
        "the dashboard uses {missing:?}, which strait mirror does not export:\n{scrape}"
    );
    assert!(mirror.stop().success());

    // A proxy with a client through it, and one more client than it allows.
    let cluster = MockCluster::start(1);
    let proxy_metrics = format!("127.0.0.1:{}", free_port());
    let extra = ["--name", "board", "--max-connections", "1", "--metrics", &proxy_metrics];
    let (proxy, listen) = crate::proxy::proxy(&cluster.bootstrap, &extra);
    // The port probe may hold the one slot for a moment.
    let mut served = None;
    for _ in 0..50 {
        let mut s = TcpStream::connect(&listen).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if let Some(answer) = raw_round_trip(&mut s, &metadata_request(7)) {
            assert_eq!(&answer[..4], &7i32.to_be_bytes(), "the answer to the Metadata request");
            served = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let served = served.expect("one connection is served");
    let _refused = TcpStream::connect(&listen).unwrap();
    let (missing, scrape) = missing_after_waiting(&proxy_metrics, &proxy_names);
    assert!(
        missing.is_empty(),
        "the dashboard uses {missing:?}, which strait proxy does not export:\n{scrape}"
    );
    drop(served);
    assert!(proxy.stop().success());
}

#[test]
fn names_are_read_as_families_and_only_samples_count() {
    let scrape = "# TYPE strait_x_seconds histogram\n\
                  strait_x_seconds_bucket{le=\"1\"} 1\n\
                  # TYPE strait_only_declared counter\n\
                  strait_y_total{a=\"b\"} 2\n";
    let have = sampled(scrape);
    assert!(
        have.contains("strait_x_seconds") && have.contains("strait_y_total"),
        "{have:?}"
    );
    assert!(!have.contains("strait_only_declared"), "a TYPE line is no sample");
    let names = used(r#"{"expr": "histogram_quantile(0.5, rate(strait_x_seconds_bucket[1m])) + strait_z"}"#);
    assert_eq!(
        names,
        BTreeSet::from(["strait_x_seconds".to_owned(), "strait_z".to_owned()])
    );
}
