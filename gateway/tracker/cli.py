"""``intake-gateway tracker rebuild`` and ``intake-gateway indicators [--overdue]``.

Run with the gateway's own settings (the same state store and Kafka), on any replica. Exit
codes: ``0`` done, and the command line's own ``2`` (configuration) / ``3`` (Kafka
unreachable).
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.settings import GatewaySettings
from gateway.store.backends import open_state_backend
from gateway.tracker.assembly import complaint_fold
from gateway.tracker.rebuild import rebuild

COMMANDS = ("tracker",)


def add_tracker_commands(commands: Any) -> None:
    """``commands``: the subparsers of the ``intake-gateway`` parser."""
    tracker = commands.add_parser("tracker", help="where each complaint stands (the timelines)")
    actions = tracker.add_subparsers(dest="tracker_command", required=True)
    actions.add_parser(
        "rebuild",
        help="empty the tracker's state and fold both topics again from their first offset",
    )


async def tracker_command(settings: GatewaySettings, args: argparse.Namespace) -> None:
    """Run one of ``COMMANDS`` (errors are the command line's: exit codes 2 and 3)."""
    backend = await open_state_backend(settings)
    try:
        match args.command:
            case "tracker":
                done = await rebuild(settings.kafka, backend.tracker, complaint_fold(settings))
                print(
                    f"rebuilt\trecords={done.records}\tentries={done.entries}"
                    f"\tunreadable={done.unreadable}\tseconds={done.seconds:.1f}"
                )
    finally:
        await backend.close()
