"""Verifying (and, for the sandbox and tests, making) the vendors' webhook signatures, over the raw body,
compared in constant time. Errors name what is wrong with the request, never a secret or a signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


class SignatureError(ValueError):
    """The delivery is not provably from the vendor: refuse it (4xx) and store nothing."""


def stripe_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex `v1` of `Stripe-Signature`: HMAC-SHA256 of `"<t>.<raw body>"`, the secret used as-is."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def stripe_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={stripe_signature(secret, timestamp, body)}"


def verify_stripe(header: str | None, body: bytes, secret: str, tolerance_s: float,
                  now: float | None = None) -> None:
    """Accept if any `v1` in the header matches and `t` is within the tolerance of now (api-contracts 3.5)."""
    if not header:
        raise SignatureError("no Stripe-Signature header")
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not timestamp.isdigit() or not candidates:
        raise SignatureError("Stripe-Signature lacks a timestamp or a v1 signature")
    expected = stripe_signature(secret, int(timestamp), body)
    # every candidate is compared, so the time taken says nothing about which one (if any) matched
    if not any([hmac.compare_digest(expected, candidate) for candidate in candidates]):
        raise SignatureError("Stripe-Signature does not match the body")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance_s:
        raise SignatureError(f"Stripe-Signature timestamp is outside the {tolerance_s:.0f}s tolerance")


def shopify_hmac(secret: str, body: bytes) -> str:
    """`X-Shopify-Hmac-Sha256`: base64 of HMAC-SHA256 of the raw body with the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_shopify(header: str | None, body: bytes, secret: str) -> None:
    if not header:
        raise SignatureError("no X-Shopify-Hmac-Sha256 header")
    if not hmac.compare_digest(shopify_hmac(secret, body).encode(), header.strip().encode()):
        raise SignatureError("X-Shopify-Hmac-Sha256 does not match the body")
