"""``intake-gateway dlq list|show|redrive|dismiss``: the dead-letter queue from a shell.

Run with the gateway's own settings (same state store, object store, mailboxes and inbox), on
any replica. Exit codes: ``0`` done, ``1`` not done (no such record, already redriven or
dismissed, still rejected: the line says why), and the command line's own ``2``/``3``. What a
command changes is recorded as done by ``cli:<user>`` (the account that ran it).
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.components import Components
from gateway.dlq.assembly import dlq_operations
from gateway.dlq.operations import DlqOperations, DlqRefusal, RedriveOutcome
from gateway.dlq.preview import preview
from gateway.privacy.audit import record_raw_copy_read
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings
from gateway.store.dlq import AmbiguousId, DlqRecord, DlqStatus

NOT_DONE = 1
_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def since(text: str) -> datetime:
    """``7d``, ``12h``, ``30m`` ago, or an ISO 8601 date or time (local time unless it says)."""
    if duration := _DURATION.match(text):
        amount = {_UNITS[duration.group(2)]: int(duration.group(1))}
        return datetime.now(UTC) - timedelta(**amount)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{text!r}: give 7d, 12h, 30m, or a date such as 2026-12-01"
        raise argparse.ArgumentTypeError(msg) from None
    return moment if moment.tzinfo else moment.astimezone()


def add_dlq_commands(commands: Any) -> None:
    """``commands``: the subparsers of the ``intake-gateway`` parser."""
    dlq = commands.add_parser("dlq", help="the dead-letter queue: rejected inputs, redriven")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = actions.add_parser("list", help="open records, newest first: one line each")
    listing.add_argument("--since", type=since, metavar="D", help="rejected since (7d, 2026-12-01)")
    listing.add_argument("--reason", metavar="R", help="only this reason code (e.g. no_text)")
    listing.add_argument("--all", action="store_true", help="redriven and dismissed ones too")
    show = actions.add_parser("show", help="a record, its history and its raw copy")
    show.add_argument("id", help="the record's id, or its first characters")
    redrive = actions.add_parser("redrive", help="read the input again and publish it")
    redrive.add_argument("id", help="the record's id, or its first characters")
    redrive.add_argument(
        "--reference", metavar="REF", help="documents_unmatched: the complaint they belong to"
    )
    dismiss = actions.add_parser("dismiss", help="close a record without publishing anything")
    dismiss.add_argument("id", help="the record's id, or its first characters")
    dismiss.add_argument("--note", default="", help="why (kept with the record)")


async def dlq_command(settings: GatewaySettings, args: argparse.Namespace) -> int:
    """Run one ``dlq`` command; its exit code. Kafka is reached only to publish (redrive)."""
    publisher = KafkaPublisher(settings.kafka)
    try:
        components = await Components.open(settings, publisher)
        operations = dlq_operations(components)
        try:
            return await _run(operations, components, args)
        except (DlqRefusal, AmbiguousId) as exc:
            message = str(exc) if isinstance(exc, DlqRefusal) else f"{exc} names several records"
            print(f"intake-gateway: {message}", file=sys.stderr)
            return NOT_DONE
        finally:
            await operations.close()
            await components.close()
    finally:
        await publisher.close()


async def _run(operations: DlqOperations, components: Components, args: argparse.Namespace) -> int:
    by = f"cli:{getpass.getuser()}"
    match args.dlq_command:
        case "list":
            status = None if args.all else DlqStatus.OPEN
            for record in await operations.records(args.since, args.reason, status):
                print(list_line(record))
        case "show":
            view = await operations.view(args.id)
            await record_raw_copy_read(components.backend.privacy, view.record, by, "dlq show")
            print(record_text(view.record))
            for action in view.actions:
                when = action.at.isoformat(timespec="seconds")
                print(f"  {when}\t{action.by}\t{action.action}\t{action.outcome}\t{action.detail}")
            settings = components.settings
            print("raw copy:")
            print(await preview(view.record, components.claims, settings.postal))
        case "redrive":
            outcome = await operations.redrive(args.id, by, args.reference)
            await record_raw_copy_read(components.backend.privacy, outcome.record, by, "redrive")
            print(outcome_text(outcome))
            return 0 if outcome.redriven else NOT_DONE
        case "dismiss":
            record = await operations.dismiss(args.id, by, args.note)
            print(f"dismissed\t{record.id}")
    return 0


def list_line(record: DlqRecord) -> str:
    """id, time rejected, channel, reason code, reason: tab-separated, one line."""
    when = record.recorded_at.astimezone(UTC).isoformat(timespec="seconds")
    reason = " ".join(record.reason.split())
    fields = [record.id, when, record.channel, record.reason_code, reason]
    if record.status != DlqStatus.OPEN:
        fields.append(str(record.status))
    return "\t".join(fields)


def record_text(record: DlqRecord) -> str:
    lines = [
        ("id", record.id),
        ("status", f"{record.status} ({record.attempts} redrive attempt(s))"),
        ("channel", record.channel),
        ("reason", f"{record.reason_code}: {record.reason}"),
        ("received", record.received_at.isoformat(timespec="seconds")),
        ("rejected", record.recorded_at.isoformat(timespec="seconds")),
        ("source", f"{record.source_id} ({record.source_key})"),
        ("raw copy at", record.source_uri or "-"),
    ]
    lines += sorted(record.details.items())
    if record.closed_at is not None:
        closed = f"{record.status} by {record.closed_by} at {record.closed_at.isoformat()}"
        lines.append(("closed", closed))
    if record.event_ids:
        lines.append(("events", " ".join(record.event_ids)))
    return "\n".join(f"{name:<12}{value}" for name, value in lines) + "\nhistory:"


def outcome_text(outcome: RedriveOutcome) -> str:
    record = outcome.record
    if not outcome.redriven:
        return f"still rejected\t{record.id}\t{outcome.note}"
    before = len(outcome.event_ids) - outcome.published
    said = f"redriven\t{record.id}\tpublished {outcome.published}"
    said += f", published before {before}" if before else ""
    said += f"\t{' '.join(outcome.event_ids)}"
    return said + (f"\t{outcome.note}" if outcome.note else "")
