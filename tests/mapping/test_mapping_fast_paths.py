"""The engine's fast paths give the results of the general paths they replace: expressions run as
plain Python equal JMESPath, and a field's fast function equals the general (tracking) run,
errors included."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import jmespath
import pytest

from hub.mapping import MappingSet
from hub.mapping._engine import Compiled, _translate, compile_expression, compile_mapping
from hub.mapping._loader import parse_yaml

EXPRESSIONS = [
    "a",
    "a.b",
    "a.b.c",
    "a.b || c",
    "x || a.b || c",
    "a && c",
    "x && c",
    "!a.b",
    "!n",
    "!z",
    "!zf",
    "!s",
    "items[].v",
    "items[].w.z",
    "nested[].v",
    "nested[]",
    "missing[].v",
    "items[?!v]",
    "items[?!v].w",
    "items[?!removed]",
    "items[?v].v",
    "items[?!removed].allocs[].amount.value",
    "items[?!removed].allocs[].amount",
    "nested[?!v]",
    "text[?!v]",
    "items[*].v",
    "items[0].v",
    "items[?v == '1']",
    "items[0:2].v",
    "items[::-1].v",
    "items[].v | [0]",
    "a.*",
    "*.b",
    "items[-1]",
    "@",
    "items[*]",
    "items[?v]",
]

PAYLOADS: list[Any] = [
    {
        "a": {"b": 0, "c": "0"},
        "c": "C",
        "x": "",
        "n": 0,
        "z": 0.0,
        "zf": False,
        "s": "0",
        "text": "abc",
        "items": [
            {"v": "1", "removed": False, "allocs": [{"amount": {"value": "1.50"}}, {"amount": None}]},
            {"v": None, "removed": True, "allocs": [{"amount": {"value": "9"}}]},
            {"w": {"z": 2}, "allocs": {"amount": {"value": "2"}}},
            None,
            "text",
            7,
            [{"v": "in a list"}],
            {"v": "", "removed": 0, "allocs": [[{"amount": {"value": "3"}}], None]},
            {"v": [], "removed": [], "allocs": []},
            {"v": {}, "removed": {}},
        ],
        "nested": [[{"v": 1}], {"v": 2}, [], None, [[{"v": 3}]]],
    },
    {"a": {"b": None}, "c": [], "x": {}, "items": "not a list", "nested": None, "n": 1},
    {"a": {"b": False}, "x": [], "items": [], "nested": [[]], "z": -0.0},
    {"a": "text", "items": {"v": 1}, "nested": "x"},
    {"a": [{"b": 1}], "items": [[], [[]]]},
    {"a": {"b": {"c": "1e3"}}, "c": "  12.50 ", "items": [{"v": "007", "allocs": [{"amount": {"value": "-0"}}]}]},
    {},
    [],
    None,
    "scalar",
]


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_expressions_give_what_jmespath_gives(expr: str, payload: Any) -> None:
    expected = jmespath.search(expr, payload)
    assert compile_expression(expr)(payload, payload, {}) == expected
    assert compile_expression(f"$.{expr}")({"other": 1}, payload, {}) == expected
    assert compile_expression(f"$ctx.{expr}")(None, None, payload) == expected


@pytest.mark.parametrize(
    "expr",
    ["a.b || c", "!a.b", "a && c", "items[].w.z", "items[?!removed].allocs[].amount.value", "shipping[?!is_removed]"],
)
def test_common_forms_do_not_run_on_jmespath(expr: str) -> None:
    assert _translate(jmespath.compile(expr).parsed) is not None


@pytest.mark.parametrize(
    "expr", ["items[0].v", "items[?v == '1']", "length(items)", "a.[b, c]", "items[0:2]", "a.*", "items[].v | [0]"]
)
def test_other_forms_run_on_jmespath(expr: str) -> None:
    assert _translate(jmespath.compile(expr).parsed) is None


KINDS = """\
mapping: thing
lookups:
  status: {open: OPEN, closed: CLOSED}
fields:
  plain: a.b
  either: a.b || c
  s: {path: s, type: string}
  s_req: {path: s, type: string, required: true, hint: set s}
  s_def: {path: s, type: string, default: none}
  s_req_def: {path: s, required: true, default: dflt}
  n: {path: n, type: int}
  n_def: {path: n, type: int, default: 0}
  d: {path: n, type: decimal}
  d_sum: {path: "items[].v", type: decimal, sum: true}
  ok: {path: ok, type: bool, default: false}
  at: {path: at, type: datetime}
  cc: {path: cc, type: country}
  tags: {path: tags, split: ","}
  lst: {path: lst, type: list}
  name: {concat: [first, last]}
  ref: {concat: [first, n], separator: "-", required: true}
  kind: {value: web}
  nothing: {value: null, default: x}
  st: {path: st, enum: {open: OPEN}, otherwise: OTHER}
  st_strict: {path: st, enum: {open: OPEN, "true": "T", "None": N}}
  st_lookup: {path: st, lookup: status, default: open}
  loc: {path: loc, lookup: $ctx.locations, otherwise: main}
  price: {path: price, type: money, currency: $.cur}
  price_req: {path: price, type: money, currency: cur, required: true}
  price_def: {path: price, type: money, currency: $.cur, default: "0"}
  paid: {path: "items[].v", sum: true, type: money, currency: $.cur}
  net: {path: price, minus: "items[?!removed].v", type: money, currency: $.cur, default: "0"}
  obj:
    path: sub
    fields:
      x: {path: x, type: int, required: true}
      y: y
  req_obj:
    path: sub
    required: true
    fields:
      x: x
  lines:
    each: "items[?!removed]"
    fields:
      line_no: {index: 1}
      v: {path: v, type: money, currency: $.cur, required: true}
      st: {path: $.st, lookup: status, otherwise: none}
