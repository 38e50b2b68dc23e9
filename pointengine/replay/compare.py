"""Real history replayed under a draft: what the draft would have paid beside what was paid.

:func:`compare` replays an events file of past months under the catalog with the draft (added,
or in place of the program it revises: :func:`pointengine.catalog.drafts.load_with_proposal`),
and sets what it pays beside what was paid: the ledger of that history when one is given, else
the same events replayed under the rules in force. Both sides are ledgers, added up per program,
per provider, per JST day and per person, so every difference is exact to the yen; the persons
who gain and who lose are counted, with their yen, and the largest changes listed.

The replays run on the embedded store and the compiled lane, as ``pointengine replay`` does:
the draft's ledger is the one a replay under it would write. Every message is a
:class:`~pointengine.i18n.Text` of :data:`MESSAGES`; the CSV files are UTF-8 with a byte-order
mark (Excel in Japan reads them so), each written whole.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import orjson

from pointengine.catalog.drafts import load_with_proposal
from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.catalog.shipped import rules_folder
from pointengine.decide.engine import Engine
from pointengine.errors import UnreadableEvents
from pointengine.i18n import Lang, Table, Text, say
from pointengine.model.jst import JST
from pointengine.model.ledger import LedgerEntry, entry_of, numbered_lines
from pointengine.model.output import csv_bytes, write_all
from pointengine.replay.progress import Update
from pointengine.replay.reading import open_regular
from pointengine.replay.run import replay
from pointengine.store.memory import MemoryStore

__all__ = ["CSV_FILES", "MESSAGES", "Comparison", "PersonChange", "Row", "compare", "jst_day"]

MESSAGES: Table = {
    "compare.head": {
        "en": "{program} ({name}): the draft {draft} replayed over {events} ({lines:,} lines, "
              "{rejected:,} refused)",
        "ja": "{program}（{name}）: 案 {draft} で {events}（{lines:,}行、うち受付不可 "
              "{rejected:,}行）を再計算"},
    "compare.revises": {
        "en": "the draft revises {program} of the rules in force",
        "ja": "案は現行ルールの {program} を改定するものです"},
    "compare.new": {
        "en": "the draft adds a program: {program}",
        "ja": "案は新しい事業 {program} を追加するものです"},
    "compare.paid_ledger": {
        "en": "paid: the ledger {paid} ({entries:,} lines)",
        "ja": "支払実績: 台帳 {paid}（{entries:,}行）"},
    "compare.paid_replay": {
        "en": "paid: the same events replayed under the rules in force ({rules})",
        "ja": "支払実績: 同じイベントを現行ルール（{rules}）で再計算した結果"},
    "compare.total": {
        "en": "the draft would have paid {draft:,} yen; paid {paid:,} yen; difference "
              "{difference:+,} yen",
        "ja": "案での支払額 {draft:,}円、支払実績 {paid:,}円、差額 {difference:+,}円"},
    "compare.changed": {
        "en": "programs whose payments change: {programs}",
        "ja": "支払額が変わる事業: {programs}"},
    "compare.unchanged": {
        "en": "no program's payments change",
        "ja": "支払額が変わる事業はありません"},
    "compare.gainers": {
        "en": "{count:,} person(s) gain, {yen:,} yen in all",
        "ja": "増額となる住民 {count:,}人（計 {yen:,}円）"},
    "compare.losers": {
        "en": "{count:,} person(s) lose, {yen:,} yen in all",
        "ja": "減額となる住民 {count:,}人（計 {yen:,}円）"},
    "compare.csv_written": {
        "en": "wrote {files} to {folder}",
        "ja": "{folder} に {files} を出力しました"},
    "title.program": {"en": "per program", "ja": "事業別"},
    "title.provider": {"en": "per provider", "ja": "決済サービス別"},
    "title.day": {"en": "per day (JST)", "ja": "日別（日本時間）"},
    "title.month": {
        "en": "per month (--json and --csv list every day)",
        "ja": "月別（日別は --json または --csv で出力）"},
    "title.gainers": {"en": "largest gains", "ja": "増額の大きい住民"},
    "title.losers": {"en": "largest losses", "ja": "減額の大きい住民"},
    "col.program": {"en": "program", "ja": "事業"},
    "col.provider": {"en": "provider", "ja": "決済サービス"},
    "col.day": {"en": "day (JST)", "ja": "日付（日本時間）"},
    "col.month": {"en": "month", "ja": "月"},
    "col.person": {"en": "person (MyKey ID)", "ja": "住民（マイキーID）"},
    "col.draft": {"en": "draft (yen)", "ja": "案（円）"},
    "col.paid": {"en": "paid (yen)", "ja": "実績（円）"},
    "col.difference": {"en": "difference (yen)", "ja": "差額（円）"},
    "col.total": {"en": "total", "ja": "合計"},
}
"""Every code a :class:`Comparison` holds or its printout and CSV headers use."""

CSV_FILES = ("programs.csv", "providers.csv", "days.csv", "persons.csv")
"""What :meth:`Comparison.write_csv` writes."""

PaidFrom = Literal["ledger", "replay"]


@dataclass
class Row:
    """One program, provider or day: what the draft would have paid, what was paid, and the
    difference (draft - paid), in yen, net of reversals."""

    key: str
    draft: int
    paid: int
    difference: int


@dataclass
class PersonChange:
    """One person's net points under the draft and as paid, and the difference."""

    person: str
    draft: int
    paid: int
    difference: int


