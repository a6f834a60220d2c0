//! Batch selection with both isolation levels over an arbitrary records field.
//!
//! Input: byte 0 holds the number of aborted transactions in bits 0-2, whether an 8-byte
//! fetch position follows in bit 3 (else the position is -1), and the held-bytes bound in
//! bits 4-7 (n * 256 bytes, 15 = unbounded); then 16 bytes per aborted transaction
//! (producer id, first offset, big-endian); the rest is the records field.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strait::client::fetch::Isolation;
use strait::mirror::select::{select, Held, Selection};
use strait::wire::fetch::AbortedTransaction;

fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[..8].try_into().unwrap())
}

fn check(selection: &Selection, position: i64) {
    for batch in &selection.batches {
        assert!(!batch.is_control(), "control batch selected");
        assert!(
            batch.next_offset() > position,
            "batch before the fetch position selected"
        );
        // A negative count is refused when the batch is split (regressions/select/).
        assert!(batch.record_count() > 0, "empty or corrupt batch selected");
    }
    if selection.batches.last().is_some() {
        assert!(selection.next_offset.is_some());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut position = -1;
    if flags & 0x08 != 0 {
        let Some((p, tail)) = rest.split_first_chunk::<8>() else {
            return;
        };
        position = i64::from_be_bytes(*p);
        rest = tail;
    }
    let max_held = match flags >> 4 {
        15 => usize::MAX,
        n => usize::from(n) * 256,
    };
    let count = usize::from(flags & 0x07);
    if rest.len() < count * 16 {
        return;
    }
    let (list, records) = rest.split_at(count * 16);
    let aborted: Vec<AbortedTransaction> = list
        .chunks_exact(16)
        .map(|c| AbortedTransaction {
            producer_id: be_i64(c),
            first_offset: be_i64(&c[8..]),
        })
        .collect();
    let records = Bytes::copy_from_slice(records);

    // read_uncommitted decides everything at once: nothing may stay held.
    let mut held = Held::default();
    let all = select(
        records.clone(),
        position,
        &aborted,
        Isolation::ReadUncommitted,
        &mut held,
        max_held,
    );
    if let Ok(all) = &all {
        check(all, position);
        assert!(
            held.is_empty() && held.bytes() == 0,
            "read_uncommitted held {} bytes",
            held.bytes()
        );
    }

    // read_committed may hold undecided transactions; a later empty fetch with a zero
    // bound must decide them all by the aborted list and release everything.
    let mut held = Held::default();
    let Ok(committed) = select(
        records,
        position,
        &aborted,
        Isolation::ReadCommitted,
        &mut held,
        max_held,
    ) else {
        return;
    };
    check(&committed, position);
    if held.is_empty() {
        assert_eq!(held.bytes(), 0);
    }
    if let Ok(all) = &all {
        assert!(committed.batches.len() <= all.batches.len());
        assert_eq!(committed.fetch_from, all.fetch_from);
    }
    let rest = select(Bytes::new(), position, &aborted, Isolation::ReadCommitted, &mut held, 0)
        .expect("an empty fetch cannot fail");
    check(&rest, position);
    assert!(
        held.is_empty() && held.bytes() == 0,
        "{} bytes still held",
        held.bytes()
    );
});
