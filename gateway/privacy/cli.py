"""``intake-gateway keys rotate``, ``retention run|hold|release|holds``, ``erase REFERENCE``,
``audit REFERENCE``: the commands that keep personal data as the law asks.

Run with the gateway's own settings (same state store, object store and keys), on any
replica; Kafka is reached only by ``erase`` (to publish ``complaint.erased``). Exit codes: ``0``
done, ``1`` not done (the line says why: an invalid reference, a hold, no hold to release),
and the command line's own ``2``/``3``. What an operator changes is recorded as done by
``cli:<user>``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from gateway.components import Components
from gateway.errors import InvalidReference
from gateway.privacy.audit import audit_trail
from gateway.privacy.erasure import Erasure, ErasureRefused
from gateway.privacy.retention import Retention
from gateway.privacy.rotation import rotate
from gateway.publisher import KafkaPublisher
from gateway.reference import parse_reference
from gateway.settings import GatewaySettings
from gateway.store.encrypted import EncryptedClaimStore

COMMANDS = ("keys", "retention", "erase", "audit")
NOT_DONE = 1


def add_privacy_commands(commands: Any) -> None:
    """``commands``: the subparsers of the ``intake-gateway`` parser."""
    keys = commands.add_parser("keys", help="the master keys of encryption at rest")
    key_actions = keys.add_subparsers(dest="keys_command", required=True)
    key_actions.add_parser(
        "rotate",
        help="re-wrap every data key (and re-seal personal values) with the first key of "
        "GATEWAY_ENCRYPTION_KEYS; idempotent",
    )
    retention = commands.add_parser("retention", help="what is kept, and how long")
    actions = retention.add_subparsers(dest="retention_command", required=True)
    run = actions.add_parser("run", help="delete what is past its retention (counts)")
    run.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    hold = actions.add_parser("hold", help="keep a complaint whatever its retention (legal hold)")
    hold.add_argument("reference")
    hold.add_argument("--note", default="", help="why it is kept (kept with the hold)")
    release = actions.add_parser("release", help="lift a legal hold")
    release.add_argument("reference")
    actions.add_parser("holds", help="the complaints on hold, one line each")
    erase = commands.add_parser("erase", help="erase a complaint's personal data on request")
    erase.add_argument("reference")
    audit = commands.add_parser("audit", help="every read of a complaint's stored objects")
    audit.add_argument("reference")


async def privacy_command(settings: GatewaySettings, args: argparse.Namespace) -> int:
    """Run one of ``COMMANDS``; its exit code."""
    publisher = KafkaPublisher(settings.kafka)
    try:
        components = await Components.open(settings, publisher)
        try:
            return await _run(components, args)
        except (InvalidReference, ErasureRefused) as exc:
            print(f"intake-gateway: {exc}", file=sys.stderr)
            return NOT_DONE
        finally:
            await components.close()
    finally:
        await publisher.close()


async def _run(components: Components, args: argparse.Namespace) -> int:
    claims, backend = components.claims, components.backend
    if not isinstance(claims, EncryptedClaimStore):  # Components always seals
        raise TypeError(claims)
    match args.command:
        case "keys":
            _say((await rotate(claims.keyring, backend.data_keys, backend.sealed)).lines())
        case "retention":
            return await _retention(components, args)
        case "erase":
            erasure = Erasure(backend.complaints, backend.privacy, claims, components.publisher)
            _say((await erasure.erase(parse_reference(args.reference))).lines())
        case "audit":
            reference = parse_reference(args.reference)
            trail = await audit_trail(
                reference, backend.catalog, backend.complaints, backend.privacy
            )
            _say([entry.line() for entry in trail])
            if (erased := await backend.privacy.erased_at(reference)) is not None:
                _say([f"{erased.isoformat(timespec='seconds')}\t-\t{reference}\terased"])
    return 0


async def _retention(components: Components, args: argparse.Namespace) -> int:
    backend, privacy = components.backend, components.backend.privacy
    by = f"cli:{getpass.getuser()}"
    match args.retention_command:
        case "run":
            retention = Retention(
                components.settings.retention, backend.complaints, privacy, components.claims
            )
            _say((await retention.run(dry_run=args.dry_run)).lines())
        case "hold":
            reference = parse_reference(args.reference)
            if not await privacy.hold(reference, by, args.note):
                print(f"intake-gateway: {reference} is already on hold", file=sys.stderr)
                return NOT_DONE
            _say([f"held\t{reference}"])
        case "release":
            reference = parse_reference(args.reference)
            if not await privacy.release(reference):
                print(f"intake-gateway: {reference} is not on hold", file=sys.stderr)
                return NOT_DONE
            _say([f"released\t{reference}"])
        case "holds":
            _say(
                [
                    "\t".join(
                        [
                            h.reference,
                            h.placed_at.isoformat(timespec="seconds"),
                            h.placed_by,
                            h.note,
                        ]
                    )
                    for h in await privacy.holds()
                ]
            )
    return 0


def _say(lines: list[str]) -> None:
    for line in lines:
        print(line)
