"""Signatures over the raw body: the vendors' own constructions, constant-time, tolerance-bound."""

from __future__ import annotations

import pytest

from webhooks.signatures import SignatureError, shopify_hmac, stripe_header, verify_shopify, verify_stripe

pytestmark = pytest.mark.webhooks

VECTOR_BODY = b'{"id":"evt_test_webhook","object":"event"}'
VECTOR_HEADER = "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"


def test_stripe_signature_matches_the_documented_test_vector():
    assert stripe_header("whsec_test_secret", VECTOR_BODY, 1_700_000_000) == VECTOR_HEADER
    verify_stripe(VECTOR_HEADER, VECTOR_BODY, "whsec_test_secret", 300, now=1_700_000_100)


def test_stripe_accepts_any_of_several_v1_signatures_and_ignores_v0():
    header = "t=1700000000,v0=abc,v1=" + "0" * 64 + "," + VECTOR_HEADER.split(",")[1]
    verify_stripe(header, VECTOR_BODY, "whsec_test_secret", 300, now=1_700_000_000)


@pytest.mark.parametrize(("header", "body", "now", "why"), [
    (VECTOR_HEADER, VECTOR_BODY + b" ", 1_700_000_000, "does not match"),  # tampered body
    (VECTOR_HEADER.replace("v1=d9", "v1=d8"), VECTOR_BODY, 1_700_000_000, "does not match"),  # forged signature
    (VECTOR_HEADER, VECTOR_BODY, 1_700_000_301, "tolerance"),  # stale: replayed over 5 minutes later
    (VECTOR_HEADER, VECTOR_BODY, 1_699_999_699, "tolerance"),  # from the future
    ("v1=d95c", VECTOR_BODY, 1_700_000_000, "lacks"),
    (None, VECTOR_BODY, 1_700_000_000, "no Stripe-Signature"),
])
def test_stripe_refuses_tampered_forged_stale_and_malformed(header, body, now, why):
    with pytest.raises(SignatureError, match=why) as refused:
        verify_stripe(header, body, "whsec_test_secret", 300, now=now)
    assert "whsec_test_secret" not in str(refused.value)


def test_stripe_refuses_a_signature_made_with_another_secret():
    with pytest.raises(SignatureError):
        verify_stripe(stripe_header("whsec_other", VECTOR_BODY, 1_700_000_000), VECTOR_BODY, "whsec_test_secret",
                      300, now=1_700_000_000)


def test_shopify_hmac_is_base64_sha256_of_the_raw_body():
    # computed independently: printf '{"id":1}' | openssl dgst -sha256 -hmac secret -binary | base64
    assert shopify_hmac("secret", b'{"id":1}') == "A971iWIMgT8Zj9A9eWfikrFj7wQ16/Qwcc4OlRl2PLc="
    verify_shopify(shopify_hmac("secret", b'{"id":1}'), b'{"id":1}', "secret")
    for header, body in ((shopify_hmac("secret", b'{"id":1}'), b'{"id":2}'), ("AAAA", b'{"id":1}'), (None, b"{}")):
        with pytest.raises(SignatureError):
            verify_shopify(header, body, "secret")
