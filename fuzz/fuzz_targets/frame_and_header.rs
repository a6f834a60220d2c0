//! Frames cut out of an arbitrary byte stream with a small limit, then the request and
//! response header readers on every frame that comes out.
//!
//! Input: byte 0 picks the frame limit (0..=1020), the rest is the stream.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use strait::wire::frame::take_frame;
use strait::wire::header::{request_body_offset, request_header_version, request_route, split_response};

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let max = usize::from(first) * 4;
    let mut buf = BytesMut::from(stream);
    loop {
        let before = buf.len();
        let frame = match take_frame(&mut buf, max) {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => break,
        };
        assert!(
            frame.len() <= max,
            "frame of {} bytes over the limit {max}",
            frame.len()
        );
        assert_eq!(
            buf.len(),
            before - 4 - frame.len(),
            "take_frame consumed the wrong amount"
        );
        if let Ok(route) = request_route(&frame) {
            let known = request_header_version(route.api_key, route.api_version);
            for hv in known.into_iter().chain(0..=2) {
                if let Ok(at) = request_body_offset(&frame, hv) {
                    assert!(at >= 8 && at <= frame.len(), "body offset {at} of {}", frame.len());
                }
            }
        }
        for hv in 0..=1 {
            if let Ok((_, body)) = split_response(&frame, hv) {
                assert!(body.len() + 4 <= frame.len());
            }
        }
    }
});
