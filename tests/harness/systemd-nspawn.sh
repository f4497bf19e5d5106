#!/bin/bash
# A real systemd (PID 1 of a throw-away systemd-nspawn container) for the unit-file tests in
# tests/systemd.rs. Works on a host whose own PID 1 is not systemd.
#
# The container's root is an overlay over the host's / whose upper layer is a tmpfs mounted in a
# private mount namespace: units, scripts and symlinks the tests install inside go to that tmpfs
# and vanish at stop; nothing reaches the host's files, /run, mounts or sysctls (nspawn keeps
# /proc/sys read-only, and --private-network gives it its own network namespace). The host's
# cgroup2 hierarchy gets one directory per container ($CG2/$NAME, removed at stop); the container
# sees only that subtree, unified layout (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1).
#
# systemd boots into a minimal target of our own (sysinit + sockets: journald, no getty, no
# network units), which takes about half a second. Each instance has its own state directory and
# machine name, so tests can run several containers at once (one costs ~30 MB and no CPU when
# idle). Adapted from ../shared/reference/real-inits/systemd-nspawn.sh, a recipe checked on this
# machine (Debian 12, systemd 252).
#
# Usage (root; installs systemd-container with apt-get when systemd-nspawn is missing):
#   SIGSHIM_NSPAWN_STATE=/tmp/x systemd-nspawn.sh start|exec|status|stop
#   start            idempotent; returns once `systemctl is-system-running` says running or
#                    degraded; prints "started NAME nspawn=PID leader=PID boot_secs=S"
#   exec CMD [ARG..] runs CMD inside the container (every namespace, the container's root, a
#                    clean environment); stdin, stdout, stderr and the exit status pass through
#   status           "running NAME leader=PID" (exit 0) or "not running" (exit 3)
#   stop             idempotent; clean poweroff, SIGKILL to the container's PID 1 as a fallback,
#                    removes the cgroup it made
#
# Environment:
#   SIGSHIM_NSPAWN_STATE   state directory on the host (required): pids, console.log
#   SIGSHIM_NSPAWN_NAME    machine name = hostname = cgroup name (default: the state directory's
#                          basename, cut to 60 characters); must be unique among running ones
#   SIGSHIM_NSPAWN_BIND_RO space-separated HOST_DIR:CONTAINER_DIR pairs bound read-only, e.g.
#                          "$PWD/target/release:/opt/sigshim/bin"
#   SIGSHIM_NSPAWN_ROOT    the overlay's lower layer: the host's / by default (systemd 252 on
#                          Debian 12), or another OS tree, e.g. the Debian 13 one that
#                          trixie-root.sh builds (systemd 257, for Type=notify-reload); it is
#                          only read, so one copy serves every container
#   SIGSHIM_NSPAWN_BOOT_TIMEOUT=30  SIGSHIM_NSPAWN_STOP_TIMEOUT=30   seconds
#
# Processes started with `exec` live in the host's cgroup tree, outside the container's units:
# they are clients (systemctl, journalctl, sh), never part of what a test observes.
set -euo pipefail

STATE=${SIGSHIM_NSPAWN_STATE:?set SIGSHIM_NSPAWN_STATE to the container state directory}
NAME=${SIGSHIM_NSPAWN_NAME:-$(basename "$STATE" | tr -c 'a-zA-Z0-9-\n' '-' | cut -c1-60)}
BOOT_TIMEOUT=${SIGSHIM_NSPAWN_BOOT_TIMEOUT:-30}
STOP_TIMEOUT=${SIGSHIM_NSPAWN_STOP_TIMEOUT:-30}
CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

fail() {
	echo "systemd-nspawn.sh: $*" >&2
	exit 1
}

