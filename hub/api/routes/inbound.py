"""``POST /webhooks/{connection_id}``: inbound deliveries from channels, 3PLs and carriers."""

from __future__ import annotations

from aiohttp import web

from hub import metrics
from hub.api._routing import HUB_KEY, Router, json_response
from hub.errors import AuthError
from hub.logging import bind, unbind
from hub.sync import inbox
from hub.sync._intake import IntakeUnavailable

router = Router("webhooks-inbound")

ACCEPTED = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "duplicate": {"type": "boolean"}},
    "required": ["id", "duplicate"],
}


@router.post(
    "/webhooks/{connection_id}",
    scope=None,
    summary="Inbound webhook: verified by the connection's connector, persisted before the 202 "
    "(503 with Retry-After when the database refuses the write)",
    response=ACCEPTED,
    status=202,
)
async def receive_webhook(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    connection_id = request.match_info["connection_id"]
    body = await request.read()
    token = bind(connection=connection_id)
    try:
        try:
            accepted = await inbox.accept(hub, connection_id, request.headers, body)
        except AuthError as exc:
            metrics.webhooks_received.labels(connection_id, "unauthenticated").inc()
            raise AuthError(f"webhook signature check failed for connection {connection_id}: {exc.detail}") from None
        except IntakeUnavailable:  # 503 + Retry-After: the batch it was in could not be stored
            metrics.webhooks_received.labels(connection_id, "unavailable").inc()
            raise
    finally:
        unbind(token)
    return json_response({"id": accepted.id, "duplicate": accepted.duplicate}, status=202)
