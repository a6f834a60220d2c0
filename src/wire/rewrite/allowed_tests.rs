//! Walks every response schema kafka-protocol knows (its generated sources, where each
//! field states the versions it exists in) and fails when a field naming a host is
//! let through at a version the proxy does not rewrite. A kafka-protocol upgrade that
//! brings a new address-bearing field, in a new api or a new version, fails here
//! instead of leaking broker addresses quietly.

use std::path::PathBuf;

use kafka_protocol::messages::ApiKey;

use super::{all, max_version};
use crate::wire::rewrite::rewritten;

/// Host fields checked by hand and found to name no broker: (api, struct, field, why).
const NOT_BROKERS: &[(ApiKey, &str, &str, &str)] = &[
    (
        ApiKey::DescribeAcls,
        "AclDescription",
        "host",
        "an ACL's client-host pattern",
    ),
    (
        ApiKey::DeleteAcls,
        "DeleteAclsMatchingAcl",
        "host",
        "an ACL's client-host pattern",
    ),
    (
        ApiKey::DescribeGroups,
        "DescribedGroupMember",
        "client_host",
        "a member's own address",
    ),
    (
        ApiKey::ConsumerGroupDescribe,
        "Member",
        "client_host",
        "a member's own address",
    ),
    (
        ApiKey::ShareGroupDescribe,
        "Member",
        "client_host",
        "a member's own address",
    ),
];

/// A field of a generated message struct and the versions it exists in.
#[derive(Debug)]
struct Field {
    strukt: String,
    name: String,
    versions: Option<(i16, i16)>,
}

/// Where cargo keeps kafka-protocol's sources, asked of cargo itself so that any
/// registry location and any crate version are found. Only this platform's packages
/// are asked for: those of others need not have been downloaded.
fn kafka_protocol_src() -> PathBuf {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc runs");
    let version = String::from_utf8_lossy(&version.stdout);
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc names its host");
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            host,
        ])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
    let manifest = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "kafka-protocol")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("kafka-protocol is a dependency");
    PathBuf::from(manifest).with_file_name("src").join("messages")
}

fn snake(key: ApiKey) -> String {
    let mut out = String::new();
    for (i, c) in format!("{key:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// "0-13", "4" or "none", as the generated doc comments state versions.
fn versions(text: &str) -> Option<(i16, i16)> {
    let text = text.trim().trim_end_matches('+');
    if text == "none" {
        return None;
    }
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    Some((lo.parse().expect("a version"), hi.parse().unwrap_or(i16::MAX)))
}

/// The fields of every struct in a generated response file.
fn fields(source: &str) -> Vec<Field> {
    let mut out = Vec::new();
    let mut strukt = String::new();
    let mut pending = None;
    for line in source.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("pub struct ") {
            strukt = rest.trim_end_matches(" {").trim().to_owned();
        } else if let Some(v) = line.strip_prefix("/// Supported API versions:") {
            pending = Some(versions(v));
        } else if let (Some(decl), Some(v)) = (line.strip_prefix("pub "), pending) {
            // A field, not one of the builder methods that repeat its versions.
            if let Some((name, _)) = decl.split_once(':').filter(|_| !decl.starts_with("fn ")) {
                out.push(Field {
                    strukt: strukt.clone(),
                    name: name.trim().to_owned(),
                    versions: v,
                });
            }
            pending = None;
        }
    }
    out
}

fn reviewed(key: ApiKey, field: &Field) -> bool {
    NOT_BROKERS
        .iter()
        .any(|(api, s, f, _)| *api == key && *s == field.strukt && *f == field.name)
}

#[test]
fn no_answer_the_proxy_lets_through_names_a_host_it_does_not_rewrite() {
    let dir = kafka_protocol_src();
    let mut checked = 0;
    let mut hosts = 0;
    let mut leaks = Vec::new();
    for key in ApiKey::iter() {
        let path = dir.join(format!("{}_response.rs", snake(key)));
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let fields = fields(&source);
        assert!(!fields.is_empty(), "no fields read from {}", path.display());
        let Some(max) = max_version(key as i16) else {
            continue;
        };
        checked += 1;
        for field in fields.iter().filter(|f| f.name.contains("host")) {
            hosts += 1;
            let Some((lo, hi)) = field.versions else { continue };
            for v in lo.max(0)..=hi.min(max) {
                if !rewritten(key as i16, v) && !reviewed(key, field) {
                    leaks.push(format!("{key:?} v{v}: {}.{}", field.strukt, field.name));
                }
            }
        }
    }
    assert!(
        checked == all().count() && hosts >= 10,
        "the schema walk found {checked} apis and {hosts} host fields"
    );
    assert!(leaks.is_empty(), "host fields let through unrewritten: {leaks:#?}");
}

#[test]
fn every_allowed_version_is_one_kafka_protocol_knows() {
    for (key, max) in all() {
        let known = key.valid_versions();
        assert!(
            max <= known.max,
            "{key:?} allowed up to v{max}, known to v{}",
            known.max
        );
    }
}

/// The walk itself must see what it is meant to catch: DescribeQuorum's listeners
/// from v2 and ShareFetch's node endpoints.
#[test]
fn the_schema_walk_sees_the_hosts_left_out() {
    let dir = kafka_protocol_src();
    for (key, from) in [(ApiKey::DescribeQuorum, 2), (ApiKey::ShareFetch, 1)] {
        let source = std::fs::read_to_string(dir.join(format!("{}_response.rs", snake(key)))).expect("source");
        let host = fields(&source).into_iter().find(|f| f.name == "host");
        assert_eq!(host.and_then(|h| h.versions).map(|v| v.0), Some(from), "{key:?}");
        assert!(max_version(key as i16).is_none_or(|max| max < from), "{key:?}");
    }
}
