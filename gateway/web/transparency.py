"""Service-quality indicators, public: ``GET /v1/indicators`` (JSON) and ``GET /transparency``
(a page, French and English: tables with bars drawn in inline SVG, readable without JavaScript
or styles; every figure also written out). Counts only (``gateway.tracker.indicators``).

The HTTP server's process keeps the indicators (``IndicatorBoard``, refreshed at most every
``GATEWAY_TRACKER_INDICATORS_REFRESH_S``) and the Prometheus gauges fresh from them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.dates import long_date
from gateway.normalizers.due import DuePolicy, load_policies
from gateway.tracker.indicators import ALL, IndicatorBoard, Indicators, PolicyIndicators, Slice
from gateway.tracker.metrics import keep_fresh
from gateway.web.context import WebContext
from gateway.web.pages import language_of
from gateway.web.problems import problem_responses
from gateway.web.tracker_pages import TRACKER_MESSAGES, render_page

_refreshers: set[asyncio.Task[None]] = set()


def transparency_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(tags=["transparency"])
    tracker = ctx.settings.tracker
    policies = load_policies(ctx.settings.normalizer.due_policies_file)
    store = ctx.components.backend.tracker
    board = IndicatorBoard(store, policies, tracker.indicators_refresh_s)
    cache = {"Cache-Control": f"public, max-age={int(tracker.indicators_refresh_s)}"}
    _start_metrics(board, ctx, tracker.indicators_refresh_s)

    @router.get("/v1/indicators", responses=problem_responses(503), summary="Indicators")
    async def indicators(response: Response) -> Indicators:
        """Share of complaints acknowledged and answered within the policy's delays, delays,
        open complaints past due, satisfaction: per policy, month of receipt and channel."""
        response.headers.update(cache)
        return await board.current()

    @router.get("/transparency", response_class=HTMLResponse, summary="Transparency page")
    async def transparency(request: Request) -> HTMLResponse:
        """How the office keeps its promises (French or English: ``?lang=``)."""
        lang = language_of(request)
        current = await board.current()
        shown = [_view(found, policies.get(found.policy), lang) for found in current.policies]
        generated_on = current.generated_at.date()
        page = render_page(
            "transparency.html", lang, policies=shown, generated_on=generated_on, percent=_percent
        )
        page.headers.update(cache)
        return page

    return router


@dataclass
class _Month:
    month: str
    label: str
    rows: list[Slice]


def _view(found: PolicyIndicators, policy: DuePolicy | None, lang: str) -> dict[str, Any]:
    """What the page shows of one policy's indicators."""
    t = TRACKER_MESSAGES[lang]
    months: dict[str, list[Slice]] = {}
    for piece in found.slices:
        months.setdefault(piece.month, []).append(piece)
    overall = _channels_then_all(months.pop(ALL, []))
    ratings = next((row.figures.satisfaction for row in overall if row.channel == ALL), {})
    answers = sum(ratings.values())
    return {
        "name": t.get(f"policy_{found.policy}", found.policy),
        "promise": _promise(found, lang) if found.acknowledge and found.respond else None,
        "overall": overall,
        "answers": answers,
        "satisfaction": [
            {"rating": rating, "answers": count, "share": count / answers if answers else 0.0}
            for rating, count in sorted(ratings.items())
        ],
        "months": [
            _Month(month, _month_label(month, lang), _channels_then_all(rows))
            for month, rows in sorted(months.items(), reverse=True)
        ],
        "notes": t["transparency_notes"].format(unit=_unit(policy, lang)),
    }


def _channels_then_all(rows: list[Slice]) -> list[Slice]:
    return sorted(rows, key=lambda row: (row.channel == ALL, row.channel))


def _promise(found: PolicyIndicators, lang: str) -> str:
    t = TRACKER_MESSAGES[lang]
    promised = {
        step: f"{promise.days} {t.get(promise.count, promise.count)}"
        for step, promise in (("acknowledge", found.acknowledge), ("respond", found.respond))
        if promise is not None
    }
    return t["transparency_promise"].format(**promised)


def _unit(policy: DuePolicy | None, lang: str) -> str:
    """The policy's days, as the notes name them (its acknowledgement's count)."""
    t = TRACKER_MESSAGES[lang]
    return t[str(policy.acknowledge.count)] if policy else t["transparency_days"]


def _month_label(month: str, lang: str) -> str:
    """``novembre 2026`` / ``November 2026``."""
    words = long_date(date.fromisoformat(f"{month}-01"), lang).replace(",", "").split()
    return " ".join(words[1:]) if lang == "fr" else f"{words[0]} {words[2]}"


def _percent(share: float) -> str:
    return f"{share * 100:.0f} %"


def _start_metrics(board: IndicatorBoard, ctx: WebContext, every_s: float) -> None:
    """The indicators' gauges kept fresh while this server's store is open."""
    with contextlib.suppress(RuntimeError):  # no event loop: an app built outside a server
        store = ctx.components.backend.tracker
        task = asyncio.get_running_loop().create_task(keep_fresh(board, store, every_s))
        _refreshers.add(task)
        task.add_done_callback(_refreshers.discard)
