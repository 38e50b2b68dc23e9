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

**Periods.** Asked for :class:`Periods` (JST calendar months, or one range of JST days), the
same ledger, checked and reconciled whole as above, is also cut by period: each line counts in
the period of its own ``at``, the time of the event that caused it (a purchase's or charge's for
an award, the refund's for a reversal), read in JST. So a refund in September takes its points
back in September, netted against September's awards, and never reopens July, the month of the
purchase; a period's figure depends on the ledger alone, not on when a worker or a replay
happened to apply a line (the ledger records no such time: a file replayed a year later settles
to the same months). What the event's time cannot promise: an event delivered after its month
was settled (a provider's late batch) still belongs to that month; settle a month once its
deliveries are in, and compare with the previous settlement.

**Payer.** Points are paid by the program's jurisdiction: the State for ``national`` programs,
the municipality (or prefecture) for its own. The rule language has no payer of its own yet, so
the ``payer`` column is the program's jurisdiction from the catalog (:func:`payers`), blank
for a program the catalog no longer holds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pointengine.catalog.loading import Catalog
from pointengine.errors import IntegrityError
from pointengine.model.jst import JST
from pointengine.model.ledger import LedgerEntry, read_ledger
from pointengine.replay import checkpoint
from pointengine.store.redis_store import RedisStore

__all__ = ["COLUMNS", "PERIOD_COLUMNS", "Periods", "Settlement", "SettlementLine", "payers",
           "settle", "settle_file", "settle_redis"]

COLUMNS = ("provider", "program", "awarded_yen", "reversed_yen", "net_yen", "ledger_lines",
           "payer")
PERIOD_COLUMNS = ("period_from", "period_to", *COLUMNS)
"""The columns when the settlement is cut by period: its first and last JST day, inclusive."""
Progress = Callable[[int, int | None], None]
"""``progress(lines read, lines in the ledger if known)``."""
_EVERY = 8192
"""Ledger lines between two progress calls."""


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

    def row(self, payer: str = "") -> tuple[str, str, int, int, int, int, str]:
        """The CSV row (:data:`COLUMNS`)."""
        return (self.provider, self.program, self.awarded, self.reversed, self.net, self.lines,
                payer)

    def add(self, points: int) -> None:
        """Count one ledger line of ``points`` (an award if positive, else a reversal)."""
        if points > 0:
            self.awarded += points
        else:
            self.reversed -= points
        self.lines += 1


@dataclass(frozen=True)
class Periods:
    """How a settlement is cut: into JST calendar months (``monthly``), or into one period;
    either within ``first``..``last`` (JST days, both included) when given.

    Without a range, months run from the first to the last month with a ledger line; with one,
    they are the months it overlaps, the first and last cut to it.
    """

    monthly: bool = False
    first: dt.date | None = None
    last: dt.date | None = None

    def __post_init__(self) -> None:
        if self.first is not None and self.last is not None and self.first > self.last:
            raise ValueError(f"the period ends ({self.last}) before it begins ({self.first})")
        if not self.monthly and (self.first is None or self.last is None):
            raise ValueError("one period needs its first and its last day")

    def start_of(self, day: dt.date) -> dt.date | None:
        """The first day of the period ``day`` falls in; None when outside the range."""
        if (self.first is not None and day < self.first) or (
                self.last is not None and day > self.last):
            return None
        if not self.monthly:
            assert self.first is not None
            return self.first
        month = day.replace(day=1)
        return max(month, self.first) if self.first is not None else month

    def spans(self, seen: tuple[dt.date, dt.date] | None) -> list[tuple[dt.date, dt.date]]:
        """Every period, (first day, last day), in order; ``seen`` is the first and last day
        of a ledger line within the range (None: no line)."""
        if not self.monthly:
            assert self.first is not None and self.last is not None
            return [(self.first, self.last)]
        low, high = self.first, self.last
        if seen is not None:  # without a bound, whole months: the first line's, the last's
            low = low or seen[0].replace(day=1)
            high = high or _month_end(seen[1])
        if low is None or high is None:
            return []
        out: list[tuple[dt.date, dt.date]] = []
        month = low.replace(day=1)
        while month <= high:
            out.append((max(month, low), min(_month_end(month), high)))
            month = _month_end(month) + dt.timedelta(days=1)
        return out


def _month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


@dataclass
class Settlement:
    """Lines per (provider, program), reconciled; ``ledger_lines`` counts every line read.

    With ``periods``, ``by_period`` holds the lines per period too (keyed by the period's first
    day), and ``seen`` the first and last JST day of a line within its range. ``payers`` maps
    each program to who pays it (:func:`payers`), for the ``payer`` column.
    """

    lines: dict[tuple[str, str], SettlementLine] = field(default_factory=dict)
    ledger_lines: int = 0
    reconciled_with_totals: bool = False
    periods: Periods | None = None
    by_period: dict[dt.date, dict[tuple[str, str], SettlementLine]] = field(
        default_factory=dict)
    seen: tuple[dt.date, dt.date] | None = None
    payers: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Net yen over every provider and program."""
        return sum(line.net for line in self.lines.values())

    @property
    def period_total(self) -> int:
        """Net yen over every period (the whole ledger's without periods)."""
        if self.periods is None:
            return self.total
        return sum(line.net for lines in self.by_period.values() for line in lines.values())

    def spans(self) -> list[tuple[dt.date, dt.date]]:
        """The periods, (first day, last day), in order; none without ``periods``."""
        return self.periods.spans(self.seen) if self.periods is not None else []

    def per_provider(self) -> dict[str, SettlementLine]:
        """Subtotals per provider (program ``*``)."""
        return _per_provider(self.lines)

    def to_csv(self) -> str:
        """The settlement as CSV: header, rows, provider subtotals, grand total; with periods,
        those of each period in turn (:data:`PERIOD_COLUMNS`), then the provider subtotals and
        the grand total over all of them."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if self.periods is None:
            writer.writerow(COLUMNS)
            writer.writerows(self._rows(self.lines))
            return buffer.getvalue()
        writer.writerow(PERIOD_COLUMNS)
        spans = self.spans()
        every: dict[tuple[str, str], SettlementLine] = {}
        for first, last in spans:
            lines = self.by_period.get(first, {})
            for key, line in lines.items():
                _merge(every.setdefault(key, SettlementLine(*key)), line)
            writer.writerows((first.isoformat(), last.isoformat(), *row)
                             for row in self._rows(lines))
        whole = (spans[0][0].isoformat(), spans[-1][1].isoformat()) if spans else ("", "")
        writer.writerows((*whole, *row) for row in self._rows(every, details=False))
        return buffer.getvalue()

    def _rows(self, lines: Mapping[tuple[str, str], SettlementLine], *, details: bool = True,
              ) -> list[tuple[str, str, int, int, int, int, str]]:
        """Rows per (provider, program) (unless not ``details``), per provider, and the
        total."""
        rows = [lines[key].row(self.payers.get(key[1], "")) for key in sorted(lines)
                ] if details else []
        grand = SettlementLine("*", "*")
        for sub in _per_provider(lines).values():
            rows.append(sub.row("*"))
            _merge(grand, sub)
        rows.append(grand.row("*"))
        return rows


def _per_provider(lines: Mapping[tuple[str, str], SettlementLine]) -> dict[str, SettlementLine]:
    out: dict[str, SettlementLine] = {}
    for (provider, _), line in sorted(lines.items()):
        _merge(out.setdefault(provider, SettlementLine(provider, "*")), line)
    return out


def _merge(into: SettlementLine, line: SettlementLine) -> None:
    into.awarded += line.awarded
    into.reversed += line.reversed
    into.lines += line.lines


def payers(catalog: Catalog) -> dict[str, str]:
    """Who pays each program's points: its jurisdiction (``national``, or the local
    government's code). Every version of a program is of its folder's jurisdiction."""
    return {program.id: program.current.jurisdiction for program in catalog.programs.values()}


def settle(entries: Iterable[LedgerEntry],
           totals: Mapping[tuple[str, str], int] | None = None, *,
           periods: Periods | None = None, progress: Progress | None = None) -> Settlement:
    """Sum ``entries`` per (provider, program) and reconcile (see the module docstring).

    ``totals`` maps (program, provider) to net points, as :meth:`Store.totals` returns them.
    With ``periods``, the lines are summed per period as well, by the JST day of their ``at``
    (a time without a UTC offset raises :class:`IntegrityError`). ``progress`` is called every
    few thousand lines with the number read so far.
    """
    result = Settlement(periods=periods)
    expected_seq: int | None = None
    days: dict[str, dt.date] = {}
    low = high = None
    for entry in entries:
        if expected_seq is not None and entry.seq != expected_seq:
            raise IntegrityError(f"ledger seq {entry.seq} where {expected_seq} was expected: "
                                 "a line is missing or repeated")
        expected_seq = entry.seq + 1
        if (entry.kind == "award") != (entry.points > 0) or entry.points == 0:
            raise IntegrityError(f"ledger seq {entry.seq}: a {entry.kind} of {entry.points}")
        key = (entry.provider, entry.program)
        line = result.lines.get(key)
        if line is None:
            line = result.lines[key] = SettlementLine(*key)
        line.add(entry.points)
        result.ledger_lines += 1
        if periods is not None:
            day = _jst_day(entry, days)
            start = periods.start_of(day)
            if start is not None:
                low = day if low is None or day < low else low
                high = day if high is None or day > high else high
                bucket = result.by_period.setdefault(start, {})
                line = bucket.get(key)
                if line is None:
                    line = bucket[key] = SettlementLine(*key)
                line.add(entry.points)
        if progress is not None and result.ledger_lines % _EVERY == 0:
            progress(result.ledger_lines, None)
    if low is not None and high is not None:
        result.seen = (low, high)
    if progress is not None:
        progress(result.ledger_lines, result.ledger_lines)
    if totals is not None:
        _reconcile(result, totals)
        result.reconciled_with_totals = True
    return result


def _jst_day(entry: LedgerEntry, days: dict[str, dt.date]) -> dt.date:
    """The JST calendar day of the line's ``at``; ``days`` keeps the days already read."""
    at = entry.at
    # The engine writes every time in JST, so its first ten characters are the day: reading
    # each distinct day once keeps a settlement by month as fast as one in total.
    if len(at) >= 25 and at[10] == "T" and at.endswith("+09:00"):
        day = days.get(at[:10])
        if day is not None:
            return day
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError:
        raise IntegrityError(f"ledger seq {entry.seq}: at {at!r} is not a time") from None
    if moment.tzinfo is None:
        raise IntegrityError(f"ledger seq {entry.seq}: at {at!r} has no UTC offset, so its "
                             "day is not known")
    day = moment.astimezone(JST).date()
    if at.endswith("+09:00"):
        days[at[:10]] = day
    return day


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


def settle_redis(store: RedisStore, *, periods: Periods | None = None,
                 progress: Progress | None = None) -> Settlement:
    """Settle a RedisStore's ledger stream against its totals hash (``periods`` and
    ``progress`` as for :func:`settle`).

    Workers may be applying batches meanwhile: the totals and the ledger's last ID are read
    together, and the ledger only up to that ID, so both describe the same moment.
    """
    totals, end = store.snapshot()
    if progress is not None:  # the stream's length now: a few more lines than will be read
        progress(0, int(store.client.xlen(store.keys.ledger)))
    return settle(store.ledger(end=end) if end is not None else (), totals, periods=periods,
                  progress=progress)


def settle_file(ledger: Path, state: Path | None = None, *, periods: Periods | None = None,
                progress: Progress | None = None) -> Settlement:
    """Settle a ledger file (FileSink); reconcile with a saved MemoryStore when ``state`` is
    given (``state.pickle`` written by ``pointengine replay``, a file this program wrote).
    ``periods`` and ``progress`` as for :func:`settle`."""
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
    if progress is not None:
        progress(0, _lines_in(ledger))
    return settle(read_ledger(ledger), totals, periods=periods, progress=progress)


def _lines_in(ledger: Path) -> int | None:
    """How many lines the ledger file holds, from its first and last ``seq`` (which run without
    a gap); None when they cannot be read (:func:`settle` then says what is wrong)."""
    try:
        with ledger.open("rb") as handle:
            first = handle.readline()
            size = handle.seek(0, 2)
            handle.seek(max(0, size - 65_536))
            tail = handle.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return LedgerEntry.from_json(tail).seq - LedgerEntry.from_json(first).seq + 1
    except (OSError, IntegrityError):
        return None
