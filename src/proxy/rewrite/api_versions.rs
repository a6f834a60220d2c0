//! ApiVersions responses (v0 to v4): forwarded as the broker answers, except that the
//! highest version of each api whose responses carry broker addresses is clamped to what
//! the proxy can rewrite, so no client negotiates a version that would leak them.

use kafka_protocol::messages::ApiKey;

use super::walk::Walk;
use crate::wire::WireError;

pub const MAX_VERSION: i16 = 4;

/// The highest version the proxy lets clients use, for the apis it must watch:
/// rewritten ones, and DescribeQuorum, whose v2 answers add listeners the proxy does not
/// rewrite.
pub fn clamp_for(api_key: i16) -> Option<i16> {
    let key = ApiKey::try_from(api_key).ok()?;
    match key {
        ApiKey::Metadata => Some(super::metadata::MAX_VERSION),
        ApiKey::FindCoordinator => Some(super::find_coordinator::MAX_VERSION),
        ApiKey::DescribeCluster => Some(super::describe_cluster::MAX_VERSION),
        ApiKey::Produce => Some(super::node_endpoints::PRODUCE_MAX),
        ApiKey::Fetch => Some(super::node_endpoints::FETCH_MAX),
        ApiKey::DescribeQuorum => Some(1),
        _ => None,
    }
}

pub fn rewrite(body: &[u8], version: i16) -> Result<Vec<u8>, WireError> {
    super::check_version("ApiVersions", version, MAX_VERSION)?;
    let mut w = Walk::new(body, version >= 3, "api versions response");
    w.copy(2)?;
    for _ in 0..w.copy_array_len(6)? {
        let key = w.copy_i16()?;
        let min = w.copy_i16()?;
        let max = w.read_i16()?;
        let clamped = clamp_for(key).map_or(max, |limit| max.min(limit).max(min));
        w.write_i16(clamped);
        w.copy_tagged()?;
    }
    Ok(w.finish())
}

/// An ApiVersions answer with clamped versions. A broker answers a version it does not
/// know with an error, often in the v0 form; an error answer that cannot be read is
/// passed on as it is, since it carries no addresses and makes the client ask again
/// with a version the proxy reads.
pub fn answer(body: &[u8], version: i16) -> Result<Vec<u8>, WireError> {
    rewrite(body, version)
        .or_else(|_| rewrite(body, 0))
        .or_else(|e| match body.get(..2) {
            Some(code) if code != [0, 0] => Ok(body.to_vec()),
            _ => Err(e),
        })
}
