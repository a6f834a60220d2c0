//! FindCoordinator responses, in the single form (v0 to v3) and the batched form
//! (v4 to v6). An error answer (node -1) is left as it is.

use super::walk::Walk;
use super::Advertise;
use crate::wire::WireError;

pub const MAX_VERSION: i16 = 6;

/// Replaces a coordinator's host and port; an error answer (node -1) is copied byte for
/// byte.
fn rewrite_address(w: &mut Walk<'_>, advertise: &mut Advertise<'_>) -> Result<(), WireError> {
    let node = w.copy_i32()?;
    if node < 0 {
        w.copy_string()?;
        return w.copy(4);
    }
    w.replace_address(node, advertise)
}

pub fn rewrite(body: &[u8], version: i16, advertise: &mut Advertise<'_>) -> Result<Vec<u8>, WireError> {
    super::check_version("FindCoordinator", version, MAX_VERSION)?;
    let mut w = Walk::new(body, version >= 3, "find coordinator response");
    if version >= 1 {
        w.copy(4)?;
    }
    if version <= 3 {
        w.copy(2)?;
        if version >= 1 {
            w.copy_string()?;
        }
        rewrite_address(&mut w, advertise)?;
        w.copy_tagged()?;
        return w.finish();
    }
    let min_coordinator = 1 + 4 + 1 + 4 + 2 + 1 + 1;
    for _ in 0..w.copy_array_len(min_coordinator)? {
        w.copy_string()?;
        rewrite_address(&mut w, advertise)?;
        w.copy(2)?;
        w.copy_string()?;
        w.copy_tagged()?;
    }
    w.copy_tagged()?;
    w.finish()
}
