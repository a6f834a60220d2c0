//! The proxy's answer rewriting over arbitrary broker answers. Byte 0 picks the api
//! (Metadata, FindCoordinator, DescribeCluster, ApiVersions) and byte 1 the version.
//! An answer may grow only by the addresses written into it, and one with no address
//! rewritten keeps its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::proxy::rewrite::answer;

const APIS: [i16; 4] = [3, 10, 60, 18];

fuzz_target!(|data: &[u8]| {
    let [api, version, body @ ..] = data else {
        return;
    };
    let mut rewritten = 0usize;
    let mut advertise = |_node: i32, _host: &str, _port: i32| {
        rewritten += 1;
        ("proxy.example.com".to_owned(), 30_000)
    };
    let out = answer(APIS[usize::from(*api % 4)], i16::from(*version % 16), body, &mut advertise);
    if let Ok(out) = out {
        assert!(out.len() <= body.len() + rewritten * (2 + "proxy.example.com".len()));
        if rewritten == 0 {
            assert_eq!(out.len(), body.len());
        }
    }
});
