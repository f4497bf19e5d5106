#!/usr/bin/env bash
# sigshim's benchmark suite: sigshim next to tini, dumb-init, catatonit (exec wrappers), and next
# to `| logger` and systemd-cat (log forwarders), one Markdown table per figure.
#
#   bash bench/run.sh               full run (about 5-6 minutes on 2 cores)
#   QUICK=1 bash bench/run.sh       smoke run (under a minute)
#   ONLY="1 6" bash bench/run.sh    some figures only (1..7; 4 runs 4 and 4b, ONLY=4a or 4b one
#                                   of them)
#   SIGSHIM_BIN=/path bash ...      measure this binary instead of building one
#   SIGSHIM_BASE=/path bash ...     also measure this binary (say, main's) as the row `sigshim-base`
#                                   of figures 1-5, interleaved with the others: before and after
#                                   in one run
#   BENCH_WORK=/dir                 where helpers, logs and results go (default /tmp/sigshim-bench)
#   SINK_QLEN=512                   run figure 6a's receiver with this net.unix.max_dgram_qlen (root;
#                                   a private network namespace), e.g. 512 as systemd sets at boot
#
# The machine this runs on is shared and noisy, so nothing here is an absolute threshold: every
# row of a table is measured in the same run, rows take turns round by round, tables give
# medians or percentiles, and ratios compare rows measured side by side (bench/driver.c).
#
# Root is needed only to install missing packages (apt) and for the journald half of figure 6
# (tests/harness/journald.sh starts a private systemd-journald in its own namespaces); without
# root those parts are skipped with a note. The results are also written to
# $BENCH_WORK/results.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=${BENCH_WORK:-/tmp/sigshim-bench}
QUICK=${QUICK:-0}
ONLY=${ONLY:-1 2 3 4 5 6 7}
START=$(date +%s)

if [ "$QUICK" = 1 ]; then
	STARTUP_ROUNDS=100 MEM_ROUNDS=2 IDLE_ROUNDS=1 IDLE_SECS=2 SIGNAL_ROUNDS=300 STOP_ROUNDS=50
	LOG_LINES=100000 SYSLOG_ROUNDS=1 JOURNAL_ROUNDS=1
else
	STARTUP_ROUNDS=500 MEM_ROUNDS=5 IDLE_ROUNDS=3 IDLE_SECS=10 SIGNAL_ROUNDS=2000 STOP_ROUNDS=300
	LOG_LINES=1000000 SYSLOG_ROUNDS=5 JOURNAL_ROUNDS=3
fi

note() { echo "bench: $*" >&2; }
want() { [[ " $ONLY " == *" $1 "* ]] && { fig_start=$(date +%s); return 0; }; }
took() { echo; echo "_Figure $1 took $(($(date +%s) - fig_start)) s._"; }
is_root() { [ "$(id -u)" = 0 ]; }

