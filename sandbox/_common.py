"""Shared machinery of the simulators: call recorder, fault settings and middleware, webhook sender.

Every simulator is an aiohttp application whose state object derives from :class:`SimState`. The
state holds a :class:`Recorder` (every call received, every webhook sent, duplicate side effects),
the :class:`Faults` in force (changeable at runtime through ``POST /_sandbox/faults``), a seeded
random generator and a :class:`WebhookSender`. The control routes under ``/_sandbox/`` are never
faulted and never recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

__all__ = [
    "Call",
    "Delivery",
    "Duplicate",
    "DEFAULT_CATALOG",
    "Faults",
    "Product",
    "Recorder",
    "SimState",
    "WebhookSender",
    "add_control_routes",
    "dumps",
    "fault_middleware",
    "json_response",
    "iso",
    "new_id",
    "note",
    "read_json",
]

CONTROL_PREFIX = "/_sandbox/"


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes, as the real systems send them (the body that gets signed)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def json_response(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON reply with ``application/json; charset=utf-8``."""
    return web.Response(body=dumps(obj), status=status, headers=headers, content_type="application/json")


# --------------------------------------------------------------------------------------------- faults


@dataclass
class Faults:
    """Fault injection knobs of one simulator. Shares are in [0, 1]; times are Unix seconds.

    - ``latency_ms`` / ``jitter_ms``: every API reply is delayed by latency + uniform(0, jitter).
    - ``rate_429``: share of API calls answered with the system's own throttling reply and headers.
    - ``rate_5xx``: share of API calls answered 500 or 503 with the system's error body.
    - ``rate_lost_reply``: share of API calls that take effect but whose reply is lost (answered 504).
    - ``webhook_duplicate``: share of webhooks delivered twice (same id, same body).
    - ``webhook_out_of_order``: share of webhooks held back and delivered after the next one.
    - ``webhook_malformed``: share of webhooks whose body is garbage, signed authentically.
    - ``outage_start`` / ``outage_end``: between them every API call gets 503 and webhooks are held back
      (delivered when the window ends).
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_lost_reply: float = 0.0
    webhook_duplicate: float = 0.0
    webhook_out_of_order: float = 0.0
    webhook_malformed: float = 0.0
    outage_start: float | None = None
    outage_end: float | None = None

    _SHARES = (
        "rate_429",
        "rate_5xx",
        "rate_lost_reply",
        "webhook_duplicate",
        "webhook_out_of_order",
        "webhook_malformed",
    )

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        for name in self._SHARES:
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"fault {name}={value!r} must be a share between 0 and 1")
        for name in ("latency_ms", "jitter_ms"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"fault {name}={getattr(self, name)!r} must not be negative")
        if (self.outage_start is None) != (self.outage_end is None):
            raise ValueError("outage_start and outage_end must be set together (Unix seconds)")
        if self.outage_start is not None and self.outage_end is not None and self.outage_end < self.outage_start:
            raise ValueError(f"outage_end={self.outage_end} is before outage_start={self.outage_start}")

    def in_outage(self, now: float | None = None) -> bool:
        """Whether the outage window covers ``now`` (default: the current time)."""
        if self.outage_start is None or self.outage_end is None:
            return False
        t = time.time() if now is None else now
        return self.outage_start <= t < self.outage_end

    def outage(self, start_in: float, duration: float) -> None:
        """Schedule an outage that starts in ``start_in`` seconds and lasts ``duration`` seconds."""
        start = time.time() + start_in
        self.outage_start, self.outage_end = start, start + duration
        self._validate()

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply changes by name; ``outage_in`` + ``outage_for`` (seconds from now) set the window.

        Raises ValueError naming the bad knob; nothing changes then.
        """
        known = {f.name for f in dataclasses.fields(self)}
        trial = dataclasses.replace(self)
        rel = {k: changes[k] for k in ("outage_in", "outage_for") if k in changes}
        for key, value in changes.items():
            if key in rel:
                continue
            if key not in known:
                raise ValueError(
                    f"unknown fault {key!r}; known: {', '.join(sorted(known | {'outage_in', 'outage_for'}))}"
                )
            if value is not None and not isinstance(value, int | float):
                raise ValueError(f"fault {key}={value!r} must be a number")
            setattr(trial, key, None if value is None else float(value))
        if rel:
            if len(rel) != 2:
                raise ValueError("outage_in and outage_for must be given together (seconds)")
            start = time.time() + float(rel["outage_in"])
            trial.outage_start, trial.outage_end = start, start + float(rel["outage_for"])
        trial._validate()
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(trial, f.name))

    def as_dict(self) -> dict[str, Any]:
        """The knobs as a JSON-able dict."""
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------- recorder


