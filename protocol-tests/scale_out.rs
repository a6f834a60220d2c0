//! Scale-out: several `strait mirror` processes run one flow, joined in the group
//! `strait.<flow>` on the target cluster, and share its source partitions. Two librdkafka
//! mock clusters (source and target) and a 64-partition topic: the share is balanced and
//! copies every record once; a SIGKILLed process's partitions move to the others with no
//! loss and few duplicates; a rolling restart loses nothing and never stalls the
//! partitions it does not move.
//!
//! The mock's group coordinator waits 3 s on a group's first join and `session timeout -
//! 1000` ms for every member to rejoin a group that is up, so the flows here use short
//! sessions (4 s: a session no longer than the first join's wait can drop its member).
//! It knows no static membership either: a process restarted under its instance id is
//! a second member until the first one's session ends.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::harness::*;
use crate::metrics::sum;
use crate::mirror::mirror_args;

const PARTITIONS: usize = 64;
const SESSION_MS: u64 = 4000;
const SESSION: &str = "4000";

/// One `strait` process of the flow and the metrics endpoint it serves.
struct Member {
    id: &'static str,
    metrics: String,
    strait: Strait,
}

/// What one process's gauges and counters say about its part in the group.
#[derive(Debug, Clone, Copy)]
struct Share {
    partitions: f64,
    generation: f64,
    rebalances: f64,
    moved: f64,
}

/// `/metrics` of a process, or `None` when nothing answers there (as after a kill).
fn scrape(addr: &str) -> Option<String> {
    let socket = addr.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&socket, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.starts_with("HTTP/1.1 200").then(|| {
        answer
            .split_once("\r\n\r\n")
            .map_or(String::new(), |(_, body)| body.to_owned())
    })
}

fn share_in(text: &str, flow: &str) -> Option<Share> {
    let label = format!("flow=\"{flow}\"");
    // Until the process has its assignment the gauge may not exist yet.
    text.contains("strait_mirror_member_partitions{").then(|| Share {
        partitions: sum(text, "strait_mirror_member_partitions", &[&label]),
        generation: sum(text, "strait_mirror_member_generation", &[&label]),
        rebalances: sum(text, "strait_mirror_rebalances_total", &[&label]),
        moved: sum(text, "strait_mirror_partitions_moved_total", &[&label]),
    })
}

fn share(member: &Member, flow: &str) -> Option<Share> {
    share_in(&scrape(&member.metrics)?, flow)
}

fn log_tails(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| {
            let log = m.strait.log_text();
            let tail: Vec<&str> = log.lines().rev().filter(|l| !l.contains(" DEBUG ")).take(25).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!(
                "--- process {} (log {}):\n{}\n",
                m.id,
                m.strait.log.display(),
                tail.join("\n")
            )
        })
        .collect()
}

