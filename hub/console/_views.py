"""Console pages: the handler wrapper (session, scope, CSRF, access log, errors) and one handler per page."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
from aiohttp import web
from jinja2 import Environment, PackageLoader

from hub.api._routing import HUB_KEY
from hub.console import _data, _session, _svg
from hub.errors import InputError, OrderhubError

# a plain Logger: hub.logging.get_logger's LoggerAdapter drops extra={"fields": ...} on Python 3.11
log = logging.getLogger("hub.console")
DASH = "\u2013"  # shown for a missing value

SESSION_KEY: web.RequestKey[_session.Session] = web.RequestKey("console_session", _session.Session)
Page = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Headers on every console answer: no inline script can run, nothing is cached or framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

NAV = [
    ("dashboard", "/console/", "Dashboard"),
    ("orders", "/console/orders", "Orders"),
    ("inventory", "/console/inventory", "Inventory"),
    ("failures", "/console/failures", "Sync failures"),
    ("webhooks", "/console/webhooks", "Partner webhooks"),
]


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str).decode()


def _when(value: Any) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _money(value: Any, currency: str | None = None) -> str:
    if value is None:
        return DASH
    if isinstance(value, dict):
        return f"{value.get('amount')} {value.get('currency', '')}".strip()
    return f"{value} {currency or ''}".strip()


def _rate(value: Any) -> str:
    if value is None:
        return DASH
    return f"{Decimal(str(value)) * 100:.1f} %"


def safe_url(url: str) -> str:
    """A partner URL for display: no user:password and no query string (either may hold a secret)."""
    try:
        p = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return f"{p.scheme}://{host}{p.path}" + ("?…" if p.query else "")


ENV = Environment(
    loader=PackageLoader("hub.console", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)
ENV.filters.update(pretty=_pretty, when=_when, money=_money, rate=_rate, age=_data.age, safe_url=safe_url)


def render(
    request: web.Request, template: str, status: int = 200, headers: dict[str, str] | None = None, **ctx: Any
) -> web.Response:
    """The page ``template`` as HTML (autoescaped), with the console's security headers."""
    session = request.get(SESSION_KEY)
    html = ENV.get_template(template).render(
        nav=NAV,
        session=session,
        can_ops=bool(session and session.allows("ops")),
        csrf=session.csrf if session else "",
        **ctx,
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location, headers=SECURITY_HEADERS)


def _client(request: web.Request) -> str:
    return request.remote or "-"


