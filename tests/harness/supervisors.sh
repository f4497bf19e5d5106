#!/bin/bash
# Real supervisors for sigshim's init tests (tests/inits.rs drives this script): runit, s6,
# daemontools, supervisord and start-stop-daemon, each supervising ONE service, "app", from a
# private state directory. The supervisors run as ordinary processes, never as PID 1 and never
# on the system's own /etc/service, /etc/supervisor or /run: a test owns everything it starts.
#
# The service is the script $STATE/run (the supervisor's run script, supervisord's command,
# start-stop-daemon's --startas):
#
#     #!/bin/sh
#     exec >>$STATE/app.out 2>&1
#     exec env SIGSHIM_TEST_TAG=<tag> <SIGSHIM_SERVICE>
#
# SIGSHIM_SERVICE is a shell command line, normally `sigshim --stop-signal INT ... -- probe
# legacy MARKER`, optionally starting with VAR=value words. The tag goes to the service only,
# not to the supervisor, so a test can tell "the service left nothing behind" (no process
# carries the tag any more) while the supervisor still runs.
#
# How each system stops the service (what `stop-service` does), as their documentation says:
#   runit              sv stop: runsv sends TERM then CONT to the service's PID; sv waits up to
#                      7 s for it to be down. runsv never escalates.
#   s6                 s6-svc -wD -d: s6-supervise sends the down-signal (TERM) then CONT to the
#                      PID; -wD waits until it is down and ./finish has run. timeout-kill (5 s
#                      here) would then send SIGKILL.
#   daemontools        svc -d: supervise sends TERM then CONT, no escalation; svc returns at
#                      once, so the harness waits for svstat to say down.
#   supervisord        supervisorctl stop: stopsignal (TERM) to the PID, SIGKILL after
#                      stopwaitsecs (5 s here); returns once the program is stopped.
#   start-stop-daemon  --stop --retry TERM/5/KILL/5 --pidfile: TERM, wait up to 5 s, then KILL.
#                      Run under subreaper.py (see there) so the exited service is reaped at once.
#
# Usage (root; installs the system's Debian package when it is missing):
#   SIGSHIM_DAEMON_STATE=DIR SIGSHIM_SERVICE='CMD' SIGSHIM_SERVICE_TAG=TAG \
#       supervisors.sh SYSTEM VERB
#   SYSTEM   runit | s6 | daemontools | supervisord | start-stop-daemon
#   start          start the supervisor and the service; waits until the supervisor reports the
#                  service up (with SIGSHIM_SERVICE_DOWN=1: until it can take commands, the
#                  service staying down). Idempotent.
#   stop-service   stop the service the way SYSTEM does; prints "rc=N ms=M" (M: how long the
#                  stop command took, or for daemontools until svstat said down)
#   up-ready       (s6) s6-svc -wU -T 5000 -u: start the service and wait until it is up AND
#                  ready (notification-fd); prints "rc=N ms=M"
#   status         the supervisor's view of the service (exit 3 when the supervisor is not running)
#   service-pid    the service's main PID as the supervisor recorded it (empty when none)
#   stop           stop everything this state directory started, by PID only (idempotent)
#   paths          key=value lines: out= (service output) finish= (exit as the supervisor saw it,
#                  runit and s6) log= (supervisor's own log) service= (service directory)
# Options (environment): SIGSHIM_SERVICE_DOWN=1 (start with the service down),
#   SIGSHIM_NOTIFICATION_FD=N (s6: write N to the service's notification-fd file).
set -euo pipefail

SYSTEM=${1:-}
VERB=${2:-}
STATE=${SIGSHIM_DAEMON_STATE:?set SIGSHIM_DAEMON_STATE to the state directory}
HERE=$(cd "$(dirname "$0")" && pwd)
SVDIR=$STATE/service
APP=$SVDIR/app
OUT=$STATE/app.out
FINISH=$STATE/app.finish
LOG=$STATE/supervisor.log
PIDFILE=$STATE/supervisor.pid
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3

fail() {
	echo "supervisors.sh $SYSTEM: $*" >&2
	exit 1
}

