"""The mapping engine: transforms, nesting, error reports with file/line/field/value, overrides."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hub.errors import MappingError
from hub.mapping import ENV_DIR, MappingSet, check_file, mappings_dir
from hub.model import Order, new_id


def _write(tmp_path: Path, text: str, connector: str = "acme", obj: str = "order") -> Path:
    folder = tmp_path / connector
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{obj}.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def mdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    return tmp_path


def _apply(mdir: Path, fields: str, payload: Any, context: dict[str, Any] | None = None, extra: str = "") -> Any:
    _write(mdir, f"mapping: thing\n{extra}fields:\n{textwrap.indent(textwrap.dedent(fields), '  ')}", obj="thing")
    return MappingSet.for_connector("acme").apply("thing", payload, context)


LINES = """\
mapping: order
fields:
  external_id: {path: id, type: string}
  currency: currency
  lines:
    each: items
    fields:
      line_no: {index: 1}
      sku: {path: sku, required: true}
      unit_price:
        path: price
        type: money
        currency: $.currency
      quantity: {path: qty, type: int}
"""


def test_an_error_names_file_line_field_and_value(mdir: Path) -> None:
    path = _write(mdir, LINES)
    payload = {
        "id": 7,
        "currency": "EUR",
        "items": [{"sku": "A", "price": "1.00", "qty": 1}] * 2 + [{"sku": "B", "price": "twelve", "qty": 1}],
    }
    with pytest.raises(MappingError) as info:
        MappingSet.for_connector("acme").apply("order", payload)
    assert info.value.errors == [
        {
            "file": str(path),
            "line": 10,
            "field": "lines[2].unit_price",
            "value": "twelve",
            "message": "expected a decimal number, got 'twelve'",
        }
    ]
    assert f"{path}:10 lines[2].unit_price" in info.value.detail


def test_every_error_of_a_payload_is_reported_not_only_the_first(mdir: Path) -> None:
    _write(mdir, LINES)
    payload = {
        "id": 7,
        "currency": "EUR",
        "items": [{"price": "x", "qty": "1.5"}, {"sku": "B", "price": "1", "qty": 2}],
    }
    with pytest.raises(MappingError) as info:
        MappingSet.for_connector("acme").apply("order", payload)
    got = [(e["field"], e["line"], e["value"]) for e in info.value.errors]
    assert got == [("lines[0].sku", 9, None), ("lines[0].unit_price", 10, "x"), ("lines[0].quantity", 14, "1.5")]


def test_required_error_carries_the_hint(mdir: Path) -> None:
    out = _write(
        mdir,
        """\
        mapping: order
        fields:
          sku: {path: sku, required: true, hint: give the variant a SKU}
        """,
    )
    with pytest.raises(MappingError) as info:
        MappingSet.for_connector("acme").apply("order", {"sku": ""})
    assert info.value.errors[0] == {
        "file": str(out),
        "line": 3,
        "field": "sku",
        "value": None,
        "message": "is required but the payload has no value for it; give the variant a SKU",
    }


def test_meta_schema_rejects_a_malformed_file_with_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        mapping: order
        fields:
          external_id: id
          total:
            path: total
            typo: money
        """,
    )
    errors = check_file(path)
    assert [(e["file"], e["line"], e["field"]) for e in errors] == [(str(path), 4, "fields.total")]
    assert "typo" in errors[0]["message"]


