"""Declarative mappings: YAML files that turn an external payload into a canonical object.

A connector's mappings live in ``mappings/<connector>/<object>.yaml`` (``order``, ``shipment``,
``tracking``, ``return``, ``refund``...), validated by ``mappings/_meta/mapping.schema.json``.
Fields are JMESPath expressions plus a few named transforms; see ``docs/mappings.md``.

Every error names the mapping file, its line, the canonical field (``lines[2].unit_price``,
list indexes from 0), the payload value and the reason, and a payload's errors are reported
together in one :class:`hub.errors.MappingError`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from hub.errors import MappingError
from hub.mapping._engine import Compiled, compile_mapping, jsonable
from hub.mapping._loader import ENV_DIR, mappings_dir, parse_yaml, schema_errors

M = TypeVar("M", bound=BaseModel)

_cache: dict[tuple[str, int], Compiled] = {}


def check_file(path: str | Path) -> list[dict[str, Any]]:
    """Every problem of one mapping file (YAML, meta-schema, expressions, tables), each a dict
    with ``file``, ``line``, ``field``, ``value`` and ``message``; empty when the file is good."""
    _, errors = _load(Path(path))
    return errors


def _load(path: Path) -> tuple[Compiled | None, list[dict[str, Any]]]:
    name = str(path)
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _cache:
        return _cache[key], []
    data, errors = parse_yaml(path)
    if data is None:
        return None, errors
    errors += schema_errors(name, data)
    if errors:
        return None, errors
    compiled, errors = compile_mapping(name, data)
    if compiled is not None and key is not None:
        _cache[key] = compiled
    return compiled, errors


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_TOTALS = re.compile(r"^(totals\.\w+)")
_LINE = re.compile(r"^line (\d+) ")


class MappingSet:
    """The mapping files of one connector, with a connection's overrides (object -> file)."""

    def __init__(self, connector: str, files: dict[str, Path]) -> None:
        self.connector = connector
        self.files = files
        self._compiled: dict[str, Compiled] = {}

    @classmethod
    def for_connector(cls, connector: str, overrides: dict[str, str] | None = None) -> MappingSet:
        """``mappings/<connector>/*.yaml`` (see :func:`mappings_dir`), each object replaceable by
        ``overrides[object]`` = path of another mapping file."""
        folder = mappings_dir() / connector
        files = {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}
        for obj, path in (overrides or {}).items():
            files[obj] = Path(path)
        return cls(connector, files)

    def problems(self) -> list[dict[str, Any]]:
        """Every problem of every file of this set (for a start-up check; empty when all are good)."""
        out: list[dict[str, Any]] = []
        for obj in self.objects:
            compiled, errors = _load(self.files[obj])
            if compiled is not None:
                self._compiled.setdefault(obj, compiled)
            out += errors
        return out

    @property
    def objects(self) -> list[str]:
        """The objects this set can map."""
        return sorted(self.files)

    def compiled(self, obj: str) -> Compiled:
        """The compiled mapping of ``obj``; raises :class:`MappingError` listing every problem of its file.
        Compiled once per set (a changed file is read again by a new set, e.g. at the next start)."""
        hit = self._compiled.get(obj)
        if hit is not None:
            return hit
        path = self.files.get(obj)
        if path is None:
            known = ", ".join(self.objects) or "none"
            raise MappingError(
                f"connector {self.connector} has no {obj!r} mapping (has: {known}); "
                f"add {mappings_dir() / self.connector / (obj + '.yaml')} or a connection override",
                connector=self.connector,
            )
        compiled, errors = _load(path)
        if compiled is None:
            raise MappingError(_summary(f"mapping file {path} is invalid", errors), errors=errors)
        self._compiled[obj] = compiled
        return compiled

    def map(self, obj: str, payload: Any, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Like :meth:`apply` but with Python values (Decimal, datetime) instead of JSON text."""
        compiled = self.compiled(obj)
        out, run = compiled.run(payload, context)
        if run.errors:
            raise MappingError(_summary(f"{self.connector} {obj} mapping failed", run.errors), errors=run.errors)
        return out

    def apply(self, obj: str, payload: Any, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Map ``payload`` to the canonical JSON dict of ``obj``; raises :class:`MappingError`."""
        return jsonable(self.map(obj, payload, context))  # type: ignore[no-any-return]

    def build(
        self,
        obj: str,
        payload: Any,
        model: type[M],
        extra: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> M:
        """Map ``payload`` and validate it as ``model`` (``extra`` adds or replaces top-level fields).

        Validation errors (totals that do not add up, an unknown currency...) are reported with the
        mapping file line and payload value of the field that produced them."""
        data = self.map(obj, payload, context)
        if extra:
            data.update(extra)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            compiled = self.compiled(obj)
            _, run = compiled.run(payload, context, track=True)
            errors = [_locate(compiled.file, run.produced, e) for e in exc.errors(include_url=False)]
            flat = [x for group in errors for x in group]
            raise MappingError(
                _summary(f"{self.connector} {obj} is not a valid {model.__name__}", flat), errors=flat
            ) from None


def _locate(file: str, produced: dict[str, tuple[int, Any]], err: Any) -> list[dict[str, Any]]:
    """Turn one pydantic error into mapping errors naming the line that produced the field."""
    msg = str(err["msg"]).removeprefix("Value error, ")
    where = _loc_path(tuple(err["loc"]))
    if not where:
        # a model-level check (Order totals): one error per problem, placed on the field it names
        out = []
        for problem in msg.split("; "):
            m = _TOTALS.match(problem)
            ln = _LINE.match(problem)
            field = m.group(1) if m else (f"lines[{int(ln.group(1)) - 1}]" if ln else "")
            out.append(_at(file, produced, field, problem, err.get("input") if not field else None))
        return out
    return [_at(file, produced, where, msg, err.get("input"))]


def _at(file: str, produced: dict[str, tuple[int, Any]], where: str, message: str, value: Any) -> dict[str, Any]:
    probe = where
    while probe:
        if probe in produced:
            line, raw = produced[probe]
            return {"file": file, "line": line, "field": where, "value": jsonable(raw), "message": message}
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    # a field the mapping does not produce (a model default, or `extra`)
    shown = value if isinstance(value, (str, int, float, bool)) or value is None else None
    return {"file": file, "line": None, "field": where, "value": shown, "message": message}


def _summary(head: str, errors: list[dict[str, Any]]) -> str:
    if not errors:
        return head
    first = errors[0]
    where = f"{first['file']}:{first['line']}" if first.get("line") else str(first["file"])
    field = f" {first['field']}" if first.get("field") else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{head}: {where}{field}: {first['message']}{more}"


__all__ = ["ENV_DIR", "MappingSet", "check_file", "mappings_dir"]
