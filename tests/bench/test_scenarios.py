"""bench.scenarios: the per-second figures of an open-loop phase."""

from __future__ import annotations

from bench.scenarios import ack_p99_by_second


def test_acks_are_grouped_by_the_second_each_request_was_due() -> None:
    acks = [1.0, 2.0, 3.0, 40.0, 5.0]
    assert ack_p99_by_second(acks, 2.0) == [2.0, 40.0, 5.0]  # due at 0, 0.5 | 1, 1.5 | 2
    assert ack_p99_by_second(acks, 2.5) == [3.0, 40.0]  # 0, 0.4, 0.8 | 1.2, 1.6: a fractional rate
    assert ack_p99_by_second(acks, 0.5) == [1.0, 2.0, 3.0, 40.0, 5.0]  # one every 2 s: under 1/s
