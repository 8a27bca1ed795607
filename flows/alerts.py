"""Alerts to a Slack-compatible webhook (`JOURNEY_ALERT_WEBHOOK_URL`): what failed and where to look.

Messages are built from run facts and already-redacted errors; they never carry a credential.
"""

from __future__ import annotations

import logging
import os

import requests

log = logging.getLogger(__name__)


def alert_webhook_url() -> str | None:
    return os.environ.get("JOURNEY_ALERT_WEBHOOK_URL") or None


def send_alert(kind: str, title: str, details: list[str], url: str | None = None) -> bool:
    """POST `{"text": ...}` (Slack's incoming-webhook shape, also accepted by Teams/Mattermost/Discord
    bridges). Returns whether it was delivered; a failing alert channel never fails the run."""
    url = url or alert_webhook_url()
    text = f":rotating_light: *journey {kind}*: {title}\n" + "\n".join(f"- {line}" for line in details)
    if not url:
        log.warning("no JOURNEY_ALERT_WEBHOOK_URL set; alert not sent: %s", text)
        return False
    try:
        response = requests.post(url, json={"text": text, "kind": kind}, timeout=10)
        response.raise_for_status()
        return True
    except requests.RequestException as error:
        log.error("alert to the webhook failed (%s): %s", type(error).__name__, text)
        return False
