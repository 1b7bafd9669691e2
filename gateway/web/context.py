"""What the HTTP routes share: the process's components, the rate limiters, the key locks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request

from gateway.components import Components
from gateway.intake import Intake
from gateway.notifier.twilio import TwilioVerify
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings
from gateway.store.claims import ClaimStore
from gateway.store.state import StateStore
from gateway.web.problems import ProblemError
from gateway.web.ratelimit import RateLimiter


@dataclass
class WebContext:
    components: Components
    per_client: RateLimiter
    per_form: RateLimiter
    _verify: TwilioVerify | None = None

    @classmethod
    def of(cls, components: Components) -> WebContext:
        """Rate limits in the buckets of the state backend: shared by the HTTP workers of a
        machine, and by every replica on the shared backend."""
        http = components.settings.http
        buckets = components.buckets
        return cls(
            components,
            per_client=RateLimiter(http.rate_per_client_per_minute, store=buckets, name="client"),
            per_form=RateLimiter(http.rate_per_form_per_minute, store=buckets, name="form"),
        )

    def rate_limiter(self, limit: int, window_s: float, name: str) -> RateLimiter:
        """A limiter of these requests' own, in the same buckets as the others."""
        return RateLimiter(limit, window_s=window_s, store=self.components.buckets, name=name)

    @property
    def settings(self) -> GatewaySettings:
        return self.components.settings

    @property
    def publisher(self) -> KafkaPublisher:
        return self.components.publisher

    def twilio_verify(self) -> TwilioVerify | None:
        """Twilio Verify, built on first use; None when its settings are not given."""
        twilio = self.settings.twilio
        if self._verify is None and twilio.account_sid and twilio.verify_service_sid:
            self._verify = TwilioVerify(twilio)
        return self._verify

    async def close(self) -> None:
        if self._verify is not None:
            await self._verify.close()

    @property
    def intake(self) -> Intake:
        return self.components.intake

    @property
    def claims(self) -> ClaimStore:
        return self.components.claims

    @property
    def state(self) -> StateStore:
        return self.components.state

    @contextlib.asynccontextmanager
    async def exclusive(self, scope: str, key: str) -> AsyncIterator[None]:
        """One request at a time per idempotency key, in whichever HTTP worker each landed
        (a retry waits for the first to finish, then finds its stored answer)."""
        async with self.components.key_locks.holding(f"{scope}\n{key}"):
            yield

    def client_address(self, request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded and peer in self.settings.http.trusted_proxies:
            return forwarded.split(",")[0].strip()
        return peer

    async def limit(self, request: Request, form_id: str | None = None) -> None:
        """429 with Retry-After when this client (or this form) sends too much: the unsigned
        entry points (the reference form, documents, SMS codes)."""
        checks = [(self.per_client, f"client:{self.client_address(request)}")]
        if form_id is not None:
            checks.append((self.per_form, f"form:{form_id}"))
        await within_limits(checks, "Too many requests")

    async def limit_form(self, form_id: str) -> None:
        """A signed webhook, once its signature is checked: the form's own allowance, whatever
        address it comes from (a form platform posts for many people from one server)."""
        await within_limits([(self.per_form, f"form:{form_id}")], "Too many requests for this form")

    async def refuse_known_offender(self, request: Request) -> None:
        """Before a signed webhook's body is read: 429 for an address whose refused attempts
        (bad signatures, unknown forms) used up the per-client allowance."""
        wait = await self.per_client.exhausted(f"refused:{self.client_address(request)}")
        if wait is not None:
            raise too_many(wait, "Too many refused requests from this address")

    async def count_refused(self, request: Request) -> None:
        """One refused attempt (bad signature, unknown form) against the sender's address."""
        await self.per_client.retry_after(f"refused:{self.client_address(request)}")


async def within_limits(checks: list[tuple[RateLimiter, str]], title: str) -> None:
    """Counts one request against each (limiter, key); 429 with Retry-After past a limit."""
    for limiter, key in checks:
        wait = await limiter.retry_after(key)
        if wait is not None:
            raise too_many(wait, title)


def too_many(wait: float, title: str) -> ProblemError:
    return ProblemError(
        429,
        "rate-limited",
        title,
        f"retry in {wait:.0f} s",
        headers={"Retry-After": str(max(1, round(wait)))},
    )
