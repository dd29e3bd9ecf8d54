#!/usr/bin/env bash
# The quick start's first command: installs what is missing, builds, and runs
# the walk-through on ./data (store a file, read it back, list its lease).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -p host-runner
exec ./target/release/host-runner demo "$@"