# Alive and not a zombie: the launcher's processes are re-parented to the host's PID 1 when the
# test exits, and PID 1 on some machines reaps orphans only every few seconds.
running() {
	local pid=${1:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

nspawn_pid() { cat "$STATE/nspawn.pid" 2>/dev/null || true; }
leader_pid() { cat "$STATE/leader.pid" 2>/dev/null || true; }
up() { running "$(nspawn_pid)" && running "$(leader_pid)"; }

# The cgroup2 mount: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones.
cgroup2_root() {
	local d
	for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
		if [ "$(stat -fc %T "$d" 2>/dev/null)" = cgroup2fs ]; then
			echo "$d"
			return 0
		fi
	done
	fail "no cgroup2 hierarchy mounted (systemd in the container needs one)"
}

# Several tests start containers at once: one apt-get at a time (dpkg's lock would make the
# others fail rather than wait), and only if the package is still missing once we hold the lock.
ensure_nspawn() {
	command -v systemd-nspawn >/dev/null && return 0
	[ "$(id -u)" = 0 ] || fail "systemd-nspawn is missing (apt-get install systemd-container)"
	(
		flock 9
		command -v systemd-nspawn >/dev/null && exit 0
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq --no-install-recommends systemd-container >/dev/null ||
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd-container >/dev/null; }
	) 9>/var/lock/sigshim-test-nspawn-install.lock
	command -v systemd-nspawn >/dev/null || fail "installing systemd-container failed"
}

in_container() {
	local leader
	leader=$(leader_pid)
	running "$leader" || fail "container $NAME is not running"
	exec nsenter --target "$leader" --all --root --wd \
		env -i PATH=$CLEAN_PATH LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

remove_cgroup() {
	local d
	# nspawn on a hybrid host mirrors its cgroups into the name=systemd v1 hierarchy too.
	for d in "$CG2/$NAME" "/sys/fs/cgroup/systemd/$NAME"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		[ -d "$d" ] && echo "systemd-nspawn.sh: warning: could not remove cgroup $d" >&2
	done
	return 0
}

start() {
	if up; then
		echo "already running $NAME leader=$(leader_pid)"
		return 0
	fi
	[ "$(id -u)" = 0 ] || fail "needs root (mount namespaces, cgroups, nspawn)"
	stop >/dev/null 2>&1 || true # what a crashed run may have left
	ensure_nspawn
	mkdir -p "$STATE"
	local t0 spec binds=()
	t0=$(date +%s%N)
	for spec in ${SIGSHIM_NSPAWN_BIND_RO:-}; do
		binds+=("--bind-ro=$spec")
	done
	mkdir -p "$CG2/$NAME"

	# The launcher moves itself into the container's cgroup (nspawn --keep-unit then uses it as
	# is: there is no host systemd to ask for a scope), enters a private mount namespace, builds
	# the overlay root there and execs systemd-nspawn, so $! is nspawn's PID.
	local lower=${SIGSHIM_NSPAWN_ROOT:-/}
	[ -x "$lower/usr/lib/systemd/systemd" ] || [ -x "$lower/lib/systemd/systemd" ] ||
		fail "no systemd in $lower (SIGSHIM_NSPAWN_ROOT)"
	SIGSHIM_NSPAWN_FS="$STATE/fs" SIGSHIM_NSPAWN_MACHINE="$NAME" SIGSHIM_NSPAWN_CG="$CG2/$NAME" \
		SIGSHIM_NSPAWN_LOWER="$lower" \
		SYSTEMD_NSPAWN_LOCK=0 SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 \
		setsid bash -c '
		set -e
		echo 0 >"$SIGSHIM_NSPAWN_CG/cgroup.procs"
		exec unshare --mount --propagation private bash -c "
			set -e
			fs=\$SIGSHIM_NSPAWN_FS
			root=\$fs/root
			mkdir -p \$fs
			mount -t tmpfs -o mode=755 sigshim-nspawn \$fs
			mkdir \$fs/upper \$fs/work \$root
			mount -t overlay overlay -o lowerdir=\$SIGSHIM_NSPAWN_LOWER,upperdir=\$fs/upper,workdir=\$fs/work \$root
			# nspawn keeps runtime files in /run; this namespace gets its own, empty one.
			mount -t tmpfs -o mode=755 sigshim-nspawn-run /run
			systemd-id128 new >\$root/etc/machine-id
			echo \$SIGSHIM_NSPAWN_MACHINE >\$root/etc/hostname
			mkdir -p \$root/etc/systemd/system
			printf \"%s\n\" \"[Unit]\" \"Description=sigshim test boot target\" \
				\"Requires=sysinit.target sockets.target\" \"After=sysinit.target sockets.target\" \
				\"AllowIsolate=yes\" >\$root/etc/systemd/system/sigshim-test.target
			exec systemd-nspawn --quiet --boot --directory=\$root --machine=\$SIGSHIM_NSPAWN_MACHINE \
				--register=no --keep-unit --private-network --console=read-only \"\$@\" \
				-- systemd.unit=sigshim-test.target
		" sigshim-nspawn "$@"
	' sigshim-nspawn "${binds[@]}" >"$STATE/console.log" 2>&1 </dev/null &
	local np=$!
	echo "$np" >"$STATE/nspawn.pid"

	# The container's PID 1 is nspawn's child running systemd.
	local leader="" i state=""
	for i in $(seq 1 $((BOOT_TIMEOUT * 100))); do
		running "$np" || { cat "$STATE/console.log" >&2; fail "systemd-nspawn exited during boot"; }
		leader=$(ps -o pid=,comm= --ppid "$np" | awk '$2 == "systemd" { print $1; exit }' || true)
		[ -n "$leader" ] && break
		sleep 0.01
	done
	[ -n "$leader" ] || fail "no systemd under nspawn after ${BOOT_TIMEOUT}s"
	echo "$leader" >"$STATE/leader.pid"
	for i in $(seq 1 $((BOOT_TIMEOUT * 20))); do
		state=$( (in_container systemctl is-system-running) 2>/dev/null || true)
		case $state in running | degraded) break ;; esac
		running "$np" || { cat "$STATE/console.log" >&2; fail "systemd-nspawn exited during boot"; }
		sleep 0.05
	done
	case $state in
	running | degraded) ;;
	*) fail "boot did not finish within ${BOOT_TIMEOUT}s (is-system-running: $state)" ;;
	esac
	local ms=$((($(date +%s%N) - t0) / 1000000))
	printf 'started %s nspawn=%s leader=%s boot_secs=%d.%03d\n' "$NAME" "$np" "$leader" $((ms / 1000)) $((ms % 1000))
}