/// Waits until the members own all partitions between them, each `PARTITIONS / n` or one
/// more, all at the same generation, twice in a row half a second apart; returns their
/// shares then.
fn wait_balanced(members: &[Member], flow: &str, within: Duration) -> Vec<Share> {
    let started = Instant::now();
    let (low, high) = (PARTITIONS / members.len(), PARTITIONS.div_ceil(members.len()));
    let mut seen_before: Option<Vec<f64>> = None;
    loop {
        let shares: Vec<Option<Share>> = members.iter().map(|m| share(m, flow)).collect();
        if let Some(shares) = shares.iter().copied().collect::<Option<Vec<Share>>>() {
            let total: f64 = shares.iter().map(|s| s.partitions).sum();
            let balanced = total == PARTITIONS as f64
                && shares
                    .iter()
                    .all(|s| (low as f64..=high as f64).contains(&s.partitions))
                && shares
                    .iter()
                    .all(|s| s.generation > 0.0 && s.generation == shares[0].generation);
            let now: Vec<f64> = shares.iter().flat_map(|s| [s.partitions, s.generation]).collect();
            if balanced && seen_before.as_ref() == Some(&now) {
                eprintln!(
                    "scale-out {flow}: balanced after {:.1} s: {:?}",
                    started.elapsed().as_secs_f64(),
                    shares.iter().map(|s| s.partitions).collect::<Vec<_>>()
                );
                return shares;
            }
            seen_before = balanced.then_some(now);
        } else {
            seen_before = None;
        }
        assert!(
            started.elapsed() < within,
            "flow {flow}: no balanced assignment of {PARTITIONS} partitions over {} processes within {within:?}; \
             last shares {shares:?}\n{}",
            members.len(),
            log_tails(members)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Two mock clusters with the topic on both, 64 partitions each: the mock answers no
/// CreateTopics, and strait's fallback (auto-creation) would make 4.
fn clusters(topic: &str) -> (MockCluster, MockCluster) {
    let mut source = MockCluster::start(3);
    let mut target = MockCluster::start(3);
    source.command(&format!("topic {topic} {PARTITIONS}"));
    target.command(&format!("topic {topic} {PARTITIONS}"));
    (source, target)
}

fn metrics_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// `strait mirror` with the instance id and session timeout given as flags.
fn start_by_flags(source: &str, target: &str, topic: &str, flow: &str, id: &'static str) -> Member {
    let metrics = metrics_addr();
    let mut args = mirror_args(source, target, topic, flow);
    args.extend(["--instance-id", id, "--session-timeout-ms", SESSION]);
    args.extend(["--heartbeat-interval-ms", "0", "--metrics", &metrics]);
    let strait = Strait::start(&args);
    Member { id, metrics, strait }
}

/// `strait mirror` with the instance id from `STRAIT_INSTANCE_ID`.
fn start_by_env(source: &str, target: &str, topic: &str, flow: &str, id: &'static str) -> Member {
    let metrics = metrics_addr();
    let mut args = mirror_args(source, target, topic, flow);
    args.extend([
        "--session-timeout-ms",
        SESSION,
        "--heartbeat-interval-ms",
        "0",
        "--metrics",
        &metrics,
    ]);
    let strait = Strait::start_with_env(&args, &[("STRAIT_INSTANCE_ID", id)]);
    Member { id, metrics, strait }
}

/// `strait run` with the instance id and session timeout in the config file. Fetches wait
/// at most 100 ms: the mock holds an empty fetch for its whole wait even when data
/// arrives meanwhile, which at the default 500 ms alone makes gaps of half a second.
fn start_by_config(source: &MockCluster, target: &MockCluster, topic: &str, flow: &str, id: &'static str) -> Member {
    let metrics = metrics_addr();
    let config = format!(
        "[metrics]\nlisten = \"{metrics}\"\n\n[clusters.src]\nbootstrap = {:?}\n[clusters.dst]\nbootstrap = {:?}\n\n\
         [[mirror]]\nname = \"{flow}\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"{}\"]\n\
         instance_id = \"{id}\"\nsession_timeout_ms = {SESSION_MS}\nheartbeat_interval_ms = 0\nfetch_max_wait_ms = 100\n",
        source.addresses(),
        target.addresses(),
        topic.replace('\\', "\\\\"),
    );
    let path = write_config(&format!("scale-{flow}-{id}"), &config);
    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    Member { id, metrics, strait }
}

/// Writes `count` numbered records, record i to partition i % 64.
fn produce_numbered(bootstrap: &str, topic: &str, count: usize) {
    produce_numbered_from(bootstrap, topic, 0, count);
}

/// Writes records `start` to `start + count`, record i to partition i % 64.
fn produce_numbered_from(bootstrap: &str, topic: &str, start: usize, count: usize) {
    let count = count.to_string();
    let start = start.to_string();
    let partitions = PARTITIONS.to_string();
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--count",
            &count,
            "--start",
            &start,
            "--partitions",
            &partitions,
            "--compression",
            "lz4",
        ],
    );
}

/// Every record from 0 to `total` is there, on its partition, first copies in order;
/// returns the number of duplicates.
fn complete(numbered: impl IntoIterator<Item = (i32, u64)>, total: u64) -> usize {
    duplicated(numbered, total).len()
}

/// Like `complete`, returning the record numbers seen a second time (or more).
fn duplicated(numbered: impl IntoIterator<Item = (i32, u64)>, total: u64) -> Vec<u64> {
    let mut by_partition: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for (p, seq) in numbered {
        by_partition.entry(p).or_default().push(seq);
    }
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for (p, seqs) in by_partition {
        let mut last = None;
        for seq in seqs {
            assert_eq!(seq % PARTITIONS as u64, p as u64, "record {seq} on partition {p}");
            if !seen.insert(seq) {
                duplicates.push(seq);
                continue;
            }
            assert!(last < Some(seq), "partition {p}: {seq} after {last:?}: order broken");
            last = Some(seq);
        }
    }
    let missing: Vec<u64> = (0..total).filter(|s| !seen.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} records lost, first ones: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    duplicates
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `tail_times.py produce`: one record to every partition each `interval_ms`, until
/// `finish`.
struct PacedProducer {
    child: Child,
    stdin: Option<ChildStdin>,
    acks: std::path::PathBuf,
}

#[derive(Debug, serde::Deserialize)]
struct Produced {
    written: u64,
    failures: Vec<String>,
    max_tick_gap_ms: f64,
    max_ack_gap_ms: f64,
    seconds: f64,
    /// When the source acknowledged each record (ms since the epoch), by record number.
    #[serde(skip)]
    acked_ms: Vec<i64>,
}

impl PacedProducer {
    fn start(bootstrap: &str, topic: &str, interval_ms: u32) -> PacedProducer {
        let acks = temp_dir("paced").join("acks.txt");
        let mut child = Command::new(python())
            .arg(peer_script("tail_times.py"))
            .args(["produce", "--bootstrap", bootstrap, "--topic", topic])
            .args([
                "--partitions",
                &PARTITIONS.to_string(),
                "--interval-ms",
                &interval_ms.to_string(),
            ])
            .arg("--acks-out")
            .arg(&acks)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the paced producer");
        let stdin = child.stdin.take();
        PacedProducer { child, stdin, acks }
    }

    fn finish(mut self) -> Produced {
        drop(self.stdin.take());
        let mut out = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = self.child.wait().unwrap();
        let mut produced: Produced =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("paced producer said {out:?} ({e}): {err}"));
        assert!(status.success(), "paced producer failed: {produced:?}\n{err}");
        produced.acked_ms = vec![0; produced.written as usize];
        for line in std::fs::read_to_string(&self.acks).unwrap().lines() {
            let (seq, at) = line.split_once(' ').unwrap_or_else(|| panic!("acks file: {line:?}"));
            produced.acked_ms[seq.parse::<usize>().unwrap()] = at.parse().unwrap();
        }
        assert!(
            produced.acked_ms.iter().all(|at| *at > 0),
            "a record without an acknowledgement"
        );
        produced
    }
}

impl Drop for PacedProducer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tail_times.py tail`: every record of the target topic with the time it arrived.
struct Tail {
    child: Child,
    stdin: Option<ChildStdin>,
    out: std::path::PathBuf,
}

/// A record as the tailing consumer got it.
struct Arrival {
    p: i32,
    seq: u64,
    at_ms: i64,
}

impl Tail {
    fn start(bootstrap: &str, topic: &str, name: &str) -> Tail {
        let out = temp_dir(name).join("arrivals.txt");
        let mut child = Command::new(python())
            .arg(peer_script("tail_times.py"))
            .args(["tail", "--bootstrap", bootstrap, "--topic", topic, "--idle", "4"])
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the tailing consumer");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the tailing consumer did not start");
        let stdin = child.stdin.take();
        Tail { child, stdin, out }
    }

    /// Stops once the target has gone quiet; every arrival.
    fn finish(mut self) -> Vec<Arrival> {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the tailing consumer never went quiet");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "the tailing consumer failed: {status}");
        std::fs::read_to_string(&self.out)
            .unwrap()
            .lines()
            .map(|l| {
                let mut words = l.split(' ');
                let mut next = || words.next().unwrap_or_else(|| panic!("tail wrote {l:?}"));
                Arrival {
                    p: next().parse().unwrap(),
                    seq: next().parse().unwrap(),
                    at_ms: next().parse().unwrap(),
                }
            })
            .collect()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn three_processes_share_a_flow_balanced_without_duplicates() {
    let topic = "so.even";
    let flow = "even";
    let (source, target) = clusters(topic);
    let members: Vec<Member> = ["a", "b", "c"]
        .into_iter()
        .map(|id| start_by_flags(&source.bootstrap, &target.bootstrap, "so\\.even", flow, id))
        .collect();
    // The mock's first join takes 3 s: until then no process has an assignment, and
    // none may say it is ready.
    for m in &members {
        wait_for_port(&m.metrics, Duration::from_secs(10));
    }
    for m in &members {
        let (status, body) = crate::metrics::get(&m.metrics, "/readyz");
        let owned = share(m, flow).map_or(0.0, |s| s.partitions);
        assert!(
            status == 503 || owned > 0.0,
            "process {} is ready ({status} {body}) before it has an assignment",
            m.id
        );
    }
    let shares = wait_balanced(&members, flow, Duration::from_secs(60));
    for m in &members {
        let (status, body) = crate::metrics::get(&m.metrics, "/readyz");
        assert_eq!(
            status, 200,
            "process {} has its assignment but is not ready: {body}",
            m.id
        );
        assert!(
            m.strait.log_shows("assignment received"),
            "process {}: {}",
            m.id,
            m.strait.log_text()
        );
    }

    let total = 20_000;
    produce_numbered(&source.bootstrap, topic, total);
    // Duplicates would count towards the consumer's total: read until the target is quiet.
    let got = consume_within(&target.bootstrap, &[topic], 2 * total, "read_committed", 6);
    let duplicates = complete(got.iter().map(|r| (r.p, seq_of(r))), total as u64);
    assert_eq!(duplicates, 0, "records copied twice with a stable group of three");

    // Each process copied its own partitions and nobody else's: record i went to
    // partition i % 64, so partitions 0-31 hold 313 records and 32-63 hold 312.
    let after: Vec<(Share, f64)> = members
        .iter()
        .map(|m| {
            let text = scrape(&m.metrics).expect("metrics of a running process");
            let copied = sum(&text, "strait_mirror_records_total", &[&format!("flow=\"{flow}\"")]);
            (share_in(&text, flow).expect("its share"), copied)
        })
        .collect();
    let copied: Vec<f64> = after.iter().map(|(_, c)| *c).collect();
    eprintln!("scale-out even: {total} records, copied per process {copied:?}, {duplicates} duplicates");
    assert_eq!(
        copied.iter().sum::<f64>(),
        total as f64,
        "records counted over the processes"
    );
    let stable = shares
        .iter()
        .zip(&after)
        .all(|(s, (a, _))| s.generation == a.generation);
    for ((m, before), (now, copied)) in members.iter().zip(&shares).zip(&after) {
        assert!(*copied > 0.0, "process {} copied nothing", m.id);
        if stable {
            let owned = before.partitions;
            assert!(
                (owned * 312.0..=owned * 313.0).contains(copied),
                "process {} owns {owned} partitions but copied {copied} records",
                m.id
            );
        } else {
            eprintln!("scale-out even: the group rebalanced while copying: {shares:?} then {now:?}");
        }
    }
    for m in members {
        assert!(m.strait.stop().success(), "process {} did not stop cleanly", m.id);
    }
}

#[test]
fn sigkill_of_one_of_three_moves_its_partitions() {
    let topic = "so.kill";
    let flow = "kill";
    let (source, target) = clusters(topic);
    let mut members: Vec<Member> = ["a", "b", "c"]
        .into_iter()
        .map(|id| start_by_env(&source.bootstrap, &target.bootstrap, "so\\.kill", flow, id))
        .collect();
    let before = wait_balanced(&members, flow, Duration::from_secs(60));

    // 64 partitions, one record each every 50 ms: 20 records a second per partition.
    let interval_ms = 50;
    let producing = Instant::now();
    let producer = PacedProducer::start(&source.bootstrap, topic, interval_ms);
    std::thread::sleep(Duration::from_secs(7));

    let victim = members.remove(1);
    let victim_share = share(&victim, flow).expect("the victim's share");
    assert!(victim_share.partitions > 0.0, "{victim_share:?}");
    let killed = Instant::now();
    let victim_metrics = victim.metrics.clone();
    victim.strait.kill();
    assert!(scrape(&victim_metrics).is_none(), "the killed process still answers");

    let within = Duration::from_millis(SESSION_MS) + Duration::from_secs(10);
    let after = wait_balanced(&members, flow, within);
    let moved_after = killed.elapsed();
    let survivors_before = [before[0], before[2]];
    for ((m, was), now) in members.iter().zip(survivors_before).zip(&after) {
        assert!(
            now.generation > was.generation,
            "process {}: generation {} then {}",
            m.id,
            was.generation,
            now.generation
        );
        assert!(
            now.rebalances > was.rebalances,
            "process {}: no rebalance counted: {was:?} then {now:?}",
            m.id
        );
        assert!(now.partitions > was.partitions, "process {} gained nothing", m.id);
    }
    let moved: f64 = after.iter().zip(survivors_before).map(|(n, w)| n.moved - w.moved).sum();
    assert!(
        moved >= victim_share.partitions,
        "{} partitions were the killed process's, the survivors count {moved} moved",
        victim_share.partitions
    );

    // About 20 s of writing in all.
    if let Some(rest) = Duration::from_secs(20).checked_sub(producing.elapsed()) {
        std::thread::sleep(rest);
    }
    let produced = producer.finish();
    assert!(produced.failures.is_empty(), "{:?}", produced.failures);
    let got = consume_within(
        &target.bootstrap,
        &[topic],
        3 * produced.written as usize,
        "read_committed",
        8,
    );
    let duplicates = complete(got.iter().map(|r| (r.p, seq_of(r))), produced.written);
    // The killed process can have copied, and not committed, at most what its partitions
    // got during a session timeout: anything more is data copied again from further back.
    let per_partition_per_second = 1000 / interval_ms as u64;
    let bound = victim_share.partitions as u64 * per_partition_per_second * SESSION_MS / 1000;
    eprintln!(
        "scale-out kill: {} records in {:.1} s, the killed process owned {} partitions, the survivors owned all \
         {PARTITIONS} {:.1} s after the kill; {duplicates} duplicates (bound {bound})",
        produced.written,
        produced.seconds,
        victim_share.partitions,
        moved_after.as_secs_f64()
    );
    assert!(
        duplicates as u64 <= bound,
        "{duplicates} duplicates, more than {bound}: the moved partitions were copied again from further back \
         than the killed process's last commit"
    );
    for m in members {
        assert!(m.strait.stop().success(), "process {} did not stop cleanly", m.id);
    }
}

/// Every process's records copied so far, per partition of the flow's topic.
type Copied = Vec<BTreeMap<i32, f64>>;

fn copied(members: &[Member], flow: &str) -> Copied {
    members
        .iter()
        .map(|m| {
            let text = scrape(&m.metrics).unwrap_or_else(|| panic!("process {}: no metrics", m.id));
            text.lines()
                .filter(|l| l.starts_with("strait_mirror_records_total{") && l.contains(&format!("flow=\"{flow}\"")))
                .filter_map(|l| {
                    let p = l.split("partition=\"").nth(1)?.split('"').next()?.parse().ok()?;
                    Some((p, l.rsplit(' ').next()?.parse().ok()?))
                })
                .collect()
        })
        .collect()
}

/// Which process copied partition `p` between two snapshots, if exactly one did.
fn copier(from: &Copied, to: &Copied, p: i32) -> Option<usize> {
    let grew: Vec<usize> = (0..to.len())
        .filter(|&i| to[i].get(&p).copied().unwrap_or(0.0) > from[i].get(&p).copied().unwrap_or(0.0))
        .collect();
    (grew.len() == 1).then(|| grew[0])
}

/// A partition's longest pause within `from`..`to` (ms since the epoch), from its
/// arrivals on the target (time, record number) in order: the longest time within the
/// window that a record was already on the source while the target got nothing newer
/// (a pause of the source itself is not the replicator's). With it, the longest plain
/// gap between arrivals within the window.
fn longest_pause(arrivals: &[(i64, u64)], acked_ms: &[i64], from: i64, to: i64) -> (i64, i64) {
    let (mut pause, mut gap) = (0, 0);
    let mut last = from;
    for &(at, seq) in arrivals {
        if at > from {
            let end = at.min(to);
            pause = pause.max(end - last.max(acked_ms[seq as usize]).max(from));
            gap = gap.max(end - last.max(from));
        }
        if at >= to {
            return (pause, gap);
        }
        last = at;
    }
    // Nothing arrived after the window: the partition stopped in it.
    let end = to - last.max(from);
    (pause.max(end), gap.max(end))
}

/// Where the duplicates are: per partition, how many, the record numbers and when their
/// second copies arrived, relative to the restart just before.
fn duplicates_by_restart(duplicates: &[u64], arrivals: &[Arrival], restarts: &[Restart], ids: &[&str]) -> String {
    let twice: HashSet<u64> = duplicates.iter().copied().collect();
    let mut seen = HashSet::new();
    let mut by_partition: BTreeMap<i32, Vec<(u64, i64)>> = BTreeMap::new();
    for a in arrivals.iter().filter(|a| twice.contains(&a.seq)) {
        if !seen.insert(a.seq) {
            by_partition.entry(a.p).or_default().push((a.seq, a.at_ms));
        }
    }
    let when = |at: i64| match restarts.iter().rev().find(|r| r.stopped_at <= at) {
        Some(r) => format!(
            "{:+.2} s after {}'s SIGTERM",
            (at - r.stopped_at) as f64 / 1000.0,
            ids[r.index]
        ),
        None => "before the restarts".to_owned(),
    };
    by_partition
        .iter()
        .map(|(p, copies)| {
            let (first, last) = (copies[0], copies[copies.len() - 1]);
            format!(
                "\n  partition {p}: {} records {}..={}, again from {} to {}",
                copies.len(),
                first.0,
                last.0,
                when(first.1),
                when(last.1)
            )
        })
        .collect()
}

/// One restart: which process, when it was told to stop, when the group was balanced
/// again, and who copied what just before and just after.
struct Restart {
    index: usize,
    owned: f64,
    stopped_at: i64,
    balanced_at: i64,
    settled_at: i64,
    before: (Copied, Copied),
    after: (Copied, Copied),
}

#[test]
fn rolling_restart_keeps_unmoved_partitions_flowing() {
    let topic = "so.roll";
    let flow = "roll";
    let (source, target) = clusters(topic);
    let ids = ["a", "b", "c"];
    let mut members: Vec<Member> = ids
        .into_iter()
        .map(|id| start_by_config(&source, &target, "so\\.roll", flow, id))
        .collect();
    wait_balanced(&members, flow, Duration::from_secs(60));

    let tail = Tail::start(&target.bootstrap, topic, "roll-tail");
    let interval_ms = 20;
    let producer = PacedProducer::start(&source.bootstrap, topic, interval_ms);
    let steady_from = now_ms() + 2000;
    std::thread::sleep(Duration::from_secs(4));
    let sample = |members: &[Member]| {
        let first = copied(members, flow);
        std::thread::sleep(Duration::from_secs(2));
        (first, copied(members, flow))
    };
    let mut before = sample(&members);
    let mut restarts = Vec::new();
    for index in 0..members.len() {
        let owned = share(&members[index], flow).expect("a share").partitions;
        let stopped_at = now_ms();
        let old = members.remove(index);
        let status = old.strait.stop();
        assert!(status.success(), "process {} stopped with {status}", old.id);
        members.insert(index, start_by_config(&source, &target, "so\\.roll", flow, ids[index]));
        wait_balanced(&members, flow, Duration::from_secs(40));
        let balanced_at = now_ms();
        let after = sample(&members);
        let settled_at = now_ms();
        eprintln!(
            "scale-out roll: process {} (owning {owned}) restarted, balanced again {:.1} s after its SIGTERM",
            ids[index],
            (balanced_at - stopped_at) as f64 / 1000.0
        );
        restarts.push(Restart {
            index,
            owned,
            stopped_at,
            balanced_at,
            settled_at,
            before,
            after: after.clone(),
        });
        before = after;
    }
    std::thread::sleep(Duration::from_secs(2));
    let steady_to = now_ms();
    let produced = producer.finish();
    let arrivals = tail.finish();

    eprintln!(
        "scale-out roll: {} records in {:.1} s, producer's largest gaps: {} ms between ticks, {} ms between \
         acknowledgements",
        produced.written, produced.seconds, produced.max_tick_gap_ms, produced.max_ack_gap_ms
    );
    assert!(produced.failures.is_empty(), "{:?}", produced.failures);
    // The producer's own pauses must be far below the gaps this test looks for (the
    // source's, seen in its acknowledgements, are taken out of each pause below).
    assert!(
        produced.max_tick_gap_ms < 300.0,
        "the producer itself paused: {} ms between ticks",
        produced.max_tick_gap_ms
    );
    let duplicates = duplicated(arrivals.iter().map(|a| (a.p, a.seq)), produced.written);
    eprintln!(
        "scale-out roll: {} arrivals, {} duplicates",
        arrivals.len(),
        duplicates.len()
    );

    let mut by_partition: BTreeMap<i32, Vec<(i64, u64)>> = BTreeMap::new();
    for a in &arrivals {
        by_partition.entry(a.p).or_default().push((a.at_ms, a.seq));
    }
    for times in by_partition.values_mut() {
        times.sort_unstable();
    }
    // Each partition's longest pause and longest gap between `from` and `to`.
    let pauses = |from: i64, to: i64, ps: &mut dyn Iterator<Item = i32>| -> BTreeMap<i32, (i64, i64)> {
        ps.map(|p| {
            let arrivals = by_partition.get(&p).map_or(&[][..], |a| &a[..]);
            (p, longest_pause(arrivals, &produced.acked_ms, from, to))
        })
        .collect()
    };

    // Before any restart and after the last one, every partition flows.
    let first = restarts[0].stopped_at;
    let last = restarts.last().unwrap().balanced_at + 1000;
    for (what, from, to) in [
        ("before the restarts", steady_from, first),
        ("after them", last, steady_to),
    ] {
        let all = pauses(from, to, &mut (0..PARTITIONS as i32));
        let worst = all.values().map(|(_, gap)| *gap).max().unwrap_or(0);
        eprintln!("scale-out roll: {what}: longest gap between arrivals {worst} ms");
        let slow: BTreeMap<i32, (i64, i64)> = all.into_iter().filter(|(_, (pause, _))| *pause >= 1000).collect();
        assert!(
            slow.is_empty(),
            "{what}, with no rebalance going on, partitions paused (partition: (pause, gap) in ms): {slow:?}"
        );
    }

    for r in &restarts {
        // A partition never moved across this restart when one surviving process copied
        // it just before and just after, and no other process copied any of it meanwhile.
        let unmoved: BTreeSet<i32> = (0..PARTITIONS as i32)
            .filter(|&p| {
                let Some(owner) = copier(&r.before.0, &r.before.1, p) else {
                    return false;
                };
                owner != r.index
                    && copier(&r.after.0, &r.after.1, p) == Some(owner)
                    && (0..members.len()).filter(|&i| i != owner).all(|i| {
                        let was = if i == r.index {
                            0.0
                        } else {
                            r.before.0[i].get(&p).copied().unwrap_or(0.0)
                        };
                        r.after.1[i].get(&p).copied().unwrap_or(0.0) <= was
                    })
                    && r.after.0[owner].get(&p) >= r.before.1[owner].get(&p)
            })
            .collect();
        let window = pauses(r.stopped_at, r.settled_at, &mut unmoved.iter().copied());
        let stalled: BTreeMap<&i32, &(i64, i64)> = window.iter().filter(|(_, (pause, _))| *pause >= 1000).collect();
        let worst = window.values().map(|(_, gap)| *gap).max().unwrap_or(0);
        let moved_worst = pauses(r.stopped_at, r.settled_at, &mut (0..PARTITIONS as i32))
            .into_iter()
            .filter(|(p, _)| !unmoved.contains(p))
            .map(|(_, (_, gap))| gap)
            .max()
            .unwrap_or(0);
        eprintln!(
            "scale-out roll: restart of {}: {} partitions never moved, longest gap among them {worst} ms \
             (among the others {moved_worst} ms)",
            ids[r.index],
            unmoved.len()
        );
        assert!(
            stalled.is_empty(),
            "restart of process {}: partitions it never owned and that never moved paused for a second or more \
             (partition: (pause, gap) in ms): {stalled:?}",
            ids[r.index]
        );
        // The others' partitions stay where they were: at most as many move as it had.
        let others = PARTITIONS as f64 - r.owned;
        assert!(
            unmoved.len() as f64 >= others - r.owned,
            "restart of process {} (owning {}): only {} of the other {others} partitions stayed put",
            ids[r.index],
            r.owned,
            unmoved.len()
        );
    }
    // A process hands a partition on only after committing what it copied of it, and a
    // graceful stop commits too: nothing is copied twice.
    assert!(
        duplicates.is_empty(),
        "{} records were copied twice: {}",
        duplicates.len(),
        duplicates_by_restart(&duplicates, &arrivals, &restarts, &ids)
    );
    for m in members {
        assert!(m.strait.stop().success(), "process {} did not stop cleanly", m.id);
    }
}

/// Tansu's group coordinator too: two processes with Tansu as the target share a flow
/// half and half, and every record arrives once. (Tansu numbers generations from 0.)
#[test]
fn two_processes_share_a_flow_whose_target_is_tansu() {
    let topic = "so.tansu";
    let flow = "tansu";
    let mut source = MockCluster::start(3);
    source.command(&format!("topic {topic} {PARTITIONS}"));
    let target = Tansu::start();
    let members: Vec<Member> = ["a", "b"]
        .into_iter()
        .map(|id| start_by_flags(&source.bootstrap, &target.bootstrap, "so\\.tansu", flow, id))
        .collect();
    let started = Instant::now();
    loop {
        let shares: Vec<f64> = members
            .iter()
            .map(|m| share(m, flow).map_or(0.0, |s| s.partitions))
            .collect();
        if shares == [32.0, 32.0] {
            eprintln!("scale-out tansu: halves after {:.1} s", started.elapsed().as_secs_f64());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no even share on Tansu: {shares:?}\n{}",
            log_tails(&members)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let total = 6_400;
    produce_numbered(&source.bootstrap, topic, total);
    let got = consume_within(&target.bootstrap, &[topic], 2 * total, "read_committed", 6);
    let duplicates = complete(got.iter().map(|r| (r.p, seq_of(r))), total as u64);
    assert_eq!(duplicates, 0, "records copied twice with a stable group of two");
    for m in members {
        assert!(m.strait.stop().success(), "process {} did not stop cleanly", m.id);
    }
}

/// A zombie: a process frozen (SIGSTOP) past its session is dropped by the group, the
/// other takes all the partitions, and when the frozen one runs again it sees at once
/// that it was silent for a session, copies nothing more of its old partitions, and
/// joins again for a new share. Nothing is lost and nothing is copied twice.
#[test]
fn a_frozen_process_is_replaced_and_copies_nothing_when_it_thaws() {
    let topic = "so.frozen";
    let flow = "frozen";
    let (source, target) = clusters(topic);
    let members: Vec<Member> = ["a", "b"]
        .into_iter()
        .map(|id| start_by_flags(&source.bootstrap, &target.bootstrap, "so\\.frozen", flow, id))
        .collect();
    let before = wait_balanced(&members, flow, Duration::from_secs(60));
    let batch = 3_200;
    produce_numbered_from(&source.bootstrap, topic, 0, batch);
    assert_eq!(
        consume(&target.bootstrap, &[topic], batch, "read_committed").len(),
        batch
    );

    members[1].strait.freeze();
    let started = Instant::now();
    loop {
        let a = share(&members[0], flow);
        if a.is_some_and(|s| s.partitions == PARTITIONS as f64 && s.generation > before[0].generation) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(SESSION_MS) + Duration::from_secs(15),
            "a never took the frozen process's partitions: {a:?}\n{}",
            log_tails(&members)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(share(&members[1], flow).is_none(), "the frozen process still answers");
    // Written while b is frozen: a copies it all, b must copy none of it.
    produce_numbered_from(&source.bootstrap, topic, batch, batch);
    assert_eq!(
        consume(&target.bootstrap, &[topic], 2 * batch, "read_committed").len(),
        2 * batch
    );

    members[1].strait.thaw();
    let log = &members[1].strait;
    assert!(
        log.log_shows_within("stopping its partitions", Duration::from_secs(20)),
        "the thawed process did not notice it was dropped: {}",
        log.log_text()
    );
    wait_balanced(&members, flow, Duration::from_secs(60));
    produce_numbered_from(&source.bootstrap, topic, 2 * batch, batch);
    let total = 3 * batch;
    let got = consume_within(&target.bootstrap, &[topic], 2 * total, "read_committed", 6);
    let duplicates = complete(got.iter().map(|r| (r.p, seq_of(r))), total as u64);
    assert_eq!(
        duplicates, 0,
        "the thawed process copied again what its successor had copied"
    );
    for m in members {
        assert!(m.strait.stop().success(), "process {} did not stop cleanly", m.id);
    }
}

/// A fourth process joining three: it takes a quarter of the partitions, each of them
/// from the process that owned it, and no other partition changes hands; the three
/// only give up partitions, and none of them copies anything twice.
#[test]
fn a_fourth_process_takes_a_quarter_and_nothing_else_moves() {
    let topic = "so.fourth";
    let flow = "fourth";
    let (source, target) = clusters(topic);
    let mut members: Vec<Member> = ["a", "b", "c"]
        .into_iter()
        .map(|id| start_by_flags(&source.bootstrap, &target.bootstrap, "so\\.fourth", flow, id))
        .collect();
    let before = wait_balanced(&members, flow, Duration::from_secs(60));
    let batch = 6_400;
    produce_numbered_from(&source.bootstrap, topic, 0, batch);
    assert_eq!(
        consume(&target.bootstrap, &[topic], batch, "read_committed").len(),
        batch
    );

    members.push(start_by_flags(
        &source.bootstrap,
        &target.bootstrap,
        "so\\.fourth",
        flow,
        "d",
    ));
    let after = wait_balanced(&members, flow, Duration::from_secs(60));
    let mut given_up = 0.0;
    for (m, (old, new)) in members.iter().zip(before.iter().zip(&after)) {
        let lost = old.partitions - new.partitions;
        // Moves counted since the first assignment: only what it released now.
        let moved = new.moved - old.moved;
        assert_eq!(
            moved, lost,
            "process {} moved {moved} partitions but its share fell by {lost}: it gained some too",
            m.id
        );
        given_up += lost;
    }
    assert_eq!(after[3].partitions, 16.0, "the fourth process's share");
    assert_eq!(after[3].moved, 16.0, "the fourth process gained only its share");
    assert_eq!(given_up, 16.0, "a quarter of the partitions moved, nothing else");
    produce_numbered_from(&source.bootstrap, topic, batch, batch);
    let total = 2 * batch;
    let got = consume_within(&target.bootstrap, &[topic], 2 * total, "read_committed", 6);
    let duplicates = complete(got.iter().map(|r| (r.p, seq_of(r))), total as u64);
    assert_eq!(duplicates, 0, "the moved partitions were copied twice");
    eprintln!(
        "scale-out fourth: shares {:?} -> {:?}, 16 moved, 0 duplicates",
        before.iter().map(|s| s.partitions).collect::<Vec<_>>(),
        after.iter().map(|s| s.partitions).collect::<Vec<_>>()
    );
    for m in members {
        assert!(m.strait.stop().success(), "process {} did not stop cleanly", m.id);
    }
}
