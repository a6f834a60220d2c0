//! `strait proxy` in front of real brokers, used by real clients: kcat, confluent-kafka
//! (librdkafka 2.16) and kafka-python.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

/// A proxy in front of `upstream`, listening on 127.0.0.1; returns it and its bootstrap.
pub(crate) fn proxy(upstream: &str, extra: &[&str]) -> (Strait, String) {
    proxy_with_env(upstream, extra, &[])
}

pub(crate) fn proxy_with_env(upstream: &str, extra: &[&str], env: &[(&str, &str)]) -> (Strait, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = free_port_base(4).to_string();

    let mut args = vec!["proxy", "--upstream", upstream, "--listen", &listen];
    if !extra.contains(&"--advertise") {
        args.extend(["--advertise", "127.0.0.1"]);
    }
    if !extra.contains(&"--port-base") {
        args.extend(["--port-base", &base]);
    }
    args.extend(extra);
    let strait = Strait::start_with_env(&args, env);
    wait_for_port(&listen, Duration::from_secs(10));
    (strait, listen)
}

fn kcat(args: &[&str]) -> String {
    let out = Command::new("kcat")
        .args(args)
        .output()
        .expect("kcat is installed by scripts/setup.sh");
    assert!(
        out.status.success(),
        "kcat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').unwrap().1
}

#[test]
fn kcat_lists_every_broker_at_the_proxy_and_no_upstream_address_leaks() {
    let mock = MockCluster::start(3);
    produce_records(&mock.bootstrap, "listed", 0, 20, "none", "confluent");
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    let listing = kcat(&["-b", &listen, "-L"]);
    let brokers: Vec<&str> = listing
        .lines()
        .filter(|l| l.trim_start().starts_with("broker "))
        .collect();
    assert_eq!(brokers.len(), 3, "{listing}");
    for line in &brokers {
        assert!(line.contains(" at 127.0.0.1:"), "{line}");
    }
    for upstream in mock.addresses() {
        assert!(
            !listing.contains(port_of(&upstream)),
            "upstream {upstream} leaked:\n{listing}"
        );
    }
    assert!(strait.stop().success());
}

#[test]
fn clients_produce_and_consume_through_the_proxy_with_a_consumer_group() {
    let mock = MockCluster::start(3);
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    produce_records(&listen, "through", 0, 300, "lz4", "confluent");
    produce_records(&listen, "through", 300, 200, "gzip", "kafka-python");
    let mut input = String::new();
    for i in 0..100 {
        input += &format!("kcat-{i}\n");
    }
    let mut child = Command::new("kcat")
        .args(["-b", &listen, "-P", "-t", "through", "-p", "0"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let direct = consume(&mock.bootstrap, &["through"], 600, "read_committed");
    assert_eq!(direct.len(), 600, "every record reached the cluster");
    for (group, client) in [("via-proxy", "confluent"), ("via-proxy-python", "kafka-python")] {
        let args = [
            "--bootstrap",
            &listen,
            "--topic",
            "through",
            "--group",
            group,
            "--client",
            client,
            "--expect",
            "600",
            "--idle",
            "15",
        ];
        assert_eq!(
            run_peer("consume.py", &args).lines().count(),
            600,
            "a {client} consumer group through the proxy reads everything"
        );
    }
    let via_kcat = kcat(&[
        "-b",
        &listen,
        "-C",
        "-t",
        "through",
        "-e",
        "-q",
        "-X",
        "check.crcs=true",
    ]);
    assert_eq!(via_kcat.lines().count(), 600);
    assert!(strait.stop().success());
}

/// Lines of about 1 KB that lz4 cannot shrink much, numbered in order.
fn noisy_lines(count: usize) -> Vec<String> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|i| {
            let noise: String = (0..62)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    format!("{:016x}", state)
                })
                .collect();
            format!("{i:06}-{noise}")
        })
        .collect()
}

