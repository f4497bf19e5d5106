#!/usr/bin/env bash
# The demo from the README: a legacy app that traps only SIGINT, stopped with SIGTERM (what
# Upstart, systemd, runit, s6 and docker send) once on its own and once through sigshim.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin sigshim
sigshim=target/release/sigshim
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

wait_for() { # wait_for FILE: bounded wait for the app to create its lock
    for _ in $(seq 1 100); do [ -e "$1" ] && return 0; sleep 0.05; done
    echo "demo: $1 never appeared" >&2; exit 1
}

echo "== 1. The legacy app alone, stopped with SIGTERM"
demo/legacy-app "$dir/alone" & app=$!
wait_for "$dir/alone.lock"
kill -TERM "$app"
wait "$app" && st=0 || st=$?
echo "   exit status $st; state file: $(cat "$dir/alone" 2>/dev/null || echo MISSING);" \
     "lock: $([ -e "$dir/alone.lock" ] && echo 'STALE, left behind' || echo removed)"
echo

echo "== 2. The same app under: sigshim --stop-signal INT --kill-after 4s -v --"
"$sigshim" --stop-signal INT --kill-after 4s -v -- demo/legacy-app "$dir/shim" & shim=$!
wait_for "$dir/shim.lock"
kill -TERM "$shim"
wait "$shim" && st=0 || st=$?
echo "   exit status $st; state file: $(cat "$dir/shim" 2>/dev/null || echo MISSING);" \
     "lock: $([ -e "$dir/shim.lock" ] && echo 'STALE, left behind' || echo removed)"
[ "$st" = 0 ] && [ -e "$dir/shim" ] && [ ! -e "$dir/shim.lock" ] && echo "demo: OK, clean stop through sigshim"
