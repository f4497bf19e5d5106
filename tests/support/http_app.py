"""A small HTTP service for the restart tests (tests/zero_downtime.rs, tests/systemd.rs).

It serves on a listening socket it is handed, the systemd way (LISTEN_FDS, with LISTEN_PID
checked as sd_listen_fds(3) does) or, with HTTP_APP_STARTER=1, the server-starter way
(SERVER_STARTER_PORT="host:port=fd;..."). GET / answers "gen G pid P"; GET /slow prints
"slow request in flight pid=P" and answers after two seconds. It prints "ready pid=P" once it
serves, and on SIGINT stops accepting, finishes the requests in flight and prints
"stopped pid=P": the graceful stop a restart relies on.
"""
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GEN = os.environ.get("SIGSHIM_GENERATION", "?")


def handed_socket():
    if os.environ.get("HTTP_APP_STARTER") == "1":
        first = os.environ["SERVER_STARTER_PORT"].split(";")[0]
        return int(first.rsplit("=", 1)[1])
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("LISTEN_PID does not name this process: the sockets are not for it")
    if int(os.environ.get("LISTEN_FDS", "0")) < 1:
        sys.exit("no socket passed (LISTEN_FDS)")
    return 3


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        if self.path == "/slow":
            print(f"slow request in flight pid={os.getpid()}", flush=True)
            time.sleep(2)
        body = f"gen {GEN} pid {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = socket.socket(fileno=handed_socket())
server.daemon_threads = False  # server_close() waits for the requests in flight
# SIGINT is taken by a thread of its own (sigwait), not by a Python signal handler: a handler
# runs in the main thread between any two bytecodes, and one that starts a thread there can
# deadlock on threading's own lock when it interrupts the main thread starting a request's
# thread. That is what an old generation looked like under load before this change: hung
# after SIGINT with an accepted connection unanswered, until the kill deadline reset it.
# Blocked before any other thread exists, so every thread inherits the block.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def stop_on_sigint():
    signal.sigwait({signal.SIGINT})
    server.shutdown()


threading.Thread(target=stop_on_sigint, daemon=True).start()
print(f"ready pid={os.getpid()}", flush=True)
server.serve_forever(poll_interval=0.05)
server.server_close()
print(f"stopped pid={os.getpid()}", flush=True)
