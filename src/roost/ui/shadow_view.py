"""The /shadow page: agreement, |score difference| quantiles and latencies of `roost serve --shadow` per pair."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.errors import RoostError

if TYPE_CHECKING:
    from roost.monitor.shadow import ShadowReport
    from roost.ui.app import UI

DIFF_KEYS = ("p50", "p90", "p99", "max")
LATENCY_KEYS = ("p50", "p99")


def request_log_dir() -> Path:
    """The current workspace's request-log folder (where `roost serve` writes shadow/ by default)."""
    from roost import workspace
    from roost.lineage import REQUEST_LOG_SUBDIR

    return workspace.current().state_dir / REQUEST_LOG_SUBDIR


def _summary(folder: Path, model: str | None, since: str | None, until: str | None) -> ShadowReport | None:
    """The shadow summary of the folder, or None when it holds no comparisons yet."""
    from roost.monitor.shadow import SHADOW_DIR, shadow_summary

    if not (folder / SHADOW_DIR).is_dir():
        return None
    try:
        return shadow_summary(folder / SHADOW_DIR, model, since, until)
    except RoostError:
        if not any((folder / SHADOW_DIR).rglob("*.parquet")):
            return None  # the folder exists but nothing was flushed yet
        raise
    except ValueError as exc:  # pandas could not read --since/--until
        raise RoostError(
            f"cannot read the time range since={since!r} until={until!r}: {exc}",
            hint="use UTC dates or times such as 2024-01-08 or 2024-01-08T12:00",
        ) from exc


def _cells(values: dict[str, float], keys: tuple[str, ...], digits: str) -> list[dict[str, Any]]:
    """Table cells (shown text and the exact value) for the named quantiles."""
    out = []
    for k in keys:
        v = values.get(k)
        ok = v is not None and not math.isnan(v)
        out.append({"key": k, "value": repr(v) if ok else "", "text": format(v, digits) if ok else "-"})
    return out


def routes(ui: UI) -> list[Route]:
    """The /shadow route."""

    async def shadow(request: Request) -> Response:
        q = request.query_params
        model, since, until = (q.get(k) or None for k in ("model", "since", "until"))
        try:
            report = await run_in_threadpool(_summary, request_log_dir(), model, since, until)
        except RoostError as exc:
            return ui.error(request, exc, 400)
        pairs = [
            {
                "model": p.model,
                "primary": p.primary_version,
                "shadow": p.shadow_version,
                "requests": p.requests,
                "rows": p.rows,
                "agreement": "" if p.agreement is None else repr(p.agreement),
                "agreement_text": "-" if p.agreement is None else f"{p.agreement:.2%}",
                "diff": _cells(p.abs_diff, DIFF_KEYS, ".4g"),
                "primary_ms": _cells(p.primary_latency_ms, LATENCY_KEYS, ".2f"),
                "shadow_ms": _cells(p.shadow_latency_ms, LATENCY_KEYS, ".2f"),
            }
            for p in (report.pairs if report else [])
        ]
        return ui.render(
            request,
            "shadow.html",
            pairs=pairs,
            files=report.files if report else 0,
            verdict=report.verdict if report else None,
            model=model or "",
            since=since or "",
            until=until or "",
        )

    return [Route("/shadow", shadow)]
