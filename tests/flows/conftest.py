"""Fixtures for the orchestration tests: an alert receiver, and private copies of the session's loaded
warehouse so a test can run, fail or publish without disturbing the others."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class AlertReceiver:
    """A Slack-compatible incoming webhook on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def texts(self) -> list[str]:
        return [message["text"] for message in self.received]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def alerts(monkeypatch):
    receiver = AlertReceiver()
    monkeypatch.setenv("JOURNEY_ALERT_WEBHOOK_URL", receiver.url)
    yield receiver
    receiver.close()


@pytest.fixture
def loaded_copy(elt_run, tmp_path) -> dict[str, Path]:
    """A private copy of the session's loaded and published warehouse, with its dlt state."""
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "marts.duckdb"
    shutil.copyfile(elt_run["warehouse"], warehouse)
    shutil.copyfile(elt_run["published"], published)
    state = elt_run["warehouse"].with_name(elt_run["warehouse"].name + ".dlt")
    shutil.copytree(state, warehouse.with_name(warehouse.name + ".dlt"))
    return {"warehouse": warehouse, "published": published}