@dataclass
class Call:
    """One request received by a simulator."""

    seq: int
    at: float
    method: str
    path: str
    query: dict[str, str]
    fields: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    status: int | None = None
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Delivery:
    """One webhook message (all of its attempts)."""

    msg_id: str
    topic: str
    target: str
    statuses: list[int | str] = field(default_factory=list)
    ok: bool = False
    fault: str | None = None
    sent_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Duplicate:
    """A side effect requested a second time (e.g. a second order with the same reference).

    ``refused`` when the system turned the repeat down (ShipBob's 422, Shopify's userErrors), so it
    happened only once; otherwise it really happened twice.
    """

    kind: str
    key: str
    at: float
    count: int
    refused: bool = False


class Recorder:
    """Everything a simulator received and sent, in memory."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.deliveries: list[Delivery] = []
        self.duplicates: list[Duplicate] = []
        self.refused: list[Duplicate] = []
        self._effects: dict[str, Counter[str]] = {}
        self._seq = 0

    def record(self, method: str, path: str, query: Mapping[str, str]) -> Call:
        """Start the record of one call."""
        self._seq += 1
        call = Call(self._seq, time.time(), method, path, dict(query))
        self.calls.append(call)
        return call

    def side_effect(self, kind: str, key: str) -> bool:
        """Count one side effect of ``kind`` (e.g. ``shipbob.order``) identified by ``key``.

        Returns True when the same key was seen before: that is a duplicate side effect.
        """
        counter = self._effects.setdefault(kind, Counter())
        counter[key] += 1
        if counter[key] > 1:
            self.duplicates.append(Duplicate(kind, key, time.time(), counter[key]))
            return True
        return False

    def duplicate(self, kind: str, key: str, *, refused: bool = False) -> None:
        """Count a repeat found by the simulator's own rule: done twice, or ``refused`` by the system."""
        counter = self._effects.setdefault(kind, Counter())
        counter[key] += 1
        (self.refused if refused else self.duplicates).append(Duplicate(kind, key, time.time(), counter[key], refused))

    @property
    def refused_duplicates(self) -> int:
        """Repeats of a side effect that the system refused (so it happened once)."""
        return len(self.refused)

    @property
    def duplicate_side_effects(self) -> int:
        """How many side effects were requested again for a key already done."""
        return len(self.duplicates)

    def side_effects(self, kind: str) -> int:
        """How many distinct keys of ``kind`` were done."""
        return len(self._effects.get(kind, ()))

    def find(self, method: str | None = None, path_prefix: str = "") -> list[Call]:
        """Calls by method and path prefix."""
        return [c for c in self.calls if (method is None or c.method == method) and c.path.startswith(path_prefix)]

    def reset(self) -> None:
        """Forget every call, delivery and side effect."""
        self.__init__()  # type: ignore[misc]

    def summary(self) -> dict[str, Any]:
        """Counts for a report."""
        statuses = Counter(str(c.status) for c in self.calls)
        return {
            "calls": len(self.calls),
            "statuses": dict(statuses),
            "faults": dict(Counter(c.fault for c in self.calls if c.fault)),
            "webhooks": {
                "messages": len(self.deliveries),
                "delivered": sum(1 for d in self.deliveries if d.ok),
                "failed": sum(1 for d in self.deliveries if not d.ok and d.statuses),
                "faults": dict(Counter(d.fault for d in self.deliveries if d.fault)),
            },
            "side_effects": {k: len(v) for k, v in self._effects.items()},
            "duplicate_side_effects": self.duplicate_side_effects,
            "duplicates": [dataclasses.asdict(d) for d in self.duplicates],
            "refused_duplicates": self.refused_duplicates,
            "refused": [dataclasses.asdict(d) for d in self.refused],
        }


