"""pointengine: Mynapoint and municipal point programs as declarative rules.

The public surface is what this module exports; the modules behind it may change.
"""

from pointengine.catalog.loading import Catalog, Program, load_catalog
from pointengine.decide.engine import Decision, Engine, Verdict
from pointengine.errors import (
    InputError,
    IntegrityError,
    MalformedEvent,
    MyNumberRejected,
    OperationalError,
    PointEngineError,
    Problem,
    RefundExceedsPayment,
    RuleFileError,
    SignatureRejected,
    UnknownMunicipality,
    UnknownTransaction,
)
from pointengine.model.events import AnyEvent, event_from_dict, parse_event
from pointengine.model.ledger import FileSink, LedgerEntry, ListSink, read_ledger
from pointengine.replay.run import ReplayReport, replay
from pointengine.store.contract import Store
from pointengine.store.memory import MemoryStore

__all__ = [
    "AnyEvent",
    "Catalog",
    "Decision",
    "Engine",
    "FileSink",
    "InputError",
    "IntegrityError",
    "LedgerEntry",
    "ListSink",
    "MalformedEvent",
    "MemoryStore",
    "MyNumberRejected",
    "OperationalError",
    "PointEngineError",
    "Problem",
    "Program",
    "RefundExceedsPayment",
    "ReplayReport",
    "RuleFileError",
    "SignatureRejected",
    "Store",
    "UnknownMunicipality",
    "UnknownTransaction",
    "Verdict",
    "event_from_dict",
    "load_catalog",
    "parse_event",
    "read_ledger",
    "replay",
]
