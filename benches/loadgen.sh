#!/usr/bin/env bash
# Runs the load-generator benchmarks of docs/BENCHMARKS.md, each against a
# freshly started release chat-server on 127.0.0.1, and prints one line per
# run: the date, the load average, the command and chat-loadgen's summary.
#
#   benches/loadgen.sh              # every target below
#   benches/loadgen.sh fanout       # one: fanout | fanout-2m | store | acks | idle | accept | storm | startup
#                                   #      | rooms-1k | rooms-idle (protocol v3: a server of issue 22 on)
#   benches/loadgen.sh cluster      # three nodes on one Redis (not part of `all`)
#   benches/loadgen.sh cluster-tiny # the same at a tiny load: checks the script itself
#   benches/loadgen.sh cluster-redis # Redis's CPU per message at 5,000 messages/s, three nodes
#   benches/loadgen.sh cluster-redis-rooms # the same over 100 rooms of 10 members
#   benches/loadgen.sh cluster-shards # three nodes over one Redis, then two shards, rising rates
#   BEFORE=old/chat-server benches/loadgen.sh cluster-redis-ab # both, old and this build in turn
#   BEFORE=old/chat-server benches/loadgen.sh cluster-cpu-ab   # CPU per delivery: cluster vs one node
#     (cluster-redis*: DURATION=1s shortens the run, DUMP_STATS=1 prints Redis's INFO commandstats)
#   SERVER=path/to/chat-server benches/loadgen.sh fanout   # another build, same load
#
# Each server gets a fresh data directory (removed afterwards) unless its
# flags say --in-memory (or --redis-url: a cluster's nodes keep nothing). Needs `ulimit -n` of at least 20000 (it raises the
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
    data=
    local store=()
    case " $* " in
        *" --in-memory "* | *" --redis-url "*) ;; # keeps nothing here
        *) data=$(mktemp -d /tmp/wschat-bench-data.XXXXXX) store=(--data-dir "$data/data") ;;
    esac
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
    rm -rf "/tmp/wschat-bench-$port.log" "/tmp/wschat-bench-$port.out" ${data:+"$data"}
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

# start_cluster NODE_FLAGS...: $SHARDS redis-servers (1 by default) on
# free ports (keeping nothing: --save "" --appendonly no) and three nodes
# on them, the first the home; sets $ports, $pids (the nodes'),
# $redis_pids, $redis_ports, $redis_dirs, and $redis_pid, $redis_port for
# the first.
start_cluster() {
    redis_ports=() redis_pids=() redis_dirs=()
    local urls=() i
    for i in $(seq "${SHARDS:-1}"); do
        local port dir redis up=
        dir=$(mktemp -d /tmp/wschat-bench-redis.XXXXXX)
        # A port another session's server holds makes redis-server exit: then
        # another port (never someone else's Redis answering in its place).
        for _ in 1 2 3 4 5; do
            port=$((30000 + RANDOM % 10000))
            redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
                --dir "$dir" --logfile "$dir/log" --daemonize no &
            redis=$!
            for _ in $(seq 100); do
                kill -0 "$redis" 2>/dev/null || break
                [ "$(redis-cli -p "$port" ping 2>/dev/null </dev/null)" = PONG ] && { up=1; break; }
                sleep 0.1
            done
            [ -n "$up" ] && break
            wait "$redis" 2>/dev/null || true
        done
        [ -n "$up" ] || { echo "# redis-server did not start:"; cat "$dir/log"; exit 1; }
        redis_pids+=("$redis") redis_ports+=("$port") redis_dirs+=("$dir")
        urls+=(--redis-url "redis://127.0.0.1:$port")
    done
    redis_port=${redis_ports[0]} redis_pid=${redis_pids[0]}
    ports=() pids=()
    for _ in 1 2 3; do
        start "${urls[@]}" "$@"
        ports+=("$port") pids+=("$pid")
    done
}

