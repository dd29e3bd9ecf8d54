#!/usr/bin/env bash
# Creates (once) a virtualenv holding the stock Tahoe-LAFS 1.20.0 client, used by
# host-runner's real-client tests. Idempotent: a venv whose `tahoe --version`
# already reports 1.20.0 is left alone. Prints the venv's bin directory last.
# Fails loudly (non-zero) when PyPI cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${TAHOE_VENV:-$PWD/target/tahoe-venv}"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    for candidate in python3.11 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
    done
fi
[ -n "$PY" ] || { echo "tahoe-venv: no python3 found" >&2; exit 1; }

if [ -x "$VENV/bin/tahoe" ] && "$VENV/bin/tahoe" --version 2>/dev/null | grep -qx 'tahoe-lafs/1.20.0'; then
    echo "$VENV/bin"
    exit 0
fi

# A concurrent run (another test binary) waits for this one.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ -x "$VENV/bin/tahoe" ] && "$VENV/bin/tahoe" --version 2>/dev/null | grep -qx 'tahoe-lafs/1.20.0'; then
    echo "$VENV/bin"
    exit 0
fi
echo "tahoe-venv: creating $VENV with $PY and installing tahoe-lafs==1.20.0 (first time only)" >&2
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip setuptools wheel >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'tahoe-lafs==1.20.0' >&2
"$VENV/bin/tahoe" --version >&2
echo "$VENV/bin"
