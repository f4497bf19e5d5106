#!/bin/bash
# A Debian 13 (trixie) root file system with systemd 257, for the tests that need a systemd newer
# than the host's 252 (Type=notify-reload, systemd >= 253). tests/systemd.rs boots it with
# systemd-nspawn.sh (SIGSHIM_NSPAWN_ROOT=DIR) as an overlay's lower layer: the tree itself is
# never written to, so one copy serves every run.
#
# Usage (root): trixie-root.sh [DIR]      prints DIR once it holds a complete tree
#   DIR defaults to $SIGSHIM_TRIXIE_ROOT, else /var/cache/sigshim-tests/trixie.
#
# Idempotent and cached: a complete tree is marked with DIR/.sigshim-complete and reused as it is
# (about 240 MB). A missing or half-made one is built again with debootstrap (installed with
# apt-get if missing) into DIR.tmp, then renamed, so an interrupted run never leaves a tree that
# looks complete. Concurrent callers wait for one another (flock). Building takes about 30-60 s
# with a nearby mirror (SIGSHIM_DEBIAN_MIRROR, default http://deb.debian.org/debian).
set -euo pipefail

DIR=${1:-${SIGSHIM_TRIXIE_ROOT:-/var/cache/sigshim-tests/trixie}}
MIRROR=${SIGSHIM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the tests use inside: systemd itself (systemd-notify, systemd-socket-proxyd), dbus for
# systemctl, python3 for the apps that follow sd_listen_fds(3) and sd_notify(3) by hand.
INCLUDE=systemd,systemd-sysv,dbus,python3-minimal

fail() {
	echo "trixie-root.sh: $*" >&2
	exit 1
}

complete() { [ -f "$DIR/.sigshim-complete" ] && [ -x "$DIR/usr/lib/systemd/systemd" ]; }

if complete; then
	echo "$DIR"
	exit 0
fi
[ "$(id -u)" = 0 ] || fail "needs root to build $DIR (debootstrap)"
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9
if complete; then
	echo "$DIR"
	exit 0
fi
if ! command -v debootstrap >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi
command -v debootstrap >/dev/null || fail "debootstrap is missing and could not be installed"
rm -rf "$DIR.tmp"
t0=$(date +%s)
if ! debootstrap --variant=minbase --include="$INCLUDE" trixie "$DIR.tmp" "$MIRROR" >"$DIR.log" 2>&1; then
	tail -n 20 "$DIR.log" >&2
	fail "debootstrap failed (whole log in $DIR.log)"
fi
touch "$DIR.tmp/.sigshim-complete"
rm -rf "$DIR"
mv "$DIR.tmp" "$DIR"
echo "trixie-root.sh: built $DIR in $(($(date +%s) - t0)) s" >&2
echo "$DIR"
