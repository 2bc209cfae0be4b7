"""Compiling a parsed mapping file into a tree of nodes, and running it on a payload.

Running is the hot path (every inbound order): expressions are compiled once, and the common
forms (dotted paths, ``||``, ``&&``, ``!``, ``[]`` and ``[?...]`` projections) run as plain Python
with JMESPath's results; each field runs as one function built at the first run (:meth:`ValueNode.fast`),
and the general :meth:`ValueNode.run` only runs to record an error or when ``track`` asks for the
origin of every value. Field paths for error messages are only built when something fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from numbers import Number
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from hub.mapping._loader import LineDict, error
from hub.mapping._transforms import TYPES, TransformError, decimal_sum, split_list, to_decimal, to_money

#: A compiled expression: (current item, payload root, context) -> value.
Getter = Callable[[Any, Any, Any], Any]

_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SOURCES = ("path", "value", "concat", "index")

#: What a field's fast function returns when the general path must run (to record an error).
SLOW: Any = object()

#: A JMESPath expression as plain Python: value -> result.
Fn = Callable[[Any], Any]


def _dig(keys: tuple[str, ...]) -> Fn:
    if len(keys) == 1:
        k0 = keys[0]

        def one(obj: Any) -> Any:
            return obj.get(k0) if isinstance(obj, dict) else None

        return one

    def many(obj: Any) -> Any:
        for k in keys:
            if not isinstance(obj, dict):
                return None
            obj = obj.get(k)
        return obj

    return many


def _falsy(v: Any) -> bool:
    """JMESPath's false values: null, false, and empty text, list or object (0 is true)."""
    return v is None or v is False or (isinstance(v, (str, list, dict)) and not v)


def _identity(obj: Any) -> Any:
    return obj


def _negate(inner: Fn) -> Fn:
    def negate(obj: Any) -> Any:
        v: Any = inner(obj)
        if v == 0 and isinstance(v, Number) and not isinstance(v, bool):
            return False  # JMESPath: !0 is false
        return not v

    return negate


def _either(left: Fn, right: Fn) -> Fn:
    def either(obj: Any) -> Any:
        v = left(obj)
        return right(obj) if _falsy(v) else v

    return either


def _both(left: Fn, right: Fn) -> Fn:
    def both(obj: Any) -> Any:
        v = left(obj)
        return v if _falsy(v) else right(obj)

    return both


def _flatten(inner: Fn) -> Fn:
    def flatten(obj: Any) -> Any:
        base = inner(obj)
        if not isinstance(base, list):
            return None
        out: list[Any] = []
        for e in base:
            if isinstance(e, list):
                out.extend(e)
            else:
                out.append(e)
        return out

    return flatten


def _project(base_of: Fn, each: Fn, keep: Fn | None) -> Fn:
    """A projection (``keep`` None) or a filter projection: ``each`` of the (kept) items, nulls dropped."""

    def project(obj: Any) -> Any:
        base = base_of(obj)
        if not isinstance(base, list):
            return None
        out = []
        for e in base:
            if keep is not None and _falsy(keep(e)):
                continue
            v = each(e)
            if v is not None:
                out.append(v)
        return out

    return project


#: The JMESPath node types that :func:`_translate` runs as plain Python.
_NATIVE = frozenset(
    {
        "field",
        "identity",
        "current",
        "subexpression",
        "or_expression",
        "and_expression",
        "not_expression",
        "flatten",
        "projection",
        "filter_projection",
    }
)


def _translate(node: dict[str, Any]) -> Fn | None:
    """Plain Python with the results of jmespath's interpreter for the common node types (fields,
    sub-expressions, ``||``, ``&&``, ``!``, projections ``[]``, filters ``[?...]``); None when the
    expression has another node type (it then runs on JMESPath)."""
    kind = node["type"]
    if kind not in _NATIVE:
        return None
    children: list[dict[str, Any]] = node.get("children") or []
    if kind == "field":
        return _dig((node["value"],))
    if kind in ("identity", "current"):
        return _identity
    if kind == "subexpression" and all(c["type"] == "field" for c in children):
        return _dig(tuple(c["value"] for c in children))
    parts = [_translate(c) for c in children]
    fns = [p for p in parts if p is not None]
    if len(fns) != len(parts) or not fns:
        return None
    if kind == "subexpression":

        def chain(obj: Any) -> Any:
            for f in fns:
                obj = f(obj)
            return obj

        return chain
    if kind in ("or_expression", "and_expression") and len(fns) == 2:
        left, right = fns
        return _either(left, right) if kind == "or_expression" else _both(left, right)
    if kind == "not_expression" and len(fns) == 1:
        return _negate(fns[0])
    if kind == "flatten" and len(fns) == 1:
        return _flatten(fns[0])
    if kind == "projection" and len(fns) == 2:
        return _project(fns[0], fns[1], None)
    if kind == "filter_projection" and len(fns) == 3:
        return _project(fns[0], fns[1], fns[2])
    return None


