"""``intake-gateway tracker rebuild`` and ``intake-gateway indicators [--overdue] [--json]``.

Run with the gateway's own settings (the same state store and Kafka), on any replica. Exit
codes: ``0`` done, and the command line's own ``2`` (configuration) / ``3`` (Kafka
unreachable).
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.normalizers.due import load_policies
from gateway.settings import GatewaySettings
from gateway.store.backends import open_state_backend
from gateway.store.tracker import TrackerStore
from gateway.tracker.assembly import complaint_fold
from gateway.tracker.erasures import ErasedComplaints
from gateway.tracker.indicators import Figures, compute, today_in
from gateway.tracker.rebuild import rebuild

COMMANDS = ("tracker", "indicators")
COLUMNS = (
    "policy",
    "month",
    "channel",
    "received",
    "ack_in_time",
    "ack_share",
    "ack_median",
    "ack_p90",
    "answer_in_time",
    "answer_share",
    "answer_median",
    "answer_p90",
    "open_past_due",
    "incomplete",
    "not_reachable",
    "ratings_1_to_5",
)


def add_tracker_commands(commands: Any) -> None:
    """``commands``: the subparsers of the ``intake-gateway`` parser."""
    tracker = commands.add_parser("tracker", help="where each complaint stands (the timelines)")
    actions = tracker.add_subparsers(dest="tracker_command", required=True)
    actions.add_parser(
        "rebuild",
        help="empty the tracker's state and fold both topics again from their first offset",
    )
    indicators = commands.add_parser(
        "indicators", help="acknowledged and answered in time, per policy, month and channel"
    )
    shown = indicators.add_mutually_exclusive_group()
    shown.add_argument(
        "--overdue",
        action="store_true",
        help="the open complaints past their respond-by date instead (references only)",
    )
    shown.add_argument("--json", action="store_true", help="as GET /v1/indicators answers")


async def tracker_command(settings: GatewaySettings, args: argparse.Namespace) -> None:
    """Run one of ``COMMANDS`` (errors are the command line's: exit codes 2 and 3)."""
    backend = await open_state_backend(settings)
    try:
        match args.command:
            case "tracker":
                erasures = ErasedComplaints(backend.privacy, backend.complaints)
                done = await rebuild(
                    settings.kafka, backend.tracker, complaint_fold(settings), erasures=erasures
                )
                print(
                    f"rebuilt\trecords={done.records}\tentries={done.entries}"
                    f"\tunreadable={done.unreadable}\tseconds={done.seconds:.1f}"
                )
            case "indicators":
                await _indicators(settings, backend.tracker, args)
    finally:
        await backend.close()


async def _indicators(
    settings: GatewaySettings, store: TrackerStore, args: argparse.Namespace
) -> None:
    policies = load_policies(settings.normalizer.due_policies_file)
    if args.overdue:
        today = {name: today_in(policies.get(name)) for name in await store.policies()}
        for late in await store.overdue(today):
            print(
                f"{late.reference}\t{late.policy}\t{late.channel}\t{late.respond_by}\t{late.status}"
            )
        return
    indicators = await compute(store, policies)
    if args.json:
        print(indicators.model_dump_json(indent=2))
        return
    print("\t".join(COLUMNS))
    for policy in indicators.policies:
        for piece in policy.slices:
            print("\t".join([policy.policy, piece.month, piece.channel, *_line(piece.figures)]))


def _line(figures: Figures) -> list[str]:
    ack, answer = figures.acknowledgement, figures.answer
    values: list[object] = [
        figures.received,
        ack.in_time,
        ack.share_in_time,
        ack.median_days,
        ack.p90_days,
        answer.in_time,
        answer.share_in_time,
        answer.median_days,
        answer.p90_days,
        figures.open_past_due,
        figures.incomplete.received,
        figures.not_reachable,
        ",".join(str(figures.satisfaction[rating]) for rating in sorted(figures.satisfaction)),
    ]
    return ["" if value is None else str(value) for value in values]
