#!/usr/bin/python3
"""subreaper.py CMD [ARG...]: run CMD as a child subreaper, then reap every adopted orphan at
once until SIGTERM.

Why (tests/harness/supervisors.sh): `start-stop-daemon --start --background` forks the service
and exits, so the service is re-parented to whoever reaps orphans. On some machines that is a
PID 1 that reaps only every few seconds, and until then the exited service is a zombie that
`start-stop-daemon --stop --retry` counts as still running: a stop that took 50 ms would look
like one that took seconds. Marked PR_SET_CHILD_SUBREAPER, this process adopts the service
instead and reaps it the moment it exits, as a real init does.

Exits with CMD's status if that is not 0; otherwise keeps reaping until SIGTERM (exit 0).
"""
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("subreaper.py: prctl(PR_SET_CHILD_SUBREAPER): %s"
                 % os.strerror(ctypes.get_errno()))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    rc = subprocess.call(sys.argv[1:]) if len(sys.argv) > 1 else 0
    if rc != 0:
        sys.exit(rc)
    # From here on SIGCHLD and SIGTERM are taken with sigwaitinfo: blocked, a SIGCHLD that
    # arrives between two waitpid calls stays pending instead of being missed.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM})
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        if signal.sigwaitinfo({signal.SIGCHLD, signal.SIGTERM}).si_signo == signal.SIGTERM:
            sys.exit(0)


if __name__ == "__main__":
    main()