def _nothing(item: Any, root: Any, ctx: Any) -> None:
    return None


def _bind(get: Fn, base: str) -> Getter:
    if base == "root":
        return lambda item, root, ctx: get(root)
    if base == "ctx":
        return lambda item, root, ctx: get(ctx)
    return lambda item, root, ctx: get(item)


def _path(keys: tuple[str, ...], base: str) -> Getter:
    """A dotted path as one function of (item, root, ctx) (the most common expression: no wrapper call)."""
    if base == "ctx":
        return _bind(_dig(keys), base)
    on_root = base == "root"
    if len(keys) == 1:
        k0 = keys[0]

        def one(item: Any, root: Any, ctx: Any) -> Any:
            obj = root if on_root else item
            return obj.get(k0) if isinstance(obj, dict) else None

        return one

    def many(item: Any, root: Any, ctx: Any) -> Any:
        obj = root if on_root else item
        for k in keys:
            if not isinstance(obj, dict):
                return None
            obj = obj.get(k)
        return obj

    return many


def compile_expression(text: str) -> Getter:
    """Compile ``text``: ``$.a.b`` reads from the payload root, ``$ctx.a`` from the context, anything
    else from the current item. Raises ``ValueError`` with the JMESPath syntax error.

    The common forms run as plain Python (same results as JMESPath, several times faster)."""
    base = "item"
    rest = text.strip()
    if rest == "$":
        return lambda item, root, ctx: root
    if rest.startswith("$ctx."):
        base, rest = "ctx", rest[5:]
    elif rest.startswith("$."):
        base, rest = "root", rest[2:]
    if _SIMPLE.match(rest):
        return _path(tuple(rest.split(".")), base)
    try:
        parsed = jmespath.compile(rest)
    except JMESPathError as exc:
        raise ValueError(f"invalid JMESPath expression {text!r}: {exc}") from None
    native = _translate(parsed.parsed)
    return _bind(native if native is not None else parsed.search, base)


