#!/usr/bin/env bash
# Two builds of chat-server side by side in one run, against the same load
# generator (this tree's), alternating A B A B… per target, so that the
# machine's drift falls on both alike:
#
#   benches/compare.sh OLD_SERVER NEW_SERVER [ROUNDS] TARGET...
#   e.g. benches/compare.sh /tmp/old/chat-server target/release/chat-server 2 fanout-2m idle
#
# TARGET is any target of benches/loadgen.sh (fanout, fanout-2m, store, acks,
# idle, accept, storm, startup, cluster; rooms-1k and rooms-idle need both
# builds to speak protocol v3). Each line benches/loadgen.sh prints is tagged
# with the build that produced it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,13p' "$0"; exit 2; }
old=$1 new=$2
shift 2
rounds=2
if [[ $1 =~ ^[0-9]+$ ]]; then rounds=$1; shift; fi
cargo build --release --quiet --features loadgen --bin chat-server --bin chat-loadgen
for target in "$@"; do
    for round in $(seq "$rounds"); do
        for side in old new; do
            server=$old
            [ "$side" = new ] && server=$new
            SERVER=$server benches/loadgen.sh "$target" | sed "s/^/$side $target #$round: /"
        done
    done
done
