"""The command line: validate, replay (ledger, rejects, summary, idempotence), explain."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from pointengine.catalog.loading import load_catalog
from pointengine.cli.main import app
from pointengine.errors import StateLost
from pointengine.model.ledger import read_ledger
from tests.world import APPLY, BUY, RULES

runner = CliRunner()



def write_stream(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_validate_accepts_the_shipped_rules() -> None:
    result = runner.invoke(app, ["validate", str(RULES)])
    assert result.exit_code == 0, result.output


def test_validate_locates_a_typo_and_fails(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    card = rules / "national" / "phase2-card.yaml"
    card.write_text(card.read_text(encoding="utf-8").replace("  period:", "  peroid:"),
                    encoding="utf-8")
    result = runner.invoke(app, ["validate", str(rules)])
    assert result.exit_code == 1
    assert "phase2-card.yaml:9: conditions.peroid" in result.output
    assert "did you mean 'period'?" in result.output


def test_validate_locates_a_value_nested_too_deep_without_a_traceback(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    premium = rules / "342092-miyoshi" / "premium.yaml"
    premium.write_text(premium.read_text(encoding="utf-8") + "note: " + "[" * 1_000
                       + "]" * 1_000 + "\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(rules)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "nested more than 32 levels deep" in result.output
    assert "Traceback" not in result.output


def test_validate_fails_on_a_misnamed_rule_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    miyoshi = rules / "342092-miyoshi"
    (miyoshi / "premium.yaml").rename(miyoshi / "premium.yml")
    result = runner.invoke(app, ["validate", str(rules)])
    assert result.exit_code == 1
    assert f"{miyoshi / 'premium.yml'}:1: <file>: not read" in result.output
    assert "did you mean 'premium.yaml'?" in result.output


def _break(path: Path, old: str, new: str) -> Path:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    return path


def test_validate_lists_every_file_s_problems_at_once(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    miyoshi = _break(rules / "342092-miyoshi" / "premium.yaml", "rate: 30%", "rat: 30%")
    atsuma = _break(rules / "015814-atsuma" / "premium.yaml", "provider: paypay",
                    "provider: paypey")
    _break(atsuma, "on: [purchase]", "on: [purchase")  # a syntax error hides nothing
    result = runner.invoke(app, ["validate", str(rules)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if ".yaml:" in line]
    assert [line.split(": ")[:2] for line in lines] == [
        [f"{atsuma}:8", "<yaml>"], [f"{atsuma}:10", "providers.0.provider"],
        [f"{miyoshi}:{_line_of(miyoshi, 'rat: 30%')}", "award.rat"]]
    assert f"3 problem(s) in {rules}" in result.output


def _line_of(path: Path, text: str) -> int:
    return next(n for n, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text in row)


def test_validate_checks_one_file_with_the_catalog_it_is_in(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    miyoshi = rules / "342092-miyoshi" / "premium.yaml"
    atsuma = _break(rules / "015814-atsuma" / "premium.yaml", "provider: paypay",
                    "provider: paypey")
    result = runner.invoke(app, ["validate", str(miyoshi)])
    assert result.exit_code == 0, result.output
    assert (f"{miyoshi}: valid: miyoshi-premium of 342092, type D, 1 version(s) (0 warning(s))"
            in result.output)
    assert f"other files of {rules} have 1 problem(s)" in result.output
    assert str(atsuma) not in result.output
    _break(miyoshi, "rate: 30%", "rat: 30%")
    result = runner.invoke(app, ["validate", str(miyoshi)])
    assert result.exit_code == 1
    assert (f"{miyoshi}:{_line_of(miyoshi, 'rat: 30%')}: award.rat: unknown field 'rat' (did "
            "you mean 'rate'?)") in result.output
    assert f"1 problem(s) in {miyoshi}" in result.output
    result = runner.invoke(app, ["validate", str(atsuma), "--lang", "ja"])
    assert result.exit_code == 1
    assert (f"{atsuma}:10: providers.0.provider: 決済事業者 'paypey' は一覧（providers.yaml）に"
            "ありません（'paypay' ではありませんか？）") in result.output
    assert f"{atsuma} に問題が 1 件あります" in result.output


def test_validate_checks_a_file_outside_any_rules_folder_as_a_draft(tmp_path: Path) -> None:
    draft = tmp_path / "chiyoda.yaml"
    draft.write_text((RULES / "342092-miyoshi" / "premium.yaml").read_text(encoding="utf-8")
                     .replace("id: miyoshi-premium", "id: miyoshi-more")
                     .replace("rate: 30%", "rate: 300%"), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(draft), "--rules", str(RULES)])
    assert result.exit_code == 1
    assert f"{draft} is not in a rules folder: checked as a draft with the rules in {RULES}" \
        in result.output
    assert (f"{draft}:{_line_of(draft, 'rate: 300%')}: award.rate: '300%': a rate must be above "
            "0% and at most 100%") in result.output
    _break(draft, "rate: 300%", "rate: 3%")
    result = runner.invoke(app, ["validate", str(draft), "--rules", str(RULES), "--lang", "ja"])
    assert result.exit_code == 0, result.output
    assert (f"{draft}: 問題ありません: 342092 の事業 miyoshi-more、類型 D、1 版（警告 0 件）"
            in result.output)
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.output == f"{tmp_path / 'nope.yaml'}: no such file or folder\n"
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml"), "--lang", "ja"])
    assert (result.exit_code, result.output) == (
        2, f"{tmp_path / 'nope.yaml'}: そのようなファイルまたはフォルダはありません\n")


def test_validate_places_a_draft_in_a_subfolder_by_its_jurisdiction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(RULES, tmp_path / "rules")
    (tmp_path / "drafts" / "sub").mkdir(parents=True)
    shutil.copy(RULES / "342092-miyoshi" / "premium.yaml", tmp_path / "drafts" / "sub" / "p.yaml")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate", "drafts/sub/p.yaml", "--rules", "rules"])
    assert result.exit_code == 0, result.output
    assert ("drafts/sub/p.yaml: valid: miyoshi-premium of 342092, type D, 1 version(s) "
            "(0 warning(s))") in result.output


def test_validate_checks_the_provider_list_itself(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    providers = rules / "providers.yaml"
    result = runner.invoke(app, ["validate", str(providers)])
    assert result.exit_code == 0, result.output
    count = len(load_catalog(RULES).providers)
    assert f"{providers}: valid: a provider list of {count} provider(s)" in result.output
    assert "problem" not in result.output
    result = runner.invoke(app, ["validate", str(providers), "--lang", "ja"])
    assert (f"{providers}: 問題ありません: 決済事業者の一覧（{count} 件、警告 0 件）"
            in result.output)
    _break(providers, "id: paypay", "id: [paypay]")
    result = runner.invoke(app, ["validate", str(providers)])
    assert result.exit_code == 1
    assert f"{providers}:" in result.output and f"problem(s) in {providers}" in result.output


def test_validate_checks_a_folder_inside_a_rules_folder_with_that_rules_folder(
        tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    miyoshi = rules / "342092-miyoshi"
    atsuma = _break(rules / "015814-atsuma" / "premium.yaml", "provider: paypay",
                    "provider: paypey")
    result = runner.invoke(app, ["validate", str(miyoshi)])
    assert result.exit_code == 0, result.output
    assert "providers.yaml" not in result.output and str(atsuma) not in result.output
    assert "miyoshi-premium" in result.output
    assert f"{miyoshi}: 1 program(s): valid (0 warning(s))" in result.output
    assert f"other files of {rules} have 1 problem(s)" in result.output
    _break(miyoshi / "premium.yaml", "rate: 30%", "rat: 30%")
    result = runner.invoke(app, ["validate", str(miyoshi)])
    assert result.exit_code == 1
    assert f"{miyoshi / 'premium.yaml'}:" in result.output
    assert f"1 problem(s) in {miyoshi}" in result.output and str(atsuma) not in result.output


def test_validate_speaks_japanese_when_asked(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["validate", str(RULES), "--lang", "ja"])
    assert result.exit_code == 0, result.output
    assert "事業 23 件、決済事業者" in result.output and "付与の契機" in result.output
    monkeypatch.setenv("POINTENGINE_LANG", "ja")
    assert "問題ありません" in runner.invoke(app, ["validate", str(RULES)]).output
    result = runner.invoke(app, ["validate", str(RULES), "--lang", "fr"])
    assert result.exit_code == 2
    assert "give ja or en" in result.output


def test_replay_writes_ledger_rejects_summary_and_is_idempotent(tmp_path: Path) -> None:
    my_number_line = orjson.dumps({**BUY, "id": "b2", "store": "123456789018"})
    stream = write_stream(tmp_path / "events.jsonl", orjson.dumps(APPLY), orjson.dumps(BUY),
                          b"{not json", my_number_line,
                          orjson.dumps({**BUY, "id": "b3", "amount": 2_000}))
    out = tmp_path / "out"
    first = runner.invoke(app, ["replay", str(stream), "--rules", str(RULES), "--out", str(out)])
    assert first.exit_code == 0, first.output
    ledger = list(read_ledger(out / "ledger.jsonl"))
    assert [(e.event, e.program, e.points) for e in ledger] == [
        ("t/b1", "national-phase2-card", 4_750), ("t/b3", "national-phase2-card", 250)]
    assert all(e.version == 1 and e.provider == "paypay" for e in ledger)
    rejects = [orjson.loads(line) for line in (out / "rejects.jsonl").read_bytes().splitlines()]
    assert [r["line"] for r in rejects] == [3, 4]
    assert b"123456789018" not in (out / "rejects.jsonl").read_bytes()
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["points_total"] == 5_000 and summary["rejected"] == 2

    second = runner.invoke(app, ["replay", str(stream), "--rules", str(RULES), "--out", str(out)])
    assert second.exit_code == 0, second.output
    assert list(read_ledger(out / "ledger.jsonl")) == ledger
    assert orjson.loads((out / "summary.json").read_bytes())["lines"] == 0  # read to the end
    again = runner.invoke(app, ["replay", str(stream), "--rules", str(RULES), "--out", str(out),
                                "--from-start"])
    assert again.exit_code == 0, again.output
    assert list(read_ledger(out / "ledger.jsonl")) == ledger  # idempotent: nothing new
    assert orjson.loads((out / "summary.json").read_bytes())["duplicates"] == 3


def test_explain_names_the_failed_condition_and_the_cap(tmp_path: Path) -> None:
    late = {**BUY, "id": "b9", "at": "2023-03-01T12:00:00+09:00", "amount": 1_000}
    stream = write_stream(tmp_path / "events.jsonl", orjson.dumps(APPLY), orjson.dumps(BUY),
                          orjson.dumps({**BUY, "id": "b3", "amount": 2_000}), orjson.dumps(late))
    result = runner.invoke(app, ["explain", "MK-A", "--events", str(stream),
                                 "--rules", str(RULES)])
    assert result.exit_code == 0, result.output
    assert "national-phase2-card@v1: awarded 4,750" in result.output
    assert "national-phase2-card@v1: awarded 250 of 500; limited by person cap (5,000)" in (
        result.output)
    # what was observed, beside what was required
    assert ("national-phase2-card@v3: nothing; failed period: observed the event's day "
            "2023-03-01 (JST); required: the event's day (JST) is within 2022-01-01..2023-02-28"
            ) in result.output
    assert "  total: awarded 5,000, reversed 0, net 5,000" in result.output


def test_replay_on_redis_keeps_the_ledger_in_redis(tmp_path: Path) -> None:
    from pointengine.store.redis_server import RedisServer
    from pointengine.store.redis_store import RedisStore

    stream = write_stream(tmp_path / "events.jsonl", orjson.dumps(APPLY), orjson.dumps(BUY))
    with RedisServer() as server:
        url = server.url
        for watch in ([], ["--watch"]):  # the second replay finds every event applied
            result = runner.invoke(app, ["replay", str(stream), "--rules", str(RULES),
                                         "--out", str(tmp_path / "out"), "--redis-url", url,
                                         *watch])
            assert result.exit_code == 0, result.output
        store = RedisStore(server.client())
        assert [(e.event, e.points) for e in store.ledger()] == [("t/b1", 4_750)]
        store.close()
        # under the deployment's prefix, as the service and the workers read it
        result = runner.invoke(app, ["replay", str(stream), "--rules", str(RULES), "--out",
                                     str(tmp_path / "out"), "--redis-url", url],
                               env={"POINTENGINE_PREFIX": "town:"})
        assert result.exit_code == 0, result.output
        store = RedisStore(server.client(), prefix="town:")
        assert [(e.event, e.points) for e in store.ledger()] == [("t/b1", 4_750)]
        store.close()


def test_an_exclusive_replay_on_redis_holds_the_store_and_writes_it_back(
        tmp_path: Path) -> None:
    from pointengine.store.redis_server import RedisServer
    from pointengine.store.redis_store import RedisStore
    from pointengine.store.writeback import WriteBackStore

    stream = write_stream(tmp_path / "events.jsonl", orjson.dumps(APPLY), orjson.dumps(BUY))
    args = ["replay", str(stream), "--rules", str(RULES), "--out", str(tmp_path / "out")]
    with RedisServer() as server:
        result = runner.invoke(app, [*args, "--redis-url", server.url, "--exclusive"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, [*args, "--redis-url", server.url])  # shared: all applied
        assert result.exit_code == 0, result.output
        assert "0 applied, 2 duplicates" in result.output
        store = RedisStore(server.client())
        assert [(e.event, e.points) for e in store.ledger()] == [("t/b1", 4_750)]
        holder = WriteBackStore(store)
        try:
            result = runner.invoke(app, [*args, "--redis-url", server.url, "--exclusive"])
        finally:
            holder.close()
        assert result.exit_code == 1, result.output
        assert "held by another exclusive replay" in result.output
    result = runner.invoke(app, [*args, "--exclusive"])
    assert result.exit_code == 2, result.output
    assert "--exclusive: only with --redis-url" in result.output


def test_replay_on_redis_applies_nothing_once_the_store_lost_its_state(tmp_path: Path) -> None:
    """As the workers: a replay, shared or exclusive, does not start counting again from zero
    on a Redis that lost the store's state."""
    from pointengine.store.generation import Generation
    from pointengine.store.redis_server import RedisServer

    stream = write_stream(tmp_path / "events.jsonl", orjson.dumps(APPLY), orjson.dumps(BUY))
    args = ["replay", str(stream), "--rules", str(RULES), "--out", str(tmp_path / "out")]
    with RedisServer() as server:
        client = server.client()
        Generation(client).check()
        seen = Generation(server.client())
        seen.check()
        client.flushall()  # Redis comes back empty; a process that saw the marker notices
        with pytest.raises(StateLost):
            seen.check()
        for exclusive in ([], ["--exclusive"]):
            result = runner.invoke(app, [*args, "--redis-url", server.url, *exclusive])
            assert result.exit_code == 1, result.output
            assert "lost the store's state" in result.output
            assert client.xlen("pe:ledger") == 0 and not client.exists("pe:applied")