def jsonable(value: Any) -> Any:
    """Decimals as strings, datetimes as ISO-8601, recursively."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass
class Run:
    """State of one application of a mapping to one payload."""

    file: str
    root: Any
    ctx: Any
    track: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: canonical field path -> (mapping line, raw payload value); filled when ``track``.
    produced: dict[str, tuple[int, Any]] = field(default_factory=dict)

    def fail(self, line: int, where: str, raw: Any, message: str) -> None:
        self.errors.append(error(self.file, line, where, jsonable(raw), message))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class Node:
    name: str
    line: int

    def run(self, item: Any, index: int, run: Run, prefix: str) -> Any:
        raise NotImplementedError


class ValueNode(Node):
    """A scalar (or list of scalars) field: a source, then enum/lookup, then a type."""

    def __init__(self, name: str, line: int) -> None:
        self.name = name
        self.line = line
        self.get: Getter | None = None
        self.const: Any = None
        self.concat: list[Getter] | None = None
        self.separator = " "
        self.index_base: int | None = None
        self.type: str | None = None
        self.convert: Callable[[Any], Any] | None = None
        self.currency: Getter | None = None
        self.sum = False
        self.minus: Getter | None = None
        self.split: str | None = None
        self.enum: dict[str, Any] | None = None
        self.lookup: str | None = None
        self.lookup_ctx: Getter | None = None
        self.lookups: dict[str, Any] = {}
        self.has_otherwise = False
        self.otherwise: Any = None
        self.has_default = False
        self.default: Any = None
        self.required = False
        self.hint = ""

    def _source(self) -> Getter | None:
        """The raw value as a function of (item, root, ctx); None for ``index:`` (it needs the index)."""
        if self.get is not None:
            return self.get
        if self.concat is not None:
            parts, sep = self.concat, self.separator

            def concat(item: Any, root: Any, ctx: Any) -> Any:
                values = [p(item, root, ctx) for p in parts]
                return sep.join(str(v) for v in values if v not in (None, "")) or None

            return concat
        if self.index_base is not None:
            return None
        const = self.const
        return lambda item, root, ctx: const

    def fast(self) -> Getter | None:
        """This field as one function of (item, root, ctx), for runs without ``track``; None when
        only :meth:`run` can do it (an ``index:`` field).

        The function returns what :meth:`run` returns, or :data:`SLOW` where :meth:`run` would record
        an error: the caller then calls :meth:`run`, which records it."""
        src = self._source()
        if src is None:
            return None
        typ, convert, summed, required = self.type, self.convert, self.sum, self.required
        has_default, default, split, enum = self.has_default, self.default, self.split, self.enum
        lookup = self.lookup is not None or self.lookup_ctx is not None
        plain = typ is None and split is None and enum is None and not lookup
        if plain and self.get is not None and not (summed or required or has_default):
            return src  # a path and nothing else: its value as it is (None leaves the field out)
        money, minus = typ == "money", self.minus
        if money and self.currency is None:
            return None
        currency: Getter = self.currency or _nothing
        want_list, table_of, mapped = typ == "list", self._table, self._map

        def field(item: Any, root: Any, ctx: Any) -> Any:
            raw = src(item, root, ctx)
            if (raw is None or (required and raw == "")) and not summed:
                if not has_default:
                    return SLOW if required else None
                raw = default
            value = raw
            try:
                if split is not None:
                    value = split_list(value, split)
                if enum is not None:
                    value = mapped(value, enum, "enum")
                elif lookup:
                    table = table_of(item, root, ctx)
                    if not isinstance(table, dict):
                        return SLOW
                    value = mapped(value, table, "lookup table")
                if value is None and not summed:
                    return None
                if money:
                    amount = decimal_sum(value) if summed else to_decimal(value)
                    if minus is not None:
                        amount -= decimal_sum(minus(item, root, ctx))
                    return to_money(amount, currency(item, root, ctx))
                if summed:
                    total = decimal_sum(value)
                    return total if convert is None else convert(total)
                if convert is not None:
                    return convert(value)
            except TransformError:
                return SLOW
            if want_list and not isinstance(value, list):
                return SLOW
            return value

        return field

    def _fail(self, run: Run, prefix: str, raw: Any, message: str) -> None:
        run.fail(self.line, _join(prefix, self.name), raw, message + (f"; {self.hint}" if self.hint else ""))

    def _table(self, item: Any, root: Any, ctx: Any) -> Any:
        if self.lookup_ctx is not None:
            return self.lookup_ctx(item, root, ctx)
        return self.lookups.get(self.lookup or "")

    def run(self, item: Any, index: int, run: Run, prefix: str) -> Any:
        if self.get is not None:
            raw = self.get(item, run.root, run.ctx)
        elif self.concat is not None:
            parts = [p(item, run.root, run.ctx) for p in self.concat]
            text = self.separator.join(str(p) for p in parts if p not in (None, ""))
            raw = text or None
        elif self.index_base is not None:
            raw = index + self.index_base
        else:
            raw = self.const
        if (raw is None or (raw == "" and self.required)) and not self.sum:
            if self.has_default:
                raw = self.default
            else:
                if run.track:
                    run.produced[_join(prefix, self.name)] = (self.line, None)
                if self.required:
                    self._fail(run, prefix, None, "is required but the payload has no value for it")
                return None
        if run.track:
            run.produced[_join(prefix, self.name)] = (self.line, raw)
        value = raw
        try:
            if self.split is not None:
                value = split_list(value, self.split)
            if self.enum is not None:
                value = self._map(value, self.enum, "enum")
            elif self.lookup is not None or self.lookup_ctx is not None:
                table = self._table(item, run.root, run.ctx)
                if not isinstance(table, dict):
                    raise TransformError(f"lookup table {self.lookup!r} is not available (expected a table)")
                value = self._map(value, table, f"lookup table {self.lookup!r}")
            if value is None and not self.sum:
                return None
            if self.type == "money":
                amount = decimal_sum(value) if self.sum else to_decimal(value)
                if self.minus is not None:
                    amount -= decimal_sum(self.minus(item, run.root, run.ctx))
                assert self.currency is not None
                return to_money(amount, self.currency(item, run.root, run.ctx))
            if self.sum:
                value = decimal_sum(value)
                return value if self.convert is None else self.convert(value)
            if self.convert is not None:
                return self.convert(value)
            if self.type == "list" and not isinstance(value, list):
                raise TransformError(f"expected a list, got {type(value).__name__}")
            return value
        except TransformError as exc:
            self._fail(run, prefix, raw, str(exc))
            return None

    def _map(self, value: Any, table: dict[str, Any], what: str) -> Any:
        if isinstance(value, list):
            return [self._map(v, table, what) for v in value]
        if value in table:
            return table[value]
        key = str(value).lower() if isinstance(value, bool) else str(value)
        if key in table:
            return table[key]
        if self.has_otherwise:
            return self.otherwise
        known = ", ".join(sorted(map(str, table)))[:200]
        raise TransformError(f"{value!r} is not in the {what} (known: {known}); add it or set `otherwise:`")


class ObjectNode(Node):
    """A nested object: its fields, optionally read from a sub-object (``path:``)."""

    def __init__(self, name: str, line: int, scope: Getter | None, required: bool = False) -> None:
        self.name = name
        self.line = line
        self.scope = scope
        self.required = required
        self.children: list[Node] = []
        self._plan: list[tuple[str, Getter | None, Node]] | None = None

    def run(self, item: Any, index: int, run: Run, prefix: str) -> Any:
        if self.scope is not None:
            item = self.scope(item, run.root, run.ctx)
            if item is None:
                if self.required:
                    run.fail(self.line, _join(prefix, self.name), None, "is required but the payload has none")
                return None
        here = _join(prefix, self.name)
        if run.track:
            run.produced[here] = (self.line, None)
        return self.fields(item, run, here, index)

    def fields(self, item: Any, run: Run, here: str, index: int = 0) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if run.track:
            for child in self.children:
                v = child.run(item, index, run, here)
                if v is not None:
                    out[child.name] = v
            return out
        plan = self._plan if self._plan is not None else self._make_plan()
        root, ctx = run.root, run.ctx
        for name, fast, child in plan:
            if fast is None:
                v = child.run(item, index, run, here)
            else:
                v = fast(item, root, ctx)
                if v is SLOW:
                    v = child.run(item, index, run, here)
            if v is not None:
                out[name] = v
        return out

    def _make_plan(self) -> list[tuple[str, Getter | None, Node]]:
        """(name, fast function or None, node) of each field, made at the first run."""
        plan = [(c.name, c.fast() if isinstance(c, ValueNode) else None, c) for c in self.children]
        self._plan = plan
        return plan


class ListNode(Node):
    """A list of objects, one per item of ``each:`` (indexes 0-based in field paths)."""

    def __init__(self, name: str, line: int, each: Getter, item: ObjectNode) -> None:
        self.name = name
        self.line = line
        self.each = each
        self.item = item

    def run(self, item: Any, index: int, run: Run, prefix: str) -> Any:
        items = self.each(item, run.root, run.ctx)
        if items is None:
            return None
        here = _join(prefix, self.name)
        if not isinstance(items, list):
            run.fail(self.line, here, items, f"`each` must give a list, got {type(items).__name__}")
            return None
        if run.track:
            run.produced[here] = (self.line, None)
            for i in range(len(items)):
                run.produced[f"{here}[{i}]"] = (self.line, None)
        fields = self.item.fields
        return [fields(it, run, f"{here}[{i}]", i) for i, it in enumerate(items)]


@dataclass
class Compiled:
    """A compiled mapping file."""

    file: str
    object: str
    root: ObjectNode
    lookups: dict[str, Any]

    def run(self, payload: Any, context: Any = None, track: bool = False) -> tuple[dict[str, Any], Run]:
        run = Run(self.file, payload, context if context is not None else {}, track)
        out = self.root.fields(payload, run, "")
        return out, run


class _Compiler:
    def __init__(self, file: str, lookups: dict[str, Any]) -> None:
        self.file = file
        self.lookups = lookups
        self.errors: list[dict[str, Any]] = []

    def fail(self, line: int, where: str, message: str, value: Any = None) -> None:
        self.errors.append(error(self.file, line, where, value, message))

    def expr(self, text: Any, line: int, where: str) -> Getter | None:
        if not isinstance(text, str) or not text.strip():
            self.fail(line, where, "expected a JMESPath expression (text)", text)
            return None
        try:
            return compile_expression(text)
        except ValueError as exc:
            self.fail(line, where, str(exc), text)
            return None

    def fields(self, spec: Any, node: ObjectNode, where: str, in_each: bool) -> None:
        if not isinstance(spec, LineDict):
            self.fail(node.line, where, "`fields` must be a mapping of field names")
            return
        for name, fspec in spec.items():
            line = spec.lines.get(name, spec.line)
            child = self.field(str(name), fspec, line, _join(where, str(name)), in_each)
            if child is not None:
                node.children.append(child)

    def field(self, name: str, spec: Any, line: int, where: str, in_each: bool) -> Node | None:
        if isinstance(spec, str):
            spec_d: dict[str, Any] = {"path": spec}
        elif isinstance(spec, dict):
            spec_d = spec
        else:
            self.fail(line, where, "a field is an expression or a mapping of options", spec)
            return None
        if "each" in spec_d:
            each = self.expr(spec_d["each"], line, where)
            item = ObjectNode(name, line, None)
            self.fields(spec_d.get("fields"), item, f"{where}[]", True)
            return ListNode(name, line, each, item) if each is not None else None
        if "fields" in spec_d:
            scope = self.expr(spec_d["path"], line, where) if "path" in spec_d else None
            obj = ObjectNode(name, line, scope, bool(spec_d.get("required")))
            self.fields(spec_d["fields"], obj, where, in_each)
            return obj
        return self.value(name, spec_d, line, where, in_each)

    def value(self, name: str, spec: dict[str, Any], line: int, where: str, in_each: bool) -> ValueNode | None:
        node = ValueNode(name, line)
        sources = [s for s in _SOURCES if s in spec]
        if len(sources) > 1:
            self.fail(line, where, f"give one source, not {' and '.join(sources)}")
        elif not sources and not spec.get("sum") and "default" not in spec:
            self.fail(line, where, "no source: give `path`, `value`, `concat` or `index`")
        if "path" in spec:
            node.get = self.expr(spec["path"], line, where)
        elif "concat" in spec:
            parts = [self.expr(p, line, where) for p in spec["concat"]]
            node.concat = [p for p in parts if p is not None]
            node.separator = str(spec.get("separator", " "))
        elif "index" in spec:
            if not in_each:
                self.fail(line, where, "`index` only makes sense inside an `each` list")
            node.index_base = int(spec["index"])
        else:
            node.const = spec.get("value")
        typ = spec.get("type")
        node.type = typ
        node.convert = TYPES.get(typ) if isinstance(typ, str) else None
        if typ == "money":
            if "currency" not in spec:
                self.fail(line, where, "`type: money` needs `currency:` (an expression such as `$.currency`)")
            else:
                node.currency = self.expr(spec["currency"], line, where)
        elif "currency" in spec:
            self.fail(line, where, "`currency:` only applies to `type: money`")
        node.sum = bool(spec.get("sum", False))
        if "minus" in spec:
            if typ != "money" and typ != "decimal":
                self.fail(line, where, "`minus:` only applies to `type: money` or `type: decimal`")
            node.minus = self.expr(spec["minus"], line, where)
        if "split" in spec:
            node.split = str(spec["split"])
        if "enum" in spec and "lookup" in spec:
            self.fail(line, where, "give `enum` or `lookup`, not both")
        if "enum" in spec:
            node.enum = dict(spec["enum"]) if isinstance(spec["enum"], dict) else None
        if "lookup" in spec:
            table = str(spec["lookup"])
            if table.startswith("$ctx."):
                node.lookup = table
                node.lookup_ctx = self.expr(table, line, where)
            elif table not in self.lookups:
                known = ", ".join(sorted(self.lookups)) or "none"
                self.fail(line, where, f"no lookup table {table!r} in this file (tables: {known})", table)
            else:
                node.lookup = table
                node.lookups = self.lookups
        if "otherwise" in spec:
            node.has_otherwise, node.otherwise = True, spec["otherwise"]
        if "default" in spec:
            node.has_default, node.default = True, spec["default"]
        node.required = bool(spec.get("required", False))
        node.hint = str(spec.get("hint", ""))
        return node


def compile_mapping(file: str, data: LineDict) -> tuple[Compiled | None, list[dict[str, Any]]]:
    """Compile a meta-schema-valid mapping; returns the errors (with lines) instead when it has any."""
    lookups = dict(data.get("lookups") or {})
    c = _Compiler(file, lookups)
    root = ObjectNode("", data.line, None)
    c.fields(data.get("fields"), root, "", False)
    if c.errors:
        return None, c.errors
    return Compiled(file, str(data.get("mapping")), root, lookups), []
