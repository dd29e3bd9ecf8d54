#!/usr/bin/env bash
# Runs the shared conformance cases against one host through its adapter
# process (conformance-tests/ADAPTER.md), installing what that host needs:
#
#   scripts/conformance.sh --host wasmtime|python|node [--list] [--filter TEXT] [--jobs N]
#                          [--backend URL] [PLUGIN.wasm]
#
# wasmtime: this repo's host (host-runner's conformance-adapter); with
#           --backend, each case's objects live in a fresh prefix of that store
#           (`s3://BUCKET`, `az://CONTAINER`, `memory:`; settings from AWS_*/AZURE_*);
# python:   hosts/python on the `wasmtime` package from PyPI, in a venv under target/;
# node:     hosts/node on jco, with npm packages in hosts/node/node_modules.
# The component defaults to the shipped build. Ends with `N passed, N failed`;
# exits non-zero when a case failed.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: $0 --host wasmtime|python|node [--list] [--filter TEXT] [--jobs N] [--backend URL] [PLUGIN.wasm]" >&2
    exit 2
}

host="" list="" filter="" component="" jobs=1 backend=""
while [ $# -gt 0 ]; do
    case "$1" in
        --host) [ $# -ge 2 ] || usage; host="$2"; shift 2 ;;
        --list) list=1; shift ;;
        --filter) [ $# -ge 2 ] || usage; filter="$2"; shift 2 ;;
        --jobs) [ $# -ge 2 ] || usage; jobs="$2"; shift 2 ;;
        --backend) [ $# -ge 2 ] || usage; backend="$2"; shift 2 ;;
        -h|--help) usage ;;
        -*) usage ;;
        *) [ -z "$component" ] || usage; component="$1"; shift ;;
    esac
done
case "$host" in wasmtime|python|node) ;; *) usage ;; esac
if [ -n "$backend" ] && [ "$host" != wasmtime ]; then
    echo "conformance: --backend is for --host wasmtime" >&2
    exit 2
fi
if [ -n "$component" ]; then
    [ -f "$component" ] || { echo "conformance: no component file $component" >&2; exit 2; }
    component="$(realpath "$component")"
fi

source scripts/setup.sh
target="${CARGO_TARGET_DIR:-$PWD/target}"

runner_args=()
[ -n "$component" ] && runner_args+=(--component "$component")
[ -n "$filter" ] && runner_args+=("$filter")

if [ -n "$list" ]; then
    # The list is the runner's: the same for every host.
    nice cargo build -q -p conformance-tests --bin conformance
    exec "$target/debug/conformance" --list "${runner_args[@]}"
fi

case "$host" in
    wasmtime)
        nice cargo build -q -p conformance-tests --bin conformance -p host-runner --bin conformance-adapter
        adapter=("$target/debug/conformance-adapter" --compile-cache "$target/conformance-compiled")
        [ -n "$backend" ] && adapter+=(--backend "$backend")
        ;;
    python)
        [ -f hosts/python/adapter.py ] || { echo "conformance: hosts/python/adapter.py does not exist" >&2; exit 2; }
        venv="$target/python-venv"
        if [ ! -x "$venv/bin/python" ]; then
            echo "conformance: creating the Python venv $venv"
            python3 -m venv "$venv"
        fi
        if ! "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("wasmtime") != "50.0.1")' 2>/dev/null; then
            echo "conformance: installing wasmtime==50.0.1 (pip)"
            "$venv/bin/pip" install -q wasmtime==50.0.1
        fi
        nice cargo build -q -p conformance-tests --bin conformance
        adapter=("$venv/bin/python" hosts/python/adapter.py)
        ;;
    node)
        [ -f hosts/node/adapter.mjs ] || { echo "conformance: hosts/node/adapter.mjs does not exist" >&2; exit 2; }
        command -v node >/dev/null || { echo "conformance: node is not installed" >&2; exit 2; }
        if [ -f hosts/node/package-lock.json ]; then
            (cd hosts/node && npm ci --no-audit --no-fund --loglevel=error)
        else
            (cd hosts/node && npm install --no-audit --no-fund --loglevel=error)
        fi
        nice cargo build -q -p conformance-tests --bin conformance
        adapter=(node hosts/node/adapter.mjs)
        ;;
esac

exec "$target/debug/conformance" --jobs "$jobs" "${runner_args[@]}" -- "${adapter[@]}"
