//! The mirror under faults injected into librdkafka's mock cluster through its C API:
//! leader moves, brokers going down and up, request errors, latency. Every test checks
//! that nothing is lost and order per partition holds. `STRAIT_LONG=1` lengthens them.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::harness::*;

fn long() -> bool {
    std::env::var("STRAIT_LONG").is_ok_and(|v| v == "1")
}

/// Nothing lost, every record on its partition, first copies in source order; returns
/// how many duplicates there were.
fn assert_complete(got: &[Seen], total: u64, partitions: u64) -> usize {
    let mut by_partition: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for r in got {
        by_partition.entry(r.p).or_default().push(seq_of(r));
    }
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    for (p, seqs) in by_partition {
        let mut last = None;
        for seq in seqs {
            assert_eq!(seq % partitions, p as u64, "record {seq} on partition {p}");
            if !seen.insert(seq) {
                duplicates += 1;
                continue;
            }
            assert!(last < Some(seq), "partition {p}: {seq} after {last:?}");
            last = Some(seq);
        }
    }
    let missing: Vec<u64> = (0..total).filter(|s| !seen.contains(s)).take(10).collect();
    assert!(missing.is_empty(), "lost records, first ones: {missing:?}");
    duplicates
}

fn mirror(source: &str, target: &str, name: &str) -> Strait {
    Strait::start(&crate::mirror::mirror_args(source, target, "f\\..*", name))
}

#[test]
fn source_leader_moves_and_a_source_broker_outage_lose_nothing() {
    let mut source = MockCluster::start(3);
    let target = Tansu::start();
    source.command("topic f.moves 4");
    let total = if long() { 40_000 } else { 8_000 };
    let bootstrap = source.bootstrap.clone();
    let producer = std::thread::spawn(move || {
        for start in (0..total).step_by(1000) {
            produce_records(&bootstrap, "f.moves", start, 1000, "lz4", "confluent");
        }
    });
    let strait = mirror(&source.bootstrap, &target.bootstrap, "moves");
    for round in 0..if long() { 12 } else { 4 } {
        std::thread::sleep(Duration::from_millis(700));
        for p in 0..4 {
            source.command(&format!("leader f.moves {p} {}", 1 + (p + round) % 3));
        }
        if round == 1 {
            source.command("down 2");
            std::thread::sleep(Duration::from_secs(3));
            source.command("up 2");
        }
    }
    producer.join().unwrap();
    let got = consume_within(&target.bootstrap, &["f.moves"], total, "read_committed", 40);
    let duplicates = assert_complete(&got, total as u64, 4);
    eprintln!("leader moves: {total} records, {duplicates} duplicates");
    assert!(strait.stop().success());
}

#[test]
fn target_errors_latency_and_an_outage_lose_nothing() {
    let source = MockCluster::start(3);
    let mut target = MockCluster::start(3);
    let total = if long() { 40_000 } else { 6_000 };
    produce_records(&source.bootstrap, "f.target", 0, total / 2, "zstd", "confluent");
    let strait = mirror(&source.bootstrap, &target.bootstrap, "target-faults");
    std::thread::sleep(Duration::from_millis(800));
    // Produce is api key 0: NOT_LEADER_OR_FOLLOWER (6), then REQUEST_TIMED_OUT (7).
    target.command("errors 0 6 5");
    target.command("errors 0 7 3");
    target.command("rtt 1 200");
    let outage = if long() { 30 } else { 4 };
    for b in 1..=3 {
        target.command(&format!("down {b}"));
    }
    produce_records(&source.bootstrap, "f.target", total / 2, total / 2, "zstd", "confluent");
    std::thread::sleep(Duration::from_secs(outage));
    for b in 1..=3 {
        target.command(&format!("up {b}"));
    }
    target.command("rtt 1 0");
    let got = consume_within(&target.bootstrap, &["f.target"], total, "read_committed", 40);
    let duplicates = assert_complete(&got, total as u64, 4);
    eprintln!("target faults: {total} records, {duplicates} duplicates, {outage} s outage");
    assert!(
        strait.log_text().contains("produce failed, retrying"),
        "the faults were felt"
    );
    assert!(strait.stop().success());
}

