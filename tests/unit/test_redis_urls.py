"""ORDERHUB_REDIS_URL: a plain server or a Sentinel group, parsed once for the hub and arq."""

from __future__ import annotations

import pytest

from hub.config import Settings
from hub.redis_urls import SentinelTarget, arq_settings, parse_sentinel


def test_a_plain_url_is_not_a_sentinel_group() -> None:
    assert parse_sentinel("redis://127.0.0.1:6379/2") is None
    s = arq_settings("redis://:pw@127.0.0.1:6380/2")
    assert (s.host, s.port, s.database, s.password, s.sentinel) == ("127.0.0.1", 6380, 2, "pw", False)


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    t = parse_sentinel("redis+sentinel://:s3cret@sentinel-1:26379,sentinel-2:26380,sentinel-3/orderhub/3")
    assert t == SentinelTarget(
        sentinels=[("sentinel-1", 26379), ("sentinel-2", 26380), ("sentinel-3", 26379)],
        service="orderhub",
        db=3,
        password="s3cret",
    )
    s = arq_settings("rediss+sentinel://user:pw@10.0.0.1:26379/orderhub?sentinel_password=sp")
    assert s.sentinel and s.sentinel_master == "orderhub" and s.host == [("10.0.0.1", 26379)]
    assert (s.database, s.username, s.password, s.ssl) == (0, "user", "pw", True)
    target = parse_sentinel("rediss+sentinel://user:pw@10.0.0.1:26379/orderhub?sentinel_password=sp")
    assert target is not None and target.sentinel_password == "sp"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+sentinel://sentinel-1:26379", "names no service"),
        ("redis+sentinel:///orderhub", "names no sentinel"),
        ("redis+sentinel://sentinel-1:port/orderhub", "is not host:port"),
        ("redis+sentinel://sentinel-1:26379/orderhub/zero", "must be /service or /service/db"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_at_start_with_an_example(
    url: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERHUB_REDIS_URL", url)
    with pytest.raises(ValueError, match=why) as exc:
        Settings()
    assert "redis+sentinel://:password@sentinel-1:26379" in str(exc.value)
