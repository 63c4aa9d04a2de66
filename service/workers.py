"""`suqiu serve --workers N`: one accepting process hands connections to N server processes.

The parent process listens, accepts each connection and passes its file descriptor to the
workers in turn over a Unix socket (``SCM_RIGHTS``); each worker runs uvicorn on the
connections it is handed. Round robin keeps the workers' shares equal: with one
``SO_REUSEPORT`` socket per worker, the kernel spread the bench's 16 connections by a
hash of their addresses, 5 / 11 in one run of four, and the worker holding 11 answered
its clients ~2× slower (p99 85 vs 47–62 ms in runs split 8 / 8); with one shared
listening socket, the first worker to wake accepted a whole burst. Accepted sockets get
TCP_NODELAY (without it every response waited ~40 ms for a delayed ACK).

The workers count their metrics in files in one directory (prometheus_client's
multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``), so /metrics reports the whole server
whichever worker answers; a fresh directory is made for each start and removed at exit,
unless the variable is already set.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile

import uvicorn

log = logging.getLogger(__name__)

__all__ = ["serve_workers"]


class _HandedServer(uvicorn.Server):
    """A uvicorn server with no listening socket of its own: it serves the connections the
    parent process sends over ``channel``, and stops when the parent goes away."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket):
        super().__init__(config)
        self.channel = channel
        self._handing: set[asyncio.Task] = set()  # asyncio keeps only weak references to tasks

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=[])
        if self.should_exit:
            return
        loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), self._receive, loop)
        log.info("worker %d ready", os.getpid())

    def _protocol(self, loop):
        # what uvicorn.Server.startup builds for each connection of its own listeners
        return self.config.http_protocol_class(config=self.config, server_state=self.server_state,
                                               app_state=self.lifespan.state, _loop=loop)

    def _receive(self, loop) -> None:
        try:
            msg, fds, _, _ = socket.recv_fds(self.channel, 64, 64)
        except (BlockingIOError, InterruptedError):
            return
        if not msg:  # the parent closed the channel: stop
            loop.remove_reader(self.channel.fileno())
            self.should_exit = True
            return
        for fd in fds:
            sock = socket.socket(fileno=fd)
            task = loop.create_task(loop.connect_accepted_socket(lambda: self._protocol(loop), sock))
            self._handing.add(task)
            task.add_done_callback(self._handing.discard)

    async def shutdown(self, sockets=None) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
        except (ValueError, OSError):
            pass
        await super().shutdown(sockets=sockets)


def _worker(channel: socket.socket, others: list[socket.socket], listener: socket.socket) -> None:
    from service.api import create_app
    from service.config import Settings

    listener.close()  # the fork inherited the parent's sockets: keep only this worker's channel
    for other in others:
        other.close()
    settings = Settings()
    config = uvicorn.Config(create_app(settings), log_level="info", access_log=False, **settings.uvicorn_options())
    # Ctrl-C reaches every process of the group: uvicorn shuts this worker down gracefully and
    # then re-raises the signal it caught; ignored here, so the worker exits without a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _HandedServer(config, channel).run()


def serve_workers(*, host: str, port: int, workers: int) -> int:
    """Listen on ``host:port`` and serve with ``workers`` processes until SIGTERM / SIGINT.

    Returns the exit status: 0 after a signal, 1 when every worker has died.
    """
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # read by prometheus_client when it is first imported: that must be in the workers
        if "prometheus_client" in sys.modules:
            raise RuntimeError("prometheus_client was imported before the workers' metrics directory was set")
        metrics_dir = tempfile.mkdtemp(prefix="suqiu-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _serve(host=host, port=port, workers=workers)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _serve(*, host: str, port: int, workers: int) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(workers)]
    ctx = multiprocessing.get_context("fork")
    procs = []
    for i, (mine, theirs) in enumerate(pairs):
        others = [s for j, pair in enumerate(pairs) for s in pair if j != i] + [mine]
        procs.append(ctx.Process(target=_worker, args=(theirs, others, listener), daemon=False))
        procs[-1].start()
    channels = []
    for (mine, theirs), proc in zip(pairs, procs):
        theirs.close()
        channels.append((mine, proc))
    log.info("Suqiu serving on %s:%d with %d worker processes", host, port, workers)

    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status, turn = 0, 0
    with selectors.DefaultSelector() as sel:
        sel.register(listener, selectors.EVENT_READ)
        while not stopping:
            alive = []
            for ch, p in channels:
                if p.is_alive():
                    alive.append((ch, p))
                else:
                    log.error("worker %s exited (code %s)", p.pid, p.exitcode)
                    ch.close()
            channels = alive
            if not channels:
                status = 1
                break
            if not sel.select(timeout=0.5):
                continue
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            with conn:  # the worker holds its own descriptor once it is sent
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for _ in range(len(channels)):
                    ch, _proc = channels[turn % len(channels)]
                    turn += 1
                    try:
                        socket.send_fds(ch, [b"c"], [conn.fileno()])
                        break
                    except OSError:  # that worker just died: the next one takes the connection
                        continue
    listener.close()
    for ch, _ in channels:
        ch.close()  # a worker finishes its requests and stops when its channel closes
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.terminate()
            p.join()
    return status