stop() {
	local np leader i
	np=$(nspawn_pid)
	leader=$(leader_pid)
	if running "$leader"; then
		(in_container systemctl poweroff --no-block) >/dev/null 2>&1 ||
			kill -s SIGRTMIN+4 "$leader" 2>/dev/null || true # systemd's "poweroff" signal
		for i in $(seq 1 $((STOP_TIMEOUT * 100))); do
			running "$np" || break
			sleep 0.01
		done
	fi
	# SIGKILL to the container's PID 1 ends its whole PID namespace; nspawn then exits.
	if running "$leader"; then kill -KILL "$leader" 2>/dev/null || true; fi
	for i in $(seq 1 500); do
		running "$np" || break
		sleep 0.01
	done
	if running "$np"; then kill -KILL "$np" 2>/dev/null || true; fi
	remove_cgroup
	rm -f "$STATE/nspawn.pid" "$STATE/leader.pid"
	if [ -n "$np$leader" ]; then echo "stopped $NAME"; else echo "not running"; fi
}

CG2=$(cgroup2_root)
case ${1:-} in
start) start ;;
stop) stop ;;
status)
	if up; then echo "running $NAME leader=$(leader_pid)"; else
		echo "not running"
		exit 3
	fi
	;;
exec)
	shift
	[ $# -gt 0 ] || fail "exec needs a command"
	in_container "$@"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
	exit 2
	;;
esac
