//! The command line: `strait check` on the documented example and on broken configs.

use std::process::Command;

use crate::harness::*;

fn check(path: &std::path::Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["check", "--config", path.to_str().unwrap()])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A self-signed certificate and its key, made by the openssl command line.
fn self_signed(dir: &std::path::Path, name: &str) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .args(["-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

/// The example config with its TLS files made in `dir`.
fn example_with_files_in(dir: &std::path::Path) -> std::path::PathBuf {
    for name in ["sea-ca", "proxy", "clients-ca"] {
        self_signed(dir, name);
    }
    let example = String::from_utf8(read(repo().join("config.example.toml"))).unwrap();
    let path = dir.join("strait.toml");
    std::fs::write(&path, example.replace("/etc/strait/", &format!("{}/", dir.display()))).unwrap();
    path
}

#[test]
fn the_example_config_documents_a_valid_config_and_check_prints_its_plan_without_secrets() {
    let dir = temp_dir("example");
    let example = example_with_files_in(&dir);
    let (ok, text) = check(&example, &[("SEA_KAFKA_PASSWORD", "hunter2-secret")]);
    assert!(ok, "{text}");
    assert!(
        text.contains("compression keep, read_committed, start earliest"),
        "{text}"
    );
    assert!(text.contains("sasl: SCRAM-SHA-512 as"), "{text}");
    assert!(text.contains("mirror sea-to-hk: sea -> hk"), "{text}");
    assert!(
        text.contains("proxy sea-edge: listen 0.0.0.0:9092 for cluster sea"),
        "{text}"
    );
    assert!(
        text.contains("dial kafka-sea-0.example.com:9092 for advertised"),
        "{text}"
    );
    assert!(text.contains("password from ${env:SEA_KAFKA_PASSWORD}"), "{text}");
    assert!(!text.contains("hunter2-secret"), "a secret leaked: {text}");
}

#[test]
fn the_example_config_names_every_option_of_the_model() {
    let example = String::from_utf8(read(repo().join("config.example.toml"))).unwrap();
    let model = String::from_utf8(read(repo().join("src/config/model.rs"))).unwrap();
    for line in model.lines() {
        let line = line.trim();
        let Some(field) = line
            .strip_prefix("pub ")
            .and_then(|l| l.split_once(':'))
            .map(|(f, _)| f)
        else {
            continue;
        };
        if field.contains(' ')
            || field.contains('(')
            || ["clusters", "mirror", "proxy", "metrics", "tracing", "log"].contains(&field)
        {
            continue;
        }
        let documented = example.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            l.starts_with(&format!("{field} ="))
                || l.starts_with(&format!("[clusters.sea.{field}]"))
                || l.starts_with(&format!("[proxy.{field}]"))
        });
        assert!(documented, "option `{field}` is not documented in config.example.toml");
    }
}

fn rejected(name: &str, toml: &str, expect: &[&str]) {
    let path = write_config(name, toml);
    let (ok, text) = check(&path, &[]);
    assert!(!ok, "{name} was accepted");
    for e in expect {
        assert!(text.contains(e), "{name}: expected {e:?} in: {text}");
    }
}

const CLUSTERS: &str =
    "[clusters.a]\nbootstrap = [\"127.0.0.1:9092\"]\n[clusters.b]\nbootstrap = [\"127.0.0.1:9093\"]\n";