def _log(request: web.Request, status: int, started: float, actor: str) -> None:
    log.info(
        "console request",
        extra={
            "fields": {
                "method": request.method,
                "path": request.path,
                "status": status,
                "actor": actor,
                "client": _client(request),
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
        },
    )


def page(scope: str = "read") -> Callable[[Page], Page]:
    """Wrap a console handler: a session is required (else the login page), the token needs ``scope``,
    a POST needs the session's CSRF token; errors become an error page; every request is logged
    (method, path, status, token name; never the token)."""

    def deco(fn: Page) -> Page:
        async def handler(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            hub = request.app[HUB_KEY]
            session = await _session.load(hub, request.cookies.get(_session.COOKIE))
            actor = session.actor if session else "-"
            try:
                if session is None:
                    target = request.path_qs if request.method == "GET" else "/console/"
                    raise redirect("/console/login?" + urlencode({"next": target}))
                request[SESSION_KEY] = session
                if not session.allows(scope):
                    resp: web.StreamResponse = render(
                        request,
                        "error.html",
                        status=403,
                        title="Not allowed",
                        message=f"The token {session.actor!r} lacks the {scope!r} scope this action needs. "
                        "Ask an admin for a token with that scope.",
                    )
                else:
                    if request.method == "POST":
                        form = await request.post()
                        if not session.csrf_ok(str(form.get("csrf", ""))):
                            raise InputError("the form expired or did not come from this console; reload and retry")
                    resp = await fn(request)
            except web.HTTPException as exc:
                _log(request, exc.status, started, actor)
                raise
            except OrderhubError as exc:
                resp = render(request, "error.html", status=exc.status, title=exc.title, message=exc.detail)
            except Exception:
                log.exception("console error", extra={"fields": {"path": request.path}})
                resp = render(
                    request,
                    "error.html",
                    status=500,
                    title="Internal error",
                    message="An unexpected error occurred; it has been logged.",
                )
            _log(request, resp.status, started, actor)
            return resp

        handler.__name__ = fn.__name__
        return handler

    return deco


def sess(request: web.Request) -> _session.Session:
    return request[SESSION_KEY]


def _next_target(value: str | None) -> str:
    # only console paths: never an open redirect
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    p = urlsplit(origin)
    return p.netloc == request.host


async def login(request: web.Request) -> web.StreamResponse:
    """GET: the login form. POST: check the token, start a session, go to the page asked for."""
    started = time.perf_counter()
    hub = request.app[HUB_KEY]
    nxt = _next_target(request.query.get("next"))
    if request.method == "GET":
        resp = render(request, "login.html", next=nxt, error=None)
        _log(request, resp.status, started, "-")
        return resp
    form = await request.post()
    nxt = _next_target(str(form.get("next", "")))
    client = _client(request)
    if not _same_origin(request):
        resp = render(
            request, "login.html", status=403, next=nxt, error="The login form must be sent from this console."
        )
    elif not await _session.login_allowed(hub, client):
        resp = render(
            request,
            "login.html",
            status=429,
            next=nxt,
            error="Too many failed logins from this address; wait 5 minutes.",
        )
    else:
        token = _session.match_token(hub, str(form.get("token", "")))
        if token is None:
            await _session.login_failed(hub, client)
            log.warning("console login failed", extra={"fields": {"client": client}})
            resp = render(request, "login.html", status=401, next=nxt, error="That token is not valid.")
        else:
            s = await _session.create(hub, token)
            log.info("console login", extra={"fields": {"actor": s.actor, "scope": s.scope, "client": client}})
            out = redirect(nxt)
            out.set_cookie(
                _session.COOKIE,
                s.sid,
                max_age=_session.SESSION_TTL,
                path="/console",
                httponly=True,
                samesite="Strict",
                secure=request.secure or request.headers.get("X-Forwarded-Proto") == "https",
            )
            _log(request, 303, started, s.actor)
            raise out
    _log(request, resp.status, started, "-")
    return resp


@page("read")
async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (POST with the CSRF token)."""
    await _session.destroy(request.app[HUB_KEY], sess(request).sid)
    out = redirect("/console/login")
    out.del_cookie(_session.COOKIE, path="/console")
    raise out


async def root_redirect(request: web.Request) -> web.StreamResponse:
    raise redirect("/console/")


# --------------------------------------------------------------------------- dashboard


@page("read")
async def dashboard(request: web.Request) -> web.StreamResponse:
    """Throughput, queues, lag, failures and KPIs, with charts over time."""
    hub = request.app[HUB_KEY]
    d = await _data.dashboard(hub)
    charts = {
        "throughput": _svg.bar_chart(
            d.orders_per_minute, title="Orders created per minute (last hour)", first_label="-60 min", last_label="now"
        ),
        "depth": _svg.line_chart(
            d.depth_history,
            title="Queue depth",
            first_label=_depth_span(len(next(iter(d.depth_history.values()), []))),
            last_label="now",
        ),
        "failures": _svg.bar_chart(
            d.failures_per_hour,
            title="Sync failures per hour (last 24 h)",
            first_label="-24 h",
            last_label="now",
            color=_svg.PALETTE[3],
        ),
    }
    return render(request, "dashboard.html", active="dashboard", d=d, charts=charts, flash=None)


def _depth_span(samples: int) -> str:
    minutes = samples * _data.DEPTH_SAMPLE_EVERY / 60
    return (
        f"-{minutes:.0f} min"
        if minutes >= 2
        else f"{samples} sample(s), one per {_data.DEPTH_SAMPLE_EVERY:.0f} s or more"
    )


# --------------------------------------------------------------------------- orders

ORDER_STATUSES = [
    "received",
    "on_hold",
    "backordered",
    "partially_allocated",
    "allocated",
    "released",
    "partially_shipped",
    "shipped",
    "delivered",
    "cancelled",
]


def _q(request: web.Request, name: str) -> str | None:
    v = request.query.get(name, "").strip()
    return v or None


def _page_url(request: web.Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    q = {k: v for k, v in request.query.items() if k != "cursor" and v}
    q["cursor"] = cursor
    return f"{request.path}?{urlencode(q)}"


@page("read")
async def orders(request: web.Request) -> web.StreamResponse:
    """Search orders by external id, status and connection; newest first, cursor paging."""
    from hub.store import orders as repo

    hub = request.app[HUB_KEY]
    status = _q(request, "status")
    if status and status not in ORDER_STATUSES:
        raise InputError(f"unknown order status {status!r}; pick one of the list")
    async with hub.store.connect() as conn:
        items, nxt = await repo.list_orders(
            conn,
            limit=50,
            cursor=_q(request, "cursor"),
            status=status,
            connection=_q(request, "connection"),
            external_id=_q(request, "external_id"),
        )
    return render(
        request,
        "orders.html",
        active="orders",
        orders=items,
        statuses=ORDER_STATUSES,
        connections=sorted([*hub.connections, "api"]),
        q=request.query,
        next_url=_page_url(request, nxt),
    )


@page("read")
async def order_detail(request: web.Request) -> web.StreamResponse:
    """One order: lines, status timeline, allocation explanation, holds, fulfilment, shipments, money trail."""
    from hub.store import orders as repo

    hub = request.app[HUB_KEY]
    async with hub.store.connect() as conn:
        order = await repo.get_order(conn, request.match_info["id"])
        timeline = await repo.timeline(conn, order.id)
        fulfillments, shipments = await _data.order_logistics(conn, order.id)
        trail = await _data.money_trail(conn, order)
    allocations = [d for d in order.decisions if d.kind == "allocation"]
    other_decisions = [d for d in order.decisions if d.kind != "allocation"]
    return render(
        request,
        "order.html",
        active="orders",
        o=order,
        timeline=timeline,
        allocation_decisions=allocations,
        other_decisions=other_decisions,
        fulfillments=fulfillments,
        shipments=shipments,
        trail=trail,
    )


# --------------------------------------------------------------------------- inventory


@page("read")
async def inventory(request: web.Request) -> web.StreamResponse:
    """Stock by SKU and location, channel ATP and the newest ledger rows; without a SKU, a SKU list."""
    from hub.allocation import atp_for_channel
    from hub.orders import stock
    from hub.store import inventory as inv

    hub = request.app[HUB_KEY]
    sku = _q(request, "sku")
    async with hub.store.connect() as conn:
        if sku is None:
            rows = await _data.skus(conn, _q(request, "prefix"))
            return render(request, "inventory.html", active="inventory", sku=None, skus=rows, q=request.query)
        levels = await inv.levels(conn, [sku])
        ledger = await _data.recent_ledger(conn, sku)
    names = {loc.id: loc.name for loc in hub.config.locations}
    channels = [
        (cid, atp_for_channel(levels, hub.config.locations, cid, hub.config.allocation.channel_buffer))
        for cid in stock.channel_connections(hub)
    ]
    return render(
        request,
        "inventory.html",
        active="inventory",
        sku=sku,
        levels=levels,
        names=names,
        channels=channels,
        ledger=ledger,
        q=request.query,
    )


# --------------------------------------------------------------------------- sync failures


def _time_param(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{name} is not a date and time: {value!r} (e.g. 2026-01-31T14:00)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _failure_filter(get: Callable[[str], str | None]) -> Any:
    from hub.sync.failures import FailureFilter

    status = get("status") or "open"
    if status not in ("open", "resolved", "all"):
        raise InputError(f"status must be open, resolved or all, not {status!r}")
    return FailureFilter(
        get("connection"),
        get("operation"),
        get("error"),
        _time_param(get("since"), "since"),
        _time_param(get("until"), "until"),
        status,
    )


@page("read")
async def failures(request: web.Request) -> web.StreamResponse:
    """Dead-lettered syncs filtered by connection, operation, error text and time."""
    from hub.sync.failures import list_failures

    hub = request.app[HUB_KEY]
    flt = _failure_filter(lambda n: _q(request, n))
    async with hub.store.connect() as conn:
        items, nxt = await list_failures(conn, flt, limit=50, cursor=_q(request, "cursor"))
    flash = await _session.pop_flash(hub, sess(request))
    return render(
        request,
        "failures.html",
        active="failures",
        items=items,
        q=request.query,
        fstatus=flt.status,
        connections=sorted(hub.connections),
        next_url=_page_url(request, nxt),
        flash=flash,
    )


@page("read")
async def failure_detail(request: web.Request) -> web.StreamResponse:
    """One failure: errors per attempt, the request and response (redacted), the replays."""
    from hub.sync.failures import get_failure

    hub = request.app[HUB_KEY]
    async with hub.store.connect() as conn:
        f = await get_failure(conn, request.match_info["id"])
    flash = await _session.pop_flash(hub, sess(request))
    return render(request, "failure.html", active="failures", f=f, flash=flash)


@page("ops")
async def failure_replay(request: web.Request) -> web.StreamResponse:
    """Replay one failure now with the current code and mappings; the result is shown on its page."""
    from hub.sync.failures import replay_one

    hub = request.app[HUB_KEY]
    s = sess(request)
    fid = request.match_info["id"]
    r = await replay_one(hub, fid, actor=s.actor)
    log.info("console replay", extra={"fields": {"actor": s.actor, "failure_id": fid, "result": r.result}})
    kind = "ok" if r.result in ("resolved", "already_resolved") else "error"
    msg = f"Replay of {fid}: {r.result.replace('_', ' ')}" + (f": {r.detail}" if r.detail else "")
    await _session.flash(hub, s, kind, msg)
    raise redirect(f"/console/failures/{fid}")


#: The most failures one console click replays (the CLI has no such limit).
REPLAY_ALL_LIMIT = 1000


@page("ops")
async def failures_replay_matching(request: web.Request) -> web.StreamResponse:
    """Replay every open failure matching the filter in the form (oldest first, at most REPLAY_ALL_LIMIT)."""
    from hub.sync.failures import replay_matching

    hub = request.app[HUB_KEY]
    s = sess(request)
    form = await request.post()

    def get(name: str) -> str | None:
        v = str(form.get(name, "")).strip()
        return v or None

    flt = _failure_filter(get)
    flt.status = "open"
    results = await replay_matching(hub, flt, actor=s.actor, limit=REPLAY_ALL_LIMIT)
    summary: dict[str, int] = {}
    for r in results:
        summary[r.result] = summary.get(r.result, 0) + 1
    log.info("console replay matching", extra={"fields": {"actor": s.actor, "count": len(results), **summary}})
    text = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(summary.items())) or "nothing matched"
    await _session.flash(hub, s, "error" if summary.get("failed") else "ok", f"Replayed {len(results)}: {text}")
    back = {k: v for k in ("connection", "operation", "error", "since", "until") if (v := get(k))}
    back["status"] = "all"
    raise redirect("/console/failures?" + urlencode(back))


# --------------------------------------------------------------------------- partner webhooks


@page("read")
async def webhooks(request: web.Request) -> web.StreamResponse:
    """Partner endpoints and the delivery log (filter by endpoint, status, event type)."""
    from hub import events

    hub = request.app[HUB_KEY]
    endpoints, _ = await events.list_endpoints(hub, limit=200)
    deliveries, nxt = await events.list_deliveries(
        hub,
        endpoint_id=_q(request, "endpoint_id"),
        status=_q(request, "status"),
        event_type=_q(request, "event_type"),
        limit=50,
        cursor=_q(request, "cursor"),
    )
    flash = await _session.pop_flash(hub, sess(request))
    return render(
        request,
        "webhooks.html",
        active="webhooks",
        endpoints=endpoints,
        deliveries=deliveries,
        q=request.query,
        next_url=_page_url(request, nxt),
        flash=flash,
    )


@page("read")
async def delivery_detail(request: web.Request) -> web.StreamResponse:
    """One delivery with its attempts log."""
    from hub import events

    hub = request.app[HUB_KEY]
    d = await events.get_delivery(hub, request.match_info["id"])
    ep = await events.get_endpoint(hub, d.endpoint_id)
    flash = await _session.pop_flash(hub, sess(request))
    return render(request, "delivery.html", active="webhooks", d=d, ep=ep, flash=flash)


@page("ops")
async def delivery_replay(request: web.Request) -> web.StreamResponse:
    """Send a delivery again (same webhook-id, fresh retry schedule); the worker delivers it."""
    from hub import events

    hub = request.app[HUB_KEY]
    s = sess(request)
    did = request.match_info["id"]
    d = await events.replay_delivery(hub, did, actor=s.actor)
    log.info("console delivery replay", extra={"fields": {"actor": s.actor, "delivery_id": did}})
    await _session.flash(hub, s, "ok", f"Delivery {did} queued again (status {d.status}); the worker sends it.")
    raise redirect(f"/console/webhooks/deliveries/{did}")


@page("ops")
async def endpoint_replay(request: web.Request) -> web.StreamResponse:
    """Re-enable an endpoint (when disabled), queue its failed deliveries since a time again and send
    the events it missed; the result is shown on the webhooks page."""
    from hub import events

    hub = request.app[HUB_KEY]
    s = sess(request)
    eid = request.match_info["id"]
    form = await request.post()
    since = _time_param(str(form.get("since", "")).strip() or None, "since")
    if since is None:
        raise InputError("give the time to replay from (since), e.g. 2026-01-31T14:00 UTC")
    r = await events.replay_endpoint(hub, eid, since, actor=s.actor)
    log.info("console endpoint replay", extra={"fields": {"actor": s.actor, "endpoint_id": eid, **r.model_dump()}})
    msg = f"Endpoint {eid}: {r.replayed} failed deliveries queued again, {r.backfilled} missed events queued"
    await _session.flash(hub, s, "ok", msg + ("; the endpoint is active again." if r.reenabled else "."))
    raise redirect("/console/webhooks?" + urlencode({"endpoint_id": eid}))