/// Produces `lines` to partition 0 of `topic` with kcat, in batches of up to a megabyte.
fn kcat_produce(bootstrap: &str, topic: &str, lines: &[String]) {
    let mut child = Command::new("kcat")
        .args([
            "-b",
            bootstrap,
            "-P",
            "-t",
            topic,
            "-p",
            "0",
            "-X",
            "linger.ms=200",
            "-X",
            "message.timeout.ms=30000",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Partition 0 of `topic` as kcat reads it, CRCs checked, with extra kcat options.
/// kcat retries a broken connection without end, so a minute bounds it.
fn kcat_consume(bootstrap: &str, topic: &str, extra: &[&str]) -> String {
    let mut args = vec!["60", "kcat", "-b", bootstrap, "-C", "-t", topic, "-p", "0", "-e", "-q"];
    args.extend(["-X", "check.crcs=true"]);
    args.extend(extra);
    let out = Command::new("timeout").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "timeout {args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Produce requests of megabytes take the spliced path, where their bodies never
/// enter the proxy: every record must still reach the broker whole and in order.
#[test]
fn large_produce_requests_through_the_proxy_arrive_byte_for_byte() {
    let mock = MockCluster::start(3);
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    let lines = noisy_lines(3000);
    kcat_produce(&listen, "large", &lines);
    assert!(
        kcat_consume(&mock.bootstrap, "large", &[])
            .lines()
            .eq(lines.iter().map(String::as_str)),
        "the broker holds every record as sent"
    );
    assert!(strait.stop().success());
}

/// Fetch answers of a megabyte to a client below Fetch v16 carry no node endpoints,
/// pass unchanged and take the spliced path: every record must still reach the client
/// whole and in order.
#[test]
fn large_fetch_answers_through_the_proxy_arrive_byte_for_byte() {
    let mock = MockCluster::start(3);
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    let lines = noisy_lines(3000);
    kcat_produce(&mock.bootstrap, "fetched", &lines);
    // Without ApiVersions, librdkafka speaks Kafka 2.3's versions: Fetch v11.
    let old = ["-X", "api.version.request=false", "-X", "broker.version.fallback=2.3.0"];
    assert!(
        kcat_consume(&listen, "fetched", &old)
            .lines()
            .eq(lines.iter().map(String::as_str)),
        "the client reads every record as sent"
    );
    assert!(strait.stop().success());
}

#[test]
fn produce_with_acks_zero_gets_no_answer_and_the_connection_keeps_working() {
    let mock = MockCluster::start(3);
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            &listen,
            "--topic",
            "fire",
            "--count",
            "200",
            "--acks",
            "0",
            // 2 kB values: produce requests of over 64 KiB, which go upstream as they arrive.
            "--pad",
            "2000",
        ],
    );
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            &listen,
            "--topic",
            "fire",
            "--start",
            "200",
            "--count",
            "50",
        ],
    );
    let got = consume(&listen, &["fire"], 250, "read_committed");
    assert_eq!(got.len(), 250);
    assert!(strait.stop().success());
}

