from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from hub.config import HubConfig
from hub.store import Store


class HubLike(Protocol):
    """What the events engine needs of :class:`hub.runtime.Hub` (tests may pass a smaller object)."""

    @property
    def store(self) -> Store: ...

    @property
    def config(self) -> HubConfig: ...

    @property
    def state(self) -> dict[str, Any]: ...


if TYPE_CHECKING:
    from hub.runtime import Hub

    def _runtime_hub_fits(hub: Hub) -> HubLike:  # mypy checks that the real Hub satisfies HubLike
        return hub
