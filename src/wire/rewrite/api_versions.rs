//! ApiVersions responses (v0 to v4): only the apis of the proxy's allow-list (see
//! `allowed`) are passed on, each capped at the highest version the proxy lets
//! through, so that no client negotiates an api or a version whose answers could carry
//! broker addresses the proxy does not rewrite.

use super::allowed;
use super::walk::Walk;
use crate::wire::WireError;

pub const MAX_VERSION: i16 = 4;

/// The version range the proxy offers for an api the broker offers from `min` to
/// `max`; `None` when it offers none.
pub fn offered(api_key: i16, min: i16, max: i16) -> Option<(i16, i16)> {
    let capped = allowed::max_version(api_key)?.min(max);
    (capped >= min).then_some((min, capped))
}

pub fn rewrite(body: &[u8], version: i16) -> Result<Vec<u8>, WireError> {
    super::check_version("ApiVersions", version, MAX_VERSION)?;
    let mut w = Walk::new(body, version >= 3, "api versions response");
    w.copy(2)?;
    let listed = w.read_array_len(6)?;
    let mut kept = Vec::with_capacity(listed);
    for _ in 0..listed {
        let key = w.read_i16()?;
        let min = w.read_i16()?;
        let max = w.read_i16()?;
        let tags = w.read_tagged()?;
        if let Some((min, max)) = offered(key, min, max) {
            kept.push((key, min, max, tags));
        }
    }
    w.write_array_len(kept.len())?;
    for (key, min, max, tags) in kept {
        w.write_i16(key);
        w.write_i16(min);
        w.write_i16(max);
        w.write_bytes(tags);
    }
    if version >= 1 {
        w.copy(4)?; // throttle time
    }
    w.copy_tagged()?;
    w.finish()
}

/// An ApiVersions answer cut to the allow-list. A broker answers a version it does not
/// know with an error (Kafka in the v0 form, librdkafka's mock in a form of its own),
/// which makes the client ask again with a version both sides know. Such an error answer
/// that cannot be read is replaced by the proxy's own v0 error answer, offering
/// ApiVersions only: no byte of it reaches the client unread.
pub fn answer(body: &[u8], version: i16) -> Result<Vec<u8>, WireError> {
    rewrite(body, version).or_else(|e| match body.get(..2) {
        Some(&[hi, lo]) if [hi, lo] != [0, 0] => Ok(rewrite(body, 0).unwrap_or_else(|_| refusal([hi, lo]))),
        _ => Err(e),
    })
}

/// A v0 ApiVersions error answer with this error code, offering ApiVersions alone.
fn refusal(error_code: [u8; 2]) -> Vec<u8> {
    let mut out = error_code.to_vec();
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&(kafka_protocol::messages::ApiKey::ApiVersions as i16).to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&MAX_VERSION.to_be_bytes());
    out
}
