//! The proxy under trouble: garbage floods beside good clients, a broker restarting
//! behind it, brokers it could not see at startup, clients that close (after an acks=0
//! produce too) or send slowly, requests in flight at SIGTERM, and the DescribeCluster
//! answer a newer admin client relies on.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::proxy::{api_versions_request, proxy, raw_round_trip};

/// Bytes a hostile or broken client might send, one connection each.
fn garbage(round: usize) -> Vec<u8> {
    match round % 5 {
        0 => vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3],      // a 2 GB frame
        1 => vec![0xff, 0xff, 0xff, 0xf0, 9],            // a negative length
        2 => vec![0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef],   // a frame too short for a header
        3 => vec![0, 0, 0, 40, 0, 3, 0, 12, 0, 0, 0, 1], // a header, then silence and close
        _ => (0..64u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(round as u8))
            .collect(),
    }
}

#[test]
fn a_flood_of_garbage_connections_leaves_good_clients_undisturbed() {
    let mock = MockCluster::start(3);
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..4)
        .map(|t| {
            let (stop, sent, listen) = (stop.clone(), sent.clone(), listen.clone());
            std::thread::spawn(move || {
                let mut round = t;
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(mut s) = TcpStream::connect(&listen) {
                        let _ = s.write_all(&garbage(round));
                        sent.fetch_add(1, Ordering::SeqCst);
                    }
                    round += 4;
                }
            })
        })
        .collect();
    produce_records(&listen, "flooded", 0, 2000, "lz4", "confluent");
    let got = consume(&listen, &["flooded"], 2000, "read_committed");
    stop.store(true, Ordering::SeqCst);
    flooders.into_iter().for_each(|f| f.join().unwrap());
    let seqs: HashSet<u64> = got.iter().map(seq_of).collect();
    assert_eq!(seqs.len(), 2000, "every record went through the proxy during the flood");
    let flood = sent.load(Ordering::SeqCst);
    assert!(flood >= 100, "only {flood} garbage connections were made");
    assert!(strait.log_shows("connection closed"), "{}", strait.log_text());
    eprintln!("garbage flood: {flood} hostile connections while 2000 records went through");
    assert!(strait.stop().success());
}

#[test]
fn clients_recover_through_the_proxy_when_a_broker_goes_down_and_up() {
    let mut mock = MockCluster::start(3);
    mock.command("topic bounced 4");
    for p in 0..4 {
        mock.command(&format!("leader bounced {p} {}", 1 + p % 3));
    }
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    let target = listen.clone();
    let producer = std::thread::spawn(move || {
        for start in (0..4000).step_by(500) {
            produce_records(&target, "bounced", start, 500, "none", "confluent");
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    mock.command("down 2");
    std::thread::sleep(Duration::from_secs(3));
    mock.command("up 2");
    producer.join().unwrap();
    let got = consume_within(&listen, &["bounced"], 4000, "read_committed", 20);
    let seqs: HashSet<u64> = got.iter().map(seq_of).collect();
    assert_eq!(
        seqs.len(),
        4000,
        "every record arrives through the proxy after the restart"
    );
    assert!(strait.stop().success());
}

/// Relays one TCP listener to `to`, one thread pair per connection.
fn start_relay(listener: TcpListener, to: String) {
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(upstream) = TcpStream::connect(&to) else {
                continue;
            };
            let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let (mut c, mut u) = (client, upstream);
            std::thread::spawn(move || std::io::copy(&mut c2, &mut u2));
            std::thread::spawn(move || std::io::copy(&mut u, &mut c));
        }
    });
}

#[test]
fn brokers_the_proxy_could_not_see_at_startup_get_listeners_when_they_appear() {
    let mock = MockCluster::start(3);
    // The upstream bootstrap address answers nothing yet.
    let late = format!("127.0.0.1:{}", free_port());
    let (strait, listen) = proxy(&late, &[]);
    assert!(
        strait.log_shows("cannot read upstream metadata yet"),
        "{}",
        strait.log_text()
    );
    start_relay(
        TcpListener::bind(&late).unwrap(),
        mock.bootstrap.split(',').next().unwrap().to_owned(),
    );
    produce_records(&listen, "late", 0, 300, "none", "confluent");
    assert_eq!(consume(&listen, &["late"], 300, "read_committed").len(), 300);
    let brokers = list(&listen).brokers;
    assert_eq!(brokers.len(), 3, "{brokers:?}");
    assert!(strait.log_shows("broker listener open"), "{}", strait.log_text());
    assert!(strait.stop().success());
}

