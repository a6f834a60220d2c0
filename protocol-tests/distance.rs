//! strait at distance: clusters reached only through a relay of the test's own that
//! delays every byte in each direction (this machine's kernel has no netem), so the
//! long-haul paths run in the test suite and not only in the benchmark.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Listens on a port of its own and relays each connection to `upstream`, every chunk
/// held back `one_way` in each direction, in order.
pub struct DelayRelay {
    pub addr: String,
    /// Connections relayed so far.
    pub connections: Arc<AtomicUsize>,
}

impl DelayRelay {
    pub fn start(upstream: &str, one_way: Duration) -> DelayRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream = upstream.to_owned();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::Relaxed);
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                delayed_pipe(client, server, one_way);
                delayed_pipe(s2, c2, one_way);
            }
        });
        DelayRelay { addr, connections }
    }
}

/// Bytes read from `from` are written to `to` once `delay` has passed since they were
/// read; the end of `from` ends `to`'s writing side after the bytes before it.
fn delayed_pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = from.read(&mut buf).unwrap_or(0);
            if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() || n == 0 {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if bytes.is_empty() || to.write_all(&bytes).is_err() {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
        }
    });
}

/// A cluster section whose every broker is reached through a relay: strait dials the
/// relay for each address the brokers advertise.
fn relayed_cluster(name: &str, brokers: &[String], one_way: Duration, relays: &mut Vec<DelayRelay>) -> String {
    let mut map = String::new();
    let mut bootstrap = Vec::new();
    for broker in brokers {
        let relay = DelayRelay::start(broker, one_way);
        map += &format!("\"{broker}\" = \"{}\"\n", relay.addr);
        bootstrap.push(format!("\"{}\"", relay.addr));
        relays.push(relay);
    }
    format!(
        "[clusters.{name}]\nbootstrap = [{}]\n[clusters.{name}.address_map]\n{map}",
        bootstrap.join(", ")
    )
}

/// The records of each partition, in the order the target holds them, with no gap and
/// nothing twice.
fn assert_whole_and_in_order(got: &[Seen], total: u64, partitions: u64) {
    let mut by_partition: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for r in got {
        by_partition.entry(r.p).or_default().push(seq_of(r));
    }
    for (p, seqs) in &by_partition {
        let expected: Vec<u64> = (0..total).filter(|s| s % partitions == *p as u64).collect();
        assert_eq!(seqs, &expected, "partition {p}");
    }
    assert_eq!(by_partition.len() as u64, partitions);
}

fn copy_at_distance(source_one_way: Duration, target_one_way: Duration, name: &str) {
    let mut source = MockCluster::start(3);
    let mut target = MockCluster::start(1);
    // Two partitions per source broker, so each broker's share is fetched over both of
    // its fetch connections (fetch_connections_per_broker's default).
    let partitions = 6;
    source.command(&format!("topic d.{name} {partitions}"));
    target.command(&format!("topic d.{name} {partitions}"));
    let total = 6000;
    let topic = format!("d.{name}");
    let (count, spread) = (total.to_string(), partitions.to_string());
    let args = ["--bootstrap", &source.bootstrap, "--topic", &topic, "--count", &count];
    run_peer(
        "produce.py",
        &[&args[..], &["--partitions", &spread, "--compression", "lz4"]].concat(),
    );
    let mut relays = Vec::new();
    let src = relayed_cluster("src", &source.addresses(), source_one_way, &mut relays);
    let dst = relayed_cluster("dst", &target.addresses(), target_one_way, &mut relays);
    let config = format!(
        "{src}\n{dst}\n[[mirror]]\nname = \"{name}\"\nsource = \"src\"\ntarget = \"dst\"\n\
         topics = [\"d\\\\.{name}\"]\nheartbeat_interval_ms = 0\n"
    );
    let path = write_config(name, &config);
    let started = Instant::now();
    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    let got = consume_within(&target.bootstrap, &[&topic], total, "read_committed", 60);
    eprintln!(
        "{total} records through a relay ({source_one_way:?} each way to the source, {target_one_way:?} to the target) in {:?}",
        started.elapsed()
    );
    // Dialling, metadata, a fetch and a produce each cross the relay at least once.
    let round_trip = 2 * source_one_way.max(target_one_way);
    assert!(started.elapsed() >= 4 * round_trip, "the relay's delay was not felt");
    assert_eq!(got.len(), total, "{}", strait.log_text());
    assert_whole_and_in_order(&got, total as u64, partitions);
    for relay in &relays[..source.addresses().len()] {
        let seen = relay.connections.load(Ordering::Relaxed);
        assert!(
            seen >= 2,
            "a source broker saw {seen} connection(s), not one per fetch lane"
        );
    }
    assert!(strait.stop().success());
}

#[test]
fn a_flow_with_its_source_100ms_away_copies_every_record_in_order() {
    copy_at_distance(Duration::from_millis(50), Duration::ZERO, "far_source");
}

#[test]
fn a_flow_with_its_target_100ms_away_copies_every_record_in_order() {
    copy_at_distance(Duration::ZERO, Duration::from_millis(50), "far_target");
}
