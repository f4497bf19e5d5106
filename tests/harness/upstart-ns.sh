#!/bin/bash
# A real Upstart 1.13.2 for sigshim's job-file tests (tests/upstart.rs drives it): Upstart's own
# init as PID 1 of a private PID + mount + network namespace, one instance per state directory,
# so tests running in parallel each get their own init and nothing of it reaches the host.
#
# Upstart is not packaged for Debian 12. The binaries come from SIGSHIM_UPSTART_DIR, by default
# ../shared/reference/upstart beside the project root (sbin/init, sbin/initctl and lib/libnih*.so.1,
# built from the exact sources kept there; its BUILD.md says how). Adapted from that folder's
# upstart-ns.sh, a recipe checked on this machine (Debian 12, kernel namespaces, root).
#
# Inside the namespace (the host's file system is shared, except):
# - /dev is a private tmpfs with null, zero, full, random, urandom, tty, ptmx, pts (for
#   `console log`), a plain-file /dev/console, and /dev/kmsg bound to a FIFO: what Upstart logs
#   (init --verbose) lands in $STATE/kmsg.log, one "<6>init: ..." line each;
# - /dev/log is a symlink to SIGSHIM_UPSTART_DEVLOG when that is set (a test's own rsyslogd);
# - /usr/local/bin is $STATE/bin, so a job's `exec /usr/local/bin/legacy-app` finds the test's
#   stand-in there, the job file unchanged;
# - /usr/bin is an overlay of the host's /usr/bin and a tmpfs holding one symlink per file of
#   SIGSHIM_UPSTART_USR_BIN (space-separated absolute paths, each under its basename), so
#   `exec /usr/bin/sigshim` runs the binary under test: the job files are installed byte for byte;
# - the confdir is $STATE/init, `console log` files go to $STATE/log/JOB.log (through a pty:
#   lines end in "\r\n").
# init runs with --no-dbus --no-startup-event: no job starts unless a test starts it.
#
# Usage (root; installs libdbus-1-3 and libjson-c5 with apt-get when they are missing):
#   SIGSHIM_DAEMON_STATE=/tmp/x upstart-ns.sh VERB [ARGS]
#   check            exit 0 if this machine can run it; else the reason and how to fix it, exit 3
#   start            idempotent (stops a previous instance first); returns once initctl answers;
#                    prints "started init=HOSTPID version=..."
#   ctl ARGS...      initctl ARGS inside (start JOB, stop JOB, status JOB, reload JOB, ...);
#                    stdout, stderr and the exit status pass through
#   exec CMD...      CMD inside the namespace (mount, pid, net)
#   job NAME FILE    installs FILE as NAME.conf and reloads the configuration
#   status           "running init=HOSTPID" (exit 0) or "not running" (exit 3)
#   stop             idempotent; SIGKILL to the namespace's init by PID (the kernel then kills
#                    everything inside), then the FIFO reader by PID
#   paths            key=value lines: confdir= logdir= bin= kmsg= console=
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${SIGSHIM_DAEMON_STATE:?set SIGSHIM_DAEMON_STATE to the instance state directory}
UPSTART=${SIGSHIM_UPSTART_DIR:-$ROOT/../shared/reference/upstart}
UPSTART=$(cd "$UPSTART" 2>/dev/null && pwd || echo "$UPSTART")
INIT=$UPSTART/sbin/init
INITCTL=$UPSTART/sbin/initctl

fail() {
	echo "upstart-ns.sh: $*" >&2
	exit 1
}

