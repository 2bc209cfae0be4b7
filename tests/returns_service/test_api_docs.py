"""docs/api.md lists every route of the app, and each request body it shows is accepted by its route."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hub.api._routing import Route
from hub.api.app import all_routes

DOC = Path(__file__).parents[2] / "docs" / "api.md"
HEADING = re.compile(r"^### (GET|POST|DELETE|PUT|PATCH) (\S+)$", re.M)
HTTP_BLOCK = re.compile(r"```http\n(.*?)```", re.S)


def _match(routes: list[Route], method: str, path: str) -> Route:
    for r in routes:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", r.path) + "$"
        if r.method == method and re.match(pattern, path):
            return r
    raise AssertionError(f"docs/api.md shows {method} {path}, which no route answers")


def test_every_route_of_the_app_is_documented() -> None:
    documented = set(HEADING.findall(DOC.read_text(encoding="utf-8")))
    routes = {(r.method, r.path) for r in all_routes()} | {("GET", "/openapi.json")}
    assert routes - documented == set(), "routes missing from docs/api.md"
    assert documented - routes == set(), "docs/api.md documents routes the app does not have"


def test_every_request_body_in_the_docs_is_accepted_by_its_route() -> None:
    routes = all_routes()
    checked = 0
    for block in HTTP_BLOCK.findall(DOC.read_text(encoding="utf-8")):
        head, _, body = block.partition("\n\n")
        method, target = head.splitlines()[0].split(" ", 1)
        if target == "/openapi.json":
            continue
        route = _match(routes, method, target.split("?", 1)[0])
        if route.body is None or not body.strip():
            continue
        route.body.model_validate(json.loads(body))
        checked += 1
    assert checked >= 10
