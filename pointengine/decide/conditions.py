"""A tiny condition language for eligibility checks, in plain Python.

Conditions compare fields of one *fact* (a flat mapping of field name to ``str`` or ``int``) with
constants or with other fields of the same fact, and combine comparisons with :class:`AllOf` and
:class:`AnyOf`. There is no ``Not`` node: :func:`negate` pushes negation down to the comparisons
(De Morgan), which is exact because the values of one field are totally ordered (all ``str`` or
all ``int``; never ``float``, ``None`` or ``bool``).

:func:`evaluate` is the reference semantics. :mod:`pointengine.decide.matching` compiles the same
conditions into durable_rules and is tested against it.

Comparing a ``str`` with an ``int`` is a programming error (facts are built by the engine with a
fixed type per field), so :func:`evaluate` raises :class:`~pointengine.errors.IntegrityError`
rather than answering ``False``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from pointengine.errors import IntegrityError
from pointengine.i18n import Text

Value: TypeAlias = str | int
"""What a fact field holds: ``str`` or ``int`` (never ``float``, ``None`` or ``bool``)."""

Op: TypeAlias = Literal["==", "!=", "<", "<=", ">", ">="]

OPS: tuple[Op, ...] = ("==", "!=", "<", "<=", ">", ">=")

_NEGATED: dict[Op, Op] = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", "<=": ">", ">": "<="}

_APPLY: dict[str, Callable[[Value, Value], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def is_value(value: object) -> bool:
    """True if ``value`` may be stored in a fact: a ``str`` or an ``int`` that is not a ``bool``."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


@dataclass(frozen=True, slots=True)
class FieldRef:
    """The value of another field of the same fact, as the right-hand side of a comparison."""

    field: str

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise IntegrityError(f"FieldRef needs a non-empty field name, got {self.field!r}")


@dataclass(frozen=True, slots=True)
class Compare:
    """``fact[field] <op> value``, where ``value`` is a constant or a :class:`FieldRef`."""

    field: str
    op: Op
    value: Value | FieldRef

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise IntegrityError(f"Compare needs a non-empty field name, got {self.field!r}")
        if self.op not in _NEGATED:
            raise IntegrityError(f"unknown comparison {self.op!r} (expected one of {OPS})")
        if not isinstance(self.value, FieldRef) and not is_value(self.value):
            raise IntegrityError(
                f"comparison of {self.field!r} with {self.value!r}: constants are str or int"
            )


@dataclass(frozen=True, slots=True)
class AllOf:
    """True when every part is true; the empty ``AllOf(())`` is always true."""

    parts: tuple[Condition, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", _parts(self.parts, "AllOf"))


@dataclass(frozen=True, slots=True)
class AnyOf:
    """True when at least one part is true; the empty ``AnyOf(())`` is always false."""

    parts: tuple[Condition, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", _parts(self.parts, "AnyOf"))


Condition: TypeAlias = Compare | AllOf | AnyOf


def _parts(parts: Iterable[Condition], kind: str) -> tuple[Condition, ...]:
    result = tuple(parts)
    for part in result:
        if not isinstance(part, Compare | AllOf | AnyOf):
            raise IntegrityError(f"{kind} parts must be conditions, got {part!r}")
    return result


@dataclass(frozen=True, slots=True)
class Check:
    """One named eligibility check.

    ``name`` is a short id (``"window"``); ``explain`` is the human text shown when the check
    fails (``"the event's day is within 2022-01-01..2023-02-28"``). ``requirement`` is the same
    requirement as a :class:`~pointengine.i18n.Text` (rendered in Japanese or English), and
    ``observed`` the fact fields a reader needs to see beside it (by default every field the
    condition reads: :func:`fields_read`). Neither takes part in matching, equality or hashing:
    only explaining reads them.
    """

    name: str
    condition: Condition
    explain: str
    requirement: Text | None = field(default=None, compare=False)
    observed: tuple[str, ...] = field(default=(), compare=False)

    def shown(self) -> tuple[str, ...]:
        """The fact fields to show beside the requirement when the check fails."""
        return self.observed or fields_read(self.condition)


def one_of(field: str, values: Iterable[Value]) -> Condition:
    """``fact[field]`` equals one of ``values`` (an ``AnyOf`` of ``==``; duplicates dropped)."""
    return AnyOf(tuple(Compare(field, "==", v) for v in dict.fromkeys(values)))


def fields_read(c: Condition) -> tuple[str, ...]:
    """Every fact field ``c`` reads, compared or referred to, in the order it names them."""
    if isinstance(c, Compare):
        names = (c.field, c.value.field) if isinstance(c.value, FieldRef) else (c.field,)
        return tuple(dict.fromkeys(names))
    return tuple(dict.fromkeys(name for part in c.parts for name in fields_read(part)))


def negate(c: Condition) -> Condition:
    """The exact opposite of ``c``, with the negation pushed down to the comparisons."""
    if isinstance(c, Compare):
        return Compare(c.field, _NEGATED[c.op], c.value)
    if isinstance(c, AllOf):
        return AnyOf(tuple(negate(p) for p in c.parts))
    return AllOf(tuple(negate(p) for p in c.parts))


def _lookup(fact: Mapping[str, Value], field: str) -> Value:
    try:
        value = fact[field]
    except KeyError:
        raise IntegrityError(f"the fact has no field {field!r}") from None
    if not is_value(value):
        raise IntegrityError(f"field {field!r} holds {value!r}; facts hold only str and int")
    return value


def evaluate(c: Condition, fact: Mapping[str, Value]) -> bool:
    """Evaluate ``c`` against ``fact`` (the reference semantics; parts short-circuit).

    Raises :class:`IntegrityError` if a field read is missing, holds something other than a
    ``str`` or ``int``, or is compared with a value of the other type.
    """
    if isinstance(c, Compare):
        left = _lookup(fact, c.field)
        right = _lookup(fact, c.value.field) if isinstance(c.value, FieldRef) else c.value
        if isinstance(left, str) != isinstance(right, str):
            raise IntegrityError(
                f"cannot compare {c.field!r}={left!r} with {right!r}: str and int do not mix"
            )
        return _APPLY[c.op](left, right)
    if isinstance(c, AllOf):
        return all(evaluate(p, fact) for p in c.parts)
    return any(evaluate(p, fact) for p in c.parts)
