//! Which fetched batches a flow forwards: whole batches past its fetch position, minus
//! control batches and, with read_committed, batches of aborted transactions.
//!
//! A transactional batch is decided by its producer's next control marker (commit or
//! abort). Until that marker is seen, the batch and everything after it are held, across
//! fetches if need be, so that the target receives committed data in source order and
//! progress never passes an undecided batch. This does not depend on the broker's
//! aborted-transactions list, which some Kafka-compatible brokers leave empty; the list's
//! verdict is used only when held data outgrows its bound.

use std::collections::HashSet;

use bytes::Bytes;

use crate::client::fetch::Isolation;
use crate::wire::batch::{Batch, Piece, Splitter};
use crate::wire::codec::Compression;
use crate::wire::fetch::AbortedTransaction;
use crate::wire::records::read_records;
use crate::wire::WireError;

/// A batch between fetch and forward.
#[derive(Debug)]
enum Entry {
    Keep(Batch),
    /// Not forwarded (control batch, aborted data); only moves the position.
    Skip {
        next: i64,
    },
    /// Transactional data whose marker has not been seen yet.
    Open {
        batch: Batch,
        list_says_aborted: bool,
    },
}

impl Entry {
    fn next_offset(&self) -> i64 {
        match self {
            Entry::Keep(b) | Entry::Open { batch: b, .. } => b.next_offset(),
            Entry::Skip { next } => *next,
        }
    }
}

/// Batches held for one partition until the transactions among them are decided, with
/// the bytes they take.
#[derive(Debug, Default)]
pub struct Held {
    entries: Vec<Entry>,
    bytes: usize,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn resolve(&mut self, producer_id: i64, abort: bool) {
        for e in &mut self.entries {
            if let Entry::Open { batch, .. } = e {
                if batch.producer_id() == producer_id {
                    if abort {
                        self.bytes -= batch.len();
                    }
                    *e = if abort {
                        Entry::Skip {
                            next: batch.next_offset(),
                        }
                    } else {
                        Entry::Keep(batch.clone())
                    };
                }
            }
        }
    }

    /// Decides every open batch by the broker's aborted-transactions list.
    fn resolve_by_list(&mut self) {
        let open: Vec<(i64, bool)> = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Open {
                    batch,
                    list_says_aborted,
                } => Some((batch.producer_id(), *list_says_aborted)),
                _ => None,
            })
            .collect();
        for (pid, aborted) in open {
            self.resolve(pid, aborted);
        }
    }
}

#[derive(Debug, Default)]
pub struct Selection {
    /// Batches to forward now, in source order.
    pub batches: Vec<Batch>,
    /// The source offset after the forwarded prefix: the progress to commit once the
    /// target acknowledged `batches`.
    pub next_offset: Option<i64>,
    /// Where the next fetch starts: after every batch seen, held ones included.
    pub fetch_from: Option<i64>,
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

/// Sorts the fetched batches of one partition into `held`, then takes out the decided
/// prefix. `max_held` bounds the bytes held for undecided transactions.
pub fn select(
    records: Bytes,
    fetch_position: i64,
    aborted: &[AbortedTransaction],
    isolation: Isolation,
    held: &mut Held,
    max_held: usize,
) -> Result<Selection, WireError> {
    let mut aborted = aborted.to_vec();
    aborted.sort_by_key(|a| a.first_offset);
    let mut pending_aborts = aborted.iter().peekable();
    let mut aborting: HashSet<i64> = HashSet::new();
    let committed_only = isolation == Isolation::ReadCommitted;
    let mut fetch_from = None;
    for (index, piece) in Splitter::new(records).enumerate() {
        let batch = match piece? {
            Piece::Batch(b) => b,
            // A cut-off batch is normal after whole ones; as the first, the broker sent
            // less than one batch, which it never does (KIP-74), and fetching again would
            // bring the same bytes forever.
            Piece::Truncated { base_offset, have } if index == 0 => {
                return Err(WireError::malformed(
                    "fetched records",
                    format!(
                        "the first batch (offset {}) runs past the end of the answer, which holds {have} bytes of it",
                        base_offset.map_or_else(|| "unknown".to_owned(), |o| o.to_string())
                    ),
                ))
            }
            Piece::Truncated { .. } => break,
        };
        if batch.next_offset() <= fetch_position {
            continue;
        }
        fetch_from = Some(batch.next_offset());
        while let Some(a) = pending_aborts.next_if(|a| a.first_offset < batch.next_offset()) {
            aborting.insert(a.producer_id);
        }
        let entry = if batch.is_control() {
            if committed_only {
                let abort = is_abort_marker(&batch)?;
                held.resolve(batch.producer_id(), abort);
                if abort {
                    aborting.remove(&batch.producer_id());
                }
            }
            Entry::Skip {
                next: batch.next_offset(),
            }
        } else if batch.record_count() == 0 {
            Entry::Skip {
                next: batch.next_offset(),
            }
        } else if committed_only && batch.is_transactional() {
            held.bytes += batch.len();
            Entry::Open {
                list_says_aborted: aborting.contains(&batch.producer_id()),
                batch,
            }
        } else {
            held.bytes += batch.len();
            Entry::Keep(batch)
        };
        held.entries.push(entry);
    }
    if held.bytes > max_held {
        tracing::warn!(
            held = held.bytes,
            max_held,
            "transaction markers not seen within the held-bytes bound; deciding by the broker's aborted-transactions list"
        );
        held.resolve_by_list();
    }
    let mut out = Selection {
        fetch_from,
        ..Selection::default()
    };
    let decided = held
        .entries
        .iter()
        .position(|e| matches!(e, Entry::Open { .. }))
        .unwrap_or(held.entries.len());
    for entry in held.entries.drain(..decided) {
        out.next_offset = Some(entry.next_offset());
        if let Entry::Keep(b) = entry {
            held.bytes -= b.len();
            out.batches.push(b);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build::batch_of;

    fn choose(records: Bytes) -> Result<Selection, WireError> {
        select(records, 0, &[], Isolation::ReadCommitted, &mut Held::default(), 1 << 20)
    }

    /// A batch cut off after whole ones is fetched again next time; cut off as the first,
    /// it would be fetched again forever, so it is refused.
    #[test]
    fn a_cut_off_batch_is_refused_only_when_it_is_the_first() {
        let batch = batch_of(&[b"one", b"two"], 1_700_000_000_000).unwrap();
        let whole = batch.as_bytes().clone();
        let cut = whole.slice(..whole.len() - 5);
        let refused = choose(cut.clone()).unwrap_err();
        assert!(
            refused.to_string().contains("runs past the end of the answer"),
            "{refused}"
        );
        let mut both = whole.to_vec();
        both.extend_from_slice(&cut);
        let chosen = choose(Bytes::from(both)).unwrap();
        assert_eq!(chosen.batches.len(), 1);
        assert_eq!(chosen.next_offset, Some(batch.next_offset()));
    }
}
