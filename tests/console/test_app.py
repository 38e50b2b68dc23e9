"""The console's API: sign-in, one's own jurisdiction only, live checking, publishing, the audit
trail, and requests from another site refused."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from pointengine.console.accounts import Accounts
from pointengine.console.app import ConsoleConfig, create_console
from pointengine.console.words import WORDS
from pointengine.i18n import check_table
from pointengine.model.jst import JST
from tests.world import RULES

PASSWORD = "correct horse battery"
MIYOSHI_FILE = "342092-miyoshi/premium.yaml"
ORIGIN = "http://testserver"


@pytest.fixture
def config(tmp_path: Path) -> ConsoleConfig:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    accounts = Accounts(tmp_path / "state" / "accounts.json")
    accounts.add("miyoshi.tanaka", "342092", PASSWORD)
    accounts.add("kumamoto.mori", "431001", PASSWORD)
    return ConsoleConfig(rules=rules, state=tmp_path / "state", history=tmp_path / "history",
                         now=lambda: dt.datetime(2022, 9, 1, tzinfo=JST), hosts=("testserver",))


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


@pytest.fixture
def with_history(config: ConsoleConfig, history: Path) -> Iterator[TestClient]:
    config.history = history
    with TestClient(create_console(config), headers={"Origin": ORIGIN}) as test_client:
        _sign_in(test_client)
        yield test_client


def _run(client: TestClient, kind: str, body: dict[str, object]) -> dict[str, Any]:
    started = client.post(f"/api/{kind}?lang=ja", json=body)
    assert started.status_code == 200, started.text
    for _ in range(1_200):
        answer: dict[str, Any] = client.get(f"/api/jobs/{started.json()['job']}").json()
        if answer["state"] != "running":
            assert answer["state"] == "done", answer["error"]
            return answer["result"]  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"the {kind} run did not end")


def test_history_under_an_unchanged_draft_differs_by_nothing(with_history: TestClient) -> None:
    text = with_history.get("/api/programs/miyoshi-premium").json()["text"]
    same = _run(with_history, "compare", {"text": text, "name": MIYOSHI_FILE,
                                          "events": "events-2022.jsonl",
                                          "paid": "ledger-2022.jsonl"})
    per_program = same["sections"][1]["rows"]
    assert per_program and {row[3] for row in per_program} == {"+0"}
    raised = _run(with_history, "compare", {
        "text": text.replace("rate: 30%", "rate: 40%"), "name": MIYOSHI_FILE,
        "events": "events-2022.jsonl", "paid": "ledger-2022.jsonl"})
    miyoshi = next(row for row in raised["sections"][1]["rows"] if row[0] == "miyoshi-premium")
    assert int(miyoshi[3].replace(",", "")) > 0
    assert not [line for line in raised["sections"][0]["lines"] if "/tmp" in line]


def test_a_person_is_explained_with_the_ledgers_totals(with_history: TestClient,
                                                      history: Path) -> None:
    ledger = [orjson.loads(line) for line in
              (history / "ledger-2022.jsonl").read_bytes().splitlines()]
    person = next(e["person"] for e in ledger if e["program"] == "miyoshi-premium")
    net = sum(e["points"] for e in ledger if e["person"] == person)
    result = _run(with_history, "explain", {"person": person, "events": "events-2022.jsonl",
                                            "ledger": "ledger-2022.jsonl"})
    titles = [s["title"] for s in result["sections"]]
    assert titles[1:] == ["イベントごとの判定", "受け付けられなかった行", "合計"]
    overall = result["sections"][3]["rows"][-1]
    assert overall[0] == "*" and int(overall[3].replace(",", "")) == net


def test_a_forecast_gives_the_charts_their_series(with_history: TestClient) -> None:
    text = with_history.get("/api/programs/miyoshi-premium").json()["text"]
    result = _run(with_history, "forecast", {"text": text, "name": MIYOSHI_FILE,
                                             "persons": 500, "events": 5_000, "seed": 1})
    days = result["days"]
    assert days and days[-1]["cumulative"] == sum(d["points"] for d in days)
    assert all(d["budget_left"] == 300_000_000 - d["cumulative"] for d in days)
    assert sum(p["points"] for p in result["providers"]) == days[-1]["cumulative"]
    assert result["assumptions"]


def test_a_large_body_is_refused_unread(client: TestClient) -> None:
    answer = client.post("/api/session", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no length declared: counted as it arrives
        for _ in range(40):
            yield b" " * 65_536

    streamed = client.post("/api/session", content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_a_malformed_request_names_fields_not_values(client: TestClient) -> None:
    _sign_in(client)
    answer = client.post("/api/explain?lang=ja", json={"person": "1234 5678 9018" * 20,
                                                       "events": "x"})
    assert answer.status_code == 400 and answer.json()["code"] == "bad_request"
    assert "person" in answer.json()["message"] and "9018" not in answer.text


def test_another_host_name_is_refused(config: ConsoleConfig) -> None:
    with TestClient(create_console(config), base_url="http://rebound.example") as other:
        assert other.get("/").status_code == 400


def test_a_draft_opened_before_anothers_publication_is_refused(client: TestClient) -> None:
    _sign_in(client)
    opened = client.get("/api/programs/miyoshi-premium").json()
    first = client.post("/api/publish", json={
        "text": opened["text"].replace("rate: 30%", "rate: 40%"), "program": "miyoshi-premium",
        "effective_from": "2022-10-01T00:00:00+09:00", "reason": "a",
        "opened_sha256": opened["sha256"]})
    assert first.status_code == 200, first.text
    stale = client.post("/api/publish?lang=ja", json={
        "text": opened["text"].replace("cap: 6000", "cap: 8000"), "program": "miyoshi-premium",
        "effective_from": "2022-11-01T00:00:00+09:00", "reason": "b",
        "opened_sha256": opened["sha256"]})
    assert stale.status_code == 409 and stale.json()["code"] == "changed_since_opened"
    assert "開き直して" in stale.json()["message"]
    refused = next(a for a in client.get("/api/audit?lang=en").json()
                   if a["action"] == "publish_refused")
    assert refused["message"].startswith("342092-miyoshi/premium.yaml changed since")


def test_a_session_ends_when_its_account_moves(client: TestClient,
                                               config: ConsoleConfig) -> None:
    _sign_in(client)
    assert client.get("/api/programs").status_code == 200
    Accounts(config.state / "accounts.json").add("miyoshi.tanaka", "431001", PASSWORD)
    assert client.get("/api/programs").status_code == 401
