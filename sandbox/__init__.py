"""Simulated external systems for ``orderhub sandbox``: Shopify, Amazon SP-API, ShipBob, Odoo and EasyPost.

Each speaks the real wire formats, records every call, counts duplicate side effects and injects faults.
See docs/sandbox.md. ``python -m sandbox`` serves all five until interrupted.
"""

from sandbox._common import Faults
from sandbox.systems import Running, Systems, start_all

__all__ = ["Faults", "Running", "Systems", "start_all"]
