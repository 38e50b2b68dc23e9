"""The rule language: what a program file in ``rules/`` may say, as pydantic models.

A program file describes one point program (national or municipal) and its versions. The base
document is version 1; each entry of ``versions`` is a later version that takes effect for
events at or after ``effective_from`` and states only what changed (mappings merge, anything else
replaces, and so does an award of another kind). Every version is validated in full, so a
change that breaks a rule is caught when the file is loaded, not on the millionth event.

Money is integer yen. A premium rate is written as a percentage string (``"25%"``, ``"12.5%"``)
and held as basis points; points are ``floor(amount * basis_points / 10_000)`` per transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    model_validator,
)

Trigger = Literal[
    "purchase",
    "charge",
    "mynapoint_application",
    "health_insurance_registration",
    "public_funds_account_registration",
    "participation",
    "lottery_draw",
]
Registration = Literal["health_insurance", "public_funds_account"]
_PERCENT = re.compile(r"^\s*(\d{1,3})(?:\.(\d{1,2}))?\s*%\s*$")


def _basis_points(value: Any) -> int:
    """``"25%"`` → 2500. Floats are refused: a rate is exact."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("write a rate as a percentage string, e.g. '25%' or '12.5%'")
    match = _PERCENT.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a percentage like '25%' or '12.5%'")
    whole, frac = match.group(1), (match.group(2) or "").ljust(2, "0")
    points = int(whole) * 100 + int(frac)
    if not 0 < points <= 10_000:
        raise ValueError(f"{value!r}: a rate must be above 0% and at most 100%")
    return points


# The schema says what a file holds (the percentage string), not the basis points it becomes:
# what _basis_points takes, its range included (above 0%, at most 100%).
_PERCENT_IN_RANGE = (r"^\s*(?!0{1,3}(\.0{1,2})?\s*%)"
                     r"(100(\.0{1,2})?|0{0,2}[0-9]{1,2}(\.[0-9]{1,2})?)\s*%\s*$")
BasisPoints = Annotated[int, BeforeValidator(_basis_points), WithJsonSchema({
    "type": "string", "pattern": _PERCENT_IN_RANGE, "examples": ["25%", "12.5%"],
    "description": "a percentage above 0% and at most 100%, with at most two decimals"})]
Yen = Annotated[StrictInt, Field(ge=1, le=10_000_000_000_000)]
Count = Annotated[StrictInt, Field(ge=1)]


class Strict(BaseModel):
    """Base of every rule-file model: unknown fields are errors, values are frozen."""

    # Numbers become strings where a string is expected: staff may write a code unquoted.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Period(Strict):
    """Inclusive calendar days in JST."""

    from_: dt.date = Field(alias="from")
    to: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.to < self.from_:
            raise ValueError(f"the period ends ({self.to}) before it starts ({self.from_})")
        return self


class Partner(Strict):
    """A partner payment provider and, optionally, how many persons it may enrol."""

    provider: str
    persons: Count | None = None


class Restriction(Strict):
    """Whom and where: the two axes of the seeds' A-D classification."""

    persons: Literal["anyone", "residents"] = "anyone"
    stores: Literal["anywhere", "in_region", "target_stores"] = "anywhere"
    target_stores: tuple[str, ...] = ()
    # Where the awarded points can be spent (利用用途): a local currency spendable only in the
    # region restricts stores too, which is how the seeds classify flat grants in town coins.
    points_usable: Literal["anywhere", "in_region"] = "anywhere"

    @model_validator(mode="after")
    def _stores_listed(self) -> Restriction:
        if self.stores == "target_stores" and not self.target_stores:
            raise ValueError("stores: target_stores needs a non-empty target_stores list")
        if self.stores != "target_stores" and self.target_stores:
            raise ValueError("target_stores is only read when stores is 'target_stores'")
        return self

    @property
    def type_letter(self) -> str:
        """A: no restriction; B: stores; C: residents; D: both (the seeds' classification)."""
        stores = self.stores != "anywhere" or self.points_usable == "in_region"
        if self.persons == "residents":
            return "D" if stores else "C"
        return "B" if stores else "A"


class Conditions(Strict):
    """Conditions on the event and on the person at the event's time. All optional."""

    period: Period | None = None
    application_period: Period | None = None
    card_applied_by: dt.date | None = None
    exclude_phase1_applicants: StrictBool = False
    min_age: Annotated[StrictInt, Field(ge=0, le=150)] | None = None
    registered: tuple[Registration, ...] = ()
    provider_basis: StrictBool = False


class Premium(Strict):
    """A premium: ``rate`` of each qualifying transaction, floored, up to ``cap`` per person."""

    kind: Literal["premium"]
    rate: BasisPoints
    cap: Yen


