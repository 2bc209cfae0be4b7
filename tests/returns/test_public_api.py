"""hub.returns exports its public API, each piece documented."""

import hub.returns


def test_every_public_name_is_exported_and_documented() -> None:
    for name in hub.returns.__all__:
        obj = getattr(hub.returns, name)
        if callable(obj) and not isinstance(obj, dict):
            assert (obj.__doc__ or "").strip(), f"hub.returns.{name} has no docstring"
