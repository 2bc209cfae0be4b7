"""Partner webhooks: endpoints, the delivery log, replay, and the event types with their JSON Schemas."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import events
from hub.api._routing import HUB_KEY, Router, json_response, req_actor, req_body
from hub.errors import InputError
from hub.model import EVENT_TYPES
from hub.schemas import event_schema

router = Router("webhooks")

_PAGE = {"limit": "page size, 1 to 500 (default 50)", "cursor": "the `next` value of the previous page"}


def _page(items: list[Any], nxt: str | None) -> dict[str, Any]:
    return {"items": [i.model_dump(mode="json") for i in items], "next": nxt}


def _limit(request: web.Request) -> int | None:
    raw = request.query.get("limit")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"limit must be an integer, got {raw!r}", field="limit") from None


_LIST = {
    "type": "object",
    "required": ["items", "next"],
    "properties": {"items": {"type": "array"}, "next": {"type": ["string", "null"]}},
}


@router.post(
    "/api/v1/webhook-endpoints",
    scope="admin",
    summary="Register a partner webhook endpoint; the answer shows its whsec_ secret, once",
    body=events.EndpointIn,
    response=events.EndpointWithSecret,
    status=201,
)
async def create_webhook_endpoint(request: web.Request) -> web.Response:
    ep = await events.create_endpoint(request.app[HUB_KEY], req_body(request), actor=req_actor(request))
    return json_response(ep, status=201, headers={"Location": f"/api/v1/webhook-endpoints/{ep.id}"})


@router.get("/api/v1/webhook-endpoints", scope="ops", summary="List webhook endpoints", response=_LIST, query=_PAGE)
async def list_webhook_endpoints(request: web.Request) -> web.Response:
    items, nxt = await events.list_endpoints(
        request.app[HUB_KEY], limit=_limit(request), cursor=request.query.get("cursor")
    )
    return json_response(_page(items, nxt))


@router.get("/api/v1/webhook-endpoints/{id}", scope="ops", summary="One webhook endpoint", response=events.Endpoint)
async def get_webhook_endpoint(request: web.Request) -> web.Response:
    return json_response(await events.get_endpoint(request.app[HUB_KEY], request.match_info["id"]))


@router.delete(
    "/api/v1/webhook-endpoints/{id}", scope="admin", summary="Delete a webhook endpoint (its log is kept)", status=204
)
async def delete_webhook_endpoint(request: web.Request) -> web.Response:
    await events.delete_endpoint(request.app[HUB_KEY], request.match_info["id"], actor=req_actor(request))
    return web.Response(status=204)


@router.post(
    "/api/v1/webhook-endpoints/{id}/rotate-secret",
    scope="admin",
    summary="New secret; the old one keeps signing alongside for 24 hours",
    response=events.EndpointWithSecret,
)
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    return json_response(
        await events.rotate_secret(request.app[HUB_KEY], request.match_info["id"], actor=req_actor(request))
    )


@router.post(
    "/api/v1/webhook-endpoints/{id}/replay",
    scope="ops",
    summary="Re-enable the endpoint and resend its failed (and missed) deliveries since a time",
    body=events.ReplayIn,
    response=events.ReplayResult,
)
async def replay_webhook_endpoint(request: web.Request) -> web.Response:
    body: events.ReplayIn = req_body(request)
    return json_response(
        await events.replay_endpoint(
            request.app[HUB_KEY], request.match_info["id"], body.since, actor=req_actor(request)
        )
    )


@router.get(
    "/api/v1/webhook-deliveries",
    scope="ops",
    summary="The delivery log, newest first",
    response=_LIST,
    query={
        "endpoint": "endpoint id",
        "status": "pending, delivering, delivered or failed",
        "event_type": "e.g. order.created",
        **_PAGE,
    },
)
async def list_webhook_deliveries(request: web.Request) -> web.Response:
    q = request.query
    items, nxt = await events.list_deliveries(
        request.app[HUB_KEY],
        endpoint_id=q.get("endpoint"),
        status=q.get("status"),
        event_type=q.get("event_type"),
        limit=_limit(request),
        cursor=q.get("cursor"),
    )
    return json_response(_page(items, nxt))


@router.get(
    "/api/v1/webhook-deliveries/{id}",
    scope="ops",
    summary="One delivery with every attempt (status, latency, response snippet)",
    response=events.DeliveryDetail,
)
async def get_webhook_delivery(request: web.Request) -> web.Response:
    return json_response(await events.get_delivery(request.app[HUB_KEY], request.match_info["id"]))


@router.post(
    "/api/v1/webhook-deliveries/{id}/replay",
    scope="ops",
    summary="Send one delivery again (same webhook-id, fresh retry schedule)",
    response=events.Delivery,
    status=202,
)
async def replay_webhook_delivery(request: web.Request) -> web.Response:
    return json_response(
        await events.replay_delivery(request.app[HUB_KEY], request.match_info["id"], actor=req_actor(request)),
        status=202,
    )


@router.get(
    "/api/v1/event-types",
    scope="read",
    summary="Every partner event type with the JSON Schema of its body",
    response=_LIST,
)
async def list_event_types(request: web.Request) -> web.Response:
    items = [{"type": name, "schema": event_schema(name)} for name in sorted(EVENT_TYPES)]
    return json_response({"items": items, "next": None})
