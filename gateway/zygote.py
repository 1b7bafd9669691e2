"""One copy of the language models per machine, however many HTTP workers: the workers are forked
from a **zygote**, a process forked from the gateway's before its event loop starts, once the
models are loaded.

The language models (``gateway.normalizers.language``, ~300 MB) are read, never written, once
built. A process that forks after loading them shares their pages with its children until one
writes to them, which none does; a worker started fresh (``spawn``) loads a copy of its own. But
a process running an event loop and threads cannot safely fork (the child would inherit locks
held by threads that do not exist in it, and a loop it cannot run). So ``run`` loads the models
first, then forks the zygote while it is still one thread without a loop; the zygote does
nothing but fork a worker when asked, and every worker it forks shares its pages, which are the
gateway's own. The objects present at each fork are frozen (``gc.freeze``): the cyclic garbage
collector's passes would otherwise write to every object's header, copying their pages.

The zygote speaks over a socket pair: the gateway writes a worker's number, the zygote answers
the new worker's process id. The gateway watches each worker through a pidfd (it is not the
worker's parent, so it cannot ``waitpid`` it); the zygote reaps them. When the gateway is gone
(even killed with SIGKILL) the zygote reads the end of its socket and exits; the workers, their
parent gone, stop by themselves (``http_workers.ParentWatch``).

Each process names itself (``/proc/PID/comm``, what ``ps`` and ``top`` show):
``gateway-zygote``, ``gateway-http-N``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import structlog

from gateway.settings import GatewaySettings

log = structlog.get_logger(__name__)

ZYGOTE_NAME = "gateway-zygote"
WORKER_NAME = "gateway-http-{number}"
Target = Callable[[GatewaySettings, int], None]


def name_this_process(name: str) -> None:
    """What ``ps -o comm`` shows for this process (15 bytes at most)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{os.getpid()}/comm").write_text(name[:15])


class ForkedWorker:
    """An HTTP worker forked by the zygote, watched through its pidfd; what ``HttpWorkers``
    asks of a process (``multiprocessing``'s names). Its exit code is the zygote's to read:
    ``exitcode`` is None."""

    exitcode: int | None = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # gone already (reaped by the zygote)
            self._pidfd = None

    def is_alive(self) -> bool:
        return not self._ended(0)

    def join(self, timeout: float | None = None) -> None:
        self._ended(timeout)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _ended(self, timeout: float | None) -> bool:
        if self._pidfd is None:
            return True
        readable, _, _ = select.select([self._pidfd], [], [], timeout)
        if readable:  # the process ended: the descriptor says so for good
            os.close(self._pidfd)
            self._pidfd = None
        return self._pidfd is None

    def _signal(self, signum: int) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)


class WorkerZygote:
    """The gateway's side: ``start`` before the event loop, ``fork`` a worker, ``close``."""

    def __init__(self, pid: int, channel: socket.socket) -> None:
        self.pid = pid
        self._channel = channel
        self._answers = channel.makefile("r", encoding="ascii")

    @classmethod
    def start(cls, target: Target, settings: GatewaySettings) -> WorkerZygote:
        """Fork the zygote; call with one thread running and no event loop (``run`` does)."""
        ours, theirs = socket.socketpair()
        gc.freeze()  # what is here now is never collected: the collector leaves its pages alone
        pid = os.fork()
        if pid == 0:  # the zygote
            ours.close()
            _serve(theirs, target, settings)
        gc.unfreeze()
        theirs.close()
        log.info("http.zygote_started", pid=pid)
        return cls(pid, ours)

    def fork(self, number: int) -> ForkedWorker:
        """Worker ``number``, forked now; OSError when the zygote is gone."""
        self._channel.sendall(f"{number}\n".encode())
        answer = self._answers.readline()
        if not answer:
            raise ConnectionError("the HTTP workers' zygote has exited")
        return ForkedWorker(int(answer))

    def close(self) -> None:
        """The zygote reads the end of its socket and exits (the workers are stopped before)."""
        self._answers.close()
        self._channel.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _serve(channel: socket.socket, target: Target, settings: GatewaySettings) -> NoReturn:
    """The zygote's life: a worker forked for each number read, until the socket ends."""
    name_this_process(ZYGOTE_NAME)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which ends us
    signal.signal(signal.SIGCHLD, _reap)
    code = 0
    try:
        with channel.makefile("r", encoding="ascii") as requests:
            for line in requests:
                gc.freeze()
                pid = os.fork()
                if pid == 0:
                    _become_worker(channel, target, settings, int(line))
                channel.sendall(f"{pid}\n".encode())
    except BaseException:
        log.exception("http.zygote_failed")
        code = 1
    os._exit(code)


def _become_worker(
    channel: socket.socket, target: Target, settings: GatewaySettings, number: int
) -> NoReturn:
    channel.close()
    gc.freeze()  # (again: the worker's own garbage is collected, the zygote's pages stay shared)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    name_this_process(WORKER_NAME.format(number=number))
    code = 0
    try:
        target(settings, number)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        log.exception("http.worker_failed", worker=number)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _reap(_signum: int, _frame: object) -> None:
    """The workers that ended, their exit said in the log (the gateway sees them end)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        log.info("http.worker_ended", pid=pid, exit_code=os.waitstatus_to_exitcode(status))
