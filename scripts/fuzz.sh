#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the engine's entry points
# and the wire format, each target for a bounded time:
#
#   scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]     (default 30; all targets)
#
# Targets live in fuzz/fuzz_targets and run the same drivers as the seeded
# tests in the suite. They build on stable Rust without a sanitizer
# (`--sanitizer none`): findings are panics, failed checks and hangs. A
# finding is saved under fuzz/artifacts/TARGET/; replay it with
# `cargo fuzz run --sanitizer none TARGET FILE`, then make it a test. The
# corpus grows in target/fuzz-corpus/TARGET across runs on one machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(engine_ops gbs_wire)

# 0.13 builds on the pinned toolchain; --locked keeps its dependencies as released.
if ! cargo fuzz --version 2>/dev/null | grep -q '^cargo-fuzz 0\.13\.'; then
    cargo install cargo-fuzz --version '^0.13' --locked
fi

target="${CARGO_TARGET_DIR:-$PWD/target}"
for t in "${targets[@]}"; do
    corpus="$target/fuzz-corpus/$t"
    mkdir -p "$corpus"
    echo "fuzz: $t for ${seconds}s"
    # One job, bounded input size and memory: the machine runs other work too.
    log="$target/fuzz-$t.log"
    status=0
    cargo fuzz run --sanitizer none --fuzz-dir fuzz "$t" "$corpus" -- \
        -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 > "$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz: $t failed (exit $status); findings are in fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
