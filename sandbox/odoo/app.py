"""Simulated Odoo ERP over both external APIs (odoo/documentation external_api.rst, external_rpc_api.rst).

- JSON-2 (19.0+): ``POST /json/2/<model>/<method>`` with ``Authorization: bearer <api key>``; body
  ``{ids, context, <named params>}``; 200 with the JSON return value; errors ``{name, message, arguments,
  context, debug}`` with a 4xx/5xx status (401 ``werkzeug.exceptions.Unauthorized`` "Invalid apikey").
- JSON-RPC: ``POST /jsonrpc`` ``{"jsonrpc":"2.0","method":"call","params":{"service":"common"|"object",...}}``
  for ``common.authenticate``/``version`` and ``object.execute_kw(db, uid, key, model, method, args, kwargs)``.

Models: ``res.partner``, ``product.product``, ``sale.order`` (+ ``sale.order.line``), ``account.move``
(+ ``account.move.line``) with ``search``, ``search_read``, ``search_count``, ``read``, ``create``, ``write``,
``action_confirm``, ``action_cancel``, ``action_post``, ``button_cancel``. A second ``sale.order`` with the
same ``client_order_ref`` or a second ``account.move`` with the same ``ref`` counts as a duplicate side effect.
"""

from __future__ import annotations

import fnmatch
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from sandbox._common import (
    DEFAULT_CATALOG,
    Faults,
    Product,
    SimState,
    add_control_routes,
    fault_middleware,
    json_response,
    note,
    read_json,
)

__all__ = ["STATE", "OdooError", "OdooSettings", "OdooState", "make_app"]

MANY2ONE: dict[str, dict[str, str]] = {
    "res.partner": {"country_id": "res.country", "parent_id": "res.partner"},
    "product.product": {},
    "sale.order": {"partner_id": "res.partner", "currency_id": "res.currency"},
    "sale.order.line": {"order_id": "sale.order", "product_id": "product.product"},
    "account.move": {"partner_id": "res.partner", "currency_id": "res.currency", "reversed_entry_id": "account.move"},
    "account.move.line": {"move_id": "account.move", "product_id": "product.product"},
    "res.country": {},
    "res.currency": {},
    "account.tax": {},
}
#: many2many fields of order and invoice lines, given as ``[[6, 0, ids]]`` / ``[[4, id]]`` commands.
MANY2MANY = {"tax_ids", "tax_id"}
ONE2MANY: dict[str, dict[str, tuple[str, str]]] = {
    "sale.order": {"order_line": ("sale.order.line", "order_id")},
    "account.move": {"invoice_line_ids": ("account.move.line", "move_id")},
}
COUNTRIES = {"US": 233, "GB": 231, "DE": 57, "FR": 75, "NL": 166, "CA": 38, "BE": 21, "JP": 113}


@dataclass
class OdooSettings:
    """Database, credentials and products of the simulated ERP."""

    database: str = "orderhub_sandbox"
    username: str = "admin"
    api_key: str = "odoo_sandbox_api_key_0123456789abcdef01234567"
    uid: int = 2
    version: str = "18.0"
    catalog: tuple[Product, ...] = DEFAULT_CATALOG
    tax_rates: tuple[float, ...] = (0.0, 5.0, 6.0, 7.0, 8.0, 10.0, 19.0, 20.0, 21.0)  # sale taxes (account.tax)
    faults: Faults = field(default_factory=Faults)
    seed: int | None = 4


class OdooError(Exception):
    """An Odoo exception: ``name`` is the Python class path, ``status`` the JSON-2 HTTP status."""

    def __init__(self, name: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.name, self.message, self.status = name, message, status

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "message": self.message,
            "arguments": [self.message],
            "context": {},
            "debug": f"Traceback (most recent call last):\n{self.name}: {self.message}",
        }


def _user_error(msg: str) -> OdooError:
    return OdooError("odoo.exceptions.UserError", msg, 422)


def _sort_key(fname: str) -> Callable[[dict[str, Any]], tuple[bool, str, float]]:
    def key(rec: dict[str, Any]) -> tuple[bool, str, float]:
        value = rec.get(fname)
        if isinstance(value, str):
            return (False, value, 0.0)
        return (value in (None, False), "", float(value or 0) if isinstance(value, int | float) else 0.0)

    return key


