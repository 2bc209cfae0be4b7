import pytest
from alloc_factories import loc

from hub.allocation import atp_by_location, atp_for_channel
from hub.errors import InputError
from hub.model import InventoryLevel


def lv(location: str, on_hand: int, reserved: int = 0, safety: int = 0, sku: str = "A") -> InventoryLevel:
    return InventoryLevel(sku=sku, location=location, on_hand=on_hand, reserved=reserved, safety_stock=safety)


def test_atp_per_location_is_on_hand_less_reserved_less_safety_stock() -> None:
    assert atp_by_location([lv("w1", 10, 3, 2), lv("w2", 5)]) == {"w1": 5, "w2": 5}


def test_atp_per_location_never_goes_below_zero() -> None:
    assert atp_by_location([lv("w1", 3, 2, 5)]) == {"w1": 0}


def test_atp_refuses_levels_of_several_skus() -> None:
    with pytest.raises(InputError, match="one SKU at a time"):
        atp_by_location([lv("w1", 1), lv("w1", 1, sku="B")])


def test_channel_atp_counts_only_locations_serving_the_channel() -> None:
    locations = [loc("w1"), loc("w2", channels=["amazon"]), loc("w3", channels=["shop", "amazon"])]
    levels = [lv("w1", 4), lv("w2", 7), lv("w3", 2), lv("unknown", 100)]
    assert atp_for_channel(levels, locations, "shop") == 6
    assert atp_for_channel(levels, locations, "amazon") == 13


def test_channel_buffer_is_held_back_and_atp_never_negative() -> None:
    locations = [loc("w1")]
    assert atp_for_channel([lv("w1", 10)], locations, "shop", buffer=3) == 7
    assert atp_for_channel([lv("w1", 2)], locations, "shop", buffer=3) == 0
