from datetime import UTC, datetime, timedelta

import pytest
from alloc_factories import BERLIN, MUNICH, PARIS, POTSDAM, address, levels, loc

from hub.errors import InputError
from hub.promise import (
    DEFAULT_TRANSIT,
    TransitTable,
    add_weekdays,
    deliver_by,
    promise,
    promise_for_address,
    promise_for_locations,
    ship_by,
)

POTSDAM_WH = loc("potsdam", coords=POTSDAM, cutoff_hour=15, handling_days=1)
BERLIN_ADDR = address(**BERLIN)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)  # 2026-03-02 is a Monday


def test_order_before_cutoff_on_friday_ships_monday() -> None:
    assert ship_by(POTSDAM_WH, utc(6, 14, 59)) == utc(9, 15)


def test_order_after_cutoff_on_friday_ships_tuesday() -> None:
    assert ship_by(POTSDAM_WH, utc(6, 15)) == utc(10, 15)


def test_order_on_the_weekend_counts_from_monday() -> None:
    assert ship_by(POTSDAM_WH, utc(7, 9)) == utc(10, 15)
    assert ship_by(POTSDAM_WH, utc(8, 23)) == utc(10, 15)


def test_zero_handling_days_ships_the_same_day_before_cutoff() -> None:
    same_day = loc("w", handling_days=0, cutoff_hour=12)
    assert ship_by(same_day, utc(3, 11)) == utc(3, 12)
    assert ship_by(same_day, utc(3, 12)) == utc(4, 12)


def test_deliver_by_adds_transit_weekdays_by_distance_band_across_the_weekend() -> None:
    p = promise(POTSDAM_WH, BERLIN_ADDR, utc(5, 10))  # Thursday: ships Friday, 1 transit day (~25 km)
    assert p.ship_by == utc(6, 15)
    assert p.deliver_by == datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC)  # Monday


@pytest.mark.parametrize(
    ("origin", "dest_country", "days"),
    [
        (POTSDAM, "DE", 1),  # ~25 km
        (MUNICH, "DE", 3),  # ~504 km
        (PARIS, "FR", 3),  # ~878 km (both sides tagged FR here, so only the distance band counts)
    ],
)
def test_transit_days_follow_the_distance_bands(origin: dict[str, float], dest_country: str, days: int) -> None:
    wh = loc("w", coords=origin, country=dest_country)
    shipped = utc(2, 15)  # Monday
    assert deliver_by(wh, address(country=dest_country, **BERLIN), shipped).date() == add_weekdays(shipped.date(), days)


def test_international_shipments_take_extra_days() -> None:
    paris = loc("paris", country="FR", coords=PARIS)
    shipped = utc(2, 15)
    assert deliver_by(paris, BERLIN_ADDR, shipped).date() == add_weekdays(shipped.date(), 3 + 2)


def test_transit_table_is_configurable() -> None:
    fast = TransitTable(bands=((1000.0, 1),), beyond=2, international_extra=0)
    wh = loc("munich", coords=MUNICH)
    assert deliver_by(wh, BERLIN_ADDR, utc(2, 15), fast).date() == utc(3, 0).date()
    assert DEFAULT_TRANSIT.days(None) == 3


def test_promise_for_several_locations_is_the_latest_parcel() -> None:
    network = [POTSDAM_WH, loc("munich", coords=MUNICH, handling_days=2)]
    p = promise_for_locations(["potsdam", "munich"], network, BERLIN_ADDR, utc(2, 10))
    assert p is not None
    assert p.ship_by == utc(4, 15)
    assert p.deliver_by == datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC)  # Wed + 3 weekdays
    assert promise_for_locations([], network, BERLIN_ADDR, utc(2, 10)) is None


def test_promise_for_address_picks_the_location_that_delivers_first_with_stock() -> None:
    network = [loc("munich", coords=MUNICH, priority=1), POTSDAM_WH, loc("paris", country="FR", coords=PARIS)]
    stock = levels({("A", "munich"): 5, ("A", "potsdam"): 2, ("A", "paris"): 9})
    ap = promise_for_address("A", 2, BERLIN_ADDR, stock, network, utc(2, 10))
    assert ap is not None
    assert (ap.location, ap.available) == ("potsdam", 2)
    assert ap.deliver_by == datetime(2026, 3, 4, 23, 59, 59, tzinfo=UTC)
    assert ap.alternatives == ["munich", "paris"]
    # potsdam cannot ship 3: munich is next best
    ap3 = promise_for_address("A", 3, BERLIN_ADDR, stock, network, utc(2, 10))
    assert ap3 is not None and ap3.location == "munich"
    assert promise_for_address("A", 10, BERLIN_ADDR, stock, network, utc(2, 10)) is None


def test_promise_for_address_works_from_postal_code_and_country_only() -> None:
    network = [loc("berlin", postal_code="10115"), loc("munich", postal_code="80331")]
    stock = levels({("A", "berlin"): 1, ("A", "munich"): 1})
    ap = promise_for_address("A", 1, address(line1=None, city=None), stock, network, utc(2, 10))
    assert ap is not None and ap.location == "berlin" and ap.distance_approx
    assert ap.to_json()["deliver_by"] == "2026-03-04T23:59:59+00:00"


def test_promise_requires_timezone_aware_times_and_positive_quantities() -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        ship_by(POTSDAM_WH, datetime(2026, 3, 2, 10))
    with pytest.raises(InputError, match="positive"):
        promise_for_address("A", 0, BERLIN_ADDR, [], [POTSDAM_WH], utc(2, 10))


def test_add_weekdays_skips_saturday_and_sunday() -> None:
    friday = utc(6, 0).date()
    assert add_weekdays(friday, 1) == friday + timedelta(days=3)
    assert add_weekdays(friday + timedelta(days=1), 0) == friday + timedelta(days=3)
