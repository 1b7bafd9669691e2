"""Runs the gateway's services in one process under one ``asyncio.TaskGroup``.

SIGINT/SIGTERM stop every service: each drains its in-flight work, then the publisher flushes
and closes. Only the services that settings enable (or ``--only`` names) are built.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import structlog
import uvicorn
import uvloop

from gateway.channels.imap import EmailService, ImapChannel
from gateway.channels.imap_claims import MailboxClaiming
from gateway.channels.postal import PostalChannel
from gateway.components import Components
from gateway.errors import ConfigurationError, GatewayError
from gateway.http_workers import HttpWorkers, ParentWatch, shared_socket
from gateway.logs import configure_logging
from gateway.normalizers.language import warm_up
from gateway.notifier.assembly import notifier_service
from gateway.ocr.tesseract import TesseractEngine
from gateway.privacy.retention import Retention, RetentionService
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings
from gateway.tracker.assembly import tracker_service
from gateway.web.app import create_app
from gateway.zygote import WorkerZygote

log = structlog.get_logger(__name__)

KNOWN_SERVICES = ("http", "email", "postal", "notifier", "tracker")
NORMALIZING = {"http", "email", "postal"}  # the notifier needs no language models
IO_THREADS = 32  # blocking disk calls in flight at once
GC_YOUNG_OBJECTS = 20_000  # allocations between two collections of the youngest generation


T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop (libuv's event loop: its sockets cost less CPU than asyncio's
    own selector loop, most of what a web submission spends outside our code)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class Service(Protocol):
    """A long-running part of the gateway; ``run`` returns only when cancelled."""

    name: str

    async def run(self) -> None: ...


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the runtime owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:  # accepting connections now (gateway.started comes before this)
            log.info("http.serving", host=self.config.host, port=self.config.port)


class HttpService:
    name = "http"

    def __init__(self, components: Components) -> None:
        settings = components.settings
        config = uvicorn.Config(
            create_app(components),
            host=settings.http.host,
            port=settings.http.port,
            log_level="warning",
            log_config=None,  # its records go through our JSON, masking handler
            access_log=False,
            lifespan="on",
            server_header=False,  # no banner with versions (uvicorn's own)
        )
        self._server = _Server(config)
        self._workers = settings.http.workers

    async def run(self) -> None:
        http = self._server.config
        workers = self._workers
        sockets = [shared_socket(http.host, http.port)] if workers > 1 else None
        serving = asyncio.create_task(self._server.serve(sockets=sockets))
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            self._server.should_exit = True
            await serving
            raise
        if not self._server.started:
            msg = "the HTTP server did not start (is the port already in use?)"
            raise ConfigurationError(msg)


def email_service(components: Components) -> Service:
    """Every configured mailbox. A shared mailbox's messages are claimed in the state every
    replica shares when there is one (``GATEWAY_STATE_URL``: one atomic statement each, any
    IMAP server will do), else on the IMAP server (a keyword set by a conditional STORE,
    CONDSTORE): each replica's embedded state is its own, the mailbox all they share."""
    accounts = components.settings.imap.accounts()
    if not accounts:
        raise ConfigurationError("GATEWAY_IMAP_HOST: not set, so the email service cannot run")
    shared_state = components.settings.state_url is not None  # as open_state_backend chose
    claiming = MailboxClaiming.DATABASE if shared_state else MailboxClaiming.SERVER_KEYWORD
    return EmailService(
        [
            ImapChannel(
                account, components.intake, components.claims, components.state, claiming=claiming
            )
            for account in accounts
        ]
    )


def postal_service(components: Components) -> Service:
    postal = components.settings.postal
    if postal.inbox is None:
        raise ConfigurationError("GATEWAY_POSTAL_INBOX: not set, so the postal service cannot run")
    engine = TesseractEngine(postal.workers, postal.languages, postal.dpi, postal.searchable_pdf)
    return PostalChannel(postal, components.intake, components.claims, components.state, engine)


def retention_service(components: Components) -> Service:
    """Retention once a day inside ``run`` (``gateway.privacy.retention``)."""
    backend = components.backend
    retention = Retention(
        components.settings.retention, backend.complaints, backend.privacy, components.claims
    )
    return RetentionService(retention)


def notifier(components: Components) -> Service:
    return notifier_service(components)


def notifier_with_outbox(components: Components) -> Service:
    """dev: without SMTP or Twilio settings, messages go to ``GATEWAY_DATA_DIR/outbox``."""
    return notifier_service(components, outbox=True)


ServiceFactory = Callable[[Components], Service]
REGISTRY: dict[str, ServiceFactory] = {
    "http": HttpService,
    "email": email_service,
    "notifier": notifier,
    "postal": postal_service,
    "tracker": tracker_service,
}


def enabled_services(settings: GatewaySettings, dev: bool = False) -> list[str]:
    """What runs without --only: the HTTP server, each channel its settings configure, the
    notifier when it has a way to send (always in dev, which falls back to an outbox folder),
    and the tracker (it needs nothing more)."""
    names = ["http"] + (["email"] if settings.imap.accounts() else [])
    names += ["postal"] if settings.postal.inbox else []
    can_send = bool(settings.smtp.host or (settings.twilio.account_sid and settings.twilio.from_))
    return names + (["notifier"] if can_send or dev else []) + ["tracker"]


