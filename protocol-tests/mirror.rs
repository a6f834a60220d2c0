//! `strait mirror` and `strait run` end to end: real producers write to a source cluster,
//! strait copies, a CRC-checking consumer compares source and target record by record.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;

type Content = (Option<String>, Option<String>, Vec<(String, Option<String>)>, i64);

fn by_partition(records: &[Seen]) -> BTreeMap<i32, Vec<Content>> {
    let mut out: BTreeMap<i32, Vec<Content>> = BTreeMap::new();
    for r in records {
        out.entry(r.p)
            .or_default()
            .push((r.key.clone(), r.value.clone(), r.headers.clone(), r.ts));
    }
    out
}

/// Waits for `expect` records on the target, then compares them with the source.
pub(crate) fn assert_same(source: &str, target: &str, source_topic: &str, target_topic: &str, expect: usize) {
    let want = consume(source, &[source_topic], expect, "read_committed");
    assert_eq!(want.len(), expect, "source {source_topic} should hold {expect} records");
    let got = consume(target, &[target_topic], expect, "read_committed");
    assert_eq!(
        got.len(),
        expect,
        "target {target_topic} holds {} of {expect} records",
        got.len()
    );
    assert_eq!(
        by_partition(&got),
        by_partition(&want),
        "{target_topic} differs from {source_topic}"
    );
}

pub(crate) fn mirror_args<'a>(source: &'a str, target: &'a str, topics: &'a str, name: &'a str) -> Vec<&'a str> {
    vec![
        "mirror", "--source", source, "--target", target, "--topics", topics, "--name", name,
    ]
}

#[test]
fn mirror_copies_every_codec_record_for_record_from_mock_cluster_to_tansu() {
    let source = MockCluster::start(3);
    let target = Tansu::start();
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for codec in codecs {
        produce_records(&source.bootstrap, &format!("m.{codec}"), 0, 400, codec, "confluent");
    }
    produce_records(
        &source.bootstrap,
        "m.kafka-python-snappy",
        0,
        300,
        "snappy",
        "kafka-python",
    );
    let strait = Strait::start(&mirror_args(&source.bootstrap, &target.bootstrap, "m\\..*", "codecs"));
    for codec in codecs {
        let topic = format!("m.{codec}");
        assert_same(&source.bootstrap, &target.bootstrap, &topic, &topic, 400);
    }
    assert_same(
        &source.bootstrap,
        &target.bootstrap,
        "m.kafka-python-snappy",
        "m.kafka-python-snappy",
        300,
    );
    let log = strait.log_text();
    assert!(log.contains("created target topic"), "{log}");
    assert!(strait.stop().success());
}

/// Both ways between the two codecs of the benchmark; librdkafka reads what strait wrote,
/// its own lz4 frames included.
#[test]
fn mirror_recompresses_lz4_to_zstd_and_zstd_to_lz4_and_keeps_every_record() {
    use strait::wire::codec::Compression;
    for (from, to, codec) in [("lz4", "zstd", Compression::Zstd), ("zstd", "lz4", Compression::Lz4)] {
        let source = MockCluster::start(3);
        let target = Tansu::start();
        let topic = format!("r.{from}");
        produce_records(&source.bootstrap, &topic, 0, 500, from, "confluent");
        let mut args = mirror_args(&source.bootstrap, &target.bootstrap, "r\\..*", "recompress");
        args.extend(["--compression", to]);
        let strait = Strait::start(&args);
        assert_same(&source.bootstrap, &target.bootstrap, &topic, &topic, 500);
        assert!(strait.stop().success());
        let codecs = crate::client::batch_codecs(&target.bootstrap, &topic, 4);
        assert!(!codecs.is_empty());
        assert!(
            codecs.iter().all(|c| *c == codec),
            "{from} to {to}, target batches: {codecs:?}"
        );
    }
}

