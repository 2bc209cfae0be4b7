"""Just enough GraphQL reading for the Shopify simulator: the root fields of an operation,
their scalar arguments (variables resolved) and the ``@idempotent(key:)`` directive.

Object arguments must come through variables (``input: $input``), which is how clients send them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_COMMENT = re.compile(r"#[^\n]*")
_ARG = re.compile(r'(\w+)\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null|\w+)')
_IDEMPOTENT = re.compile(r'@idempotent\s*\(\s*key\s*:\s*("(?:[^"\\]|\\.)*"|\$\w+)\s*\)')
_OPERATION = re.compile(r"^\s*(query|mutation|subscription)\b")


@dataclass
class RootField:
    """One root selection: ``alias: name(args) @directives { ... }``."""

    name: str
    alias: str
    args: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


def _value(token: str, variables: Mapping[str, Any]) -> Any:
    if token.startswith("$"):
        return variables.get(token[1:])
    if token.startswith('"'):
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    if token in ("true", "false"):
        return token == "true"
    if token == "null":
        return None
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            return token  # an enum value


def operation_type(query: str) -> str:
    """``query`` or ``mutation`` (anonymous ``{ ... }`` is a query)."""
    m = _OPERATION.match(_COMMENT.sub("", query))
    return m.group(1) if m else "query"


def root_fields(query: str, variables: Mapping[str, Any] | None = None) -> list[RootField]:
    """The root fields of the (single) operation in ``query``."""
    variables = variables or {}
    text = _COMMENT.sub("", query)
    start = text.find("{")
    if start < 0:
        raise ValueError("no selection set in the GraphQL document")
    out: list[RootField] = []
    i, depth, n = start + 1, 1, len(text)
    while i < n and depth > 0:
        ch = text[i]
        if ch == '"':
            i = _skip_string(text, i)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 1 and (ch.isalpha() or ch == "_"):
            m = re.match(r"(\w+)\s*(?::\s*(\w+))?", text[i:])
            assert m is not None
            alias, name = m.group(1), m.group(2) or m.group(1)
            i += m.end()
            args_text = ""
            j = _skip_ws(text, i)
            if j < n and text[j] == "(":
                end = _match(text, j, "(", ")")
                args_text = text[j + 1 : end]
                i = end + 1
            # directives up to the selection set or the next field
            j = _skip_ws(text, i)
            directives = ""
            while j < n and text[j] == "@":
                m2 = re.match(r"@\w+\s*", text[j:])
                assert m2 is not None
                k = j + m2.end()
                if k < n and text[k] == "(":
                    k = _match(text, k, "(", ")") + 1
                directives += text[j:k]
                j = _skip_ws(text, k)
            i = j
            rf = RootField(name=name, alias=alias)
            for key, token in _ARG.findall(args_text):
                rf.args[key] = _value(token, variables)
            idem = _IDEMPOTENT.search(directives)
            if idem:
                rf.idempotency_key = str(_value(idem.group(1), variables))
            out.append(rf)
            continue
        i += 1
    return out


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n,":
        i += 1
    return i


def _skip_string(text: str, i: int) -> int:
    i += 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _match(text: str, i: int, open_: str, close: str) -> int:
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = _skip_string(text, i)
            continue
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced {open_}{close} in the GraphQL document")
