#!/usr/bin/env bash
# Builds the static musl binary (the one to ship to glibc-2.19-era hosts and FROM scratch
# images) and smoke-tests it: it is static, --version works, usage errors exit 2, missing and
# non-executable programs exit 127 and 126, and a child's status passes through.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=x86_64-unknown-linux-musl
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >/dev/null
cargo build --release --quiet --target "$target" --bin sigshim
bin=target/$target/release/sigshim
pass=0 fail=0
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then pass=$((pass + 1)); else echo "FAIL $1: expected $2, got $3" >&2; fail=$((fail + 1)); fi
}
status() { set +e; "$@" >/dev/null 2>&1; local s=$?; set -e; echo "$s"; }
check "static" yes "$(file -L "$bin" | grep -qE 'static(-pie|ally)? linked' && echo yes || echo no)"
check "no dynamic deps" yes "$( (ldd "$bin" 2>&1 || true) | grep -qE 'not a dynamic executable|statically linked' && echo yes || echo no)"
check "--version" 0 "$(status "$bin" --version)"
check "usage error" 2 "$(status "$bin" --stop-signal NOPE true)"
check "not found" 127 "$(status "$bin" -- /no/such/program)"
check "not executable" 126 "$(status "$bin" -- /etc/hostname)"
check "exit status" 7 "$(status "$bin" --log inherit -- sh -c 'exit 7')"
size=$(stat -c %s "$bin")
echo "static binary: $bin, $size bytes (goal: at most 1 MiB, measured by bench/)"
echo "static-smoke: $pass passed, $fail failed"
[ "$fail" = 0 ]
