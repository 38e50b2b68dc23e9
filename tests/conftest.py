"""Shared fixtures: the shipped catalog and a fresh world per test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pointengine.catalog.loading import Catalog, load_catalog
from tests.world import RULES, World


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The shipped rules, loaded once."""
    return load_catalog(RULES)


@pytest.fixture
def world(catalog: Catalog) -> Iterator[World]:
    """A fresh engine and store for one test."""
    w = World(catalog)
    yield w
    w.engine.close()


@pytest.fixture(autouse=True)
def _root_logger_as_it_was() -> Iterator[None]:
    """Commands configure the root logger (JSON to stderr); one test's configuration must not
    reach the next test's output."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
