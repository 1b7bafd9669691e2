"""``intake-gateway keys rotate``: the commands that keep personal data as the law asks.

Run with the gateway's own settings (same state store, object store and keys), on any
replica. Exit codes: ``0`` done, ``1`` not done (the line says why), and the command line's
own ``2``/``3``.
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.components import Components
from gateway.privacy.rotation import rotate
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings
from gateway.store.encrypted import EncryptedClaimStore

COMMANDS = ("keys",)


def add_privacy_commands(commands: Any) -> None:
    """``commands``: the subparsers of the ``intake-gateway`` parser."""
    keys = commands.add_parser("keys", help="the master keys of encryption at rest")
    key_actions = keys.add_subparsers(dest="keys_command", required=True)
    key_actions.add_parser(
        "rotate",
        help="re-wrap every data key (and re-seal personal values) with the first key of "
        "GATEWAY_ENCRYPTION_KEYS; idempotent",
    )


async def privacy_command(settings: GatewaySettings, args: argparse.Namespace) -> int:
    """Run one of ``COMMANDS``; its exit code."""
    publisher = KafkaPublisher(settings.kafka)
    try:
        components = await Components.open(settings, publisher)
        try:
            return await _run(components, args)
        finally:
            await components.close()
    finally:
        await publisher.close()


async def _run(components: Components, args: argparse.Namespace) -> int:
    claims = components.claims
    if not isinstance(claims, EncryptedClaimStore):  # Components always seals
        raise TypeError(claims)
    match args.command:
        case "keys":
            backend = components.backend
            report = await rotate(claims.keyring, backend.data_keys, backend.sealed)
            for line in report.lines():
                print(line)
    return 0
