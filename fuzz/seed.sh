#!/usr/bin/env bash
# Seeds the fuzz corpora with record batches captured from real producers
# (protocol-tests/golden/*.bin). Corpus dirs are gitignored, so this runs before fuzzing.
# Idempotent: seed files are named after their source and overwritten.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
golden="$here/../protocol-tests/golden"
corpus="$here/corpus"

mkdir -p "$corpus"/{batch_split_patch,rebuild,select,records,fetch_response,config}

# The config parser starts from the documented example.
cp "$here/../config.example.toml" "$corpus/config/example.toml"

# Big-endian u32 at byte offset $2 of file $1.
be32() { od -An -tu1 -j"$2" -N4 "$1" | awk '{print ($1*16777216)+($2*65536)+($3*256)+$4}'; }

for bin in "$golden"/*.bin; do
    name="$(basename "$bin" .bin)"
    # Whole records fields, as the batch targets take them.
    cp "$bin" "$corpus/batch_split_patch/golden_$name"
    cp "$bin" "$corpus/rebuild/golden_$name"
    # select: flags byte 0 (no aborted transactions, position -1), then the records.
    { printf '\x00'; cat "$bin"; } >"$corpus/select/golden_$name"
    # fetch_response v4 (flag byte 0): throttle 0, one topic "t", one partition, no
    # aborted transactions, then the records field with its length.
    size=$(stat -c %s "$bin")
    {
        printf '\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01'
        printf '\x00\x00\x00\x00\x00\x00' # partition 0, error 0
        printf '\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x0a' # hw, lso
        printf '\x00\x00\x00\x00' # aborted: empty
        printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((size >> 24 & 255)) $((size >> 16 & 255)) $((size >> 8 & 255)) $((size & 255)))"
        cat "$bin"
    } >"$corpus/fetch_response/golden_$name"
done

# select with read_committed work to do: the transactional capture with its producer id
# listed as aborted from offset 0 (producer id at byte 43 of the first batch).
txn="$golden/rdkafka_txn.bin"
if [ -f "$txn" ]; then
    {
        printf '\x01'
        dd if="$txn" bs=1 skip=43 count=8 status=none
        printf '\x00\x00\x00\x00\x00\x00\x00\x00'
        cat "$txn"
    } >"$corpus/select/golden_rdkafka_txn_aborted"
fi

# records: the uncompressed records section of each first batch of the "none" captures,
# after a 4-byte record count (byte 57..61 of the batch header) and the 61-byte header.
for name in rdkafka_none kafkapython_none; do
    bin="$golden/$name.bin"
    [ -f "$bin" ] || continue
    len=$(( $(be32 "$bin" 8) + 12 ))
    {
        dd if="$bin" bs=1 skip=57 count=4 status=none
        dd if="$bin" bs=1 skip=61 count=$((len - 61)) status=none
    } >"$corpus/records/golden_$name"
done

# decompress_*: the records section of every compressed golden batch, i.e. each
# producer's own gzip, snappy (raw and xerial), lz4 frame and zstd output.
codecs=(none gzip snappy lz4 zstd)
for bin in "$golden"/*.bin; do
    name="$(basename "$bin" .bin)"
    size=$(stat -c %s "$bin")
    at=0
    i=0
    while [ $((at + 61)) -le "$size" ]; do
        len=$(( $(be32 "$bin" $((at + 8))) + 12 ))
        codec=$(( $(od -An -tu1 -j$((at + 22)) -N1 "$bin") & 7 ))
        if [ "$codec" -ge 1 ] && [ "$codec" -le 4 ]; then
            dir="$corpus/decompress_${codecs[$codec]}"
            mkdir -p "$dir"
            dd if="$bin" bs=1 skip=$((at + 61)) count=$((len - 61)) status=none >"$dir/golden_${name}_$i"
        fi
        at=$((at + len))
        i=$((i + 1))
    done
done

# control_responses: byte 0 the api (index into responses::API_KEYS), byte 1 the
# version, then a small answer a broker could give: broker "b" at 9092, topic "t".
dir="$corpus/control_responses"
mkdir -p "$dir"
# ApiVersions v3: two api ranges.
printf '\x00\x03\x00\x00\x03\x00\x00\x00\x03\x00\x09\x00\x00\x03\x00\x01\x00\x0c\x00\x00\x00\x00\x00\x00' \
    >"$dir/golden_api_versions_v3"
# Metadata v1: one broker, controller 1, one topic with one partition led by 1.
{
    printf '\x03\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x01b\x00\x00\x23\x84\xff\xff'
    printf '\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01t\x00\x00\x00\x00\x01'
    printf '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01'
} >"$dir/golden_metadata_v1"
# Metadata v9 (flexible): the same, plus cluster id "c".
{
    printf '\x03\x09\x00\x00\x00\x00\x02\x00\x00\x00\x01\x02b\x00\x00\x23\x84\x00\x00\x02c\x00\x00\x00\x01'
    printf '\x02\x00\x00\x02t\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00'
    printf '\x02\x00\x00\x00\x01\x02\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
} >"$dir/golden_metadata_v9"
# FindCoordinator v3: broker 1 at b:9092.
printf '\x09\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02b\x00\x00\x23\x84\x00' \
    >"$dir/golden_find_coordinator_v3"
# OffsetFetch v6: t/0 committed at 10.
{
    printf '\x0b\x06\x00\x00\x00\x00\x02\x02t\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0a'
    printf '\xff\xff\xff\xff\x01\x00\x00\x00\x00\x00\x00\x00'
} >"$dir/golden_offset_fetch_v6"
# DescribeConfigs v4: topic t with n=v set on the topic.
{
    printf '\x08\x04\x00\x00\x00\x00\x02\x00\x00\x00\x02\x02t\x02\x02n\x02v\x00\x01\x00\x01'
    printf '\x00\x00\x00\x00\x00'
} >"$dir/golden_describe_configs_v4"

echo "seeded $(find "$corpus" -name 'golden_*' | wc -l) inputs under $corpus"
