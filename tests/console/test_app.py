"""The console's API: sign-in, one's own jurisdiction only, live checking, publishing, the audit
trail, and requests from another site refused."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pointengine.console.accounts import Accounts
from pointengine.console.app import ConsoleConfig, create_console
from pointengine.console.words import WORDS
from pointengine.i18n import check_table
from pointengine.model.jst import JST
from tests.world import RULES

PASSWORD = "correct horse battery"
ORIGIN = "http://testserver"


@pytest.fixture
def config(tmp_path: Path) -> ConsoleConfig:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    accounts = Accounts(tmp_path / "state" / "accounts.json")
    accounts.add("miyoshi.tanaka", "342092", PASSWORD)
    accounts.add("kumamoto.mori", "431001", PASSWORD)
    return ConsoleConfig(rules=rules, state=tmp_path / "state", history=tmp_path / "history",
                         now=lambda: dt.datetime(2022, 9, 1, tzinfo=JST))


@pytest.fixture
def client(config: ConsoleConfig) -> Iterator[TestClient]:
    with TestClient(create_console(config), headers={"Origin": ORIGIN}) as test_client:
        yield test_client


def _sign_in(client: TestClient, name: str = "miyoshi.tanaka") -> None:
    answer = client.post("/api/session", json={"name": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text


def test_the_page_and_its_assets_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<html lang=\"ja\">" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/console.js", "/static/console.css",
                  "/static/vendor/codemirror/codemirror.js",
                  "/static/vendor/chartjs/chart.umd.min.js"):
        assert client.get(asset).status_code == 200, asset


def test_nothing_without_signing_in(client: TestClient) -> None:
    for path in ("/api/programs", "/api/programs/miyoshi-premium", "/api/audit",
                 "/api/schema", "/api/history"):
        answer = client.get(path)
        assert answer.status_code == 401
        assert answer.json()["code"] == "not_signed_in"
    assert client.get("/api/programs?lang=ja").json()["message"] == "ログインしてください"


def test_a_wrong_password_is_refused_and_audited(client: TestClient,
                                                 config: ConsoleConfig) -> None:
    answer = client.post("/api/session", json={"name": "miyoshi.tanaka", "password": "x" * 12})
    assert answer.status_code == 401 and answer.json()["code"] == "sign_in_failed"
    assert "pointengine_console" not in answer.cookies
    audit = (config.state / "audit.jsonl").read_text(encoding="utf-8")
    assert '"sign_in_failed"' in audit and PASSWORD not in audit


def test_staff_see_and_open_their_own_programs_only(client: TestClient) -> None:
    _sign_in(client)
    me = client.get("/api/session?lang=ja").json()
    assert me == {"name": "miyoshi.tanaka", "jurisdiction": "342092", "place": "広島県三次市"}
    listed = client.get("/api/programs").json()
    assert [p["id"] for p in listed] == ["miyoshi-premium"]
    opened = client.get("/api/programs/miyoshi-premium").json()
    assert opened["file"] == "342092-miyoshi/premium.yaml"
    assert "rate: 30%" in opened["text"]
    other = client.get("/api/programs/kumamoto-health-lottery?lang=ja")
    assert other.status_code == 403
    assert other.json()["code"] == "not_your_jurisdiction"
    assert "熊本県熊本市" in other.json()["message"]


def test_a_draft_is_checked_with_every_problem_located(client: TestClient) -> None:
    _sign_in(client)
    text = client.get("/api/programs/miyoshi-premium").json()["text"]
    broken = text.replace("rate: 30%", "rat: 30%").replace("cap: 6000", "cap: -1")
    answer = client.post("/api/check?lang=ja", json={"text": broken, "name": "premium.yaml"})
    assert answer.status_code == 200
    problems = answer.json()["problems"]
    fields = {p["field"] for p in problems}
    assert "award.rat" in fields
    rat = next(p for p in problems if p["field"] == "award.rat")
    assert rat["line"] == text.splitlines().index(
        next(line for line in text.splitlines() if "rate: 30%" in line)) + 1
    assert rat["suggestion"] == "rate"
    good = client.post("/api/check", json={"text": text, "name": "premium.yaml"}).json()
    assert [p for p in good["problems"] if p["severity"] == "error"] == []


def test_publishing_appends_a_version_and_is_audited(client: TestClient,
                                                     config: ConsoleConfig) -> None:
    _sign_in(client)
    text = client.get("/api/programs/miyoshi-premium").json()["text"]
    answer = client.post("/api/publish", json={
        "text": text.replace("rate: 30%", "rate: 40%"), "program": "miyoshi-premium",
        "effective_from": "2022-10-01T00:00:00+09:00", "reason": "議決"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 2
    assert client.get("/api/programs").json()[0]["version"] == 2
    acts = client.get("/api/audit").json()
    assert [a["action"] for a in acts][:2] == ["publish", "sign_in"]
    # kumamoto's staff see none of it
    client.delete("/api/session")
    _sign_in(client, "kumamoto.mori")
    assert all(a["jurisdiction"] == "431001" for a in client.get("/api/audit").json())


def test_publishing_anothers_program_is_refused(client: TestClient,
                                                config: ConsoleConfig) -> None:
    _sign_in(client, "kumamoto.mori")
    text = (config.rules / "342092-miyoshi" / "premium.yaml").read_text(encoding="utf-8")
    answer = client.post("/api/publish?lang=en", json={
        "text": text.replace("rate: 30%", "rate: 40%"), "program": "miyoshi-premium",
        "effective_from": "2022-10-01T00:00:00+09:00", "reason": "x"})
    assert answer.status_code == 403 and answer.json()["code"] == "not_your_jurisdiction"


def test_another_site_cannot_act_for_signed_in_staff(client: TestClient) -> None:
    _sign_in(client)
    answer = client.post("/api/publish", headers={"Origin": "https://evil.example"}, json={})
    assert answer.status_code == 403 and answer.json()["code"] == "cross_origin"
    form = client.post("/api/check", content=b"text=x",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 403


def test_a_history_file_is_chosen_by_name_from_the_folder_only(client: TestClient,
                                                             config: ConsoleConfig) -> None:
    _sign_in(client)
    assert config.history is not None
    config.history.mkdir()
    (config.history / "july.jsonl").write_text("", encoding="utf-8")
    assert client.get("/api/history").json() == [{"name": "july.jsonl", "bytes": 0}]
    answer = client.post("/api/explain", json={"person": "MK-1", "events": "../rules/x.jsonl"})
    assert answer.status_code == 404 and answer.json()["code"] == "unknown_file"
    my_number = client.post("/api/explain", json={"person": "1234 5678 9018",
                                                  "events": "july.jsonl"})
    assert my_number.status_code == 400 and my_number.json()["code"] == "my_number"
    assert "1234" not in my_number.text


def test_the_words_have_both_languages() -> None:
    assert check_table(WORDS) == []
