#!/usr/bin/env bash
# A three-node Garage cluster on loopback, for the object-store tests:
#
#   scripts/garage-cluster.sh start DIR     # prints AWS_* lines: eval "$(... start DIR)"
#   scripts/garage-cluster.sh env DIR       # the same lines for a running cluster
#   scripts/garage-cluster.sh stop-node DIR N | start-node DIR N   # N in 1..3 (fault tests)
#   scripts/garage-cluster.sh stop DIR
#   scripts/garage-cluster.sh build        # only make sure the binary exists (CI starts it early)
#
# Replication factor 3, layout applied, one bucket (`leasedb`) and one key
# allowed on it. Idempotent: `start` on a running cluster only prints its
# environment; after a reboot it restarts the nodes over their data.
#
# Garage (AGPL) is an external test server, never linked. It is found as
# $GARAGE, on PATH or in ~/.cargo/bin; else it is built once per machine
# with `cargo install garage --version 2.5.0 --locked --debug` (unoptimised,
# which compiles several times faster than a release build and serves tests).
# Everything else goes to stderr, so stdout is only the environment.
set -euo pipefail

GARAGE_VERSION=2.5.0
BUCKET=leasedb
NODES=(1 2 3)

usage() {
    echo "usage: $0 start|env|stop DIR | stop-node|start-node DIR N | build" >&2
    exit 2
}

say() { echo "garage-cluster: $*" >&2; }

