"""The shared My Number search of native records: anywhere, at any depth, in any digits."""

from __future__ import annotations

import pytest

from pointengine.adapters.base import my_number_path, refuse_my_number
from pointengine.errors import MyNumberRejected

MY_NUMBER = "123456789018"
FULL_WIDTH = MY_NUMBER.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (MY_NUMBER, ""),
        ({"storeName": f"yamada {MY_NUMBER}"}, "storeName"),
        ({"storeName": f"山田商店{MY_NUMBER}号"}, "storeName"),
        ({"meta": {"n": MY_NUMBER}}, "meta.n"),
        ({"meta": {"items": [{"x": ["a", MY_NUMBER]}]}}, "meta.items[0].x[1]"),
        ({"n": int(MY_NUMBER)}, "n"),
        ({"n": float(MY_NUMBER)}, "n"),
        ({"storeName": f"yamada {FULL_WIDTH}"}, "storeName"),
        ({"storeName": "１２３４５６" + "789018"}, "storeName"),  # half full-width
        ({"storeName": "١٢٣٤٥٦٧٨٩٠١٨"}, "storeName"),  # Arabic-Indic digits
        ({"meta": {MY_NUMBER: 1}}, "a field name in meta"),
        ({FULL_WIDTH: 1}, "a field name"),
        ({"line": f"TWN1,{MY_NUMBER}".encode()}, "line"),
        (("a", (MY_NUMBER,)), "[1][0]"),
        ({"memo": f"\x01{MY_NUMBER}"}, "memo"),  # JSON would write \u0001 before the digits
    ],
)
def test_a_my_number_is_found_and_named_by_its_path(value: object, path: str) -> None:
    assert my_number_path(value) == path


@pytest.mark.parametrize(
    "value",
    [
        {"storeName": "yamada 123456789012"},  # a wrong check digit
        {"phone": "0312345678", "id": "1234567890183"},  # 10 digits, 13 digits
        {"amount": 1280, "ok": True, "none": None, "list": [1, 2.5, "x"]},
        {"storeName": "株式会社山田 千代田区店"},
    ],
)
def test_other_values_carry_none(value: object) -> None:
    assert my_number_path(value) is None


def test_nesting_deeper_than_python_recursion_is_searched() -> None:
    value: object = MY_NUMBER
    for _ in range(5_000):
        value = {"n": [value]}
    found = my_number_path(value)
    assert found is not None and found.endswith("n[0]")


def test_refusal_names_where_never_the_number() -> None:
    with pytest.raises(MyNumberRejected, match=r"^quickpay webhook: meta\.n carries") as caught:
        refuse_my_number("quickpay webhook", {"meta": {"n": FULL_WIDTH}})
    assert MY_NUMBER not in str(caught.value) and FULL_WIDTH not in str(caught.value)
    refuse_my_number("quickpay webhook", {"meta": {"n": "MKA7Q2X9"}})
