"""No token, api key or password reaches a log line or an error snapshot."""

from __future__ import annotations

import io
import logging

import httpx
import pytest
import respx

from hub.errors import FatalError
from hub.http import RetryPolicy, call, client_for, redact_headers, redact_url, request_snapshot
from hub.logging import JsonFormatter
from hub.plugins import Connector

TOKEN = "shpat_0123456789abcdef"
URL = "https://demo.myshopify.com/admin/api/2026-07/orders.json"


def test_secret_headers_are_redacted_whatever_their_spelling() -> None:
    got = redact_headers(
        {
            "Authorization": "Bearer pat_abc",
            "X-Shopify-Access-Token": TOKEN,
            "x-amz-access-token": "Atza|IwEB",
            "X-Api-Key": "EZAK123",
            "X-Hmac-Signature": "hmac-sha256-hex=00",
            "Cookie": "session=1",
            "Idempotency-Key": "ful_01",
            "Content-Type": "application/json",
        }
    )
    assert got == {
        "Authorization": "[redacted]",
        "X-Shopify-Access-Token": "[redacted]",
        "x-amz-access-token": "[redacted]",
        "X-Api-Key": "[redacted]",
        "X-Hmac-Signature": "[redacted]",
        "Cookie": "[redacted]",
        "Idempotency-Key": "ful_01",
        "Content-Type": "application/json",
    }


def test_secret_query_parameters_and_user_info_are_redacted() -> None:
    url = redact_url("https://user:pw@api.example.com/v2/x?access_token=abc&api_key=k&limit=5&email=a@b.c")
    assert url == "https://api.example.com/v2/x?access_token=[redacted]&api_key=[redacted]&limit=5&email=[redacted]"


def test_snapshot_removes_secret_values_even_in_positional_json_rpc_args() -> None:
    # Odoo JSON-RPC execute_kw: [db, uid, password_or_api_key, model, method, args] (FORMATS.md 5.1)
    body = {
        "jsonrpc": "2.0",
        "method": "call",
        "params": {
            "service": "object",
            "method": "execute_kw",
            "args": ["db", 2, "odoo-key-42", "sale.order", "create", [{}]],
        },
    }
    req = httpx.Request("POST", "https://erp.example.com/jsonrpc", json=body)
    snap = request_snapshot(req, secrets={"odoo-key-42"})
    assert "odoo-key-42" not in str(snap)
    assert snap["body"]["params"]["args"][2] == "[redacted]"


async def test_request_logs_carry_method_path_status_latency_connection_and_no_secrets(
    demo: Connector, caplog: pytest.LogCaptureFixture
) -> None:
    router = respx.Router()
    router.get(URL).respond(200, json={"orders": []})
    router.post(URL).respond(422, json={"errors": {"access_token": TOKEN}})
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("hub.http")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        async with client_for(demo, transport=httpx.MockTransport(router.async_handler), retry=RetryPolicy()) as client:
            await client.get("/orders.json", params={"access_token": TOKEN, "status": "any"})
            with pytest.raises(FatalError) as info:
                await call(client, "POST", "/orders.json", json={"order": {"email": "jon@example.com"}})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    out = stream.getvalue()
    assert TOKEN not in out
    assert '"method":"GET"' in out and '"path":"/admin/api/2026-07/orders.json"' in out
    assert '"status":200' in out and '"connection":"shop-eu"' in out and '"latency_ms"' in out
    err = info.value
    assert TOKEN not in str(err.request) + str(err.response) + err.detail
    assert "jon@example.com" not in str(err.request)
    assert err.request is not None and err.request["headers"]["x-shopify-access-token"] == "[redacted]"