def build_services(
    components: Components, only: list[str] | None, dev: bool = False
) -> list[Service]:
    names = only or enabled_services(components.settings, dev)
    if dev:
        return [
            (notifier_with_outbox if name == "notifier" else REGISTRY[name])(components)
            for name in names
        ]
    unknown = [name for name in names if name not in KNOWN_SERVICES]
    if unknown:
        known = ", ".join(KNOWN_SERVICES)
        raise ConfigurationError(f"unknown service {unknown[0]!r}; known: {known}")
    missing = [name for name in names if name not in REGISTRY]
    if missing:
        raise ConfigurationError(f"service {missing[0]!r} is not available in this version yet")
    return [REGISTRY[name](components) for name in names]


def http_worker_main(settings: GatewaySettings, number: int) -> None:
    """An HTTP worker process (``gateway.http_workers``): the http service alone."""
    configure_logging()
    structlog.contextvars.bind_contextvars(http_worker=number)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole process group
        run_loop(run_services(settings, ["http"], worker=True))


def run_gateway(settings: GatewaySettings, only: list[str] | None = None) -> None:
    """``run``: the services until SIGINT/SIGTERM. With several HTTP workers, the language
    models are loaded first and the workers' zygote forked (``gateway.zygote``): one copy of
    the models for every process of the machine."""
    several = settings.http.workers > 1 and settings.http.workers_forked
    forking = several and "http" in (only or enabled_services(settings))
    zygote = _forked_workers(settings) if forking else None
    try:
        run_loop(run_services(settings, only, zygote=zygote))
    finally:
        if zygote is not None:
            zygote.close()


def _forked_workers(settings: GatewaySettings) -> WorkerZygote | None:
    """The models loaded, then the zygote forked; None (the workers start fresh, as with
    ``GATEWAY_HTTP_WORKERS_FORKED=false``) when it cannot be, said in the log: a start-up
    does not fail on what only saves memory."""
    try:
        warm_up(settings.normalizer.languages)
    except Exception as exc:  # the first complaint will say it again
        log.exception("normalizer.warm_up_failed", error=str(exc))
    else:
        log.info("normalizer.models_loaded", before="workers")
    try:
        return WorkerZygote.start(http_worker_main, settings)
    except OSError as exc:
        log.exception("http.zygote_unavailable", error=str(exc))
        return None


async def run_services(
    settings: GatewaySettings,
    only: list[str] | None = None,
    dev: bool = False,
    worker: bool = False,
    zygote: WorkerZygote | None = None,
) -> None:
    """Run the services until SIGINT/SIGTERM (``worker``: as one of the HTTP workers;
    ``zygote``: what forks the other HTTP workers)."""
    loop = asyncio.get_running_loop()
    # Disk work (fsync of stored objects, SQLite commits) runs in threads; asyncio's default of
    # cores + 4 threads capped the web service at what 6 fsyncs at a time allow.
    loop.set_default_executor(ThreadPoolExecutor(IO_THREADS, thread_name_prefix="io"))
    _collect_young_objects_less_often()
    async with KafkaPublisher(settings.kafka) as publisher:
        components = await Components.open(settings, publisher)
        try:
            await _serve(components, only, dev=dev, worker=worker, zygote=zygote)
        finally:
            await components.close()
        log.info("gateway.stopped")


def _collect_young_objects_less_often() -> None:
    """The cyclic garbage collector's youngest generation collected once ``GC_YOUNG_OBJECTS``
    more objects are alive rather than CPython's 700. With 700, the web service at saturation
    ran a full collection every 3 s or so, each some 150 ms over every object of the process
    (the libraries' modules, phonenumbers' metadata...): 0.3 ms of CPU a submission, and a
    pause of every request in flight (``gc.callbacks``, 5 s at saturation: 2 full
    collections and 0.30 s of collecting, against 3 young ones and 0.01 s with 20,000)."""
    gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])


async def _serve(
    components: Components,
    only: list[str] | None,
    *,
    dev: bool,
    worker: bool,
    zygote: WorkerZygote | None,
) -> None:
    settings = components.settings
    loop = asyncio.get_running_loop()
    services = build_services(components, only, dev)
    if worker:
        services.append(ParentWatch())
    elif settings.http.workers > 1 and any(service.name == "http" for service in services):
        services.append(HttpWorkers(settings, http_worker_main, zygote))
    if not worker and not dev and settings.retention.daily:
        services.append(retention_service(components))
    log.info("gateway.started", services=[service.name for service in services])
    gc.freeze()  # what start-up made lives as long as the process: never collected, nor walked
    if any(service.name in NORMALIZING for service in services):
        # in the background: the first complaint finds the models loaded, start-up waits not
        warming = loop.run_in_executor(None, warm_up, settings.normalizer.languages)
        warming.add_done_callback(_warmed_up)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await run_until(stop, services)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def run_until(stop: asyncio.Event, services: Sequence[Service]) -> None:
    """Each service's ``run`` until ``stop`` is set, then each cancelled; the first of our
    errors if one fails. Every ``run`` is begun before any is cancelled, even when ``stop`` was
    set during start-up: a task cancelled before its first step never runs its ``finally``, and
    the Kafka client its service was built with would be left open."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(service.run()) for service in services]
            await asyncio.sleep(0)  # one turn of the loop: each task to its first await
            await stop.wait()
            for task in tasks:
                task.cancel()
    except ExceptionGroup as group:
        raise _first_gateway_error(group) from group


def _warmed_up(warming: asyncio.Future[None]) -> None:
    if warming.cancelled():
        return
    if (error := warming.exception()) is not None:  # the first complaint will say it again
        log.error("normalizer.warm_up_failed", error=str(error))
    else:
        log.info("normalizer.models_loaded")


def _first_gateway_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to show a person when a service failed: the first of ours, else the group."""
    matched, _ = group.split(GatewayError)
    if matched is None:
        return group
    first: BaseException = matched
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first
