#!/usr/bin/env bash
# Installs Debian's `chromium` when it is missing (the status page test
# renders the page in it, headless) and prints its path last. Idempotent;
# fails loudly (non-zero) when apt cannot install it.
set -euo pipefail
find_chromium() { command -v chromium || command -v chromium-browser || true; }
bin="$(find_chromium)"
if [ -z "$bin" ]; then
    # Tests running at once wait for the first to install.
    exec 9>/tmp/leasedb-chromium-install.lock
    flock 9
    bin="$(find_chromium)"
    if [ -z "$bin" ]; then
        echo "chromium.sh: installing chromium with apt-get (first time only)" >&2
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2
        bin="$(find_chromium)"
    fi
fi
[ -n "$bin" ] || { echo "chromium.sh: chromium is not installed" >&2; exit 1; }
echo "$bin"