#[test]
fn a_client_that_closes_is_answered_and_let_go_even_if_the_broker_keeps_its_side_open() {
    let mock = MockCluster::start(1);
    // The relay passes no FIN on: the broker side stays open however long the proxy waits.
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = relay.local_addr().unwrap().to_string();
    start_relay(relay, mock.bootstrap.clone());
    let (strait, listen) = proxy(&upstream, &[]);
    let mut client = TcpStream::connect(&listen).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = api_versions_request(3, 7);
    let mut frame = (request.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    client.write_all(&frame).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let closed = client.read_to_end(&mut answer);
    assert!(closed.is_ok(), "the proxy kept the connection open: {closed:?}");
    assert_eq!(answer.get(4..8), Some(&7i32.to_be_bytes()[..]), "the answer came first");
    assert!(strait.stop().success());
}

/// A broker stand-in for the moment a client has closed: it reads a Produce's header,
/// answers only after a pause (as brokers answer acks=0 produces with errors), and then
/// reads the rest. It sends how many bytes of the request it could read.
fn start_late_answering_broker() -> (String, std::sync::mpsc::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (read, bytes_read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut head = [0u8; 12];
            // The proxy's own metadata lookup gets nothing: only the client's Produce counts.
            if conn.read_exact(&mut head).is_err() || head[4..6] != [0, 0] {
                continue;
            }
            std::thread::sleep(Duration::from_millis(500));
            let mut answer = 4i32.to_be_bytes().to_vec();
            answer.extend_from_slice(&head[8..12]);
            let _ = conn.write_all(&answer);
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest);
            let _ = read.send(head.len() + rest.len());
        }
    });
    (addr, bytes_read)
}

/// A client that sends an acks=0 produce and closes needs no answer, but the broker must
/// still get the whole request: the proxy may not close its side first, or the broker's
/// late answer draws a reset that discards what the broker had not read yet.
#[test]
fn an_acks_zero_produce_from_a_client_that_closes_reaches_the_broker_whole() {
    let (broker, bytes_read) = start_late_answering_broker();
    let (strait, listen) = proxy(&broker, &[]);
    let mut client = TcpStream::connect(&listen).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // More than the broker's socket takes in unread (128 KiB on Linux loopback): the
    // rest still waits in the proxy's socket when the broker answers.
    let produce = large_produce(9, 0, 400_000);
    client.write_all(&produce).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let closed = client.read_to_end(&mut answer);
    assert!(
        closed.is_ok() && answer.is_empty(),
        "no answer, then EOF: {closed:?} {answer:?}"
    );
    let read = bytes_read
        .recv_timeout(Duration::from_secs(10))
        .expect("the broker read the request");
    assert_eq!(read, produce.len(), "the broker read the whole request");
    assert!(strait.stop().success());
}

/// A broker stand-in that answers every Produce at once, acks=0 ones too (as brokers do
/// with errors), each with a body of its correlation id alone.
fn start_broker_answering_every_produce() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || loop {
                let mut len = [0u8; 4];
                if conn.read_exact(&mut len).is_err() {
                    return;
                }
                let mut request = vec![0u8; i32::from_be_bytes(len) as usize];
                // The proxy's own metadata lookup gets nothing: only Produce is answered.
                if conn.read_exact(&mut request).is_err() || request.get(..2) != Some(&[0, 0]) {
                    return;
                }
                let mut answer = 4i32.to_be_bytes().to_vec();
                answer.extend_from_slice(&request[4..8]);
                if conn.write_all(&answer).is_err() {
                    return;
                }
            });
        }
    });
    addr
}

