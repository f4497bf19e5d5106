#!/bin/bash
# A private rsyslogd for sigshim's log tests (tests/support/daemons.rs drives it).
#
# Each instance lives in its own state directory, so tests running in parallel each get their
# own daemon. rsyslogd reads only the configuration written here: imuxsock listens on
# $STATE/log.sock and nothing else (SysSock.Use="off": the host's /dev/log is never opened,
# created or replaced, so no namespace is needed), and every message it receives becomes one
# JSON object per line in $STATE/records.jsonl:
#
#   {"tag":"app[42]:", "programname":"app", "pid":"42", "facility":"local3",
#    "severity":"info", "msg":" hello"}
#
# What a test can rely on (checked by hand on rsyslog 8.2302, Debian 12):
# - msg is the message exactly as sent: control-character escaping on receive is off, so a
#   `\r` stays a `\r` (the default would turn it into `#015`), and bytes >= 0x80 are never
#   escaped. JSON escaping (option.jsonf) covers `"`, `\` and control characters; bytes >= 0x7f
#   are written raw, so the file is NOT always valid UTF-8: read it as bytes (daemons.rs has a
#   byte-exact parser for these flat objects).
# - RFC 3164 (`<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`): msg keeps the one space after `TAG[PID]:`,
#   i.e. msg = " " + MSG. RFC 5424: msg = MSG (nothing added); an empty MSG gives "".
#   Both formats are parsed by the regular parser chain (UseSpecialParser="off"): imuxsock's
#   special parser only understands RFC 3164 and would take a 5424 record's "1" for its tag.
# - No rate limiting (RateLimit.Interval="0"), no repeated-message reduction (off by default in
#   v8), messages up to 256 KiB (maxMessageSize; the default 8 KiB would truncate).
# - Records are written in the order rsyslogd read them (one main-queue worker), so a test can
#   send its own datagram as a barrier: once that appears, everything sent before it has too.
# - stop drains: the main queue gets 10 s at shutdown (queue.timeoutShutdown) to write what
#   rsyslogd has already read. Datagrams still queued in the socket when it closes are lost,
#   as with any syslog daemon: a test stops rsyslogd only once what it sent has arrived.
# - start keeps an existing records.jsonl (omfile appends), so stop + start = a restart with
#   the records of both runs.
#
# Usage (root: installs rsyslog with apt-get when it is missing):
#   SIGSHIM_DAEMON_STATE=/tmp/x rsyslog.sh start|stop|restart|status|paths
#   start    idempotent; waits until the socket exists; prints "started pid=N"
#   stop     idempotent; SIGTERM to the recorded PID only, SIGKILL after 10 s
#   status   "running pid=N" (exit 0) or "not running" (exit 3)
#   paths    key=value lines: socket= records= pid= log= (log: rsyslogd's own output)
set -euo pipefail

STATE=${SIGSHIM_DAEMON_STATE:?set SIGSHIM_DAEMON_STATE to the daemon state directory}
SOCKET=$STATE/log.sock
RECORDS=$STATE/records.jsonl
PIDFILE=$STATE/daemon.pid
LOG=$STATE/rsyslogd.out

fail() {
	echo "rsyslog.sh: $*" >&2
	exit 1
}

# Alive and not a zombie: rsyslogd is re-parented to PID 1 once this script exits, and PID 1
# on some machines reaps orphans only every few seconds.
running() {
	local pid=${1:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

recorded_pid() { cat "$PIDFILE" 2>/dev/null || true; }

rsyslogd_path() {
	PATH=$PATH:/usr/sbin:/sbin command -v rsyslogd || true
}

install_rsyslog() {
	[ -n "$(rsyslogd_path)" ] && return 0
	[ "$(id -u)" = 0 ] || fail "rsyslogd is not installed and only root can install it"
	# --no-install-recommends keeps extra services out; the package's own rsyslog service is
	# not started in containers with a policy-rc.d, and in any case is not what we run.
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends rsyslog >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends rsyslog >/dev/null; } ||
		fail "cannot install rsyslog"
}

write_config() {
	mkdir -p "$STATE/work"
	cat >"$STATE/rsyslog.conf" <<EOF
# Written by tests/harness/rsyslog.sh: a private instance for one test.
global(
  workDirectory="$STATE/work"
  maxMessageSize="256k"
  parser.escapeControlCharactersOnReceive="off"
)
main_queue(queue.workerThreads="1" queue.timeoutShutdown="10000")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$SOCKET" CreatePath="on"
      RateLimit.Interval="0" UseSpecialParser="off")
template(name="sigshimRecord" type="list" option.jsonf="on") {
  property(outname="tag" name="syslogtag" format="jsonf")
  property(outname="programname" name="programname" format="jsonf")
  property(outname="pid" name="procid" format="jsonf")
  property(outname="facility" name="syslogfacility-text" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}
*.* action(type="omfile" file="$RECORDS" template="sigshimRecord")
EOF
}

start() {
	local pid
	pid=$(recorded_pid)
	if running "$pid"; then
		echo "already running pid=$pid"
		return 0
	fi
	install_rsyslog
	mkdir -p "$STATE"
	write_config
	rm -f "$SOCKET" "$STATE/rsyslogd.pid"
	local bin
	bin=$(rsyslogd_path)
	"$bin" -N1 -f "$STATE/rsyslog.conf" >"$LOG" 2>&1 || { cat "$LOG" >&2; fail "config rejected"; }
	# -n: stay in the foreground, so the PID we record is rsyslogd's own. setsid: its own
	# session, so no terminal or process-group signal meant for the test reaches it.
	setsid "$bin" -n -f "$STATE/rsyslog.conf" -i "$STATE/rsyslogd.pid" >>"$LOG" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$PIDFILE"
	local i
	for i in $(seq 1 500); do
		[ -S "$SOCKET" ] && break
		running "$pid" || { cat "$LOG" >&2; fail "rsyslogd exited during start-up"; }
		sleep 0.01
	done
	[ -S "$SOCKET" ] || { cat "$LOG" >&2; fail "no socket at $SOCKET after 5 s"; }
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
			echo "rsyslog.sh: rsyslogd pid=$pid ignored SIGTERM for 10 s: killed" >&2
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
paths) printf 'socket=%s\nrecords=%s\npid=%s\nlog=%s\n' "$SOCKET" "$RECORDS" "$PIDFILE" "$LOG" ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
	exit 2
	;;
esac
