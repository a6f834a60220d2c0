//! The control-plane response decoders over arbitrary broker answers. Byte 0 picks the
//! api (in the order of `responses::API_KEYS`) and byte 1 the version; the rest is the
//! body. Every input must end in a value or a clean error, with no allocation beyond
//! the size of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::wire::responses::{decode_by_key, API_KEYS};

fuzz_target!(|data: &[u8]| {
    let [api, version, body @ ..] = data else {
        return;
    };
    let key = API_KEYS[usize::from(*api) % API_KEYS.len()] as i16;
    let _ = decode_by_key(key, i16::from(*version % 16), body);
});
