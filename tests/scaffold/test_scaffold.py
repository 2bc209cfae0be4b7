"""``orderhub connector new``: the generated package installs, is discovered, and its tests pass as generated."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hub.errors import InputError
from hub.scaffold import KINDS, generate

BIN = Path(sys.executable).parent
ORDERHUB = str(BIN / "orderhub")


def _run(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _pytest(root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"], cwd=root, env=env)


def test_generated_channel_package_installs_is_listed_and_passes_its_tests(tmp_path: Path) -> None:
    name = f"kit_{uuid.uuid4().hex[:6]}"  # unique: other test runs share this environment
    dist = "orderhub-" + name.replace("_", "-")
    root = generate(name, "channel", tmp_path)
    assert (root / "pyproject.toml").is_file()
    try:
        # no build isolation: builds offline with the setuptools and wheel of this environment (dev extra)
        res = _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(root)])
        assert res.returncode == 0, res.stderr[-2000:]

        res = _run([ORDERHUB, "connectors", "list"])
        assert res.returncode == 0, res.stderr
        line = next((ln for ln in res.stdout.splitlines() if ln.startswith(name + " ")), None)
        assert line is not None, res.stdout
        assert "channel" in line and f"{dist} 0.1.0" in line and "webhooks" in line and "push_inventory" in line

        res = _pytest(root)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
        assert "passed" in res.stdout and "failed" not in res.stdout
    finally:
        _run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", dist])
    res = _run([ORDERHUB, "connectors", "list"])
    assert name not in res.stdout


def test_generated_package_tests_pass_for_every_other_kind(tmp_path: Path) -> None:
    """wms, erp and carrier packages, run in one pytest process (their settings are the same)."""
    kinds = [k for k in KINDS if k != "channel"]
    roots = {kind: generate(f"gen_{kind}", kind, tmp_path) for kind in kinds}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(r) for r in roots.values())}
    first = roots[kinds[0]]
    res = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "-c",
            str(first / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            *(str(r / "tests") for r in roots.values()),
        ],
        cwd=tmp_path,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    for kind, root in roots.items():
        assert (
            f"test_gen_{kind}.py::TestGen{kind.capitalize()}::test_kit_good_settings_are_accepted PASSED" in res.stdout
        )
        connector = (root / f"orderhub_gen_{kind}" / "connector.py").read_text()
        base = {"wms": "WmsConnector", "erp": "ErpConnector", "carrier": "CarrierConnector"}[kind]
        assert f"({base}):" in connector
        pyproject = (root / "pyproject.toml").read_text()
        assert '[project.entry-points."orderhub.connectors"]' in pyproject
        assert f'gen_{kind} = "orderhub_gen_{kind}.plugin"' in pyproject and "orderhub>=" in pyproject


def test_generated_mapping_files_pass_the_mapping_check(tmp_path: Path) -> None:
    from hub.mapping import check_file

    for kind in KINDS:
        root = generate(f"map_{kind}", kind, tmp_path)
        files = list((root / f"orderhub_map_{kind}" / "mappings").glob("*.yaml"))
        assert files, kind
        for f in files:
            assert check_file(f) == [], f


def test_bad_name_kind_or_existing_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not valid"):
        generate("Acme-Shop", "channel", tmp_path)
    with pytest.raises(InputError, match="not one of"):
        generate("acme", "pos", tmp_path)
    generate("acme", "wms", tmp_path)
    with pytest.raises(InputError, match="already exists"):
        generate("acme", "wms", tmp_path)


def test_cli_connector_new_writes_the_package_and_says_what_next(tmp_path: Path) -> None:
    res = _run([ORDERHUB, "connector", "new", "acme", "--kind", "erp", "--dir", str(tmp_path)])
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "orderhub-acme" / "orderhub_acme" / "connector.py").is_file()
    assert "pip install -e" in res.stdout
    res = _run([ORDERHUB, "connector", "new", "acme", "--kind", "erp", "--dir", str(tmp_path)])
    assert res.returncode == 2 and "already exists" in res.stderr
