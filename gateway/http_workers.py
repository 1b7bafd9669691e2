"""Several processes serving HTTP on one port (``GATEWAY_HTTP_WORKERS``).

One Python process spends its one core on a web submission's parsing, signature, JSON, models
and normalisation under one GIL; more processes use more cores. Each worker binds the same
address with ``SO_REUSEPORT`` and the kernel spreads new connections among them. The main
process serves too, runs every other service (email, postal, notifier), and starts, watches and
stops the others: a worker that dies is started again; a worker whose main process is gone
(killed with SIGKILL, it could not stop them) stops by itself.

What the workers share lives outside them: Kafka, the claim-check store and the state store
(SQLite in WAL mode, one file for all), the idempotency keys' locks (``store.keylocks``), the
rate limits (``web.ratelimit``, a shared table when there are several workers) and the
Prometheus metrics (prometheus_client's multiprocess mode: files under the data folder).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog
from prometheus_client import multiprocess

from gateway.errors import ConfigurationError
from gateway.settings import GatewaySettings
from gateway.zygote import WorkerZygote

log = structlog.get_logger(__name__)

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 30.0
LISTEN_BACKLOG = 2048


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket other processes bind too (``SO_REUSEPORT``)."""
    if port == 0:
        raise ConfigurationError("GATEWAY_HTTP_PORT: several HTTP workers need a fixed port")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        msg = f"GATEWAY_HTTP_PORT: cannot listen on {host}:{port} ({exc.strerror})"
        raise ConfigurationError(msg) from None
    listener.listen(LISTEN_BACKLOG)
    listener.setblocking(False)  # noqa: FBT003 (the socket API's own signature)
    return listener


def metrics_folder(settings: GatewaySettings) -> Path:
    return settings.data_dir / "state" / "metrics"


def prepare_shared_metrics(settings: GatewaySettings) -> dict[str, str] | None:
    """The environment the gateway must start again with so that every worker's metrics go to
    one folder, or None when that is already so (or there is one worker). prometheus_client
    chooses its storage when it is first imported, before the settings can be read: the command
    starts again (``os.execv``, same process id) with the variable set."""
    if settings.http.workers < 2 or os.environ.get(METRICS_ENV):
        return None
    folder = metrics_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # a previous run's counters: Prometheus expects resets
        stale.unlink()
    return {**os.environ, METRICS_ENV: str(folder)}


class WorkerProcess(Protocol):
    """A worker as ``multiprocessing`` names what a process does."""

    @property
    def pid(self) -> int | None: ...

    @property
    def exitcode(self) -> int | None: ...

    def is_alive(self) -> bool: ...

    def join(self, timeout: float | None = None) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class HttpWorkers:
    """The ``workers - 1`` other HTTP processes, each running ``target(settings, number)``:
    forked by the ``zygote`` when there is one (they share its language models), else started
    fresh (``spawn``: no fork of a running loop)."""

    name = "http-workers"

    def __init__(
        self,
        settings: GatewaySettings,
        target: Callable[[GatewaySettings, int], None],
        zygote: WorkerZygote | None = None,
    ) -> None:
        self._settings = settings
        self._target = target
        self._zygote = zygote
        self._context = multiprocessing.get_context("spawn")

    async def run(self) -> None:
        count = self._settings.http.workers - 1
        workers = {number: self._start(number) for number in range(1, count + 1)}
        try:
            while True:
                await asyncio.sleep(RESTART_DELAY_S)
                for number, worker in list(workers.items()):
                    if not worker.is_alive():
                        log.error("http.worker_exited", worker=number, exit_code=worker.exitcode)
                        _forget_metrics(worker)
                        workers[number] = self._start(number)
        finally:
            await asyncio.to_thread(_stop, list(workers.values()))

    def _start(self, number: int) -> WorkerProcess:
        if self._zygote is not None:
            try:
                forked = self._zygote.fork(number)
            except OSError as exc:  # it is gone: the workers start fresh from now on
                log.exception("http.zygote_unavailable", error=str(exc))
                self._zygote = None
            else:
                log.info("http.worker_started", worker=number, pid=forked.pid, forked=True)
                return forked
        worker = self._context.Process(
            target=self._target,
            args=(self._settings, number),
            name=f"intake-gateway-http-{number}",
            daemon=False,  # it stops its own services cleanly on SIGTERM
        )
        worker.start()
        log.info("http.worker_started", worker=number, pid=worker.pid)
        return worker


def _stop(workers: list[WorkerProcess]) -> None:
    """SIGTERM to each (they finish the requests under way), SIGKILL after the timeout."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(STOP_TIMEOUT_S)
        if worker.is_alive():
            worker.kill()
            worker.join()
        _forget_metrics(worker)


def _forget_metrics(worker: WorkerProcess) -> None:
    if os.environ.get(METRICS_ENV) and worker.pid is not None:
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class ParentWatch:
    """In a worker: stop when the main process is gone."""

    name = "parent-watch"

    def __init__(self) -> None:
        self._parent = os.getppid()

    async def run(self) -> None:
        while True:  # no event tells a process that its parent died: look every second
            await asyncio.sleep(1.0)
            if os.getppid() != self._parent:
                break
        log.warning("http.worker_orphaned", parent=self._parent)
        os.kill(os.getpid(), signal.SIGTERM)  # the runtime's own clean stop
        await asyncio.Event().wait()
