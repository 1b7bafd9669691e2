"""The gateway's settings: environment variables prefixed ``GATEWAY_`` (and an optional ``.env``).

Built once at start-up and passed into constructors; nothing reads ``os.environ`` later. Names
are fixed by the interface contract: ``GATEWAY_IMAP_HOST`` is ``settings.imap.host``, etc.
A missing or invalid setting raises ConfigurationError with one line naming the variable.
"""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from gateway.errors import ConfigurationError
from gateway.jsondepth import DEFAULT_MAX_DEPTH
from gateway.store.keyring import parse_keys

ENV_PREFIX = "GATEWAY_"


class KafkaSettings(BaseModel):
    bootstrap: str = Field(default="localhost:9092", min_length=1)
    client_id: str = "intake-gateway"
    request_timeout_s: float = Field(default=10.0, gt=0)
    publish_timeout_s: float = Field(
        default=15.0, gt=0, description="bound on connecting to Kafka before a publish"
    )
    max_in_flight: int = Field(default=1000, ge=1, description="events awaiting acknowledgement")
    linger_ms: int = Field(default=5, ge=0)
    max_batch_bytes: int = Field(default=512 * 1024, ge=1024, le=1_000_000)
    topic_partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1, description="3 in production clusters")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, validate_default=True
    )
    sasl_username: str | None = Field(default=None, validate_default=True)
    sasl_password: SecretStr | None = Field(default=None, validate_default=True)
    ca_file: Path | None = Field(default=None, description="CA certificates that sign the broker's")

    @field_validator("sasl_mechanism", "sasl_username", "sasl_password")
    @classmethod
    def _sasl_with_a_sasl_protocol(cls, value: Any, info: ValidationInfo) -> Any:
        """SASL_* protocols need all three; others none (credentials set beside PLAINTEXT or
        SSL are a forgotten ``GATEWAY_KAFKA_SECURITY_PROTOCOL``, not something to ignore)."""
        protocol = info.data.get("security_protocol")
        given = bool(value.get_secret_value() if isinstance(value, SecretStr) else value)
        if protocol in ("SASL_PLAINTEXT", "SASL_SSL") and not given:
            msg = "needed with GATEWAY_KAFKA_SECURITY_PROTOCOL={protocol}"
            raise PydanticCustomError("kafka_sasl_missing", msg, {"protocol": protocol})
        if protocol in ("PLAINTEXT", "SSL") and given:
            msg = (
                "set, but GATEWAY_KAFKA_SECURITY_PROTOCOL={protocol} sends no SASL credentials "
                "(SASL_SSL or SASL_PLAINTEXT do)"
            )
            raise PydanticCustomError("kafka_sasl_unused", msg, {"protocol": protocol})
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_file_with_tls(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """A readable PEM file of CA certificates, and TLS to check the broker with it."""
        protocol = info.data.get("security_protocol")
        if value is None:
            return value
        if protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
            msg = "set, but GATEWAY_KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS (SSL, SASL_SSL)"
            raise PydanticCustomError("kafka_ca_unused", msg, {"protocol": protocol})
        try:
            ssl.create_default_context(cafile=value)
        except OSError as exc:  # ssl.SSLError is one too
            reason = exc.strerror or str(exc)
            msg = "{path}: not a readable PEM file of CA certificates ({reason})"
            context = {"path": str(value), "reason": reason}
            raise PydanticCustomError("kafka_ca_file", msg, context) from None
        return value


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_request_bytes: int = Field(default=30 * 1024 * 1024, ge=1024)
    max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_files: int = Field(default=10, ge=0)
    max_json_depth: int = Field(
        default=DEFAULT_MAX_DEPTH, ge=1, le=500, description="arrays and objects nested, at most"
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="processes serving HTTP on the one port (SO_REUSEPORT)"
    )
    workers_forked: bool = Field(
        default=True,
        description="workers forked once the language models are loaded (one copy for all);"
        " false: each started fresh with its own copy",
    )
    rate_per_client_per_minute: int = Field(default=60, ge=1)
    rate_per_form_per_minute: int = Field(default=6000, ge=1)
    signature_tolerance_s: int = Field(default=300, ge=1, description="replay window")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="addresses whose X-Forwarded-For is believed"
    )