#[test]
fn a_client_that_can_only_reach_the_proxy_works_against_brokers_advertising_internal_names() {
    let port = free_port();
    let internal = format!("kafka-0.kafka-headless.invalid:{port}");
    let url = format!("tcp://127.0.0.1:{port}");
    let mut tansu = Command::new(tansu_binary())
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &format!("tcp://{internal}"),
        ])
        .args(["--storage-engine", "memory://tansu/", "--silent"])
        .spawn()
        .unwrap();
    let upstream = format!("127.0.0.1:{port}");
    wait_for_port(&upstream, Duration::from_secs(20));
    let listen = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[clusters.k8s]\nbootstrap = [\"{upstream}\"]\n[clusters.k8s.address_map]\n\"{internal}\" = \"{upstream}\"\n\n[[proxy]]\nname = \"edge\"\ncluster = \"k8s\"\nlisten = \"{listen}\"\nadvertise = \"127.0.0.1\"\nport_base = {}\n",
        free_port_base(4)
    );
    let strait = Strait::start(&["run", "--config", write_config("edge", &config).to_str().unwrap()]);
    wait_for_port(&listen, Duration::from_secs(10));
    let through = [
        "--bootstrap",
        &listen,
        "--topic",
        "inside",
        "--partitions",
        "2",
        "--count",
        "100",
        "--create",
    ];
    run_peer("produce.py", &through);
    assert_eq!(consume(&listen, &["inside"], 100, "read_committed").len(), 100);
    // kcat's librdkafka 2.0.2 cannot parse Tansu's ApiVersions answer; librdkafka 2.16 lists it.
    let brokers = list(&listen).brokers;
    assert!(
        !brokers.is_empty() && brokers.iter().all(|b| b.starts_with("127.0.0.1:")),
        "{brokers:?}"
    );
    let direct = Command::new(python())
        .arg(peer_script("produce.py"))
        .args([
            "--bootstrap",
            &upstream,
            "--topic",
            "inside",
            "--count",
            "1",
            "--timeout-ms",
            "3000",
        ])
        .output()
        .unwrap();
    assert!(
        !direct.status.success(),
        "a direct client fails: the broker advertises {internal}"
    );
    assert!(strait.stop().success());
    let _ = tansu.kill();
    let _ = tansu.wait();
}

/// Sends one raw frame and reads one answer frame (None if the connection closed).
pub(crate) fn raw_round_trip(stream: &mut TcpStream, body: &[u8]) -> Option<Vec<u8>> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame).ok()?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut answer = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut answer).ok()?;
    Some(answer)
}

pub(crate) fn api_versions_request(version: i16, correlation: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&18i16.to_be_bytes());
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&correlation.to_be_bytes());
    b.extend_from_slice(&4i16.to_be_bytes());
    b.extend_from_slice(b"test");
    if version >= 3 {
        b.extend_from_slice(&[0, 1, 1, 0]); // header tags; empty software name and version; body tags
    }
    b
}

#[test]
fn an_unknown_api_version_passes_through_and_the_connection_keeps_working() {
    let mock = MockCluster::start(1);
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    let mut s = TcpStream::connect(&listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let answer = raw_round_trip(&mut s, &api_versions_request(99, 7)).expect("the broker's answer comes back");
    assert_eq!(&answer[..4], &7i32.to_be_bytes());
    assert_eq!(
        &answer[4..6],
        &35i16.to_be_bytes(),
        "UNSUPPORTED_VERSION, in the v0 form"
    );
    let answer = raw_round_trip(&mut s, &api_versions_request(0, 8)).expect("the same connection still works");
    assert_eq!(&answer[..4], &8i32.to_be_bytes());
    assert!(strait.stop().success());
}

#[test]
fn garbage_and_oversized_frames_close_only_their_own_connection() {
    let mock = MockCluster::start(3);
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    let mut good = TcpStream::connect(&listen).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(raw_round_trip(&mut good, &api_versions_request(0, 1)).is_some());
    let hostile: [&[u8]; 3] = [
        &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3],
        &[0xff, 0xff, 0xff, 0xf0],
        &[0, 0, 0, 3, 0, 1, 2],
    ];
    for bytes in hostile {
        let mut bad = TcpStream::connect(&listen).unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        bad.write_all(bytes).unwrap();
        let mut buf = [0u8; 16];
        assert!(
            matches!(bad.read(&mut buf), Ok(0) | Err(_)),
            "the proxy closes a connection sending {bytes:?}"
        );
    }
    assert!(
        raw_round_trip(&mut good, &api_versions_request(0, 2)).is_some(),
        "others are unaffected"
    );
    produce_records(&listen, "after", 0, 50, "none", "confluent");
    assert_eq!(consume(&listen, &["after"], 50, "read_committed").len(), 50);
    let log = strait.log_text();
    assert!(
        log.contains("exceeds the limit"),
        "the oversized frame is named in the log: {log}"
    );
    assert!(strait.stop().success());
}

