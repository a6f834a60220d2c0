//! `strait probe` against real brokers: through a running mirror every probe record
//! arrives and the summary says so; with nothing replicating, every one is missing and
//! the exit status says so.

use std::process::Command;

use crate::harness::*;
use crate::mirror::mirror_args;

fn probe(source: &str, target: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["probe", "--source", source, "--target", target])
        .args(extra)
        .output()
        .expect("run strait probe");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The numbers of the summary line: sent, received, missing, duplicates.
fn counts(text: &str) -> Vec<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("probe "))
        .unwrap_or_else(|| panic!("no summary in: {text}"));
    ["sent ", "received ", "missing ", "duplicates "]
        .iter()
        .map(|word| {
            let rest = &line[line.find(word).unwrap_or_else(|| panic!("{word} in {line}")) + word.len()..];
            rest.split(',').next().unwrap().trim().parse().unwrap()
        })
        .collect()
}

#[test]
fn probe_records_cross_a_running_mirror_and_the_summary_has_percentiles() {
    let mut source = MockCluster::start(3);
    let target = MockCluster::start(3);
    source.command("topic strait-probe 2");
    let strait = Strait::start(&mirror_args(
        &source.bootstrap,
        &target.bootstrap,
        "strait-probe",
        "probed",
    ));
    assert!(strait.log_shows("partition assigned"), "{}", strait.log_text());
    let (ok, text) = probe(
        &source.bootstrap,
        &target.bootstrap,
        &["--duration", "3s", "--interval", "50ms", "--grace", "15s"],
    );
    assert!(ok, "{text}");
    let [sent, received, missing, _] = counts(&text)[..] else {
        unreachable!()
    };
    assert!(sent >= 20, "3 s at one record per 50 ms: {text}");
    assert_eq!((received, missing), (sent, 0), "{text}");
    assert!(text.contains("latency p50 ") && text.contains(" p99 "), "{text}");
    // Not a terminal: one plain line per second.
    assert!(text.lines().filter(|l| l.contains("s  sent ")).count() >= 2, "{text}");
    assert!(strait.stop().success());
}

#[test]
fn probe_with_nothing_replicating_reports_every_record_missing_and_fails() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    let (ok, text) = probe(
        &source.bootstrap,
        &target.bootstrap,
        &[
            "--topic",
            "lonely",
            "--duration",
            "1s",
            "--interval",
            "100ms",
            "--grace",
            "1s",
        ],
    );
    assert!(!ok, "{text}");
    let [sent, received, missing, _] = counts(&text)[..] else {
        unreachable!()
    };
    assert!(sent > 0, "{text}");
    assert_eq!((received, missing), (0, sent), "{text}");
    assert!(text.contains("did not reach lonely"), "{text}");
}