class S3Settings(BaseModel):
    """The S3-compatible object store of ``GATEWAY_OBJECT_STORE_URL=s3://bucket[/prefix]``."""

    endpoint_url: AnyHttpUrl | None = Field(
        default=None, description="the server's URL (unset: AWS's own, from the region)"
    )
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    server_side_encryption: str | None = Field(
        default=None, description="x-amz-server-side-encryption of each put: AES256 or aws:kms"
    )


class OAuth2Client(BaseModel):
    """How the gateway gets an access token for XOAUTH2 (RFC 6749 token endpoint): with a
    ``refresh_token`` (Gmail, a delegated mailbox), else the client-credentials grant (Microsoft
    365 with an application's access to the mailbox: scope
    ``https://outlook.office365.com/.default``)."""

    token_url: AnyHttpUrl
    client_id: str
    client_secret: SecretStr
    scope: str | None = None
    refresh_token: SecretStr | None = None


class ImapAccount(BaseModel):
    """One mailbox to read. ``tls``: TLS from the first byte (port 993); else ``starttls``
    upgrades a plain connection (port 143) before anything is sent, and refuses a server that
    does not offer it. ``ca_file``: the certificates to trust instead of the system's (an
    office's own CA). ``auth``: ``password`` (LOGIN) or ``xoauth2`` with ``oauth2``."""

    host: str | None = None
    port: int = Field(default=993, ge=1, le=65535)
    user: str | None = None
    password: SecretStr | None = None
    mailbox: str = "INBOX"
    tls: bool = True
    starttls: bool = False
    ca_file: Path | None = None
    auth: Literal["password", "xoauth2"] = "password"
    oauth2: OAuth2Client | None = None
    max_attachment_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1024,
        description="an attachment over this is recorded as rejected, with its size; a mail over "
        "it is read piece by piece, never held whole",
    )
    shared: bool = Field(
        default=False,
        description="more than one gateway reads this mailbox: each message is claimed by the "
        "one that publishes it, in the state database the replicas share (GATEWAY_STATE_URL), "
        "else on the server (a keyword set by a conditional STORE, CONDSTORE)",
    )
    claim_timeout_s: float = Field(
        default=900.0,
        gt=0,
        description="a claim another replica left this long (it died) is given up, for any "
        "replica to take",
    )

    @model_validator(mode="after")
    def _xoauth2_needs_a_client(self) -> ImapAccount:
        if self.host and self.auth == "xoauth2" and self.oauth2 is None:
            msg = "auth is xoauth2: GATEWAY_IMAP_OAUTH2 (token_url, client_id...) is needed"
            raise ValueError(msg)
        return self


class ImapSettings(ImapAccount):
    """``GATEWAY_IMAP_*``: the main mailbox, and more in ``GATEWAY_IMAP_MAILBOXES`` (a JSON list
    of objects with the same fields, e.g. a ``plaintes@`` beside ``complaints@``)."""

    mailboxes: list[ImapAccount] = Field(default_factory=list)

    def accounts(self) -> list[ImapAccount]:
        main = [ImapAccount.model_validate(self.model_dump(exclude={"mailboxes"}))]
        return [account for account in main + self.mailboxes if account.host]


class SmtpSettings(BaseModel):
    host: str | None = None
    port: int = Field(default=25, ge=1, le=65535)
    from_: str | None = Field(default=None, alias="from")
    user: str | None = None
    password: SecretStr | None = None
    starttls: bool = Field(default=False, description="upgrade with STARTTLS (port 587)")
    tls: bool = Field(default=False, description="implicit TLS (port 465)")
    timeout_s: float = Field(default=30.0, gt=0)
    connections: int = Field(default=4, ge=1, le=64, description="kept open, sent in parallel")


class TwilioSettings(BaseModel):
    account_sid: str | None = None
    auth_token: SecretStr | None = None
    verify_service_sid: str | None = None
    from_: str | None = Field(default=None, alias="from")
    api_base: dict[str, AnyHttpUrl] = Field(
        default_factory=dict, description='product -> base URL, e.g. {"verify": "http://..."}'
    )


