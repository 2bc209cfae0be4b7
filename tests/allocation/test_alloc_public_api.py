"""The public surface of the pure decision modules: what __all__ lists exists and is documented."""

import inspect

import hub.allocation
import hub.holds
import hub.kpis
import hub.promise


def test_allocation_all_lists_exactly_the_public_names() -> None:
    public = {n for n in dir(hub.allocation) if not n.startswith("_")}
    assert set(hub.allocation.__all__) <= public
    for name in hub.allocation.__all__:
        obj = getattr(hub.allocation, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"hub.allocation.{name} has no docstring"


def test_public_functions_of_holds_promise_and_kpis_are_documented() -> None:
    for mod in (hub.holds, hub.promise, hub.kpis):
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                assert inspect.getdoc(obj), f"{mod.__name__}.{name} has no docstring"
