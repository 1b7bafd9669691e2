"""The ``intake-gateway`` command line (commands fixed by the interface contract)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from gateway.admin import create_topics
from gateway.errors import ConfigurationError, GatewayError
from gateway.events import topics
from gateway.events.schemas import export_schemas
from gateway.http_workers import prepare_shared_metrics
from gateway.local_kafka import broker_answers, local_port, run_script
from gateway.logs import configure_logging
from gateway.runtime import KNOWN_SERVICES, run_loop, run_services
from gateway.settings import GatewaySettings, load_settings
from gateway.tail import tail

log = structlog.get_logger(__name__)

EXIT_CONFIGURATION = 2
EXIT_UNAVAILABLE = 3


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
    export = schema_commands.add_parser("export", help="write the JSON Schema of every event")
    export.add_argument("directory", type=Path)

    tail_parser = commands.add_parser("tail", help="print events from a topic, one JSON a line")
    tail_parser.add_argument("--topic", default=topics.COMPLAINTS, choices=topics.ALL)
    tail_parser.add_argument("--from-beginning", action="store_true")
    tail_parser.add_argument("--max-events", type=int, default=None, help="stop after N events")
    tail_parser.add_argument(
        "--idle-timeout", type=float, default=None, help="stop after S seconds without events"
    )
    return parser


async def _topics_create(settings: GatewaySettings) -> None:
    for state in await create_topics(settings.kafka):
        verb = "created" if state.created else "exists"
        print(f"{state.name}\t{verb}\tpartitions={state.partitions}")


async def _dev(settings: GatewaySettings, keep_kafka: bool) -> None:
    if settings.postal.inbox is None:  # dev runs every channel: scans go to a folder of data/
        inbox = settings.data_dir / "postal-inbox"
        settings = settings.model_copy(
            update={"postal": settings.postal.model_copy(update={"inbox": inbox})}
        )
        print(f"intake-gateway dev: drop scans into {inbox}", file=sys.stderr)
    started_port = await _ensure_local_broker(settings)
    try:
        await _topics_create(settings)
        print(
            f"intake-gateway dev: http://{settings.http.host}:{settings.http.port}  "
            "(Ctrl-C stops everything)",
            file=sys.stderr,
        )
        await run_services(settings, dev=True)
    finally:
        if started_port is not None and not keep_kafka:
            await run_script("stop", started_port)


async def _ensure_local_broker(settings: GatewaySettings) -> int | None:
    """Start the local broker if none answers; returns its port when this call started it."""
    if await broker_answers(settings.kafka.bootstrap):
        return None
    port = local_port(settings.kafka.bootstrap)
    if port is None:
        msg = (
            f"GATEWAY_KAFKA_BOOTSTRAP={settings.kafka.bootstrap} does not answer and is not "
            "a local address that dev could start a broker on"
        )
        raise ConfigurationError(msg)
    await run_script("start", port)
    return port


def _dispatch(args: argparse.Namespace, settings: GatewaySettings) -> None:
    match args.command:
        case "dev":
            run_loop(_dev(settings, args.keep_kafka))
        case "run":
            run_loop(run_services(settings, args.only))
        case "topics":
            run_loop(_topics_create(settings))
        case "schema":
            for path in export_schemas(args.directory):
                print(path)
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
    configure_logging()
    try:
        settings = load_settings()
        if args.command in ("run", "dev") and (environment := prepare_shared_metrics(settings)):
            arguments = list(sys.argv[1:] if argv is None else argv)
            os.execve(sys.executable, [sys.executable, "-m", "gateway", *arguments], environment)  # noqa: S606 (the same command again)
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