# Alive and not a zombie: a supervisor is re-parented to PID 1 once this script exits, and PID 1
# on some machines reaps orphans only every few seconds.
running() {
	local pid=${1:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

recorded_pid() { cat "$PIDFILE" 2>/dev/null || true; }

# Waits up to $1 seconds (in 10 ms steps) for the command that follows to succeed.
wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 100; i++)); do
		"$@" && return 0
		sleep 0.01
	done
	"$@"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Runs the command with its stdout on stderr (stdout carries this script's answers).
quietly() { "$@" >&2; }

# Runs the command, then prints "rc=N ms=M".
timed() {
	local t0 rc=0
	t0=$(now_ms)
	"$@" || rc=$?
	echo "rc=$rc ms=$(($(now_ms) - t0))"
}

package_of() {
	case $SYSTEM in
	runit) echo runit ;;
	s6) echo s6 ;;
	daemontools) echo daemontools ;; # never daemontools-run: it hooks svscanboot into init
	supervisord) echo supervisor ;;
	start-stop-daemon) echo dpkg ;;
	*) fail "unknown system (runit, s6, daemontools, supervisord, start-stop-daemon)" ;;
	esac
}

binary_of() {
	case $SYSTEM in
	runit) echo runsvdir ;;
	s6) echo s6-svscan ;;
	daemontools) echo svscan ;;
	supervisord) echo supervisord ;;
	start-stop-daemon) echo start-stop-daemon ;;
	esac
}

install_package() {
	PATH=$PATH:/usr/sbin:/sbin command -v "$(binary_of)" >/dev/null && return 0
	[ "$(id -u)" = 0 ] || fail "$(binary_of) is not installed and only root can install it"
	# --no-install-recommends keeps runit-run / daemontools-run and other init hooks out; the
	# packages' own services are not started in containers with a policy-rc.d, and are never
	# what this script runs.
	export DEBIAN_FRONTEND=noninteractive
	local pkg
	pkg=$(package_of)
	apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; } ||
		fail "cannot install $pkg"
}

# The run script. The command line is written verbatim, so the caller's shell quoting applies.
write_run() {
	local tag=${SIGSHIM_SERVICE_TAG:?set SIGSHIM_SERVICE_TAG}
	local cmd=${SIGSHIM_SERVICE:?set SIGSHIM_SERVICE to the service command line}
	mkdir -p "$STATE"
	: >"$OUT"
	printf '#!/bin/sh\nexec >>%s 2>&1\nexec env SIGSHIM_TEST_TAG=%s %s\n' "$OUT" "$tag" "$cmd" >"$STATE/run"
	chmod 755 "$STATE/run"
}

# A service directory for runit, s6 or daemontools.
write_service_dir() {
	rm -rf "$SVDIR"
	mkdir -p "$APP"
	cp "$STATE/run" "$APP/run"
	[ "${SIGSHIM_SERVICE_DOWN:-}" = 1 ] && : >"$APP/down"
	rm -f "$FINISH"
	case $SYSTEM in
	runit)
		# runsv runs ./finish with the exit code (-1 if killed) and the wait status's low byte.
		printf '#!/bin/sh\necho "$1 $2" >>%s\n' "$FINISH" >"$APP/finish"
		chmod 755 "$APP/finish"
		;;
	s6)
		# s6-supervise runs ./finish with the exit code (256 if killed) and the signal.
		printf '#!/bin/sh\necho "$1 $2" >>%s\n' "$FINISH" >"$APP/finish"
		chmod 755 "$APP/finish"
		echo 5000 >"$APP/timeout-kill"
		[ -n "${SIGSHIM_NOTIFICATION_FD:-}" ] && echo "$SIGSHIM_NOTIFICATION_FD" >"$APP/notification-fd"
		;;
	esac
	return 0
}

write_supervisord_conf() {
	local autostart=true
	[ "${SIGSHIM_SERVICE_DOWN:-}" = 1 ] && autostart=false
	cat >"$STATE/supervisord.conf" <<EOF
; Written by tests/harness/supervisors.sh: a private supervisord for one test.
[unix_http_server]
file=$STATE/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
logfile=$LOG
pidfile=$STATE/supervisord.pid
childlogdir=$STATE
identifier=sigshim-test

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$STATE/supervisor.sock

[program:app]
command=$STATE/run
autostart=$autostart
autorestart=false
startsecs=0
stopsignal=TERM
stopwaitsecs=5
redirect_stderr=true
stdout_logfile=$STATE/app.supervisord.out
EOF
}