#[test]
fn mirror_killed_with_sigkill_again_and_again_loses_nothing_and_keeps_order() {
    let source = MockCluster::start(3);
    let mut target = MockCluster::start(3);
    // Produce answers take 400 ms (the partitions live on brokers 2 and 3) while progress
    // commits are quick (broker 1), so most kills land with data in flight: progress
    // committed before the target acknowledged would show as lost records.
    target.command("topic k.stream 4");
    for p in 0..4 {
        target.command(&format!("leader k.stream {p} {}", 2 + p % 2));
    }
    target.command("coordinator strait.killed 1");
    target.command("rtt 2 400");
    target.command("rtt 3 400");
    let total = 20_000;
    let chunk = 2_000;
    let bootstrap = source.bootstrap.clone();
    let producer = std::thread::spawn(move || {
        for start in (0..total).step_by(chunk) {
            produce_records(&bootstrap, "k.stream", start, chunk, "lz4", "confluent");
        }
    });
    let mut args = mirror_args(&source.bootstrap, &target.bootstrap, "k\\..*", "killed");
    // A killed process stays in the flow's group until its session times out, and its
    // successor's first assignment waits for that: short here, so six kills fit.
    args.extend(["--session-timeout-ms", "4000"]);
    std::thread::sleep(Duration::from_millis(1500));
    for round in 0..6u64 {
        let strait = Strait::start(&args);
        assert!(
            strait.log_shows_within("assignment received", Duration::from_secs(30)),
            "{}",
            strait.log_text()
        );
        std::thread::sleep(Duration::from_millis(700 + 300 * (round % 3)));
        strait.kill();
    }
    producer.join().unwrap();
    let strait = Strait::start(&args);
    // Duplicates count towards a consumer's total: read until the target goes quiet.
    // A killed run copies again what it had fetched ahead and not committed, up to its
    // in-flight bound: the limit here is far above what six kills can add.
    let got = consume_within(&target.bootstrap, &["k.stream"], 10 * total, "read_committed", 10);
    assert!(strait.stop().success());
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = 0;
    for (p, records) in by_partition_seen(&got) {
        let mut last = None;
        for r in records {
            let seq = seq_of(r);
            assert_eq!(seq as i32 % 4, p, "record {seq} on the wrong partition");
            if !seen.insert(seq) {
                duplicates += 1;
                continue;
            }
            assert!(last < Some(seq), "partition {p}: {seq} after {last:?}: order broken");
            last = Some(seq);
        }
    }
    let missing: Vec<u64> = (0..total as u64).filter(|s| !seen.contains(s)).take(10).collect();
    assert!(missing.is_empty(), "lost records, first ones: {missing:?}");
    eprintln!("sigkill test: {total} records, {duplicates} duplicates after 6 kills");
    drop(target);
}

fn by_partition_seen(records: &[Seen]) -> BTreeMap<i32, Vec<&Seen>> {
    let mut out: BTreeMap<i32, Vec<&Seen>> = BTreeMap::new();
    for r in records {
        out.entry(r.p).or_default().push(r);
    }
    out
}

#[test]
fn run_fans_two_regions_into_one_cluster_with_renamed_topics() {
    let sea = MockCluster::start(3);
    let na = MockCluster::start(1);
    let hk = Tansu::start();
    produce_records(&sea.bootstrap, "clicks", 0, 300, "zstd", "confluent");
    produce_records(&na.bootstrap, "clicks", 1000, 200, "gzip", "kafka-python");
    let config = write_config(
        "fanin",
        &format!(
            r#"
[clusters.sea]
bootstrap = {sea:?}
[clusters.na]
bootstrap = {na:?}
[clusters.hk]
bootstrap = ["{hk}"]

[[mirror]]
name = "sea-to-hk"
source = "sea"
target = "hk"
topics = ["clicks"]
rename = "{{source}}.{{topic}}"

[[mirror]]
name = "na-to-hk"
source = "na"
target = "hk"
topics = ["clicks"]
rename = "{{source}}.{{topic}}"
"#,
            sea = sea.addresses(),
            na = na.addresses(),
            hk = hk.bootstrap
        ),
    );
    let strait = Strait::start(&["run", "--config", config.to_str().unwrap()]);
    assert_same(&sea.bootstrap, &hk.bootstrap, "clicks", "sea.clicks", 300);
    assert_same(&na.bootstrap, &hk.bootstrap, "clicks", "na.clicks", 200);
    assert!(strait.stop().success());
}

