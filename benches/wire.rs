//! Wire-layer throughput on record batches made by real producers.
//!
//! How the inputs are made (once, before any measurement):
//! - Golden batches: `protocol-tests/golden/*.bin`, records fields captured from librdkafka
//!   and kafka-python producers in every codec (see its manifest.json).
//! - Synthesised batches: the records of the first uncompressed golden batch are decoded
//!   with `read_records`; each is copied with its key and headers kept and its value
//!   grown to the wanted record size by repeating the producer's own value bytes, and the
//!   copies are written with dense offset deltas (`write_record`) until the records
//!   section reaches the wanted batch size. The golden batch's header is reused with
//!   record count, last offset delta and length fixed up, and `rebuild` to codec `none`
//!   gives it a valid CRC. Each codec's version is `rebuild` of that batch to the codec,
//!   i.e. strait's own `compress` plus a new header. Values are the producer's repeated
//!   text, so they compress far better than typical production data.
//!
//! Throughput is counted in uncompressed bytes for codecs and rebuild, in records-field
//! bytes for forward.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strait::wire::batch::{patch, Batch, Piece, ProducerStamp, Splitter, HEADER_LEN};
use strait::wire::codec::{compress, decompress, Compression, DEFAULT_MAX_DECOMPRESSED};
use strait::wire::rebuild::{rebuild, Target};
use strait::wire::records::{read_records, write_record, Record};
use strait::wire::varint::put_varlong;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

const STAMP: ProducerStamp = ProducerStamp {
    producer_id: 4242,
    producer_epoch: 3,
    base_sequence: 1000,
    transactional: false,
};

const MB: usize = 1 << 20;

fn golden_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol-tests/golden"))
}

/// Every golden records field, in file-name order.
fn golden_fields() -> Vec<(String, Bytes)> {
    let mut paths: Vec<_> = std::fs::read_dir(golden_dir())
        .expect("protocol-tests/golden")
        .map(|e| e.expect("golden dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, Bytes::from(std::fs::read(&p).expect("golden file")))
        })
        .collect()
}

fn whole_batches(field: &Bytes) -> Vec<Batch> {
    Splitter::new(field.clone())
        .map_while(|piece| match piece.expect("golden field splits") {
            Piece::Batch(b) => Some(b),
            Piece::Truncated { .. } => None,
        })
        .collect()
}