"""

GOOD: dict[str, Any] = {
    "a": {"b": "B"},
    "c": "C",
    "s": "text",
    "n": "7",
    "ok": "yes",
    "at": "2026-01-02T03:04:05+01:00",
    "cc": "Germany",
    "tags": "x, y,,z",
    "lst": ["a", 1],
    "first": "Bob",
    "last": "Norman",
    "st": "open",
    "loc": 655441491,
    "cur": "eur",
    "price": "12.345",
    "sub": {"x": 3, "y": None},
    "items": [{"v": "1.10"}, {"v": "2", "removed": True}, {"v": 0.06}],
}

VARIANTS: list[dict[str, Any]] = [
    {},
    {"s": ""},
    {"s": None, "n": None},
    {"s": 12, "n": "7.5"},
    {"n": True},
    {"n": "seven"},
    {"n": 3.0},
    {"ok": "maybe"},
    {"at": "yesterday"},
    {"at": 1767225600000},
    {"cc": "Atlantis"},
    {"cc": ""},
    {"tags": ["a", None, "", 3]},
    {"tags": None},
    {"tags": 5, "lst": "a"},
    {"first": None, "last": None, "n": None},
    {"first": "", "last": 0},
    {"st": "closed"},
    {"st": True},
    {"st": None},
    {"st": ["open", "closed"]},
    {"loc": 1},
    {"cur": "ZZZ"},
    {"cur": None},
    {"cur": 978},
    {"price": "abc"},
    {"price": None},
    {"price": "Infinity"},
    {"price": "-0.001"},
    {"price": " 12.50 "},
    {"price": False},
    {"items": None},
    {"items": "not a list"},
    {"items": [{"v": "x"}]},
    {"items": [{"v": None}, {"v": "NaN"}]},
    {"items": [{"v": "1", "removed": False}, None]},
    {"sub": None},
    {"sub": {"x": "three"}},
    {"sub": {}},
    {"sub": "text"},
    {"a": None, "c": ""},
]


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    path = tmp_path_factory.mktemp("kinds") / "thing.yaml"
    path.write_text(textwrap.dedent(KINDS))
    data, errors = parse_yaml(path)
    assert data is not None and not errors
    compiled, errors = compile_mapping(str(path), data)
    assert compiled is not None, errors
    return compiled


CTX = {"locations": {"655441491": "wh-east"}}


@pytest.mark.parametrize("variant", VARIANTS, ids=range(len(VARIANTS)))
def test_fast_fields_equal_the_general_run_errors_included(kinds: Compiled, variant: dict[str, Any]) -> None:
    payload = {**GOOD, **variant}
    fast, fast_run = kinds.run(payload, CTX)
    slow, slow_run = kinds.run(payload, CTX, track=True)
    assert fast == slow
    assert fast_run.errors == slow_run.errors


def test_the_comparison_above_is_not_vacuous(kinds: Compiled) -> None:
    # the good payload maps every kind of field, and a bad one fails several
    out, run = kinds.run(GOOD, CTX)
    assert run.errors == []
    assert out["price"] == {"amount": Decimal("12.35"), "currency": "EUR"}
    assert out["net"] == {"amount": Decimal("11.19"), "currency": "EUR"}
    assert out["loc"] == "wh-east" and out["st_lookup"] == "OPEN" and out["tags"] == ["x", "y", "z"]
    assert [ln["line_no"] for ln in out["lines"]] == [1, 2]
    _, bad = kinds.run({**GOOD, "n": "seven", "cur": "ZZZ"}, CTX)
    assert {e["field"] for e in bad.errors} >= {"n", "n_def", "d", "price", "lines[0].v"}


def test_the_shopify_order_mapping_gives_the_same_result_fast_and_tracked() -> None:
    import orjson

    fixtures = Path(__file__).parents[1] / "connectors" / "shopify" / "fixtures"
    payload = orjson.loads((fixtures / "orders_create.json").read_bytes())
    compiled = MappingSet.for_connector("shopify").compiled("order")
    for doc in (payload, {**payload, "currency": "nope", "line_items": [{"sku": ""}]}, {}):
        fast, fast_run = compiled.run(doc)
        slow, slow_run = compiled.run(doc, track=True)
        assert (fast, fast_run.errors) == (slow, slow_run.errors)
