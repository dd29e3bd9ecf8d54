#!/usr/bin/env bash
# The quick start's second command: installs what is missing, builds, and runs
# the whole test suite (unit tests, host tests, conformance cases), 30 s of
# fuzzing per fuzz target, then the shared conformance cases against each
# host (wasmtime, Python, Node) through its adapter, then the object-store
# runs: a three-node Garage cluster (S3) and azurite (Azure Blob), each under
# the wasmtime host's conformance cases, and Garage under the stock Tahoe
# client, the crawler and a node failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$target"
# One build from a clean tree gains nothing from incremental state, which
# took 1.7 GB of the target folder.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Garage is built once per machine (tens of minutes on a fresh one): start
# that now, beside the suite, and wait for it only when it is needed.
scripts/garage-cluster.sh build > "$target/garage-build.log" 2>&1 &
garage_build=$!

cargo test --workspace "$@"
# The scale bench at its smallest sizes (1k and 10k shares), on the debug build
# just made: it fails when the engine errors, never on a timing.
cargo test -p host-runner --bench scale -- --quick

# Coverage-guided fuzzing, briefly: the engine's entry points and the wire format.
CARGO_TARGET_DIR="$target/fuzz" scripts/fuzz.sh 30

for host in wasmtime python node; do
    scripts/conformance.sh --host "$host" --jobs 2
done

# S3 on Garage.
if ! wait "$garage_build"; then
    cat "$target/garage-build.log" >&2
    echo "test: Garage could not be built" >&2
    exit 1
fi
cat "$target/garage-build.log" >&2
garage_dir="$target/garage-cluster"
cleanup() {
    scripts/garage-cluster.sh stop "$garage_dir" || true
    scripts/azurite.sh stop "$target/azurite" || true
}
trap cleanup EXIT
# Assigned first: a failing start then stops the run here (an `eval` of
# the substitution would run nothing and succeed).
garage_env="$(scripts/garage-cluster.sh start "$garage_dir")"
eval "$garage_env"
# Azure Blob on azurite, in a subshell's environment.
scripts/azurite.sh start "$target/azurite" > "$target/azurite.env"

cargo test -p host-runner --test all object_store -- --include-ignored
(
    source "$target/azurite.env"
    scripts/conformance.sh --host wasmtime --jobs 2 --backend "az://$LEASEDB_AZURE_CONTAINER/conformance"
)
# The conformance cases over S3 last, on their own: they wait on the network
# more than they compute (a listing on Garage takes 15 ms or more). Their
# checks of what is stored read each listed key, since Garage's listings can
# show an object for a moment after it was deleted.
scripts/conformance.sh --host wasmtime --jobs 2 --backend "s3://$LEASEDB_S3_BUCKET/conformance"
