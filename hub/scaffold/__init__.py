"""``orderhub connector new NAME --kind KIND``: writes an installable connector package.

The package has a pyproject with the ``orderhub.connectors`` entry point, a connector class on
the kind's base class with its settings, a mapping file, example fixtures, and tests that run
the connector test kit (``hub.testing``) and pass as generated.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

from hub.errors import InputError

TEMPLATES = Path(__file__).parent / "templates"
KINDS = ("channel", "wms", "erp", "carrier")
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
#: Kinds whose template takes webhooks (and so gets the Standard Webhooks helper).
_WEBHOOKS = {"channel", "wms", "carrier"}
_SETTINGS = {
    "channel": 'api_key = "env:{NAME}_API_KEY"\nwebhook_secret = "env:{NAME}_WEBHOOK_SECRET"',
    "wms": 'api_key = "env:{NAME}_API_KEY"\nwebhook_secret = "env:{NAME}_WEBHOOK_SECRET"',
    "carrier": 'api_key = "env:{NAME}_API_KEY"\nwebhook_secret = "env:{NAME}_WEBHOOK_SECRET"',
    "erp": 'url = "https://erp.example.com"\napi_key = "env:{NAME}_API_KEY"',
}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _hub_version() -> str:
    try:
        return md.version("orderhub")
    except md.PackageNotFoundError:  # pragma: no cover - running from a checkout without install
        return "0.1.0"


def _target(template: str, kind: str, name: str, package: str) -> str | None:
    """Where a template file goes in the generated package (None: not for this kind)."""
    common = {
        "pyproject.toml.tmpl": "pyproject.toml",
        "README.md.tmpl": "README.md",
        "init.py.tmpl": f"{package}/__init__.py",
        "plugin.py.tmpl": f"{package}/plugin.py",
    }
    if template in common:
        return common[template]
    if template == "sw.py.tmpl":
        return f"{package}/_signing.py" if kind in _WEBHOOKS else None
    if template.startswith(f"fx.{kind}."):
        rest = template[len(f"fx.{kind}.") :]
        folder = "outbound" if rest.endswith((".request.json", ".response.json")) else "webhooks"
        return f"tests/fixtures/{folder}/{rest}"
    if not template.startswith(f"{kind}."):
        return None
    rest = template[len(f"{kind}.") :].removesuffix(".tmpl")
    if rest == "connector.py":
        return f"{package}/connector.py"
    if rest == "test.py":
        return f"tests/test_{name}.py"
    if rest.endswith(".yaml"):
        return f"{package}/mappings/{rest}"
    return None


def generate(name: str, kind: str, dest: str | Path = ".") -> Path:
    """Write the package ``orderhub-NAME`` under ``dest``; returns its directory."""
    if not _NAME.match(name):
        raise InputError(
            f"connector name {name!r} is not valid: use 2-40 lower-case letters, digits or '_', starting with a letter"
        )
    if kind not in KINDS:
        raise InputError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    dist = "orderhub-" + name.replace("_", "-")
    root = Path(dest) / dist
    if root.exists():
        raise InputError(f"{root} already exists: choose another NAME or --dir, or remove it")
    package = f"orderhub_{name}"
    values = {
        "{{name}}": name,
        "{{Name}}": _camel(name),
        "{{package}}": package,
        "{{dist}}": dist,
        "{{kind}}": kind,
        "{{hub_version}}": _hub_version(),
        "{{settings_toml}}": _SETTINGS[kind].replace("{NAME}", name.upper()),
    }
    written = 0
    for tpl in sorted(TEMPLATES.iterdir()):
        if not tpl.is_file() or tpl.name == "__init__.py":
            continue
        target = _target(tpl.name, kind, name, package)
        if target is None:
            continue
        text = tpl.read_text()
        for key, value in values.items():
            text = text.replace(key, value)
        out = root / target
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        written += 1
    (root / package / "py.typed").write_text("")
    if written == 0:  # pragma: no cover - a broken installation
        raise InputError(f"no scaffold templates found in {TEMPLATES}")
    return root


__all__ = ["KINDS", "generate"]
