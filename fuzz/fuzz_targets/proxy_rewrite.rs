//! The proxy's response rewriters over arbitrary broker answers. Byte 0 picks the api
//! (Metadata, FindCoordinator, DescribeCluster, ApiVersions) and byte 1 the version.
//! A rewritten answer may grow only by the addresses written into it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::proxy::rewrite::{api_versions, describe_cluster, find_coordinator, metadata};

fuzz_target!(|data: &[u8]| {
    let [api, version, body @ ..] = data else {
        return;
    };
    let version = i16::from(*version % 16);
    let mut rewritten = 0usize;
    let mut advertise = |_node: i32, _host: &str, _port: i32| {
        rewritten += 1;
        ("proxy.example.com".to_owned(), 30_000)
    };
    let out = match api % 4 {
        0 => metadata::rewrite(body, version, &mut advertise),
        1 => find_coordinator::rewrite(body, version, &mut advertise),
        2 => describe_cluster::rewrite(body, version, &mut advertise),
        _ => api_versions::rewrite(body, version),
    };
    if let Ok(out) = out {
        assert!(out.len() <= body.len() + rewritten * (2 + "proxy.example.com".len()));
    }
});
