//! Processes of one flow that would copy differently are refused by the group's leader
//! with the difference named, and the refused one copies nothing: a flow is never split
//! between two ways of copying.

use std::time::Duration;

use crate::harness::*;

#[test]
fn a_process_whose_settings_differ_from_the_leaders_is_refused_by_name() {
    let mut source = MockCluster::start(1);
    let mut target = MockCluster::start(1);
    source.command("topic g.same 4");
    target.command("topic g.same 4");
    produce_records(&source.bootstrap, "g.same", 0, 400, "none", "confluent");
    let args = |id: &'static str, compression: &'static str| {
        vec![
            "mirror",
            "--source",
            &source.bootstrap,
            "--target",
            &target.bootstrap,
            "--topics",
            "g\\..*",
            "--name",
            "same",
            "--instance-id",
            id,
            "--session-timeout-ms",
            "4000",
            "--heartbeat-interval-ms",
            "0",
            "--compression",
            compression,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    let first = args("a", "keep");
    let leader = Strait::start(&first.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        leader.log_shows_within("assignment received", Duration::from_secs(30)),
        "{}",
        leader.log_text()
    );
    assert_eq!(
        consume(&target.bootstrap, &["g.same"], 400, "read_committed").len(),
        400
    );

    let second = args("b", "zstd");
    let mut other = Strait::start(&second.iter().map(String::as_str).collect::<Vec<_>>());
    let status = other.exit_within(Duration::from_secs(60));
    assert!(!status.success(), "the refused process exits with an error");
    let log = other.log_text();
    assert!(
        log.contains("refused by the flow's group") && log.contains("compression is"),
        "the refusal names the setting: {log}"
    );
    assert!(!log.contains("assignment received"), "it was given nothing: {log}");
    assert!(
        leader.log_shows("a process of this flow is refused"),
        "the leader says so too: {}",
        leader.log_text()
    );
    // The leader still owns and copies everything.
    produce_records(&source.bootstrap, "g.same", 400, 400, "none", "confluent");
    assert_eq!(
        consume(&target.bootstrap, &["g.same"], 800, "read_committed").len(),
        800
    );
    assert!(leader.stop().success());
}
