"""The Python examples in docs/http.md run as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "http.md"


def _blocks() -> list[str]:
    return [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)]


async def test_docs_http_mocking_example_runs() -> None:
    block = next(b for b in _blocks() if "MockTransport" in b)
    src = "async def _example():\n" + textwrap.indent(block, "    ")
    ns: dict[str, Any] = {}
    exec(compile(src, str(DOC), "exec"), ns)
    await ns["_example"]()


async def test_docs_http_respx_using_httpx_example_runs() -> None:
    import respx

    from hub.http import client_for

    block = next(b for b in _blocks() if 'using="httpx"' in b)
    src = block.replace("...", "resp = await client.get('/orders.json')\n    assert resp.json() == {'orders': []}")
    class_block = next(b for b in _blocks() if "class Shop" in b)
    ns: dict[str, Any] = {"respx": respx}
    exec(class_block.split("router = respx.Router()")[0], ns)
    client = client_for(ns["Shop"]("shop-eu", ns["Shop"].Settings()))
    ns["client"] = client
    body = "async def _example():\n" + textwrap.indent(src, "    ")
    exec(compile(body, str(DOC), "exec"), ns)
    await ns["_example"]()
    await client.aclose()
