"""The documentation's examples are valid input."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.decide.engine import Engine
from pointengine.errors import RuleFileError, SignatureRejected
from pointengine.model.events import parse_event
from pointengine.store.memory import MemoryStore
from tests.world import RULES

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


def test_the_rule_file_examples_validate_with_the_shipped_rules(tmp_path: Path) -> None:
    program, change = examples("rules.md", "yaml")
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "342092-miyoshi" / "premium.yaml").write_text(
        f"{program}\n{change}\n", encoding="utf-8")
    versions = load_catalog(rules).programs["miyoshi-premium"].versions
    assert [v.conditions.card_applied_by for v in versions] == [None, dt.date(2022, 12, 31)]
    assert [v.type_letter for v in versions] == ["D", "D"]


def test_the_validate_examples_are_what_validate_prints(tmp_path: Path) -> None:
    program = examples("rules.md", "yaml")[0]
    documented = re.findall(r"^rules/342092-miyoshi/premium\.yaml:\d+: (.*)$",
                            (DOCS / "rules.md").read_text(encoding="utf-8"), re.M)
    assert len(documented) == 2
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    # 'rate' misspelt, and 'period' written at the top level instead of under 'conditions'
    mistaken = program.replace("rate: 30%", "rat: 30%").replace(
        "conditions:\n  period:", "conditions: {card_applied_by: 2022-09-30}\nperiod:")
    (rules / "342092-miyoshi" / "premium.yaml").write_text(mistaken, encoding="utf-8")
    with pytest.raises(RuleFileError) as raised:
        load_catalog(rules)
    printed = {str(p).split(": ", 1)[1] for p in raised.value.problems}
    assert printed == set(documented)


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
    # curl is replaced by a function that prints its arguments, one a line
    sent = subprocess.run(["bash", "-c", "curl() { printf '%s\\n' \"$@\"; }\n" + script],
                          cwd=tmp_path, env={"PATH": os.environ["PATH"],
                                             "QUICKPAY_SECRET": SECRET},
                          capture_output=True, text=True, check=True, timeout=30).stdout
    args = sent.splitlines()
    url = urlsplit(next(a for a in args if a.startswith("https://")))
    headers = dict(a.split(": ", 1) for a in args if a.startswith("X-"))
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
