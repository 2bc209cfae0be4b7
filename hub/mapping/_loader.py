"""Reading mapping files: YAML with the line of every key, checked against the meta-schema."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: Environment variable that points at the ``mappings/`` directory.
ENV_DIR = "ORDERHUB_MAPPINGS_DIR"


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the line (1-based) of itself and of each of its keys."""

    __slots__ = ("line", "lines")

    def __init__(self) -> None:
        super().__init__()
        self.line = 0
        self.lines: dict[str, int] = {}


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that builds :class:`LineDict` and records duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in out:
            loader.duplicates.append((str(key), line))
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[str(key)] = line
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def error(file: str, line: int | None, field: str, value: Any, message: str) -> dict[str, Any]:
    """One mapping error as :class:`hub.errors.MappingError` carries it."""
    return {"file": file, "line": line, "field": field, "value": value, "message": message}


def parse_yaml(path: Path) -> tuple[LineDict | None, list[dict[str, Any]]]:
    """The file's top-level mapping, or the YAML errors with their line."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [error(name, None, "", None, f"cannot read the mapping file: {exc.strerror or exc}")]
    loader = _LineLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [error(name, line, "", None, f"invalid YAML: {exc.problem or exc}")]
    finally:
        loader.dispose()
    if not isinstance(data, LineDict):
        return None, [error(name, 1, "", None, "a mapping file must be a YAML mapping with `mapping:` and `fields:`")]
    errs = [error(name, line, key, None, f"key {key!r} appears twice") for key, line in loader.duplicates]
    return data, errs


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((package_mappings_dir() / "_meta" / "mapping.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _line_of(data: Any, path: list[Any]) -> tuple[int | None, str]:
    """The line of the deepest key on ``path`` and the dotted path of that key."""
    line: int | None = data.line if isinstance(data, LineDict) else None
    node = data
    parts: list[str] = []
    for key in path:
        if isinstance(node, LineDict) and key in node:
            line = node.lines.get(str(key), line)
            parts.append(str(key))
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            parts.append(f"[{key}]")
            node = node[key]
        else:
            break
    return line, ".".join(parts).replace(".[", "[")


def schema_errors(name: str, data: LineDict) -> list[dict[str, Any]]:
    """Every meta-schema violation of a parsed file, with the line it is on."""
    out: list[dict[str, Any]] = []
    for err in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        line, where = _line_of(data, list(err.absolute_path))
        message = err.message
        if err.validator == "oneOf" and isinstance(err.instance, dict):
            # a field object: name the offending keys instead of the whole oneOf
            details = [e.message for e in err.context or [] if e.validator != "type"]
            message = "; ".join(details) or message
        elif err.validator == "additionalProperties":
            message = message.replace("Additional properties are not allowed", "unknown key")
        out.append(error(name, line, where, None, message))
    return out


def package_mappings_dir() -> Path:
    """The ``mappings/`` directory next to the ``hub`` package (a source checkout or an editable install)."""
    return Path(__file__).resolve().parent.parent.parent / "mappings"


def mappings_dir() -> Path:
    """``$ORDERHUB_MAPPINGS_DIR`` when set, else the ``mappings/`` directory next to the ``hub`` package."""
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else package_mappings_dir()
