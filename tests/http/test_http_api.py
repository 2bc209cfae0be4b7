"""The public surface of hub.http and hub.testing is their ``__all__``, each name documented."""

from __future__ import annotations

import inspect

import pytest

import hub.http
import hub.testing


@pytest.mark.parametrize("module", [hub.http, hub.testing])
def test_every_public_name_exists_and_has_a_docstring(module: object) -> None:
    for name in module.__all__:  # type: ignore[attr-defined]
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"  # type: ignore[attr-defined]


def test_client_for_keeps_the_signature_the_runtime_calls() -> None:
    params = inspect.signature(hub.http.client_for).parameters
    assert list(params)[:6] == ["connector", "timeout", "transport", "redis", "prefix", "rate_per_second"]
