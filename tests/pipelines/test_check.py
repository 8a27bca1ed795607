"""`journey check`: each configured vendor's credentials tried against the sandbox, what they could verify
and what is missing reported, the exit code non-zero when anything needed is missing, no secret printed."""

from __future__ import annotations

import pytest

from flows.cli import main
from pipelines.load import settings_from_index

ALL_SETTINGS = ("SOURCES__ACTIVECAMPAIGN__", "SOURCES__SHOPIFY__", "SOURCES__STRIPE__", "SOURCES__HUBSPOT__")


@pytest.fixture
def configured(monkeypatch, sandbox):
    """Exactly the settings a test gives: the session's sandbox settings removed first."""
    for key in list(__import__("os").environ):
        if key.startswith(ALL_SETTINGS):
            monkeypatch.delenv(key)

    def configure(settings: dict[str, str]) -> None:
        for key, value in settings.items():
            monkeypatch.setenv(key, value)
    return configure


def test_every_vendor_of_the_sandbox_passes_with_what_each_verified(configured, sandbox, capsys):
    configured(settings_from_index(sandbox.index(), destinations=False))
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for vendor in ("activecampaign", "shopify", "stripe", "hubspot"):
        assert f"{vendor}: ok" in out
    for verified in ("read_all_orders", "balance_transactions", "crm.objects.deals.read", "ecomOrders"):
        assert f"verified: {verified}" in out


def test_a_missing_scope_and_a_wrong_key_fail_naming_what_to_fix_and_no_secret(configured, sandbox, capsys):
    index = sandbox.index()
    recent_only = sandbox.sandbox.vendors["shopify"].token_without_read_all_orders
    wrong_key = "sk_test_not_the_sandbox_key_0123456789"
    configured({"SOURCES__SHOPIFY__BASE_URL": index["shopify"]["base_url"],
                "SOURCES__SHOPIFY__ACCESS_TOKEN": recent_only,
                "SOURCES__STRIPE__BASE_URL": index["stripe"]["base_url"], "SOURCES__STRIPE__API_KEY": wrong_key})
    assert main(["check"]) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert "shopify: FAILED" in out and "missing:  read_all_orders" in out and "verified: read_orders" in out
    assert "stripe: FAILED" in out and "HTTP 401" in out and "sources.stripe.api_key" in out
    assert "activecampaign: not configured" in out and "sources.activecampaign.api_token" in out
    assert wrong_key not in out + captured.err and recent_only not in out + captured.err


def test_nothing_configured_fails_and_says_what_to_set(configured, capsys):
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "No vendor is configured" in out and "sources.hubspot.access_token" in out