#[test]
fn fetch_errors_on_the_source_stall_nothing_and_lose_nothing() {
    let mut source = MockCluster::start(3);
    let target = Tansu::start();
    let total: usize = 4_000;
    produce_records(&source.bootstrap, "f.fetch", 0, total, "snappy", "confluent");
    // Fetch is api key 1: NOT_LEADER_OR_FOLLOWER (6), then UNKNOWN_TOPIC_OR_PARTITION (3).
    source.command("errors 1 6 4");
    source.command("errors 1 3 2");
    let strait = mirror(&source.bootstrap, &target.bootstrap, "fetch-faults");
    let got = consume_within(&target.bootstrap, &["f.fetch"], total, "read_committed", 40);
    assert_eq!(
        assert_complete(&got, total as u64, 4),
        0,
        "fetch errors cause no duplicates"
    );
    assert!(strait.stop().success());
}

#[test]
fn an_unreachable_target_partition_stalls_no_other() {
    let mut source = MockCluster::start(3);
    let mut target = MockCluster::start(3);
    source.command("topic f.stall 4");
    target.command("topic f.stall 4");
    // Partition 0 of the target lives alone on broker 3; progress is committed on broker 1.
    for p in 0..4 {
        target.command(&format!("leader f.stall {p} {}", if p == 0 { 3 } else { 1 }));
    }
    target.command("coordinator strait.stall 1");
    let strait = mirror(&source.bootstrap, &target.bootstrap, "stall");
    produce_records(&source.bootstrap, "f.stall", 0, 400, "lz4", "confluent");
    assert_eq!(
        consume(&target.bootstrap, &["f.stall"], 400, "read_committed").len(),
        400
    );

    target.command("down 3");
    // Two waves while partition 0's leader is away: the second one can only arrive if
    // the stuck forward of partition 0 holds back no other partition.
    produce_records(&source.bootstrap, "f.stall", 400, 400, "lz4", "confluent");
    std::thread::sleep(Duration::from_secs(2));
    produce_records(&source.bootstrap, "f.stall", 800, 400, "lz4", "confluent");
    // Partition 0 cannot be read meanwhile: the consumer sees the 300 records of each
    // wave on partitions 1-3.
    let others = consume_within(&target.bootstrap, &["f.stall"], 3 * 300, "read_committed", 20);
    let late: Vec<u64> = others.iter().map(seq_of).filter(|s| *s >= 800 && s % 4 != 0).collect();
    assert_eq!(
        late.len(),
        300,
        "the second wave reached partitions 1-3 while partition 0 was stuck"
    );

    target.command("up 3");
    let got = consume_within(&target.bootstrap, &["f.stall"], 1200, "read_committed", 40);
    let duplicates = assert_complete(&got, 1200, 4);
    eprintln!("stuck target partition: 1200 records, {duplicates} duplicates");
    assert!(strait.stop().success());
}

fn gap_config(source: &str, target: &str, policy: &str) -> String {
    format!(
        "[clusters.src]\nbootstrap = [\"{source}\"]\n[clusters.dst]\nbootstrap = [\"{target}\"]\n\n\
         [[mirror]]\nname = \"gap\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"f\\\\.gap\"]\n\
         heartbeat_interval_ms = 0\non_offset_out_of_range = \"{policy}\"\n"
    )
}

/// Writes `count` records of about 1 KB from `start` to the one partition of f.gap.
fn produce_padded(bootstrap: &str, start: usize, count: usize) {
    let (start, count) = (start.to_string(), count.to_string());
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            bootstrap,
            "--topic",
            "f.gap",
            "--start",
            &start,
            "--count",
            &count,
            "--partitions",
            "1",
            "--pad",
            "1000",
        ],
    );
}