@dataclass
class Comparison:
    """The draft's payments beside what was paid (see the module)."""

    draft_file: str
    program: str
    name: str
    revises: bool
    events_file: str
    paid_from: PaidFrom
    paid_file: str | None
    rules: str
    lines: int = 0
    rejected: int = 0
    paid_entries: int = 0
    draft_total: int = 0
    paid_total: int = 0
    difference: int = 0
    per_program: list[Row] = field(default_factory=list)
    per_provider: list[Row] = field(default_factory=list)
    per_day: list[Row] = field(default_factory=list)
    changed_programs: list[str] = field(default_factory=list)
    gainers: int = 0
    gained_yen: int = 0
    losers: int = 0
    lost_yen: int = 0
    top_gainers: list[PersonChange] = field(default_factory=list)
    top_losers: list[PersonChange] = field(default_factory=list)
    persons: list[PersonChange] = field(default_factory=list)
    """Every person whose points differ, the largest change first (kept out of
    :meth:`to_dict` unless asked: there may be many)."""
    summary: list[Text] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self, *, persons: bool = False) -> dict[str, object]:
        """The comparison as plain data; every person whose points differ with ``persons``."""
        data = asdict(self)
        if not persons:
            del data["persons"]
        return data

    def to_json(self, *, persons: bool = False) -> bytes:
        """The comparison as indented JSON (see :meth:`to_dict`)."""
        return orjson.dumps(self.to_dict(persons=persons),
                            option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)

    def csv_files(self, lang: Lang) -> dict[str, bytes]:
        """``programs.csv``, ``providers.csv``, ``days.csv`` and ``persons.csv`` (every person
        whose points differ), headers in ``lang``."""
        def head(first: str) -> list[str]:
            return [say(MESSAGES, Text(code), lang)
                    for code in (first, "col.draft", "col.paid", "col.difference")]

        def rows(first: str, table: Sequence[Row] | Sequence[PersonChange],
                 total: bool) -> bytes:
            body: list[Sequence[object]] = [head(first)]
            body.extend((_key(r), r.draft, r.paid, r.difference) for r in table)
            if total:
                body.append((say(MESSAGES, Text("col.total"), lang), self.draft_total,
                             self.paid_total, self.difference))
            return csv_bytes(body)

        return {"programs.csv": rows("col.program", self.per_program, True),
                "providers.csv": rows("col.provider", self.per_provider, True),
                "days.csv": rows("col.day", self.per_day, True),
                "persons.csv": rows("col.person", self.persons, False)}

    def write_csv(self, folder: Path, lang: Lang) -> list[Path]:
        """Write :meth:`csv_files` into ``folder`` (made if needed), each file whole;
        :class:`~pointengine.errors.OutputError` names a file that cannot be written."""
        return write_all(folder, self.csv_files(lang))