class PostalSettings(BaseModel):
    """The mail room's scans: ``GATEWAY_POSTAL_*``."""

    inbox: Path | None = None
    settle_s: float = Field(default=2.0, ge=0, description="unchanged this long = fully written")
    rescan_s: float = Field(default=30.0, gt=0, description="full rescan besides inotify")
    workers: int | None = Field(default=None, ge=1, description="OCR processes (default: cores)")
    languages: str = Field(default="fra+eng", pattern=r"^[a-z_]+(\+[a-z_]+)*$")
    dpi: int = Field(default=300, ge=100, le=600, description="PDF pages rendered for OCR")
    min_confidence: float = Field(
        default=60.0, ge=0, le=100, description="below: flag low_ocr_confidence"
    )
    split_on_blank: bool = Field(
        default=True, description="a blank page separates letters (off for duplex scans)"
    )
    searchable_pdf: bool = Field(
        default=True, description="attach a searchable PDF of each letter (OCR text layer)"
    )


class NotifierSettings(BaseModel):
    """What the notifier sends and when: ``GATEWAY_NOTIFIER_*``."""

    group_id: str = Field(default="intake-gateway-notifier", min_length=1)
    office_name: str = "Bureau des plaintes / Complaints office"
    default_language: str = Field(default="fr", pattern=r"^(fr|en)$")
    templates: Path | None = Field(
        default=None, description="a folder of Jinja2 templates that override the built-in ones"
    )
    max_age_days: int = Field(
        default=14, ge=0, description="no acknowledgement for inputs older than this (backlog)"
    )
    token_key: SecretStr | None = Field(
        default=None, description="Fernet key of email links; default: a key kept in the data dir"
    )
    link_valid_days: int = Field(default=5, ge=1)
    concurrency: int = Field(default=32, ge=1, description="complaints handled at once")
    batch_size: int = Field(
        default=100, ge=1, le=5000, description="events read at once; offsets committed after each"
    )
    max_attempts: int = Field(default=6, ge=1, description="tries before a send counts as failed")
    claim_lease_s: float = Field(
        default=60.0,
        ge=1,
        description="a notifier's claim on a notification it sends; another may take it over "
        "once it ran out (the first was killed)",
    )
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    sms_per_number_per_hour: int = Field(default=3, ge=1)
    sms_per_complaint_per_day: int = Field(default=5, ge=1)
    sms_per_client_per_hour: int = Field(default=10, ge=1)
    sms_max_checks: int = Field(default=5, ge=1, description="wrong codes before a new one is due")
    sms_countries: list[str] = Field(
        default=["CA", "US", "FR", "BE"], description="SMS only to numbers of these regions"
    )


class NormalizerSettings(BaseModel):
    """How texts are read: ``GATEWAY_NORMALIZER_*``."""

    default_region: str = Field(
        default="CA", pattern=r"^[A-Z]{2}$", description="phone numbers without +country"
    )
    due_policy: str = Field(default="ramq", description="ramq, inami, fr-marianne or your own")
    due_policies_file: Path | None = None
    rules: Path | None = Field(default=None, description="kind and routing rules (TOML)")
    abusive_words: Path | None = None
    languages: list[str] = Field(default=["fr", "en", "nl", "de", "es", "it", "pt", "ar"])
    own_contacts: list[str] = Field(
        default_factory=list,
        description="the office's own email addresses and phone numbers (as written), never taken "
        "for the person's when a text quotes them; the SMTP sender, the Twilio number and the "
        "mailboxes' users are added",
    )


class TrackerSettings(BaseModel):
    """Where complaints stand, the final answer and the indicators: ``GATEWAY_TRACKER_*``."""

    group_id: str = Field(default="intake-gateway-tracker", min_length=1)
    batch_size: int = Field(default=500, ge=1, le=5000, description="events folded at once")
    recourse_file: Path | None = Field(
        default=None, description="TOML: each policy's recourse named in the final notice"
    )
    feedback_valid_days: int = Field(default=30, ge=1, description="life of a satisfaction link")
    status_per_client_per_hour: int = Field(default=30, ge=1)
    status_per_reference_per_hour: int = Field(default=10, ge=1)
    indicators_refresh_s: float = Field(
        default=30.0, gt=0, description="the indicators are computed again at most this often"
    )


