"""``ConnectorKit``: the standard suite every connector runs on its recorded fixtures."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_args

import httpx
import jsonschema
import orjson
import pytest
import respx
from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

from hub.errors import AuthError
from hub.http import RetryPolicy, client_for
from hub.logging import SECRET_KEYS
from hub.model import Order, OrderStatus
from hub.plugins import (
    Capability,
    Connector,
    InboundEvent,
    Message,
    OrderCancelled,
    OrderUpserted,
    RefundCreated,
    ShipmentConfirmed,
)
from hub.testing._fixtures import Outbound, WebhookFixture, load_webhooks, sample_order

T = TypeVar("T")

#: Fast in-client retries for the kit (real backoff is seconds).
KIT_RETRY = RetryPolicy(attempts=3, initial=0.001, max_backoff=0.005, budget=1.0)
_GENERATED_ID = re.compile(r"^(ord|ful|shp|ret|ref|evt|loc|inb|job|fail|whe|dlv|hld|rpl)_[0-9A-Z]{26}$")
_MESSAGE_TYPES: tuple[type[BaseModel], ...] = tuple(get_args(Message))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion (kit tests are plain functions: no pytest-asyncio mode needed)."""
    return asyncio.run(coro)


def normalize_ids(value: Any) -> Any:
    """``value`` with generated ids (``ord_01J...``) replaced by their prefix, for comparing two parses."""
    if isinstance(value, str) and _GENERATED_ID.match(value):
        return value.split("_", 1)[0] + "_*"
    if isinstance(value, dict):
        return {k: normalize_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_ids(v) for v in value]
    return value


def shape_problems(sent: Any, example: Any, where: str = "body") -> list[str]:
    """How ``sent`` differs in shape from ``example``: missing/unknown keys, other JSON types.
    ``None`` in the example matches anything; list items are checked against the example's first item."""
    if example is None:
        return []
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    k_sent, k_ex = kinds.get(type(sent), type(sent).__name__), kinds.get(type(example), type(example).__name__)
    if sent is None:
        return [f"{where} is null, the API expects {k_ex}"]
    if k_sent != k_ex:
        return [f"{where} is {k_sent} ({sent!r:.40}), the API expects {k_ex}"]
    out: list[str] = []
    if isinstance(example, dict):
        for key in example:
            if key not in sent:
                out.append(f"{where}.{key} is missing")
        for key in sent:
            if key not in example:
                out.append(f"{where}.{key} is not in the API's example")
            else:
                out += shape_problems(sent[key], example[key], f"{where}.{key}")
    elif isinstance(example, list) and example:
        for i, item in enumerate(sent):
            out += shape_problems(item, example[0], f"{where}[{i}]")
    return out


