"""Every ``orderhub`` command leaves the interpreter's last collections nothing to walk (a faster exit)."""

from __future__ import annotations

import subprocess
import sys

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
