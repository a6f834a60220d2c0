//! Which fetched batches a flow forwards: whole batches past its position, minus control
//! batches and, with read_committed, batches of aborted transactions.

use std::collections::HashSet;

use bytes::Bytes;

use crate::client::fetch::Isolation;
use crate::wire::batch::{Batch, Piece, Splitter};
use crate::wire::codec::Compression;
use crate::wire::fetch::AbortedTransaction;
use crate::wire::records::read_records;
use crate::wire::WireError;

#[derive(Debug, Default)]
pub struct Selection {
    pub batches: Vec<Batch>,
    /// The source offset after the last whole batch seen, if any was.
    pub next_offset: Option<i64>,
}

/// Control record key type of an abort marker.
const ABORT_MARKER: i16 = 0;

fn is_abort_marker(batch: &Batch) -> Result<bool, WireError> {
    if batch.compression()? != Compression::None {
        return Err(WireError::malformed("control batch", "compressed"));
    }
    let records = batch.records();
    let parsed = read_records(&records, batch.record_count())?;
    let key = parsed
        .first()
        .and_then(|r| r.key)
        .ok_or_else(|| WireError::malformed("control batch", "no control record key"))?;
    if key.len() < 4 {
        return Err(WireError::malformed(
            "control record key",
            format!("{} bytes", key.len()),
        ));
    }
    Ok(i16::from_be_bytes([key[2], key[3]]) == ABORT_MARKER)
}

pub fn select(
    records: Bytes,
    position: i64,
    aborted: &[AbortedTransaction],
    isolation: Isolation,
) -> Result<Selection, WireError> {
    let mut aborted = aborted.to_vec();
    aborted.sort_by_key(|a| a.first_offset);
    let mut pending_aborts = aborted.iter().peekable();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut out = Selection::default();
    for piece in Splitter::new(records) {
        let batch = match piece? {
            Piece::Batch(b) => b,
            Piece::Truncated { .. } => break,
        };
        if batch.next_offset() <= position {
            continue;
        }
        out.next_offset = Some(batch.next_offset());
        let committed_only = isolation == Isolation::ReadCommitted;
        if committed_only {
            while let Some(a) = pending_aborts.next_if(|a| a.first_offset < batch.next_offset()) {
                aborting.insert(a.producer_id);
            }
        }
        if batch.is_control() {
            if committed_only && is_abort_marker(&batch)? {
                aborting.remove(&batch.producer_id());
            }
            continue;
        }
        if committed_only && batch.is_transactional() && aborting.contains(&batch.producer_id()) {
            continue;
        }
        if batch.record_count() > 0 {
            out.batches.push(batch);
        }
    }
    Ok(out)
}
