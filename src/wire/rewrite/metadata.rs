//! Metadata responses (v0 to v13): the brokers array is rewritten; topics, partitions
//! and everything after are walked and copied unchanged.

use super::walk::Walk;
use super::{Advertise, MIN_BROKER};
use crate::wire::WireError;

pub const MAX_VERSION: i16 = 13;

pub fn rewrite(body: &[u8], version: i16, advertise: &mut Advertise<'_>) -> Result<Vec<u8>, WireError> {
    super::check_version("Metadata", version, MAX_VERSION)?;
    let mut w = Walk::new(body, version >= 9, "metadata response");
    if version >= 3 {
        w.copy(4)?; // throttle time
    }
    for _ in 0..w.copy_array_len(MIN_BROKER)? {
        let node = w.copy_i32()?;
        w.replace_address(node, advertise)?;
        if version >= 1 {
            w.copy_string()?; // rack
        }
        w.copy_tagged()?;
    }
    if version >= 2 {
        w.copy_string()?; // cluster id
    }
    if version >= 1 {
        w.copy(4)?; // controller id
    }
    for _ in 0..w.copy_array_len(2 + 1 + 1)? {
        copy_topic(&mut w, version)?;
    }
    if (8..=10).contains(&version) {
        w.copy(4)?; // cluster authorized operations
    }
    if version >= 13 {
        w.copy(2)?; // error code
    }
    w.copy_tagged()?;
    w.finish()
}

fn copy_topic(w: &mut Walk<'_>, version: i16) -> Result<(), WireError> {
    w.copy(2)?; // error code
    w.copy_string()?; // name
    if version >= 10 {
        w.copy(16)?; // topic id
    }
    if version >= 1 {
        w.copy(1)?; // is internal
    }
    for _ in 0..w.copy_array_len(2 + 4 + 4 + 1 + 1)? {
        w.copy(2 + 4 + 4)?; // error code, partition, leader
        if version >= 7 {
            w.copy(4)?; // leader epoch
        }
        w.copy_i32_array()?; // replicas
        w.copy_i32_array()?; // in-sync replicas
        if version >= 5 {
            w.copy_i32_array()?; // offline replicas
        }
        w.copy_tagged()?;
    }
    if version >= 8 {
        w.copy(4)?; // topic authorized operations
    }
    w.copy_tagged()
}
