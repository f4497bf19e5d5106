#!/usr/bin/env bash
# Builds and runs sigshim's fuzz targets (cargo-fuzz, libFuzzer) for a bounded time each.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]   run each target (default: all) for SECONDS (default 60)
#   bash fuzz/run.sh --build-only             only build every target (for .ci/run)
#
# Options, before SECONDS:
#   --keep-going   libFuzzer's fork mode with -ignore_crashes=1: a crash is saved and fuzzing
#                  goes on until the time is up (use it for long unattended runs, so that one
#                  known crash does not end a target's run in its first second)
#   -j N           run N targets at once (default 1; this machine has 2 cores)
#
# Targets are built with debug assertions and overflow checks (`cargo fuzz -a`): an arithmetic
# overflow in a parser is a bug to find, even though the release binary would wrap silently.
# No sanitizer by default (FUZZ_SANITIZER=address to use ASan): the code under test is safe Rust
# (one fcntl(2) call aside), where ASan finds nothing the bounds checks do not, and
# costs 3-4x the executions (cli_parse: ~700/s with ASan, ~2,800/s without).
# Corpora grow in fuzz/corpus/TARGET, crashes land in fuzz/artifacts/TARGET, each run's libFuzzer
# output in fuzz/logs/TARGET.log (all ignored by git). At the end a table gives, per target, the
# executions libFuzzer counted and the crashes it saved; the exit status is 1 if any target
# crashed. Reproduce a crash with the command printed in its log, e.g.
#   cd fuzz && cargo +nightly fuzz run -a -s none signal_spec artifacts/signal_spec/crash-...
#
# cargo-fuzz is installed from crates.io when missing. libFuzzer's sanitizer flags need a nightly
# compiler: the nightly toolchain when rustup has one, else the stable one with RUSTC_BOOTSTRAP=1
# (the flags are the same; stable ships the sanitizer runtimes).
set -euo pipefail
cd "$(dirname "$0")"

TARGETS_ALL=(signal_spec duration stop_schedule rewrite level_prefix line_splitter
    journald_roundtrip syslog_encode cli_parse)

build_only=0
keep_going=0
jobs=1
while [ $# -gt 0 ]; do
    case "$1" in
        --build-only) build_only=1; shift ;;
        --keep-going) keep_going=1; shift ;;
        -j) jobs="$2"; shift 2 ;;
        -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done
seconds="${1:-60}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${TARGETS_ALL[@]}")
case "$seconds" in
    ''|*[!0-9]*) echo "fuzz/run.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;;
esac

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >&2
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    CARGO=(cargo +nightly)
else
    echo "fuzz/run.sh: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
    CARGO=(cargo)
fi

sanitizer="${FUZZ_SANITIZER:-none}"
started=$(date +%s)
if [ ${#targets[@]} -eq ${#TARGETS_ALL[@]} ]; then
    "${CARGO[@]}" fuzz build -a -s "$sanitizer"
else
    for t in "${targets[@]}"; do "${CARGO[@]}" fuzz build -a -s "$sanitizer" "$t"; done
fi
echo "fuzz/run.sh: built ${#targets[@]} targets in $(( $(date +%s) - started )) s" >&2
[ "$build_only" = 1 ] && exit 0

mkdir -p logs
seed() { # seed TARGET BYTES... : one file per argument, when the corpus is empty
    local dir="corpus/$1"; shift
    mkdir -p "$dir"
    [ -n "$(ls -A "$dir")" ] && return 0
    local i=0
    for s in "$@"; do printf '%b' "$s" > "$dir/seed-$i"; i=$((i + 1)); done
}
seed signal_spec 'INT' 'SIGTERM' 'sigusr1' '15' 'RTMIN+3' 'SIGRTMAX-1' ' hup '
seed duration '500ms' '4s' '1.5s' '.25s' '2m' '1min' '1h' '0' '8784h'
seed stop_schedule 'INT/20s/TERM/5s/KILL' 'TERM/5s' 'INT' 'KILL' 'QUIT/1.5s/RTMIN+1/200ms'
seed rewrite 'HUP:USR2' 'SIGHUP:ignore' '1:12' 'usr1:RTMIN+2'
seed level_prefix '<3>boom' '<7><5>x' '<8>x' '<>'
seed line_splitter '\x04\x00\x02\x01\x00\x05\x00ab\xe2\x82\xaccd\nline\n\nend' \
    '\x01\x00\x00a\nb' '\x10\x00\x01\x03\x00\xf0\x9f\x98\x80\xf0\x9f\x98\x80 x\r\n'
seed journald_roundtrip 'graceful' 'MESSAGE=x\n\nPRIORITY=0\n'
seed syslog_encode 'graceful[1]: x' 'a b\n\0:[]'
seed cli_parse '--stop-signal\0INT\0--kill-after\0004s\0--\0app' \
    '--log\0syslog\0--tag\0a b\0app' '--rewrite\0HUP:USR2\0-v\0app\0--flag' '--help'

run_one() { # run_one TARGET: fuzz for $seconds, write logs/TARGET.log and logs/TARGET.result
    local t="$1" log="logs/$1.log"
    mkdir -p "artifacts/$t"
    local before
    before=$(ls "artifacts/$t" | wc -l)
    local args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -dict="dicts/$t.dict")
    [ "$keep_going" = 1 ] && args+=(-fork=1 -ignore_crashes=1)
    local rc=0 t0
    t0=$(date +%s)
    "${CARGO[@]}" fuzz run -a -s "$sanitizer" "$t" -- "${args[@]}" >"$log" 2>&1 || rc=$?
    local took=$(( $(date +%s) - t0 ))
    local execs
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    if [ -z "$execs" ]; then # fork mode prints its totals as "#N: cov: ..."
        execs=$(grep -o '^#[0-9]*: cov' "$log" | tail -1 | tr -dc '0-9' || true)
    fi
    local crashes=$(( $(ls "artifacts/$t" | wc -l) - before ))
    local status=ok
    [ "$crashes" -gt 0 ] && status=CRASH
    [ "$rc" != 0 ] && [ "$crashes" = 0 ] && status="exit $rc"
    echo "$t ${execs:-?} $took $crashes $status" > "logs/$t.result"
}

echo "fuzz/run.sh: ${#targets[@]} targets, ${seconds} s each, $jobs at a time$([ "$keep_going" = 1 ] && echo ', keep going after crashes')" >&2
running=0
for t in "${targets[@]}"; do
    rm -f "logs/$t.result"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

failed=0
printf '%-20s %14s %8s %10s %8s  %s\n' target executions seconds exec/s crashes status
for t in "${targets[@]}"; do
    read -r _ execs took crashes status < "logs/$t.result" ||
        { execs='?'; took='?'; crashes='?'; status='no result'; }
    rate='?'
    [[ "$execs" =~ ^[0-9]+$ ]] && [[ "$took" =~ ^[0-9]+$ ]] && [ "$took" -gt 0 ] && rate=$((execs / took))
    printf '%-20s %14s %8s %10s %8s  %s\n' "$t" "$execs" "$took" "$rate" "$crashes" "$status"
    [ "$status" = ok ] || failed=1
done
if [ "$failed" = 1 ]; then
    echo "fuzz/run.sh: crashes are in fuzz/artifacts/TARGET/, the details in fuzz/logs/TARGET.log" >&2
fi
exit "$failed"
