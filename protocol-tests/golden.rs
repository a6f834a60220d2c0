//! Record batches captured from real producers (librdkafka 2.16 and kafka-python 3.0,
//! every codec, transactions; see `peers/capture_batches.py`) against the wire layer.

use bytes::Bytes;
use serde_json::Value;
use strait::client::fetch::Isolation;
use strait::mirror::select::{select, Held};
use strait::wire::batch::{patch, Batch, Piece, ProducerStamp, Splitter};
use strait::wire::codec::{decompress, Compression};
use strait::wire::fetch::AbortedTransaction;
use strait::wire::rebuild::{rebuild, Target};
use strait::wire::records::read_records;

use crate::harness::{read, repo};

fn manifest() -> Value {
    let text = read(repo().join("protocol-tests/golden/manifest.json"));
    serde_json::from_slice(&text).unwrap()
}

fn cases() -> Vec<(Value, Bytes)> {
    manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let file = c["file"].as_str().unwrap();
            (
                c.clone(),
                Bytes::from(read(repo().join("protocol-tests/golden").join(file))),
            )
        })
        .collect()
}

fn batches(records: Bytes) -> Vec<Batch> {
    Splitter::new(records)
        .map(|p| match p.unwrap() {
            Piece::Batch(b) => b,
            Piece::Truncated { .. } => panic!("golden files hold whole batches"),
        })
        .collect()
}

/// (offset, key, value, headers, timestamp) of every record, as a consumer computes them.
type Decoded = (i64, Option<String>, Option<String>, Vec<(String, Option<String>)>, i64);

fn decode(batch: &Batch) -> Vec<Decoded> {
    let plain = decompress(batch.compression().unwrap(), &batch.records(), 1 << 24).unwrap();
    let hex = |b: Option<&[u8]>| b.map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>());
    read_records(&plain, batch.record_count())
        .unwrap()
        .iter()
        .map(|r| {
            let ts = match batch.timestamp_type() {
                strait::wire::batch::TimestampType::CreateTime => batch.base_timestamp() + r.timestamp_delta,
                strait::wire::batch::TimestampType::LogAppendTime => batch.max_timestamp(),
            };
            let headers = r
                .headers
                .iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), hex(*v)))
                .collect();
            (
                batch.base_offset() + i64::from(r.offset_delta),
                hex(r.key),
                hex(r.value),
                headers,
                ts,
            )
        })
        .collect()
}

