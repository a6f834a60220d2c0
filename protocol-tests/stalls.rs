//! One misbehaving broker must stall nothing but its own partitions: a source broker
//! that accepts connections and never answers, or answers ApiVersions and then nothing
//! (a stand-in of the test's own in front of a real mock broker), holds back only the
//! partitions it leads, and the flow says so (log, `/readyz`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::metrics::get;

/// How the stand-in misbehaves.
#[derive(Clone, Copy)]
enum Silence {
    /// Accepts and never sends a byte.
    FromTheStart,
    /// Relays the first request and its answer (ApiVersions) to the real broker, then
    /// reads on and never answers again.
    AfterApiVersions,
}

/// A broker stand-in that accepts on a port of its own; counts the connections it got.
struct Blackhole {
    addr: String,
    accepted: Arc<AtomicUsize>,
}

impl Blackhole {
    fn start(silence: Silence, real: &str) -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (count, real) = (accepted.clone(), real.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                let real = real.clone();
                std::thread::spawn(move || hold(client, silence, &real));
            }
        });
        Blackhole { addr, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn read_frame(from: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).ok()?;
    let mut frame = len.to_vec();
    frame.resize(4 + u32::from_be_bytes(len) as usize, 0);
    from.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

/// Keeps a client connection open and unanswered (after the first answer, if asked to)
/// until the client goes.
fn hold(mut client: TcpStream, silence: Silence, real: &str) {
    if let Silence::AfterApiVersions = silence {
        let Ok(mut broker) = TcpStream::connect(real) else {
            return;
        };
        let Some(request) = read_frame(&mut client) else { return };
        broker.write_all(&request).unwrap();
        let Some(answer) = read_frame(&mut broker) else { return };
        let _ = client.write_all(&answer);
    }
    let mut sink = [0u8; 4096];
    while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
}

fn config(source: &MockCluster, target: &str, silent: &str, metrics: &str) -> String {
    let bootstrap: Vec<String> = source.addresses().iter().map(|a| format!("\"{a}\"")).collect();
    let broker_3 = &source.addresses()[2];
    format!(
        "[metrics]\nlisten = \"{metrics}\"\n\n\
         [clusters.src]\nbootstrap = [{}]\nconnect_timeout_ms = 1500\nrequest_timeout_ms = 3000\n\
         [clusters.src.address_map]\n\"{broker_3}\" = \"{silent}\"\n\
         [clusters.dst]\nbootstrap = [\"{target}\"]\n\n\
         [[mirror]]\nname = \"stall\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"f\\\\.stall\"]\n\
         heartbeat_interval_ms = 0\nstuck_after_secs = 4\n",
        bootstrap.join(", ")
    )
}

/// Partitions 0, 1 and 3 are led by brokers 1 and 2; partition 2 by broker 3, which
/// strait reaches only through the stand-in.
fn silent_broker_holds_back_only_its_partitions(silence: Silence) {
    let mut source = MockCluster::start(3);
    let target = MockCluster::start(1);
    source.command("topic f.stall 4");
    for (partition, broker) in [(0, 1), (1, 2), (2, 3), (3, 1)] {
        source.command(&format!("leader f.stall {partition} {broker}"));
    }
    produce_records(&source.bootstrap, "f.stall", 0, 2000, "lz4", "confluent");
    let silent = Blackhole::start(silence, &source.addresses()[2]);
    let metrics = format!("127.0.0.1:{}", free_port());
    let path = write_config("stall", &config(&source, &target.bootstrap, &silent.addr, &metrics));
    let started = Instant::now();
    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);

    let got = consume_within(&target.bootstrap, &["f.stall"], 1500, "read_committed", 20);
    let took = started.elapsed();
    let mut per_partition = [0usize; 4];
    for r in &got {
        per_partition[r.p as usize] += 1;
    }
    assert_eq!(
        per_partition,
        [500, 500, 0, 500],
        "the healthy brokers' partitions, all of them"
    );
    assert!(silent.accepted() > 0, "strait never dialled the silent broker");
    eprintln!("healthy partitions copied in {took:?} beside a silent broker");

    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = get(&metrics, "/readyz");
        // Not ready also names, for a moment, a flow still waiting for its partitions.
        if (status == 503 && body.contains("f.stall/")) || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("f.stall/2"), "/readyz names the held partition: {body}");
    assert!(!body.contains("f.stall/0") && !body.contains("f.stall/1"), "{body}");
    assert!(strait.stop().success());
}

#[test]
fn a_source_broker_that_accepts_and_never_answers_holds_back_only_its_own_partitions() {
    silent_broker_holds_back_only_its_partitions(Silence::FromTheStart);
}

#[test]
fn a_source_broker_that_answers_api_versions_then_nothing_holds_back_only_its_own_partitions() {
    silent_broker_holds_back_only_its_partitions(Silence::AfterApiVersions);
}