# ---- prerequisites -------------------------------------------------------------------------
# Peers and tools, as Debian packages: logger is in bsdutils, systemd-cat and systemd-journald in
# systemd, nsenter and unshare in util-linux.
missing=()
command -v tini >/dev/null && command -v tini-static >/dev/null || missing+=(tini)
command -v dumb-init >/dev/null || missing+=(dumb-init)
command -v catatonit >/dev/null || missing+=(catatonit)
command -v logger >/dev/null || missing+=(bsdutils)
command -v systemd-cat >/dev/null && [ -x /lib/systemd/systemd-journald ] || missing+=(systemd)
command -v nsenter >/dev/null && command -v unshare >/dev/null || missing+=(util-linux)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v file >/dev/null || missing+=(file)
if [ ${#missing[@]} -gt 0 ]; then
	if is_root; then
		note "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
	else
		note "missing packages: ${missing[*]} (run as root once to install them)"
		exit 1
	fi
fi

mkdir -p "$WORK/bin"
rm -f "$WORK/errors.log"
ERRLOG=$WORK/errors.log

# ---- sigshim, static musl release build -----------------------------------------------------
if [ -n "${SIGSHIM_BIN:-}" ]; then
	cp "$SIGSHIM_BIN" "$WORK/bin/sigshim"
else
	rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl ||
		rustup target add x86_64-unknown-linux-musl >&2
	built=$(cd "$ROOT" && cargo build --release --target x86_64-unknown-linux-musl --bin sigshim \
		--message-format=json-render-diagnostics | grep -o '"executable":"[^"]*sigshim"' | tail -1 | cut -d'"' -f4)
	[ -x "$built" ] || { note "cargo build did not produce sigshim"; exit 1; }
	# A copy: others may rebuild the tree while the bench runs.
	cp "$built" "$WORK/bin/sigshim"
fi

if [ -n "${SIGSHIM_BASE:-}" ]; then
	cp "$SIGSHIM_BASE" "$WORK/bin/sigshim-base"
fi

# ---- helpers (C, compiled here) --------------------------------------------------------------
for prog in driver gen sink sleeper; do
	gcc -O2 -Wall -Wextra -o "$WORK/bin/$prog" "$BENCH/$prog.c" -lm
done
export PATH=$WORK/bin:$PATH
DRIVER=(driver)

# ---- output -----------------------------------------------------------------------------------
exec > >(tee "$WORK/results.md")
tee_pid=$!

commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
cat <<EOF
# sigshim benchmarks ($([ "$QUICK" = 1 ] && echo QUICK || echo FULL) run)

- when: $(date -u '+%Y-%m-%d %H:%M UTC'); sigshim tree: $commit; $(sigshim --version 2>/dev/null | head -1)
- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), kernel $(uname -r); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)
- net.unix.max_dgram_qlen: $(cat /proc/sys/net/unix/max_dgram_qlen) (datagrams a unix socket queues before senders block; the kernel default is 10, systemd as PID 1 raises it to 512 at boot; figure 6b gives the private journald's namespace 512, JOURNAL_QLEN= to change)
- sigshim-base row: $([ -n "${SIGSHIM_BASE:-}" ] && echo "$SIGSHIM_BASE ($(sigshim-base --version 2>/dev/null | head -1))" || echo none)
- peers: tini $(tini --version | awk '{print $3}'), dumb-init $(dumb-init --version 2>&1 | awk '{print $2}'), catatonit $(catatonit --version 2>&1 | awk '{print $3}'), $(logger --version), systemd-cat $(systemd-cat --version | head -1 | awk '{print $2}')
EOF

# Wrappers of figures 1-5. sigshim runs with logging off (--log inherit), like its peers.
WRAPPERS=(
	sigshim 'sigshim --log inherit --'
	'tini -s' 'tini -s --'
	'tini-static -s' 'tini-static -s --'
	dumb-init 'dumb-init'
	catatonit 'catatonit --'
)
[ -z "${SIGSHIM_BASE:-}" ] || WRAPPERS+=(sigshim-base 'sigshim-base --log inherit --')

if want 1; then
	cat <<EOF

## 1. Start-up + exit: \`WRAPPER /bin/true\`

fork + exec + waitpid, timed with CLOCK_MONOTONIC by the driver; overhead = the row minus the
bare run of the same round.

EOF
	"${DRIVER[@]}" startup "$STARTUP_ROUNDS" --errlog "$ERRLOG" bare '' "${WRAPPERS[@]}"
	took 1
fi

if want 2; then
	cat <<EOF

## 2. Memory of the wrapper while its child sleeps

VmRSS and VmHWM from /proc/PID/status, Pss from /proc/PID/smaps_rollup (shared pages divided
among the processes that map them: a dynamically linked wrapper shares libc with everything
else). The first row is the child itself, for scale.

EOF
	"${DRIVER[@]}" mem "$MEM_ROUNDS" --child sleeper --ref catatonit --errlog "$ERRLOG" \
		'child alone (sleeper)' '' "${WRAPPERS[@]}"
	took 2
fi

if want 3; then
	cat <<EOF

## 3. Idle cost over ${IDLE_SECS} s while the child sleeps

Wake-ups = voluntary + involuntary context switches (/proc/PID/task/*/status), CPU =
utime + stime (/proc/PID/stat, clock ticks) and time on CPU (/proc/PID/task/*/schedstat, ns).

EOF
	"${DRIVER[@]}" idle "$IDLE_ROUNDS" "$IDLE_SECS" --child sleeper --errlog "$ERRLOG" \
		'child alone (sleeper)' '' "${WRAPPERS[@]}"
	took 3
fi

if want 4 || want 4a; then
	cat <<EOF

## 4. Signal forwarding latency: kill(wrapper, SIGUSR1) -> the child's handler runs

EOF
	"${DRIVER[@]}" signal "$SIGNAL_ROUNDS" --child sleeper --errlog "$ERRLOG" \
		'bare (kill the child)' '' "${WRAPPERS[@]}"
	took 4
fi

if want 4 || want 4b; then
	cat <<EOF

## 4b. SIGTERM as a repeated stop request: kill(wrapper, SIGTERM) -> the child's handler runs

The child (\`sleeper TERM\`) traps SIGTERM and lives on, so the wrapper gets SIGTERM again and
again and forwards it each time. For sigshim (no \`--stop-signal\`) the first SIGTERM starts the
stop sequence (forwarded, then SIGCONT, issue 9), every later one is a stop request while
stopping: forwarded again, then SIGCONT, the deadline kept. No kill deadline is set, so the
child stays up for the whole figure.

EOF
	"${DRIVER[@]}" signal "$SIGNAL_ROUNDS" --signal TERM --child 'sleeper TERM' --errlog "$ERRLOG" \
		'bare (kill the child)' '' "${WRAPPERS[@]}"
	took 4b
fi

if want 5; then
	cat <<EOF

## 5. Stop latency: SIGTERM to the wrapper -> wrapper reaped

EOF
	"${DRIVER[@]}" stop "$STOP_ROUNDS" --child sleeper --errlog "$ERRLOG" \
		'bare (kill the child)' '' "${WRAPPERS[@]}"
	took 5
fi

if want 6; then
	cat <<EOF

## 6a. Log path to syslog: $LOG_LINES lines -> a unix datagram receiver

The receiver (bench/sink.c) is the bench's own: it counts every record and checks the line
numbers gen wrote. Both forwarders send RFC 3164 records of the same shape:
\`<30>Mmm dd hh:mm:ss gen[PID]: seq=...\` (logger's default on a unix socket is this local
3164-style format, not RFC 5424; \`-i -p daemon.info\` give it sigshim's PID field and priority).
logger sends one datagram per line, blocking (\`--socket-errors=on\` reports failed sends
instead of hiding them). Forwarder CPU = its own utime + stime, read from /proc/PID/stat while
it is a zombie (gen, sigshim's child, is not counted). Rate = distinct lines received / time from
the start of the pipeline to the last record received.

EOF
	SOCK=$WORK/log.sock
	SINK=(sink)
	if [ -n "${SINK_QLEN:-}" ]; then
		is_root || { note "SINK_QLEN needs root"; exit 1; }
		# unshare without --fork execs: the receiver keeps the PID the driver signals. A new
		# network namespace starts from the kernel default, so the write affects this socket only.
		cat >"$WORK/bin/sink-qlen" <<EOF
#!/bin/sh
exec unshare --net sh -c 'echo $SINK_QLEN >/proc/sys/net/unix/max_dgram_qlen && exec sink "\$@"' sink "\$@"
EOF
		chmod +x "$WORK/bin/sink-qlen"
		SINK=(sink-qlen)
		echo "(receiver in its own network namespace with net.unix.max_dgram_qlen=$SINK_QLEN)"
		echo
	fi
	"${DRIVER[@]}" log --errlog "$ERRLOG" --lines "$LOG_LINES" --rounds "$SYSLOG_ROUNDS" --gen gen \
		--sink "${SINK[0]}" --socket "$SOCK" --ref logger \
		'sigshim --log syslog' wrap gen "sigshim --log syslog --syslog-socket $SOCK --" \
		'logger' pipe gen "logger -u $SOCK --socket-errors=on -t gen -i -p daemon.info"
	took 6a
	fig_start=$(date +%s)

	cat <<EOF

## 6b. Log path to journald: $LOG_LINES lines -> a private systemd-journald

journald is tests/harness/journald.sh's private instance (own mount and network namespaces, no
rate limit, volatile storage), started afresh for every run. sigshim sends over journald's
stdout stream protocol (its default), and in the second row over the native protocol, a datagram
per line; \`gen | systemd-cat\` runs inside journald's mount namespace (nsenter) so that it
reaches that journald's stream socket (systemd-cat without a command connects the stream and
execs cat, which is the forwarder measured). The third row lets journald read gen's stdout stream
itself (\`systemd-cat gen\`: no forwarding process at all), for scale. Rate = distinct lines in
the journal / time from the start to journald going idle (its CPU time still for 500 ms);
lines are counted and order-checked with journalctl afterwards; journald CPU = its utime + stime
over the run.

EOF
	if ! is_root; then
		echo "(skipped: a private journald needs root)"
	elif [ ! -f "$ROOT/tests/harness/journald.sh" ]; then
		echo "(skipped: tests/harness/journald.sh is missing)"
	else
		STATE=$WORK/journald
		mkdir -p "$STATE"
		# journald only ever runs under systemd, which sets net.unix.max_dgram_qlen=512 at
		# boot (sysctl.d/50-default.conf); give the private journald's namespace the same.
		export SIGSHIM_JOURNALD_QLEN=${JOURNAL_QLEN:-512}
		echo "(journald's network namespace: net.unix.max_dgram_qlen=$SIGSHIM_JOURNALD_QLEN, as systemd sets at boot; JOURNAL_QLEN= to change)"
		trap 'SIGSHIM_DAEMON_STATE=$STATE bash "$ROOT/tests/harness/journald.sh" stop >/dev/null 2>&1 || true' EXIT
		"${DRIVER[@]}" log --errlog "$ERRLOG" --lines "$LOG_LINES" --rounds "$JOURNAL_ROUNDS" --gen gen \
			--journald-sh "$ROOT/tests/harness/journald.sh" --state "$STATE" --ref systemd-cat \
			'sigshim --log journald (stream protocol)' wrap benchsig \
			"sigshim --log journald --journal-socket $STATE/run/systemd/journal/socket --tag benchsig --" \
			'sigshim --journal-protocol native' wrap benchnat \
			"sigshim --log journald --journal-protocol native --journal-socket $STATE/run/systemd/journal/socket --tag benchnat --" \
			'systemd-cat' pipe benchcat 'nsenter --target {JPID} --mount -- systemd-cat -t benchcat' \
			'systemd-cat gen (no forwarder)' direct benchdirect \
			'nsenter --target {JPID} --mount -- systemd-cat -t benchdirect'
		rm -rf "$STATE/run/log/journal"
	fi
	took 6b
fi

if want 7; then
	cat <<EOF

## 7. Binary size

EOF
	echo "| binary | bytes | MiB | vs 1 MiB | file | ldd |"
	echo "|---|---:|---:|---:|---|---|"
	for b in "sigshim (musl, release)=$WORK/bin/sigshim" "tini-static=$(command -v tini-static)" \
		"tini=$(command -v tini)" "dumb-init=$(command -v dumb-init)" "catatonit=$(command -v catatonit)"; do
		name=${b%%=*} path=${b#*=}
		bytes=$(stat -Lc %s "$path")
		kind=$(file -bL "$path" | grep -oE 'static-pie linked|statically linked|dynamically linked' | head -1 || true)
		# ldd exits 1 on a static binary: its message is the answer.
		lddout=$(ldd "$path" 2>&1 || true)
		libs=$(grep -oE '^[[:space:]]*[^[:space:]]+ =>' <<<"$lddout" | awk '{print $1}' | paste -sd' ' - || true)
		[ -n "$libs" ] || libs=$(head -1 <<<"$lddout" | sed 's/^[[:space:]]*//')
		awk -v n="$name" -v b="$bytes" -v k="$kind" -v l="$libs" \
			'BEGIN { printf "| %s | %d | %.2f | %.2f× | %s | %s |\n", n, b, b / 1048576, b / 1048576, k, l }'
	done
fi

cat <<EOF

Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Total time: $(($(date +%s) - START)) s.
EOF
# Let tee finish writing before the script returns.
exec >&2
wait "$tee_pid" 2>/dev/null || true
