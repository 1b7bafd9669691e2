"""What the services of one process share: the publisher, the intake, the stores."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.intake import Intake
from gateway.normalizers import (
    ComplaintNormalizer,
    DuplicateIndex,
    duplicate_index_path,
    normalizer_config,
)
from gateway.notifier.ledger import NotificationLedger
from gateway.notifier.tokens import EmailTokens, token_key
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings
from gateway.store.claims import FileClaimStore
from gateway.store.keylocks import KeyLocks
from gateway.store.state import StateStore


@dataclass
class Components:
    settings: GatewaySettings
    publisher: KafkaPublisher
    intake: Intake
    claims: FileClaimStore
    state: StateStore
    ledger: NotificationLedger
    tokens: EmailTokens
    key_locks: KeyLocks

    @classmethod
    def build(cls, settings: GatewaySettings, publisher: KafkaPublisher) -> Components:
        state = StateStore(settings.data_dir / "state")
        key = settings.notifier.token_key
        tokens = EmailTokens(
            token_key(key.get_secret_value() if key else None, settings.data_dir),
            settings.notifier.link_valid_days,
        )
        normalizer = ComplaintNormalizer(
            normalizer_config(
                settings.normalizer, settings.reference_prefix, own_contacts(settings)
            ),
            DuplicateIndex(duplicate_index_path(settings.data_dir)),
        )
        return cls(
            settings=settings,
            publisher=publisher,
            intake=Intake(normalizer, publisher, contacts=state),
            claims=FileClaimStore(settings.data_dir),
            state=state,
            ledger=NotificationLedger(settings.data_dir / "state"),
            tokens=tokens,
            key_locks=KeyLocks(settings.data_dir / "state" / "keys.lock"),
        )

    def close(self) -> None:
        self.state.close()
        self.ledger.close()
        self.key_locks.close()


def own_contacts(settings: GatewaySettings) -> list[str]:
    """The office's addresses and numbers the settings already name: the notifier's sender, the
    Twilio number, the mailboxes' users that are addresses."""
    named = [settings.smtp.from_, settings.twilio.from_]
    named += [account.user for account in settings.imap.accounts() if "@" in (account.user or "")]
    return [value for value in named if value]