class RetentionSettings(BaseModel):
    """How long each kind of personal data is kept, in days from the complaint's closing (as
    the tracker saw it) or, not closed, its receipt: ``GATEWAY_RETENTION_*``. Placeholders to
    set from the office's retention schedule."""

    raw_days: int = Field(default=365, ge=1, description="raw inputs: mails, forms, SMS, scans")
    attachments_days: int = Field(default=365, ge=1, description="attachments, searchable PDFs")
    state_days: int = Field(
        default=365, ge=1, description="contacts, the notifier's ledger, duplicate index"
    )
    tracker_days: int = Field(default=1095, ge=1, description="timelines and standings")
    dlq_days: int = Field(default=90, ge=1, description="dead-letter records and raw copies")
    audit_days: int = Field(default=2190, ge=1, description="reads of objects, on record")
    daily: bool = Field(default=True, description="run retention once a day inside 'run'")


class GatewaySettings(BaseSettings):
    """Every setting of the gateway. See README.md for the table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    http: HttpSettings = HttpSettings()
    public_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8080"),
        description="base of the links sent to people; default: the HTTP host and port served",
    )
    data_dir: Path = Path("./data")
    state_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host:port/db shared by every replica; "
        "unset: SQLite under data_dir",
    )
    object_store_url: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="s3://bucket[/prefix]; unset: files under data_dir/objects",
    )
    s3: S3Settings = S3Settings()
    consumer_tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description="case system -> bearer token for /v1/objects"
    )
    admin_tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description="operator -> bearer token for /v1/admin"
    )
    encryption_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description="key id -> base64 of 256 bits; the first encrypts stored objects and "
        "personal state, the others still decrypt; unset: one generated, kept as a secret",
    )
    encryption_at_rest: bool = Field(
        default=True, description="false only to measure its cost: new objects stored in clear"
    )
    reference_prefix: str = Field(default="PL", pattern=r"^[A-Z]{2,4}$")
    webhook_secrets: Annotated[dict[str, list[SecretStr]], NoDecode] = Field(default_factory=dict)
    form_fields: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="form id -> {their field (dotted path in JSON): canonical field}",
    )
    imap: ImapSettings = ImapSettings()
    smtp: SmtpSettings = SmtpSettings()
    twilio: TwilioSettings = TwilioSettings()
    postal: PostalSettings = PostalSettings()
    normalizer: NormalizerSettings = NormalizerSettings()
    notifier: NotifierSettings = NotifierSettings()
    tracker: TrackerSettings = TrackerSettings()
    retention: RetentionSettings = RetentionSettings()

    @model_validator(mode="after")
    def _links_point_at_the_server(self) -> GatewaySettings:
        """Without ``GATEWAY_PUBLIC_URL``, links go to the address the server listens on."""
        if "public_url" not in self.model_fields_set:
            self.public_url = AnyHttpUrl(served_url(self.http.host, self.http.port))
        return self

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _keys_from_json(cls, value: Any) -> Any:
        """Key ids and 256-bit keys checked (a message that never quotes a key)."""
        try:
            return parse_keys(value)
        except ValueError as exc:
            raise PydanticCustomError("encryption_keys", "{reason}", {"reason": str(exc)}) from None

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _secrets_from_json(cls, value: Any) -> Any:
        """Accept ``{"form": "secret"}`` and ``{"form": ["new", "old"]}`` (rotation)."""
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if isinstance(value, dict):
            return {form: [s] if isinstance(s, str) else s for form, s in value.items()}
        return value


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (names, not a bind)


def served_url(host: str, port: int) -> str:
    """The URL a browser on this machine reaches the server at (a wildcard bind: localhost)."""
    shown = "localhost" if host in WILDCARD_HOSTS else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def explicitly_set(settings: GatewaySettings, section: str, name: str) -> bool:
    """Whether ``GATEWAY_<SECTION>_<NAME>`` (or an override) gave this setting."""
    return name in getattr(settings, section).model_fields_set


def env_name(location: tuple[int | str, ...]) -> str:
    """The environment variable behind a validation error's location."""
    parts = [str(part) for part in location if isinstance(part, str)]
    parts = [part.rstrip("_") for part in parts[:2]]
    return ENV_PREFIX + "_".join(parts).upper()


def load_settings(**overrides: Any) -> GatewaySettings:
    """Read the settings; on error raise ConfigurationError naming the first variable at fault."""
    try:
        return GatewaySettings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigurationError(f"{env_name(error['loc'])}: {error['msg']}") from None
    except SettingsError as exc:
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"{ENV_PREFIX}{field.group(1).upper()}_*" if field else "a GATEWAY_ variable"
        raise ConfigurationError(f"{name}: not valid JSON where an object is expected") from None