# stop_cluster: every node (which must have survived), then every Redis.
stop_cluster() {
    for i in "${!pids[@]}"; do
        port=${ports[$i]} pid=${pids[$i]} data=
        stop
    done
    for i in "${!redis_pids[@]}"; do
        kill "${redis_pids[$i]}" 2>/dev/null || { echo "# redis-server died during the run"; failed=1; }
        wait "${redis_pids[$i]}" 2>/dev/null || true
        rm -rf "${redis_dirs[$i]}"
    done
}

# load_cluster MODE [LOADGEN_FLAGS]: one measured run, clients spread over
# the nodes in turn; CPU and memory are the nodes' and Redis's together.
load_cluster() {
    echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) loadgen [$*] on ${#ports[@]} nodes"
    local targets=() status=0
    for i in "${!ports[@]}"; do
        targets+=(--server "127.0.0.1:${ports[$i]}" --server-pid "${pids[$i]}")
    done
    for i in "${!redis_pids[@]}"; do targets+=(--server-pid "${redis_pids[$i]}"); done
    "$loadgen" "$@" "${targets[@]}" >"/tmp/wschat-bench-cluster.out" \
        || status=$?
    grep '^loadgen ' /tmp/wschat-bench-cluster.out || cat /tmp/wschat-bench-cluster.out
    rm -f /tmp/wschat-bench-cluster.out
    [ "$status" = 0 ] || { echo "# chat-loadgen exited with $status"; failed=1; }
}

# cluster CLIENTS RATE CONNECTIONS: the cluster's runs, each on a fresh
# Redis and fresh nodes.
cluster() {
    command -v redis-server >/dev/null || { echo "# needs redis-server (apt-get install redis-server)"; exit 1; }
    # Fan-out: the single node's documented load (fanout, store), spread
    # over three nodes. Compare deliveries/s, p99 and server_cpu_s per
    # delivery with `benches/loadgen.sh fanout` and `store`.
    start_cluster
    echo "# cluster [$server --redis-url … ×3]"
    load_cluster fanout --clients "$1" --senders 10 --rate "$2" --duration 10s
    stop_cluster
    # Acknowledged messages on v2, as `acks`.
    start_cluster
    load_cluster fanout --protocol v2 --clients 100 --senders 100 --rate $(( $2 * 40 )) --duration 10s
    stop_cluster
    # Connect-and-login rate (each login is one Redis round trip).
    start_cluster
    load_cluster accept --close-after-login --connections "$3" --concurrency 64
    stop_cluster
}

# redis_cpu [PID]: a Redis's CPU seconds so far (user + system), from
# /proc; the first's by default.
redis_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/${1:-$redis_pid}/stat"
}

# redis_calls: script calls and stream appends Redis ran so far
# (`INFO commandstats`: EVALSHA, and XADD, one per message kept).
redis_calls() {
    redis-cli -p "$redis_port" info commandstats | tr -d '\r' | awk -F'[=,:]' '
        $1 == "cmdstat_evalsha" { e = $3 } $1 == "cmdstat_xadd" { x = $3 }
        END { printf "%d %d", e, x }'
}

