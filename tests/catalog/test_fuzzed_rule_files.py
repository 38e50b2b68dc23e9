"""Whatever a rule file holds, loading it gives the catalog or located problems, never a
traceback: a municipality's bad edit must not stop a validation or a worker's reload."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from load.fuzz import EDITS, ODD_YAML, odd_edit
from pointengine.catalog.loading import load_catalog
from pointengine.errors import RuleFileError
from tests.world import RULES


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("fuzz") / "rules"
    shutil.copytree(RULES, root)
    yield root


_FILES = sorted(str(p.relative_to(RULES)) for p in RULES.rglob("*.yaml"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(_FILES), data=st.data())
def test_a_mutated_rule_file_is_loaded_or_refused_with_located_problems(
        rules: Path, name: str, data: st.DataObject) -> None:
    path = rules / name
    original = (RULES / name).read_text(encoding="utf-8")
    lines = original.splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        odd_edit(lines, data.draw(st.integers(0, len(lines) - 1)),
                 data.draw(st.sampled_from(ODD_YAML)), data.draw(st.sampled_from(EDITS)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        load_catalog(rules)
    except RuleFileError as refused:
        assert refused.problems
        assert all(p.line >= 1 and p.file for p in refused.problems)
    finally:
        path.write_text(original, encoding="utf-8")
