"""The documentation's examples are valid input."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import redis

from load.harness import run_workers
from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.decide.engine import Engine
from pointengine.errors import RuleFileError, SignatureRejected
from pointengine.i18n import Lang
from pointengine.model.events import parse_event
from pointengine.store.memory import MemoryStore
from pointengine.store.redis_server import RedisServer
from tests.redis_fixtures import redis_client, redis_server
from tests.serving import serving
from tests.world import RULES

__all__ = ["redis_client", "redis_server"]

DOCS = Path(__file__).resolve().parent.parent / "docs"


def examples(name: str, language: str) -> list[str]:
    text = (DOCS / name).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)\n```", text, re.S)


def test_every_event_example_parses() -> None:
    found = examples("events.md", "json")
    assert len(found) == 8
    assert {parse_event(example).type for example in found} == {
        "mynapoint_application", "health_insurance_registration",
        "charge", "purchase", "refund", "residence_change", "participation", "lottery_draw"}


def test_the_event_examples_in_their_order_are_all_applied(catalog: Catalog) -> None:
    engine = Engine(catalog, MemoryStore())
    try:
        decisions = engine.process([parse_event(e) for e in examples("events.md", "json")])
    finally:
        engine.close()
    assert [(d.applied.status, d.applied.reason) for d in decisions] == [("applied", None)] * 8


RULE_DOCS = ("rules.md", "rules.ja.md")
"""The guide to rule files, in English and in Japanese: the same examples, checked alike."""


@pytest.mark.parametrize("doc", RULE_DOCS)
def test_the_rule_file_examples_validate_with_the_shipped_rules(doc: str, tmp_path: Path) -> None:
    program, change = examples(doc, "yaml")
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "342092-miyoshi" / "premium.yaml").write_text(
        f"{program}\n{change}\n", encoding="utf-8")
    versions = load_catalog(rules).programs["miyoshi-premium"].versions
    assert [v.conditions.card_applied_by for v in versions] == [None, dt.date(2022, 12, 31)]
    assert [v.type_letter for v in versions] == ["D", "D"]


@pytest.mark.parametrize("doc", RULE_DOCS)
def test_the_validate_examples_are_what_validate_prints(doc: str, tmp_path: Path) -> None:
    program = examples(doc, "yaml")[0]
    documented = re.findall(r"^rules/342092-miyoshi/premium\.yaml:\d+: (.*)$",
                            (DOCS / doc).read_text(encoding="utf-8"), re.M)
    # the English lines, and in the Japanese guide the same in Japanese (--lang ja) too
    assert len(documented) == (4 if doc == "rules.ja.md" else 2)
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    # 'rate' misspelt, and 'period' written at the top level instead of under 'conditions'
    mistaken = program.replace("rate: 30%", "rat: 30%").replace(
        "conditions:\n  period:", "conditions: {card_applied_by: 2022-09-30}\nperiod:")
    (rules / "342092-miyoshi" / "premium.yaml").write_text(mistaken, encoding="utf-8")
    with pytest.raises(RuleFileError) as raised:
        load_catalog(rules)
    langs: tuple[Lang, ...] = ("en", "ja") if doc == "rules.ja.md" else ("en",)
    printed = {p.describe(lang).split(": ", 1)[1] for p in raised.value.problems
               for lang in langs}
    assert printed == set(documented)


@pytest.mark.parametrize(("doc", "lang"), [("rules.md", "en"), ("rules.ja.md", "ja")])
def test_the_editor_lines_are_what_schema_prints_and_find_its_schemas(
        doc: str, lang: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's first line, the command's output as shown and the VS Code settings: run
    from the folder that holds rules/, each points at a schema ``pointengine schema`` wrote."""
    from typer.testing import CliRunner

    from pointengine.catalog.schema import editor_line
    from pointengine.cli.main import app

    text = (DOCS / doc).read_text(encoding="utf-8")
    example = Path("rules/342092-miyoshi/premium.yaml")
    first = examples(doc, "yaml")[0].splitlines()[0]
    assert first == editor_line(example, Path("rules/schema"))
    shutil.copytree(RULES, tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    printed = CliRunner().invoke(app, ["schema", "rules/schema", "--lang", lang])
    assert printed.exit_code == 0, printed.output
    (shown,) = re.findall(r"^```\n((?:wrote |rules/schema/).*?)\n```$", text, re.M | re.S)
    assert shown.splitlines() == printed.output.splitlines()
    assert (example.parent / first.split("$schema=")[1]).resolve() == (
        tmp_path / "rules" / "schema" / "program.schema.json")
    (settings,) = examples(doc, "json")
    for schema, globs in orjson.loads(settings)["yaml.schemas"].items():
        assert Path(schema).is_file(), schema
        matched = [p for p in Path("rules").rglob("*.yaml") if any(p.match(g) for g in globs)]
        assert matched, globs
        assert all((p.name == "providers.yaml") == ("providers" in schema) for p in matched)


def test_the_readme_names_every_answer_of_the_service() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The service"):readme.index("## Municipalities")]
    text = " ".join(section.split())
    for answer in ("401", "403", "404 `unknown_provider`", "413 `too_large`", "422",
                   "503 `unavailable`", "503 `not_replicated`", "503 `state_lost`", "202"):
        assert answer in text, answer


def _verify_signed(headers: dict[str, str], body: bytes, path: str, query: str) -> str:
    from pointengine.service.signing import MemoryReplayGuard, Verifier

    verifier = Verifier({"quickpay": SECRET.encode()}, MemoryReplayGuard())
    return verifier.verify(headers, body, method="POST", path=path, query=query,
                           provider="quickpay")


SECRET = "0123456789abcdef-doc-example"
BATCH = b'[{"eventType": "PAYMENT", "amount": 1280}]\n'


def test_the_shell_signing_example_signs_what_the_service_verifies(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    script = examples("signing.md", "sh")[0]
    (tmp_path / "batch.json").write_bytes(BATCH)
    url, headers = _run_shell(script, tmp_path)
    assert headers["X-Signature"].startswith("v2=")
    assert _verify_signed(headers, BATCH, url.path, url.query) == "quickpay"
    with pytest.raises(SignatureRejected):
        _verify_signed(headers, BATCH, url.path, "")


def test_the_python_signing_example_signs_what_the_service_verifies() -> None:
    namespace: dict[str, Any] = {}
    exec(examples("signing.md", "python")[0], namespace)
    path, query = "/providers/quickpay/batch", "lenient=true"
    headers = namespace["signed_headers"]("quickpay", SECRET.encode(), "POST", path, query,
                                          BATCH)
    assert _verify_signed(headers, BATCH, path, query) == "quickpay"


def _verify(headers: dict[str, str], body: bytes, method: str, path: str, query: str) -> str:
    from pointengine.service.signing import MemoryReplayGuard, Verifier

    verifier = Verifier({"quickpay": SECRET.encode()}, MemoryReplayGuard())
    return verifier.verify(headers, body, method=method, path=path, query=query,
                           provider="quickpay")


def test_the_provider_guides_format_examples_are_what_the_adapters_accept() -> None:
    from pointengine.adapters.registry import adapter_for
    from pointengine.service.answers import Accepted, RejectsPage, Unprocessable

    found: dict[str, list[bytes]] = {"quickpay": [], "transitcard": []}
    answers = []
    for example in examples("providers.md", "json"):
        if '"eventType"' in example:
            found["quickpay"].append(example.encode())
        elif '"records"' in example:
            found["transitcard"].append(example.encode())
        else:
            answers.append(example)
    found["carrierpay"] = [e.encode() for e in examples("providers.md", "xml")]
    (csv_file,) = examples("providers.md", "csv")
    found["towncoin"] = [csv_file.replace("\n", "\r\n").encode(encoding) + b"\r\n"
                         for encoding in ("cp932", "utf-8-sig", "utf-8")]
    kinds: dict[str, set[str]] = {}
    for provider, bodies in found.items():
        assert bodies, provider
        with adapter_for(provider) as adapter:
            for body in bodies:
                kinds.setdefault(provider, set()).update(e.type for e in adapter.to_events(body))
    assert kinds == {"quickpay": {"purchase", "refund"}, "transitcard": {"charge", "refund"},
                     "carrierpay": {"purchase", "refund"},
                     "towncoin": {"charge", "purchase", "refund"}}
    models = {"accepted": Accepted, "rejected": Unprocessable, "ok": RejectsPage}
    assert len(answers) == 3
    for answer in answers:
        document = orjson.loads(answer)
        models[document["status"]].model_validate(document)


def _run_shell(script: str, tmp_path: Path) -> tuple[urllib.parse.SplitResult, dict[str, str]]:
    """What ``script`` would send: its URL and headers (curl replaced by a function that
    prints its arguments, one a line)."""
    sent = subprocess.run(["bash", "-c", "curl() { printf '%s\\n' \"$@\"; }\n" + script],
                          cwd=tmp_path, env={"PATH": os.environ["PATH"],
                                             "QUICKPAY_SECRET": SECRET},
                          capture_output=True, text=True, check=True, timeout=30).stdout
    args = sent.splitlines()
    url = urlsplit(next(a for a in args if a.startswith("https://")))
    return url, dict(a.split(": ", 1) for a in args if a.startswith("X-"))


def test_the_provider_guides_shell_examples_sign_what_the_service_verifies(
        tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    post, read = examples("providers.md", "sh")
    webhook = examples("providers.md", "json")[0].encode()
    (tmp_path / "webhook.json").write_bytes(webhook)
    url, headers = _run_shell(post, tmp_path)
    assert (url.path, url.query) == ("/providers/quickpay/transactions", "")
    assert _verify(headers, webhook, "POST", url.path, url.query) == "quickpay"
    url, headers = _run_shell(read, tmp_path)
    assert (url.path, url.query) == ("/providers/quickpay/rejects", "after=0&limit=1000")
    assert _verify(headers, b"", "GET", url.path, url.query) == "quickpay"
    with pytest.raises(SignatureRejected):
        _verify(headers, b"", "POST", url.path, url.query)


@contextlib.contextmanager
def _serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port; its base URL."""
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


def test_the_provider_guides_python_example_posts_and_reads_its_rejects(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog) -> None:
    """Against the real service and a worker on a real Redis: the example's requests are
    accepted, and it reads back the two refunds the worker refused, then nothing new."""
    from pointengine.service.app import ServiceConfig, create_app
    from pointengine.service.signing import RedisReplayGuard, Verifier

    namespace: dict[str, Any] = {}
    exec(examples("providers.md", "python")[0], namespace)
    signed_request, refused_after_202 = namespace["signed_request"], namespace[
        "refused_after_202"]
    secret = SECRET.encode()
    payment, refund = (orjson.loads(e) for e in examples("providers.md", "json")[:2])
    bodies = [orjson.dumps(payment), orjson.dumps(refund | {"amount": 5000}),
              orjson.dumps(refund | {"transactionId": "QP-2", "originalTransactionId": "QP-0"})]
    verifier = Verifier({"quickpay": secret}, RedisReplayGuard(redis_client))
    with _serving(create_app(ServiceConfig(redis_client, verifier))) as base:
        for body in bodies:
            request = signed_request(base, "quickpay", secret, "POST",
                                     "/providers/quickpay/transactions", body=body)
            with urllib.request.urlopen(request) as answer:
                assert answer.status == 202
        run_workers(redis_server, catalog, 1, retry_window_ms=0)
        refused, after = refused_after_202(base, "quickpay", secret)
        assert sorted((r["event"], r["reason"]) for r in refused) == [
            (f"quickpay/{refund['transactionId']}", "refund_exceeds_payment"),
            ("quickpay/QP-2", "unknown_transaction")]
        assert after == refused[-1]["id"]
        assert refused_after_202(base, "quickpay", secret, after) == ([], after)


def test_the_provider_guides_tables_name_every_reason_the_service_answers() -> None:
    from pointengine.service import answers

    text = (DOCS / "providers.md").read_text(encoding="utf-8")
    head, _, after = text.partition("## After a 202")
    documented = set(re.findall(r"^\| (\d{3}) \| `(\w+)` \|", head, re.M))
    expected = {("401", r) for r in answers.SIGNATURE_REASONS} | {
        ("403", r) for r in answers.OWNERSHIP_REASONS} | {
        ("404", answers.UNKNOWN_PROVIDER), ("408", answers.BODY_TIMEOUT),
        ("413", "too_large")} | {("422", r) for r in answers.PAYLOAD_REASONS} | {
        ("503", r) for r in answers.UNAVAILABLE_REASONS}
    assert documented == expected
    later = re.findall(r"^\| `(\w+)` \|", after, re.M)
    assert sorted(later) == sorted(answers.AFTER_ACCEPTANCE_REASONS)
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "(docs/providers.md)" in readme
