"""The pytest plugin of the connector test kit (entry point ``pytest11: orderhub_connector_kit``).

It is loaded by every pytest run in an environment where orderhub is installed, so it imports
nothing heavy at import time. It provides the fixtures the kit's tests use:

- ``orderhub_kit_db``: the URL of a throwaway SQLite database, migrated to head (a copy of one
  migrated template per session).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def orderhub_kit_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head once per session."""
    from hub.store.migrate import upgrade

    path = tmp_path_factory.mktemp("orderhub-kit") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def orderhub_kit_db(orderhub_kit_template: Path, tmp_path: Path) -> str:
    """The URL of a fresh, migrated SQLite database private to this test."""
    db = tmp_path / "kit.db"
    shutil.copy(orderhub_kit_template, db)
    return f"sqlite+aiosqlite:///{db}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "connector_kit: a test of the orderhub connector test kit")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect kit cases that do not apply to a connector (a WMS has no order-import case, a
    polling channel no webhook cases): they are not run, and not reported as skipped either."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        cls = getattr(item, "cls", None)
        check = getattr(cls, "kit_not_applicable", None)
        name = getattr(item, "originalname", item.name)
        if check is not None and check(name) is not None:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
