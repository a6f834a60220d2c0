//! Rewriters of the responses that carry broker addresses, as pure functions: body in,
//! a function from (node id, upstream host, upstream port) to the address to advertise,
//! body out. They never hand broker bytes to a general decoder: they copy the body and
//! replace only the address fields, so every version's other fields pass unchanged.

pub mod allowed;
pub mod api_versions;
pub mod describe_cluster;
pub mod find_coordinator;
pub mod metadata;
pub mod node_endpoints;
pub mod same_length;
pub mod walk;

use kafka_protocol::messages::ApiKey;

use crate::wire::WireError;

/// Maps a broker (node id, upstream host, upstream port) to the address clients get.
pub type Advertise<'a> = dyn FnMut(i32, &str, i32) -> (String, i32) + 'a;

/// A rewritten answer body: its first `keep` bytes as the broker sent them, then `tail`.
/// Answers that carry records keep them in the unchanged part.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub keep: usize,
    pub tail: Vec<u8>,
}

/// Whether answers to this api and version may need rewriting (or clamping).
pub fn rewritten(api_key: i16, version: i16) -> bool {
    matches!(
        ApiKey::try_from(api_key),
        Ok(ApiKey::Metadata | ApiKey::FindCoordinator | ApiKey::DescribeCluster | ApiKey::ApiVersions)
    ) || node_endpoints::carried(api_key, version)
}

/// An answer's body with every broker address replaced (ApiVersions: clamped), or `None`
/// when it passes unchanged.
pub fn answer(
    api_key: i16,
    version: i16,
    body: &[u8],
    advertise: &mut Advertise<'_>,
) -> Result<Option<Rewritten>, WireError> {
    let whole = match ApiKey::try_from(api_key) {
        Ok(ApiKey::Metadata) => metadata::rewrite(body, version, advertise)?,
        Ok(ApiKey::FindCoordinator) => find_coordinator::rewrite(body, version, advertise)?,
        Ok(ApiKey::DescribeCluster) => describe_cluster::rewrite(body, version, advertise)?,
        Ok(ApiKey::ApiVersions) => api_versions::answer(body, version)?,
        Ok(ApiKey::Produce | ApiKey::Fetch) => return node_endpoints::rewrite(api_key, version, body, advertise),
        _ => return Ok(None),
    };
    Ok(Some(Rewritten { keep: 0, tail: whole }))
}

/// Smallest encoding of a broker entry (node id, empty host, port): bounds counts.
pub(crate) const MIN_BROKER: usize = 4 + 1 + 4;

/// Refuses a version the rewriter does not know, rather than guess at its layout.
pub(crate) fn check_version(api: &'static str, version: i16, max: i16) -> Result<(), WireError> {
    if !(0..=max).contains(&version) {
        return Err(WireError::UnsupportedVersion {
            api,
            version,
            min: 0,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