#[test]
fn mirror_drops_aborted_transactions_and_falls_back_to_auto_creation_on_the_mock_cluster() {
    let source = Tansu::start();
    let target = MockCluster::start(3);
    let out = run_peer(
        "produce.py",
        &[
            "--bootstrap",
            &source.bootstrap,
            "--topic",
            "tx.orders",
            "--create",
            "--txn",
            "commit:100,abort:50,commit:100",
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let aborted: Vec<u64> = summary["aborted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(aborted.len(), 50);
    let strait = Strait::start(&mirror_args(&source.bootstrap, &target.bootstrap, "tx\\..*", "txn"));
    let got = consume(&target.bootstrap, &["tx.orders"], 250, "read_uncommitted");
    let seqs: std::collections::BTreeSet<u64> = got.iter().map(seq_of).collect();
    let want: std::collections::BTreeSet<u64> = (0..250).filter(|s| !aborted.contains(s)).collect();
    assert_eq!(
        seqs, want,
        "the target holds committed records only, even for a read_uncommitted reader"
    );
    assert_eq!(got.len(), 200, "no duplicates");
    let log = strait.log_text();
    assert!(log.contains("cannot create topics by API"), "{log}");
    let kcat = std::process::Command::new("kcat")
        .args([
            "-b",
            &target.bootstrap,
            "-C",
            "-t",
            "tx.orders",
            "-e",
            "-q",
            "-X",
            "check.crcs=true",
            "-f",
            "%k\n",
        ])
        .output()
        .expect("kcat is installed by scripts/test.sh");
    assert!(kcat.status.success(), "{}", String::from_utf8_lossy(&kcat.stderr));
    assert_eq!(
        String::from_utf8_lossy(&kcat.stdout).lines().count(),
        200,
        "kcat reads every record"
    );
    assert!(strait.stop().success());
}

fn flow_toml(name: &str, source: &str, target: &str, rename: &str) -> String {
    format!(
        "[[mirror]]\nname = \"{name}\"\nsource = \"{source}\"\ntarget = \"{target}\"\ntopics = [\".*\"]\nrename = \"{rename}\"\ntopic_refresh_secs = 1\n"
    )
}

#[test]
fn a_target_topic_smaller_than_its_source_is_refused_by_name_and_never_remapped() {
    let source = Tansu::start();
    let target = Tansu::start();
    let make = |bootstrap: &str, topic: &str, partitions: &str, count: &str| {
        run_peer(
            "produce.py",
            &[
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
                "--partitions",
                partitions,
                "--count",
                count,
                "--create",
            ],
        );
    };
    make(&source.bootstrap, "wide", "4", "100");
    make(&source.bootstrap, "fine", "2", "60");
    make(&target.bootstrap, "wide", "2", "0");
    let config = format!(
        "[clusters.a]\nbootstrap = [\"{}\"]\n[clusters.b]\nbootstrap = [\"{}\"]\n{}",
        source.bootstrap,
        target.bootstrap,
        flow_toml("narrow", "a", "b", "{topic}")
    );
    let strait = Strait::start(&["run", "--config", write_config("narrow", &config).to_str().unwrap()]);
    assert_same(&source.bootstrap, &target.bootstrap, "fine", "fine", 60);
    let log = strait.log_text();
    assert!(
        log.contains("target topic wide has 2 partitions but source topic wide has 4"),
        "the error names both topics and counts: {log}"
    );
    assert!(
        consume(&target.bootstrap, &["wide"], 0, "read_committed").is_empty(),
        "nothing remapped into wide"
    );
    assert!(strait.stop().success());
}

#[test]
fn an_active_active_pair_with_prefixes_never_copies_its_own_copies_back() {
    let a = Tansu::start();
    let b = Tansu::start();
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            &a.bootstrap,
            "--topic",
            "orders",
            "--count",
            "100",
            "--create",
        ],
    );
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            &b.bootstrap,
            "--topic",
            "orders",
            "--count",
            "50",
            "--create",
        ],
    );
    let config = format!(
        "[clusters.a]\nbootstrap = [\"{}\"]\n[clusters.b]\nbootstrap = [\"{}\"]\n{}{}",
        a.bootstrap,
        b.bootstrap,
        flow_toml("a-to-b", "a", "b", "{source}.{topic}"),
        flow_toml("b-to-a", "b", "a", "{source}.{topic}")
    );
    let strait = Strait::start(&["run", "--config", write_config("active", &config).to_str().unwrap()]);
    assert_same(&a.bootstrap, &b.bootstrap, "orders", "a.orders", 100);
    assert_same(&b.bootstrap, &a.bootstrap, "orders", "b.orders", 50);
    // Give both flows several topic refreshes to (wrongly) pick up each other's copies.
    std::thread::sleep(Duration::from_secs(4));
    let user_topics = |bootstrap: &str| {
        topics(bootstrap)
            .into_iter()
            .filter(|t| !t.starts_with("__"))
            .collect::<Vec<_>>()
    };
    assert_eq!(user_topics(&a.bootstrap), ["b.orders", "orders"]);
    assert_eq!(user_topics(&b.bootstrap), ["a.orders", "orders"]);
    assert!(strait.stop().success());
}

