"""The Odoo ERP connector: sales orders, invoices and credit notes over JSON-2 (19+) or JSON-RPC (17-18).

Every document carries the hub's id as its reference (``client_order_ref`` on sale.order, ``ref`` on
account.move) and is looked up by it before anything is created, so a replay never creates a second
document and finishes a half-done one (a created but unconfirmed order, an unposted invoice).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr

from connectors.odoo._rpc import dumps, loads, odoo_error
from hub.errors import FatalError, RetriableError
from hub.http import RETRY_STATUSES, RetryPolicy, request_snapshot, response_snapshot, retry_after
from hub.model import Money, Order, OrderLine, Refund, Shipment, TaxLine, quantize
from hub.plugins import Capability, ConnectorSettings, ErpConnector, RemoteResult


class OdooSettings(ConnectorSettings):
    """``[connections.settings]`` of an Odoo connection (see docs/connectors/odoo.md)."""

    url: str = Field(description="the Odoo server, e.g. https://mycompany.odoo.com")
    database: str
    username: str = Field(description="login of the integration user (JSON-RPC authenticates with it)")
    api_key: SecretStr
    api: Literal["json2", "jsonrpc"] = Field(default="json2", description="json2 for Odoo 19+, jsonrpc for 17-18")
    send_database_header: bool = Field(default=True, description="send X-Odoo-Database (JSON-2)")
    tax_map: dict[str, int] = Field(
        default_factory=dict, description="tax title or rate ('0.2') -> account.tax id; else found by rate"
    )
    taxes: Literal["lookup", "odoo"] = Field(
        default="lookup",
        description="lookup: send each line's taxes (tax_map, else account.tax by rate); odoo: let Odoo apply the "
        "product's default taxes and fiscal position",
    )
    company_currency: str | None = Field(
        default=None, description="the Odoo company's currency; documents in it need no res.currency lookup"
    )
    pricelist_ids: dict[str, int] = Field(
        default_factory=dict, description="currency -> product.pricelist id for sales orders in that currency"
    )
    shipping_product: str = Field(default="SHIPPING", description="default_code of the delivery service product")
    line_tax_field: str | None = Field(
        default=None, description="sale.order.line tax field; default tax_ids (json2, 19+) or tax_id (jsonrpc)"
    )


#: Methods that are not safe to repeat blindly inside one job.
_SEND_ONCE = frozenset({"create"})


def _ids(result: Any) -> list[int]:
    if isinstance(result, list):
        return [int(x) for x in result]
    return [int(result)]


def _m2m(ids: Sequence[int]) -> list[Any]:
    return [[6, 0, list(ids)]]


class OdooConnector(ErpConnector):
    """Posts the hub's orders, invoices and credit notes to Odoo."""

    name = "odoo"
    capabilities = frozenset({Capability.POST_SALES_ORDER, Capability.POST_INVOICE, Capability.POST_CREDIT_NOTE})
    Settings: ClassVar[type[ConnectorSettings]] = OdooSettings
    rate_per_second = 5.0
    max_concurrency = 4

    settings: OdooSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._uid: int | None = None
        self._uid_lock = asyncio.Lock()
        self._cache: dict[tuple[str, str], int] = {}
        self._rpc_id = 0

    # -- transport ----------------------------------------------------------------------------
    def base_url(self) -> str:
        return (self.settings.base_url or self.settings.url).rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        if self.settings.api != "json2":
            return {}
        headers = {"Authorization": f"bearer {self.settings.api_key.get_secret_value()}", "User-Agent": "orderhub"}
        if self.settings.send_database_header:
            headers["X-Odoo-Database"] = self.settings.database
        return headers

    def _client(self) -> httpx.AsyncClient:
        if self.http is None:
            raise RuntimeError(f"connection {self.connection_id}: no HTTP client was given to the Odoo connector")
        client: httpx.AsyncClient = self.http
        return client

    def _secrets(self) -> frozenset[str]:
        return frozenset({self.settings.api_key.get_secret_value()})

    async def _post(self, path: str, body: Any, model: str, method: str) -> httpx.Response:
        """POST once, or with the client's retry policy when the method is safe to repeat.

        ``create`` is sent once: a 5xx after Odoo committed could otherwise create twice; the sync
        engine's replay searches by reference first, so it is safe. Odoo's error body is kept for
        :func:`odoo_error`, which is why this does not use ``hub.http.call``.
        """
        client = self._client()
        policy: RetryPolicy = getattr(client, "retry", None) or RetryPolicy()
        attempts = 1 if method in _SEND_ONCE else max(1, policy.attempts)
        waited = 0.0
        for attempt in range(1, attempts + 1):
            delay = min(policy.max_backoff, policy.initial * 2 ** (attempt - 1))
            delay += random.uniform(0, delay)
            try:
                resp = await client.post(
                    f"{self.base_url()}{path}",
                    content=dumps(body),
                    headers={**self.auth_headers(), "Content-Type": "application/json; charset=utf-8"},
                )
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if attempt == attempts or waited + delay > policy.budget:
                    raise RetriableError(
                        f"Odoo {model}.{method} (connection {self.connection_id}) failed after {attempt} "
                        f"attempt(s): {type(exc).__name__}; the sync will retry later; check that the Odoo "
                        "server is reachable",
                        connection=self.connection_id,
                    ) from exc
            else:
                if resp.status_code not in RETRY_STATUSES or attempt == attempts:
                    return resp
                server = retry_after(resp.headers)
                delay = server if server is not None else delay
                if waited + delay > policy.budget:
                    return resp
            await asyncio.sleep(delay)
            waited += delay
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, resp: httpx.Response, error: dict[str, Any] | None, model: str, method: str) -> Exception:
        secrets = self._secrets()
        return odoo_error(
            status=resp.status_code if resp.status_code >= 400 else None,
            error=error,
            model=model,
            method=method,
            where=f"database {self.settings.database}",
            connection=self.connection_id,
            request=request_snapshot(resp.request, secrets),
            response=response_snapshot(resp, secrets),
            retry_after=retry_after(resp.headers),
        )

    def _decode(self, resp: httpx.Response, model: str, method: str) -> Any:
        try:
            return loads(resp.content) if resp.content else None
        except ValueError:
            if resp.status_code >= 400:
                raise self._error(resp, {"message": resp.text[:200]}, model, method) from None
            raise FatalError(
                f"Odoo {model}.{method} (connection {self.connection_id}) answered {resp.status_code} with a body "
                "that is not JSON; check that url points at the Odoo server and api matches its version",
                connection=self.connection_id,
            ) from None

    async def _jsonrpc(self, service: str, method: str, args: list[Any], model: str) -> Any:
        self._rpc_id += 1
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
            "id": self._rpc_id,
        }
        resp = await self._post("/jsonrpc", body, model, method)
        doc = self._decode(resp, model, method)
        if resp.status_code >= 400:
            raise self._error(resp, doc if isinstance(doc, dict) else None, model, method)
        if isinstance(doc, dict) and doc.get("error"):
            err = doc["error"]
            data = err.get("data") if isinstance(err, dict) else None
            info = dict(data) if isinstance(data, dict) else {}
            info.setdefault("message", err.get("message") if isinstance(err, dict) else str(err))
            if isinstance(err, dict) and err.get("code") == 100:  # session expired: authenticate again
                self._uid = None
                info.setdefault("name", "werkzeug.exceptions.ServiceUnavailable")
            raise self._error(resp, info, model, method)
        return doc.get("result") if isinstance(doc, dict) else None

    async def uid(self) -> int:
        """The integration user's id (JSON-RPC ``common.authenticate``), cached per connection."""
        async with self._uid_lock:
            if self._uid is None:
                s = self.settings
                result = await self._jsonrpc(
                    "common", "authenticate", [s.database, s.username, s.api_key.get_secret_value(), {}], "common"
                )
                if not isinstance(result, int) or isinstance(result, bool):
                    raise FatalError(
                        f"Odoo refused the login of {s.username!r} on database {s.database!r} "
                        f"(connection {self.connection_id}): check username, database and api_key",
                        connection=self.connection_id,
                    )
                self._uid = result
            return self._uid

    async def call(self, model: str, method: str, *, ids: Sequence[int] | None = None, **params: Any) -> Any:
        """Call ``model.method`` with named parameters over the configured API; returns the JSON result."""
        if self.settings.api == "json2":
            body: dict[str, Any] = dict(params)
            if ids is not None:
                body["ids"] = list(ids)
            resp = await self._post(f"/json/2/{model}/{method}", body, model, method)
            doc = self._decode(resp, model, method)
            if resp.status_code >= 400:
                raise self._error(resp, doc if isinstance(doc, dict) else None, model, method)
            return doc
        s = self.settings
        uid = await self.uid()
        args: list[Any] = [list(ids)] if ids is not None else []
        return await self._jsonrpc(
            "object",
            "execute_kw",
            [s.database, uid, s.api_key.get_secret_value(), model, method, args, params],
            model,
        )

    # -- lookups ------------------------------------------------------------------------------
    async def _find(self, model: str, domain: list[Any], fields: list[str]) -> dict[str, Any] | None:
        rows = await self.call(model, "search_read", domain=domain, fields=fields, limit=1)
        return rows[0] if rows else None

    async def _cached_id(self, kind: str, key: str, model: str, domain: list[Any]) -> int | None:
        if (kind, key) not in self._cache:
            row = await self._find(model, domain, ["id"])
            if row is None:
                return None
            self._cache[(kind, key)] = int(row["id"])
        return self._cache[(kind, key)]

    async def _country_id(self, code: str) -> int | None:
        return await self._cached_id("country", code, "res.country", [["code", "=", code]])

    async def _currency_id(self, code: str) -> int:
        cid = await self._cached_id("currency", code, "res.currency", [["name", "=", code]])
        if cid is None:
            raise FatalError(
                f"currency {code} is not active in Odoo database {self.settings.database} "
                f"(connection {self.connection_id}); activate it under Accounting > Configuration > Currencies",
                connection=self.connection_id,
            )
        return cid

    async def ensure_partner(self, order: Order) -> int:
        """The res.partner of the order's customer: found by email (or by the customer's reference), else created."""
        cust, addr = order.customer, order.shipping_address or order.billing_address
        email = cust.email if cust else None
        # a guest without email or customer id gets a partner of its own order, found again on a replay
        ref = f"{order.connection}:{cust.external_id}" if cust and cust.external_id else f"hub:{order.id}"
        domain: list[Any] = [["email", "=ilike", email]] if email else [["ref", "=", ref]]
        row = await self._find("res.partner", domain, ["id"])
        if row is not None:
            return int(row["id"])
        name = (cust.name if cust else None) or (addr.name if addr else None) or email or f"Customer {order.id}"
        vals: dict[str, Any] = {"name": name}
        if email:
            vals["email"] = email
        if cust and cust.phone:
            vals["phone"] = cust.phone
        vals["ref"] = ref
        if addr is not None:
            vals.update(
                {
                    k: v
                    for k, v in {
                        "street": addr.line1,
                        "street2": addr.line2,
                        "city": addr.city,
                        "zip": addr.postal_code,
                    }.items()
                    if v
                }
            )
            country = await self._country_id(addr.country)
            if country is not None:
                vals["country_id"] = country
        return _ids(await self.call("res.partner", "create", vals_list=[vals]))[0]

    async def _products(self, skus: Sequence[str]) -> dict[str, int]:
        wanted = sorted(set(skus) - {k for (kind, k) in self._cache if kind == "product"})
        if wanted:
            rows = await self.call(
                "product.product", "search_read", domain=[["default_code", "in", wanted]], fields=["id", "default_code"]
            )
            for row in rows or []:
                self._cache[("product", str(row["default_code"]))] = int(row["id"])
        missing = sorted(s for s in set(skus) if ("product", s) not in self._cache)
        if missing:
            raise FatalError(
                f"no product with internal reference (default_code) {', '.join(missing)} in Odoo database "
                f"{self.settings.database} (connection {self.connection_id}); create it or fix the SKU, then replay",
                connection=self.connection_id,
            )
        return {s: self._cache[("product", s)] for s in skus}

    async def _tax_ids(self, tax_lines: Sequence[TaxLine]) -> list[int]:
        out: list[int] = []
        for t in tax_lines:
            if t.rate == 0 and t.amount.is_zero():
                continue
            key = t.title if t.title in self.settings.tax_map else str(t.rate.normalize())
            if key in self.settings.tax_map:
                out.append(self.settings.tax_map[key])
                continue
            percent = (t.rate * 100).normalize()
            tid = await self._cached_id(
                "tax", key, "account.tax", [["type_tax_use", "=", "sale"], ["amount", "=", percent]]
            )
            if tid is None:
                raise FatalError(
                    f"no sale tax of {percent}% ({t.title}) in Odoo database {self.settings.database} "
                    f"(connection {self.connection_id}); create it or map it in settings.tax_map, then replay",
                    connection=self.connection_id,
                )
            out.append(tid)
        return out

    async def _set_taxes(self, vals: dict[str, Any], field: str, tax_lines: Sequence[TaxLine]) -> None:
        if self.settings.taxes == "lookup":
            vals[field] = _m2m(await self._tax_ids(tax_lines))

    async def _currency(self, vals: dict[str, Any], code: str) -> None:
        if code != self.settings.company_currency:
            vals["currency_id"] = await self._currency_id(code)

    # -- documents ------------------------------------------------------------------------------
    @staticmethod
    def _discount_percent(line: OrderLine) -> Decimal:
        gross = line.unit_price * line.quantity
        if not line.discount or gross.is_zero():
            return Decimal(0)
        return (line.discount.amount * 100 / gross.amount).quantize(Decimal("0.000001"))

    async def _line_vals(self, order: Order, quantities: dict[int, int], tax_field: str, qty_field: str) -> list[Any]:
        lines = [ln for ln in order.lines if quantities.get(ln.line_no)]
        products = await self._products([ln.sku for ln in lines])
        out: list[Any] = []
        for ln in lines:
            vals: dict[str, Any] = {
                "product_id": products[ln.sku],
                qty_field: quantities[ln.line_no],
                "price_unit": ln.unit_price.amount,
            }
            await self._set_taxes(vals, tax_field, ln.tax_lines)
            if ln.discount and not ln.discount.is_zero():
                vals["discount"] = self._discount_percent(ln)
            if ln.title:
                vals["name"] = ln.title
            out.append([0, 0, vals])
        return out

    async def _shipping_vals(self, order: Order, tax_field: str, qty_field: str, with_product: bool) -> list[Any]:
        out: list[Any] = []
        for s in order.shipping_lines:
            if s.net.is_zero():
                continue
            vals: dict[str, Any] = {
                "name": s.title or "Shipping",
                qty_field: 1,
                "price_unit": s.net.amount,
            }
            await self._set_taxes(vals, tax_field, s.tax_lines)
            if with_product:
                vals["product_id"] = (await self._products([self.settings.shipping_product]))[
                    self.settings.shipping_product
                ]
            out.append([0, 0, vals])
        return out

    async def post_sales_order(self, order: Order) -> RemoteResult:
        """sale.order with its lines (products by default_code = SKU, taxes), then ``action_confirm``."""
        existing = await self._find("sale.order", [["client_order_ref", "=", order.id]], ["id", "name", "state"])
        created = existing is None
        if existing is None:
            tax_field = self.settings.line_tax_field or ("tax_ids" if self.settings.api == "json2" else "tax_id")
            quantities = {ln.line_no: ln.open_quantity for ln in order.lines}
            vals: dict[str, Any] = {
                "partner_id": await self.ensure_partner(order),
                "client_order_ref": order.id,
                "origin": order.name or order.external_id,
                "order_line": await self._line_vals(order, quantities, tax_field, "product_uom_qty")
                + await self._shipping_vals(order, tax_field, "product_uom_qty", with_product=True),
            }
            if order.currency in self.settings.pricelist_ids:
                vals["pricelist_id"] = self.settings.pricelist_ids[order.currency]
            so_id = _ids(await self.call("sale.order", "create", vals_list=[vals]))[0]
            state, so_name = "draft", None
        else:
            so_id, state, so_name = int(existing["id"]), str(existing.get("state")), existing.get("name")
            if state == "cancel":
                raise FatalError(
                    f"Odoo sales order {so_name} for hub order {order.id} is cancelled (connection "
                    f"{self.connection_id}); set it back to quotation in Odoo, or delete it to post the order again",
                    connection=self.connection_id,
                )
        if state in ("draft", "sent"):
            await self.call("sale.order", "action_confirm", ids=[so_id])
        return RemoteResult(
            external_id=str(so_id),
            detail={"model": "sale.order", "id": so_id, "name": so_name, "created": created},
        )

    async def _post_move(
        self, ref: str, move_type: str, build: Callable[[], Awaitable[dict[str, Any]]]
    ) -> RemoteResult:
        existing = await self._find(
            "account.move", [["ref", "=", ref], ["move_type", "=", move_type]], ["id", "name", "state"]
        )
        created = existing is None
        if existing is None:
            move_id = _ids(await self.call("account.move", "create", vals_list=[await build()]))[0]
            state, name = "draft", None
        else:
            move_id, state, name = int(existing["id"]), str(existing.get("state")), existing.get("name")
            if state == "cancel":
                raise FatalError(
                    f"Odoo {move_type} {name} (ref {ref}) is cancelled (connection {self.connection_id}); "
                    "reset it to draft in Odoo, or delete it to post it again",
                    connection=self.connection_id,
                )
        if state == "draft":
            await self.call("account.move", "action_post", ids=[move_id])
        return RemoteResult(
            external_id=str(move_id),
            detail={"model": "account.move", "move_type": move_type, "id": move_id, "name": name, "created": created},
        )

    async def post_invoice(self, order: Order, shipment: Shipment | None = None) -> RemoteResult:
        """account.move ``out_invoice`` (ref = hub order id, or the shipment id for a per-shipment invoice),
        its lines with their taxes (Odoo computes the VAT lines from them), then ``action_post``."""
        ref = shipment.id if shipment is not None else order.id

        async def build() -> dict[str, Any]:
            if shipment is not None:
                quantities: dict[int, int] = {}
                for sl in shipment.lines:
                    no = sl.line_no or next((ln.line_no for ln in order.lines if ln.sku == sl.sku), None)
                    if no is not None:
                        quantities[no] = quantities.get(no, 0) + sl.quantity
            else:
                quantities = {ln.line_no: ln.open_quantity for ln in order.lines}
            lines = await self._line_vals(order, quantities, "tax_ids", "quantity")
            if shipment is None:
                lines += await self._shipping_vals(order, "tax_ids", "quantity", with_product=False)
            vals: dict[str, Any] = {
                "move_type": "out_invoice",
                "partner_id": await self.ensure_partner(order),
                "ref": ref,
                "invoice_origin": order.name or order.external_id,
                "invoice_line_ids": lines,
            }
            await self._currency(vals, order.currency)
            return vals

        return await self._post_move(ref, "out_invoice", build)

    async def post_credit_note(self, order: Order, refund: Refund) -> RemoteResult:
        """account.move ``out_refund`` (ref = refund id) for the refunded lines, shipping and restocking fee,
        linked to the order's posted invoice through ``reversed_entry_id`` when there is one."""
        cur = order.currency

        async def build() -> dict[str, Any]:
            products = await self._products([rl.sku for rl in refund.lines if rl.sku])
            lines: list[Any] = []
            line_tax = Money.zero(cur)
            for rl in refund.lines:
                ln = next((x for x in order.lines if x.line_no == rl.line_no), None) or next(
                    (x for x in order.lines if x.sku == rl.sku), None
                )
                tax = rl.tax or Money.zero(cur)
                line_tax = line_tax + tax
                net = rl.amount if order.taxes_included else rl.amount - tax
                qty = rl.quantity or 1
                unit = net.amount / qty
                exact = quantize(unit, cur) == unit
                vals: dict[str, Any] = {
                    "quantity": qty if exact else 1,
                    "price_unit": unit if exact else net.amount,
                    "name": f"{rl.sku} x {rl.quantity}" if rl.sku else "Refund",
                }
                await self._set_taxes(vals, "tax_ids", ln.tax_lines if ln else [])
                if rl.sku:
                    vals["product_id"] = products[rl.sku]
                lines.append([0, 0, vals])
            if refund.shipping is not None and not refund.shipping.is_zero():
                ship_tax = (refund.tax - line_tax) if refund.tax is not None else Money.zero(cur)
                net = refund.shipping if order.taxes_included else refund.shipping - ship_tax
                ship_vals: dict[str, Any] = {"name": "Shipping", "quantity": 1, "price_unit": net.amount}
                await self._set_taxes(ship_vals, "tax_ids", [t for s in order.shipping_lines for t in s.tax_lines])
                lines.append([0, 0, ship_vals])
            if refund.restocking_fee is not None and not refund.restocking_fee.is_zero():
                lines.append(
                    [
                        0,
                        0,
                        {
                            "name": "Restocking fee",
                            "quantity": 1,
                            "price_unit": -refund.restocking_fee.amount,
                            "tax_ids": _m2m([]),
                        },
                    ]
                )
            vals_move: dict[str, Any] = {
                "move_type": "out_refund",
                "partner_id": await self.ensure_partner(order),
                "ref": refund.id,
                "invoice_origin": order.name or order.external_id,
                "invoice_line_ids": lines,
            }
            await self._currency(vals_move, cur)
            invoice = await self._find(
                "account.move",
                [["ref", "=", order.id], ["move_type", "=", "out_invoice"], ["state", "=", "posted"]],
                ["id"],
            )
            if invoice is not None:
                vals_move["reversed_entry_id"] = int(invoice["id"])
            return vals_move

        return await self._post_move(refund.id, "out_refund", build)
