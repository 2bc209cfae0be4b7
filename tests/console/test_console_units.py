"""Pure parts of the console: time buckets, SVG charts, URL display."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.console._data import age, per_hour, per_minute
from hub.console._svg import bar_chart, line_chart
from hub.console._views import safe_url

END = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_per_minute_counts_each_minute_of_the_last_hour_oldest_first() -> None:
    times = [END - timedelta(seconds=1), END - timedelta(seconds=59), END - timedelta(minutes=59, seconds=30)]
    times += [END, END - timedelta(hours=2)]  # outside the window
    counts = per_minute(times, END)
    assert len(counts) == 60 and counts[-1] == 2 and counts[0] == 1 and sum(counts) == 3


def test_per_hour_sums_minutes_into_24_hours() -> None:
    counts = per_hour([END - timedelta(minutes=5), END - timedelta(hours=23, minutes=30)], END)
    assert len(counts) == 24 and counts[-1] == 1 and counts[0] == 1


def test_bar_chart_draws_one_bar_per_value_and_escapes_text() -> None:
    svg = bar_chart([0, 3, 1], title="<b>x</b>", first_label="a&b")
    assert svg.count("<rect") == 3 and "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg and "a&amp;b" in svg
    assert svg.startswith("<svg") and "<script" not in svg


def test_line_chart_draws_a_line_per_series_and_a_dot_for_a_single_sample() -> None:
    svg = line_chart({"inbox": [1, 2, 3], "jobs": [5]}, title="depth")
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 1 and ">inbox<" in svg


def test_partner_urls_are_shown_without_credentials_or_query() -> None:
    assert safe_url("https://u:p@hooks.example.com:8443/in?token=s3cret") == "https://hooks.example.com:8443/in?…"
    assert safe_url("https://hooks.example.com/in") == "https://hooks.example.com/in"


def test_age_reads_like_a_person_would_say_it() -> None:
    assert [age(5), age(600), age(7200), age(3 * 86400)] == ["5 s", "10 min", "2.0 h", "3.0 d"]