#[test]
fn start_latest_skips_history_and_new_topics_are_picked_up_while_running() {
    let source = MockCluster::start(3);
    let target = Tansu::start();
    produce_records(&source.bootstrap, "live.old", 0, 100, "none", "confluent");
    let config = format!(
        "[clusters.a]\nbootstrap = {:?}\n[clusters.b]\nbootstrap = [\"{}\"]\n\n[[mirror]]\nname = \"live\"\nsource = \"a\"\ntarget = \"b\"\ntopics = [\"live\\\\..*\"]\nstart = \"latest\"\ntopic_refresh_secs = 1\n",
        source.addresses(),
        target.bootstrap
    );
    let strait = Strait::start(&["run", "--config", write_config("live", &config).to_str().unwrap()]);
    let assigned = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        strait.log_text().matches("partition assigned").count() >= 4
    });
    assert!(assigned, "{}", strait.log_text());
    produce_records(&source.bootstrap, "live.old", 100, 50, "none", "confluent");
    let got = consume(&target.bootstrap, &["live.old"], 50, "read_committed");
    assert_eq!(got.len(), 50, "only what came after the start");
    assert!(got.iter().all(|r| seq_of(r) >= 100), "nothing from before the start");
    produce_records(&source.bootstrap, "live.new", 0, 30, "zstd", "confluent");
    assert_same(&source.bootstrap, &target.bootstrap, "live.new", "live.new", 30);
    assert!(strait.stop().success());
}

#[test]
fn partitions_added_to_a_source_topic_are_picked_up_while_running() {
    let mut source = MockCluster::start(1);
    let mut target = MockCluster::start(1);
    source.command("topic g.grow 2");
    // Neither peer can add partitions by API, so the target has room from the start.
    target.command("topic g.grow 4");
    let config = format!(
        "[clusters.src]\nbootstrap = [\"{}\"]\n[clusters.dst]\nbootstrap = [\"{}\"]\n\n[[mirror]]\nname = \"grow\"\n\
         source = \"src\"\ntarget = \"dst\"\ntopics = [\"g\\\\..*\"]\ntopic_refresh_secs = 1\nheartbeat_interval_ms = 0\n",
        source.bootstrap, target.bootstrap
    );
    let strait = Strait::start(&["run", "--config", write_config("grow", &config).to_str().unwrap()]);
    assert!(strait.log_shows("topic=g.grow partition=1"), "{}", strait.log_text());
    // The mock cluster cannot grow a topic in place: the empty topic comes back with four
    // partitions, which is what a growing topic looks like to strait.
    source.command("delete g.grow");
    source.command("topic g.grow 4");
    produce_records(&source.bootstrap, "g.grow", 0, 400, "lz4", "confluent");
    let got = consume_within(&target.bootstrap, &["g.grow"], 400, "read_committed", 20);
    let seqs: BTreeMap<i32, usize> = got.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.p).or_default() += 1;
        m
    });
    assert_eq!(
        seqs,
        BTreeMap::from([(0, 100), (1, 100), (2, 100), (3, 100)]),
        "per partition"
    );
    assert!(strait.log_shows("topic=g.grow partition=3"), "{}", strait.log_text());
    assert!(strait.stop().success());
}

#[test]
fn a_tiny_in_flight_limit_slows_the_flow_down_but_loses_nothing() {
    let source = MockCluster::start(3);
    let target = MockCluster::start(3);
    produce_records(&source.bootstrap, "t.tight", 0, 2000, "lz4", "confluent");
    // One byte: after each fetch, nothing more is fetched until its forwards finished.
    let config = format!(
        "[clusters.src]\nbootstrap = {:?}\n[clusters.dst]\nbootstrap = {:?}\n\n[[mirror]]\nname = \"tight\"\n\
         source = \"src\"\ntarget = \"dst\"\ntopics = [\"t\\\\..*\"]\nmax_in_flight_bytes = 1\n",
        source.addresses(),
        target.addresses()
    );
    let strait = Strait::start(&["run", "--config", write_config("tight", &config).to_str().unwrap()]);
    assert_same(&source.bootstrap, &target.bootstrap, "t.tight", "t.tight", 2000);
    assert!(strait.stop().success());
}
