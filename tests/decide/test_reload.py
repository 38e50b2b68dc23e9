"""Hot reload: rule files change between batches while the engine runs."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pointengine.catalog.loading import load_catalog
from pointengine.decide.engine import Engine
from pointengine.decide.reload import CatalogWatcher
from pointengine.model.events import AnyEvent, event_from_dict
from pointengine.model.ledger import ListSink
from pointengine.store.memory import MemoryStore
from tests.catalog.test_rulefile import alias_bomb
from tests.world import RULES

PROGRAM = "miyoshi-premium"
VERSION_2 = """\
versions:
  - version: 2
    effective_from: 2022-04-01T00:00:00+09:00
    note: the rate falls to 10% from April
    award: {rate: 10%}
"""


class Running:
    """An engine on a copy of the shipped rules, with a watcher that looks at every poll."""

    def __init__(self, root: Path) -> None:
        shutil.copytree(RULES, root)
        self.root = root
        self.file = root / "342092-miyoshi" / "premium.yaml"
        self.sink = ListSink()
        self.engine = Engine(load_catalog(root), MemoryStore(self.sink))
        self.watcher = CatalogWatcher(root, self.engine, interval=0)
        self.n = 0

    def event(self, type: str, at: str, **fields: object) -> AnyEvent:
        self.n += 1
        return event_from_dict({"type": type, "source": "test", "id": f"e{self.n}",
                                "person": "MK-A", "at": f"{at}T12:00:00+09:00", **fields})

    def buy(self, at: str, amount: int) -> AnyEvent:
        return self.event("purchase", at, provider="paypay", amount=amount, store="ST1",
                          store_municipality="342092")

    def edit(self, old: str, new: str) -> None:
        text = self.file.read_text(encoding="utf-8")
        assert old in text
        self.file.write_text(text.replace(old, new), encoding="utf-8")

    def lines(self) -> list[tuple[int, int]]:
        return [(e.version, e.points) for e in self.sink.entries if e.program == PROGRAM]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path / "rules")
    r.engine.process([r.event("mynapoint_application", "2022-02-01", phase=2, provider="paypay",
                              card_applied_on="2022-01-05", residence="342092")])
    yield r
    r.engine.close()


def test_a_new_version_decides_the_next_batch_and_the_ledger_names_it(running: Running) -> None:
    running.engine.process([running.buy("2022-03-01", 2000)])
    v1 = running.engine.catalog.programs[PROGRAM].versions[0]
    compiled = running.engine.ruleset(v1)
    with running.file.open("a", encoding="utf-8") as handle:
        handle.write(VERSION_2)
    result = running.watcher.poll()
    assert result.status == "reloaded"
    assert result.changed == ("342092-miyoshi/premium.yaml",)
    assert result.added == (f"{PROGRAM}@v2",)
    # After April, v2 decides; a late March event is still decided by v1.
    running.engine.process([running.buy("2022-04-05", 2000), running.buy("2022-03-15", 2000)])
    assert running.lines() == [(1, 600), (2, 200), (1, 600)]
    kept = running.engine.catalog.programs[PROGRAM].versions[0]
    assert kept is v1 and running.engine.ruleset(kept) is compiled


def test_a_typo_keeps_the_old_catalog_and_is_reported(running: Running) -> None:
    old = running.engine.catalog
    running.edit("rate: 30%", "rat: 30%")
    result = running.watcher.poll()
    assert result.status == "rejected"
    [problem] = result.problems
    assert (problem.file, problem.line, problem.suggestion) == (str(running.file), 11, "rate")
    assert running.engine.catalog is old
    running.engine.process([running.buy("2022-03-01", 2000)])
    assert running.lines() == [(1, 600)]
    assert running.watcher.poll().status == "unchanged"  # reported once
    running.edit("rat: 30%", "rate: 30%")
    assert running.watcher.poll().status == "reloaded"


def test_a_version_in_force_cannot_change_in_place(running: Running) -> None:
    old = running.engine.catalog
    running.edit("rate: 30%", "rate: 20%")
    result = running.watcher.poll()
    assert result.status == "rejected"
    assert "cannot change; add a new version" in result.problems[0].message
    assert running.engine.catalog is old


def test_rewording_is_allowed_and_touching_changes_nothing(running: Running) -> None:
    stamp = running.file.stat().st_mtime_ns + 10**9
    os.utime(running.file, ns=(stamp, stamp))
    assert running.watcher.poll().status == "unchanged"
    running.edit("Period and budget\n  are ours.", "Period and budget are ours (reworded).")
    assert running.watcher.poll().status == "reloaded"


def test_a_removed_program_loses_its_compiled_ruleset(running: Running) -> None:
    running.engine.process([running.buy("2022-03-01", 2000)])
    v1 = running.engine.catalog.programs[PROGRAM].versions[0]
    compiled = running.engine.ruleset(v1)
    running.file.unlink()
    result = running.watcher.poll()
    assert (result.status, result.removed) == ("reloaded", (PROGRAM,))
    assert compiled not in running.engine._rulesets.values()
    running.engine.process([running.buy("2022-03-02", 2000)])
    assert running.lines() == [(1, 600)]


def test_polls_are_spaced_by_the_interval(running: Running) -> None:
    now = [0.0]
    watcher = CatalogWatcher(running.root, running.engine, interval=5.0, clock=lambda: now[0])
    with running.file.open("a", encoding="utf-8") as handle:
        handle.write(VERSION_2)
    assert watcher.poll().status == "unchanged"
    now[0] = 5.0
    assert watcher.poll().status == "reloaded"


def test_an_unreadable_rule_file_is_reported_and_tried_again(running: Running) -> None:
    old = running.engine.catalog
    dangling = running.root / "342092-miyoshi" / "draft.yaml"
    dangling.symlink_to(running.root / "nowhere.yaml")
    running.edit("Period and budget\n  are ours.", "Period and budget are ours (reworded).")
    result = running.watcher.poll()
    assert result.status == "rejected" and running.engine.catalog is old
    assert "draft.yaml" in result.problems[0].file
    assert running.watcher.poll().status == "unchanged"  # reported once
    dangling.unlink()
    assert running.watcher.poll().status == "reloaded"  # the rewording is taken up now
    assert "reworded" in running.engine.catalog.programs[PROGRAM].current.assumptions


def test_an_alias_bomb_is_refused_at_once_and_the_rules_stay(running: Running) -> None:
    old = running.engine.catalog
    with running.file.open("a", encoding="utf-8") as handle:
        handle.write(alias_bomb())
    started = time.perf_counter()
    result = running.watcher.poll()
    assert time.perf_counter() - started < 2
    assert result.status == "rejected" and running.engine.catalog is old
    [problem] = result.problems
    assert (problem.file, problem.line, problem.field) == (str(running.file), 16, "a0")
    assert "do not use YAML anchors and aliases" in problem.message


def test_a_misnamed_rule_file_dropped_in_is_reported(running: Running) -> None:
    old = running.engine.catalog
    draft = running.root / "342092-miyoshi" / "draft.yml"
    draft.write_text(running.file.read_text(encoding="utf-8"), encoding="utf-8")
    result = running.watcher.poll()
    assert result.status == "rejected" and running.engine.catalog is old
    [problem] = result.problems
    assert (problem.file, problem.suggestion) == (str(draft), "draft.yaml")
    draft.unlink()
    assert running.watcher.poll().status == "reloaded"


@pytest.mark.parametrize("edit", [
    ("cap: 6000", "cap: !!timestamp x"),
    ("cap: 6000", "cap: !!float x"),
    ("cap: 6000", "cap: " + "[" * 1_000 + "]" * 1_000),
])
def test_an_odd_tag_or_a_deep_value_is_refused_and_the_rules_stay(
        running: Running, edit: tuple[str, str]) -> None:
    old = running.engine.catalog
    running.edit(*edit)
    result = running.watcher.poll()
    assert result.status == "rejected" and running.engine.catalog is old
    [problem] = result.problems
    assert (problem.file, problem.line) == (str(running.file), 11)
    running.engine.process([running.buy("2022-03-01", 1_000)])
    assert running.lines() == [(1, 300)]  # the rules in force still decide
