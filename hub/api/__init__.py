"""The HTTP API (aiohttp)."""

from hub.api._routing import HUB_KEY, Router, json_response, problem
from hub.api.app import make_app

__all__ = ["HUB_KEY", "Router", "json_response", "make_app", "problem"]
