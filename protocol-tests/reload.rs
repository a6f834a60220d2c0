//! `strait run` and SIGHUP: a changed config file is applied while running. New flows
//! start, removed ones stop, changed ones restart, the others never pause, and a bad
//! file changes nothing.

use std::path::Path;

use crate::harness::*;

fn config(source: &str, target: &str, flows: &[(&str, &str)]) -> String {
    let mut text = format!("[clusters.src]\nbootstrap = [\"{source}\"]\n[clusters.dst]\nbootstrap = [\"{target}\"]\n");
    for (name, topics) in flows {
        text += &format!(
            "\n[[mirror]]\nname = \"{name}\"\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"{topics}\"]\ntopic_refresh_secs = 1\n\
             session_timeout_ms = 4000\n"
        );
    }
    text
}

fn rewrite(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn starts_of(strait: &Strait, flow: &str) -> usize {
    strait.log_text().matches(&format!("flow started flow={flow} ")).count()
}

#[test]
fn sighup_starts_new_flows_stops_removed_ones_and_never_pauses_the_rest() {
    let source = MockCluster::start(1);
    let target = MockCluster::start(1);
    let (src, dst) = (&source.bootstrap, &target.bootstrap);
    let path = write_config("reload", &config(src, dst, &[("keep", "k\\\\..*")]));
    let strait = Strait::start(&["run", "--config", path.to_str().unwrap()]);
    produce_records(src, "k.one", 0, 100, "lz4", "confluent");
    assert_eq!(consume(dst, &["k.one"], 100, "read_committed").len(), 100);

    rewrite(&path, &config(src, dst, &[("keep", "k\\\\..*"), ("added", "a\\\\..*")]));
    strait.hangup();
    assert!(strait.log_shows("config reloaded"), "{}", strait.log_text());
    produce_records(src, "a.one", 0, 100, "lz4", "confluent");
    assert_eq!(consume(dst, &["a.one"], 100, "read_committed").len(), 100);

    rewrite(&path, &config(src, dst, &[("keep", "k\\\\..*")]));
    strait.hangup();
    assert!(
        strait.log_shows("removed from the config; stopping unit=flow added"),
        "{}",
        strait.log_text()
    );
    produce_records(src, "a.one", 100, 100, "lz4", "confluent");
    let after = consume_within(dst, &["a.one"], 200, "read_committed", 3);
    assert_eq!(after.len(), 100, "a removed flow copies nothing more");

    rewrite(&path, "[[mirror]]\nname = \"broken\"\n");
    strait.hangup();
    assert!(strait.log_shows("config not reloaded"), "{}", strait.log_text());
    produce_records(src, "k.one", 100, 100, "lz4", "confluent");
    assert_eq!(consume(dst, &["k.one"], 200, "read_committed").len(), 200);
    assert_eq!(starts_of(&strait, "keep"), 1, "untouched flows never restart");

    rewrite(&path, &config(src, dst, &[("keep", "k\\\\..*|k2\\\\..*")]));
    strait.hangup();
    assert!(
        strait.log_shows("config changed; restarting unit=flow keep"),
        "{}",
        strait.log_text()
    );
    produce_records(src, "k2.one", 0, 50, "lz4", "confluent");
    assert_eq!(consume(dst, &["k2.one"], 50, "read_committed").len(), 50);
    assert_eq!(starts_of(&strait, "keep"), 2);
    assert!(strait.stop().success());
}