/// A client that asked for no answer gets none, even from a broker that sends one: a
/// client that stopped reading would answer it with a reset, and the reset would discard
/// the requests it sent that the proxy had not read yet.
#[test]
fn an_answer_to_an_acks_zero_produce_never_reaches_the_client() {
    let broker = start_broker_answering_every_produce();
    let (strait, listen) = proxy(&broker, &[]);
    let mut client = TcpStream::connect(&listen).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    client.write_all(&large_produce(5, 0, 100)).unwrap();
    client.write_all(&large_produce(6, 1, 100)).unwrap();
    let mut len = [0u8; 4];
    client.read_exact(&mut len).unwrap();
    let mut answer = vec![0u8; i32::from_be_bytes(len) as usize];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(answer, 6i32.to_be_bytes(), "the first answer is the acks=1 produce's");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let closed = client.read_to_end(&mut rest);
    assert!(closed.is_ok() && rest.is_empty(), "then EOF: {closed:?} {rest:?}");
    assert!(strait.stop().success());
}

/// A Produce v3 of one record: from 64 KiB on, a request the proxy passes on as it arrives.
pub(crate) fn large_produce(correlation: i32, acks: i16, value_len: usize) -> Vec<u8> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: Some(vec![7u8; value_len].into()),
        headers: Default::default(),
    };
    let mut records = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut records, [&record], &options).unwrap();
    let mut buf = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(0)
        .with_request_api_version(3)
        .with_correlation_id(correlation)
        .encode(&mut buf, 1)
        .unwrap();
    let data = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(records.freeze()));
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("slow")))
            .with_partition_data(vec![data])])
        .encode(&mut buf, 3)
        .unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    frame
}

/// A large request that pauses half way, within its deadline (the idle timeout from
/// its start, plus time for its size), while another is in flight, reaches the broker
/// whole, and both are answered in order.
#[test]
fn a_large_request_pausing_half_way_goes_through_whole() {
    let mut mock = MockCluster::start(1);
    let (strait, listen) = proxy(&mock.bootstrap, &["--idle-timeout-secs", "5"]);
    mock.command("rtt 1 1500");
    let mut client = TcpStream::connect(&listen).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut first = (api_versions_request(0, 1).len() as i32).to_be_bytes().to_vec();
    first.extend_from_slice(&api_versions_request(0, 1));
    client.write_all(&first).unwrap();
    let produce = large_produce(2, 1, 100_000);
    client.write_all(&produce[..50_000]).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    client.write_all(&produce[50_000..]).unwrap();
    for correlation in [1i32, 2] {
        let mut len = [0u8; 4];
        client.read_exact(&mut len).expect("an answer");
        let mut answer = vec![0u8; i32::from_be_bytes(len) as usize];
        client.read_exact(&mut answer).unwrap();
        assert_eq!(answer[..4], correlation.to_be_bytes(), "answers in order");
    }
    assert!(strait.stop().success());
}