/// The source's first offset: the offset of the first record a consumer gets.
fn log_start(bootstrap: &str) -> i64 {
    consume_within(bootstrap, &["f.gap"], 1, "read_committed", 10)[0].offset
}

#[test]
fn data_deleted_under_the_position_is_reported_with_its_gap_then_handled_per_policy() {
    let mut source = MockCluster::start(1);
    let target = MockCluster::start(1);
    source.command("topic f.gap 1");
    let path = write_config("gap", &gap_config(&source.bootstrap, &target.bootstrap, "earliest"));
    let config = path.to_str().unwrap();
    let strait = Strait::start(&["run", "--config", config]);
    produce_padded(&source.bootstrap, 0, 100);
    assert_eq!(consume(&target.bootstrap, &["f.gap"], 100, "read_committed").len(), 100);
    assert!(strait.stop().success());

    // While strait is away, retention (the mock cluster keeps about 5 MB per partition)
    // deletes records it has not copied yet.
    produce_padded(&source.bootstrap, 100, 12_000);
    let start = log_start(&source.bootstrap);
    assert!(start > 100, "the mock cluster deleted nothing: log start {start}");
    let strait = Strait::start(&["run", "--config", config]);
    let expect = 100 + (12_100 - start as usize);
    let got = consume_within(&target.bootstrap, &["f.gap"], expect, "read_committed", 20);
    assert_eq!(
        got.len(),
        expect,
        "the target holds the first 100 and everything from {start}"
    );
    let seqs: Vec<u64> = got.iter().map(seq_of).collect();
    assert_eq!(
        seqs[99..101],
        [99, start as u64],
        "the gap is exactly the deleted records"
    );
    let gap = format!("{} records were deleted before strait copied them", start - 100);
    assert!(strait.log_shows(&gap), "the gap is reported: {}", strait.log_text());
    assert!(strait.stop().success());

    // With `fail`, the same situation stops the flow with the gap named.
    write_config("gap", &gap_config(&source.bootstrap, &target.bootstrap, "fail"));
    produce_padded(&source.bootstrap, 12_100, 12_000);
    let mut strait = Strait::start(&["run", "--config", config]);
    let status = strait.exit_within(Duration::from_secs(30));
    assert!(!status.success());
    let log = strait.log_text();
    assert!(
        log.contains("gap: f.gap/0: source offset") && log.contains("records were deleted"),
        "{log}"
    );
}

fn refusal_config(source: &str, target: &str, metrics: &str, policy: &str) -> String {
    let source = source.replace(',', "\", \"");
    format!(
        "[metrics]\nlisten = \"{metrics}\"\n\n[clusters.src]\nbootstrap = [\"{source}\"]\n\
         [clusters.dst]\nbootstrap = [\"{target}\"]\n\n\
         [[mirror]]\nname = \"refused\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"f\\\\.refused\"]\n\
         heartbeat_interval_ms = 0\non_partition_error = \"{policy}\"\n\
         session_timeout_ms = 4000\n"
    )
}

