import io
import json
import logging

from hub.logging import bind, configure, event, get_logger, redact, unbind


def test_log_lines_are_json_with_bound_ids_and_no_secrets_or_pii() -> None:
    buf = io.StringIO()
    configure("INFO", stream=buf)
    log = get_logger("hub.test")
    token = bind(order_id="ord_1", connection="shop-eu")
    try:
        event(
            log,
            "order imported",
            access_token="shpat_123",
            customer={"email": "ada@example.com", "name": "Ada"},
            shipping_address={"line1": "Main St 1"},
            request={"headers": {"Authorization": "Bearer abc", "X-Request-Id": "r1"}},
            sku="A-1",
        )
    finally:
        unbind(token)
    logging.getLogger().handlers.clear()
    line = buf.getvalue().strip().splitlines()[-1]
    doc = json.loads(line)
    assert doc["msg"] == "order imported" and doc["order_id"] == "ord_1" and doc["connection"] == "shop-eu"
    assert doc["sku"] == "A-1" and doc["request"]["headers"]["X-Request-Id"] == "r1"
    for secret in ("shpat_123", "ada@example.com", "Ada", "Main St 1", "Bearer abc"):
        assert secret not in line


def test_redact_keeps_structure() -> None:
    assert redact({"client_secret": "s", "items": [{"password": "p", "qty": 2}], "empty_token": ""}) == {
        "client_secret": "[redacted]",
        "items": [{"password": "[redacted]", "qty": 2}],
        "empty_token": "",
    }