/// The first uncompressed data batch a producer wrote: the template for synthesis.
fn golden_template(fields: &[(String, Bytes)]) -> Batch {
    fields
        .iter()
        .flat_map(|(_, field)| whole_batches(field))
        .find(|b| b.compression().ok() == Some(Compression::None) && !b.is_control() && b.record_count() > 0)
        .expect("an uncompressed golden batch")
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// An uncompressed batch with a valid CRC: the template's records grown to about
/// `record_size` bytes each, repeated until the records section holds `total` bytes.
fn synth_batch(template: &Batch, record_size: usize, total: usize) -> Batch {
    let plain = template.records();
    let source = read_records(&plain, template.record_count()).expect("golden records parse");
    let mut section = Vec::with_capacity(total + 2 * record_size);
    let mut tail = Vec::with_capacity(2 * record_size);
    let mut count = 0i32;
    while section.len() < total {
        let r = &source[count as usize % source.len()];
        let seed = r.value.filter(|v| !v.is_empty()).unwrap_or(b"strait");
        let fixed = r.key.map_or(0, <[u8]>::len)
            + r.headers
                .iter()
                .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
                .sum::<usize>();
        let want = record_size.saturating_sub(fixed + 16).max(1);
        let value: Vec<u8> = seed.iter().copied().cycle().take(want).collect();
        tail.clear();
        put_bytes(&mut tail, r.key);
        put_bytes(&mut tail, Some(&value));
        put_varlong(&mut tail, r.headers.len() as i64);
        for (k, v) in &r.headers {
            put_bytes(&mut tail, Some(k));
            put_bytes(&mut tail, *v);
        }
        let grown = Record {
            tail: &tail,
            ..r.clone()
        };
        write_record(&mut section, &grown, i64::from(count), count);
        count += 1;
    }
    let mut header = template.header();
    header[8..12].copy_from_slice(&((HEADER_LEN - 12 + section.len()) as i32).to_be_bytes());
    header[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    header[57..61].copy_from_slice(&count.to_be_bytes());
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&section);
    let stale = Batch::new(Bytes::from(bytes)).expect("synthesised batch");
    let batch = to_codec(&stale, Compression::None);
    batch.verify_crc().expect("synthesised batch CRC");
    assert_eq!(read_records(&batch.records(), count).unwrap().len(), count as usize);
    batch
}

fn to_codec(batch: &Batch, compression: Compression) -> Batch {
    let target = Target {
        compression,
        level: None,
        max_decompressed: DEFAULT_MAX_DECOMPRESSED,
    };
    rebuild(batch, target).expect("rebuild")
}

/// Whole batches concatenated, repeated until the field holds at least `total` bytes.
fn records_field(batches: &[Bytes], total: usize) -> Bytes {
    let mut out = Vec::with_capacity(total + batches.iter().map(Bytes::len).sum::<usize>());
    while out.len() < total {
        for b in batches {
            out.extend_from_slice(b);
        }
    }
    Bytes::from(out)
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// Splitter + patch (which recomputes the CRC) over ~1 MB records fields, against a
/// CRC32C pass and a memcpy of the same bytes.
fn forward(c: &mut Criterion) {
    let fields = golden_fields();
    let golden: Vec<Bytes> = fields
        .iter()
        .flat_map(|(_, f)| whole_batches(f))
        .map(|b| b.as_bytes().clone())
        .collect();
    let template = golden_template(&fields);
    let big = synth_batch(&template, 1024, 16 * 1024).as_bytes().clone();
    let inputs = [
        ("golden_mix", records_field(&golden, MB)),
        ("batches_16k", records_field(&[big], MB)),
    ];

    for (name, field) in &inputs {
        let n = Splitter::new(field.clone()).count();
        eprintln!("forward input {name}: {} bytes in {n} batches", field.len());
    }

    let mut g = c.benchmark_group("forward");
    for (name, field) in &inputs {
        g.throughput(Throughput::Bytes(field.len() as u64));
        g.bench_with_input(BenchmarkId::new("split_patch", name), field, |b, field| {
            b.iter(|| {
                let mut bytes = 0;
                for piece in Splitter::new(field.clone()) {
                    if let Piece::Batch(batch) = piece.expect("split") {
                        let patched = patch(&batch, STAMP);
                        bytes += patched.len();
                        black_box(&patched);
                    }
                }
                bytes
            })
        });
        g.bench_with_input(BenchmarkId::new("crc32c", name), field, |b, field| {
            b.iter(|| crc32c::crc32c(black_box(field)))
        });
        let mut dst = vec![0u8; field.len()];
        g.bench_with_input(BenchmarkId::new("memcpy", name), field, |b, field| {
            b.iter(|| {
                dst.copy_from_slice(black_box(field));
                black_box(&dst);
            })
        });
    }
    g.finish();
}

/// Decompress and compress of records sections: 16 records of 1 KB and 10 of 100 KB.
fn codecs(c: &mut Criterion) {
    let template = golden_template(&golden_fields());
    let sizes = [
        ("small_16k", synth_batch(&template, 1024, 16 * 1024)),
        ("large_1m", synth_batch(&template, 100 * 1024, MB)),
    ];
    let mut g = c.benchmark_group("codecs");
    for codec in CODECS {
        for (size, batch) in &sizes {
            let plain = batch.records();
            let packed = to_codec(batch, codec).records();
            eprintln!(
                "codecs input {}/{size}: {} records, {} bytes, compressed {} bytes ({:.1}x)",
                codec.name(),
                batch.record_count(),
                plain.len(),
                packed.len(),
                plain.len() as f64 / packed.len() as f64
            );
            g.throughput(Throughput::Bytes(plain.len() as u64));
            let id = format!("{}/{size}", codec.name());
            g.bench_with_input(BenchmarkId::new("decompress", &id), &packed, |b, packed| {
                b.iter(|| decompress(codec, black_box(packed), DEFAULT_MAX_DECOMPRESSED).expect("decompress"))
            });
            g.bench_with_input(BenchmarkId::new("compress", &id), &plain, |b, plain| {
                b.iter(|| compress(codec, None, black_box(plain)).expect("compress"))
            });
        }
    }
    g.finish();
}

/// A ~1 MB lz4 batch of 1 KB records rebuilt as zstd (level 3, the default).
fn rebuild_batch(c: &mut Criterion) {
    let template = golden_template(&golden_fields());
    let plain = synth_batch(&template, 1024, MB);
    let lz4 = to_codec(&plain, Compression::Lz4);
    let mut g = c.benchmark_group("rebuild");
    g.throughput(Throughput::Bytes(plain.records().len() as u64));
    g.bench_with_input(BenchmarkId::new("lz4_to_zstd", "1k_records_1m"), &lz4, |b, lz4| {
        b.iter(|| to_codec(black_box(lz4), Compression::Zstd))
    });
    g.finish();
}

/// A Metadata v12 answer as a broker writes it: `brokers` brokers with Kubernetes-style
/// names, 50 topics of 12 partitions; encoded by kafka-protocol.
fn metadata_answer(brokers: i32) -> Vec<u8> {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let s = |v: String| StrBytes::from_string(v);
    let response = MetadataResponse::default()
        .with_brokers(
            (0..brokers)
                .map(|i| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(i))
                        .with_host(s(format!("kafka-{i}.kafka-headless.kafka.svc.cluster.local")))
                        .with_port(9092)
                        .with_rack(Some(s(format!("zone-{}", i % 3))))
                })
                .collect(),
        )
        .with_topics(
            (0..50)
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(s(format!("events.topic-{t}")))))
                        .with_partitions(
                            (0..12)
                                .map(|p| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_leader_id(BrokerId(p % brokers))
                                        .with_replica_nodes(vec![BrokerId(p % brokers)])
                                        .with_isr_nodes(vec![BrokerId(p % brokers)])
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let mut out = bytes::BytesMut::new();
    response.encode(&mut out, 12).expect("encode metadata");
    out.to_vec()
}

/// The proxy's Metadata rewrite, per answer, for small and large clusters.
fn metadata_rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("proxy_metadata_rewrite");
    for brokers in [3, 100] {
        let body = metadata_answer(brokers);
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("brokers", brokers), &body, |b, body| {
            b.iter(|| {
                let mut advertise = |node: i32, _: &str, _: i32| ("proxy.example.com".to_owned(), 30_000 + node);
                strait::wire::rewrite::metadata::rewrite(black_box(body), 12, &mut advertise).expect("rewrite")
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = forward, codecs, rebuild_batch, metadata_rewrite
}

criterion_main!(benches);