/// The target refuses the first produce with MESSAGE_TOO_LARGE, which no retry fixes:
/// that partition stops with one log line and is named in `/readyz`, the others are
/// copied whole, and a restart of the flow copies the stopped one too.
#[test]
fn a_partition_the_target_refuses_for_good_stops_alone_and_says_so() {
    let mut source = MockCluster::start(3);
    let mut target = MockCluster::start(1);
    source.command("topic f.refused 4");
    produce_records(&source.bootstrap, "f.refused", 0, 2000, "lz4", "confluent");
    target.command("errors 0 10 1");
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = refusal_config(&source.bootstrap, &target.bootstrap, &metrics, "stop_partition");
    let path = write_config("refused", &config);
    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    let got = consume_within(&target.bootstrap, &["f.refused"], 1500, "read_committed", 15);
    let mut per_partition = [0usize; 4];
    got.iter().for_each(|r| per_partition[r.p as usize] += 1);
    let stopped: Vec<usize> = (0..4).filter(|p| per_partition[*p] == 0).collect();
    assert_eq!(
        stopped.len(),
        1,
        "one partition refused, the others whole: {per_partition:?}"
    );
    assert_eq!(per_partition.iter().sum::<usize>(), 1500, "{per_partition:?}");

    let text = crate::metrics::scrape_until(&metrics, "one stopped partition", |t| {
        crate::metrics::sum(t, "strait_mirror_partitions_stopped", &["flow=\"refused\""]) == 1.0
    });
    assert_eq!(
        crate::metrics::sum(&text, "strait_mirror_up", &["flow=\"refused\""]),
        0.0
    );
    let (status, body) = crate::metrics::get(&metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&format!("f.refused/{} stopped", stopped[0])), "{body}");
    assert!(body.contains("MessageTooLarge"), "{body}");
    // Seen for a while: the refusal is logged once, not once a round.
    std::thread::sleep(Duration::from_secs(2));
    let log = strait.log_text();
    assert_eq!(log.matches("partition stopped").count(), 1, "{log}");
    assert!(strait.stop().success());

    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    let got = consume_within(&target.bootstrap, &["f.refused"], 4000, "read_committed", 6);
    assert_complete(&got, 2000, 4);
    assert!(strait.stop().success());
}

/// With `on_partition_error = "stop_flow"` the same refusal stops the flow, and `strait
/// run`, having nothing left to run, exits non-zero naming it.
#[test]
fn with_stop_flow_a_refusal_stops_the_flow_and_the_process_says_why() {
    let source = MockCluster::start(1);
    let mut target = MockCluster::start(1);
    produce_records(&source.bootstrap, "f.refused", 0, 100, "lz4", "confluent");
    target.command("errors 0 10 1");
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = refusal_config(&source.bootstrap, &target.bootstrap, &metrics, "stop_flow");
    let path = write_config("refused-flow", &config);
    let mut strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    let status = strait.exit_within(Duration::from_secs(30));
    assert!(!status.success());
    let log = strait.log_text();
    assert!(
        log.contains("stopped with an error") && log.contains("MessageTooLarge"),
        "{log}"
    );
}

/// While a target partition's leader is away, its forward cannot finish and the
/// partition is not fetched; its lag must still follow the source (asked for on its
/// own), and the flow must call it stuck, until the leader is back.
#[test]
fn a_stuck_partition_keeps_its_lag_measured_and_is_reported_until_it_moves_again() {
    let mut source = MockCluster::start(1);
    let mut target = MockCluster::start(3);
    source.command("topic f.lag 4");
    target.command("topic f.lag 4");
    for p in 0..4 {
        target.command(&format!("leader f.lag {p} {}", if p == 0 { 3 } else { 1 }));
    }
    target.command("coordinator strait.lagging 1");
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[metrics]\nlisten = \"{metrics}\"\n\n[clusters.src]\nbootstrap = [\"{}\"]\n\
         [clusters.dst]\nbootstrap = [\"{}\"]\nrequest_timeout_ms = 5000\n\n\
         [[mirror]]\nname = \"lagging\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"f\\\\.lag\"]\n\
         heartbeat_interval_ms = 0\nstuck_after_secs = 3\n",
        source.bootstrap,
        target.bootstrap.replace(',', "\", \"")
    );
    let path = write_config("lagging", &config);
    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    produce_records(&source.bootstrap, "f.lag", 0, 400, "lz4", "confluent");
    assert_eq!(consume(&target.bootstrap, &["f.lag"], 400, "read_committed").len(), 400);

    target.command("down 3");
    for wave in 0..3 {
        produce_records(&source.bootstrap, "f.lag", 400 + wave * 400, 400, "lz4", "confluent");
        std::thread::sleep(Duration::from_secs(1));
    }
    // 300 records of partition 0 are not on the target; the source has them all.
    let p0 = ["flow=\"lagging\"", "topic=\"f.lag\"", "partition=\"0\""];
    let text = crate::metrics::scrape_until(&metrics, "partition 0's lag from the source", |t| {
        crate::metrics::sum(t, "strait_mirror_lag_offsets", &p0) >= 300.0
    });
    assert_eq!(
        crate::metrics::sum(&text, "strait_mirror_partitions_stuck", &["flow=\"lagging\""]),
        1.0
    );
    let (status, body) = crate::metrics::get(&metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("f.lag/0 stuck"), "{body}");
    assert!(strait.log_shows("partition stuck"));

    target.command("up 3");
    let got = consume_within(&target.bootstrap, &["f.lag"], 3200, "read_committed", 8);
    assert_complete(&got, 1600, 4);
    crate::metrics::scrape_until(&metrics, "no partition stuck", |t| {
        crate::metrics::sum(t, "strait_mirror_partitions_stuck", &["flow=\"lagging\""]) == 0.0
            && crate::metrics::sum(t, "strait_mirror_lag_offsets", &p0) == 0.0
    });
    assert_eq!(crate::metrics::get(&metrics, "/readyz").0, 200);
    assert!(strait.stop().success());
}

