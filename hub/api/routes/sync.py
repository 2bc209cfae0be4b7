"""Sync failures: list, inspect, replay one, replay by filter."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from hub.api._routing import HUB_KEY, Router, json_response, req_actor, req_body
from hub.errors import InputError
from hub.sync.failures import FailureFilter, get_failure, list_failures, replay_matching, replay_one

router = Router("sync")
LIST = {"type": "object", "properties": {"items": {"type": "array"}, "next": {"type": ["string", "null"]}}}


def _dt(v: str | None) -> datetime | None:
    if not v:
        return None
    try:
        return datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"not an ISO-8601 time: {v!r}") from None


@router.get(
    "/api/v1/sync/failures",
    scope="read",
    summary="Dead-lettered syncs",
    response=LIST,
    query={
        "connection": "",
        "operation": "",
        "error": "substring of the error",
        "since": "ISO time",
        "until": "ISO time",
        "status": "open (default), resolved or all",
        "limit": "",
        "cursor": "",
    },
)
async def failures(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    q = request.query
    flt = FailureFilter(
        q.get("connection"),
        q.get("operation"),
        q.get("error"),
        _dt(q.get("since")),
        _dt(q.get("until")),
        q.get("status", "open"),
    )
    async with hub.store.connect() as conn:
        items, nxt = await list_failures(conn, flt, limit=min(500, int(q.get("limit", "50"))), cursor=q.get("cursor"))
    return json_response({"items": items, "next": nxt})


@router.get(
    "/api/v1/sync/failures/{id}",
    scope="read",
    summary="One failure with its errors, request, response and replays",
    response={"type": "object"},
)
async def failure(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    async with hub.store.connect() as conn:
        return json_response(await get_failure(conn, request.match_info["id"]))


class ReplayOne(BaseModel):
    dry_run: bool = False


@router.post(
    "/api/v1/sync/failures/{id}/replay",
    scope="ops",
    summary="Replay one failure now",
    body=ReplayOne,
    response={"type": "object"},
)
async def replay(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body: ReplayOne = req_body(request)
    r = await replay_one(hub, request.match_info["id"], actor=req_actor(request), dry_run=body.dry_run)
    return json_response({"id": r.failure_id, "result": r.result, "detail": r.detail})


class ReplayFilter(BaseModel):
    ids: list[str] | None = None
    connection: str | None = None
    operation: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = False
    limit: int = Field(default=10_000, ge=1, le=100_000)


@router.post(
    "/api/v1/sync/failures/replay",
    scope="ops",
    summary="Replay a list of failures, or all matching a filter",
    body=ReplayFilter,
    response={"type": "object"},
)
async def replay_filter(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    b: ReplayFilter = req_body(request)
    flt = FailureFilter(b.connection, b.operation, b.error, b.since, b.until, "open")
    results = await replay_matching(hub, flt, actor=req_actor(request), dry_run=b.dry_run, ids=b.ids, limit=b.limit)
    summary: dict[str, int] = {}
    for r in results:
        summary[r.result] = summary.get(r.result, 0) + 1
    return json_response(
        {
            "count": len(results),
            "summary": summary,
            "items": [{"id": r.failure_id, "result": r.result, "detail": r.detail} for r in results],
        }
    )