class OdooState(SimState):
    """Records per model, with a tiny ORM (domains, x2many commands, many2one reads)."""

    name = "odoo"

    def __init__(self, settings: OdooSettings) -> None:
        super().__init__(settings.faults, settings.seed, None)
        self.settings = settings
        self.records: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in MANY2ONE}
        self._next: dict[str, int] = {}
        self._seq = {"sale.order": 0, "account.move": 0}
        for code, cid in COUNTRIES.items():
            self.records["res.country"][cid] = {"id": cid, "name": code, "code": code}
        for i, cur in enumerate(("USD", "EUR", "GBP", "CAD", "JPY"), start=1):
            self.records["res.currency"][i] = {"id": i, "name": cur, "active": True}
        for rate in settings.tax_rates:
            self._insert(
                "account.tax",
                {
                    "name": f"{rate:g}%",
                    "amount": rate,
                    "amount_type": "percent",
                    "type_tax_use": "sale",
                    "active": True,
                },
            )
        self._insert(
            "product.product",
            {"name": "Shipping", "default_code": "SHIPPING", "list_price": 0.0, "type": "service", "active": True},
        )
        for p in settings.catalog:
            self._insert(
                "product.product",
                {
                    "name": p.title,
                    "default_code": p.sku,
                    "list_price": float(p.price),
                    "type": "consu",
                    "qty_available": float(p.stock),
                    "active": True,
                },
            )

    def _insert(self, model: str, vals: dict[str, Any]) -> int:
        n = self._next.get(model, 0) + 1
        if model == "res.partner" and n < 10:
            n = 10  # ids below 10 belong to the company, admin and so on in a real database
        self._next[model] = n
        self.records[model][n] = {"id": n, **vals}
        return n

    # -------------------------------------------------------------------------------------- ORM

    def _table(self, model: str) -> dict[int, dict[str, Any]]:
        if model not in self.records:
            raise OdooError("werkzeug.exceptions.NotFound", f"Object {model} doesn't exist", 404)
        return self.records[model]

    def _get(self, rec: dict[str, Any], model: str, path: str) -> Any:
        head, _, rest = path.partition(".")
        value = rec.get(head, False)
        if rest and value:
            target = MANY2ONE.get(model, {}).get(head)
            sub = self.records.get(target or "", {}).get(value) if target else None
            return self._get(sub, target or "", rest) if sub else False
        return value

    def _term(self, rec: dict[str, Any], model: str, term: list[Any]) -> bool:
        fname, op, value = term
        actual = self._get(rec, model, fname)
        if isinstance(actual, list) and op in ("=", "in") and fname in ONE2MANY.get(model, {}):
            return bool(set(actual) & set(value if isinstance(value, list) else [value]))
        if op in ("=", "=="):
            return bool(actual == value or (value is False and actual in (None, False, "")))
        if op in ("!=", "<>"):
            return not (actual == value or (value is False and actual in (None, False, "")))
        if op == "in":
            return actual in value
        if op == "not in":
            return actual not in value
        if op in ("like", "ilike", "not like", "not ilike", "=like", "=ilike"):
            a, v = str(actual or ""), str(value)
            if "ilike" in op:
                a, v = a.lower(), v.lower()
            hit = fnmatch.fnmatchcase(a, v.replace("%", "*").replace("_", "?")) if op.startswith("=") else v in a
            return not hit if op.startswith("not") else hit
        if op in ("<", ">", "<=", ">="):
            if actual in (None, False):
                return False
            return bool({"<": actual < value, ">": actual > value, "<=": actual <= value, ">=": actual >= value}[op])
        if op == "child_of":
            return bool(actual == value)
        raise OdooError("ValueError", f"Invalid domain operator {op!r} in {term!r}", 422)

    def _match(self, rec: dict[str, Any], model: str, domain: list[Any]) -> bool:
        stack: list[bool] = []
        for token in reversed(domain or []):
            if token == "!":
                stack.append(not stack.pop())
            elif token in ("&", "|"):
                a, b = stack.pop(), stack.pop()
                stack.append((a and b) if token == "&" else (a or b))
            elif isinstance(token, list | tuple) and len(token) == 3:
                stack.append(self._term(rec, model, list(token)))
            elif token in (True, False) or (isinstance(token, list | tuple) and len(token) == 0):
                stack.append(bool(token))
            else:
                raise OdooError("ValueError", f"Invalid domain term {token!r}", 422)
        return all(stack)

    def search(
        self,
        model: str,
        domain: list[Any] | None = None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[int]:
        """Ids matching ``domain`` (active records only where ``active`` exists)."""
        table = self._table(model)
        rows = [r for r in table.values() if r.get("active", True) is not False and self._match(r, model, domain or [])]
        if order:
            for part in reversed([p.strip() for p in order.split(",") if p.strip()]):
                fname, _, direction = part.partition(" ")
                rows.sort(key=_sort_key(fname), reverse=direction.lower() == "desc")
        ids = [r["id"] for r in rows][offset:]
        return ids[:limit] if limit else ids

    def read(self, model: str, ids: list[int], fields: list[str] | None = None) -> list[dict[str, Any]]:
        """Records as ``read`` returns them: many2one ``[id, display_name]``, missing values ``False``."""
        table = self._table(model)
        out = []
        for i in ids:
            rec = table.get(i)
            if rec is None:
                raise OdooError(
                    "odoo.exceptions.MissingError",
                    f"Record does not exist or has been deleted.\n(Record: {model}({i},), User: {self.settings.uid})",
                    404,
                )
            names = fields or [k for k in rec if not k.startswith("_")]
            row: dict[str, Any] = {"id": i}
            for f in names:
                value = rec.get(f, False)
                target = MANY2ONE.get(model, {}).get(f)
                if target and value:
                    sub = self.records[target].get(value, {})
                    value = [value, sub.get("name", "")]
                row[f] = value if value is not None else False
            row.setdefault("display_name", rec.get("name", False))
            out.append(row)
        return out

    def create(self, model: str, vals_list: list[dict[str, Any]]) -> list[int]:
        """Create records; x2many commands ``[0, 0, vals]`` and ``[6, 0, ids]`` are applied."""
        self._table(model)
        ids = []
        for vals in vals_list:
            if not isinstance(vals, dict):
                raise OdooError("ValueError", f"create() expects a dict of values, got {vals!r}", 422)
            ids.append(self._create_one(model, dict(vals)))
        return ids

    def _create_one(self, model: str, vals: dict[str, Any]) -> int:
        for fname, target in MANY2ONE.get(model, {}).items():
            ref = vals.get(fname)
            if ref and ref not in self.records[target]:
                raise OdooError(
                    "odoo.exceptions.ValidationError",
                    f"The value {ref} for {model}.{fname} does not match any {target} record.",
                    422,
                )
        x2many = {k: vals.pop(k) for k in list(vals) if k in ONE2MANY.get(model, {})}
        if model == "sale.order":
            if not vals.get("partner_id"):
                raise OdooError(
                    "odoo.exceptions.ValidationError",
                    "The operation cannot be completed: Missing required value for the field 'Customer' (partner_id).",
                    422,
                )
            ref = vals.get("client_order_ref")
            if ref:
                live = [
                    r
                    for r in self.records[model].values()
                    if r.get("client_order_ref") == ref and r.get("state") != "cancel"
                ]
                if live:
                    self.recorder.duplicate("odoo.sale_order", f"client_order_ref {ref}")
                else:
                    self.recorder.side_effect("odoo.sale_order", str(ref))
            self._seq[model] += 1
            vals = {
                "name": f"S{self._seq[model]:05d}",
                "state": "draft",
                "date_order": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                "currency_id": 1,
                **vals,
            }
        elif model == "account.move":
            vals.setdefault("move_type", "entry")
            key = vals.get("ref") or vals.get("invoice_origin")
            if key:
                live = [
                    r
                    for r in self.records[model].values()
                    if (r.get("ref") or r.get("invoice_origin")) == key
                    and r.get("move_type") == vals["move_type"]
                    and r.get("state") != "cancel"
                ]
                if live:
                    self.recorder.duplicate("odoo.account_move", f"{vals['move_type']} {key}")
                else:
                    self.recorder.side_effect("odoo.account_move", f"{vals['move_type']} {key}")
            vals = {"name": "/", "state": "draft", "payment_state": "not_paid", "invoice_date": False, **vals}
        elif model == "res.partner":
            if not vals.get("name"):
                raise OdooError(
                    "odoo.exceptions.ValidationError",
                    "The operation cannot be completed: Missing required value for the field 'Name' (name).",
                    422,
                )
            vals.setdefault("active", True)
            vals.setdefault("type", "contact")
        elif model == "product.product":
            vals.setdefault("active", True)
        rid = self._insert(model, vals)
        for fname, commands in x2many.items():
            self._apply_x2many(model, rid, fname, commands)
        self._compute(model, rid)
        return rid

    def _apply_x2many(self, model: str, rid: int, fname: str, commands: Any) -> None:
        sub_model, inverse = ONE2MANY[model][fname]
        rec = self.records[model][rid]
        current: list[int] = list(rec.get(fname) or [])
        for cmd in commands or []:
            if not isinstance(cmd, list | tuple) or not cmd:
                raise OdooError("ValueError", f"Invalid x2many command {cmd!r} for {model}.{fname}", 422)
            if cmd[0] == 0:
                line = dict(cmd[2])
                line[inverse] = rid
                for m2m in MANY2MANY & set(line):
                    line[m2m] = self._m2m(line[m2m])
                if sub_model in ("sale.order.line", "account.move.line"):
                    line.setdefault("product_uom_qty" if sub_model == "sale.order.line" else "quantity", 1.0)
                    product = self.records["product.product"].get(line.get("product_id") or 0)
                    if line.get("product_id") and product is None:
                        raise OdooError(
                            "odoo.exceptions.ValidationError",
                            f"The value {line['product_id']} for {sub_model}.product_id does not match any product.product record.",
                            422,
                        )
                    line.setdefault("name", product["name"] if product else "")
                    line.setdefault("price_unit", product["list_price"] if product else 0.0)
                current.append(self._insert(sub_model, line))
            elif cmd[0] == 6:
                current = list(cmd[2])
            elif cmd[0] == 4:
                current.append(int(cmd[1]))
            elif cmd[0] in (2, 3):
                current = [i for i in current if i != cmd[1]]
            elif cmd[0] == 5:
                current = []
        rec[fname] = current

    def _m2m(self, commands: Any) -> list[int]:
        ids: list[int] = []
        for cmd in commands or []:
            if isinstance(cmd, int):
                ids.append(cmd)
            elif cmd and cmd[0] == 6:
                ids = [int(i) for i in cmd[2]]
            elif cmd and cmd[0] == 4:
                ids.append(int(cmd[1]))
            elif cmd and cmd[0] == 5:
                ids = []
        for i in ids:
            if i not in self.records["account.tax"]:
                raise OdooError(
                    "odoo.exceptions.MissingError",
                    f"Record does not exist or has been deleted.\n(Record: account.tax({i},))",
                    404,
                )
        return ids

    def _line_amounts(self, line: dict[str, Any], qty_field: str) -> tuple[Decimal, Decimal]:
        """(untaxed subtotal, tax) of one line: quantity x price_unit less ``discount`` %, taxes in percent."""
        sub = Decimal(str(line.get(qty_field, 1))) * Decimal(str(line.get("price_unit", 0)))
        sub = (sub * (1 - Decimal(str(line.get("discount") or 0)) / 100)).quantize(Decimal("0.01"))
        percent = sum(
            (Decimal(str(self.records["account.tax"][t]["amount"])) for m in MANY2MANY for t in line.get(m) or []),
            Decimal(0),
        )
        line["price_subtotal"] = float(sub)
        return sub, (sub * percent / 100).quantize(Decimal("0.01"))

    def _compute(self, model: str, rid: int) -> None:
        rec = self.records[model][rid]
        if model in ("sale.order", "account.move"):
            sub_model, qty_field, field_ = (
                ("sale.order.line", "product_uom_qty", "order_line")
                if model == "sale.order"
                else ("account.move.line", "quantity", "invoice_line_ids")
            )
            amounts = [self._line_amounts(self.records[sub_model][i], qty_field) for i in rec.get(field_, [])]
            untaxed = sum((a for a, _ in amounts), Decimal(0))
            tax = sum((t for _, t in amounts), Decimal(0))
            rec["amount_untaxed"], rec["amount_tax"], rec["amount_total"] = (
                float(untaxed),
                float(tax),
                float(untaxed + tax),
            )
            if model == "account.move":
                rec["amount_residual"] = rec["amount_total"]
        if "partner_id" in rec or model in ("sale.order", "account.move"):
            partner = self.records["res.partner"].get(rec.get("partner_id") or 0)
            rec["partner_name"] = partner["name"] if partner else False

    def write(self, model: str, ids: list[int], vals: dict[str, Any]) -> bool:
        table = self._table(model)
        for i in ids:
            if i not in table:
                raise OdooError(
                    "odoo.exceptions.MissingError",
                    f"Record does not exist or has been deleted.\n(Record: {model}({i},), User: {self.settings.uid})",
                    404,
                )
            plain = {k: v for k, v in vals.items() if k not in ONE2MANY.get(model, {})}
            table[i].update(plain)
            for k, v in vals.items():
                if k in ONE2MANY.get(model, {}):
                    self._apply_x2many(model, i, k, v)
            self._compute(model, i)
        return True

    def action(self, model: str, method: str, ids: list[int]) -> bool:
        table = self._table(model)
        recs = []
        for i in ids:
            if i not in table:
                raise OdooError(
                    "odoo.exceptions.MissingError",
                    f"Record does not exist or has been deleted.\n(Record: {model}({i},), User: {self.settings.uid})",
                    404,
                )
            recs.append(table[i])
        if (model, method) == ("sale.order", "action_confirm"):
            if any(r["state"] not in ("draft", "sent") for r in recs):
                raise _user_error("Some orders are not in a state requiring confirmation.")
            for r in recs:
                r["state"] = "sale"
        elif (model, method) == ("sale.order", "action_cancel"):
            for r in recs:
                r["state"] = "cancel"
        elif (model, method) == ("account.move", "action_post"):
            for r in recs:
                if r["state"] == "posted":
                    raise _user_error(f"The entry {r['name']} (id {r['id']}) is already posted.")
                if not r.get("invoice_line_ids") and r["move_type"] != "entry":
                    raise _user_error("You need to add a line before posting.")
            for r in recs:
                self._seq["account.move"] += 1
                prefix = {"out_invoice": "INV", "out_refund": "RINV", "in_invoice": "BILL"}.get(r["move_type"], "MISC")
                r.update(
                    {
                        "state": "posted",
                        "name": f"{prefix}/{time.gmtime().tm_year}/{self._seq['account.move']:05d}",
                        "invoice_date": r.get("invoice_date") or time.strftime("%Y-%m-%d", time.gmtime()),
                    }
                )
        elif (model, method) == ("account.move", "button_cancel"):
            for r in recs:
                r["state"] = "cancel"
        else:
            raise OdooError(
                "werkzeug.exceptions.NotFound", f"The method '{method}' does not exist on the model '{model}'", 404
            )
        return True

    def call(self, model: str, method: str, params: dict[str, Any]) -> Any:
        """Run one ORM method with named parameters (the JSON-2 body)."""
        ids = list(params.get("ids") or [])
        if method == "search":
            return self.search(
                model, params.get("domain"), params.get("offset", 0), params.get("limit"), params.get("order")
            )
        if method == "search_count":
            return len(self.search(model, params.get("domain")))
        if method == "search_read":
            found = self.search(
                model, params.get("domain"), params.get("offset", 0), params.get("limit"), params.get("order")
            )
            return self.read(model, found, params.get("fields"))
        if method == "read":
            return self.read(model, ids, params.get("fields"))
        if method == "create":
            vals_list = params.get("vals_list", params.get("vals"))
            return self.create(model, vals_list if isinstance(vals_list, list) else [vals_list or {}])
        if method == "write":
            return self.write(model, ids, params.get("vals") or {})
        if method in ("action_confirm", "action_cancel", "action_post", "button_cancel"):
            return self.action(model, method, ids)
        if method == "fields_get":
            return {}
        raise OdooError(
            "werkzeug.exceptions.NotFound", f"The method '{method}' does not exist on the model '{model}'", 404
        )

    def find(self, model: str, **values: Any) -> list[dict[str, Any]]:
        """Records whose fields equal ``values`` (for tests and reports)."""
        return [r for r in self.records[model].values() if all(r.get(k) == v for k, v in values.items())]


STATE: web.AppKey[OdooState] = web.AppKey("odoo_state", OdooState)

# JSON-RPC positional arguments of each method, mapped to the JSON-2 parameter names.
_POSITIONAL = {
    "search": ["domain", "offset", "limit", "order"],
    "search_count": ["domain"],
    "search_read": ["domain", "fields", "offset", "limit", "order"],
    "read": ["ids", "fields"],
    "create": ["vals_list"],
    "write": ["ids", "vals"],
    "action_confirm": ["ids"],
    "action_cancel": ["ids"],
    "action_post": ["ids"],
    "button_cancel": ["ids"],
    "fields_get": [],
}


def make_app(settings: OdooSettings | None = None) -> web.Application:
    """The simulated ERP as an aiohttp application; its state is ``app[STATE]``."""
    settings = settings or OdooSettings()
    state = OdooState(settings)

    def throttled(request: web.Request) -> web.Response:
        return json_response(
            OdooError("werkzeug.exceptions.TooManyRequests", "Too many requests, please retry later.", 429).body(),
            429,
            {"Retry-After": "1"},
        )

    def server_error(request: web.Request, status: int) -> web.Response:
        name = "werkzeug.exceptions.ServiceUnavailable" if status == 503 else "werkzeug.exceptions.InternalServerError"
        return json_response(
            OdooError(name, "The server is temporarily unable to service your request.", status).body(), status
        )

    app = web.Application(middlewares=[fault_middleware(state, throttled, server_error)])
    app[STATE] = state
    add_control_routes(app, state)
    app.router.add_post("/json/2/{model}/{method}", _json2)
    app.router.add_post("/jsonrpc", _jsonrpc)
    return app


def _note_call(request: web.Request, model: str, method: str, params: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"model": model, "method": method}
    if params.get("ids"):
        fields["ids"] = params["ids"]
    if params.get("domain"):
        fields["domain"] = params["domain"]
    vals = params.get("vals_list", params.get("vals"))
    first = vals[0] if isinstance(vals, list) and vals else vals
    key = None
    if isinstance(first, dict):
        fields["keys"] = sorted(first)
        key = first.get("client_order_ref") or first.get("ref") or first.get("invoice_origin")
    note(request, idempotency_key=key, **fields)


async def _json2(request: web.Request) -> web.Response:
    state = request.app[STATE]
    model, method = request.match_info["model"], request.match_info["method"]
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip(), state.settings.api_key):
        return json_response(OdooError("werkzeug.exceptions.Unauthorized", "Invalid apikey", 401).body(), 401)
    db = request.headers.get("X-Odoo-Database")
    if db is not None and db != state.settings.database:
        return json_response(OdooError("werkzeug.exceptions.NotFound", f"database {db!r} not found", 404).body(), 404)
    params = await read_json(request)
    if not isinstance(params, dict):
        return json_response(
            OdooError("werkzeug.exceptions.BadRequest", "The body must be a JSON object.", 400).body(), 400
        )
    _note_call(request, model, method, params)
    try:
        return json_response(state.call(model, method, params))
    except OdooError as exc:
        return json_response(exc.body(), exc.status)