/// A panic in a forward (a test-only switch, `STRAIT_TEST_PANIC`, makes the process's
/// third forward panic)
/// is the flow's error: logged, and the flow restarted from its committed progress.
#[test]
fn a_panic_in_a_forward_restarts_the_flow_from_its_progress_and_loses_nothing() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    produce_records(&source.bootstrap, "f.panic", 0, 2000, "lz4", "confluent");
    let config = format!(
        "[clusters.src]\nbootstrap = [\"{}\"]\n[clusters.dst]\nbootstrap = [\"{}\"]\n\n\
         [[mirror]]\nname = \"panics\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"f\\\\.panic\"]\n\
         heartbeat_interval_ms = 0\nsession_timeout_ms = 4000\n",
        source.bootstrap, target.bootstrap
    );
    let path = write_config("panics", &config);
    let strait = Strait::start_with_env(
        &["run", "--config", path.to_str().unwrap()],
        &[("STRAIT_TEST_PANIC", "forward:3")],
    );
    // Duplicates of what the first run copied count towards a consumer's total: read
    // until the target goes quiet.
    let got = consume_within(&target.bootstrap, &["f.panic"], 4000, "read_committed", 8);
    assert_complete(&got, 2000, 4);
    assert!(strait.log_shows("a forward panicked"), "{}", strait.log_text());
    assert!(strait.log_shows("restarting from its committed progress"));
    assert!(strait.stop().success());
}

