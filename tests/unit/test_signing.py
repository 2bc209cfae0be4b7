import pytest
from standardwebhooks.webhooks import Webhook

from hub import signing
from hub.errors import AuthError

# Test vector from standard-webhooks/standard-webhooks libraries/python/tests/test_webhooks.py (test_sign_function).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = b'{"test": 2432232314}'


def test_matches_the_spec_test_vector() -> None:
    assert signing.sign(SECRET, MSG_ID, TS, BODY) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_library_verifies_our_signature() -> None:
    secret = signing.new_secret()
    h = signing.headers([secret], "evt_1", b'{"a":1}')
    assert Webhook(secret).verify(b'{"a":1}', h) == {"a": 1}


def test_verify_accepts_one_valid_among_decoys() -> None:
    h = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TS),
        "webhook-signature": "v2,Zm9v v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    assert signing.verify(SECRET, h, BODY, now=TS) == MSG_ID


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="}, "no valid v1"),
        ({"webhook-timestamp": str(TS - 600)}, "tolerance"),
        ({"webhook-id": ""}, "missing"),
    ],
)
def test_verify_refuses(change: dict[str, str], why: str) -> None:
    h = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TS),
        "webhook-signature": signing.sign(SECRET, MSG_ID, TS, BODY),
    }
    h.update(change)
    with pytest.raises(AuthError, match=why):
        signing.verify(SECRET, h, BODY, now=TS)
