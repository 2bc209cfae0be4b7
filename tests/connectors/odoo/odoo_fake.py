"""A fake Odoo for the connector tests, speaking both documented APIs.

Shapes follow odoo/documentation content/developer/reference/external_api.rst (JSON-2: ``POST
/json/2/<model>/<method>``, bearer key, named params, 200 with the JSON return value, errors as
``{name, message, arguments, context, debug}`` with a 4xx/5xx status) and external_rpc_api.rst
(JSON-RPC 2.0 ``/jsonrpc``: ``common.authenticate`` then ``object.execute_kw``; errors as HTTP 200
with ``{"error": {"code": 200, "message": "Odoo Server Error", "data": {name, message, ...}}}``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from connectors.odoo import OdooConnector, OdooSettings
from hub.model import Order, new_id

URL = "https://acme.odoo.example"
KEY = "6578616d706c65206a736f6e20617069206b6579"  # the example key of external_api.rst
DB = "acme"
UID = 2

UNAUTHORIZED = {  # verbatim shape of the 401 example in external_api.rst (traceback shortened)
    "name": "werkzeug.exceptions.Unauthorized",
    "message": "Invalid apikey",
    "arguments": ["Invalid apikey", 401],
    "context": {},
    "debug": "Traceback (most recent call last):\n...\nwerkzeug.exceptions.Unauthorized: 401 Unauthorized: Invalid apikey\n",
}


def _match(rec: dict[str, Any], domain: list[Any]) -> bool:
    for field, op, value in domain:
        have = rec.get(field)
        if op == "=" and have != value:
            return False
        if op == "=ilike" and (not isinstance(have, str) or have.lower() != str(value).lower()):
            return False
        if op == "in" and have not in value:
            return False
    return True


class FakeOdoo:
    """Records per model, a log of (model, method, params, ids), and injectable failures."""

    def __init__(self) -> None:
        self.records: dict[str, list[dict[str, Any]]] = {
            "product.product": [
                {"id": 11, "default_code": "TSHIRT-M"},
                {"id": 12, "default_code": "MUG"},
                {"id": 13, "default_code": "SHIPPING"},
            ],
            "account.tax": [{"id": 7, "type_tax_use": "sale", "amount": Decimal("20")}],
            "res.currency": [{"id": 1, "name": "EUR"}, {"id": 2, "name": "USD"}],
            "res.country": [{"id": 75, "code": "FR"}],
            "res.partner": [{"id": 50, "email": "known@example.com", "name": "Known"}],
        }
        self.calls: list[tuple[str, str, dict[str, Any], list[int] | None]] = []
        self.requests: list[httpx.Request] = []
        self.fail: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.next_id = 100
        self.auth_calls = 0

    def execute(self, model: str, method: str, ids: list[int] | None, params: dict[str, Any]) -> Any:
        self.calls.append((model, method, params, ids))
        rows = self.records.setdefault(model, [])
        if method == "search_read":
            found = [r for r in rows if _match(r, params.get("domain", []))]
            if params.get("limit"):
                found = found[: params["limit"]]
            fields = params.get("fields") or []
            return [{k: r.get(k) for k in ["id", *fields]} for r in found]
        if method == "create":
            out = []
            for vals in params["vals_list"]:
                self.next_id += 1
                rec = {"id": self.next_id, **vals}
                if model in ("sale.order", "account.move"):
                    rec.setdefault("state", "draft")
                    rec.setdefault("name", f"{'S' if model == 'sale.order' else 'INV/'}{self.next_id:05d}")
                rows.append(rec)
                out.append(self.next_id)
            return out
        if method in ("action_confirm", "action_post"):
            for r in rows:
                if r["id"] in (ids or []):
                    r["state"] = "sale" if method == "action_confirm" else "posted"
            return True
        raise AssertionError(f"fake Odoo has no {model}.{method}")

    def json2(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"bearer {KEY}":
            return httpx.Response(401, json=UNAUTHORIZED)
        _, _, _, model, method = request.url.path.split("/")
        body = json.loads(request.content, parse_float=Decimal)
        if (model, method) in self.fail:
            status, err = self.fail[(model, method)]
            return httpx.Response(status, json=err)
        ids = body.pop("ids", None)
        body.pop("context", None)
        return httpx.Response(200, content=_dumps(self.execute(model, method, ids, body)))

    def jsonrpc(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        doc = json.loads(request.content, parse_float=Decimal)
        assert doc["jsonrpc"] == "2.0" and doc["method"] == "call"
        p = doc["params"]
        if p["service"] == "common":
            assert p["method"] == "authenticate"
            self.auth_calls += 1
            db, login, key, _ = p["args"]
            ok = db == DB and login == "bot@acme.example" and key == KEY
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": doc["id"], "result": UID if ok else False})
        assert (p["service"], p["method"]) == ("object", "execute_kw")
        db, uid, key, model, method, args, kwargs = p["args"]
        assert (db, uid, key) == (DB, UID, KEY)
        if (model, method) in self.fail:
            _, err = self.fail[(model, method)]
            data = {
                "name": err["name"],
                "debug": "Traceback...",
                "message": err["message"],
                "arguments": [err["message"]],
                "context": {},
            }
            return httpx.Response(
                200,
                json={
                    "jsonrpc": "2.0",
                    "id": doc["id"],
                    "error": {"code": 200, "message": "Odoo Server Error", "data": data},
                },
            )
        ids = args[0] if args else None
        result = self.execute(model, method, ids, kwargs)
        return httpx.Response(200, content=_dumps({"jsonrpc": "2.0", "id": doc["id"], "result": result}))

    def created(self, model: str) -> list[dict[str, Any]]:
        return [c[2] for c in self.calls if c[0] == model and c[1] == "create"]


def _dumps(v: Any) -> bytes:
    return json.dumps(v, default=lambda d: float(d) if isinstance(d, Decimal) else str(d)).encode()


def make_connector(http: httpx.AsyncClient, **over: Any) -> OdooConnector:
    settings = OdooSettings.model_validate(
        {"url": URL, "database": DB, "username": "bot@acme.example", "api_key": KEY, **over}
    )
    return OdooConnector("odoo-main", settings, http=http)


def make_order(email: str = "claire@example.fr") -> Order:
    """EUR, 20 % VAT included: 2 x TSHIRT-M at 25.00 less 5.00 (VAT 7.50), 1 MUG 12.00 (VAT 2.00), shipping 4.90."""

    def m(v: str) -> dict[str, str]:
        return {"amount": v, "currency": "EUR"}

    return Order.model_validate(
        {
            "id": new_id("ord"),
            "connection": "shop",
            "external_id": "5551234",
            "name": "#1042",
            "placed_at": datetime(2026, 3, 1, tzinfo=UTC),
            "currency": "EUR",
            "customer": {"email": email, "name": "Claire Martin", "external_id": "cust-9"},
            "shipping_address": {
                "name": "Claire Martin",
                "line1": "3 rue de la Paix",
                "city": "Paris",
                "postal_code": "75002",
                "country": "FR",
            },
            "taxes_included": True,
            "lines": [
                {
                    "line_no": 1,
                    "sku": "TSHIRT-M",
                    "quantity": 2,
                    "unit_price": m("25.00"),
                    "discount": m("5.00"),
                    "tax_lines": [{"title": "TVA 20%", "rate": "0.2", "amount": m("7.50")}],
                },
                {
                    "line_no": 2,
                    "sku": "MUG",
                    "quantity": 1,
                    "unit_price": m("12.00"),
                    "tax_lines": [{"title": "TVA 20%", "rate": "0.2", "amount": m("2.00")}],
                },
            ],
            "shipping_lines": [
                {
                    "title": "Colissimo",
                    "price": m("4.90"),
                    "tax_lines": [{"title": "TVA 20%", "rate": "0.2", "amount": m("0.82")}],
                }
            ],
            "totals": {
                "subtotal": m("57.00"),
                "shipping": m("4.90"),
                "tax": m("10.32"),
                "discount": m("5.00"),
                "total": m("61.90"),
            },
        }
    )