# cluster_redis RATE [rooms]: three nodes on one Redis, 30 clients of which
# 10 send RATE messages a second in all (the lobby), or with `rooms` 100
# rooms of 10 members at 5,000 messages a second in all; Redis's own CPU
# over the run divided by the messages sent (issue 23's "Redis CPU per
# message"), and by the messages Redis kept (XADD: a refused message is
# sent but never reaches Redis), and the messages per script call (every
# EVALSHA of the run counted, logins and joins too).
cluster_redis() {
    command -v redis-server >/dev/null || { echo "# needs redis-server (apt-get install redis-server)"; exit 1; }
    if [ "${2:-lobby}" = rooms ]; then
        # The limit meant for the public on new rooms is off: 1,000 clients
        # from 16 addresses make 100 rooms at once (as rooms-1k).
        start_cluster --rooms-per-address-per-minute 0
    else
        start_cluster
    fi
    echo "# cluster [$server --redis-url … ×3]: Redis CPU per message"
    local before after calls_before calls_after
    before=$(redis_cpu)
    calls_before=$(redis_calls)
    if [ "${2:-lobby}" = rooms ]; then
        # 100 rooms of 10 members, each member saying a message every 200 ms.
        load_cluster rooms --rooms 100 --members 10 --interval 200ms --duration "${DURATION:-10s}" \
            | tee /tmp/wschat-bench-redis.out
    else
        load_cluster fanout --clients 30 --senders 10 --rate "$1" --duration "${DURATION:-10s}" \
            | tee /tmp/wschat-bench-redis.out
    fi
    after=$(redis_cpu)
    calls_after=$(redis_calls)
    [ -z "${DUMP_STATS:-}" ] || redis-cli -p "$redis_port" info commandstats
    sent=$(grep -o ' sent=[0-9]*' /tmp/wschat-bench-redis.out | cut -d= -f2)
    rm -f /tmp/wschat-bench-redis.out
    awk -v b="$before" -v a="$after" -v n="${sent:-0}" -v c0="$calls_before" -v c1="$calls_after" '
        BEGIN {
            split(c0, x0, " "); split(c1, x1, " ")
            calls = x1[1] - x0[1]; kept = x1[2] - x0[2]
            printf "redis cpu_s=%.2f messages=%d us_per_message=%.1f kept=%d us_per_kept=%.1f", \
                a - b, n, n ? (a - b) * 1e6 / n : 0, kept, kept ? (a - b) * 1e6 / kept : 0
            printf " evalsha=%d kept_per_call=%.2f\n", calls, calls ? kept / calls : 0
        }'
    stop_cluster
}

# cluster_shards: three nodes over one Redis, then over two shards, in
# turn, at each rate of the rooms load (100 rooms of 10 members, each
# member saying a message every INTERVAL: 5,000, 10,000, 20,000 and 40,000
# messages a second offered by default); each shard's CPU per message.
cluster_shards() {
    command -v redis-server >/dev/null || { echo "# needs redis-server (apt-get install redis-server)"; exit 1; }
    local interval shards i before after
    for interval in ${INTERVALS:-200ms 100ms 50ms 25ms}; do
        for shards in ${SHARD_COUNTS:-1 2}; do
            SHARDS=$shards start_cluster --rooms-per-address-per-minute 0
            echo "# cluster [$server ×3 over $shards Redis], a message every $interval in each of 100 rooms"
            before=() after=()
            for i in "${!redis_pids[@]}"; do before+=("$(redis_cpu "${redis_pids[$i]}")"); done
            load_cluster rooms --rooms 100 --members 10 --interval "$interval" --duration "${DURATION:-10s}" \
                | tee /tmp/wschat-bench-shards.out
            for i in "${!redis_pids[@]}"; do after+=("$(redis_cpu "${redis_pids[$i]}")"); done
            sent=$(grep -o ' sent=[0-9]*' /tmp/wschat-bench-shards.out | cut -d= -f2)
            rm -f /tmp/wschat-bench-shards.out
            for i in "${!redis_pids[@]}"; do
                awk -v s="$((i + 1))" -v b="${before[$i]}" -v a="${after[$i]}" -v n="${sent:-0}" \
                    'BEGIN { printf "redis shard=%d cpu_s=%.2f us_per_message=%.1f\n", s, a - b, n ? (a - b) * 1e6 / n : 0 }'
            done
            stop_cluster
        done
    done
}

what=${1:-all}
if [ "$what" = cluster-shards ]; then
    # Issue 23: what three nodes sustain over one Redis and over two shards.
    cluster_shards
