"""Shared fixtures for the adapter tests: persons, stores, a time window, a My Number."""

from __future__ import annotations

import datetime as dt

import pytest

from pointengine.model.privacy import my_number_check_digit

JST = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
def persons() -> tuple[str, ...]:
    """MyKey IDs of five persons."""
    return ("MKA7Q2X9", "MKB4K8P1", "MKC9Z3R6", "MKD2M5T7", "MKE8H1W4")


@pytest.fixture
def stores() -> tuple[tuple[str, str], ...]:
    """(store id, local government code): 千代田区, 大阪市北区, 厚真町, 都城市, 三次市."""
    return (
        ("S0001", "131016"),
        ("S0002", "271276"),
        ("S0003", "015814"),
        ("S0004", "452025"),
        ("S0005", "342092"),
    )


@pytest.fixture
def window() -> tuple[dt.datetime, dt.datetime]:
    """One day, 2022-03-01 in JST."""
    return dt.datetime(2022, 3, 1, tzinfo=JST), dt.datetime(2022, 3, 2, tzinfo=JST)


MY_NUMBER = "12345678901" + str(my_number_check_digit("12345678901"))
FOURS = (MY_NUMBER[:4], MY_NUMBER[4:8], MY_NUMBER[8:])
GROUPINGS = {
    "plain": MY_NUMBER,
    "colons": ":".join(FOURS),
    "dots": ".".join(FOURS),
    "underscores": "_".join(FOURS),
    "threes": "-".join(MY_NUMBER[i:i + 3] for i in range(0, 12, 3)),
    "ideographic space": "\u3000".join(FOURS),
    "no-break space": "\u00a0".join(FOURS),
    "full-width hyphen": "\uff0d".join(FOURS),
    "tab": "\t".join(FOURS),
    "zero-width space": "\u200b".join(FOURS),
    "soft hyphen": "\u00ad".join(FOURS),
    "spaced hyphen": " - ".join(FOURS),
}


def in_json(text: str) -> str:
    """``text`` as it is written inside a JSON string: a tab escaped (nothing else here needs
    escaping)."""
    return text.replace("\t", "\\t")


@pytest.fixture
def plain_my_number() -> str:
    """A valid My Number as 12 digits."""
    return MY_NUMBER


@pytest.fixture(params=list(GROUPINGS.values()), ids=list(GROUPINGS))
def my_number(request: pytest.FixtureRequest) -> str:
    """A valid My Number (a test value, nobody's number), plain or grouped however it may be
    written."""
    value: str = request.param
    return value
