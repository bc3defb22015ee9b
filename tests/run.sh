#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the browser tests
# (tests/web_client.rs) and the cluster tests (tests/cluster.rs, built with
# the `cluster` feature, on by default) need when it is missing — Debian's
# chromium and redis-server, and playwright-core in tests/browser from its
# lock file — then runs `cargo test` with any arguments given. Says nothing
# when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "tests/run.sh: $*" >&2; }

# Runs a command quietly, showing its output only if it fails.
quietly() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    say "failed: $*"
    exit 1
  fi
  rm -f "$log"
}

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  say "installing Debian's chromium for the browser tests"
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  quietly $sudo apt-get update
  quietly $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends chromium
fi

if ! command -v redis-server >/dev/null; then
  say "installing Debian's redis-server for the cluster tests"
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  quietly $sudo apt-get update
  quietly $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends redis-server
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  say "the browser tests need Node.js 20 or later with npm (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

# npm ci when node_modules is missing or was installed from another lock file.
browser=tests/browser
stamp=$browser/node_modules/.installed-from-package-lock.json
if ! cmp -s "$browser/package-lock.json" "$stamp"; then
  say "npm ci in $browser"
  (cd "$browser" && quietly npm ci --no-audit --no-fund)
  cp "$browser/package-lock.json" "$stamp"
fi

exec cargo test "$@"
