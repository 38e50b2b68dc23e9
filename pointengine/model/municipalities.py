"""Local government codes (全国地方公共団体コード): the registry every code is checked against.

The list ships with the package (``data/municipalities.csv``, CC0, see the project README). A code
is six digits, the last a JIS X 0402 check digit. Prefectures are ``PP0006``-style codes; a
designated-city ward (行政区) is not a local government of its own, so its programs are those of
its parent city.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Municipality:
    """One row of the code list."""

    code: str
    prefecture_code: str
    prefecture: str
    name: str
    kind: str  # prefecture, city, ward, town, village, designated_city_ward

    @property
    def label(self) -> str:
        """Human name: the prefecture alone, or prefecture and municipality."""
        return self.prefecture if self.kind == "prefecture" else f"{self.prefecture}{self.name}"


def check_digit(first_five: str) -> int:
    """The JIS X 0402 check digit of a five-digit code."""
    total = sum(int(d) * w for d, w in zip(first_five, (6, 5, 4, 3, 2), strict=True))
    return (11 - total % 11) % 10


class Registry:
    """All codes, with the relations the router needs (prefecture of, parent city of a ward)."""

    def __init__(self, rows: list[Municipality]) -> None:
        self._by_code = {m.code: m for m in rows}
        self._prefecture_by_pp = {m.prefecture_code: m.code for m in rows if m.kind == "prefecture"}
        self._parent: dict[str, str] = {}
        cities = sorted(m.code for m in rows if m.kind == "city")
        for ward in (m for m in rows if m.kind == "designated_city_ward"):
            candidates = [
                c for c in cities if c[:2] == ward.code[:2] and "100" <= c[2:5] <= ward.code[2:5]
            ]
            self._parent[ward.code] = candidates[-1]
        self._places = {c: (self.local_government_of(c), self.prefecture_of(c))
                        for c in self._by_code}

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Municipality:
        """The row for ``code``; KeyError when unknown."""
        return self._by_code[code]

    def prefecture_of(self, code: str) -> str:
        """The prefecture's code for any code (a prefecture is its own prefecture)."""
        return self._prefecture_by_pp[code[:2]]

    def local_government_of(self, code: str) -> str:
        """The code itself, or the parent city's for a designated-city ward."""
        return self._parent.get(code, code)

    def places(self, code: str) -> tuple[str, str]:
        """``(local_government_of(code), prefecture_of(code))`` in one lookup."""
        return self._places[code]

    def jurisdictions_of(self, code: str) -> tuple[str, ...]:
        """Every jurisdiction whose programs may concern a place: it, its city, its prefecture."""
        own = self.local_government_of(code)
        pref = self.prefecture_of(code)
        return (own,) if own == pref else (own, pref)

    def codes(self) -> list[str]:
        """Every code in the list, in order."""
        return list(self._by_code)

    def municipalities(self) -> list[Municipality]:
        """The 1,741 municipalities (市区町村): no prefectures, no designated-city wards."""
        return [
            m for m in self._by_code.values() if m.kind in ("city", "ward", "town", "village")
        ]

    def label_of(self, code: str) -> str:
        """The label of ``code`` (``広島県三次市``), or the code itself when it is unknown."""
        return self.get(code).label if code in self else code

    def closest(self, code: str) -> str | None:
        """A plausible intended code for a typo: same first five digits, or one digit off."""
        if len(code) == 6 and code.isdigit():
            fixed = code[:5] + str(check_digit(code[:5]))
            if fixed in self._by_code:
                return fixed
        if len(code) == 5 and code.isdigit():
            padded = code + str(check_digit(code))
            if padded in self._by_code:
                return padded
        return None


@cache
def registry() -> Registry:
    """The shipped code list, loaded once."""
    text = resources.files("pointengine").joinpath("data/municipalities.csv").read_text("utf-8")
    rows = [
        Municipality(
            code=r["code6"],
            prefecture_code=r["prefecture_code"],
            prefecture=r["prefecture"],
            name=r["municipality"],
            kind=r["kind"],
        )
        for r in csv.DictReader(text.splitlines())
    ]
    return Registry(rows)
