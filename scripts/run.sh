#!/usr/bin/env bash
# The quick start's first command: installs what is missing, builds, and runs
# the storage server on its defaults (./data/storage and ./data/state, HTTPS on
# loopback). Extra arguments go to `host-runner serve` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -p host-runner
exec ./target/release/host-runner serve "$@"
