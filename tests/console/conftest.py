"""What the console's tests share: a small history of events with 三次市 residents, and the
ledger of what the shipped rules paid for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointengine.catalog.loading import load_catalog
from pointengine.decide.engine import Engine
from pointengine.model.ledger import FileSink
from pointengine.replay.run import replay
from pointengine.store.memory import MemoryStore
from pointengine.synth.generate import generate
from tests.world import RULES


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small stream with 三次市 residents, and the ledger of what the shipped rules paid."""
    folder = tmp_path_factory.mktemp("history")
    events = folder / "events-2022.jsonl"
    generate(events, persons=400, events=4_000, seed=7, focus=("342092",), focus_share=0.5)
    sink = FileSink(folder / "ledger-2022.jsonl")
    engine = Engine(load_catalog(RULES), MemoryStore(sink))
    replay(events, engine)
    engine.close()
    sink.close()
    return folder