ctl() { supervisorctl -c "$STATE/supervisord.conf" "$@"; }

# Starts "$@" in the background as its own session, with default signal dispositions (a `cmd &`
# from a script would otherwise hand it SIGINT and SIGQUIT ignored) and without the test's tag.
launch() {
	setsid env --default-signal -u SIGSHIM_TEST_TAG "$@" >>"$LOG" 2>&1 </dev/null &
	echo $! >"$PIDFILE"
}

is_up() {
	case $SYSTEM in
	runit) sv status "$APP" 2>/dev/null | grep -q '^run:' ;;
	s6) s6-svstat -o up "$APP" 2>/dev/null | grep -q true ;;
	daemontools) svstat "$APP" 2>/dev/null | grep -q ': up ' ;;
	supervisord) ctl status app 2>/dev/null | grep -q RUNNING ;;
	start-stop-daemon) start-stop-daemon --status --pidfile "$STATE/app.pid" ;;
	esac
}

is_down() {
	case $SYSTEM in
	runit) sv status "$APP" 2>/dev/null | grep -q '^down:' ;;
	s6) s6-svstat -o up "$APP" 2>/dev/null | grep -q false ;;
	daemontools) svstat "$APP" 2>/dev/null | grep -q ': down ' ;;
	supervisord) ctl status app 2>/dev/null | grep -qE 'STOPPED|EXITED' ;;
	start-stop-daemon) ! start-stop-daemon --status --pidfile "$STATE/app.pid" ;;
	esac
}

# The supervisor can take commands for the service.
is_controllable() {
	case $SYSTEM in
	runit | s6 | daemontools) [ -p "$APP/supervise/control" ] && is_down_or_up ;;
	supervisord) ctl status app 2>/dev/null | grep -q '^app ' ;;
	start-stop-daemon) true ;;
	esac
}

is_down_or_up() { is_up || is_down; }

start() {
	if running "$(recorded_pid)"; then
		echo "already running pid=$(recorded_pid)"
		return 0
	fi
	install_package
	write_run
	: >"$LOG"
	case $SYSTEM in
	runit)
		write_service_dir
		# runsvdir only looks at a directory whose mtime is in the past: backdate it rather
		# than wait a second.
		touch -d "@$(($(date +%s) - 2))" "$SVDIR"
		launch runsvdir -P "$SVDIR"
		;;
	s6)
		write_service_dir
		launch s6-svscan "$SVDIR"
		;;
	daemontools)
		write_service_dir
		launch svscan "$SVDIR"
		;;
	supervisord)
		write_supervisord_conf
		launch supervisord -c "$STATE/supervisord.conf"
		;;
	start-stop-daemon)
		rm -f "$STATE/app.pid"
		if [ "${SIGSHIM_SERVICE_DOWN:-}" != 1 ]; then
			launch "$PYTHON" "$HERE/subreaper.py" start-stop-daemon --start --background \
				--make-pidfile --pidfile "$STATE/app.pid" --startas "$STATE/run"
		fi
		;;
	esac
	local pid
	pid=$(recorded_pid)
	if [ "${SIGSHIM_SERVICE_DOWN:-}" = 1 ]; then
		wait_for 10 is_controllable || { cat "$LOG" >&2; fail "the supervisor did not come up"; }
	else
		wait_for 10 is_up || { cat "$LOG" >&2; fail "the service did not come up: $(status 2>&1)"; }
	fi
	echo "started pid=$pid"
}