[ $# -ge 1 ] || usage
cmd="$1"
if [ "$cmd" = build ]; then
    dir=""
else
    [ $# -ge 2 ] || usage
    mkdir -p "$2"
    dir="$(cd "$2" && pwd)"
fi

find_garage() {
    if [ -n "${GARAGE:-}" ] && [ -x "$GARAGE" ]; then
        echo "$GARAGE"; return
    fi
    local found
    for found in "$(command -v garage 2>/dev/null || true)" "$HOME/.cargo/bin/garage"; do
        if [ -n "$found" ] && [ -x "$found" ] && "$found" --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
            echo "$found"; return
        fi
    done
    say "building Garage $GARAGE_VERSION (once per machine; see scripts/garage-cluster.sh)"
    local started=$SECONDS
    # Unoptimised and without debug info: the quickest build, fast enough for tests.
    CARGO_PROFILE_DEV_DEBUG=0 nice cargo install garage --version "$GARAGE_VERSION" \
        --locked --debug --quiet >&2
    say "built Garage in $((SECONDS - started)) s"
    echo "$HOME/.cargo/bin/garage"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() {
    local pid_file="$dir/node$1/pid"
    [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

config_of() { echo "$dir/node$1/garage.toml"; }

# Writes each node's configuration, once: ports and secret are kept across restarts.
configure() {
    [ -f "$dir/rpc_secret" ] && return
    python3 -c 'import secrets; print(secrets.token_hex(32))' > "$dir/rpc_secret"
    local n
    for n in "${NODES[@]}"; do
        mkdir -p "$dir/node$n/meta" "$dir/node$n/data"
        local rpc s3 admin
        rpc=$(free_port); s3=$(free_port); admin=$(free_port)
        cat > "$(config_of "$n")" <<EOF
metadata_dir = "$dir/node$n/meta"
data_dir = "$dir/node$n/data"
db_engine = "sqlite"
replication_factor = 3
consistency_mode = "consistent"
rpc_secret_file = "$dir/rpc_secret"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
        echo "$s3" > "$dir/node$n/s3_port"
    done
    chmod 600 "$dir/rpc_secret"
}

start_node() {
    local n="$1"
    alive "$n" && return
    # Its own process group, so `stop` ends the node and nothing else.
    setsid "$garage" -c "$(config_of "$n")" server >>"$dir/node$n/log" 2>&1 < /dev/null &
    echo $! > "$dir/node$n/pid"
}

stop_node() {
    local n="$1"
    alive "$n" || return 0
    local pid
    pid="$(cat "$dir/node$n/pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/node$n/pid"
}

g() { "$garage" -c "$(config_of 1)" "$@"; }

# Waits until node 1 answers admin commands.
wait_up() {
    for _ in $(seq 300); do
        g status >/dev/null 2>&1 && return
        sleep 0.2
    done
    say "node 1 did not come up; see $dir/node1/log"
    exit 1
}

# Node `$1`'s id, once it has made its key: a node just started may not
# have yet, and a failed lookup would end this script without a word
# (set -e inside the caller's `eval "$(... start)"`).
node_id() {
    local id
    for _ in $(seq 100); do
        id=$("$garage" -c "$(config_of "$1")" node id -q 2>/dev/null) && { echo "$id"; return; }
        sleep 0.2
    done
    say "node $1 has no id after 20 s; see $dir/node$1/log"
    exit 1
}

# Connects node 1 to the others: on every start, since a restarted node
# would otherwise wait for its periodic reconnection.
connect() {
    local n id
    for n in 2 3; do
        id=$(node_id "$n")
        for _ in $(seq 50); do
            g node connect "$id" >/dev/null 2>&1 && break
            sleep 0.2
        done
    done
}

# Assigns the nodes roles and applies the layout, once.
lay_out() {
    [ -f "$dir/laid-out" ] && return
    local n id
    for n in "${NODES[@]}"; do
        id=$(node_id "$n")
        g layout assign -z "dc$n" -c 1G "${id%@*}" >/dev/null
    done
    g layout apply --version 1 >/dev/null
    touch "$dir/laid-out"
}

# A key with fixed-format credentials (Garage's `GK` + 24 hex digits) and the bucket.
provision() {
    if [ ! -f "$dir/key" ]; then
        local id secret
        id="GK$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
        secret="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
        printf '%s %s\n' "$id" "$secret" > "$dir/key.new"
        chmod 600 "$dir/key.new"
        mv "$dir/key.new" "$dir/key"
    fi
    read -r key_id key_secret < "$dir/key"
    g key info "$key_id" >/dev/null 2>&1 || g key import -n leasedb-tests --yes "$key_id" "$key_secret" >/dev/null
    g bucket info "$BUCKET" >/dev/null 2>&1 || g bucket create "$BUCKET" >/dev/null
    g bucket allow --read --write --owner "$BUCKET" --key "$key_id" >/dev/null
}

print_env() {
    read -r key_id key_secret < "$dir/key"
    cat <<EOF
export AWS_ACCESS_KEY_ID=$key_id
export AWS_SECRET_ACCESS_KEY=$key_secret
export AWS_REGION=garage
export AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$dir/node1/s3_port")
export AWS_ALLOW_HTTP=true
export LEASEDB_S3_BUCKET=$BUCKET
export LEASEDB_GARAGE_DIR=$dir
EOF
}

case "$cmd" in
    start)
        garage="$(find_garage)"
        configure
        for n in "${NODES[@]}"; do start_node "$n"; done
        wait_up
        connect
        lay_out
        # Bucket operations need a quorum that knows the layout; retry a while.
        for _ in $(seq 100); do
            provision 2>/dev/null && break
            sleep 0.3
        done
        provision
        print_env
        ;;
    env)
        [ -f "$dir/key" ] || { say "no cluster in $dir"; exit 1; }
        print_env
        ;;
    stop-node|start-node)
        [ $# -eq 3 ] || usage
        case "$3" in 1|2|3) ;; *) usage ;; esac
        garage="$(find_garage)"
        if [ "$cmd" = stop-node ]; then stop_node "$3"; else start_node "$3"; fi
        ;;
    stop)
        for n in "${NODES[@]}"; do stop_node "$n"; done
        ;;
    build)
        find_garage >/dev/null
        ;;
    *) usage ;;
esac