#[test]
fn tls_toward_clients_and_toward_brokers_independently() {
    let dir = temp_dir("proxy-tls");
    let broker = ReadyPeer::start("tls_broker.py", &[dir.to_str().unwrap()]);
    let listen = format!("127.0.0.1:{}", free_port());
    let d = dir.display();
    let config = format!(
        "[clusters.up]\nbootstrap = [\"{}\"]\n[clusters.up.tls]\nca = \"{d}/ca.pem\"\n\n[[proxy]]\nname = \"tls\"\ncluster = \"up\"\nlisten = \"{listen}\"\nadvertise = \"127.0.0.1\"\nport_base = {}\n[proxy.tls]\ncert = \"{d}/server.pem\"\nkey = \"{d}/server.key\"\n",
        broker.addr,
        free_port_base(4)
    );
    let strait = Strait::start(&["run", "--config", write_config("proxy-tls", &config).to_str().unwrap()]);
    wait_for_port(&listen, Duration::from_secs(10));
    let ca = dir.join("ca.pem");
    let ca = ca.to_str().unwrap();
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            &listen,
            "--topic",
            "sealed",
            "--count",
            "50",
            "--create",
            "--tls-ca",
            ca,
        ],
    );
    let got = run_peer(
        "consume.py",
        &[
            "--bootstrap",
            &listen,
            "--topic",
            "sealed",
            "--expect",
            "50",
            "--tls-ca",
            ca,
        ],
    );
    assert_eq!(got.lines().count(), 50);
    let plaintext = Command::new(python())
        .arg(peer_script("consume.py"))
        .args(["--bootstrap", &listen, "--list"])
        .output()
        .unwrap();
    assert!(
        !plaintext.status.success(),
        "a plaintext client cannot talk to a TLS listener"
    );
    assert!(strait.stop().success());
}

