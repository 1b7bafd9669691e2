"""The ``intake-gateway`` command line (commands fixed by the interface contract)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from gateway.admin import create_topics
from gateway.dlq.cli import add_dlq_commands, dlq_command
from gateway.errors import ConfigurationError, GatewayError
from gateway.events import topics
from gateway.events.asyncapi import export_asyncapi
from gateway.events.schemas import export_schemas
from gateway.http_workers import prepare_shared_metrics
from gateway.local_kafka import DevBroker, broker_answers, local_port, port_in_use
from gateway.local_mailbox import local_mailbox, require_dovecot
from gateway.logs import configure_logging
from gateway.privacy.cli import COMMANDS as PRIVACY_COMMANDS
from gateway.privacy.cli import add_privacy_commands, privacy_command
from gateway.runtime import KNOWN_SERVICES, run_gateway, run_loop, run_services
from gateway.settings import GatewaySettings, explicitly_set, load_settings
from gateway.store.datadir import private_data_dir, private_process
from gateway.store.postgres.database import Database, migrations
from gateway.tail import tail
from gateway.tracker.cli import COMMANDS as TRACKER_COMMANDS
from gateway.tracker.cli import add_tracker_commands, tracker_command

log = structlog.get_logger(__name__)

EXIT_CONFIGURATION = 2
EXIT_UNAVAILABLE = 3
EXAMPLE_FORM, EXAMPLE_SECRET = "contact-form", "s3cret"  # the README's signing example


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        msg = f"{text!r} is not a port (1-65535)"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intake-gateway",
        description="Multi-channel intake gateway for complaints: email, web forms, SMS and "
        "scanned mail into one Kafka stream of canonical events.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="everything on one machine, with a local Kafka broker")
    dev.add_argument(
        "--keep-kafka", action="store_true", help="leave the local broker running on exit"
    )
    dev.add_argument(
        "--http-port", type=_port, metavar="PORT", help="serve HTTP here (GATEWAY_HTTP_PORT)"
    )
    dev.add_argument(
        "--kafka-port",
        type=_port,
        metavar="PORT",
        help="run the local Kafka broker here (and its controller on PORT+1)",
    )
    dev.add_argument(
        "--mailbox",
        action="store_true",
        help="also start a local mailbox (Dovecot) and a mail drop to send complaints to",
    )

    run = commands.add_parser("run", help="production mode: connect to the configured Kafka")
    run.add_argument(
        "--only",
        nargs="+",
        choices=KNOWN_SERVICES,
        metavar="NAME",
        help=f"run only these services ({', '.join(KNOWN_SERVICES)})",
    )

    topic_commands = commands.add_parser("topics", help="Kafka topics").add_subparsers(
        dest="topics_command", required=True
    )
    topic_commands.add_parser("create", help="create/validate the topics (idempotent)")

    schema_commands = commands.add_parser("schema", help="event JSON Schemas").add_subparsers(
        dest="schema_command", required=True
    )
    export = schema_commands.add_parser(
        "export", help="write the JSON Schema of every event and the AsyncAPI document"
    )
    export.add_argument("directory", type=Path)

    state_commands = commands.add_parser(
        "state", help="the state store (GATEWAY_STATE_URL)"
    ).add_subparsers(dest="state_command", required=True)
    state_commands.add_parser(
        "migrate", help="bring the shared database's schema up to date (each replica does at start)"
    )

    tail_parser = commands.add_parser("tail", help="print events from a topic, one JSON a line")
    tail_parser.add_argument("--topic", default=topics.COMPLAINTS, choices=topics.ALL)
    tail_parser.add_argument("--from-beginning", action="store_true")
    tail_parser.add_argument("--max-events", type=int, default=None, help="stop after N events")
    tail_parser.add_argument(
        "--idle-timeout", type=float, default=None, help="stop after S seconds without events"
    )
    add_dlq_commands(commands)
    add_privacy_commands(commands)
    add_tracker_commands(commands)
    return parser


async def _topics_create(settings: GatewaySettings) -> None:
    for state in await create_topics(settings.kafka):
        verb = "created" if state.created else "exists"
        print(f"{state.name}\t{verb}\tpartitions={state.partitions}")


async def _state_migrate(settings: GatewaySettings) -> None:
    if settings.state_url is None:
        print(
            "embedded SQLite (no GATEWAY_STATE_URL): its files are brought up to date when opened"
        )
        return
    database = await Database.open(settings.state_url.get_secret_value(), migrate=False)
    try:
        applied = await database.migrate()
    finally:
        await database.close()
    for name in applied:
        print(f"applied\t{name}")
    if not applied:
        print(f"up to date\t{migrations()[-1].version:04d}_{migrations()[-1].name}")


async def _dev(settings: GatewaySettings, args: argparse.Namespace) -> None:
    _check_http_port(settings)
    if args.mailbox:
        require_dovecot()
    private_data_dir(settings.data_dir)  # before the broker makes its folder in it
    broker = DevBroker.of(settings.data_dir)
    started_port = await _ensure_local_broker(settings, broker, args.kafka_port is not None)
    try:
        _say_what_dev_chose(settings)
        await _topics_create(settings)
        async with contextlib.AsyncExitStack() as stack:
            if args.mailbox:
                settings = await stack.enter_async_context(local_mailbox(settings))
            _say(f"{settings.public_url}  (Ctrl-C stops everything)")
            await run_services(settings, dev=True)
    finally:
        if started_port is not None and not args.keep_kafka:
            await broker.stop(started_port)


def dev_settings(settings: GatewaySettings, args: argparse.Namespace) -> GatewaySettings:
    """``dev``'s own defaults over the settings: its ports, a folder for scans, the example form
    of the README (only when no form is configured: ``run`` never has it)."""
    overrides: dict[str, Any] = {}
    if args.http_port is not None:
        overrides["http"] = {"port": args.http_port}
    if args.kafka_port is not None:
        overrides["kafka"] = {"bootstrap": f"127.0.0.1:{args.kafka_port}"}
    elif not explicitly_set(settings, "kafka", "bootstrap"):
        running = DevBroker.of(settings.data_dir).bootstrap()
        overrides["kafka"] = {"bootstrap": running or settings.kafka.bootstrap}
    if settings.postal.inbox is None:  # dev runs every channel: scans go to a folder of data/
        overrides["postal"] = {"inbox": settings.data_dir / "postal-inbox"}
    if not settings.webhook_secrets:
        overrides["webhook_secrets"] = {EXAMPLE_FORM: [EXAMPLE_SECRET]}
    return load_settings(**overrides) if overrides else settings


def _say_what_dev_chose(settings: GatewaySettings) -> None:
    if settings.postal.inbox == settings.data_dir / "postal-inbox":
        _say(f"drop scans into {settings.postal.inbox}")
    if list(settings.webhook_secrets) == [EXAMPLE_FORM]:
        secrets = [secret.get_secret_value() for secret in settings.webhook_secrets[EXAMPLE_FORM]]
        if secrets == [EXAMPLE_SECRET]:
            _say(
                f"example form {EXAMPLE_FORM!r} signed with secret {EXAMPLE_SECRET!r} "
                "(GATEWAY_WEBHOOK_SECRETS is not set; dev only)"
            )


def _say(line: str) -> None:
    print(f"intake-gateway dev: {line}", file=sys.stderr)


def _check_http_port(settings: GatewaySettings) -> None:
    http = settings.http
    if http.port and port_in_use(http.host, http.port):
        msg = f"port {http.port} (HTTP) is in use by another program; choose one with --http-port"
        raise ConfigurationError(msg)


async def _ensure_local_broker(
    settings: GatewaySettings, broker: DevBroker, port_chosen: bool
) -> int | None:
    """Reuse the broker dev started before for this data dir, or start it; returns its port
    when this call started it. A broker that ``GATEWAY_KAFKA_BOOTSTRAP`` names is used as it is;
    anything else on dev's port is somebody else's, and dev says so rather than use it."""
    bootstrap = settings.kafka.bootstrap
    port = local_port(bootstrap)
    named = explicitly_set(settings, "kafka", "bootstrap") and not port_chosen
    if named and await broker_answers(bootstrap):
        return None
    if port is None:
        msg = (
            f"GATEWAY_KAFKA_BOOTSTRAP={bootstrap} does not answer and is not "
            "a local address that dev could start a broker on"
        )
        raise ConfigurationError(msg)
    if await broker.answers_at(port):
        _say(f"reusing the Kafka broker it started on 127.0.0.1:{port}")
        return None
    for held, role in ((port, "Kafka"), (port + 1, "Kafka's controller")):
        if port_in_use("127.0.0.1", held):
            msg = (
                f"port {held} ({role}) is in use by another program, not the broker dev started "
                f"for {settings.data_dir}; choose another with --kafka-port"
            )
            raise ConfigurationError(msg)
    await broker.start(port)
    return port


def with_dev_broker(settings: GatewaySettings) -> GatewaySettings:
    """Commands other than dev: without a bootstrap set, the broker dev runs for this data dir."""
    if explicitly_set(settings, "kafka", "bootstrap"):
        return settings
    running = DevBroker.of(settings.data_dir).bootstrap()
    if running is None:
        return settings
    return settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap": running})}
    )


def _dispatch(args: argparse.Namespace, settings: GatewaySettings) -> None:
    match args.command:
        case "dev":
            run_loop(_dev(settings, args))
        case "run":
            run_gateway(settings, args.only)
        case "topics":
            run_loop(_topics_create(settings))
        case "schema":
            for path in [*export_schemas(args.directory), export_asyncapi(args.directory)]:
                print(path)
        case "state":
            run_loop(_state_migrate(settings))
        case "dlq":
            if code := run_loop(dlq_command(settings, args)):
                raise SystemExit(code)
        case command if command in PRIVACY_COMMANDS:
            if code := run_loop(privacy_command(settings, args)):
                raise SystemExit(code)
        case command if command in TRACKER_COMMANDS:
            run_loop(tracker_command(settings, args))
        case "tail":
            run_loop(
                tail(
                    settings.kafka,
                    args.topic,
                    from_beginning=args.from_beginning,
                    max_events=args.max_events,
                    idle_timeout_s=args.idle_timeout,
                )
            )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    private_process()  # files 0600, folders 0700, here and in the servers it starts
    configure_logging()
    try:
        settings = load_settings()
        if args.command in ("run", "dev") and (environment := prepare_shared_metrics(settings)):
            arguments = list(sys.argv[1:] if argv is None else argv)
            os.execve(sys.executable, [sys.executable, "-m", "gateway", *arguments], environment)  # noqa: S606 (the same command again)
        if args.command == "dev":
            settings = dev_settings(settings, args)
        else:
            settings = with_dev_broker(settings)
        _dispatch(args, settings)
    except ConfigurationError as exc:
        print(f"intake-gateway: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except GatewayError as exc:
        print(f"intake-gateway: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `intake-gateway tail | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0