@pytest.mark.parametrize("exclusive", [False, True])
def test_a_store_that_loses_its_state_during_a_replay_stops_it_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exclusive: bool) -> None:
    """Redis flushed after the first batch: the replay says so in one line, records the loss
    for every process, and a second run refuses instead of starting again from zero."""
    from collections.abc import Iterator

    from pointengine.replay import redis_replay, run
    from pointengine.store.generation import read_generation
    from pointengine.store.redis_server import RedisServer

    lines = [orjson.dumps(APPLY)] + [orjson.dumps({**BUY, "id": f"b{n}"}) for n in range(5)]
    stream = write_stream(tmp_path / "events.jsonl", *lines)
    args = ["replay", str(stream), "--rules", str(RULES), "--out", str(tmp_path / "out"),
            *(["--exclusive"] if exclusive else [])]
    read_blocks = run.read_blocks
    with RedisServer() as server:
        client = server.client()

        def flushed_after_the_first(handle: Any, batch: int, start: Any) -> Iterator[Any]:
            for n, block in enumerate(read_blocks(handle, 2, start)):
                if n == 1:
                    client.flushall()  # Redis comes back empty
                yield block

        for module in (run, redis_replay):  # the exclusive and the shared replay's reading
            monkeypatch.setattr(module, "read_blocks", flushed_after_the_first)
        result = runner.invoke(app, [*args, "--redis-url", server.url])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and len(result.output.splitlines()) <= 3
        assert read_generation(client, "pe:")[1] is not None  # the loss is recorded
        for module in (run, redis_replay):
            monkeypatch.setattr(module, "read_blocks", read_blocks)
        result = runner.invoke(app, [*args, "--redis-url", server.url])
        assert result.exit_code == 1 and "lost the store's state" in result.output


