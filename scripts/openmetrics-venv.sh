#!/usr/bin/env bash
# Creates (once) a virtualenv holding Python's `prometheus-client` from PyPI,
# whose strict OpenMetrics parser host-runner's metrics test checks our
# exposition with. Idempotent; prints the venv's python last. Fails loudly
# (non-zero) when PyPI cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${OPENMETRICS_VENV:-$PWD/target/openmetrics-venv}"
VERSION=0.26.0
ready() {
    "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("prometheus-client") != sys.argv[1])' "$VERSION" 2>/dev/null
}
if ready; then
    echo "$VENV/bin/python"
    exit 0
fi
# Tests running at once wait for the first to install.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if ready; then
    echo "$VENV/bin/python"
    exit 0
fi
echo "openmetrics-venv: creating $VENV with prometheus-client==$VERSION (first time only)" >&2
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "prometheus-client==$VERSION" >&2
echo "$VENV/bin/python"
