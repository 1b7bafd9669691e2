"""SMS and phone verification through Twilio's official SDK (async client).

``GATEWAY_TWILIO_API_BASE`` maps a Twilio product (``api``, ``verify``) to another base URL,
for a local stand-in in tests; a product without a mapping goes to Twilio. Twilio's answers map
to our errors: 429 and 5xx are temporary, other 4xx permanent (unknown or blocked number...).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from gateway.errors import (
    ConfigurationError,
    PermanentSendError,
    ProviderUnavailable,
    TemporarySendError,
    VerifyRefused,
)
from gateway.events.notification import Medium
from gateway.notifier import OutgoingMessage
from gateway.settings import TwilioSettings

# Twilio Verify error codes that mean "not now, for this number" rather than a broken request.
VERIFY_LIMITS = {60202: "too many wrong codes", 60203: "too many codes sent", 60212: "too many"}


class RedirectedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's async HTTP client, sending each product's requests to a configured base."""

    def __init__(self, bases: dict[str, str], timeout_s: float = 15.0) -> None:
        super().__init__(pool_connections=False)
        self._bases = bases
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        auth = kwargs.pop("auth", None)
        if auth is not None:  # as a header: aiohttp deprecates the BasicAuth the SDK would build
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            kwargs["headers"] = {
                **(kwargs.get("headers") or {}),
                "Authorization": f"Basic {credentials}",
            }
        parts = urlsplit(url)
        product = (parts.hostname or "").split(".")[0]
        base = self._bases.get(product)
        if base is not None:
            target = urlsplit(base)
            url = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, ""))
        return await super().request(method, url, *args, **kwargs)


def twilio_client(settings: TwilioSettings) -> tuple[Client, RedirectedHttpClient]:
    if not settings.account_sid or settings.auth_token is None:
        msg = (
            "GATEWAY_TWILIO_ACCOUNT_SID: SMS needs a Twilio account (and GATEWAY_TWILIO_AUTH_TOKEN)"
        )
        raise ConfigurationError(msg)
    http = RedirectedHttpClient({name: str(url) for name, url in settings.api_base.items()})
    client = Client(settings.account_sid, settings.auth_token.get_secret_value(), http_client=http)
    return client, http


def send_error(exc: Exception) -> Exception:
    """Our error for what the SDK or the network raised."""
    if isinstance(exc, TwilioRestException):
        text = f"Twilio {exc.status} (code {exc.code}): {exc.msg}"
        if exc.status == 429 or exc.status >= 500:
            return TemporarySendError(text)
        return PermanentSendError(text)
    return ProviderUnavailable(f"Twilio unreachable: {exc}")


TWILIO_ERRORS = (TwilioException, aiohttp.ClientError, TimeoutError, OSError)


class TwilioSmsSender:
    medium = Medium.SMS

    def __init__(self, settings: TwilioSettings) -> None:
        if not settings.from_:
            raise ConfigurationError("GATEWAY_TWILIO_FROM: SMS needs a sending number")
        self._from = settings.from_
        self._client, self._http = twilio_client(settings)

    async def send(self, message: OutgoingMessage) -> str:
        try:
            sent = await self._client.messages.create_async(
                to=message.recipient, from_=self._from, body=message.content.sms
            )
        except TWILIO_ERRORS as exc:
            raise send_error(exc) from exc
        return str(sent.sid)

    async def close(self) -> None:
        await self._http.close()


@dataclass(frozen=True)
class CheckResult:
    approved: bool
    status: str


class TwilioVerify:
    """Twilio Verify: sends a code to a number, then checks what the person typed."""

    def __init__(self, settings: TwilioSettings) -> None:
        if not settings.verify_service_sid:
            msg = "GATEWAY_TWILIO_VERIFY_SERVICE_SID: SMS codes need a Twilio Verify service"
            raise ConfigurationError(msg)
        self._client, self._http = twilio_client(settings)
        self._service = self._client.verify.v2.services(settings.verify_service_sid)

    async def start(self, phone: str, locale: str) -> str:
        try:
            verification = await self._service.verifications.create_async(
                to=phone, channel="sms", locale=locale
            )
        except TWILIO_ERRORS as exc:
            raise _verify_error(exc) from exc
        return str(verification.sid)

    async def check(self, phone: str, code: str) -> CheckResult:
        try:
            result = await self._service.verification_checks.create_async(to=phone, code=code)
        except TWILIO_ERRORS as exc:
            raise _verify_error(exc) from exc
        return CheckResult(approved=result.status == "approved", status=str(result.status))

    async def close(self) -> None:
        await self._http.close()


def _verify_error(exc: Exception) -> Exception:
    if isinstance(exc, TwilioRestException) and exc.code in VERIFY_LIMITS:
        return VerifyRefused(VERIFY_LIMITS[exc.code])
    return send_error(exc)
