"""The documentation's examples are valid input."""

from __future__ import annotations

import re
from pathlib import Path

from pointengine.events import parse_event

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_event_example_parses() -> None:
    text = (DOCS / "events.md").read_text(encoding="utf-8")
    examples = re.findall(r"```json\n(.*?)\n```", text, re.S)
    assert len(examples) == 8
    assert {parse_event(example).type for example in examples} == {
        "mynapoint_application", "health_insurance_registration",
        "charge", "purchase", "refund", "residence_change", "participation", "lottery_draw"}


def test_the_readme_names_every_answer_of_the_service() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The service"):readme.index("## Municipalities")]
    text = " ".join(section.split())
    for answer in ("401", "403", "404 `unknown_provider`", "413 `too_large`", "422",
                   "503 `unavailable`", "503 `not_replicated`", "202"):
        assert answer in text, answer