#[test]
fn the_proxy_can_require_client_certificates() {
    let dir = temp_dir("proxy-mtls");
    let _certs = ReadyPeer::start("tls_broker.py", &[dir.to_str().unwrap()]);
    let mock = MockCluster::start(1);
    let listen = format!("127.0.0.1:{}", free_port());
    let d = dir.display();
    let config = format!(
        "[clusters.up]\nbootstrap = {:?}\n\n[[proxy]]\nname = \"mtls\"\ncluster = \"up\"\nlisten = \"{listen}\"\nadvertise = \"127.0.0.1\"\nport_base = {}\n[proxy.tls]\ncert = \"{d}/server.pem\"\nkey = \"{d}/server.key\"\nclient_ca = \"{d}/ca.pem\"\n",
        mock.addresses(),
        free_port_base(4)
    );
    let strait = Strait::start(&["run", "--config", write_config("proxy-mtls", &config).to_str().unwrap()]);
    wait_for_port(&listen, Duration::from_secs(10));
    let ca = dir.join("ca.pem");
    let client = format!("{d}/client.pem:{d}/client.key");
    let with_cert = [
        "--bootstrap",
        &listen,
        "--list",
        "--tls-ca",
        ca.to_str().unwrap(),
        "--tls-client",
        &client,
    ];
    let listing: serde_json::Value = serde_json::from_str(run_peer("consume.py", &with_cert).trim()).unwrap();
    assert_eq!(listing["brokers"].as_array().unwrap().len(), 1, "{listing}");
    let without = Command::new(python())
        .arg(peer_script("consume.py"))
        .args(["--bootstrap", &listen, "--list", "--tls-ca", ca.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!without.status.success(), "a client without a certificate is refused");
    assert!(strait.stop().success());
}

#[test]
fn connections_beyond_the_limit_are_refused_and_the_others_keep_working() {
    let mock = MockCluster::start(1);
    let (strait, listen) = proxy(&mock.bootstrap, &["--max-connections", "1"]);
    // The readiness probe held the one slot for a moment; wait until it is free again.
    let mut first = None;
    for _ in 0..50 {
        let mut s = TcpStream::connect(&listen).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if raw_round_trip(&mut s, &api_versions_request(0, 1)).is_some() {
            first = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut first = first.expect("one connection is served");
    let mut second = TcpStream::connect(&listen).unwrap();
    second.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 8];
    assert!(
        matches!(second.read(&mut buf), Ok(0) | Err(_)),
        "the second connection is closed"
    );
    assert!(raw_round_trip(&mut first, &api_versions_request(0, 2)).is_some());
    assert!(strait.log_shows("connection limit reached"));
    assert!(strait.stop().success());
}

/// Inputs the fuzzers found against the proxy's rewriters, kept so that what they broke
/// stays fixed: byte 0 picks the api, byte 1 the version, the rest is the body; no
/// answer may change bytes it does not rewrite.
#[test]
fn proxy_rewrite_fuzz_regressions_stay_fixed() {
    const APIS: [i16; 6] = [3, 10, 60, 18, 0, 1];
    let dir = repo().join("fuzz/regressions/proxy_rewrite");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let input = read(entry.unwrap().path());
        let (api, version, body) = (APIS[usize::from(input[0]) % 6], i16::from(input[1] % 20), &input[2..]);
        let mut rewritten = 0usize;
        let mut advertise = |_: i32, _: &str, _: i32| {
            rewritten += 1;
            ("proxy.example.com".to_owned(), 30_000)
        };
        if let Ok(Some(out)) = strait::wire::rewrite::answer(api, version, body, &mut advertise) {
            let len = out.keep + out.tail.len();
            // An ApiVersions error answer that cannot be read is replaced by the proxy's
            // own v0 one, offering ApiVersions alone: 12 bytes.
            let grown = body.len() + rewritten * 19 + 5;
            let ceiling = if api == 18 { grown.max(12) } else { grown };
            assert!(
                out.keep <= body.len() && len <= ceiling,
                "an answer grew beyond its rewritten addresses"
            );
            if rewritten == 0 && api != 18 {
                // Unchanged, but for the bytes after the end of its schema, which are cut.
                let whole = [&body[..out.keep], &out.tail[..]].concat();
                assert_eq!(
                    whole[..],
                    body[..len],
                    "an answer with no address rewritten is its own start"
                );
            }
            if [0, 1].contains(&api) {
                let announced = body.len() - out.keep;
                if let Ok(fitted) = strait::wire::rewrite::same_length::fit(&out.tail, announced) {
                    assert_eq!(fitted.len(), announced, "a fitted tail has the announced length");
                }
            }
        }
        seen += 1;
    }
    assert!(seen > 0);
}

#[test]
fn sasl_passes_through_the_proxy_untouched() {
    let gate = ReadyPeer::start("scram_gate.py", &["--users", "app:s3cret"]);
    let (strait, listen) = proxy(&gate.addr, &[]);
    let sasl = "SCRAM-SHA-256:app:s3cret";
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            &listen,
            "--topic",
            "authed",
            "--count",
            "40",
            "--create",
            "--sasl",
            sasl,
        ],
    );
    let got = run_peer(
        "consume.py",
        &[
            "--bootstrap",
            &listen,
            "--topic",
            "authed",
            "--expect",
            "40",
            "--sasl",
            sasl,
        ],
    );
    assert_eq!(
        got.lines().count(),
        40,
        "clients authenticate to the broker through the proxy"
    );
    let wrong = Command::new(python())
        .arg(peer_script("consume.py"))
        .args(["--bootstrap", &listen, "--list", "--sasl", "SCRAM-SHA-256:app:wrong"])
        .output()
        .unwrap();
    assert!(
        !wrong.status.success(),
        "a wrong password still fails through the proxy"
    );
    assert!(strait.stop().success());
}

fn request_header(api_key: i16, version: i16, correlation: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&api_key.to_be_bytes());
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&correlation.to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b
}

