#!/usr/bin/env bash
# Runs the load-generator benchmarks of docs/BENCHMARKS.md, each against a
# freshly started release chat-server on 127.0.0.1, and prints one line per
# run: the date, the load average, the command and chat-loadgen's summary.
#
#   benches/loadgen.sh              # every target below
#   benches/loadgen.sh fanout       # one: fanout | store | acks | idle | accept | storm | startup
#   SERVER=path/to/chat-server benches/loadgen.sh fanout   # another build, same load
#
# Each server gets a fresh data directory (removed afterwards) unless its
# flags say --in-memory. Needs `ulimit -n` of at least 20000 (it raises the
# soft limit itself). Run it on a quiet machine: the server and the load
# generator share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --features loadgen --bin chat-server --bin chat-loadgen
ulimit -n 20000
server=${SERVER:-target/release/chat-server}
loadgen=target/release/chat-loadgen
failed=0

# start SERVER_FLAGS...: starts a server on a free port with a fresh data
# directory (unless --in-memory); sets $port, $pid, $data. The limits meant
# for the public (messages per connection, new names per address: the load
# generator logs thousands in from 16 addresses) are off.
start() {
    port=$((20000 + RANDOM % 10000))
    data=$(mktemp -d /tmp/wschat-bench-data.XXXXXX)
    local store=(--data-dir "$data/data")
    for flag in "$@"; do [ "$flag" = --in-memory ] && store=(); done
    "$server" --listen "127.0.0.1:$port" --message-rate 0 --new-names-per-minute 0 --max-connections 0 \
        "${store[@]}" "$@" 2>"/tmp/wschat-bench-$port.log" &
    pid=$!
    # Wait until it listens (its log says so).
    for _ in $(seq 100); do
        grep -q "listening on" "/tmp/wschat-bench-$port.log" 2>/dev/null && return
        sleep 0.1
    done
    echo "# chat-server did not start:" && cat "/tmp/wschat-bench-$port.log"
    failed=1
}

# stop: SIGTERM, and the server must have survived the run.
stop() {
    if ! kill "$pid" 2>/dev/null; then
        echo "# chat-server died during the run; its log:" && cat "/tmp/wschat-bench-$port.log"
        failed=1
    fi
    wait "$pid" 2>/dev/null || true
    rm -rf "/tmp/wschat-bench-$port.log" "/tmp/wschat-bench-$port.out" "$data"
}

# load MODE [LOADGEN_FLAGS]: one measured run against the running server.
load() {
    echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) loadgen [$*]"
    local status=0
    "$loadgen" "$@" --server "127.0.0.1:$port" --server-pid "$pid" >"/tmp/wschat-bench-$port.out" \
        || status=$?
    grep '^loadgen ' "/tmp/wschat-bench-$port.out" || cat "/tmp/wschat-bench-$port.out"
    [ "$status" = 0 ] || { echo "# chat-loadgen exited with $status"; failed=1; }
}

# run SERVER_FLAGS -- MODE [LOADGEN_FLAGS]: one measured run, fresh server.
run() {
    local flags=()
    while [ "$1" != "--" ]; do flags+=("$1"); shift; done
    shift
    start "${flags[@]}"
    echo "# server [$server ${flags[*]}]"
    load "$@"
    stop
}

what=${1:-all}
if [ "$what" = all ] || [ "$what" = fanout ]; then
    # The documented load: 1,000 clients, 10 senders, 500 messages a second
    # in all (500,000 deliveries a second offered), nothing kept.
    run --in-memory -- fanout --clients 1000 --senders 10 --rate 500 --duration 10s
fi
if [ "$what" = all ] || [ "$what" = store ]; then
    # The same load with the store on (the default): every message saved
    # before it is broadcast.
    run -- fanout --clients 1000 --senders 10 --rate 500 --duration 10s
fi
if [ "$what" = all ] || [ "$what" = acks ]; then
    # Acknowledged messages: 100 senders (every client sends), 20,000 a
    # second in all, on v2 (the sender's own copy is its acknowledgement).
    run -- fanout --protocol v2 --clients 100 --senders 100 --rate 20000 --duration 10s
fi
if [ "$what" = all ] || [ "$what" = idle ]; then
    run --in-memory -- idle --protocol v2 --clients 19000 --hold 10s
fi
if [ "$what" = all ] || [ "$what" = accept ]; then
    run --in-memory -- accept --close-after-login --connections 20000 --concurrency 64
fi
if [ "$what" = all ] || [ "$what" = storm ]; then
    # The join storm: every connection stays open and hears later logins.
    run --in-memory -- accept --protocol v2 --connections 19000 --concurrency 64
    run --in-memory -- accept --protocol v1 --connections 5000 --concurrency 64
fi
if [ "$what" = all ] || [ "$what" = startup ]; then
    # Start-up with a full history and 100,000 stored names: fill a store,
    # stop the server, then time three starts until each listens.
    fill=(--login-ttl 1h --new-names-per-minute 0 --max-held-names 0)
    start "${fill[@]}"
    echo "# filling a store: 100,000 names, then a full history"
    load accept --close-after-login --connections 100000 --concurrency 64 --timeout 10m
    load fanout --clients 10 --senders 10 --rate 1000 --duration 2s
    kill "$pid"; wait "$pid" || true
    for _ in 1 2 3; do
        log=/tmp/wschat-bench-startup.log
        t0=$(date +%s%N)
        "$server" --listen "127.0.0.1:$port" "${fill[@]}" --data-dir "$data/data" 2>"$log" &
        pid=$!
        until grep -q "listening on" "$log" 2>/dev/null; do
            kill -0 "$pid" 2>/dev/null || { cat "$log"; failed=1; break; }
            sleep 0.005
        done
        t1=$(date +%s%N)
        echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" \
            "startup_ms=$(( (t1 - t0) / 1000000 )) $(grep -o 'data in .*' "$log")"
        kill "$pid"; wait "$pid" || true
        rm -f "$log"
    done
    rm -rf "$data"
fi
exit "$failed"
