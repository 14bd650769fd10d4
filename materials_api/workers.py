"""HTTP worker processes for `qiyema serve --workers N`, each with its own listening socket.

Why not uvicorn's own `--workers`: there the workers share one listening socket, and whichever
is awake first accepts every pending connection. Clients that keep their connections open (a
bank's system, a load balancer, a benchmark) then all land on one worker while the others idle
(measured: one worker at 92% CPU, the other at 1%). Here every worker binds the port itself with
SO_REUSEPORT, so the kernel spreads connections over the workers by their addresses.

The parent (which also runs the background work) starts the workers, replaces one that dies,
and on SIGTERM or SIGINT stops them all (SIGTERM each: uvicorn finishes the requests in flight)
before it returns. A worker that fails while starting (the port taken by another program) stops
the whole server with that reason.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

log = logging.getLogger("qiyema")

STARTUP_FAILURE = 3
STOP_TIMEOUT = 30.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port that shares the port with the other workers' sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int) -> None:
    """One worker process: its own socket, the app of `main.worker_app`."""
    import sys

    import uvicorn

    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        print(f"worker: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config("materials_api.main:worker_app", factory=True, host=host, port=port, log_config=None,
                            access_log=False)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def run_workers(host: str, port: int, count: int) -> int:
    """Run `count` workers until SIGTERM or SIGINT; returns the exit status for the command."""
    try:
        listening_socket(host, port).close()  # the port is ours to share, or fail now with the reason
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        return 1
    spawn = multiprocessing.get_context("spawn")
    # glibc gives threads their own malloc arenas (up to 8 per core); a worker's thread pool
    # (storing, database reads) then spreads its garbage over many arenas that are seldom
    # returned to the system. Two arenas keep a long-running worker's memory level. Read by the
    # C library when a worker process starts; an operator's own setting is kept.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}

    def start() -> multiprocessing.Process:
        p = spawn.Process(target=_worker, args=(host, port), name="qiyema-http-worker", daemon=False)
        p.start()
        return p

    workers = [start() for _ in range(count)]
    status = 0
    try:
        while not stop.wait(0.5):
            for i, p in enumerate(workers):
                if p.is_alive():
                    continue
                if p.exitcode == STARTUP_FAILURE:
                    log.error("worker %d could not start: stopping", p.pid)
                    status = 1
                    stop.set()
                    break
                log.warning("worker %d died (exit %s): starting another", p.pid, p.exitcode)
                workers[i] = start()
    finally:
        for p in workers:
            if p.is_alive():
                p.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in workers:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
