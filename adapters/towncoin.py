"""TownCoin: a mock municipal digital local currency (basis: charge) that sends a daily CSV file.

Native format, ``text/csv``: one file per day, Shift_JIS (Windows code page 932, as Excel
writes it) or UTF-8 with a BOM, CRLF line ends, a header line of Japanese column names, then one
transaction per line (values never contain line breaks)::

    取引ID,会員ID,取引種別,金額,取引日時,加盟店コード,加盟店名,加盟店所在地コード,元取引ID
    TWN20220301000001,MKA7Q2X9,チャージ,3000,2022/03/01 09:12:45,S0001,山田商店 千代田区店,131016,
    TWN20220301000002,MKB4K8P1,チャージ,5000,2022/03/01 09:40:02,,,,
    TWN20220301000003,MKA7Q2X9,支払,1280,2022/03/01 12:34:56,S0002,佐藤食堂 大阪市北区店,271276,
    TWN20220301000004,MKA7Q2X9,取消,1280,2022/03/01 13:00:00,,,,TWN20220301000003

Columns: 取引ID (transaction id), 会員ID (the member's MyKey ID; TownCoin members register with
their My Number card), 取引種別 (チャージ charge, 支払 payment, 取消 cancellation), 金額 (yen,
digits only, always positive), 取引日時 (``YYYY/MM/DD hh:mm:ss``, JST), 加盟店コード and
加盟店所在地コード (the store and its local government code), 加盟店名 (store name,
informational), 元取引ID (for 取消: the cancelled transaction). Columns may come in any order;
extra columns are ignored, but no column may be named twice. A チャージ made online or at a bank
has no store (both store columns empty); a 支払 needs both. A 取消 becomes a canonical
:class:`~pointengine.model.events.Refund` of 金額.

Positions are file line numbers (the header is line 1). Use
:meth:`~pointengine.adapters.base.RecordAdapter.to_events_lenient` to keep the good lines of a file
with a bad one; a file without a usable header is refused whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

from pointengine.adapters import _fields as f
from pointengine.adapters import _synth
from pointengine.adapters.base import NativeAdapter, NativeRecord, refuse_my_number
from pointengine.errors import MalformedEvent

PROVIDER_ID = "towncoin"
COLUMNS = ("取引ID", "会員ID", "取引種別", "金額", "取引日時",
           "加盟店コード", "加盟店名", "加盟店所在地コード", "元取引ID")
REQUIRED = tuple(c for c in COLUMNS if c != "加盟店名")
KINDS = {"チャージ": "charge", "支払": "purchase", "取消": "refund"}
TIMESTAMP = "%Y/%m/%d %H:%M:%S"
_BOM = b"\xef\xbb\xbf"


class TownCoinAdapter(NativeAdapter):
    """TownCoin daily CSV files to canonical charges, purchases and refunds."""

    provider_id = PROVIDER_ID
    content_type = "text/csv"
    record_noun = "line"
    id_field = "取引ID"
    native_fields: ClassVar[Mapping[str, str]] = {
        "id": "取引ID",
        "person": "会員ID",
        "at": "取引日時",
        "amount": "金額",
        "store": "加盟店コード",
        "store_municipality": "加盟店所在地コード",
        "transaction": "元取引ID",
    }

    def records(self, payload: bytes) -> Iterator[NativeRecord]:
        """Each non-empty line after the header, positioned by its line number."""
        lines = payload.split(b"\n")
        encoding = _encoding(lines[0])
        header = _row(lines[0].removeprefix(_BOM).rstrip(b"\r"), encoding)
        if isinstance(header, str):
            raise MalformedEvent(f"{PROVIDER_ID} file: line 1 (header): {header}")
        refuse_my_number(f"{PROVIDER_ID} file: line 1 (header)", header)
        missing = [c for c in REQUIRED if c not in header]
        twice = _named_twice(header)
        if missing or twice is not None:
            problem = (f"missing columns {', '.join(missing)}" if missing else
                       f"the column {twice!r} is given more than once; which one is meant "
                       "cannot be known")
            raise MalformedEvent(f"{PROVIDER_ID} file: line 1 (header): {problem}")
        for number, raw in enumerate(lines[1:], start=2):
            raw = raw.rstrip(b"\r")
            if not raw.strip():
                continue
            row = _row(raw, encoding)
            if isinstance(row, str):
                yield NativeRecord(number, problem=row, rest=_text(raw, encoding))
            elif len(row) != len(header):
                yield NativeRecord(number, problem=f"{len(row)} columns, the header has "
                                                   f"{len(header)}", rest=row)
            else:
                yield NativeRecord(number, dict(zip(header, row, strict=True)))

    def canonical(self, fields: Mapping[str, object]) -> dict[str, object]:
        """One line as a canonical event dict."""
        kind = KINDS[f.choice(fields, "取引種別", KINDS)]
        data: dict[str, object] = {
            "type": kind,
            "id": f.text(fields, "取引ID"),
            "person": f.text(fields, "会員ID"),
            "at": f.local_datetime(fields, "取引日時", TIMESTAMP),
            "amount": f.digits(fields, "金額"),
        }
        original = f.optional_text(fields, "元取引ID")
        if kind == "refund":
            if original is None:
                raise f.FieldProblem("元取引ID", "missing on a 取消 line")
            return data | {"transaction": original}
        if original is not None:
            raise f.FieldProblem("元取引ID", "set on a line that is not a 取消")
        store = f.optional_text(fields, "加盟店コード")
        municipality = f.optional_text(fields, "加盟店所在地コード")
        if kind == "purchase" or store is not None or municipality is not None:
            data["store"] = f.text(fields, "加盟店コード")
            data["store_municipality"] = f.text(fields, "加盟店所在地コード")
        return data


def _named_twice(header: list[str]) -> str | None:
    """The first column name ``header`` gives twice, or None.

    A line becomes a mapping of names to cells, in which the last of two columns with one name
    would silently win.
    """
    seen: set[str] = set()
    for name in header:
        if name in seen:
            return name
        seen.add(name)
    return None


def _encoding(header: bytes) -> str:
    """UTF-8 for a BOM (or a header that is valid UTF-8), else Shift_JIS (cp932)."""
    if header.startswith(_BOM):
        return "utf-8"
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return "cp932"
    return "utf-8"


def _row(raw: bytes, encoding: str) -> list[str] | str:
    """One line's cells, stripped, or the reason it cannot be read."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        label = "Shift_JIS" if encoding == "cp932" else "UTF-8"
        return f"not valid {label} like the rest of the file"
    try:
        return [cell.strip() for cell in next(csv.reader([text], strict=True), [])]
    except csv.Error as exc:
        return f"not a CSV line ({exc})"