#[test]
fn broken_configs_are_refused_with_the_key_the_value_and_what_is_expected() {
    rejected(
        "unknown-key",
        &format!("{CLUSTERS}[[mirror]]\nname=\"f\"\nsource=\"a\"\ntarget=\"b\"\ntopics=[\"t\"]\ncompresion=\"zstd\"\n"),
        &["compresion"],
    );
    rejected(
        "no-fetch-connection",
        &format!("{CLUSTERS}[[mirror]]\nname=\"f\"\nsource=\"a\"\ntarget=\"b\"\ntopics=[\"t\"]\nfetch_connections_per_broker=0\n"),
        &["mirror[0].fetch_connections_per_broker", "from 1 to 16"],
    );
    rejected(
        "tiny-socket-buffer",
        "[clusters.a]\nbootstrap = [\"127.0.0.1:9092\"]\nsocket_receive_buffer_bytes = 100\n",
        &["clusters.a.socket_receive_buffer_bytes", "100", "from 4096"],
    );
    rejected(
        "bad-regex",
        &format!("{CLUSTERS}[[mirror]]\nname=\"f\"\nsource=\"a\"\ntarget=\"b\"\ntopics=[\"(\"]\n"),
        &["mirror[0].topics[0]", "regular expression"],
    );
    rejected(
        "unknown-cluster",
        &format!("{CLUSTERS}[[mirror]]\nname=\"f\"\nsource=\"x\"\ntarget=\"b\"\ntopics=[\"t\"]\n"),
        &["mirror[0].source", "\"x\"", "[clusters.NAME]"],
    );
    rejected(
        "comma-joined-addresses",
        "[clusters.a]\nbootstrap = [\"a:9092,b:9092\"]\n",
        &[
            "clusters.a.bootstrap[0]",
            "\"a:9092,b:9092\"",
            "one host:port per list entry",
        ],
    );
    rejected(
        "bad-address",
        "[clusters.a]\nbootstrap = [\"localhost\"]\n",
        &["clusters.a.bootstrap[0]", "host:port"],
    );
    rejected(
        "bad-codec",
        &format!(
            "{CLUSTERS}[[mirror]]\nname=\"f\"\nsource=\"a\"\ntarget=\"b\"\ntopics=[\"t\"]\ncompression=\"brotli\"\n"
        ),
        &["brotli"],
    );
    rejected(
        "bad-rename",
        &format!(
            "{CLUSTERS}[[mirror]]\nname=\"f\"\nsource=\"a\"\ntarget=\"b\"\ntopics=[\"t\"]\nrename=\"{{cluster}}.x\"\n"
        ),
        &["mirror[0].rename", "{topic}"],
    );
    rejected(
        "loop",
        &format!("{CLUSTERS}[[mirror]]\nname=\"f\"\nsource=\"a\"\ntarget=\"a\"\ntopics=[\"t\"]\n"),
        &["mirror[0].rename", "same cluster"],
    );
    rejected("missing-secret", "[clusters.a]\nbootstrap = [\"h:1\"]\n[clusters.a.sasl]\nmechanism=\"PLAIN\"\nusername=\"u\"\npassword=\"${env:STRAIT_NO_SUCH_VAR}\"\n", &["clusters.a.sasl.password", "STRAIT_NO_SUCH_VAR"]);
    rejected(
        "level-without-codec",
        &format!("{CLUSTERS}[[mirror]]\nname=\"f\"\nsource=\"a\"\ntarget=\"b\"\ntopics=[\"t\"]\ncompression_level=3\n"),
        &["compression_level", "gzip or zstd"],
    );
    rejected(
        "collector-ca-without-https",
        "[tracing]\notlp_endpoint = \"http://collector:4318\"\notlp_ca = \"ca.pem\"\n",
        &["tracing.otlp_ca", "\"ca.pem\"", "https://"],
    );
    rejected(
        "collector-without-port",
        "[tracing]\notlp_endpoint = \"http://collector/\"\n",
        &["tracing.otlp_endpoint", "https://HOST:PORT"],
    );
}