# ---------------------------------------------------------------------------------------------- state


class SimState:
    """Base of every simulator's state: name, faults, recorder, seeded random, webhook sender."""

    @property
    def refused_duplicates(self) -> int:
        """Repeats the system refused (they did not happen twice)."""
        return self.recorder.refused_duplicates

    name = "sim"

    def __init__(self, faults: Faults | None, seed: int | None, webhook_target: str | None) -> None:
        self.faults = faults if faults is not None else Faults()
        self.recorder = Recorder()
        self.rng = random.Random(seed)
        self.sender = WebhookSender(self, webhook_target)

    @property
    def duplicate_side_effects(self) -> int:
        """Duplicate side effects counted so far."""
        return self.recorder.duplicate_side_effects

    async def drain(self, max_wait: float = 10.0) -> bool:
        """Wait until every webhook queued so far was delivered or gave up; False on timeout."""
        return await self.sender.drain(max_wait)

    async def close(self) -> None:
        """Stop background work (webhook workers, timers)."""
        await self.sender.close()


# aiohttp >= 3.13 wants typed request keys; older versions take a plain string.
_CALL_KEY: Any = web.RequestKey("sandbox_call", Call) if hasattr(web, "RequestKey") else "sandbox_call"


def note(request: web.Request, *, idempotency_key: str | None = None, **fields: Any) -> None:
    """Add key fields (and the idempotency-relevant key) to the record of the current call."""
    call = request.get(_CALL_KEY)
    if isinstance(call, Call):
        call.fields.update(fields)
        if idempotency_key is not None:
            call.idempotency_key = idempotency_key


