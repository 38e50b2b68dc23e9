"""Reading charge, purchase and refund lines without Python objects (compiled; see scan.pyx)."""

import datetime as dt
from typing import Any

def scan_transaction(raw: bytes) -> dict[str, Any] | None:
    """The fields of a charge, purchase or refund line the scanner takes, as the model reads
    them; None for any other line."""
def scanned_kind(raw: bytes) -> int:
    """0 when the lane leaves ``raw`` to the Python path, else 1 purchase, 2 charge, 3 refund."""
def moment(text: str) -> tuple[int, str] | None:
    """``(epoch microseconds, JST isoformat)`` of ``text``, or None when the lane declines it."""
def epoch_us(value: dt.datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
def suspects(raws: list[bytes]) -> list[int]:
    """The indices of the lines that may carry a My Number (the guard decides for those)."""
def nested_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the arrays and objects of the JSON text ``raw`` nest more than ``limit`` deep."""
def longest(raws: list[bytes]) -> int:
    """The length of the longest bytes of ``raws`` (0 for none)."""
