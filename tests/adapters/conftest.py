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


@pytest.fixture
def my_number() -> str:
    """A 12-digit value with a valid My Number check digit (a test value, nobody's number)."""
    first_eleven = "12345678901"
    return first_eleven + str(my_number_check_digit(first_eleven))
