"""Make ``connectors`` resolve to the real package, not to the ``tests/connectors`` folder.

pytest puts ``tests/`` on ``sys.path`` (rootdir ``conftest.py``), where ``connectors/`` is a folder without
``__init__.py``: Python's path finder would take it as a namespace package before the editable-install finder
runs. With the repository root on ``sys.path`` the regular package wins. (A project-wide
``pythonpath = ["."]`` in ``[tool.pytest.ini_options]`` would make this file unnecessary.)
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
_cached = sys.modules.get("connectors")
if _cached is not None and getattr(_cached, "__file__", None) is None:
    for _name in [m for m in sys.modules if m == "connectors" or m.startswith("connectors.")]:
        del sys.modules[_name]