fi
if [ "$what" = cluster-redis-ab ]; then
    # Issue 23, before and after side by side: BEFORE's chat-server(s)
    # (paths, space-separated) and this build's in turn, ROUNDS times
    # (default 3), for each of LOADS (default "lobby rooms").
    for old in ${BEFORE:-}; do [ -x "$old" ] || { echo "# not a chat-server: $old"; exit 2; }; done
    [ -n "${BEFORE:-}" ] || { echo "# BEFORE=path/to/old/chat-server is needed"; exit 2; }
    after_server=$server
    for round in $(seq "${ROUNDS:-3}"); do
        for load in ${LOADS:-lobby rooms}; do
            for server in $BEFORE "$after_server"; do
                echo "# round $round, $load, $server"
                cluster_redis 5000 "$load"
            done
        done
    done
    server=$after_server
fi
if [ "$what" = cluster-redis ]; then
    # Issue 23's load: 5,000 messages a second (the lobby: rooms are not on
    # a cluster yet).
    cluster_redis 5000
fi
if [ "$what" = cluster-redis-rooms ]; then
    # Issue 23's load: 5,000 messages a second over 100 rooms.
    cluster_redis 5000 rooms
fi
if [ "$what" = cluster ]; then
    cluster 1000 500 20000
fi
if [ "$what" = cluster-cpu-ab ]; then
    # CPU per delivery of three nodes and their Redis against one node with
    # its store, at the fan-out load of `store` and `cluster` (1,000
    # clients, 10 senders, 500 messages a second): BEFORE's chat-server(s)
    # and this build's in turn, ROUNDS times (default 2). Divide each
    # server_cpu_s by the deliveries (deliveries/s × 10 s).
    for old in ${BEFORE:-}; do [ -x "$old" ] || { echo "# not a chat-server: $old"; exit 2; }; done
    after_server=$server
    for round in $(seq "${ROUNDS:-2}"); do
        for server in ${BEFORE:-} "$after_server"; do
            echo "# round $round, one node with its store, $server"
            run -- fanout --clients 1000 --senders 10 --rate 500 --duration 10s
            start_cluster
            echo "# round $round, three nodes + Redis, $server"
            load_cluster fanout --clients 1000 --senders 10 --rate 500 --duration 10s
            stop_cluster
        done
    done
    server=$after_server
fi
if [ "$what" = cluster-tiny ]; then
    cluster 30 20 200
fi
if [ "$what" = all ] || [ "$what" = fanout ]; then
    # The documented load: 1,000 clients, 10 senders, 500 messages a second
    # in all (500,000 deliveries a second offered), nothing kept.
    run --in-memory -- fanout --clients 1000 --senders 10 --rate 500 --duration 10s
fi
if [ "$what" = all ] || [ "$what" = fanout-2m ]; then
    # Four times the documented load: 2,000,000 deliveries a second offered.
    run --in-memory -- fanout --clients 1000 --senders 10 --rate 2000 --duration 10s
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
if [ "$what" = all ] || [ "$what" = rooms-1k ]; then
    # Issue 22: 1,000 rooms of 10 members (10,000 v3 connections), each
    # member saying a message in its room every 2 s (5,000 messages and
    # 50,000 deliveries a second), with the store. Targets: p99_us <=
    # 100000, lost=0. The limits meant for the public on room creation are
    # off: 1,000 rooms come from 16 addresses within seconds.
    run --rooms-per-address-per-minute 0 -- \
        rooms --rooms 1000 --members 10 --interval 2s --duration 20s
fi
if [ "$what" = all ] || [ "$what" = rooms-idle ]; then
    # Issue 22: memory per room and per membership. 1,000 clients create
    # 10,000 rooms, then fill them to 10 members (100 rooms per name).
    run --in-memory --rooms-per-address-per-minute 0 --max-rooms-per-name 1000 -- \
        rooms-idle --clients 1000 --rooms 10000 --members 10
fi
if [ "$what" = all ] || [ "$what" = startup ]; then
    # Start-up with a full history and 100,000 stored names: fill a store,
    # stop the server, then time three starts until each listens.
    fill=(--login-ttl 1h --max-held-names 0)
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
