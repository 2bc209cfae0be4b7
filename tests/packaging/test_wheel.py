"""The wheel carries what an installed hub needs beyond Python code: the connectors' declarative
mappings and the JSON Schemas, found by the installed hub (not only by a source checkout)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_installed_wheel_finds_its_mappings(tmp_path: Path) -> None:
    # built from a copy: setuptools' build/ folder in a checkout could hold files of an older build
    src = tmp_path / "src"
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for part in ("hub", "connectors", "sandbox", "mappings"):
        shutil.copytree(ROOT / part, src / part, ignore=junk)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    # no build isolation: builds offline with this environment's setuptools and wheel (dev extra)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    res = subprocess.run(
        [*pip_wheel, "-w", str(tmp_path), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = tmp_path.glob("orderhub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "mappings/_meta/mapping.schema.json",
        "mappings/shopify/order.yaml",
        "mappings/amazon/order_v0.yaml",
        "mappings/schemas/events/order.allocated.json",
    ):
        assert needed in names, needed

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import hub, connectors.shopify\n"
        "from hub.mapping import MappingSet, mappings_dir\n"
        f"assert hub.__file__.startswith({str(site)!r}), hub.__file__\n"
        "print(mappings_dir())\n"
        "ms = MappingSet.for_connector('shopify')\n"
        "assert ms.problems() == [], ms.problems()\n"
        "print(ms.objects)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0] == str(site / "mappings")
    assert "order" in out.stdout.splitlines()[1]