class Grant(Strict):
    """A flat amount, paid once per person on the first qualifying event."""

    kind: Literal["grant"]
    amount: Yen


class PerChild(Strict):
    """``amount`` for each child born within ``born`` (from the application's children)."""

    kind: Literal["per_child"]
    amount: Yen
    born: Period


class PerActivity(Strict):
    """Points per participation, from a table keyed by activity id; optional cap per person."""

    kind: Literal["per_activity"]
    points: dict[str, Yen]
    cap: Yen | None = None


class Lottery(Strict):
    """Persons whose health points reach ``threshold`` enter; ``winners`` drawn with ``seed``."""

    kind: Literal["lottery"]
    threshold: Count
    winners: Count
    amount: Yen
    seed: str


Award = Annotated[Premium | Grant | PerChild | PerActivity | Lottery, Field(discriminator="kind")]


class Budget(Strict):
    """A program's total budget, in yen and/or in persons reached."""

    yen: Yen | None = None
    persons: Count | None = None


class PersonTotal(Strict):
    """A cap shared by several programs for one person (national phase 2: 20,000)."""

    group: str
    cap: Yen


class PeriodCap(Strict):
    """At most ``cap`` points per person from the program in each calendar ``per`` (JST),
    on top of the award's own cap per person: ``{per: month, cap: 2000}``."""

    per: Literal["month"]
    cap: Yen


class VersionChange(Strict):
    """A later version: what changed, and from when."""

    version: Annotated[StrictInt, Field(ge=2)]
    effective_from: AwareDatetime
    note: str
    name: str | None = None
    phase: Literal[1, 2] | None = None
    on: tuple[Trigger, ...] | None = None
    restriction: dict[str, Any] | None = None
    providers: tuple[Partner, ...] | None = None
    conditions: dict[str, Any] | None = None
    award: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    person_total: dict[str, Any] | None = None
    period_caps: tuple[PeriodCap, ...] | None = None


class ProgramVersion(Strict):
    """One fully merged, validated version of a program: everything the engine needs."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{1,62}$")]
    name: str
    jurisdiction: str
    version: Annotated[StrictInt, Field(ge=1)] = 1
    effective_from: AwareDatetime | None = None
    note: str | None = None
    phase: Literal[1, 2] = 2
    on: Annotated[tuple[Trigger, ...], Field(min_length=1)]
    restriction: Restriction = Restriction()
    providers: tuple[Partner, ...] = ()
    conditions: Conditions = Conditions()
    award: Award
    budget: Budget | None = None
    person_total: PersonTotal | None = None
    period_caps: tuple[PeriodCap, ...] = ()
    assumptions: str | None = None

    @model_validator(mode="after")
    def _one_cap_per_period(self) -> ProgramVersion:
        periods = [c.per for c in self.period_caps]
        if len(periods) != len(set(periods)):
            raise ValueError("period_caps: give each period (per) once")
        return self

    @property
    def type_letter(self) -> str:
        """The seeds' A-D type, derived from the restriction."""
        return self.restriction.type_letter

    @property
    def label(self) -> str:
        """``id@vN``: how the ledger names the rule version that decided."""
        return f"{self.id}@v{self.version}"


class ProgramDocument(ProgramVersion):
    """A rule file as written: the base version (version 1) plus later changes."""

    versions: tuple[VersionChange, ...] = ()


def _one_basis(value: object) -> object:
    if value == "both":
        raise ValueError("a provider awards on one basis, 'charge' or 'purchase': counting both "
                         "would pay twice for money charged and then spent")
    return value


class Provider(Strict):
    """A payment provider: its kind, and whether premiums count its charges or its purchases
    (one of them: money charged and then spent must earn once)."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{1,62}$")]
    name: str
    kind: Literal[
        "qr_code", "prepaid_emoney", "credit_card", "carrier", "local_currency", "debit"
    ]
    basis: Annotated[Literal["charge", "purchase"], BeforeValidator(_one_basis)]


class ProviderList(Strict):
    """``rules/providers.yaml``: every payment provider the programs may name."""

    providers: tuple[Provider, ...]


def merge_versions(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Every version of a raw rule document as a full mapping, base first.

    A change's mappings merge into the previous version's; lists and scalars replace. An award
    of another ``kind`` replaces the award whole: a grant has no use for a premium's rate.
    """
    base = {k: v for k, v in raw.items() if k != "versions"}
    out = [base]
    for change in raw.get("versions") or ():
        merged = _merge(out[-1], change)
        if _another_kind(out[-1].get("award"), change.get("award")):
            merged["award"] = change["award"]
        out.append(merged)
    return out


def _another_kind(before: Any, award: Any) -> bool:
    return (isinstance(before, dict) and isinstance(award, dict) and "kind" in award
            and award["kind"] != before.get("kind"))


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
