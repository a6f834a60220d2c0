//! Metadata responses (v0 to v13): the brokers array is rewritten; topics, partitions
//! and everything after are copied unchanged.

use super::walk::Walk;
use super::{Advertise, MIN_BROKER};
use crate::wire::WireError;

pub const MAX_VERSION: i16 = 13;

pub fn rewrite(body: &[u8], version: i16, advertise: &mut Advertise<'_>) -> Result<Vec<u8>, WireError> {
    super::check_version("Metadata", version, MAX_VERSION)?;
    let mut w = Walk::new(body, version >= 9, "metadata response");
    if version >= 3 {
        w.copy(4)?;
    }
    for _ in 0..w.copy_array_len(MIN_BROKER)? {
        let node = w.copy_i32()?;
        w.replace_address(node, advertise)?;
        if version >= 1 {
            w.copy_string()?;
        }
        w.copy_tagged()?;
    }
    Ok(w.finish())
}
