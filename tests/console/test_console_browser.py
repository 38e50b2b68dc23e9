"""The console in a real headless Chromium, as a member of 三次市's staff uses it: sign in, open
the city's program, make a typo and see it located, fix it, forecast and see the charts drawn,
replay history under the draft, explain a person, publish, and be refused 熊本市's program.
Every request that would leave the console is refused and recorded: it works offline.

Needs Debian's ``chromium`` (``CHROMIUM`` names another binary) and the ``playwright`` package;
skipped, saying which is missing, without them. With ``POINTENGINE_SCREENSHOTS=docs/console``
the screenshots of each screen are written there (the ones the README shows).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pointengine.console.accounts import Accounts
from pointengine.console.app import ConsoleConfig, create_console
from tests.browser import offline_page
from tests.serving import serving
from tests.world import RULES

sync_api = pytest.importorskip("playwright.sync_api")

PASSWORD = "correct horse battery"


@pytest.fixture
def console(tmp_path: Path, history: Path) -> Iterator[tuple[str, ConsoleConfig]]:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    accounts = Accounts(tmp_path / "state" / "accounts.json")
    accounts.add("miyoshi.tanaka", "342092", PASSWORD)
    config = ConsoleConfig(rules=rules, state=tmp_path / "state", history=history)
    with serving(create_console(config)) as port:
        yield f"http://127.0.0.1:{port}", config


@pytest.fixture
def page(console: tuple[str, ConsoleConfig]) -> Iterator[tuple[Any, list[str]]]:
    """A page that reaches the console only. The browser logs the refusals the flow provokes
    (a wrong password, another city's program) as failed loads; any other error is the page's."""
    base, _ = console
    with offline_page(base, expected=("status of 401", "status of 403"),
                      viewport={"width": 1280, "height": 900}, locale="ja-JP") as opened:
        yield opened


def _shot(tab: Any, name: str, tmp_path: Path, *, whole: bool = True) -> None:
    """A screenshot of the page (``whole``: all of it, else what the window shows)."""
    tab.screenshot(path=str(tmp_path / f"{name}.png"), full_page=whole)
    folder = os.environ.get("POINTENGINE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=whole)


def test_a_member_of_staff_writes_checks_forecasts_and_publishes(
        console: tuple[str, ConsoleConfig], page: tuple[Any, list[str]],
        tmp_path: Path) -> None:
    base, config = console
    tab, elsewhere = page
    expect = sync_api.expect
    tab.goto(base)
    expect(tab.locator("#signin h2")).to_have_text("ログイン")
    tab.fill("input[name=name]", "miyoshi.tanaka")
    tab.fill("input[name=password]", "wrong password!")
    tab.click("#signin-form button")
    expect(tab.locator("#signin-error")).to_contain_text("違います")
    tab.fill("input[name=password]", PASSWORD)
    _shot(tab, "01-signin", tmp_path)
    tab.click("#signin-form button")

    # the city's programs, and only them
    expect(tab.locator("#programs-title")).to_have_text("広島県三次市 の制度")
    expect(tab.locator("#program-table tbody tr")).to_have_count(1)
    _shot(tab, "02-programs", tmp_path)
    tab.click("#program-table a")

    # a typo, located at its line with a suggestion, then fixed
    expect(tab.locator("#check-status")).to_have_text("問題はありません", timeout=10_000)
    line = _line_of(tab, "rate: 30%")
    _edit(tab, "rate: 30%", "rat: 30%")
    row = tab.locator("#problems tbody tr").first
    expect(row).to_contain_text("award.rat", timeout=10_000)
    expect(row.locator("td").nth(0)).to_have_text(str(line))
    expect(row.locator("td").nth(3)).to_have_text("rate")
    expect(tab.locator(".CodeMirror-lint-marker-error")).to_have_count(1)
    _shot(tab, "03-editor-problem", tmp_path)
    _edit(tab, "rat: 30%", "rate: 40%")
    expect(tab.locator("#check-status")).to_have_text("問題はありません", timeout=10_000)

    # completion from the schema
    tab.evaluate("""() => { const cm = document.querySelector('.CodeMirror').CodeMirror;
        cm.focus(); cm.setCursor({line: cm.lineCount(), ch: 0});
        cm.replaceSelection('\\nbud'); }""")
    tab.keyboard.press("Control+Space")
    expect(tab.locator(".CodeMirror-hints")).to_contain_text("budget")
    tab.keyboard.press("Escape")
    tab.evaluate("""() => { const cm = document.querySelector('.CodeMirror').CodeMirror;
        const last = cm.lineCount() - 1;
        cm.replaceRange('', {line: last - 1, ch: cm.getLine(last - 1).length},
                        {line: last, ch: 3}); }""")

    # forecast, with the charts drawn
    tab.click("[data-tab=forecast-pane]")
    tab.fill("#forecast-form input[name=persons]", "2000")
    tab.fill("#forecast-form input[name=events]", "20000")
    tab.click("#forecast-form button")
    expect(tab.locator("#forecast-result")).to_be_visible(timeout=120_000)
    expect(tab.locator("#forecast-assumptions li").first).to_be_visible()
    for canvas in ("chart-burndown", "chart-providers", "chart-reached"):
        drawn = tab.evaluate(f"() => Chart.getChart('{canvas}').data.datasets[0].data.length")
        assert drawn > 0, canvas
    _shot(tab, "04-forecast", tmp_path)

    # history replayed under the draft
    tab.click("[data-tab=compare-pane]")
    tab.select_option("#compare-form select[name=events]", "events-2022.jsonl")
    tab.select_option("#compare-form select[name=paid]", "ledger-2022.jsonl")
    tab.click("#compare-form button")
    expect(tab.locator("#compare-result table").first).to_be_visible(timeout=120_000)
    _shot(tab, "05-compare", tmp_path, whole=False)

    # publish from 2022-10-01 (the console's clock is today's: choose a future date)
    tab.click("[data-tab=publish-pane]")
    tab.fill("#publish-form input[name=effective_from]", "2030-04-01T00:00")
    tab.fill("#publish-form textarea[name=reason]", "市議会の議決により40%に引上げ")
    tab.click("#publish-form button")
    expect(tab.locator("#publish-result")).to_contain_text("版 2 を公開しました")
    expect(tab.locator("#publish-appended")).to_contain_text("award: {rate: 40%}")
    _shot(tab, "06-published", tmp_path)
    text = (config.rules / "342092-miyoshi" / "premium.yaml").read_text(encoding="utf-8")
    assert "effective_from: 2030-04-01T00:00:00+09:00" in text

    # the audit trail shows it
    tab.goto(f"{base}/#/audit")
    expect(tab.locator("#audit-table tbody tr").first).to_contain_text("公開")
    _shot(tab, "07-audit", tmp_path)

    # explaining a person of the stream
    person = _a_miyoshi_person(config)
    tab.goto(f"{base}/#/explain")
    tab.fill("#explain-form input[name=person]", person)
    tab.select_option("#explain-form select[name=events]", "events-2022.jsonl")
    tab.select_option("#explain-form select[name=ledger]", "ledger-2022.jsonl")
    tab.click("#explain-form button")
    expect(tab.locator("#explain-result table").first).to_be_visible(timeout=60_000)
    _shot(tab, "08-explain", tmp_path, whole=False)

    # 熊本市's program is not this member of staff's
    tab.goto(f"{base}/#/edit/kumamoto-health-lottery")
    expect(tab.locator("#notice")).to_contain_text("熊本県熊本市")
    expect(tab.locator("#programs")).to_be_visible()

    # and in English
    tab.click("#lang")
    expect(tab.locator("#programs-title")).to_have_text("Programs of 広島県三次市")
    assert elsewhere == []


def _a_miyoshi_person(config: ConsoleConfig) -> str:
    assert config.history is not None
    for line in (config.history / "ledger-2022.jsonl").read_text(encoding="utf-8").splitlines():
        if '"miyoshi-premium' in line:
            return str(__import__("orjson").loads(line)["person"])
    raise AssertionError("no 三次市 award in the history")


def _line_of(tab: Any, text: str) -> int:
    value = tab.evaluate("() => document.querySelector('.CodeMirror').CodeMirror.getValue()")
    return int(next(i for i, line in enumerate(value.splitlines(), 1) if text in line))


def _edit(tab: Any, old: str, new: str) -> None:
    """Replace ``old`` with ``new`` in the editor, as typing would (the change fires the check)."""
    tab.evaluate("""([old, neu]) => { const cm = document.querySelector('.CodeMirror').CodeMirror;
        const at = cm.getValue().indexOf(old);
        cm.replaceRange(neu, cm.posFromIndex(at), cm.posFromIndex(at + old.length)); }""",
                 [old, new])
