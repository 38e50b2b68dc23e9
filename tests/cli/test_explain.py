"""``pointengine explain`` and ``pointengine compare`` as staff type them."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from pointengine.cli.main import app
from tests.world import APPLY, BUY, RULES

runner = CliRunner()
MIYOSHI, YOKKAICHI = "342092", "242021"


def _stream(tmp_path: Path) -> Path:
    lines = [{**APPLY, "residence": MIYOSHI},
             {**BUY, "store_municipality": YOKKAICHI},
             {k: v for k, v in {**BUY, "id": "b2"}.items() if k != "provider"}]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in lines))
    return path


def test_explain_in_japanese_shows_the_store_beside_the_requirement_and_the_refused_line(
        tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", "MK-A", "--events", str(_stream(tmp_path)),
                                 "--rules", str(RULES), "--lang", "ja"])
    assert result.exit_code == 0, result.output
    assert ("  miyoshi-premium@v1: 対象外（in_region）: 実際 店舗 S1（242021 三重県四日市市） ／ "
            "条件 広島県三次市内の店舗であること") in result.output
    assert "  3行目: 形式の誤りにより受付不可（malformed）: purchase.provider: Field required" in (
        result.output)
    assert "  合計: 付与 4,750円、取消 0円、差引 4,750円" in result.output


def test_explain_as_json(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", "MK-A", "--events", str(_stream(tmp_path)),
                                 "--rules", str(RULES), "--json"])
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.output)
    assert [r["line"] for r in data["refused"]] == [3]
    assert data["total"]["net"] == 4_750 and data["source"] == "replay"


def test_explain_says_when_there_is_nothing_and_refuses_what_is_no_mykey_id(
        tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    nobody = runner.invoke(app, ["explain", "MK-Z", "--events", str(stream), "--rules",
                                 str(RULES), "--lang", "en"])
    assert nobody.exit_code == 1 and nobody.output.strip() == "no events for MK-Z"
    wrong = runner.invoke(app, ["explain", "MK A", "--events", str(stream), "--rules",
                                str(RULES)])
    assert wrong.exit_code == 2 and "MyKey ID" in wrong.output
    ledger = runner.invoke(app, ["explain", "MK-A", "--events", str(stream), "--rules",
                                 str(RULES), "--ledger", str(tmp_path / "none.jsonl")])
    assert ledger.exit_code == 2
    assert ledger.output.strip().startswith("cannot read the ledger")


def test_compare_prints_per_program_and_writes_csv(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    draft = tmp_path / "premium.yaml"
    draft.write_text((RULES / "342092-miyoshi" / "premium.yaml").read_text(encoding="utf-8"),
                     encoding="utf-8")
    result = runner.invoke(app, ["compare", str(draft), "--events", str(stream), "--rules",
                                 str(RULES), "--csv", str(tmp_path / "csv"), "--lang", "ja"])
    assert result.exit_code == 0, result.output
    assert "案での支払額 4,750円、支払実績 4,750円、差額 +0円" in result.output
    assert "支払額が変わる事業はありません" in result.output
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == [
        "days.csv", "persons.csv", "programs.csv", "providers.csv"]
    as_json = runner.invoke(app, ["compare", str(draft), "--events", str(stream), "--rules",
                                  str(RULES), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert orjson.loads(as_json.output)["difference"] == 0


def test_compare_reports_a_bad_draft_located_and_a_missing_file(tmp_path: Path) -> None:
    draft = tmp_path / "premium.yaml"
    draft.write_text((RULES / "342092-miyoshi" / "premium.yaml").read_text(encoding="utf-8")
                     .replace("  period:", "  peroid:"), encoding="utf-8")
    result = runner.invoke(app, ["compare", str(draft), "--events", str(_stream(tmp_path)),
                                 "--rules", str(RULES)])
    assert result.exit_code == 1
    assert f"{draft}:" in result.output and "peroid" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["compare", str(RULES / "342092-miyoshi" / "premium.yaml"),
                                  "--events", str(tmp_path / "none.jsonl"), "--rules",
                                  str(RULES)])
    assert missing.exit_code == 2
    assert "cannot read the events file" in missing.output
