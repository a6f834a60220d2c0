//! Span export: `strait mirror --otlp-endpoint` against a receiver that decodes OTLP/HTTP
//! with the OpenTelemetry project's own protobuf definitions, as Jaeger would.

use std::collections::HashSet;

use serde_json::Value;

use crate::harness::*;
use crate::mirror::mirror_args;

/// One span as the receiver decoded it.
struct Span(Value);

impl Span {
    fn name(&self) -> &str {
        self.0["name"].as_str().unwrap_or_default()
    }

    fn id(&self, which: &str) -> &str {
        self.0[which].as_str().unwrap_or_default()
    }

    fn text(&self, key: &str) -> &str {
        self.0["attributes"][key].as_str().unwrap_or_default()
    }

    fn number(&self, key: &str) -> i64 {
        self.0["attributes"][key].as_i64().unwrap_or(-1)
    }
}

fn received(path: &std::path::Path) -> Vec<Span> {
    String::from_utf8(read(path))
        .unwrap()
        .lines()
        .map(|l| Span(serde_json::from_str(l).unwrap_or_else(|e| panic!("receiver wrote {l}: {e}"))))
        .collect()
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name() == name).collect()
}

#[test]
fn mirror_exports_fetch_forward_produce_and_commit_spans_to_an_otlp_collector() {
    let source = MockCluster::start(3);
    let target = MockCluster::start(3);
    produce_records(&source.bootstrap, "o.traced", 0, 400, "lz4", "confluent");
    let out = temp_dir("otlp").join("spans.jsonl");
    let receiver = ReadyPeer::start("otlp_receiver.py", &[out.to_str().unwrap()]);
    let endpoint = format!("http://{}", receiver.addr);
    let strait = Strait::start(
        &[
            mirror_args(&source.bootstrap, &target.bootstrap, "o\\..*", "traced"),
            vec!["--otlp-endpoint", &endpoint],
        ]
        .concat(),
    );
    assert_eq!(
        consume(&target.bootstrap, &["o.traced"], 400, "read_committed").len(),
        400
    );
    let log = strait.log_text();
    assert!(strait.stop().success(), "{log}");

    // The exporter batches for seconds; these arrive only because shutdown flushed them.
    let spans = received(&out);
    assert!(spans.iter().all(|s| s.0["service"] == "strait"), "service.name");
    let flow_spans = |name| -> Vec<&Span> {
        let all = named(&spans, name);
        assert!(
            all.iter().all(|s| s.text("flow") == "traced"),
            "{name} spans name their flow"
        );
        all
    };

    let fetches = flow_spans("fetch");
    for fetch in &fetches {
        assert!(
            fetch.number("broker") >= 0 && fetch.number("partitions") > 0,
            "{}",
            fetch.0
        );
    }
    assert!(fetches.iter().any(|s| s.number("bytes") > 0), "some fetch brought data");

    let forwards: Vec<&Span> = flow_spans("forward")
        .into_iter()
        .filter(|s| s.text("topic") == "o.traced")
        .collect();
    let records: i64 = forwards.iter().map(|s| s.number("records")).sum();
    assert!(records >= 400, "forward spans count {records} of 400 records");
    let partitions: HashSet<i64> = forwards.iter().map(|s| s.number("partition")).collect();
    assert_eq!(partitions.len(), 4, "every partition forwarded: {partitions:?}");
    for forward in &forwards {
        let counted = forward.number("batches") > 0 && forward.number("bytes") > 0;
        assert!(counted && forward.text("target_topic") == "o.traced", "{}", forward.0);
    }

    let produces = named(&spans, "produce");
    for forward in &forwards {
        let children: Vec<_> = produces
            .iter()
            .filter(|p| p.id("parent_span_id") == forward.id("span_id"))
            .collect();
        assert!(
            !children.is_empty(),
            "forward {} has no produce child",
            forward.id("span_id")
        );
        for child in children {
            assert_eq!(child.id("trace_id"), forward.id("trace_id"));
            assert_eq!(child.text("topic"), "o.traced");
            assert_eq!(child.number("partition"), forward.number("partition"));
            assert!(
                child.number("broker") >= 0 && child.number("batches") > 0,
                "{}",
                child.0
            );
        }
    }

    let commits = flow_spans("commit");
    assert!(commits.iter().any(|s| s.number("partitions") > 0), "no commit span");
}