def _key(row: Row | PersonChange) -> str:
    return row.key if isinstance(row, Row) else row.person


def jst_day(at: str) -> str:
    """The JST calendar day (``YYYY-MM-DD``) of a ledger line's time."""
    if at.endswith("+09:00"):  # what the engine writes: the event's time in JST
        return at[:10]
    return dt.datetime.fromisoformat(at).astimezone(JST).date().isoformat()


class Tally:
    """A ledger sink that adds up instead of keeping lines: net points per program, provider,
    JST day and person (a replay's ledger of millions of lines is never held)."""

    def __init__(self) -> None:
        self.program: Counter[str] = Counter()
        self.provider: Counter[str] = Counter()
        self.day: Counter[str] = Counter()
        self.person: Counter[str] = Counter()
        self.entries = 0

    def add(self, program: str, provider: str, at: str, person: str, points: int) -> None:
        """Count one ledger line."""
        self.program[program] += points
        self.provider[provider] += points
        self.day[jst_day(at)] += points
        self.person[person] += points
        self.entries += 1

    def append(self, entries: Iterable[LedgerEntry]) -> None:
        """Count entries (the Python path's)."""
        for e in entries:
            self.add(e.program, e.provider, e.at, e.person, e.points)

    def append_lines(self, lines: bytes) -> None:
        """Count entries written as JSON lines (the compiled lane's, well formed)."""
        for line in lines.splitlines():
            if line:
                e = orjson.loads(line)
                self.add(e["program"], e["provider"], e["at"], e["person"], e["points"])

    @property
    def total(self) -> int:
        """Net points in all."""
        return sum(self.program.values())