def test_replay_on_redis_refuses_the_embedded_stores_options(tmp_path: Path) -> None:
    stream = write_stream(tmp_path / "events.jsonl", orjson.dumps(APPLY))
    out = tmp_path / "out"
    for option in (["--fresh"], ["--from-start"], ["--checkpoint-every", "5"]):
        result = runner.invoke(app, ["replay", str(stream), "--rules", str(RULES), "--out",
                                     str(out), "--redis-url", "redis://127.0.0.1:1/0", *option])
        assert result.exit_code == 2, result.output
        assert f"{option[0]}: only for the embedded store" in result.output
    assert not out.exists()  # refused before anything was written or connected to


def test_replay_refuses_to_continue_a_ledger_without_its_state(tmp_path: Path) -> None:
    stream = write_stream(tmp_path / "events.jsonl", orjson.dumps(APPLY), orjson.dumps(BUY))
    out = tmp_path / "out"
    args = ["replay", str(stream), "--rules", str(RULES), "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    (out / "state.pickle").unlink()
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--fresh" in refused.output
    assert runner.invoke(app, [*args, "--fresh"]).exit_code == 0
    assert [e.seq for e in read_ledger(out / "ledger.jsonl")] == [1]


def test_replay_counts_each_refusal_under_its_own_code(tmp_path: Path) -> None:
    refund = {"type": "refund", "source": "t", "id": "r1", "person": "MK-A",
              "at": BUY["at"], "provider": "paypay", "transaction": "b1", "amount": 1}
    stream = write_stream(
        tmp_path / "events.jsonl", orjson.dumps(APPLY), orjson.dumps(BUY),
        orjson.dumps({**BUY, "id": "b2", "provider": "nopay"}),
        orjson.dumps({**refund, "transaction": "nothing"}),
        orjson.dumps({**refund, "id": "r2", "amount": BUY["amount"] + 1}),
        orjson.dumps({**APPLY, "id": "a2", "provider": "waon"}))
    out = tmp_path / "out"
    result = runner.invoke(app, ["replay", str(stream), "--rules", str(RULES), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert orjson.loads((out / "summary.json").read_bytes())["reasons"] == {
        "unknown_provider": 1, "unknown_transaction": 1, "refund_exceeds_payment": 1,
        "provider_already_chosen": 1}


def test_explain_refuses_a_my_number_without_repeating_it(tmp_path: Path) -> None:
    stream = write_stream(tmp_path / "events.jsonl", orjson.dumps(APPLY))
    for person in ("123456789018", "１２３４５６７８９０１８", "MK-123456789018"):
        result = runner.invoke(app, ["explain", person, "--events", str(stream),
                                     "--rules", str(RULES)])
        assert result.exit_code == 2, result.output
        assert "My Number" in result.output
        assert "123456789018" not in result.output and person not in result.output


def test_a_missing_events_file_is_one_line_exit_2_and_creates_nothing(tmp_path: Path) -> None:
    missing, out = tmp_path / "nowhere.jsonl", tmp_path / "out"
    for args in (["replay", str(missing), "--out", str(out)],
                 ["replay", str(missing), "--out", str(out), "--fresh"],
                 ["replay", str(tmp_path), "--out", str(out)],
                 ["explain", "MK-A", "--events", str(missing)]):
        result = runner.invoke(app, [*args, "--rules", str(RULES)])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert f"cannot read the events file {args[1] if args[0] == 'replay' else missing}" in (
            result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not out.exists()


def _as_an_editor_reads(value: object) -> object:
    """A rule file's data as a YAML editor hands it to a JSON Schema: dates are text."""
    import datetime as dt

    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _as_an_editor_reads(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_an_editor_reads(v) for v in value]
    return value


def test_the_editor_schema_accepts_every_shipped_file_and_what_validate_refuses_it_flags(
        tmp_path: Path) -> None:
    """The schema describes the file (``rate: '25%'``), not the model it becomes (2500)."""
    import jsonschema

    from pointengine.catalog.rulefile import load_yaml

    result = runner.invoke(app, ["schema", str(tmp_path)])
    assert result.exit_code == 0, result.output
    program = orjson.loads((tmp_path / "program.schema.json").read_bytes())
    providers = orjson.loads((tmp_path / "providers.schema.json").read_bytes())
    files = sorted(RULES.rglob("*.yaml"))
    assert len(files) > 20
    for path in files:
        schema = providers if path.name == "providers.yaml" else program
        data, _ = load_yaml(path)
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(
            _as_an_editor_reads(data)))
        assert not errors, (path, [error.message for error in errors])
    shipped = (RULES / "342092-miyoshi").glob("*.yaml")
    premium = next(p for p in shipped if "rate:" in p.read_text(encoding="utf-8"))
    data, _ = load_yaml(premium)
    for rate in (25, "25", "0%", "125%"):
        data["award"]["rate"] = rate
        assert list(jsonschema.Draft202012Validator(program).iter_errors(
            _as_an_editor_reads(data))), rate
