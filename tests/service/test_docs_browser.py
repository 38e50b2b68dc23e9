"""The documentation pages render in a real headless browser that reaches nothing but the
service: every request leaving for another host is refused and recorded.

Needs a Chromium (Debian's ``chromium`` package; ``CHROMIUM`` names another binary) and the
``playwright`` package, which drives it; the test is skipped, saying which is missing, without
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pointengine.service.app import ServiceConfig, create_app
from pointengine.service.signing import RedisReplayGuard, Verifier
from tests.browser import offline_page
from tests.redis_fixtures import redis_client, redis_server
from tests.service.test_service import keys
from tests.serving import serving

__all__ = ["keys", "redis_client", "redis_server"]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def served(redis_client: redis.Redis, keys: dict[str, bytes]) -> Iterator[str]:
    """The service under uvicorn on a free loopback port; yields its base URL."""
    app = create_app(ServiceConfig(redis_client, Verifier(keys, RedisReplayGuard(redis_client))))
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def page(served: str) -> Iterator[tuple[object, list[str]]]:
    """A browser page that may reach only ``served``, and the list of what else it asked,
    or of a script error. What the pages' Content-Security-Policy kept the browser from asking
    (ReDoc's footer logo) never leaves it, so is not listed."""
    with offline_page(served) as opened:
        yield opened


def test_swagger_ui_renders_every_operation_offline(served: str, page: tuple[object, list[str]],
                                                    tmp_path: Path) -> None:
    tab, elsewhere = page
    assert isinstance(tab, sync_api.Page)
    failed: list[str] = []
    tab.on("requestfailed", lambda request: failed.append(request.url))
    tab.goto(f"{served}/docs")
    tab.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = {text.strip().replace("\u200b", "")
             for text in tab.locator(".opblock-summary-path").all_inner_texts()}
    assert {"/providers/{provider}/transactions", "/providers/{provider}/batch",
            "/providers/{provider}/rejects", "/health", "/metrics"} <= paths
    tab.get_by_text("Post one native body").click()
    tab.wait_for_selector("text=X-Timestamp", timeout=10_000)
    request_body = tab.locator(".opblock-section-request-body").first
    request_body.locator("select.content-type").select_option("application/xml")
    shown = request_body.locator(".microlight").first
    shown.wait_for(timeout=10_000)
    assert shown.inner_text().startswith("<?xml version='1.0' encoding='utf-8'?>\n"
                                         "<CarrierPayNotification")  # as sent, not wrapped
    tab.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
    assert elsewhere == [] and failed == []


def test_redoc_renders_offline(served: str, page: tuple[object, list[str]],
                               tmp_path: Path) -> None:
    tab, elsewhere = page
    assert isinstance(tab, sync_api.Page)
    tab.goto(f"{served}/redoc")
    for heading in ("Post one native body", "Post a batch", "Read the events refused after a 202"):
        tab.locator("h2", has_text=heading).first.wait_for(timeout=20_000)
    tab.screenshot(path=str(tmp_path / "redoc.png"))
    assert elsewhere == []
