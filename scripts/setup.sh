#!/usr/bin/env bash
# Installs what building leasedb needs and is missing: clang-19 and llvm-ar-19
# (SQLite's C code for the wasm target) and the wasm32-wasip2 Rust target.
# Idempotent: does nothing when everything is there.
set -euo pipefail

need_apt=()
command -v clang-19 >/dev/null 2>&1 || need_apt+=(clang-19)
command -v llvm-ar-19 >/dev/null 2>&1 || need_apt+=(llvm-19)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]} (apt)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: adding the wasm32-wasip2 Rust target"
    rustup target add wasm32-wasip2
fi

# How the plugin's C code is compiled for wasm (read by the cc crate); the
# same as plugin/artifacts/wasm_build.rs's SQLITE_WASM_CFLAGS, which says why.
export CC_wasm32_wasip2="${CC_wasm32_wasip2:-clang-19}"
export AR_wasm32_wasip2="${AR_wasm32_wasip2:-llvm-ar-19}"
export CFLAGS_wasm32_wasip2="${CFLAGS_wasm32_wasip2:--nostdlibinc -Dmemcmp=leasedb_sqlite_memcmp}"
