//! Rewriters of the responses that carry broker addresses, as pure functions: body in,
//! a function from (node id, upstream host, upstream port) to the address to advertise,
//! body out. They never hand broker bytes to a general decoder: they copy the body and
//! replace only the address fields, so every version's other fields pass unchanged.

pub mod api_versions;
pub mod describe_cluster;
pub mod find_coordinator;
pub mod metadata;
pub mod walk;

/// Maps a broker (node id, upstream host, upstream port) to the address clients get.
pub type Advertise<'a> = dyn FnMut(i32, &str, i32) -> (String, i32) + 'a;

/// Smallest encoding of a broker entry (node id, empty host, port): bounds counts.
pub(crate) const MIN_BROKER: usize = 4 + 1 + 4;

/// Refuses a version the rewriter does not know, rather than guess at its layout.
pub(crate) fn check_version(api: &'static str, version: i16, max: i16) -> Result<(), crate::wire::WireError> {
    if !(0..=max).contains(&version) {
        return Err(crate::wire::WireError::UnsupportedVersion {
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