def _is_secret_annotation(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(_is_secret_annotation(a) for a in get_args(annotation))


class ConnectorKit:
    """Subclass it in a connector's tests (name the subclass ``Test...``); set the class attributes,
    override ``sign`` when the connector takes webhooks, and every ``test_kit_*`` below runs::

        class TestAcme(ConnectorKit):
            connector = AcmeConnector
            settings = {"api_key": "test-key", "webhook_secret": "whsec_..."}
            webhooks_dir = Path(__file__).parent / "fixtures" / "webhooks"
            order_created = "order_created"

            def sign(self, body, headers):
                return {**headers, **hub.signing.headers([SECRET], headers["webhook-id"], body)}

    Tests that do not apply to a connector (no webhooks capability, no ``outbound`` cases, no
    commerce fixture named) are deselected at collection (see :meth:`kit_not_applicable`).
    """

    #: The connector class under test.
    connector: ClassVar[type[Connector]]
    #: Good settings for a test connection (secrets are fake).
    settings: ClassVar[dict[str, Any]] = {}
    #: The id of the test connection.
    connection_id: ClassVar[str] = "test-conn"
    #: Folder of recorded deliveries (``NAME.json`` + ``NAME.headers.json``), or give ``webhooks``.
    webhooks_dir: ClassVar[str | Path | None] = None
    webhooks: ClassVar[list[WebhookFixture] | None] = None
    #: Outbound operations with the request shape the real API expects.
    outbound: ClassVar[list[Outbound]] = []
    #: Fixture names of the commerce cases (``None``: the connector does not produce it).
    order_created: ClassVar[str | None] = None
    order_updated: ClassVar[str | None] = None
    order_cancelled: ClassVar[str | None] = None
    refund_created: ClassVar[str | None] = None
    shipment_partial: ClassVar[str | None] = None
    #: For a WMS's partial shipment without an ``order_created`` fixture: what the order held (sku -> qty),
    #: and its id at the WMS (``external_order_id`` of the shipment).
    shipment_order_lines: ClassVar[dict[str, int]] = {}
    shipment_order_id: ClassVar[str | None] = None

    #: Which class attributes each kit case needs (``None``/empty: the case does not apply).
    _NEEDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "test_kit_missing_required_setting_is_refused_naming_the_field": ("<required-setting>",),
        "test_kit_webhook_with_a_good_signature_is_accepted": ("<webhooks>",),
        "test_kit_webhook_with_a_bad_signature_is_refused": ("<webhooks>",),
        "test_kit_every_fixture_maps_to_valid_canonical_messages": ("<webhooks>",),
        "test_kit_parse_is_idempotent": ("<webhooks>",),
        "test_kit_webhook_event_id_is_stable_for_one_delivery": ("<webhooks>",),
        "test_kit_outbound_requests_match_the_api_shape": ("outbound",),
        "test_kit_outbound_retries_429_and_5xx_then_succeeds": ("outbound",),
        "test_kit_reimport_of_the_same_order_changes_nothing": ("order_created",),
        "test_kit_update_after_import_updates": ("order_created", "order_updated"),
        "test_kit_cancel_after_import_cancels": ("order_created", "order_cancelled"),
        "test_kit_partial_shipment": ("shipment_partial",),
        "test_kit_refund": ("order_created", "refund_created"),
    }

    @classmethod
    def kit_not_applicable(cls, test_name: str) -> str | None:
        """Why ``test_name`` does not apply to this connector (``None`` when it does). The kit's pytest
        plugin deselects such cases at collection, so they are neither run nor reported as skipped."""
        for need in cls._NEEDS.get(test_name, ()):
            if need == "<webhooks>":
                if Capability.WEBHOOKS not in cls.connector.capabilities:
                    return f"connector {cls.connector.name} does not declare the webhooks capability"
            elif need == "<required-setting>":
                if not any(f.is_required() for f in cls.connector.Settings.model_fields.values()):
                    return f"{cls.connector.Settings.__name__} has no required setting"
            elif not getattr(cls, need, None):
                return f"{cls.__name__}.{need} is not set"
        return None

    # -- hooks a connector overrides ---------------------------------------------------
    def sign(self, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """``headers`` plus the signature the real system would send for ``body`` with the test secret."""
        raise NotImplementedError(f"{type(self).__name__}.sign(body, headers) must sign webhook fixtures")

    def make_connector(self, transport: httpx.AsyncBaseTransport | None = None) -> Connector:
        """A connection of the connector with ``settings``; its ``http`` goes through ``transport``."""
        from hub.mapping import MappingSet

        cls = self.connector
        conn = cls(
            self.connection_id,
            cls.Settings.model_validate(self.settings),
            None,
            MappingSet.for_connector(cls.mapping_set or cls.name),
        )
        conn.http = client_for(conn, transport=transport or httpx.MockTransport(_no_network), retry=KIT_RETRY)
        return conn

    # -- helpers ---------------------------------------------------------------------
    def fixtures(self) -> list[WebhookFixture]:
        """The webhook fixtures (``webhooks`` or those in ``webhooks_dir``)."""
        if self.webhooks is not None:
            return list(self.webhooks)
        if self.webhooks_dir is not None:
            return load_webhooks(self.webhooks_dir)
        return []

    def fixture(self, name: str) -> WebhookFixture:
        for f in self.fixtures():
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.fixtures()) or "none"
        raise LookupError(f"no webhook fixture named {name!r} (have: {known})")

    def parse(self, fx: WebhookFixture, conn: Connector | None = None) -> tuple[InboundEvent, list[Message]]:
        """Verify, identify and parse one fixture as the hub would."""
        conn = conn or self.make_connector()
        headers = self.sign(fx.body, fx.headers)
        conn.verify_webhook(headers, fx.body)
        event = conn.webhook_event(headers, fx.body)
        return event, conn.parse_webhook(event, headers, fx.body)

    def _webhook_fixtures(self) -> list[WebhookFixture]:
        if Capability.WEBHOOKS not in self.connector.capabilities:
            pytest.fail(
                f"not applicable (the kit plugin deselects this case): connector {self.connector.name} does not declare the webhooks capability"
            )
        fixtures = self.fixtures()
        assert fixtures, "the connector takes webhooks: record fixtures and set webhooks_dir (or webhooks)"
        return fixtures

    def _only(self, messages: list[Message], kind: type[T], fixture: str) -> T:
        found = [m for m in messages if isinstance(m, kind)]
        assert found, f"fixture {fixture!r} gave {[type(m).__name__ for m in messages]}, expected a {kind.__name__}"
        return found[0]

    # -- settings ------------------------------------------------------------------------
    def test_kit_good_settings_are_accepted(self) -> None:
        conn = self.make_connector()
        assert conn.connection_id == self.connection_id
        run(_aclose(conn))

    def test_kit_missing_required_setting_is_refused_naming_the_field(self) -> None:
        fields = self.connector.Settings.model_fields
        required = [name for name, f in fields.items() if f.is_required()]
        if not required:
            pytest.fail(
                f"not applicable (the kit plugin deselects this case): {self.connector.Settings.__name__} has no required setting"
            )
        for name in required:
            partial = {k: v for k, v in self.settings.items() if k != name}
            with pytest.raises(ValidationError) as info:
                self.connector.Settings.model_validate(partial)
            locs = {str(e["loc"][0]) for e in info.value.errors() if e["loc"]}
            assert name in locs, f"leaving out {name!r} was refused, but the error names {locs}"

    def test_kit_unknown_setting_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            self.connector.Settings.model_validate({**self.settings, "no_such_setting_xyz": "1"})

    def test_kit_secrets_are_secretstr_and_never_shown(self) -> None:
        model = self.connector.Settings.model_validate(self.settings)
        secrets: list[str] = []
        for name, f in type(model).model_fields.items():
            if SECRET_KEYS.search(name) or name.endswith("_key"):
                assert _is_secret_annotation(f.annotation), (
                    f"setting {name!r} looks secret: declare it as pydantic.SecretStr so it never shows"
                )
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                secrets.append(value.get_secret_value())
        conn = self.make_connector()
        shown = repr(model) + str(model) + model.model_dump_json() + repr(conn) + str(conn.settings)
        for s in secrets:
            if len(s) >= 4:
                assert s not in shown, "a secret setting appears in repr/str/JSON of the settings"
        run(_aclose(conn))

    # -- webhooks ------------------------------------------------------------------------
    def test_kit_webhook_with_a_good_signature_is_accepted(self) -> None:
        conn = self.make_connector()
        for fx in self._webhook_fixtures():
            conn.verify_webhook(self.sign(fx.body, fx.headers), fx.body)

    def test_kit_webhook_with_a_bad_signature_is_refused(self) -> None:
        conn = self.make_connector()
        for fx in self._webhook_fixtures():
            headers = self.sign(fx.body, fx.headers)
            tampered = fx.body.replace(b"}", b' ,"x":1}', 1) if b"}" in fx.body else fx.body + b" "
            with pytest.raises(AuthError):
                conn.verify_webhook(headers, tampered)
            with pytest.raises(AuthError):
                conn.verify_webhook(fx.headers, fx.body)  # unsigned

    def test_kit_every_fixture_maps_to_valid_canonical_messages(self) -> None:
        conn = self.make_connector()
        for fx in self._webhook_fixtures():
            _, messages = self.parse(fx, conn)
            assert isinstance(messages, list) and messages, f"fixture {fx.name!r} gave no message"
            for m in messages:
                assert isinstance(m, _MESSAGE_TYPES), f"fixture {fx.name!r}: {type(m).__name__} is not a hub message"
                type(m).model_validate(m.model_dump())  # the canonical objects validate (totals, currencies...)
                order = getattr(m, "order", None)
                if isinstance(order, Order):
                    assert order.connection == self.connection_id, (
                        f"{fx.name}: order.connection is not the connection id"
                    )

    def test_kit_parse_is_idempotent(self) -> None:
        conn = self.make_connector()
        for fx in self._webhook_fixtures():
            _, first = self.parse(fx, conn)
            _, second = self.parse(fx, conn)
            dump = [normalize_ids(m.model_dump(mode="json")) for m in first]
            assert dump == [normalize_ids(m.model_dump(mode="json")) for m in second], (
                f"parsing fixture {fx.name!r} twice gave different results"
            )

    def test_kit_webhook_event_id_is_stable_for_one_delivery(self) -> None:
        conn = self.make_connector()
        ids = {}
        for fx in self._webhook_fixtures():
            a = conn.webhook_event(self.sign(fx.body, fx.headers), fx.body)
            b = conn.webhook_event(self.sign(fx.body, fx.headers), fx.body)  # a retry, signed again
            assert a.event_id == b.event_id, f"fixture {fx.name!r}: the event id changed between retries"
            ids[fx.name] = a.event_id
        if len(ids) > 1:
            assert len(set(ids.values())) == len(ids), f"two different deliveries share an event id: {ids}"

    # -- outbound ------------------------------------------------------------------------
    def _outbound(self) -> list[Outbound]:
        if not self.outbound:
            pytest.fail(
                f"not applicable (the kit plugin deselects this case): {type(self).__name__}.outbound lists no outbound operation"
            )
        return list(self.outbound)

    def _route(self, router: respx.Router, conn: Connector, case: Outbound) -> respx.Route:
        url = case.url
        if not url.startswith(("http://", "https://")) and not case.regex:
            url = conn.base_url() + "/" + url.lstrip("/")
        if case.regex:
            return router.route(method=case.method.upper(), url__regex=url)
        parts = httpx.URL(url)
        return router.route(method=case.method.upper(), scheme=parts.scheme, host=parts.host, path=parts.path)

    def test_kit_outbound_requests_match_the_api_shape(self) -> None:
        for case in self._outbound():
            router = respx.Router(assert_all_called=False)
            conn = self.make_connector(httpx.MockTransport(router.async_handler))
            status, body = case.response
            route = self._route(router, conn, case).respond(status, json=body)
            router.route().respond(599, text="unexpected request")
            run(_call_and_close(case.call, conn))
            sent = [c.request for c in router.calls]
            assert route.call_count == 1, (
                f"{case}: expected one {case.method} {case.url}, the connector sent "
                f"{[f'{r.method} {r.url}' for r in sent]}"
            )
            req = route.calls.last.request
            for header in conn.auth_headers():
                assert header in req.headers, f"{case}: the request lacks the auth header {header}"
            if case.schema is not None or case.example is not None:
                payload = orjson.loads(req.content) if req.content else None
                if case.schema is not None:
                    validator = jsonschema.validators.validator_for(case.schema)(case.schema)
                    errors = [
                        f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
                        for e in validator.iter_errors(payload)
                    ]
                    assert not errors, f"{case}: the request body does not fit the API schema: {errors}"
                if case.example is not None:
                    problems = shape_problems(payload, case.example)
                    assert not problems, f"{case}: the request body differs from the API's example: {problems}"

    def test_kit_outbound_retries_429_and_5xx_then_succeeds(self) -> None:
        for case in self._outbound():
            router = respx.Router(assert_all_called=False)
            conn = self.make_connector(httpx.MockTransport(router.async_handler))
            status, body = case.response
            route = self._route(router, conn, case).mock(
                side_effect=[
                    httpx.Response(429, headers={"Retry-After": "0"}, json={"errors": "throttled"}),
                    httpx.Response(503, json={"errors": "unavailable"}),
                    httpx.Response(status, json=body),
                ]
            )
            run(_call_and_close(case.call, conn))
            assert route.call_count == 3, (
                f"{case}: after a 429 and a 503 the connector sent {route.call_count} request(s), expected 3: "
                "send it with hub.http.call(self.http, ...), which retries"
            )

    # -- commerce cases ------------------------------------------------------------------
    def _message(self, attr: str, kind: type[T]) -> tuple[str, T]:
        name = getattr(self, attr)
        if name is None:
            pytest.fail(
                f"not applicable (the kit plugin deselects this case): {type(self).__name__}.{attr} names no fixture"
            )
        _, messages = self.parse(self.fixture(name))
        return name, self._only(messages, kind, name)

    def _imported(self) -> tuple[str, Order]:
        name, msg = self._message("order_created", OrderUpserted)
        return name, msg.order

    def test_kit_reimport_of_the_same_order_changes_nothing(self, orderhub_kit_db: str) -> None:
        name, order = self._imported()
        _, again = self._message("order_created", OrderUpserted)

        async def go() -> list[str]:
            from hub.store import orders

            async with _store(orderhub_kit_db) as store:
                async with store.begin() as c:
                    first = await orders.upsert_order(c, order)
                async with store.begin() as c:
                    second = await orders.upsert_order(c, again.order)
                    stored = await orders.get_by_external(c, order.connection, order.external_id)
                assert stored is not None and stored.id == first.order.id
            return [first.outcome, second.outcome]

        assert run(go()) == ["created", "unchanged"], f"re-importing fixture {name!r} changed the stored order"

    def test_kit_update_after_import_updates(self, orderhub_kit_db: str) -> None:
        _, order = self._imported()
        name, upd = self._message("order_updated", OrderUpserted)
        assert upd.order.external_id == order.external_id, f"{name!r} is not an update of the created order"

        async def go() -> tuple[str, Order]:
            from hub.store import orders

            async with _store(orderhub_kit_db) as store:
                async with store.begin() as c:
                    await orders.upsert_order(c, order)
                async with store.begin() as c:
                    res = await orders.upsert_order(c, upd.order)
                    stored = await orders.get_order(c, res.order.id)
            return res.outcome, stored

        outcome, stored = run(go())
        assert outcome == "updated", f"fixture {name!r} after the created order was {outcome}"
        assert stored.id == order.id or stored.external_id == order.external_id
        assert normalize_ids(stored.model_dump(mode="json", exclude={"id"})) == normalize_ids(
            upd.order.model_dump(mode="json", exclude={"id"})
        )

    def test_kit_cancel_after_import_cancels(self, orderhub_kit_db: str) -> None:
        _, order = self._imported()
        name = self.order_cancelled
        if name is None:
            pytest.fail(
                f"not applicable (the kit plugin deselects this case): {type(self).__name__}.order_cancelled names no fixture"
            )
        _, messages = self.parse(self.fixture(name))
        cancels = [m for m in messages if isinstance(m, OrderCancelled)]
        assert cancels, f"fixture {name!r} gave {[type(m).__name__ for m in messages]}, expected an OrderCancelled"
        cancel = cancels[0]
        assert cancel.external_id == order.external_id, (
            f"{name!r} cancels {cancel.external_id}, not {order.external_id}"
        )

        async def go() -> Order:
            from hub.store import orders

            async with _store(orderhub_kit_db) as store:
                async with store.begin() as c:
                    await orders.upsert_order(c, order)
                async with store.begin() as c:
                    if cancel.order is not None:
                        await orders.upsert_order(c, cancel.order)
                    stored = await orders.get_by_external(c, order.connection, cancel.external_id)
                    assert stored is not None
                    await orders.save_order(c, stored.transition(OrderStatus.CANCELLED))
                    return await orders.get_order(c, stored.id)

        assert run(go()).status == OrderStatus.CANCELLED

    def test_kit_partial_shipment(self, orderhub_kit_db: str) -> None:
        name, msg = self._message("shipment_partial", ShipmentConfirmed)
        if self.order_created is not None:
            _, order = self._imported()
        else:
            assert self.shipment_order_lines, "set shipment_order_lines (sku -> ordered quantity) for the shipment"
            order = sample_order(
                self.connection_id,
                external_id=self.shipment_order_id or msg.external_order_id or "order-1",
                lines=[(sku, q, "10.00") for sku, q in self.shipment_order_lines.items()],
            )
        ordered: dict[str, int] = {}
        for ln in order.lines:
            ordered[ln.sku] = ordered.get(ln.sku, 0) + ln.quantity
        shipped: dict[str, int] = {}
        for sl in msg.shipment.lines:
            shipped[sl.sku] = shipped.get(sl.sku, 0) + sl.quantity
        assert shipped, f"fixture {name!r}: the shipment has no lines"
        for sku, q in shipped.items():
            assert sku in ordered, f"fixture {name!r} ships {sku}, which the order does not hold"
            assert q <= ordered[sku], f"fixture {name!r} ships {q} x {sku}, the order holds {ordered[sku]}"
        assert sum(shipped.values()) < sum(ordered.values()), f"fixture {name!r} is not a partial shipment"
        ref = msg.external_order_id or msg.shipment.external_order_id or msg.fulfillment_id
        assert ref, f"fixture {name!r}: the shipment names no order (external_order_id) or fulfilment"

        async def go() -> Order:
            from hub.store import orders

            async with _store(orderhub_kit_db) as store, store.begin() as c:
                res = await orders.upsert_order(c, order)
                allocated = res.order.transition(OrderStatus.ALLOCATED)
                await orders.save_order(c, allocated)
                await orders.save_order(c, allocated.transition(OrderStatus.PARTIALLY_SHIPPED))
                return await orders.get_order(c, res.order.id)

        assert run(go()).status == OrderStatus.PARTIALLY_SHIPPED

    def test_kit_refund(self) -> None:
        _, order = self._imported()
        name, msg = self._message("refund_created", RefundCreated)
        assert msg.external_order_id == order.external_id, (
            f"{name!r} refunds {msg.external_order_id}, not {order.external_id}"
        )
        refund = msg.refund
        assert refund.amount.currency == order.currency, (
            f"{name!r}: refund in {refund.amount.currency}, order in {order.currency}"
        )
        assert refund.amount.amount > 0, f"{name!r}: the refund amount is not positive"
        assert refund.amount.amount <= order.totals.total.amount, f"{name!r}: the refund exceeds the order total"
        skus = {ln.sku for ln in order.lines}
        for rl in refund.lines:
            assert rl.sku is None or rl.sku in skus, f"{name!r} refunds {rl.sku}, which the order does not hold"


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected outbound request in a kit test: {request.method} {request.url}")


async def _aclose(conn: Connector) -> None:
    if conn.http is not None and hasattr(conn.http, "aclose"):
        await conn.http.aclose()


async def _call_and_close(fn: Callable[[Any], Awaitable[Any]], conn: Connector) -> Any:
    try:
        return await fn(conn)
    finally:
        await _aclose(conn)


class _store:
    """``async with _store(url) as store``: a Store on the kit's throwaway database, closed afterwards."""

    def __init__(self, url: str) -> None:
        from hub.store import Store

        self.store = Store(url)

    async def __aenter__(self) -> Any:
        return self.store

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()


__all__ = ["ConnectorKit", "normalize_ids", "run", "shape_problems"]
