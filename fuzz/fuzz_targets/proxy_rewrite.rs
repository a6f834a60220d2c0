//! The proxy's answer rewriting over arbitrary broker answers. Byte 0 picks the api
//! (Metadata, FindCoordinator, DescribeCluster, ApiVersions, Produce, Fetch) and byte 1
//! the version. A rewrite may keep only bytes that are there, may grow the answer only
//! by the addresses written into it, and one with no address rewritten is the answer's
//! own start, cut where its schema ends (but ApiVersions, which drops the apis the
//! proxy does not let through).
//! A Produce or Fetch rewrite fitted into the length the broker's answer had (as it
//! must be when that length went to the client first) has exactly that length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::wire::rewrite::{answer, same_length};

const APIS: [i16; 6] = [3, 10, 60, 18, 0, 1];

fuzz_target!(|data: &[u8]| {
    let [api, version, body @ ..] = data else {
        return;
    };
    let mut rewritten = 0usize;
    let mut advertise = |_node: i32, _host: &str, _port: i32| {
        rewritten += 1;
        ("proxy.example.com".to_owned(), 30_000)
    };
    let api = APIS[usize::from(*api) % APIS.len()];
    let out = answer(api, i16::from(*version % 20), body, &mut advertise);
    if let Ok(Some(out)) = out {
        assert!(out.keep <= body.len());
        let len = out.keep + out.tail.len();
        // A tagged field's size may take one more varint byte after a rewrite. An
        // ApiVersions error answer that cannot be read is replaced by the proxy's own
        // v0 one, offering ApiVersions alone: 12 bytes.
        let grown = body.len() + rewritten * (2 + "proxy.example.com".len()) + 5;
        assert!(len <= if api == 18 { grown.max(12) } else { grown });
        if rewritten == 0 && api != 18 {
            // Bytes after the end of the answer's schema are cut.
            let whole = [&body[..out.keep], &out.tail[..]].concat();
            assert_eq!(whole[..], body[..len]);
        }
        if matches!(api, 0 | 1) {
            // It may fail (an error, never a panic) when the answer's last tag leaves
            // no number above it for padding.
            let announced = body.len() - out.keep;
            if let Ok(fitted) = same_length::fit(&out.tail, announced) {
                assert_eq!(fitted.len(), announced);
            }
        }
    }
});
