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
    assert!(text.contains("why: the target has no topic lonely"), "{text}");
    assert!(text.contains("why: none of the"), "{text}");
}

/// The probe topic is new to a mirror that runs with its default settings: the mirror
/// finds it within its topic refresh and the probe passes on its first run.
#[test]
fn probe_of_a_topic_new_to_a_running_mirror_passes_on_its_first_run() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    let strait = Strait::start(&mirror_args(
        &source.bootstrap,
        &target.bootstrap,
        "strait-probe.*",
        "fresh",
    ));
    assert!(strait.log_shows("flow started"), "{}", strait.log_text());
    let (ok, text) = probe(
        &source.bootstrap,
        &target.bootstrap,
        &["--topic", "strait-probe-new", "--duration", "2s", "--interval", "100ms"],
    );
    assert!(ok, "{text}");
    assert!(strait.stop().success());
}

/// With the config, the probe names the flow that copies its topic under another name.
#[test]
fn probe_names_the_flow_that_renames_its_topic() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    let config = format!(
        "[clusters.src]\nbootstrap = [\"{}\"]\n[clusters.dst]\nbootstrap = [\"{}\"]\n\n\
         [[mirror]]\nname = \"renaming\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"probed.*\"]\n\
         rename = \"{{source}}.{{topic}}\"\nheartbeat_interval_ms = 0\ntopic_refresh_secs = 1\n",
        source.bootstrap, target.bootstrap
    );
    let path = write_config("renaming", &config);
    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    let (ok, text) = probe(
        "src",
        "dst",
        &[
            "--config",
            path.to_str().unwrap(),
            "--topic",
            "probed",
            "--duration",
            "1s",
            "--grace",
            "3s",
        ],
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("why: flow renaming copies probed to src.probed: use --target-topic src.probed"),
        "{text}"
    );
    assert!(strait.stop().success());
}
