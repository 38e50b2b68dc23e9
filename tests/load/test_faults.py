"""The standing fault and fuzz suite (``python -m load.faults``) at its small scale: each check
runs against a real redis-server, the service, workers and ``pointengine replay``, and passes."""

from __future__ import annotations

import pytest

from load.faults import CHECKS, Row, run_checks, table

KNOWN: dict[str, str] = {}
"""Checks that fail for a known fault not yet mended, with the fault: strict, so that the mend
is noticed."""


@pytest.fixture(scope="module")
def rows() -> dict[str, Row]:
    """Every check's row, run once for the module."""
    rows = run_checks("small", seed=2022)
    print(table(rows))  # shown with -s, and in the report of a failure
    return {row.name: row for row in rows}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN[name]))
    if name in KNOWN else name for name in CHECKS])
def test_the_check_passes(rows: dict[str, Row], name: str) -> None:
    row = rows[name]
    assert row.ok, "\n".join([f"{row.check}: {row.observed}", *row.details])


def test_the_small_scale_runs_every_check_quickly(rows: dict[str, Row]) -> None:
    assert list(rows) == list(CHECKS)
    assert sum(row.seconds for row in rows.values()) < 90
