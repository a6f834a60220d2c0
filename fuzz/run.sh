#!/usr/bin/env bash
# Builds every fuzz target once, seeds the corpora, fuzzes each target in turn for
# SECONDS_PER_TARGET (default 30) and prints executions per target. Exits non-zero if
# any target crashed (panic, timeout, OOM, leak); the failing inputs are copied to
# fuzz/regressions/<target>/ for a regression test, and printed in hex.
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET]
# Env:   FUZZ_TARGET_DIR  cargo target dir (default fuzz/target)
#        FUZZ_TARGETS     space-separated subset of targets (default: all)
set -uo pipefail

secs="${1:-30}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
target_dir="${FUZZ_TARGET_DIR:-$here/target}"
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"

if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== building ${#targets[@]} targets"
cargo +nightly fuzz build --target-dir "$target_dir" || exit 2
bin_dir="$target_dir/$triple/release"

echo "== seeding"
"$here/seed.sh" || exit 2

logs="$here/artifacts/logs"
mkdir -p "$logs"
failed=0
rows=()
for t in "${targets[@]}"; do
    corpus="$here/corpus/$t"
    artifacts="$here/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    before="$(ls "$artifacts" | wc -l)"
    echo "== fuzzing $t for ${secs}s"
    "$bin_dir/$t" "$corpus" \
        -artifact_prefix="$artifacts/" \
        -max_total_time="$secs" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        >"$logs/$t.log" 2>&1
    rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n1)"
    execs="${execs:-?}"
    rate="?"
    if [[ "$execs" =~ ^[0-9]+$ ]]; then
        rate=$((execs / (secs > 0 ? secs : 1)))
    fi
    units="$(ls "$corpus" | wc -l)"
    status="ok"
    if [ "$rc" -ne 0 ] || [ "$(ls "$artifacts" | wc -l)" -ne "$before" ]; then
        status="FAILED (exit $rc)"
        failed=1
        mkdir -p "$here/regressions/$t"
        for f in $(ls -t "$artifacts" | head -n $(( $(ls "$artifacts" | wc -l) - before ))); do
            cp "$artifacts/$f" "$here/regressions/$t/$f"
            echo "--- $t: $f ($(stat -c %s "$artifacts/$f") bytes): $(xxd -p "$artifacts/$f" | tr -d '\n' | head -c 2000)"
        done
        grep -m3 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" -A2 "$logs/$t.log" || tail -n 20 "$logs/$t.log"
    fi
    rows+=("$(printf '%-20s %12s %10s %8s  %s' "$t" "$execs" "$rate" "$units" "$status")")
done

echo
echo "== summary (${secs}s per target; logs in $logs)"
printf '%-20s %12s %10s %8s  %s\n' target executions exec/s corpus status
printf '%s\n' "${rows[@]}"
exit "$failed"
