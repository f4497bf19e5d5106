#!/bin/bash
# A private systemd-journald for sigshim's log tests (tests/support/daemons.rs drives it).
#
# journald expects to own /run/systemd/journal and /dev/log, and tries the kernel audit socket.
# So it runs in its own mount namespace, where /run is a bind mount of $STATE/run and /dev a
# small tmpfs (the usual device nodes bound in, /dev/log pointing at journald's syslog socket),
# and in its own network namespace (no audit). The host's /run and /dev are never touched. Its
# sockets are reachable from the host through the bind mount's source:
#
#   $STATE/run/systemd/journal/socket    native protocol (what sigshim --log journald sends to)
#   $STATE/run/systemd/journal/stdout    stream protocol
#   $STATE/run/systemd/journal/dev-log   syslog protocol
#   $STATE/run/log/journal/              the journal files (Storage=volatile)
#
# Programs that need the default paths (/run/systemd/journal/socket) can run inside the
# namespace: nsenter --target <pid> --mount CMD (the pid from `status`).
#
# Configuration: no rate limiting (RateLimitIntervalSec=0), no forwarding, no kmsg, and room for
# a few hundred thousand entries (RuntimeMaxUse) so nothing rotates away during a test.
# Read back with `journald.sh read -o json --all`: --all because journalctl prints fields over
# 4096 bytes as null otherwise; a value that is not valid UTF-8 or contains control characters
# other than newline and tab comes out as an array of byte values instead of a string.
#
# Usage (root; journald comes with the systemd package):
#   SIGSHIM_DAEMON_STATE=/tmp/x journald.sh start|stop|restart|status|paths|read [ARGS...]
#   start    idempotent; waits until the three sockets exist; prints "started pid=N"
#   stop     idempotent; SIGTERM to the recorded PID only, SIGKILL after 10 s
#   status   "running pid=N" (exit 0) or "not running" (exit 3)
#   paths    key=value lines: socket= stream= syslog= journal= pid= log=
#   read     journalctl --directory=<journal dir> --no-pager ARGS...
set -euo pipefail

STATE=${SIGSHIM_DAEMON_STATE:?set SIGSHIM_DAEMON_STATE to the daemon state directory}
RUN=$STATE/run
JOURNAL_DIR=$RUN/log/journal
SOCKETS=$RUN/systemd/journal
PIDFILE=$STATE/daemon.pid
LOG=$STATE/journald.out
JOURNALD=/lib/systemd/systemd-journald

fail() {
	echo "journald.sh: $*" >&2
	exit 1
}

# Alive and not a zombie: journald is re-parented to PID 1 once this script exits, and PID 1
# on some machines reaps orphans only every few seconds.
running() {
	local pid=${1:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

recorded_pid() { cat "$PIDFILE" 2>/dev/null || true; }

sockets_ready() {
	[ -S "$SOCKETS/socket" ] && [ -S "$SOCKETS/stdout" ] && [ -S "$SOCKETS/dev-log" ]
}

start() {
	local pid
	pid=$(recorded_pid)
	if running "$pid"; then
		echo "already running pid=$pid"
		return 0
	fi
	[ -x "$JOURNALD" ] || fail "$JOURNALD is missing (apt-get install systemd)"
	[ "$(id -u)" = 0 ] || fail "needs root (mount and network namespaces)"
	# Fresh sockets every time; the journal files stay, so a restart keeps earlier entries.
	rm -rf "$SOCKETS"
	mkdir -p "$RUN/systemd/journald.conf.d" "$JOURNAL_DIR"
	cat >"$RUN/systemd/journald.conf.d/sigshim-test.conf" <<'EOF'
# Written by tests/harness/journald.sh: a private instance for one test.
[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
RateLimitBurst=0
RuntimeMaxUse=2G
RuntimeMaxFileSize=1G
EOF
	# unshare without --fork execs bash, which execs journald: the PID we record is journald's.
	# Inside: /run becomes $STATE/run, /dev a private tmpfs; then journald starts.
	# SIGSHIM_JOURNALD_QLEN sets the namespace's net.unix.max_dgram_qlen before journald creates
	# its sockets: 512 is what systemd sets at boot on every host that runs journald (the
	# kernel default, 10, is what a fresh network namespace has).
	SIGSHIM_JOURNALD_RUN=$RUN SIGSHIM_JOURNALD_QLEN=${SIGSHIM_JOURNALD_QLEN:-} \
	setsid unshare --mount --net --propagation private bash -c '
		set -e
		if [ -n "$SIGSHIM_JOURNALD_QLEN" ]; then
			echo "$SIGSHIM_JOURNALD_QLEN" >/proc/sys/net/unix/max_dgram_qlen
		fi
		mount --bind "$SIGSHIM_JOURNALD_RUN" /run
		dev=$(mktemp -d /run/.dev.XXXXXX)
		mount -t tmpfs -o mode=755 sigshim-test-dev "$dev"
		for node in null zero full random urandom tty console; do
			[ -e "/dev/$node" ] || continue
			touch "$dev/$node"
			mount --bind "/dev/$node" "$dev/$node"
		done
		mkdir "$dev/pts" "$dev/shm"
		mount --rbind /dev/pts "$dev/pts"
		mount --rbind /dev/shm "$dev/shm"
		ln -s /proc/self/fd "$dev/fd"
		ln -s /run/systemd/journal/dev-log "$dev/log"
		mount --move "$dev" /dev
		rmdir "$dev"
		exec '"$JOURNALD"'
	' >"$LOG" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$PIDFILE"
	local i
	for i in $(seq 1 500); do
		sockets_ready && break
		running "$pid" || { cat "$LOG" >&2; fail "journald exited during start-up"; }
		sleep 0.01
	done
	sockets_ready || { cat "$LOG" >&2; fail "no sockets under $SOCKETS after 5 s"; }
	echo "started pid=$pid"
}

stop() {
	local pid i
	pid=$(recorded_pid)
	if running "$pid"; then
		kill -TERM "$pid"
		for i in $(seq 1 1000); do
			running "$pid" || break
			sleep 0.01
		done
		if running "$pid"; then
			kill -KILL "$pid"
			echo "journald.sh: journald pid=$pid ignored SIGTERM for 10 s: killed" >&2
		fi
		echo "stopped pid=$pid"
	else
		echo "not running"
	fi
	rm -f "$PIDFILE"
}

case ${1:-} in
start) start ;;
stop) stop ;;
restart)
	stop
	start
	;;
status)
	pid=$(recorded_pid)
	if running "$pid"; then echo "running pid=$pid"; else
		echo "not running"
		exit 3
	fi
	;;
paths)
	printf 'socket=%s\nstream=%s\nsyslog=%s\njournal=%s\npid=%s\nlog=%s\n' \
		"$SOCKETS/socket" "$SOCKETS/stdout" "$SOCKETS/dev-log" "$JOURNAL_DIR" "$PIDFILE" "$LOG"
	;;
read)
	shift
	exec journalctl --directory="$JOURNAL_DIR" --no-pager "$@"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
	exit 2
	;;
esac