def _text(raw: bytes, encoding: str) -> str | bytes:
    """A line that cannot be read as CSV, as text if it can be decoded, for the My Number search."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return raw


def generate(
    persons: Sequence[str],
    stores: Sequence[tuple[str, str]],
    n: int,
    seed: int,
    start: dt.datetime,
    end: dt.datetime,
    *,
    encoding: str = "cp932",
) -> bytes:
    """One TownCoin CSV file of ``n`` lines in time order, the same bytes for the same seed.

    About 45% charges (a third of them online, without a store) and 55% payments; about 1.5%
    取消 of earlier lines. ``encoding`` is ``cp932`` (Shift_JIS) or ``utf-8-sig`` (with a BOM).
    """
    if encoding not in ("cp932", "utf-8-sig"):
        raise ValueError("encoding must be 'cp932' or 'utf-8-sig'")
    rng = random.Random(seed)
    names = _synth.store_names(seed, stores)
    planned = _synth.plan(
        rng, persons, stores, n, start, end, charge_share=0.45, storeless_charge_share=0.33
    )
    ids = [
        f"TWN{item.at.astimezone(f.JST):%Y%m%d}{i:06d}" for i, item in enumerate(planned, 1)
    ]
    kinds = {v: k for k, v in KINDS.items()}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for i, item in enumerate(planned):
        store, municipality = item.store if item.store and item.original is None else ("", "")
        writer.writerow([
            ids[i], item.person, kinds[item.kind], item.amount,
            item.at.astimezone(f.JST).strftime(TIMESTAMP), store, names.get(store, ""),
            municipality, ids[item.original] if item.original is not None else "",
        ])
    return out.getvalue().encode(encoding)