Responder = Callable[[web.Request], web.StreamResponse]
ErrorResponder = Callable[[web.Request, int], web.StreamResponse]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fault_middleware(state: SimState, throttled: Responder, server_error: ErrorResponder) -> Any:
    """Record every API call, then apply latency, outage (503), throttling (429-like) and 5xx faults.

    ``throttled`` and ``server_error`` build the system's own replies (status, body, headers).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        call = state.recorder.record(request.method, request.path, request.query)
        request[_CALL_KEY] = call
        f = state.faults
        delay = f.latency_ms + (state.rng.uniform(0, f.jitter_ms) if f.jitter_ms else 0.0)
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        resp: web.StreamResponse
        if f.in_outage():
            call.fault = "outage"
            resp = server_error(request, 503)
        elif f.rate_429 and state.rng.random() < f.rate_429:
            call.fault = "throttled"
            resp = throttled(request)
        elif f.rate_5xx and state.rng.random() < f.rate_5xx:
            call.fault = "server_error"
            resp = server_error(request, state.rng.choice((500, 503)))
        else:
            try:
                resp = await handler(request)
            except web.HTTPException as exc:
                call.status = exc.status
                raise
            if f.rate_lost_reply and state.rng.random() < f.rate_lost_reply:
                call.fault = "lost_reply"  # the side effect happened; the client never learns it
                resp = server_error(request, 504)
        call.status = resp.status
        return resp

    return middleware


# ----------------------------------------------------------------------------------------- webhooks

Signer = Callable[[bytes], dict[str, str]]


@dataclass
class _Message:
    delivery: Delivery
    body: bytes
    sign: Signer
    repeat: int = 1


class WebhookSender:
    """Delivers a simulator's webhooks to an injectable target URL with its own bounded retry.

    Messages go through a queue served by ``concurrency`` workers (in order with one worker).
    Faults: duplicates, out-of-order, malformed (signed garbage), held back during an outage.
    """

    def __init__(
        self,
        state: SimState,
        target: str | None,
        *,
        attempts: int = 4,
        backoff: tuple[float, ...] = (0.05, 0.25, 1.0),
        timeout: float = 5.0,
        concurrency: int = 4,
        max_hold: float = 1.0,
    ) -> None:
        self.state = state
        self.target = target
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.concurrency = concurrency
        self.max_hold = max_hold
        self.held: list[_Message] = []
        self._deferred: _Message | None = None
        self._queue: asyncio.Queue[_Message] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._timer: asyncio.Task[None] | None = None
        self._hold: asyncio.TimerHandle | None = None
        self._closed = False
        self._session: aiohttp.ClientSession | None = None
        self.extra_headers: dict[str, str] = {}

    def set_target(self, url: str | None) -> None:
        """Point deliveries at ``url`` (e.g. the hub's ``/webhooks/{connection_id}``) and flush held ones."""
        self.target = url
        self._release()

    def send(self, topic: str, body: bytes, sign: Signer, msg_id: str | None = None) -> Delivery:
        """Queue one message; ``sign(body)`` gives the headers of each attempt."""
        f = self.state.faults
        rng = self.state.rng
        delivery = Delivery(msg_id or str(uuid.uuid4()), topic, self.target or "")
        self.state.recorder.deliveries.append(delivery)
        if f.webhook_malformed and rng.random() < f.webhook_malformed:
            delivery.fault = "malformed"
            body = _garbage(rng, body)
        msg = _Message(delivery, body, sign)
        if f.webhook_duplicate and rng.random() < f.webhook_duplicate:
            delivery.fault = delivery.fault or "duplicate"
            msg.repeat = 2
        if self.target is None or f.in_outage():
            delivery.fault = delivery.fault or "held"
            self.held.append(msg)
            self._arm_timer()
            return delivery
        if f.webhook_out_of_order and self._deferred is None and rng.random() < f.webhook_out_of_order:
            delivery.fault = delivery.fault or "out_of_order"
            self._deferred = msg
            # Nothing may come next: the held-back message goes anyway after ``max_hold`` seconds.
            self._hold = asyncio.get_running_loop().call_later(self.max_hold, self._flush_deferred, msg)
            return delivery
        self._enqueue(msg)
        if self._deferred is not None:
            deferred, self._deferred = self._deferred, None
            self._enqueue(deferred)
        return delivery

    def _flush_deferred(self, msg: _Message) -> None:
        if self._deferred is msg and not self._closed:
            self._deferred = None
            self._enqueue(msg)

    def _enqueue(self, msg: _Message) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        msg.delivery.target = self.target or ""
        self._queue.put_nowait(msg)

    def _release(self) -> None:
        if self.target is None or self.state.faults.in_outage():
            return
        held, self.held = self.held, []
        for msg in held:
            self._enqueue(msg)

    def _arm_timer(self) -> None:
        end = self.state.faults.outage_end
        if self._timer is not None and not self._timer.done():
            return
        if end is None or self.target is None:
            return

        async def wait_and_release() -> None:
            while self.state.faults.in_outage():
                stop = self.state.faults.outage_end or time.time()
                await asyncio.sleep(max(0.01, stop - time.time()))
            self._release()

        self._timer = asyncio.create_task(wait_and_release())

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            msg = await self._queue.get()
            try:
                for _ in range(msg.repeat):
                    await self._deliver(msg)
            finally:
                self._queue.task_done()

    async def _deliver(self, msg: _Message) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout, connect=1.0))
        d = msg.delivery
        d.sent_at = time.time()
        for attempt in range(self.attempts):
            headers = {"Content-Type": "application/json", **self.extra_headers, **msg.sign(msg.body)}
            try:
                async with self._session.post(d.target, data=msg.body, headers=headers) as resp:
                    await resp.read()
                    d.statuses.append(resp.status)
                    if 200 <= resp.status < 300:
                        d.ok = True
                        return
                    if resp.status < 500 and resp.status not in (408, 409, 425, 429):
                        return  # the receiver refused it for good (e.g. 401): do not retry
            except (aiohttp.ClientError, TimeoutError) as exc:
                d.statuses.append(type(exc).__name__)
            if attempt < self.attempts - 1:
                await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])

    async def drain(self, max_wait: float = 10.0) -> bool:
        """Wait for queued (and out-of-order deferred) messages; held ones count once the outage ends."""
        deadline = time.monotonic() + max_wait
        if self._deferred is not None:
            deferred, self._deferred = self._deferred, None
            self._enqueue(deferred)
        while self.held and self.target is not None:
            if time.monotonic() > deadline:
                return False
            self._release()
            if self.held:
                await asyncio.sleep(0.02)
        if self._queue is None:
            return True
        try:
            await asyncio.wait_for(self._queue.join(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Cancel workers and timers, close the HTTP client."""
        self._closed = True
        if self._hold is not None:
            self._hold.cancel()
        tasks = [*self._workers, *([self._timer] if self._timer else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers, self._queue, self._timer = [], None, None
        if self._session is not None:
            await self._session.close()
            self._session = None


def _garbage(rng: random.Random, body: bytes) -> bytes:
    """A malformed body: truncated JSON, JSON of the wrong shape, or bytes that are not UTF-8."""
    kind = rng.randrange(3)
    if kind == 0:
        return body[: max(1, len(body) // 2)]
    if kind == 1:
        return b'{"unexpected": true, "items": "not-a-list"}'
    return b"\xff\xfe" + bytes(rng.randrange(256) for _ in range(32))


# ------------------------------------------------------------------------------------ control routes


def add_control_routes(app: web.Application, state: SimState) -> None:
    """``/_sandbox/calls``, ``/_sandbox/stats``, ``/_sandbox/faults``, ``/_sandbox/webhook-target``,
    ``/_sandbox/webhooks``, ``/_sandbox/reset``: inspection and control, never faulted or recorded."""

    async def calls(request: web.Request) -> web.Response:
        prefix = request.query.get("path", "")
        method = request.query.get("method")
        return json_response({"calls": [c.as_dict() for c in state.recorder.find(method, prefix)]})

    async def stats(request: web.Request) -> web.Response:
        return json_response({"system": state.name, **state.recorder.summary()})

    async def get_faults(request: web.Request) -> web.Response:
        return json_response(state.faults.as_dict())

    async def set_faults(request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("the body must be a JSON object of fault knobs")
            state.faults.update(changes)
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        state.sender._release()
        state.sender._arm_timer()
        return json_response(state.faults.as_dict())

    async def set_target(request: web.Request) -> web.Response:
        body = await request.json()
        url = body.get("url") if isinstance(body, dict) else None
        if url is not None and not isinstance(url, str):
            return json_response({"error": "url must be a string or null"}, status=400)
        state.sender.set_target(url)
        return json_response({"url": url})

    async def webhooks(request: web.Request) -> web.Response:
        return json_response({"deliveries": [d.as_dict() for d in state.recorder.deliveries]})

    async def reset(request: web.Request) -> web.Response:
        state.recorder.reset()
        return json_response({"reset": True})

    app.router.add_get("/_sandbox/calls", calls)
    app.router.add_get("/_sandbox/stats", stats)
    app.router.add_get("/_sandbox/faults", get_faults)
    app.router.add_post("/_sandbox/faults", set_faults)
    app.router.add_post("/_sandbox/webhook-target", set_target)
    app.router.add_get("/_sandbox/webhooks", webhooks)
    app.router.add_post("/_sandbox/reset", reset)

    async def on_cleanup(_app: web.Application) -> None:
        await state.close()

    app.on_cleanup.append(on_cleanup)


# ------------------------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Product:
    """One sellable item, shared by every simulator so SKUs line up across systems."""

    sku: str
    title: str
    price: str  # decimal string in the major unit, as the systems send it
    grams: int = 200
    stock: int = 100


DEFAULT_CATALOG: tuple[Product, ...] = tuple(
    Product(f"SB-{i:04d}", f"Sandbox item {i}", f"{(i * 7) % 90 + 9}.{(i * 13) % 100:02d}", 100 + i * 25, 100)
    for i in range(1, 13)
)


def new_id(rng: random.Random, digits: int = 10) -> int:
    """A positive integer id of ``digits`` digits from the simulator's seeded random."""
    return rng.randrange(10 ** (digits - 1), 10**digits)


def iso(ts: float | None = None, *, ms: bool = False) -> str:
    """UTC ISO-8601 with ``Z`` (``time.time()`` by default)."""
    t = time.time() if ts is None else ts
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return base + (f".{int(t * 1000) % 1000:03d}Z" if ms else "Z")


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 ``HTTPBadRequest`` naming the problem."""
    try:
        return await request.json(loads=json.loads)
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"body is not JSON: {exc}"}), content_type="application/json"
        ) from None
