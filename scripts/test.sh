#!/usr/bin/env bash
# The quick start's second command: installs what is missing, builds, and runs
# the whole test suite (unit tests, host tests, conformance cases), then the
# shared conformance cases against each host through its adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace "$@"

scripts/conformance.sh --host wasmtime
for host in python node; do
    adapter="hosts/$host/adapter.py"
    [ "$host" = node ] && adapter="hosts/node/adapter.mjs"
    if [ -f "$adapter" ]; then
        scripts/conformance.sh --host "$host"
    else
        echo "test: skipping the $host host's conformance run: $adapter does not exist yet"
    fi
done
