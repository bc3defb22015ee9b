#!/usr/bin/env bash
# Runs the load-generator benchmarks of docs/BENCHMARKS.md, each against a
# freshly started release chat-server on 127.0.0.1, and prints one line per
# run: the date, the load average, the command and chat-loadgen's summary.
#
#   benches/loadgen.sh            # every target of issue 6
#   benches/loadgen.sh fanout     # one mode: fanout | idle | accept | storm
#
# Needs `ulimit -n` of at least 20000 (it raises the soft limit itself). Run
# it on a quiet machine: the server and the load generator share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --features loadgen --bin chat-server --bin chat-loadgen
ulimit -n 20000
server=target/release/chat-server
loadgen=target/release/chat-loadgen

# run SERVER_FLAGS -- MODE [LOADGEN_FLAGS]: one measured run, fresh server.
run() {
    local flags=()
    while [ "$1" != "--" ]; do flags+=("$1"); shift; done
    shift
    local port=$((20000 + RANDOM % 10000))
    "$server" --listen "127.0.0.1:$port" --message-rate 0 --max-connections 0 \
        "${flags[@]}" 2>"/tmp/wschat-bench-$port.log" &
    local pid=$!
    # Wait until it listens (its log says so).
    for _ in $(seq 50); do
        grep -q "listening on" "/tmp/wschat-bench-$port.log" 2>/dev/null && break
        sleep 0.1
    done
    echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" \
        "server [${flags[*]}] loadgen [$*]"
    local status=0
    "$loadgen" "$@" --server "127.0.0.1:$port" --server-pid "$pid" >"/tmp/wschat-bench-$port.out" \
        || status=$?
    grep '^loadgen ' "/tmp/wschat-bench-$port.out" || cat "/tmp/wschat-bench-$port.out"
    # The server must have survived the run: a crash is a result too.
    if ! kill "$pid" 2>/dev/null; then
        echo "# chat-server died during the run; its log:" && cat "/tmp/wschat-bench-$port.log"
        status=1
    fi
    wait "$pid" 2>/dev/null || true
    rm -f "/tmp/wschat-bench-$port.log" "/tmp/wschat-bench-$port.out"
    [ "$status" = 0 ] || { echo "# chat-loadgen exited with $status"; failed=1; }
}

failed=0

what=${1:-all}
if [ "$what" = all ] || [ "$what" = fanout ]; then
    # The documented load: 1,000 clients, 10 senders, 500 messages a second
    # in all (500,000 deliveries a second offered).
    run -- fanout --clients 1000 --senders 10 --rate 500 --duration 10s
fi
if [ "$what" = all ] || [ "$what" = idle ]; then
    run -- idle --protocol v2 --clients 19000 --hold 10s
fi
if [ "$what" = all ] || [ "$what" = accept ]; then
    run -- accept --close-after-login --connections 20000 --concurrency 64
fi
if [ "$what" = all ] || [ "$what" = storm ]; then
    # The join storm: every connection stays open and hears later logins.
    run -- accept --protocol v2 --connections 19000 --concurrency 64
    run -- accept --protocol v1 --connections 5000 --concurrency 64
fi
exit "$failed"
