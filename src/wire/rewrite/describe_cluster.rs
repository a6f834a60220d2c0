//! DescribeCluster responses (v0 to v2, all flexible): the brokers array is rewritten.

use super::walk::Walk;
use super::{Advertise, MIN_BROKER};
use crate::wire::WireError;

pub const MAX_VERSION: i16 = 2;

pub fn rewrite(body: &[u8], version: i16, advertise: &mut Advertise<'_>) -> Result<Vec<u8>, WireError> {
    super::check_version("DescribeCluster", version, MAX_VERSION)?;
    let mut w = Walk::new(body, true, "describe cluster response");
    w.copy(4 + 2)?;
    w.copy_string()?;
    if version >= 1 {
        w.copy(1)?;
    }
    w.copy_string()?;
    w.copy(4)?;
    for _ in 0..w.copy_array_len(MIN_BROKER)? {
        let node = w.copy_i32()?;
        w.replace_address(node, advertise)?;
        w.copy_string()?;
        if version >= 2 {
            w.copy(1)?;
        }
        w.copy_tagged()?;
    }
    w.copy(4)?; // cluster authorized operations
    w.copy_tagged()?;
    w.finish()
}