/// A source topic deleted under a flow is dropped from it (log line, metric series
/// gone); created again under the same name, it is a new topic, copied from its
/// beginning, not from the old one's progress.
#[test]
fn a_deleted_source_topic_is_dropped_and_its_recreation_is_copied_from_its_start() {
    let mut source = MockCluster::start(1);
    let target = MockCluster::start(1);
    source.command("topic f.gone 4");
    produce_records(&source.bootstrap, "f.gone", 0, 400, "lz4", "confluent");
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[metrics]\nlisten = \"{metrics}\"\n\n[clusters.src]\nbootstrap = [\"{}\"]\n\
         [clusters.dst]\nbootstrap = [\"{}\"]\n\n\
         [[mirror]]\nname = \"gone\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"f\\\\.gone\"]\n\
         heartbeat_interval_ms = 0\ntopic_refresh_secs = 1\n",
        source.bootstrap, target.bootstrap
    );
    let path = write_config("gone", &config);
    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(
        consume(&target.bootstrap, &["f.gone"], 400, "read_committed").len(),
        400
    );
    let lag = ["flow=\"gone\"", "topic=\"f.gone\""];
    crate::metrics::scrape_until(&metrics, "the topic's lag series", |t| t.contains("topic=\"f.gone\""));

    source.command("delete f.gone");
    assert!(strait.log_shows("source topic deleted"), "{}", strait.log_text());
    crate::metrics::scrape_until(&metrics, "no series of the deleted topic", |t| {
        !t.lines()
            .any(|l| l.starts_with("strait_mirror_lag_offsets") && lag.iter().all(|w| l.contains(w)))
    });

    source.command("topic f.gone 4");
    produce_records(&source.bootstrap, "f.gone", 1000, 200, "lz4", "confluent");
    let got = consume_within(&target.bootstrap, &["f.gone"], 600, "read_committed", 20);
    let new: Vec<u64> = got.iter().map(seq_of).filter(|s| *s >= 1000).collect();
    assert_eq!(new.len(), 200, "every record of the new topic, from its first");
    assert_eq!(got.len(), 600, "the old copy stays, nothing twice");
    assert!(strait.stop().success());
}

/// Writes to the source a batch of two records whose header says three (its CRC made
/// right), as a broken producer could: the mock stores it as it came.
fn plant_miscounted_batch(bootstrap: &str, topic: &str) {
    use strait::client::{AddressMap, Cluster};
    let batch = strait::wire::build::batch_of(&[b"one", b"two"], 1_700_000_000_000).unwrap();
    let mut bytes = batch.as_bytes().to_vec();
    bytes[57..61].copy_from_slice(&3i32.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let bad = strait::wire::batch::Batch::new(bytes.into()).unwrap();
    let source = Cluster::new(
        "planter",
        vec![bootstrap.to_owned()],
        AddressMap::default(),
        Default::default(),
    );
    crate::client::runtime()
        .block_on(strait::client::produce::produce_one(
            &source,
            topic,
            0,
            &strait::wire::build::as_patched(&bad),
            10_000,
        ))
        .unwrap();
}

/// A source batch whose record count disagrees with its records is never written to
/// the target: its partition stops there, named in the log and in `/readyz`.
#[test]
fn a_source_batch_whose_record_count_is_wrong_stops_its_partition_and_is_never_written() {
    let mut source = MockCluster::start(1);
    let target = MockCluster::start(1);
    source.command("topic f.bad 1");
    let produce = |start: &str| {
        let args = [
            "--bootstrap",
            &source.bootstrap,
            "--topic",
            "f.bad",
            "--start",
            start,
            "--count",
            "100",
        ];
        run_peer(
            "produce.py",
            &[&args[..], &["--partitions", "1", "--compression", "none"]].concat(),
        );
    };
    produce("0");
    plant_miscounted_batch(&source.bootstrap, "f.bad");
    produce("100");
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[metrics]\nlisten = \"{metrics}\"\n\n[clusters.src]\nbootstrap = [\"{}\"]\n\
         [clusters.dst]\nbootstrap = [\"{}\"]\n\n\
         [[mirror]]\nname = \"miscounted\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"f\\\\.bad\"]\n\
         heartbeat_interval_ms = 0\n",
        source.bootstrap, target.bootstrap
    );
    let path = write_config("miscounted", &config);
    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    let got = consume_within(&target.bootstrap, &["f.bad"], 1000, "read_committed", 6);
    let seqs: Vec<u64> = got.iter().map(seq_of).collect();
    assert_eq!(
        seqs,
        (0..100).collect::<Vec<u64>>(),
        "what came before the bad batch, and nothing after"
    );
    assert!(strait.log_shows("says 3 records and holds 2"), "{}", strait.log_text());
    let (status, body) = crate::metrics::get(&metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("f.bad/0 stopped") && body.contains("offset 100"),
        "{body}"
    );
    assert!(strait.stop().success());
}
