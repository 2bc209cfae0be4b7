"""The plugin manager and the connector registry.

Connectors are discovered through the entry-point group ``orderhub.connectors``; the
built-in ones are registered the same way (see pyproject.toml). An entry point names a
module or object that implements ``orderhub_register_connectors``.
"""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import ValidationError

from hub.plugins import hookspecs
from hub.plugins._base import Connector

ENTRY_POINT_GROUP = "orderhub.connectors"
hookimpl = pluggy.HookimplMarker("orderhub")


@dataclass(frozen=True)
class ConnectorInfo:
    """A discovered connector class and where it came from."""

    name: str
    kind: str
    capabilities: tuple[str, ...]
    source: str
    cls: type[Connector] = field(repr=False, compare=False)


@dataclass
class Registry:
    """Connectors by name, plus the entry points that failed to load (with why)."""

    connectors: dict[str, ConnectorInfo] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> type[Connector]:
        try:
            return self.connectors[name].cls
        except KeyError:
            known = ", ".join(sorted(self.connectors)) or "none"
            raise KeyError(f"no connector named {name!r} is installed (installed: {known})") from None


class PluginManager(pluggy.PluginManager):
    def __init__(self) -> None:
        super().__init__("orderhub")
        self.add_hookspecs(hookspecs)


def _dist_of(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def load(*, extra_plugins: list[Any] | None = None, entry_points: bool = True) -> tuple[PluginManager, Registry]:
    """A plugin manager with the built-in policies, every entry-point plugin and ``extra_plugins``,
    and the registry of the connectors they registered."""
    from hub import policies

    pm = PluginManager()
    pm.register(policies, name="orderhub.defaults")
    registry = Registry()
    sources: dict[int, str] = {}
    if entry_points:
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            try:
                plugin = ep.load()
                if pm.get_plugin(ep.name) is None and not pm.is_registered(plugin):
                    pm.register(plugin, name=ep.name)
                sources[id(plugin)] = _dist_of(ep)
            except Exception as exc:  # a broken third-party plugin must not stop the hub
                registry.errors[ep.name] = f"{type(exc).__name__}: {exc}"
    for p in extra_plugins or []:
        pm.register(p)
        sources[id(p)] = getattr(p, "__name__", type(p).__name__)

    for impl in pm.hook.orderhub_register_connectors.get_hookimpls():
        source = sources.get(id(impl.plugin), impl.plugin_name)

        def register(cls: type[Any], _source: str = source) -> None:
            if not (isinstance(cls, type) and issubclass(cls, Connector)):
                raise TypeError(f"{cls!r} is not a hub.plugins.Connector subclass")
            if cls.name in registry.connectors and registry.connectors[cls.name].cls is not cls:
                registry.errors[cls.name] = f"connector name {cls.name!r} registered twice ({_source})"
                return
            registry.connectors[cls.name] = ConnectorInfo(
                name=cls.name,
                kind=str(cls.kind),
                capabilities=tuple(sorted(str(c) for c in cls.capabilities)),
                source=_source,
                cls=cls,
            )

        impl.function(register=register)
    return pm, registry


def settings_problems(registry: Registry, connections: list[Any]) -> list[tuple[str, str, str]]:
    """Validate each connection's settings with its connector's Settings model (for ConfigError)."""
    problems: list[tuple[str, str, str]] = []
    for i, conn in enumerate(connections):
        where = f"connections[{i}]"
        try:
            cls = registry.get(conn.connector)
        except KeyError as exc:
            problems.append((f"{where}.connector", repr(conn.connector), str(exc.args[0])))
            continue
        try:
            cls.Settings.model_validate(conn.settings)
        except ValidationError as exc:
            for e in exc.errors():
                key = ".".join(str(p) for p in e["loc"])
                secretish = any(s in key for s in ("token", "secret", "key", "password"))
                problems.append((f"{where}.settings.{key}", "" if secretish else repr(e.get("input"))[:60], e["msg"]))
    return problems