stop_service() {
	case $SYSTEM in
	runit) timed quietly sv stop "$APP" ;;
	s6) timed s6-svc -wD -T 10000 -d "$APP" ;;
	daemontools)
		local t0 rc=0
		t0=$(now_ms)
		svc -d "$APP" || rc=$?
		# supervise reads svc commands up to a second late after a (re)start.
		[ "$rc" = 0 ] && { wait_for 10 is_down || rc=$?; }
		echo "rc=$rc ms=$(($(now_ms) - t0))"
		;;
	supervisord) timed quietly ctl stop app ;;
	start-stop-daemon)
		timed quietly start-stop-daemon --stop --pidfile "$STATE/app.pid" \
			--retry TERM/5/KILL/5 --remove-pidfile
		;;
	esac
}

up_ready() {
	[ "$SYSTEM" = s6 ] || fail "up-ready is s6's: s6-svc -wU"
	timed s6-svc -wU -T 5000 -u "$APP"
}

status() {
	running "$(recorded_pid)" || { [ "$SYSTEM" = start-stop-daemon ] || {
		echo "not running"
		return 3
	}; }
	case $SYSTEM in
	runit) sv status "$APP" ;;
	s6) s6-svstat "$APP" ;;
	daemontools) svstat "$APP" ;;
	supervisord) ctl status app || true ;;
	start-stop-daemon) start-stop-daemon --status --pidfile "$STATE/app.pid" && echo "running pid=$(cat "$STATE/app.pid")" || echo "not running" ;;
	esac
}

# The PID of the service's main process as the supervisor recorded it (empty if none).
service_pid() {
	case $SYSTEM in
	runit) cat "$APP/supervise/pid" 2>/dev/null || true ;;
	s6) s6-svstat -o pid "$APP" 2>/dev/null | grep -v '^-1$' || true ;;
	daemontools) svstat "$APP" 2>/dev/null | sed -nE 's/.*\(pid ([0-9]+)\).*/\1/p' ;;
	supervisord) ctl pid app 2>/dev/null | grep -E '^[1-9][0-9]*$' || true ;;
	start-stop-daemon) cat "$STATE/app.pid" 2>/dev/null || true ;;
	esac
}

# Everything by PID: the service (the supervisor's way first, then SIGKILL), the supervisor,
# and what it started.
stop() {
	local pid svc kids k
	pid=$(recorded_pid)
	svc=$(service_pid)
	if [ "$SYSTEM" = start-stop-daemon ]; then
		[ -n "$svc" ] && running "$svc" && start-stop-daemon --stop --pidfile "$STATE/app.pid" \
			--retry TERM/2/KILL/2 >/dev/null 2>&1 || true
	elif running "$pid"; then
		case $SYSTEM in
		runit) sv -w 5 force-stop "$APP" >/dev/null 2>&1 || true ;;
		s6) s6-svc -wD -T 5000 -d "$APP" >/dev/null 2>&1 || true ;;
		daemontools) svc -dx "$APP" >/dev/null 2>&1 || true ;;
		supervisord) ctl stop app >/dev/null 2>&1 || true ;;
		esac
	fi
	[ -n "$svc" ] && running "$svc" && kill -KILL "$svc" 2>/dev/null || true
	if running "$pid"; then
		kids=$(ps -o pid= --ppid "$pid" || true)
		case $SYSTEM in
		# runsvdir: HUP = send TERM to every runsv and exit. s6-svscan, svscan and the
		# subreaper exit on TERM; supervisord shuts down on TERM.
		runit) kill -HUP "$pid" 2>/dev/null || true ;;
		*) kill -TERM "$pid" 2>/dev/null || true ;;
		esac
		wait_for 5 eval "! running $pid" || kill -KILL "$pid" 2>/dev/null || true
		for k in $kids; do
			wait_for 2 eval "! running $k" || kill -KILL "$k" 2>/dev/null || true
		done
		echo "stopped pid=$pid"
	else
		echo "not running"
	fi
	rm -f "$PIDFILE"
}

paths() {
	printf 'out=%s\nfinish=%s\nlog=%s\nservice=%s\n' "$OUT" "$FINISH" "$LOG" "$APP"
}

[ -n "$SYSTEM" ] && package_of >/dev/null
case $VERB in
start) start ;;
stop-service) stop_service ;;
up-ready) up_ready ;;
status) status ;;
service-pid) service_pid ;;
stop) stop ;;
paths) paths ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
	exit 2
	;;
esac
