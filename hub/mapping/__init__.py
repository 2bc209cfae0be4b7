"""Declarative mappings (placeholder API; the engine lands with the mapping work)."""

from __future__ import annotations

from typing import Any


class MappingSet:
    """The mapping files of one connector (with a connection's overrides)."""

    def __init__(self, connector: str, overrides: dict[str, str] | None = None) -> None:
        self.connector = connector
        self.overrides = overrides or {}

    @classmethod
    def for_connector(cls, connector: str, overrides: dict[str, str] | None = None) -> MappingSet:
        return cls(connector, overrides)

    def apply(self, obj: str, payload: Any) -> dict[str, Any]:
        raise NotImplementedError("the mapping engine is not built yet")
