"""Webhooks in: Stripe and Shopify pushes received on loopback, verified over the raw body, landed durably
(append-only segments, fsynced before the 2xx), then merged by the next run into `ops.webhook_landing` and the
raw tables the pulls fill (`merge.py`). The receiver (`receiver.py`, `landing.py`, `signatures.py`) imports
only the standard library, so it starts in a blink after a crash."""
