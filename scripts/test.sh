#!/usr/bin/env bash
# The quick start's second command: installs what is missing, builds, and runs
# the whole test suite (unit tests, host tests, conformance cases).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace "$@"