#[test]
fn requests_in_flight_at_sigterm_are_answered_before_the_proxy_exits() {
    let mut mock = MockCluster::start(1);
    let (mut strait, listen) = proxy(&mock.bootstrap, &[]);
    let mut client = TcpStream::connect(&listen).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A first answer shows the connection is up to the broker, so the request below
    // is the only thing the proxy still has to do when the signal comes.
    raw_round_trip(&mut client, &api_versions_request(0, 41)).expect("the proxy serves");
    mock.command("rtt 1 1500");
    let asked = Instant::now();
    let answer = std::thread::spawn(move || raw_round_trip(&mut client, &api_versions_request(0, 42)));
    std::thread::sleep(Duration::from_millis(300));
    strait.terminate();
    let answer = answer.join().unwrap().expect("the request in flight is answered");
    assert_eq!(&answer[..4], &42i32.to_be_bytes());
    assert!(
        asked.elapsed() >= Duration::from_millis(1400),
        "the answer waited for the broker"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = strait.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not exit: {}",
            strait.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{}", strait.log_text());
    assert!(TcpStream::connect(&listen).is_err(), "a stopped proxy accepts nothing");
}

/// DescribeCluster v0 (flexible), as an admin client sends it.
fn describe_cluster_request(correlation: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&60i16.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&correlation.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(b"t");
    b.extend_from_slice(&[0, 0, 0]); // header tags; include_cluster_authorized_operations; body tags
    b
}

/// The (node, host, port) of each broker in a DescribeCluster v0 answer. Test-only:
/// every length here fits one varint byte.
fn described_brokers(answer: &[u8]) -> Vec<(i32, String, i32)> {
    let i32_at = |at: usize| i32::from_be_bytes(answer[at..at + 4].try_into().unwrap());
    // correlation id, header tags, throttle, error code, null error message
    let mut at = 4 + 1 + 4 + 2 + 1;
    at += answer[at] as usize; // cluster id: length + 1, then the bytes
    at += 4; // controller
    let count = answer[at] as usize - 1;
    at += 1;
    let mut brokers = Vec::new();
    for _ in 0..count {
        let node = i32_at(at);
        let host_len = answer[at + 4] as usize - 1;
        let host = String::from_utf8(answer[at + 5..at + 5 + host_len].to_vec()).unwrap();
        at += 5 + host_len;
        brokers.push((node, host, i32_at(at)));
        at += 4;
        at += answer[at].max(1) as usize; // rack: null (0) or length + 1
        at += 1; // tags
    }
    brokers
}

#[test]
fn describe_cluster_through_the_proxy_names_only_the_proxy() {
    let tansu = Tansu::start();
    let mut direct = TcpStream::connect(&tansu.bootstrap).unwrap();
    let upstream = described_brokers(&raw_round_trip(&mut direct, &describe_cluster_request(1)).unwrap());
    let (node, _, _) = upstream[0].clone();
    // Broker N listens on base + N: pick a base that puts this node on a free port.
    let base = (free_port() as i32 - node).to_string();
    let (strait, listen) = proxy(&tansu.bootstrap, &["--port-base", &base]);
    let mut through = TcpStream::connect(&listen).unwrap();
    through.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let answer = raw_round_trip(&mut through, &describe_cluster_request(2)).expect("an answer");
    let rewritten = described_brokers(&answer);
    let port: i32 = base.parse::<i32>().unwrap() + node;
    assert_eq!(
        rewritten,
        [(node, "127.0.0.1".to_owned(), port)],
        "upstream said {upstream:?}"
    );
    let mut broker = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    broker.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(
        raw_round_trip(&mut broker, &api_versions_request(0, 3)).is_some(),
        "the advertised broker port answers"
    );
    assert!(strait.stop().success());
}

/// A panic in one client connection (a test-only switch, `STRAIT_TEST_PANIC`, makes the
/// second one panic) is the proxy's error: logged, the proxy's `up` at 0 while it is
/// down, and the proxy started again with back-off, serving clients as before.
#[test]
fn a_panic_in_a_connection_restarts_the_proxy_and_it_serves_again() {
    let cluster = MockCluster::start(1);
    let metrics = format!("127.0.0.1:{}", free_port());
    let panic_at = [("STRAIT_TEST_PANIC", "connection:2")];
    let (strait, listen) = crate::proxy::proxy_with_env(&cluster.bootstrap, &["--metrics", &metrics], &panic_at);
    drop(TcpStream::connect(&listen).unwrap());
    drop(TcpStream::connect(&listen).unwrap());
    assert!(strait.log_shows("a proxy task panicked"), "{}", strait.log_text());
    assert!(
        strait.log_shows("proxy failed; starting it again"),
        "{}",
        strait.log_text()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let listing = loop {
        let out = std::process::Command::new(python())
            .arg(peer_script("consume.py"))
            .args(["--bootstrap", &listen, "--list"])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not serve again: {}",
            strait.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    // The broker as the proxy advertises it, not as the cluster does.
    let upstream = cluster.bootstrap.as_str();
    assert!(
        listing.contains("127.0.0.1:") && !listing.contains(upstream),
        "{listing}"
    );
    let (status, _) = crate::metrics::get(&metrics, "/readyz");
    assert_eq!(status, 200);
    assert!(strait.stop().success());
}
