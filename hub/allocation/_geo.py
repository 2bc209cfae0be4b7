"""Distances between a location and a ship-to address.

With coordinates on both sides the great-circle (haversine) distance is used. Without them the
distance is *approximated* from the postal codes and countries (see :data:`APPROX_KM`), so that
``nearest`` and the delivery promise still prefer a location in the same postal area, then the same
country, over one abroad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hub.model import Address, Location

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)

#: Approximate distance (km) when coordinates are missing, by the length of the common prefix of the
#: two postal codes (letters and digits only, upper-cased) within one country; ``"country"`` is the
#: same country with no common prefix or no postal code; ``"abroad"`` a different country.
APPROX_KM: dict[str, float] = {"3": 25.0, "2": 75.0, "1": 300.0, "country": 800.0, "abroad": 2000.0}


@dataclass(frozen=True)
class Distance:
    """A distance in km; ``approx`` is True when it was estimated from postal codes and countries."""

    km: float
    approx: bool
    international: bool


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two (latitude, longitude) points in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _norm_postal(code: str | None) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def distance(location: Location, address: Address | None) -> Distance | None:
    """Distance from ``location`` to ``address``; ``None`` when there is no address."""
    if address is None:
        return None
    international = location.country != address.country
    if None not in (location.latitude, location.longitude, address.latitude, address.longitude):
        km = haversine_km(location.latitude, location.longitude, address.latitude, address.longitude)  # type: ignore[arg-type]
        return Distance(km, approx=False, international=international)
    if international:
        return Distance(APPROX_KM["abroad"], approx=True, international=True)
    a, b = _norm_postal(location.postal_code), _norm_postal(address.postal_code)
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    key = str(min(common, 3)) if common else "country"
    return Distance(APPROX_KM[key], approx=True, international=False)