#[test]
fn a_request_above_the_offered_version_is_refused_so_no_address_can_leak() {
    let mock = MockCluster::start(1);
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    let mut s = TcpStream::connect(&listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Fetch v19 answers may carry broker addresses in a layout the proxy does not know.
    assert!(
        raw_round_trip(&mut s, &request_header(1, 19, 5)).is_none(),
        "the connection is closed"
    );
    assert!(
        strait.log_shows("Fetch (api key 1) version 19 is above what the proxy offers"),
        "{}",
        strait.log_text()
    );
    assert!(strait.stop().success());
}

/// An upstream that answers every frame with its correlation id and one byte 0xAB: the
/// proxy's behaviour with api keys no broker here knows.
fn echo_upstream() -> String {
    crate::proxy_answers::broker_answering(vec![0xAB])
}

/// An api the proxy does not let through (one Kafka may define later, or ShareFetch,
/// whose answers name brokers) closes the connection before it reaches the broker, even
/// when the broker would answer it.
#[test]
fn an_api_outside_the_allow_list_is_refused_so_no_address_can_leak() {
    let upstream = echo_upstream();
    let (strait, listen) = proxy(&upstream, &[]);
    for (api, version, name) in [
        (9999, 3, "unknown (api key 9999) version 3"),
        (78, 1, "ShareFetch (api key 78) version 1"),
    ] {
        let mut s = TcpStream::connect(&listen).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(
            raw_round_trip(&mut s, &request_header(api, version, 42)).is_none(),
            "api {api} is refused"
        );
        assert!(
            strait.log_shows(&format!("{name} is not an api the proxy lets through")),
            "{}",
            strait.log_text()
        );
    }
    assert!(strait.log_shows("client 127.0.0.1:"), "the log names the client");
    assert!(strait.stop().success());
}

/// The apis of a v0 ApiVersions answer: (api key, min, max).
fn offered_apis(answer: &[u8]) -> Vec<(i16, i16, i16)> {
    let i16_at = |at: usize| i16::from_be_bytes([answer[at], answer[at + 1]]);
    let count = i32::from_be_bytes(answer[6..10].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| 10 + 6 * i)
        .map(|at| (i16_at(at), i16_at(at + 2), i16_at(at + 4)))
        .collect()
}

/// librdkafka's mock cluster offers apis the proxy does not let through; through the
/// proxy they are gone, and every api left is capped at the proxy's table.
#[test]
fn api_versions_through_the_proxy_offer_only_the_allow_list() {
    let mock = MockCluster::start(1);
    let (strait, listen) = proxy(&mock.bootstrap, &[]);
    let ask = |addr: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        offered_apis(&raw_round_trip(&mut s, &api_versions_request(0, 1)).expect("an answer"))
    };
    let direct = ask(&mock.addresses()[0]);
    let proxied = ask(&listen);
    assert!(!proxied.is_empty());
    for (key, min, max) in &proxied {
        let cap = strait::wire::rewrite::allowed::max_version(*key).expect("only allowed apis");
        let broker = direct.iter().find(|d| d.0 == *key).expect("the broker offers it");
        assert_eq!((*min, *max), (broker.1, broker.2.min(cap)), "api {key}");
    }
    let dropped: Vec<_> = direct.iter().filter(|d| !proxied.iter().any(|p| p.0 == d.0)).collect();
    for (key, _, _) in &dropped {
        assert!(
            strait::wire::rewrite::allowed::max_version(*key).is_none(),
            "api {key} was dropped"
        );
    }
    eprintln!(
        "the mock offers {} apis, the proxy {}; dropped: {dropped:?}",
        direct.len(),
        proxied.len()
    );
    assert!(strait.stop().success());
}

#[test]
fn an_idle_client_is_closed_after_the_idle_timeout() {
    let mock = MockCluster::start(1);
    let (strait, listen) = proxy(&mock.bootstrap, &["--idle-timeout-secs", "1"]);
    let mut s = TcpStream::connect(&listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(9),
        "closed after {waited:?}"
    );
    assert!(strait.log_shows("idle for"), "{}", strait.log_text());
    assert!(strait.stop().success());
}
