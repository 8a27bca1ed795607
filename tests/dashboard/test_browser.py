"""End to end as a marketer meets it: `journey dashboard` serving the published marts, opened in headless
Chromium (Debian's, driven by Playwright), a preset chosen, the scorecards read off the page. The screenshot
goes to the test's tmp dir; to docs/dashboard.png (tracked) only with JOURNEY_UPDATE_SCREENSHOT=1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.ranges import preset_range
from flows.publish import publish

from .test_app import expected

pytestmark = [pytest.mark.dashboard, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"  # `make test` installs it; Playwright's own browser download is not used
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dashboard_url(private_chain, tmp_path) -> Iterator[str]:
    """`journey dashboard --port P` on a private copy of the published marts (the test publishes into it),
    in its own process group, stopped firmly at the end."""
    port = free_port()
    log = (tmp_path / "dashboard.log").open("w")
    env = dict(os.environ, JOURNEY_PUBLISHED=str(private_chain["published"]), HOME=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-m", "flows.cli", "dashboard", "--port", str(port)], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "dashboard.log").read_text()
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not start within 60 s"
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        log.close()


def test_choose_a_preset_in_chromium_and_read_the_scorecards(dashboard_url, private_chain, truth, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    want = expected(truth, preset_range("last_90", truth.as_of), "previous_period")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 3400})
            page.goto(dashboard_url)
            metrics = page.locator('[data-testid="stMetric"]')
            expect(metrics.first).to_be_visible(timeout=60_000)
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Date range").click()
            page.get_by_role("option", name="Last 90 days").click()
            # the page reruns with the new range: wait until the orders tile shows the truth's figure
            expect(metrics.nth(1).locator('[data-testid="stMetricValue"]')).to_have_text(want[1][1],
                                                                                         timeout=30_000)
            expect(page.locator('[data-testid="stStatusWidget"]')).to_be_hidden(timeout=30_000)
            page.wait_for_timeout(1500)  # let the charts finish drawing before the screenshot
            shown = [(metrics.nth(i).locator('[data-testid="stMetricLabel"]').inner_text().strip(),
                      metrics.nth(i).locator('[data-testid="stMetricValue"]').inner_text().strip(),
                      metrics.nth(i).locator('[data-testid="stMetricDelta"]').inner_text().strip() or None)
                     for i in range(8)]
            assert shown == want
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            if os.environ.get("JOURNEY_UPDATE_SCREENSHOT") == "1":  # never by default: CI's clone stays clean
                (ROOT / "docs").mkdir(exist_ok=True)
                page.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)

            # a run publishes while the page is open: it shows the new run by itself, no click, no restart
            publish(private_chain["warehouse"], private_chain["published"], "browser-test-run", "incremental", {})
            expect(page.get_by_text("browser-test-run")).to_be_visible(timeout=30_000)
            assert metrics.nth(1).locator('[data-testid="stMetricValue"]').inner_text().strip() == want[1][1]
        finally:
            browser.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