def compare(draft: Path, *, events: Path, rules: Path | None = None, paid: Path | None = None,
            top: int = 10, on_progress: Update | None = None) -> Comparison:
    """Replay ``events`` under the catalog of ``rules`` with ``draft``, and compare.

    What was paid is the ledger ``paid`` (a replay's ``ledger.jsonl``) when given, else the
    same ``events`` replayed under ``rules`` as they are. ``top``: how many of the largest
    gains and losses to list. ``on_progress(done, total)`` gets the bytes read (the events
    once or twice, and the ledger).

    Raises :class:`~pointengine.errors.RuleFileError` with every problem located in the draft
    (or the rules), :class:`UnreadableEvents` when the events or the ledger cannot be read,
    :class:`IntegrityError` for a damaged ledger, and
    :class:`~pointengine.errors.OutputError` when the temporary copy of the rules cannot be
    written.
    """
    started = time.perf_counter()
    folder = rules_folder(rules)
    proposed, program_id = load_with_proposal(draft, folder)
    current = load_catalog(folder)
    size = _size(events, "events file")
    ledger_size = _size(paid, "ledger") if paid is not None else size
    total = size + ledger_size

    def report(base: int) -> Callable[[int], None] | None:
        if on_progress is None:
            return None
        return lambda done: on_progress(base + done, total)

    drafted, lines, rejected = _replay(events, proposed, report(0))
    if paid is not None:
        was = _read_ledger(paid, report(size))
    else:
        was, _, _ = _replay(events, current, report(size))
    program = proposed.programs[program_id].current
    result = Comparison(
        draft_file=str(draft), program=program_id, name=program.name,
        revises=program_id in current.programs, events_file=str(events),
        paid_from="ledger" if paid is not None else "replay",
        paid_file=str(paid) if paid is not None else None, rules=str(folder),
        lines=lines, rejected=rejected, paid_entries=was.entries,
        draft_total=drafted.total, paid_total=was.total,
        difference=drafted.total - was.total,
        warnings=[str(w) for w in proposed.warnings if w.file == str(draft)])
    result.per_program = _rows(drafted.program, was.program)
    result.per_provider = _rows(drafted.provider, was.provider)
    result.per_day = _rows(drafted.day, was.day)
    result.changed_programs = [r.key for r in result.per_program if r.difference]
    changes = [PersonChange(p, drafted.person[p], was.person[p],
                            drafted.person[p] - was.person[p])
               for p in drafted.person.keys() | was.person.keys()
               if drafted.person[p] != was.person[p]]
    changes.sort(key=lambda c: (-abs(c.difference), c.person))
    result.persons = changes
    gains = [c for c in changes if c.difference > 0]
    losses = [c for c in changes if c.difference < 0]
    result.gainers, result.gained_yen = len(gains), sum(c.difference for c in gains)
    result.losers, result.lost_yen = len(losses), -sum(c.difference for c in losses)
    result.top_gainers, result.top_losers = gains[:top], losses[:top]
    result.summary = _summary(result)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _size(path: Path, what: str) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise UnreadableEvents(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _replay(events: Path, catalog: Catalog,
            on_progress: Callable[[int], None] | None) -> tuple[Tally, int, int]:
    """``events`` replayed under ``catalog`` on a fresh embedded store: the tally of its
    ledger, the lines read and the lines refused."""
    tally = Tally()
    engine = Engine(catalog, MemoryStore(tally))
    try:
        report = replay(events, engine, on_progress=on_progress)
    finally:
        engine.close()
    return tally, report.lines, report.rejected


def _read_ledger(path: Path, on_progress: Callable[[int], None] | None) -> Tally:
    """The tally of a ledger file; a line that is no ledger entry (or carries a My Number, or
    is longer than any) raises :class:`IntegrityError` naming the file and the line, and
    :class:`UnreadableEvents` a file that is none (a device, a pipe: they may never end)."""
    tally = Tally()
    done = 0
    try:
        with open_regular(path, "ledger") as handle:
            for number, line in numbered_lines(handle, str(path)):
                done += len(line)
                if not line.strip():
                    continue
                entry = entry_of(line, f"{path}:{number}")
                tally.add(entry.program, entry.provider, entry.at, entry.person, entry.points)
                if on_progress is not None and number % 65_536 == 0:
                    on_progress(done)
    except OSError as exc:
        raise UnreadableEvents(f"cannot read the ledger {path}: "
                               f"{exc.strerror or exc}") from None
    if on_progress is not None:
        on_progress(done)
    return tally


def _rows(draft: Counter[str], paid: Counter[str]) -> list[Row]:
    return [Row(key, draft[key], paid[key], draft[key] - paid[key])
            for key in sorted(draft.keys() | paid.keys())]


def _summary(result: Comparison) -> list[Text]:
    lines = [Text("compare.head", {"program": result.program, "name": result.name,
                                   "draft": result.draft_file, "events": result.events_file,
                                   "lines": result.lines, "rejected": result.rejected}),
             Text("compare.revises" if result.revises else "compare.new",
                  {"program": result.program})]
    if result.paid_from == "ledger":
        lines.append(Text("compare.paid_ledger", {"paid": result.paid_file,
                                                  "entries": result.paid_entries}))
    else:
        lines.append(Text("compare.paid_replay", {"rules": result.rules}))
    lines.append(Text("compare.total", {"draft": result.draft_total, "paid": result.paid_total,
                                        "difference": result.difference}))
    lines.append(Text("compare.changed", {"programs": ", ".join(result.changed_programs)})
                 if result.changed_programs else Text("compare.unchanged"))
    lines.append(Text("compare.gainers", {"count": result.gainers, "yen": result.gained_yen}))
    lines.append(Text("compare.losers", {"count": result.losers, "yen": result.lost_yen}))
    return lines