#[test]
fn the_mirror_command_refuses_a_bad_option_before_connecting() {
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args([
            "mirror",
            "--source",
            "127.0.0.1:1",
            "--target",
            "127.0.0.1:2",
            "--topics",
            "t",
            "--compression",
            "brotli",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--compression brotli"));
}

fn strait_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strait")).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A mistake on the command line is told by the flag, not by the config key it became,
/// and once.
#[test]
fn command_line_mistakes_name_the_flag_and_are_told_once() {
    let proxy = strait_fails(&[
        "proxy",
        "--upstream",
        "127.0.0.1:1",
        "--advertise",
        "x",
        "--listen",
        "nope",
    ]);
    assert!(proxy.contains("--listen \"nope\""), "{proxy}");
    assert!(!proxy.contains("proxy[0]"), "{proxy}");
    let mirror = strait_fails(&[
        "mirror",
        "--source",
        "127.0.0.1:1",
        "--target",
        "127.0.0.1:2",
        "--topics",
        "a(",
    ]);
    assert!(mirror.contains("--topics \"a(\""), "{mirror}");
    assert!(!mirror.contains("mirror[0]"), "{mirror}");
    let missing = strait_fails(&["run", "--config", "/nonexistent/strait.toml"]);
    assert_eq!(missing.matches("No such file").count(), 1, "{missing}");
    let level = strait_fails(&["--log-level", "strait=loud", "check", "--config", "/nonexistent"]);
    assert!(
        level.contains("--log-level \"strait=loud\": expected a level"),
        "{level}"
    );
}

/// `--topics` takes a regular expression as given: `o{1,2}rders` is one pattern (its
/// comma is inside braces); the flag repeats for more.
#[test]
fn topic_patterns_on_the_command_line_keep_their_commas_and_repeat() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    for topic in ["orders", "oorders", "payments", "oooorders"] {
        produce_records(&source.bootstrap, topic, 0, 40, "none", "confluent");
    }
    let strait = Strait::start(&[
        "mirror",
        "--source",
        &source.bootstrap,
        "--target",
        &target.bootstrap,
        "--topics",
        "o{1,2}rders",
        "--topics",
        "pay.*",
        "--heartbeat-interval-ms",
        "0",
    ]);
    let got = consume(
        &target.bootstrap,
        &["orders", "oorders", "payments"],
        120,
        "read_committed",
    );
    assert_eq!(got.len(), 120);
    assert!(strait.log_shows("topic=payments"));
    assert!(
        !strait.log_text().contains("topic=oooorders"),
        "o{{1,2}} matched four o's"
    );
    assert!(strait.stop().success());
}

/// While it runs a flow says what it copies: a periodic progress line; a flow whose
/// patterns match nothing says so. `--log-level debug` adds a line per fetch, forward
/// and commit.
#[test]
fn a_flow_logs_its_progress_and_warns_when_its_patterns_match_nothing() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    produce_records(&source.bootstrap, "told", 0, 100, "none", "confluent");
    let config = format!(
        "[log]\nlevel = \"warn\"\n\n[clusters.src]\nbootstrap = [\"{}\"]\n[clusters.dst]\nbootstrap = [\"{}\"]\n\n\
         [[mirror]]\nname = \"told\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"told\"]\n\
         heartbeat_interval_ms = 0\nprogress_log_secs = 1\n\n\
         [[mirror]]\nname = \"nothing\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"no-such-topic\"]\n\
         heartbeat_interval_ms = 0\n",
        source.bootstrap, target.bootstrap
    );
    let path = write_config("told", &config);
    // The environment's level (the harness's) goes; the flag's wins over the config's.
    let strait = Strait::start_with_env(
        &[
            "--log-level",
            "info,strait::mirror=debug",
            "run",
            "--config",
            path.to_str().unwrap(),
        ],
        &[("STRAIT_LOG", "warn")],
    );
    assert_eq!(consume(&target.bootstrap, &["told"], 100, "read_committed").len(), 100);
    assert!(
        strait.log_shows("flow progress since the last line"),
        "{}",
        strait.log_text()
    );
    assert!(
        strait.log_shows("flow progress since the last line flow=told records=100 "),
        "a line counts the 100 records: {}",
        strait.log_text()
    );
    let log = strait.log_text();
    assert!(
        log.contains("no source topic matches the flow's patterns") && log.contains("flow=nothing"),
        "{log}"
    );
    assert!(
        log.contains("fetched") && log.contains("progress committed"),
        "debug lines: {log}"
    );
    assert!(strait.stop().success());
}

/// `strait check` meets what `strait run` would: a TLS file that is missing or is no
/// certificate, and a secret from an environment variable that is not set, named; with
/// `--no-secrets` the secret is not asked for, the files still are.
#[test]
fn check_reports_missing_tls_files_and_unset_secrets_by_name() {
    let dir = temp_dir("check-files");
    let example = example_with_files_in(&dir);
    let (ok, text) = check(&example, &[]);
    assert!(!ok);
    assert!(text.contains("SEA_KAFKA_PASSWORD is not set"), "{text}");
    let (ok, text) = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["check", "--no-secrets", "--config", example.to_str().unwrap()])
        .output()
        .map(|o| (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned()))
        .unwrap();
    assert!(ok, "{text}");

    std::fs::rename(dir.join("sea-ca.pem"), dir.join("elsewhere.pem")).unwrap();
    let (ok, text) = check(&example, &[("SEA_KAFKA_PASSWORD", "x")]);
    assert!(!ok);
    assert!(text.contains("sea-ca.pem") && text.contains("No such file"), "{text}");
    std::fs::rename(dir.join("elsewhere.pem"), dir.join("sea-ca.pem")).unwrap();
    std::fs::write(dir.join("proxy.pem"), "not a certificate").unwrap();
    let (ok, text) = check(&example, &[("SEA_KAFKA_PASSWORD", "x")]);
    assert!(!ok);
    assert!(
        text.contains("proxy.sea-edge.tls"),
        "the proxy's certificate is named: {text}"
    );
}