#[test]
fn proxy_exports_a_span_per_client_connection() {
    let mock = MockCluster::start(3);
    let out = temp_dir("otlp-proxy").join("spans.jsonl");
    let receiver = ReadyPeer::start("otlp_receiver.py", &[out.to_str().unwrap()]);
    let endpoint = format!("http://{}", receiver.addr);
    let (strait, listen) = crate::proxy::proxy(&mock.bootstrap, &["--otlp-endpoint", &endpoint]);
    produce_records(&listen, "p.traced", 0, 200, "lz4", "confluent");
    assert_eq!(consume(&listen, &["p.traced"], 200, "read_committed").len(), 200);
    assert!(strait.stop().success());

    let spans = received(&out);
    let connections = named(&spans, "proxy_connection");
    assert!(connections.len() >= 2, "a span per connection: {}", connections.len());
    for c in &connections {
        assert!(
            c.text("proxy") == "proxy" && c.text("client").starts_with("127.0.0.1:"),
            "{}",
            c.0
        );
    }
    let bootstrap: Vec<_> = connections.iter().filter(|c| c.text("target") == "Bootstrap").collect();
    assert!(
        bootstrap.iter().any(|c| c.number("rewritten") > 0),
        "a bootstrap connection's Metadata was rewritten"
    );
    let to_brokers: Vec<_> = connections
        .iter()
        .filter(|c| c.text("target").starts_with("Broker("))
        .collect();
    let carried: i64 = to_brokers
        .iter()
        .map(|c| c.number("bytes_to_broker") + c.number("bytes_to_client"))
        .sum();
    // 200 records of at least 10 bytes, produced and fetched.
    assert!(
        carried > 2 * 200 * 10,
        "broker connections carried the records: {carried} bytes"
    );
    let upstream = mock.addresses();
    assert!(
        to_brokers
            .iter()
            .all(|c| upstream.contains(&c.text("broker").to_owned())),
        "each names its upstream broker"
    );
}

#[test]
fn spans_reach_an_https_collector_only_when_its_certificate_chains_to_a_trusted_ca() {
    let mock = MockCluster::start(1);
    let dir = temp_dir("otlp-tls");
    let out = dir.join("spans.jsonl");
    let receiver = ReadyPeer::start(
        "otlp_receiver.py",
        &[out.to_str().unwrap(), "--tls", dir.to_str().unwrap()],
    );
    let endpoint = format!("https://{}", receiver.addr);
    let ca = dir.join("ca.pem");
    let run_proxy = |extra: &[&str]| {
        let (strait, listen) = crate::proxy::proxy(&mock.bootstrap, &[&["--otlp-endpoint", &endpoint], extra].concat());
        produce_records(&listen, "s.tls", 0, 10, "none", "confluent");
        let log = strait.log.clone();
        assert!(strait.stop().success());
        String::from_utf8(read(&log)).unwrap()
    };

    // The system's roots do not include the test's CA: the collector is not trusted.
    let refused = run_proxy(&[]);
    assert!(received(&out).is_empty(), "spans went to an untrusted collector");
    assert!(
        refused.contains("BatchSpanProcessor.ExportError"),
        "the failed export is logged: {refused}"
    );

    let _ = run_proxy(&["--otlp-ca", ca.to_str().unwrap()]);
    assert!(
        !named(&received(&out), "proxy_connection").is_empty(),
        "no span over TLS"
    );
}
