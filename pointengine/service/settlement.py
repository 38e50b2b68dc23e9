"""Settlement: the points (yen) to pay each provider, per program, reconciled with the ledger.

:func:`settle` sums ledger lines per (provider, program): awards, reversals and the net, and
checks, before anything is reported, that

* the ledger's ``seq`` numbers run without a gap or a repeat (no line lost, none twice);
* every award is positive and every reversal negative;
* the net per (program, provider) equals the store's running totals, to the yen (when totals
  are given: RedisStore's ``totals`` hash, or a saved MemoryStore's).

Any difference raises :class:`~pointengine.errors.IntegrityError` naming it. One point is one
yen. :meth:`Settlement.to_csv` writes one row per (provider, program), then one subtotal row per
provider (program ``*``) and the grand total (provider and program ``*``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pointengine.errors import IntegrityError
from pointengine.model.ledger import LedgerEntry, read_ledger
from pointengine.replay import checkpoint
from pointengine.store.redis_store import RedisStore

__all__ = ["COLUMNS", "Settlement", "SettlementLine", "settle", "settle_file", "settle_redis"]

COLUMNS = ("provider", "program", "awarded_yen", "reversed_yen", "net_yen", "ledger_lines")


@dataclass
class SettlementLine:
    """What one provider is paid for one program."""

    provider: str
    program: str
    awarded: int = 0
    reversed: int = 0
    lines: int = 0

    @property
    def net(self) -> int:
        """Awards less reversals, in yen."""
        return self.awarded - self.reversed

    def row(self) -> tuple[str, str, int, int, int, int]:
        """The CSV row."""
        return (self.provider, self.program, self.awarded, self.reversed, self.net, self.lines)


@dataclass
class Settlement:
    """Lines per (provider, program), reconciled; ``ledger_lines`` counts every line read."""

    lines: dict[tuple[str, str], SettlementLine] = field(default_factory=dict)
    ledger_lines: int = 0
    reconciled_with_totals: bool = False

    @property
    def total(self) -> int:
        """Net yen over every provider and program."""
        return sum(line.net for line in self.lines.values())

    def per_provider(self) -> dict[str, SettlementLine]:
        """Subtotals per provider (program ``*``)."""
        out: dict[str, SettlementLine] = {}
        for (provider, _), line in sorted(self.lines.items()):
            sub = out.setdefault(provider, SettlementLine(provider, "*"))
            sub.awarded += line.awarded
            sub.reversed += line.reversed
            sub.lines += line.lines
        return out

    def to_csv(self) -> str:
        """The settlement as CSV (header, rows, provider subtotals, grand total)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for key in sorted(self.lines):
            writer.writerow(self.lines[key].row())
        grand = SettlementLine("*", "*")
        for sub in self.per_provider().values():
            writer.writerow(sub.row())
            grand.awarded += sub.awarded
            grand.reversed += sub.reversed
            grand.lines += sub.lines
        writer.writerow(grand.row())
        return buffer.getvalue()


def settle(entries: Iterable[LedgerEntry],
           totals: Mapping[tuple[str, str], int] | None = None) -> Settlement:
    """Sum ``entries`` per (provider, program) and reconcile (see the module docstring).

    ``totals`` maps (program, provider) to net points, as :meth:`Store.totals` returns them.
    """
    result = Settlement()
    expected_seq: int | None = None
    for entry in entries:
        if expected_seq is not None and entry.seq != expected_seq:
            raise IntegrityError(f"ledger seq {entry.seq} where {expected_seq} was expected: "
                                 "a line is missing or repeated")
        expected_seq = entry.seq + 1
        if (entry.kind == "award") != (entry.points > 0) or entry.points == 0:
            raise IntegrityError(f"ledger seq {entry.seq}: a {entry.kind} of {entry.points}")
        line = result.lines.get((entry.provider, entry.program))
        if line is None:
            line = result.lines[(entry.provider, entry.program)] = SettlementLine(
                entry.provider, entry.program)
        if entry.points > 0:
            line.awarded += entry.points
        else:
            line.reversed -= entry.points
        line.lines += 1
        result.ledger_lines += 1
    if totals is not None:
        _reconcile(result, totals)
        result.reconciled_with_totals = True
    return result


def _reconcile(result: Settlement, totals: Mapping[tuple[str, str], int]) -> None:
    ledger = {(program, provider): line.net for (provider, program), line in result.lines.items()}
    keys = set(ledger) | {k for k, v in totals.items() if v != 0}
    differences = [(k, ledger.get(k, 0), totals.get(k, 0)) for k in sorted(keys)
                   if ledger.get(k, 0) != totals.get(k, 0)]
    if differences:
        shown = "; ".join(f"{program}/{provider}: ledger {a} yen, totals {b} yen"
                          for (program, provider), a, b in differences[:10])
        raise IntegrityError(f"the ledger does not reconcile with the store's totals "
                             f"({len(differences)} difference(s)): {shown}")


def settle_redis(store: RedisStore) -> Settlement:
    """Settle a RedisStore's ledger stream against its totals hash.

    Workers may be applying batches meanwhile: the totals and the ledger's last ID are read
    together, and the ledger only up to that ID, so both describe the same moment.
    """
    totals, end = store.snapshot()
    return settle(store.ledger(end=end) if end is not None else (), totals)


def settle_file(ledger: Path, state: Path | None = None) -> Settlement:
    """Settle a ledger file (FileSink); reconcile with a saved MemoryStore when ``state`` is
    given (``state.pickle`` written by ``pointengine replay``, a file this program wrote)."""
    totals = None
    if state is not None:
        try:
            store, recorded, _ = checkpoint.load(state)
        except checkpoint.CheckpointError as exc:
            raise IntegrityError(str(exc)) from None
        size = ledger.stat().st_size
        if size != recorded:
            raise IntegrityError(
                f"{ledger} has {size:,} bytes but the state in {state} was saved when it had "
                f"{recorded:,}: the run that wrote it stopped before its last checkpoint; "
                "replay the stream again (it cuts the ledger back and re-applies) to settle")
        totals = store.totals()
    return settle(read_ledger(ledger), totals)
