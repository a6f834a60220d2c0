//! The container image from deploy/container, run by a Docker engine. scripts/test.sh
//! builds the image, names it in STRAIT_IMAGE and runs these tests; elsewhere they are
//! ignored, since they need the engine.

use std::process::{Command, Output};

use crate::harness::*;
use crate::mirror::assert_same;

fn image() -> String {
    std::env::var("STRAIT_IMAGE").expect("STRAIT_IMAGE names the image to test: scripts/test.sh builds it")
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("run docker")
}

/// What a docker command printed, which must succeed.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A container, removed when the test ends, however it ends; a failed test shows its log.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = docker(&["logs", &self.0]);
            eprintln!("container {}'s log:\n{}", self.0, String::from_utf8_lossy(&logs.stderr));
        }
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// Docker puts these into every container's file system itself.
fn from_the_engine(path: &str) -> bool {
    [".dockerenv", "etc/hostname", "etc/hosts", "etc/mtab", "etc/resolv.conf"].contains(&path)
        || ["dev/", "proc/", "sys/"].iter().any(|dir| path.starts_with(dir))
}

#[test]
#[ignore = "needs a Docker engine and the image: scripts/test.sh builds it and runs this"]
fn the_image_holds_the_binary_and_the_ca_roots_alone_and_runs_them_as_non_root() {
    let image = image();
    let container = Container(docker_ok(&["create", &image]));
    let tar = temp_dir("container-export").join("root.tar");
    docker_ok(&["export", "--output", tar.to_str().unwrap(), &container.0]);
    let listing = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let mut files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter(|p| !p.ends_with('/') && !from_the_engine(p))
        .map(str::to_owned)
        .collect();
    files.sort();
    assert_eq!(files, ["etc/ssl/certs/ca-certificates.crt", "usr/local/bin/strait"]);
    assert_eq!(
        docker_ok(&["image", "inspect", "-f", "{{.Config.User}}", &image]),
        "65532:65532"
    );
    let version = docker_ok(&["run", "--rm", &image, "--version"]);
    assert_eq!(version, format!("strait {}", env!("CARGO_PKG_VERSION")));
}

#[test]
#[ignore = "needs a Docker engine and the image: scripts/test.sh builds it and runs this"]
fn the_image_mirrors_as_its_environment_says_and_exits_0_on_docker_stop() {
    let source = MockCluster::start(3);
    let target = Tansu::start();
    produce_records(&source.bootstrap, "c.events", 0, 300, "lz4", "confluent");
    let container = Container(format!("strait-test-{}", std::process::id()));
    let name = container.0.as_str();
    // Configured the way container users configure replicators: by environment.
    docker_ok(&[
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--env",
        &format!("STRAIT_SOURCE={}", source.bootstrap),
        "--env",
        &format!("STRAIT_TARGET={}", target.bootstrap),
        "--env",
        "STRAIT_TOPICS=c\\..*",
        "--env",
        "STRAIT_NAME=container",
        &image(),
        "mirror",
    ]);
    assert_same(&source.bootstrap, &target.bootstrap, "c.events", "c.events", 300);
    // Still copying, so that the exit code below is the one `docker stop` caused.
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.Running}}", name]), "true");
    // SIGTERM, and SIGKILL only if strait has not exited within 30 s.
    docker_ok(&["stop", "--time", "30", name]);
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", name]), "0");
}