def test_check_reports_bad_expressions_money_without_currency_and_unknown_tables(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        mapping: order
        fields:
          a: "items[?"
          b: {path: total, type: money}
          c: {path: x, lookup: carriers}
          d: {index: 1}
        """,
    )
    errors = check_file(path)
    assert [e["line"] for e in errors] == [3, 4, 5, 6]
    assert "invalid JMESPath expression" in errors[0]["message"]
    assert "needs `currency:`" in errors[1]["message"]
    assert "no lookup table 'carriers'" in errors[2]["message"]
    assert "inside an `each`" in errors[3]["message"]


def test_yaml_syntax_errors_and_duplicate_keys_have_lines(tmp_path: Path) -> None:
    bad = _write(tmp_path, "mapping: order\nfields:\n  a: [unclosed\n", obj="bad")
    assert [e["line"] for e in check_file(bad)] == [4]
    dup = _write(tmp_path, "mapping: order\nfields:\n  a: x\n  a: y\n", obj="dup")
    assert [(e["line"], e["message"]) for e in check_file(dup)] == [(4, "key 'a' appears twice")]


def test_money_rounds_to_minor_units_and_refuses_unknown_currency(mdir: Path) -> None:
    fields = "price: {path: p, type: money, currency: c}\n"
    assert _apply(mdir, fields, {"p": "1000", "c": "jpy"}) == {"price": {"amount": "1000", "currency": "JPY"}}
    assert _apply(mdir, fields, {"p": "1.2345", "c": "KWD"}) == {"price": {"amount": "1.235", "currency": "KWD"}}
    with pytest.raises(MappingError) as info:
        _apply(mdir, fields, {"p": "1", "c": "XXY"})
    assert info.value.errors[0]["message"] == "not an ISO 4217 currency code: 'XXY'"


def test_money_sum_and_minus_are_exact(mdir: Path) -> None:
    fields = "net: {path: 'a[].v', sum: true, minus: 'b[].v', type: money, currency: $.cur}\n"
    payload = {"cur": "USD", "a": [{"v": "0.10"}, {"v": "0.20"}], "b": [{"v": "0.05"}]}
    assert _apply(mdir, fields, payload) == {"net": {"amount": "0.25", "currency": "USD"}}
    assert _apply(mdir, fields, {"cur": "USD"}) == {"net": {"amount": "0.00", "currency": "USD"}}


def test_decimal_reads_json_numbers_by_their_text(mdir: Path) -> None:
    ms_fields = "rate: {path: r, type: decimal}\n"
    _apply(mdir, ms_fields, {"r": 0.06})
    assert MappingSet.for_connector("acme").map("thing", {"r": 0.06}) == {"rate": Decimal("0.06")}


def test_datetime_accepts_iso_8601_and_epoch_seconds_or_milliseconds(mdir: Path) -> None:
    fields = "at: {path: t, type: datetime}\n"
    assert _apply(mdir, fields, {"t": "2026-07-01T10:00:00Z"}) == {"at": "2026-07-01T10:00:00+00:00"}
    assert _apply(mdir, fields, {"t": "2026-07-01T10:00:00-05:00"}) == {"at": "2026-07-01T10:00:00-05:00"}
    assert _apply(mdir, fields, {"t": 1782900000}) == {"at": "2026-07-01T10:00:00+00:00"}
    assert _apply(mdir, fields, {"t": 1782900000000}) == {"at": "2026-07-01T10:00:00+00:00"}
    with pytest.raises(MappingError, match="not an ISO-8601 date-time or epoch"):
        _apply(mdir, fields, {"t": "yesterday"})


def test_enum_maps_values_with_a_default_for_unknown_ones(mdir: Path) -> None:
    fields = "status: {path: s, enum: {paid: paid, PAID: paid}, otherwise: unknown}\n"
    assert _apply(mdir, fields, {"s": "PAID"}) == {"status": "paid"}
    assert _apply(mdir, fields, {"s": "weird"}) == {"status": "unknown"}
    strict = "status: {path: s, enum: {paid: paid}}\n"
    with pytest.raises(MappingError, match=r"'weird' is not in the enum \(known: paid\)"):
        _apply(mdir, strict, {"s": "weird"})


def test_country_from_names_and_codes(mdir: Path) -> None:
    fields = "a: {path: a, type: country}\nb: {path: b, type: country}\nc: {path: c, type: country}\n"
    assert _apply(mdir, fields, {"a": "United States", "b": "deu", "c": "fr"}) == {"a": "US", "b": "DE", "c": "FR"}
    with pytest.raises(MappingError, match="unknown country 'Atlantis'"):
        _apply(mdir, "a: {path: a, type: country}\n", {"a": "Atlantis"})


def test_default_applies_when_the_payload_has_no_value(mdir: Path) -> None:
    fields = "qty: {path: q, type: int, default: 1}\nflag: {path: f, type: bool, default: false}\n"
    assert _apply(mdir, fields, {}) == {"qty": 1, "flag": False}
    assert _apply(mdir, fields, {"q": "3", "f": "yes"}) == {"qty": 3, "flag": True}


def test_lookup_from_the_file_and_from_connection_settings(mdir: Path) -> None:
    tables = "lookups:\n  carriers: {ups: UPS, fedex: FedEx}\n"
    fields = "carrier: {path: c, lookup: carriers}\nloc: {path: l, lookup: $ctx.location_map, otherwise: main}\n"
    ctx = {"location_map": {"655441491": "wh-east"}}
    assert _apply(mdir, fields, {"c": "ups", "l": 655441491}, ctx, tables) == {"carrier": "UPS", "loc": "wh-east"}
    assert _apply(mdir, fields, {"c": "fedex", "l": 1}, ctx, tables) == {"carrier": "FedEx", "loc": "main"}


def test_concat_string_int_bool_split_and_constants(mdir: Path) -> None:
    fields = """\
    name: {concat: [first, last]}
    ref: {concat: [a, b], separator: "-"}
    id: {path: id, type: string}
    n: {path: n, type: int}
    ok: {path: ok, type: bool}
    tags: {path: tags, split: ","}
    kind: {value: web}
    """
    payload = {"first": "Bob", "last": None, "a": "X", "b": 2, "id": 450789469, "n": "7", "ok": 1, "tags": "a, b,,c"}
    assert _apply(mdir, fields, payload) == {
        "name": "Bob",
        "ref": "X-2",
        "id": "450789469",
        "n": 7,
        "ok": True,
        "tags": ["a", "b", "c"],
        "kind": "web",
    }


def test_lists_and_nested_objects_reach_root_values_and_count_from_one(mdir: Path) -> None:
    fields = """\
    lines:
      each: items[?qty > `0`]
      fields:
        line_no: {index: 1}
        price: {path: p, type: money, currency: $.cur}
        first_tag: "tags[0]"
    ship_to:
      path: addr
      fields:
        country: {path: cc, type: country}
    missing:
      path: nothing
      fields:
        x: y
    """
    payload = {
        "cur": "EUR",
        "addr": {"cc": "DE"},
        "items": [{"qty": 0}, {"qty": 1, "p": "2", "tags": ["t"]}, {"qty": 2, "p": "3"}],
    }
    assert _apply(mdir, fields, payload) == {
        "lines": [
            {"line_no": 1, "price": {"amount": "2.00", "currency": "EUR"}, "first_tag": "t"},
            {"line_no": 2, "price": {"amount": "3.00", "currency": "EUR"}},
        ],
        "ship_to": {"country": "DE"},
    }


def test_an_override_file_replaces_the_connectors_mapping(mdir: Path, tmp_path: Path) -> None:
    _write(mdir, "mapping: order\nfields:\n  external_id: id\n")
    other = tmp_path / "custom-order.yaml"
    other.write_text("mapping: order\nfields:\n  external_id: {path: number, type: string}\n")
    assert MappingSet.for_connector("acme").apply("order", {"id": "a", "number": 5}) == {"external_id": "a"}
    ms = MappingSet.for_connector("acme", {"order": str(other)})
    assert ms.apply("order", {"id": "a", "number": 5}) == {"external_id": "5"}


def test_a_missing_object_mapping_is_a_clear_error(mdir: Path) -> None:
    _write(mdir, "mapping: order\nfields:\n  external_id: id\n")
    with pytest.raises(MappingError, match="connector acme has no 'refund' mapping \\(has: order\\)"):
        MappingSet.for_connector("acme").apply("refund", {})


def test_mappings_dir_defaults_next_to_the_hub_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_DIR, raising=False)
    import hub

    assert mappings_dir() == Path(hub.__file__).resolve().parent.parent / "mappings"
    assert (mappings_dir() / "_meta" / "mapping.schema.json").is_file()


ORDER = """\
mapping: order
fields:
  external_id: {path: id, type: string}
  placed_at: {path: at, type: datetime}
  currency: cur
  lines:
    each: items
    fields:
      line_no: {index: 1}
      sku: sku
      quantity: {path: qty, type: int}
      unit_price: {path: price, type: money, currency: $.cur}
  totals:
    fields:
      subtotal: {path: subtotal, type: money, currency: $.cur}
      shipping: {value: "0", type: money, currency: $.cur}
      tax: {value: "0", type: money, currency: $.cur}
      discount: {value: "0", type: money, currency: $.cur}
      total: {path: total, type: money, currency: $.cur}
"""


def _order_payload(**kw: Any) -> dict[str, Any]:
    base = {"id": 1, "at": "2026-07-01T10:00:00Z", "cur": "USD", "items": [{"sku": "A", "qty": 2, "price": "5.00"}]}
    return {**base, "subtotal": "10.00", "total": "10.00", **kw}


def test_build_validates_with_the_model(mdir: Path) -> None:
    _write(mdir, ORDER)
    order = MappingSet.for_connector("acme").build(
        "order", _order_payload(), Order, extra={"id": new_id("ord"), "connection": "c1"}
    )
    assert order.totals.total.amount == Decimal("10.00")
    assert order.lines[0].line_no == 1


def test_build_reports_totals_that_do_not_add_up_at_their_mapping_line(mdir: Path) -> None:
    path = _write(mdir, ORDER)
    with pytest.raises(MappingError) as info:
        MappingSet.for_connector("acme").build(
            "order",
            _order_payload(subtotal="12.00", total="13.00"),
            Order,
            extra={"id": new_id("ord"), "connection": "c"},
        )
    assert info.value.errors == [
        {
            "file": str(path),
            "line": 15,
            "field": "totals.subtotal",
            "value": "12.00",
            "message": "totals.subtotal is 12.00 but the lines add up to 10.00 USD",
        },
        {
            "file": str(path),
            "line": 19,
            "field": "totals.total",
            "value": "13.00",
            "message": "totals.total is 13.00 but the lines add up to 10.00 USD",
        },
    ]


def test_build_reports_model_errors_of_nested_fields_with_line_and_value(mdir: Path) -> None:
    _write(mdir, ORDER)
    payload = _order_payload()
    payload["items"] = [{"sku": "A", "qty": 0, "price": "5.00"}]
    with pytest.raises(MappingError) as info:
        MappingSet.for_connector("acme").build("order", payload, Order, extra={"id": new_id("ord"), "connection": "c"})
    err = info.value.errors[0]
    assert (err["line"], err["field"], err["value"]) == (11, "lines[0].quantity", 0)
    assert "greater than 0" in err["message"]


@pytest.mark.parametrize(
    "expr",
    ["a.b", "a.b || c", "x || a.b || c", "items[].v", "items[].w.z", "nested[].v", "missing[].v", "a || missing"],
)
@pytest.mark.parametrize(
    "payload",
    [
        {
            "a": {"b": 0},
            "c": "C",
            "x": "",
            "items": [{"v": "1"}, {"v": None}, {"w": {"z": 2}}],
            "nested": [[{"v": 1}], {"v": 2}],
        },
        {"a": {"b": None}, "c": [], "x": {}, "items": "not a list", "nested": None},
        {"a": {"b": False}, "x": [], "items": [], "nested": [[]]},
        {"a": "text"},
        {},
    ],
)
def test_fast_paths_give_the_same_results_as_jmespath(expr: str, payload: dict[str, Any]) -> None:
    import jmespath

    from hub.mapping._engine import compile_expression

    assert compile_expression(expr)(payload, payload, {}) == jmespath.search(expr, payload)


def test_problems_lists_every_bad_file_of_a_set_for_a_start_up_check(mdir: Path, tmp_path: Path) -> None:
    _write(mdir, "mapping: order\nfields:\n  external_id: id\n")
    assert MappingSet.for_connector("acme").problems() == []
    missing = str(tmp_path / "nope.yaml")
    problems = MappingSet.for_connector("acme", {"refund": missing}).problems()
    assert [(p["file"], p["line"]) for p in problems] == [(missing, None)]
    assert problems[0]["message"].startswith("cannot read the mapping file")


def test_the_public_api_is_the_documented_one() -> None:
    import hub.mapping

    assert sorted(hub.mapping.__all__) == ["ENV_DIR", "MappingSet", "check_file", "mappings_dir"]
    assert {"for_connector", "apply", "build", "map", "problems", "objects"} <= set(dir(MappingSet))
