#!/usr/bin/env bash
# The quick start's second command: installs what is missing, builds, and runs
# the whole test suite (unit tests, host tests, conformance cases), then the
# shared conformance cases against each host (wasmtime, Python, Node) through
# its adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace "$@"

for host in wasmtime python node; do
    scripts/conformance.sh --host "$host" --jobs 2
done