fn expected(case: &Value, only_committed: bool) -> Vec<Decoded> {
    case["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !(only_committed && r["aborted"].as_bool().unwrap_or(false)))
        .map(|r| {
            let s = |v: &Value| v.as_str().map(str::to_owned);
            let headers = r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h[0].as_str().unwrap().to_owned(), s(&h[1])))
                .collect();
            (
                r["offset"].as_i64().unwrap(),
                s(&r["key"]),
                s(&r["value"]),
                headers,
                r["timestamp"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn data_records(batches: &[Batch]) -> Vec<Decoded> {
    batches.iter().filter(|b| !b.is_control()).flat_map(decode).collect()
}

#[test]
fn golden_batches_of_every_producer_and_codec_decode_to_the_records_consumers_saw() {
    for (case, bytes) in cases() {
        let name = case["case"].as_str().unwrap();
        let batches = batches(bytes);
        assert_eq!(batches.len(), case["batches"].as_array().unwrap().len(), "{name}");
        for b in batches.iter().filter(|b| !b.is_control()) {
            b.verify_crc().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                b.compression().unwrap().name(),
                case["codec"].as_str().unwrap(),
                "{name}"
            );
        }
        assert_eq!(data_records(&batches), expected(&case, false), "{name}");
    }
}

#[test]
fn kafka_python_snappy_is_xerial_framed_and_librdkafka_snappy_is_raw() {
    let all = cases();
    let first = |case: &str| {
        let (_, bytes) = all.iter().find(|(c, _)| c["case"] == case).unwrap();
        batches(bytes.clone())[0].records()
    };
    assert_eq!(&first("kafkapython_snappy")[..8], b"\x82SNAPPY\x00");
    assert_ne!(&first("rdkafka_snappy")[..8], b"\x82SNAPPY\x00");
}

#[test]
fn patching_golden_batches_changes_only_producer_fields_and_keeps_crc_valid() {
    let stamp = ProducerStamp {
        producer_id: 4242,
        producer_epoch: 7,
        base_sequence: 1000,
        transactional: false,
    };
    for (case, bytes) in cases() {
        for b in batches(bytes).iter().filter(|b| !b.is_control()) {
            let patched = Batch::new(patch(b, stamp).to_contiguous()).unwrap();
            patched.verify_crc().unwrap();
            assert_eq!(
                patched.records(),
                b.records(),
                "{}: records must be the same bytes",
                case["case"]
            );
            assert_eq!(
                (patched.producer_id(), patched.producer_epoch(), patched.base_sequence()),
                (4242, 7, 1000)
            );
            assert!(!patched.is_transactional());
            assert_eq!(patched.compression().unwrap(), b.compression().unwrap());
            assert_eq!(
                (
                    patched.max_timestamp(),
                    patched.base_timestamp(),
                    patched.record_count(),
                    patched.last_offset_delta()
                ),
                (
                    b.max_timestamp(),
                    b.base_timestamp(),
                    b.record_count(),
                    b.last_offset_delta()
                )
            );
            let shift = |d: Vec<Decoded>, by: i64| d.into_iter().map(|mut r| (r.0 -= by, r).1).collect::<Vec<_>>();
            assert_eq!(shift(decode(&patched), 0), shift(decode(b), b.base_offset()));
        }
    }
}

#[test]
fn recompressing_golden_batches_to_every_codec_keeps_every_record() {
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (case, bytes) in cases() {
        for b in batches(bytes).iter().filter(|b| !b.is_control()) {
            for codec in codecs {
                let target = Target {
                    compression: codec,
                    level: None,
                    max_decompressed: 1 << 24,
                };
                let out = rebuild(b, target).unwrap();
                out.verify_crc().unwrap();
                assert_eq!(out.compression().unwrap(), codec);
                assert_eq!(decode(&out), decode(b), "{} to {codec:?}", case["case"]);
            }
        }
    }
}

fn txn_case() -> (Value, Bytes, Vec<AbortedTransaction>) {
    let (case, bytes) = cases().into_iter().find(|(c, _)| c["case"] == "rdkafka_txn").unwrap();
    let aborted: Vec<AbortedTransaction> = case["aborted_transactions_from_markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| AbortedTransaction {
            producer_id: a[0].as_i64().unwrap(),
            first_offset: a[1].as_i64().unwrap(),
        })
        .collect();
    assert!(!aborted.is_empty());
    (case, bytes, aborted)
}

const BIG: usize = 1 << 30;

#[test]
fn read_committed_selection_drops_the_aborted_transaction_and_control_batches() {
    let (case, bytes, aborted) = txn_case();
    let committed = select(
        bytes.clone(),
        0,
        &aborted,
        Isolation::ReadCommitted,
        &mut Held::default(),
        BIG,
    )
    .unwrap();
    assert_eq!(data_records(&committed.batches), expected(&case, true));
    let all = select(
        bytes.clone(),
        0,
        &aborted,
        Isolation::ReadUncommitted,
        &mut Held::default(),
        BIG,
    )
    .unwrap();
    assert_eq!(data_records(&all.batches), expected(&case, false));
    assert!(committed.batches.len() < all.batches.len());
    assert_eq!(committed.next_offset, Some(case["high_watermark"].as_i64().unwrap()));
}

#[test]
fn abort_markers_decide_even_when_the_broker_sends_no_aborted_transactions_list() {
    let (case, bytes, _) = txn_case();
    let committed = select(bytes, 0, &[], Isolation::ReadCommitted, &mut Held::default(), BIG).unwrap();
    assert_eq!(data_records(&committed.batches), expected(&case, true));
}

#[test]
fn a_transaction_whose_marker_comes_in_a_later_fetch_is_held_until_then() {
    let (case, bytes, _) = txn_case();
    let mut held = Held::default();
    let mut forwarded = Vec::new();
    let mut fetch_from = 0;
    let mut progress = Vec::new();
    // One batch per fetch, as librdkafka's mock cluster answers.
    for batch in batches(bytes) {
        let sel = select(
            batch.as_bytes().clone(),
            fetch_from,
            &[],
            Isolation::ReadCommitted,
            &mut held,
            BIG,
        )
        .unwrap();
        fetch_from = sel.fetch_from.unwrap();
        progress.extend(sel.next_offset);
        forwarded.extend(sel.batches);
        if batch.is_transactional() && !batch.is_control() {
            assert!(sel.next_offset.is_none(), "progress must not pass an undecided batch");
        }
    }
    assert!(held.is_empty());
    assert_eq!(data_records(&forwarded), expected(&case, true));
    assert!(progress.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(progress.last().copied(), case["high_watermark"].as_i64());
}

#[test]
fn held_data_beyond_its_bound_is_decided_by_the_aborted_transactions_list() {
    let (case, bytes, aborted) = txn_case();
    let first_txn = batches(bytes.clone())[0].clone();
    let mut held = Held::default();
    let sel = select(
        first_txn.as_bytes().clone(),
        0,
        &aborted,
        Isolation::ReadCommitted,
        &mut held,
        10,
    )
    .unwrap();
    assert_eq!(
        sel.batches.len(),
        1,
        "over the bound, the list's verdict (committed) applies"
    );
    assert!(held.is_empty());
    assert_eq!(data_records(&sel.batches), expected(&case, true)[..2].to_vec());
}

#[test]
fn a_fetch_cut_inside_a_batch_yields_the_whole_batches_before_it() {
    let (_, bytes) = cases().into_iter().find(|(c, _)| c["case"] == "rdkafka_none").unwrap();
    let whole = batches(bytes.clone());
    let cut = bytes.slice(..whole[0].len() + 30);
    let pieces: Vec<Piece> = Splitter::new(cut).map(Result::unwrap).collect();
    assert!(matches!(&pieces[0], Piece::Batch(b) if *b == whole[0]));
    assert!(matches!(
        pieces[1],
        Piece::Truncated {
            base_offset: Some(_),
            have: 30
        }
    ));
    let cut = bytes.slice(..whole[0].len() + 30);
    let sel = select(cut, 0, &[], Isolation::ReadCommitted, &mut Held::default(), BIG).unwrap();
    assert_eq!(sel.batches.len(), 1);
    assert_eq!(sel.next_offset, Some(whole[0].next_offset()));
}

/// A batch of these bytes with a valid CRC, as a broker would have written it.
fn with_crc(mut bytes: Vec<u8>) -> Batch {
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Batch::new(Bytes::from(bytes)).unwrap()
}

fn set_attributes(bytes: &mut [u8], edit: impl FnOnce(i16) -> i16) {
    let attributes = edit(i16::from_be_bytes([bytes[21], bytes[22]]));
    bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
}

#[test]
fn log_append_time_batches_are_rebuilt_so_the_target_keeps_the_source_append_time() {
    let (_, bytes) = cases().into_iter().find(|(c, _)| c["case"] == "rdkafka_lz4").unwrap();
    let appended_at = 1_777_000_000_123i64;
    let mut raw = batches(bytes)[0].as_bytes().to_vec();
    set_attributes(&mut raw, |a| a | 0x08);
    raw[35..43].copy_from_slice(&appended_at.to_be_bytes());
    let source = with_crc(raw);
    assert!(strait::wire::rebuild::needs_record_rewrite(&source).unwrap());
    let seen_at_source = decode(&source);
    assert!(seen_at_source.iter().all(|r| r.4 == appended_at));
    let target = Target {
        compression: Compression::Lz4,
        level: None,
        max_decompressed: 1 << 24,
    };
    let out = rebuild(&source, target).unwrap();
    out.verify_crc().unwrap();
    assert_eq!(out.timestamp_type(), strait::wire::batch::TimestampType::CreateTime);
    assert_eq!(
        decode(&out),
        seen_at_source,
        "a consumer of the target sees what a source consumer saw"
    );
}

#[test]
fn compressed_batches_with_compaction_gaps_are_rebuilt_with_dense_offsets() {
    let (_, bytes) = cases().into_iter().find(|(c, _)| c["case"] == "rdkafka_none").unwrap();
    let whole = batches(bytes)[0].clone();
    // Keep every other record with its original offset delta, as compaction leaves it.
    let plain = whole.records();
    let records = read_records(&plain, whole.record_count()).unwrap();
    let mut kept = Vec::new();
    let mut count = 0i32;
    for r in records.iter().step_by(2) {
        strait::wire::records::write_record(&mut kept, r, r.timestamp_delta, r.offset_delta);
        count += 1;
    }
    let packed = strait::wire::codec::compress(Compression::Gzip, None, &kept).unwrap();
    let mut raw = whole.header().to_vec();
    raw.extend_from_slice(&packed);
    let len = (raw.len() - 12) as i32;
    raw[8..12].copy_from_slice(&len.to_be_bytes());
    set_attributes(&mut raw, |a| (a & !7) | 1);
    raw[57..61].copy_from_slice(&count.to_be_bytes());
    let compacted = with_crc(raw);
    assert!(
        compacted.last_offset_delta() + 1 > compacted.record_count(),
        "the batch has gaps"
    );
    assert!(strait::wire::rebuild::needs_record_rewrite(&compacted).unwrap());
    let target = Target {
        compression: Compression::Gzip,
        level: None,
        max_decompressed: 1 << 24,
    };
    let out = rebuild(&compacted, target).unwrap();
    assert_eq!(out.last_offset_delta() + 1, out.record_count());
    let content = |d: Vec<Decoded>| d.into_iter().map(|r| (r.1, r.2, r.3, r.4)).collect::<Vec<_>>();
    assert_eq!(content(decode(&out)), content(decode(&compacted)));
}

/// Inputs the fuzzers found, kept so that what they broke stays fixed. The select
/// target's input is a flags byte (aborted-list length in bits 0-2, a fetch position in
/// bit 3), the list, then a records field.
#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = repo().join("fuzz/regressions/select");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let input = read(entry.unwrap().path());
        let flags = input[0];
        let skip = 1 + if flags & 0x08 != 0 { 8 } else { 0 } + usize::from(flags & 0x07) * 16;
        let records = Bytes::copy_from_slice(&input[skip..]);
        for isolation in [Isolation::ReadCommitted, Isolation::ReadUncommitted] {
            if let Ok(sel) = select(records.clone(), -1, &[], isolation, &mut Held::default(), BIG) {
                assert!(
                    sel.batches.iter().all(|b| b.record_count() > 0),
                    "a corrupt record count passed"
                );
            }
        }
        seen += 1;
    }
    assert!(seen > 0, "no regression inputs in {}", dir.display());
}