# Alive and not a zombie: the launcher's processes are re-parented to the host's PID 1 once this
# script exits, and PID 1 on some machines reaps orphans only every few seconds.
running() {
	local pid=${1:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

init_pid() { cat "$STATE/init.pid" 2>/dev/null || true; }

inside() {
	local pid
	pid=$(init_pid)
	running "$pid" || fail "not running (start it first)"
	nsenter --target "$pid" --mount --pid --net "$@"
}

check() {
	if [ ! -x "$INIT" ] || [ ! -x "$INITCTL" ]; then
		cat >&2 <<EOF
upstart-ns.sh: no Upstart at $UPSTART (sbin/init and sbin/initctl are missing).
  Upstart 1.13.2 is not packaged for Debian 12. Put a build at ../shared/reference/upstart beside
  the project (sbin/init, sbin/initctl, lib/libnih.so.1, lib/libnih-dbus.so.1), or point
  SIGSHIM_UPSTART_DIR at one. To build it: upstart 1.13.2 (ubports/upstart, xenial branch) and
  libnih 1.0.4 (keybuk/libnih) with autotools, gcc -fcommon, as in that folder's BUILD.md.
EOF
		exit 3
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "upstart-ns.sh: needs root (PID and mount namespaces)" >&2
		exit 3
	fi
	for tool in unshare nsenter mknod mount; do
		command -v "$tool" >/dev/null || { echo "upstart-ns.sh: $tool is missing (util-linux)" >&2; exit 3; }
	done
	echo "ok $UPSTART"
}

# Several tests start instances at once: one apt-get at a time (dpkg's lock would make the
# others fail rather than wait), and only if a library is still missing once we hold the lock.
missing_libs() {
	local p
	for p in libdbus-1-3 libjson-c5; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

ensure_libs() {
	[ -z "$(missing_libs)" ] && return 0
	(
		flock 9
		need=$(missing_libs)
		[ -z "$need" ] && exit 0
		export DEBIAN_FRONTEND=noninteractive
		# shellcheck disable=SC2086 # one word per package
		apt-get install -y -qq --no-install-recommends $need >/dev/null ||
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $need >/dev/null; }
	) 9>/var/lock/sigshim-test-upstart-libs.lock
	[ -z "$(missing_libs)" ] || fail "cannot install $(missing_libs | tr '\n' ' ')(Upstart's runtime libraries)"
}

stop() {
	local pid i
	pid=$(init_pid)
	if running "$pid"; then
		kill -KILL "$pid"
		for i in $(seq 1 200); do
			running "$pid" || break
			sleep 0.01
		done
		running "$pid" && fail "init $pid survived SIGKILL for 2 s"
	fi
	for f in unshare.pid kmsg-reader.pid; do
		pid=$(cat "$STATE/$f" 2>/dev/null || true)
		if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
	done
	rm -f "$STATE/init.pid" "$STATE/unshare.pid" "$STATE/kmsg-reader.pid"
}

start() {
	check >/dev/null
	stop
	ensure_libs
	rm -rf "$STATE/log" "$STATE/kmsg.fifo" "$STATE/kmsg.log" "$STATE/console.log"
	mkdir -p "$STATE/init" "$STATE/log" "$STATE/bin"
	mkfifo "$STATE/kmsg.fifo"
	: >"$STATE/kmsg.log"
	# Opened read-write, so the reader never sees EOF between Upstart's open/write/close cycles.
	setsid bash -c 'exec cat <>"$1" >>"$2"' _ "$STATE/kmsg.fifo" "$STATE/kmsg.log" \
		</dev/null >/dev/null 2>&1 &
	echo $! >"$STATE/kmsg-reader.pid"
	# setsid: no signal meant for the test's process group reaches init. The namespace's PID 1
	# is init itself (exec), so SIGKILL to it ends everything inside.
	S=$STATE INIT=$INIT DEVLOG=${SIGSHIM_UPSTART_DEVLOG:-} USR_BIN=${SIGSHIM_UPSTART_USR_BIN:-} \
		setsid unshare --pid --fork --mount \
		--net --propagation private --mount-proc bash -c '
		set -e
		mount -t tmpfs -o mode=755 sigshim-up-dev /dev
		for spec in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0 ptmx:5:2; do
			IFS=: read -r n ma mi <<<"$spec"
			mknod -m 666 "/dev/$n" c "$ma" "$mi"
		done
		mkdir /dev/pts /dev/shm
		mount -t devpts -o newinstance,ptmxmode=0666 sigshim-up-pts /dev/pts
		mount --bind /dev/pts/ptmx /dev/ptmx
		mount -t tmpfs -o mode=1777 sigshim-up-shm /dev/shm
		: >/dev/console; chmod 600 /dev/console   # a plain file: early output of init
		: >/dev/kmsg; mount --bind "$S/kmsg.fifo" /dev/kmsg
		ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin
		ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
		if [ -n "$DEVLOG" ]; then ln -s "$DEVLOG" /dev/log; fi
		mount --bind "$S/bin" /usr/local/bin
		if [ -n "$USR_BIN" ]; then
			mkdir -p "$S/usr-bin"
			mount -t tmpfs -o mode=755 sigshim-up-usr-bin "$S/usr-bin"
			mkdir "$S/usr-bin/upper" "$S/usr-bin/work"
			for f in $USR_BIN; do ln -s "$f" "$S/usr-bin/upper/${f##*/}"; done
			mount -t overlay sigshim-up-usr-bin-overlay \
				-o "lowerdir=/usr/bin,upperdir=$S/usr-bin/upper,workdir=$S/usr-bin/work" /usr/bin
		fi
		ip link set lo up 2>/dev/null || true
		exec "$INIT" --confdir "$S/init" --logdir "$S/log" --no-dbus --no-startup-event --verbose
	' >"$STATE/console.log" 2>&1 </dev/null &
	echo $! >"$STATE/unshare.pid"
	local pid="" i
	for i in $(seq 1 500); do # the namespace's PID 1 is unshare's only child
		pid=$(pgrep -P "$(cat "$STATE/unshare.pid")" 2>/dev/null | head -1 || true)
		[ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$INIT")" ] && break
		pid=""
		sleep 0.01
	done
	[ -n "$pid" ] || { cat "$STATE/console.log" >&2; fail "init did not start"; }
	echo "$pid" >"$STATE/init.pid"
	local version=""
	for i in $(seq 1 500); do
		version=$(nsenter --target "$pid" --mount --pid --net "$INITCTL" version 2>/dev/null) && break
		running "$pid" || { cat "$STATE/console.log" >&2; fail "init exited during start-up"; }
		sleep 0.01
	done
	[ -n "$version" ] || { cat "$STATE/console.log" >&2; fail "initctl got no answer for 5 s"; }
	echo "started init=$pid version=$version"
}

case ${1:-} in
check) check ;;
start) start ;;
stop) stop ;;
ctl)
	shift
	inside "$INITCTL" "$@"
	;;
exec)
	shift
	inside "$@"
	;;
job)
	[ $# = 3 ] || fail "usage: job NAME FILE"
	cp "$3" "$STATE/init/$2.conf"
	inside "$INITCTL" reload-configuration
	;;
status)
	pid=$(init_pid)
	if running "$pid"; then echo "running init=$pid"; else
		echo "not running"
		exit 3
	fi
	;;
paths)
	printf 'confdir=%s\nlogdir=%s\nbin=%s\nkmsg=%s\nconsole=%s\n' "$STATE/init" "$STATE/log" \
		"$STATE/bin" "$STATE/kmsg.log" "$STATE/console.log"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
	exit 2
	;;
esac
