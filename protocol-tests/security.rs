//! TLS and SASL against implementations nobody on this team wrote: stunnel terminating
//! TLS in front of Tansu, and a gate running scramp's server side of SCRAM.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strait::client::{admin, AddressMap, Cluster};
use strait::net::sasl::{Mechanism, SaslConfig};
use strait::net::tls::{TlsFiles, TlsSettings};
use strait::net::ConnectOptions;

use crate::client::{produce_golden_and_fetch_back, runtime};
use crate::harness::*;

fn cluster(addr: &str, tls: Option<TlsSettings>, sasl: Option<SaslConfig>) -> Arc<Cluster> {
    let options = ConnectOptions {
        tls,
        sasl,
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    Cluster::new("secure", vec![addr.to_owned()], AddressMap::default(), options)
}

fn tls(dir: &Path, client_cert: bool) -> TlsSettings {
    TlsSettings::from_files(&TlsFiles {
        ca: Some(dir.join("ca.pem")),
        cert: client_cert.then(|| dir.join("client.pem")),
        key: client_cert.then(|| dir.join("client.key")),
        server_name: None,
    })
    .unwrap()
}

async fn round_trip(c: &Cluster, topic: &str) {
    c.refresh(None).await.unwrap();
    admin::create_topic(c, topic, 1, -1, &[]).await.unwrap();
    c.refresh(Some(&[topic.to_owned()])).await.unwrap();
    produce_golden_and_fetch_back(c, topic).await;
}

#[test]
fn tls_with_a_custom_ca_reaches_a_broker_behind_stunnel_and_refuses_an_unknown_one() {
    let dir = temp_dir("tls");
    let broker = ReadyPeer::start("tls_broker.py", &[dir.to_str().unwrap()]);
    runtime().block_on(async {
        round_trip(&cluster(&broker.addr, Some(tls(&dir, false)), None), "over-tls").await;
        let untrusted = TlsSettings::from_files(&TlsFiles::default()).unwrap();
        let err = cluster(&broker.addr, Some(untrusted), None)
            .refresh(None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no broker reachable"), "{err}");
        let plain = cluster(&broker.addr, None, None).refresh(None).await;
        assert!(plain.is_err(), "plaintext against a TLS port fails");
    });
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let dir = temp_dir("mtls");
    let broker = ReadyPeer::start("tls_broker.py", &[dir.to_str().unwrap(), "--mtls"]);
    runtime().block_on(async {
        round_trip(&cluster(&broker.addr, Some(tls(&dir, true)), None), "over-mtls").await;
        let without = cluster(&broker.addr, Some(tls(&dir, false)), None).refresh(None).await;
        assert!(without.is_err(), "no client certificate, no service");
    });
}

fn sasl(mechanism: Mechanism, password: &str) -> Option<SaslConfig> {
    Some(SaslConfig {
        mechanism,
        username: "strait".into(),
        password: password.into(),
    })
}

#[test]
fn scram_sha_256_scram_sha_512_and_plain_authenticate_against_scramp() {
    let gate = ReadyPeer::start("scram_gate.py", &["--users", "strait:p=ss:word=1,other:x"]);
    runtime().block_on(async {
        for (i, m) in [Mechanism::ScramSha256, Mechanism::ScramSha512, Mechanism::Plain]
            .into_iter()
            .enumerate()
        {
            round_trip(&cluster(&gate.addr, None, sasl(m, "p=ss:word=1")), &format!("sasl-{i}")).await;
            let wrong = cluster(&gate.addr, None, sasl(m, "wrong"));
            let conn = wrong
                .connection_to(&gate.addr)
                .await
                .err()
                .expect("a wrong password is refused");
            let text = conn.to_string();
            assert!(text.contains(&format!("SASL {}", m.name())), "{text}");
        }
    });
}

#[test]
fn a_mechanism_the_broker_does_not_offer_is_named_in_the_error() {
    let gate = ReadyPeer::start(
        "scram_gate.py",
        &["--users", "strait:pw", "--mechanisms", "SCRAM-SHA-512"],
    );
    runtime().block_on(async {
        let c = cluster(&gate.addr, None, sasl(Mechanism::ScramSha256, "pw"));
        let err = c.connection_to(&gate.addr).await.err().unwrap().to_string();
        assert!(
            err.contains("SCRAM-SHA-512"),
            "the error lists what the broker offers: {err}"
        );
    });
}

#[test]
fn mirror_from_a_tls_cluster_to_a_scram_cluster_with_the_password_from_the_environment() {
    let dir = temp_dir("tls-mirror");
    let source = ReadyPeer::start("tls_broker.py", &[dir.to_str().unwrap()]);
    let target = ReadyPeer::start("scram_gate.py", &["--users", "mirror:from-env"]);
    let ca = dir.join("ca.pem");
    let tls_args = [
        "--bootstrap",
        &source.addr,
        "--topic",
        "secure.events",
        "--count",
        "120",
        "--create",
    ];
    let producer = std::process::Command::new(python())
        .arg(peer_script("produce.py"))
        .args(tls_args)
        .args(["--tls-ca", ca.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        producer.status.success(),
        "{}",
        String::from_utf8_lossy(&producer.stderr)
    );
    let config = format!(
        "[clusters.src]\nbootstrap = [\"{}\"]\n[clusters.src.tls]\nca = \"{}\"\n\n[clusters.dst]\nbootstrap = [\"{}\"]\n[clusters.dst.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"mirror\"\npassword = \"${{env:STRAIT_TEST_DST_PASSWORD}}\"\n\n[[mirror]]\nname = \"secure\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"secure\\\\..*\"]\n",
        source.addr,
        ca.display(),
        target.addr
    );
    let path = write_config("secure", &config);
    let strait = Strait::start_with_env(
        &["run", "--config", path.to_str().unwrap()],
        &[("STRAIT_TEST_DST_PASSWORD", "from-env")],
    );
    runtime().block_on(async {
        let c = cluster(&target.addr, None, sasl_user("mirror", "from-env"));
        let mut stored = 0;
        for _ in 0..60 {
            if c.refresh(None).await.is_ok() && c.metadata().topics.contains_key("secure.events") {
                stored = crate::client::count_records(&c, "secure.events", 4).await;
                if stored >= 120 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(
            stored,
            120,
            "every record crossed from TLS to SCRAM:\n{}",
            strait.log_text()
        );
    });
    assert!(
        !strait.log_text().contains("from-env"),
        "the secret never reaches the log"
    );
    assert!(strait.stop().success());
}

fn sasl_user(user: &str, password: &str) -> Option<SaslConfig> {
    Some(SaslConfig {
        mechanism: Mechanism::ScramSha512,
        username: user.into(),
        password: password.into(),
    })
}