async def _jsonrpc(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    rid = body.get("id") if isinstance(body, dict) else None
    params = body.get("params", {}) if isinstance(body, dict) else {}
    service, method, args = params.get("service"), params.get("method"), list(params.get("args") or [])
    s = state.settings

    def error(exc: OdooError) -> web.Response:
        return json_response(
            {"jsonrpc": "2.0", "id": rid, "error": {"code": 200, "message": "Odoo Server Error", "data": exc.body()}}
        )

    def ok(result: Any) -> web.Response:
        return json_response({"jsonrpc": "2.0", "id": rid, "result": result})

    note(request, service=service, method=method)
    if service == "common":
        if method == "version":
            return ok(
                {
                    "server_version": s.version,
                    "server_version_info": [*map(int, s.version.split(".")), 0, "final", 0, ""],
                    "server_serie": s.version,
                    "protocol_version": 1,
                }
            )
        if method in ("authenticate", "login"):
            db, login, key = [*args, None, None, None][:3]
            good = (
                db == s.database
                and login == s.username
                and isinstance(key, str)
                and hmac.compare_digest(key, s.api_key)
            )
            return ok(s.uid if good else False)
        return error(
            OdooError("builtins.Exception", f"The method {method!r} does not exist on the service 'common'", 500)
        )
    if service != "object" or method != "execute_kw":
        return error(OdooError("builtins.Exception", f"Unsupported service/method {service}.{method}", 500))
    if len(args) < 5:
        return error(OdooError("builtins.TypeError", "execute_kw() needs db, uid, password, model, method", 500))
    db, uid, key, model, meth = args[:5]
    pos = args[5] if len(args) > 5 else []
    kwargs = args[6] if len(args) > 6 else {}
    if db != s.database or uid != s.uid or not isinstance(key, str) or not hmac.compare_digest(key, s.api_key):
        return error(OdooError("odoo.exceptions.AccessDenied", "Access Denied", 403))
    names = _POSITIONAL.get(str(meth))
    if names is None:
        return error(
            OdooError("builtins.AttributeError", f"The method '{meth}' does not exist on the model '{model}'", 404)
        )
    named: dict[str, Any] = dict(zip(names, pos, strict=False))
    named.update(kwargs or {})
    single = meth == "create" and isinstance(named.get("vals_list"), dict)
    _note_call(request, str(model), str(meth), named)
    try:
        result = state.call(str(model), str(meth), named)
    except OdooError as exc:
        return error(exc)
    return ok(result[0] if single else result)
