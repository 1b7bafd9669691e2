"""The gateway's one exception tree.

Adapters map their library's errors into these at the edge (``raise X(...) from exc``); callers
never see aiokafka, aioimaplib or aiosmtplib exceptions.

    GatewayError
    ├── ConfigurationError          a setting is missing or invalid (start-up stops)
    ├── PublishError                Kafka did not take an event
    │   ├── KafkaUnavailable        broker unreachable or no acknowledgement in time: retry later
    │   └── EventRejected           the broker refused the event (too large, unknown topic...)
    ├── ClaimStoreError             raw input or attachment could not be stored or read
    │   ├── ClaimStoreFull          no space left: retry when space returns
    │   └── ClaimNotFound           no object under that key
    ├── StateStoreError             the embedded SQLite state could not be read or written
    ├── InvalidReference            a complaint reference is malformed or fails its check character
    ├── InputRejected               an input cannot become a complaint (reported on the DLQ)
    │   └── UnreadableDocument      a scan that is corrupt, encrypted, empty or not a scan
    ├── TokenRefused                an email-validation link that is invalid, expired or used
    ├── ChannelUnavailable          a channel's source (IMAP server, folder...) cannot be reached
    └── SendError                   the notifier could not hand a message to SMTP or Twilio
        ├── TemporarySendError      4xx, rate limited: retry with backoff, a bounded number of times
        │   └── ProviderUnavailable     the server cannot be reached: wait for it, however long
        └── PermanentSendError      5xx, unknown mailbox, invalid number: retrying will not help
            └── VerifyRefused       Twilio Verify refuses this number for now (too many codes)
"""


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigurationError(GatewayError):
    """A setting is missing or invalid; the message names the environment variable."""


class PublishError(GatewayError):
    """Kafka did not acknowledge an event."""


class KafkaUnavailable(PublishError):
    """The broker could not be reached or did not acknowledge in time. Safe to retry later."""


class EventRejected(PublishError):
    """The broker refused the event itself; retrying the same event will not help."""


class ClaimStoreError(GatewayError):
    """A raw input or attachment could not be stored or read."""


class ClaimStoreFull(ClaimStoreError):
    """The store has no space left; nothing was written. Retry when space returns."""


class ClaimNotFound(ClaimStoreError):
    """No object is stored under the requested key."""


class StateStoreError(GatewayError):
    """The embedded SQLite state (idempotency keys, checkpoints, the notifier's ledger) could not
    be read or written, e.g. the disk is full: retry later."""


class StateStoreUnavailable(StateStoreError):
    """The state database cannot be reached for now (restarting, connection lost, refused):
    the same write may succeed in a moment."""


class InvalidReference(GatewayError, ValueError):
    """A complaint reference is malformed or its check character does not match."""


class ChannelUnavailable(GatewayError):
    """A channel's source cannot be reached (server down, bad credentials, missing folder)."""


class InputRejected(GatewayError):
    """An input cannot become a complaint; it was kept and reported on ``intake.dlq.v1``."""

    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason


class SendError(GatewayError):
    """A notification could not be handed to its provider (SMTP server, Twilio)."""


class TemporarySendError(SendError):
    """The provider may take the message later (connection refused, 4xx, 429): retry."""


class PermanentSendError(SendError):
    """The provider refused the message itself (5xx, unknown mailbox, invalid number)."""


class ProviderUnavailable(TemporarySendError):
    """The provider cannot be reached at all; nothing can be sent until it is back."""


class UnreadableDocument(InputRejected):
    """A scanned file that cannot be read (corrupt, encrypted, empty, not a scan)."""


class TokenRefused(GatewayError):
    """A link that cannot verify anything; ``reason`` is ``invalid``, ``expired`` or ``used``.
    ``claim`` is what an expired token still says (to send a new link to the same address)."""

    def __init__(self, reason: str, claim: object | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claim = claim


class VerifyRefused(PermanentSendError):
    """Twilio Verify refuses this number for now (too many codes or attempts)."""


# Faults of the gateway's own infrastructure (broker, disk, a channel's server): the input is
# fine and stays where it is (unflagged mail, a scan in the inbox) to be taken again later.
RETRY_LATER: tuple[type[GatewayError], ...] = (
    KafkaUnavailable,
    ClaimStoreError,
    StateStoreError,
    ChannelUnavailable,
)
