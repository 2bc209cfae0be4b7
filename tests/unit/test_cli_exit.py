"""Every ``orderhub`` command leaves the interpreter's last collections nothing to walk (a faster exit)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROBE = """
import atexit, gc
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))  # runs after the CLI's handlers
from hub.cli import main
{call}
"""


def _frozen_at_exit(call: str) -> str:
    r = subprocess.run(
        [sys.executable, "-c", _PROBE.format(call=call)], capture_output=True, text=True, check=False, timeout=60
    )
    return r.stdout.strip().splitlines()[-1]


def test_a_command_freezes_the_heap_before_the_interpreter_exits() -> None:
    assert _frozen_at_exit("main(['failures', '--help'])") == "frozen at exit: True"


def test_importing_the_cli_alone_changes_nothing() -> None:
    assert _frozen_at_exit("pass") == "frozen at exit: False"


def test_replay_sets_the_batch_collector_thresholds(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """``orderhub failures replay`` (here with nothing to replay) runs with ``BATCH_GC_THRESHOLDS``."""
    import os

    from hub.runtime import BATCH_GC_THRESHOLDS

    env = {
        **os.environ,
        "ORDERHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        "ORDERHUB_REDIS_URL": redis_url,
        "ORDERHUB_REDIS_PREFIX": redis_prefix,
        "ORDERHUB_CONFIG": str(tmp_path / "orderhub.toml"),
    }
    (tmp_path / "orderhub.toml").write_text("")  # no connections, no locations
    probe = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('thresholds at exit:', gc.get_threshold()))\n"
        "from hub.cli import main\n"
        "main(['failures', 'replay', '--all'])\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120
    )
    assert "nothing to replay" in r.stdout, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"thresholds at exit: {BATCH_GC_THRESHOLDS}"
