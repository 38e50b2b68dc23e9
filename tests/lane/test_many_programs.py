"""Many programs of one template (the router benchmark's), through the lane and the Python path.

The lane answers a memo key it has not seen from the outcomes of its checks, shared by every
plan with a check of that shape, and builds a version's claim plans from one made beforehand:
on a catalog where dozens of programs share their checks and their caps, both must still give
exactly the Python path's ledger, rejects and state.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

import orjson

from load.bench_router import program_yaml
from pointengine.catalog.loading import load_catalog
from pointengine.model.municipalities import registry
from pointengine.synth.generate import generate
from tests.lane.test_lane import assert_same
from tests.world import RULES


def test_many_programs_of_one_template_give_the_same_results_both_ways(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    generate(events, persons=500, events=8_000, seed=23,
             adversarial=frozenset({"duplicates", "malformed"}))
    lines = [orjson.loads(line) for line in events.read_bytes().splitlines()
             if line.startswith(b'{"type":"mynapoint_application"')]
    homes = Counter(line["residence"] for line in lines if "residence" in line)
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    rng = random.Random("many-programs")
    codes = [code for code, _ in homes.most_common(60)]
    for code in codes:
        folder = rules / f"{code}-bench"
        folder.mkdir()
        (folder / "premium.yaml").write_text(
            program_yaml(code, registry().get(code).label, rng), encoding="utf-8")
    catalog = load_catalog(rules)
    fast = assert_same(catalog, events, tmp_path / "out")
    assert fast.report.lane_lines > 0.5 * fast.report.lines
    paid = {program for program, _ in fast.report.totals if program.startswith("bench-")}
    assert len(paid) > 20  # many programs of the template paid, through the lane
