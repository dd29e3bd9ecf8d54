#!/usr/bin/env bash
# Azurite, the Azure Blob Storage emulator (npm), on loopback, for the az:// runs:
#
#   scripts/azurite.sh start DIR    # prints export lines: eval "$(scripts/azurite.sh start DIR)"
#   scripts/azurite.sh stop DIR
#
# Installs azurite into DIR/npm the first time, keeps blobs in DIR/data,
# creates the container `leasedb`, and prints the environment object_store's
# Azure client reads (the emulator's well-known account and key). Idempotent.
# Everything else goes to stderr.
set -euo pipefail

AZURITE_VERSION=3.37.0
CONTAINER=leasedb

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
cmd="$1"
mkdir -p "$2"
dir="$(cd "$2" && pwd)"

say() { echo "azurite: $*" >&2; }

alive() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

case "$cmd" in
    start)
        bin="$dir/npm/node_modules/.bin/azurite-blob"
        if [ ! -x "$bin" ]; then
            command -v npm >/dev/null || { say "npm is not installed"; exit 1; }
            say "installing azurite $AZURITE_VERSION (npm)"
            npm install --prefix "$dir/npm" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2
        fi
        if ! alive; then
            port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
            mkdir -p "$dir/data"
            setsid "$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$dir/data" \
                --skipApiVersionCheck --silent >>"$dir/log" 2>&1 < /dev/null &
            echo $! > "$dir/pid"
            echo "$port" > "$dir/port"
        fi
        port="$(cat "$dir/port")"
        # Create the container (object_store does not), signed with the
        # emulator's well-known shared key; 409 means it exists.
        python3 - "$port" "$CONTAINER" <<'PY' || { say "azurite did not come up; see $dir/log"; exit 1; }
import base64, hashlib, hmac, sys, time, urllib.error, urllib.request
from email.utils import formatdate
port, container = sys.argv[1], sys.argv[2]
account = "devstoreaccount1"
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
for attempt in range(100):
    date = formatdate(usegmt=True)
    headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    resource = f"/{account}/{account}/{container}\nrestype:container"
    to_sign = "PUT\n" + "\n" * 11 + canonical_headers + resource
    signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {account}:{signature}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/{account}/{container}?restype=container",
        method="PUT", headers=headers)
    try:
        urllib.request.urlopen(request, timeout=5)
        sys.exit(0)
    except urllib.error.HTTPError as e:
        if e.code == 409:
            sys.exit(0)
        print(f"creating the container: HTTP {e.code}: {e.read()[:300]!r}", file=sys.stderr)
        sys.exit(1)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
        cat <<EOF
export AZURE_STORAGE_USE_EMULATOR=true
export AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:$port
export LEASEDB_AZURE_CONTAINER=$CONTAINER
EOF
        ;;
    stop)
        if alive; then
            pid="$(cat "$dir/pid")"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/pid"
        ;;
    *) usage ;;
esac
