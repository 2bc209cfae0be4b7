"""Route declarations shared by the aiohttp app and the OpenAPI document.

Each route says its scope, its request and response models; the wrapper authenticates,
parses and validates the body, applies ``Idempotency-Key`` on writes, and turns every
:class:`~hub.errors.OrderhubError` into ``application/problem+json``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from hub.clock import now
from hub.errors import AuthError, Forbidden, InputError, OrderhubError
from hub.logging import get_logger
from hub.store import tables as t
from hub.store._upsert import insert_ignore

log = get_logger("hub.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SCOPE_RANK = {"read": 0, "ops": 1, "admin": 2}
HUB_KEY: web.AppKey[Any] = web.AppKey("hub", object)
ACTOR_KEY: web.RequestKey[str] = web.RequestKey("actor", str)
BODY_KEY: web.RequestKey[Any] = web.RequestKey("body", object)


def req_actor(request: web.Request) -> str:
    """The name of the API token that authenticated the request ("-" on open routes)."""
    return str(request.get(ACTOR_KEY, "-"))


def req_body(request: web.Request) -> Any:
    """The validated request body (the route's ``body`` model)."""
    return request[BODY_KEY]


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    scope: str | None
    summary: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | dict[str, Any] | None = None
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    tag: str = "api"


class Router:
    """Collects routes of one feature module: ``router = Router("orders")``, ``@router.get(...)``."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        scope: str | None,
        summary: str,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | dict[str, Any] | None = None,
        status: int = 200,
        query: dict[str, str] | None = None,
    ) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.routes.append(Route(method, path, fn, scope, summary, body, response, status, query or {}, self.tag))
            return fn

        return deco

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_default)


def _default(o: Any) -> Any:
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json", headers=headers)


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    doc = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **{k: v for k, v in extra.items() if v is not None},
    }
    headers = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None
    return web.Response(
        body=orjson.dumps(doc, default=str), status=status, content_type="application/problem+json", headers=headers
    )


def error_response(exc: OrderhubError) -> web.Response:
    doc = exc.problem()
    headers = {"Retry-After": str(doc["retry_after"])} if "retry_after" in doc else None
    if exc.status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="orderhub"'}
    return web.Response(
        body=orjson.dumps(doc, default=str), status=exc.status, content_type="application/problem+json", headers=headers
    )


def authenticate(request: web.Request, scope: str) -> str:
    """The token's name when the bearer token grants ``scope``; else AuthError/Forbidden."""
    hub = request.app[HUB_KEY]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
    presented = header[7:].strip().encode()
    match = None
    for tok in hub.config.api_tokens:
        # compare against every token (constant time each) so timing does not reveal which matched
        if hmac.compare_digest(presented, tok.token.get_secret_value().encode()):
            match = tok
    if match is None:
        raise AuthError("invalid bearer token")
    if max(SCOPE_RANK[s] for s in match.scopes) < SCOPE_RANK[scope]:
        raise Forbidden(f"token {match.name!r} lacks the {scope!r} scope this route requires")
    return str(match.name)


async def parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InputError(f"request body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise InputError(
            "request body is invalid: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
        ) from None


def wrap(route: Route) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            if route.scope:
                request[ACTOR_KEY] = authenticate(request, route.scope)
            if route.body is not None:
                request[BODY_KEY] = await parse_body(request, route.body)
            key = request.headers.get("Idempotency-Key")
            if key and route.method in ("POST", "DELETE"):
                return await _idempotent(request, route, key)
            return await route.handler(request)
        except OrderhubError as exc:
            return error_response(exc)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("unhandled error", extra={"fields": {"path": request.path}})
            return problem(500, "Internal error", "an unexpected error occurred; it has been logged")

    handler.__name__ = route.handler.__name__
    return handler


async def _idempotent(request: web.Request, route: Route, key: str) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    scope = f"{req_actor(request)}:{route.method}:{request.path}"
    body_hash = hashlib.sha256(await request.read()).hexdigest()
    it = t.idempotency_keys
    async with hub.store.begin() as conn:
        await conn.execute(
            insert_ignore(conn, it, ["scope", "key"]).values(
                scope=scope, key=key[:255], request_hash=body_hash, created_at=now()
            )
        )
        row = (await conn.execute(select(it).where(it.c.scope == scope, it.c.key == key[:255]))).one()
    if row.request_hash != body_hash:
        raise InputError("Idempotency-Key was already used with a different request body; use a new key")
    if row.status_code is not None:
        return web.Response(
            body=dumps(row.response),
            status=row.status_code,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    resp = await route.handler(request)
    if isinstance(resp, web.Response) and resp.status < 500 and resp.body is not None:
        try:
            payload = orjson.loads(resp.body)  # type: ignore[arg-type]
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict) and "secret" in payload:
            payload = {**payload, "secret": "[shown once; not replayed]"}  # secrets are never stored twice
        async with hub.store.begin() as conn:
            await conn.execute(
                it.update()
                .where(it.c.scope == scope, it.c.key == key[:255])
                .values(status_code=resp.status, response=payload)
            )
    return resp
