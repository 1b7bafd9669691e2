"""What the services of one process share: the publisher, the intake, the stores."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.intake import Intake
from gateway.normalizers import ComplaintNormalizer, normalizer_config
from gateway.notifier.ledger import NotificationLedger
from gateway.notifier.tokens import EmailTokens, link_key
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings
from gateway.store.backends import StateBackend, open_state_backend
from gateway.store.buckets import BucketStore
from gateway.store.claims import ClaimStore
from gateway.store.datadir import private_data_dir
from gateway.store.keylocks import KeyLocks
from gateway.store.objects import check as check_claim_store
from gateway.store.objects import claim_store_from_settings, encrypted_claim_store
from gateway.store.state import StateStore


@dataclass
class Components:
    settings: GatewaySettings
    publisher: KafkaPublisher
    intake: Intake
    claims: ClaimStore
    backend: StateBackend
    tokens: EmailTokens

    @classmethod
    async def open(cls, settings: GatewaySettings, publisher: KafkaPublisher) -> Components:
        """The stores the settings name (ConfigurationError, one line, when one cannot be
        used, or the data folder is open to other users) and what is built on them; ``close``
        closes them."""
        private_data_dir(settings.data_dir)
        backend = await open_state_backend(settings)
        store = claim_store_from_settings(settings)
        try:
            await store.open()
            await check_claim_store(store)
            claims = await encrypted_claim_store(store, settings, backend)
            configured = settings.notifier.token_key
            key = await link_key(
                configured.get_secret_value() if configured else None, backend.secrets
            )
            normalizer = ComplaintNormalizer(
                normalizer_config(
                    settings.normalizer, settings.reference_prefix, own_contacts(settings)
                ),
                backend.duplicates,
            )
            return cls(
                settings=settings,
                publisher=publisher,
                intake=Intake(
                    normalizer,
                    publisher,
                    contacts=backend.state,
                    catalog=backend.catalog,
                    dlq=backend.dlq,
                ),
                claims=claims,
                backend=backend,
                tokens=EmailTokens(key, settings.notifier.link_valid_days),
            )
        except BaseException:
            await store.close()
            await backend.close()
            raise

    @property
    def state(self) -> StateStore:
        return self.backend.state

    @property
    def ledger(self) -> NotificationLedger:
        return self.backend.ledger

    @property
    def key_locks(self) -> KeyLocks:
        return self.backend.key_locks

    @property
    def buckets(self) -> BucketStore:
        return self.backend.buckets

    async def close(self) -> None:
        await self.claims.close()
        await self.backend.close()


def own_contacts(settings: GatewaySettings) -> list[str]:
    """The office's addresses and numbers the settings already name: the notifier's sender, the
    Twilio number, the mailboxes' users that are addresses."""
    named = [settings.smtp.from_, settings.twilio.from_]
    named += [account.user for account in settings.imap.accounts() if "@" in (account.user or "")]
    return [value for value in named if value]
