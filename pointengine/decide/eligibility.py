"""From a program version to the ordered checks that decide whether an event qualifies.

The checks are the program's conditions in the order ``explain`` reports them: the first that
fails is the reason an event earned nothing. They are compiled into one durable_rules ruleset
per program version (see :mod:`pointengine.decide.matching`).

Each check states its requirement as a :class:`~pointengine.i18n.Text` of
:data:`REQUIREMENTS` (its English is the check's ``explain``), and names the fact fields that
show what was observed instead (the store's municipality beside "the store is in 三次市").
"""

from __future__ import annotations

import datetime as dt

from pointengine.catalog.programs import ProgramVersion
from pointengine.decide.conditions import (
    AllOf,
    AnyOf,
    Check,
    Compare,
    Condition,
    FieldRef,
    one_of,
)
from pointengine.i18n import Table, Text
from pointengine.model.events import day_number
from pointengine.model.municipalities import registry

TRANSACTIONS = ("purchase", "charge")

REQUIREMENTS: Table = {
    "check.event": {
        "en": "the event is one of {types}",
        "ja": "対象となる取引（{types}）であること"},
    "check.period": {
        "en": "the event's day (JST) is within {start}..{end}",
        "ja": "取引日（日本時間）が対象期間 {start}〜{end} 内であること"},
    "check.enrolled": {
        "en": "the person applied for phase-{phase} Mynapoint before the event",
        "ja": "取引より前に第{phase}弾マイナポイントを申し込んでいること"},
    "check.application_period": {
        "en": "the person applied for Mynapoint within {start}..{end}",
        "ja": "マイナポイントの申込日が {start}〜{end} 内であること"},
    "check.partner": {
        "en": "the chosen provider is a partner: {providers}",
        "ja": "選択した決済サービスが対象の事業者（{providers}）であること"},
    "check.chosen_provider": {
        "en": "the transaction was made with the provider the person chose",
        "ja": "申込で選択した決済サービスでの取引であること"},
    "check.basis": {
        "en": "the chosen provider awards on this kind of transaction (charges or purchases)",
        "ja": "選択した決済サービスがこの種類の取引（チャージまたはお買い物）に付与すること"},
    "check.card_deadline": {
        "en": "the card was applied for by {deadline}",
        "ja": "{deadline}までにマイナンバーカードを申請していること"},
    "check.phase1_excluded": {
        "en": "the person did not apply for phase-1 Mynapoint",
        "ja": "第1弾マイナポイントに申し込んでいないこと"},
    "check.resident": {
        "en": "the person lives in {where} at the event's time",
        "ja": "取引時点で{where}の住民であること"},
    "check.in_region": {
        "en": "the store is in {where}",
        "ja": "{where}内の店舗であること"},
    "check.target_store": {
        "en": "the store is one of the program's target stores",
        "ja": "対象店舗であること"},
    "check.venue": {
        "en": "the activity took place in {where}",
        "ja": "{where}内で行われた活動であること"},
    "check.min_age": {
        "en": "the person is {age} or older on the event's day",
        "ja": "取引日に{age}歳以上であること"},
    "check.registered_health_insurance": {
        "en": "the person has made the health-insurance registration",
        "ja": "健康保険証利用登録を済ませていること"},
    "check.registered_public_funds_account": {
        "en": "the person has made the public-funds-account registration",
        "ja": "公金受取口座を登録していること"},
    "check.activity": {
        "en": "the activity is one of {activities}",
        "ja": "対象の活動（{activities}）であること"},
}
"""Every check's requirement, in English and Japanese (``check.<name>``)."""


def _check(name: str, condition: Condition, observed: tuple[str, ...] = (),
           **args: object) -> Check:
    """The check ``name``; its ``explain`` is its requirement's English."""
    requirement = Text(f"check.{name}", args)
    return Check(name, condition, REQUIREMENTS[requirement.code]["en"].format_map(args),
                 requirement, observed)


def checks_for(program: ProgramVersion) -> tuple[Check, ...]:
    """The ordered checks of ``program``; an event that passes them all earns its award."""
    phase = program.phase
    chosen = f"chosen{phase}"
    checks: list[Check] = [
        _check("event", one_of("type", program.on), ("type",), types=", ".join(program.on)),
    ]
    cond = program.conditions
    if cond.period is not None:
        checks.append(_period(cond.period.from_, cond.period.to))
    checks.append(_check("enrolled", Compare(chosen, "!=", ""), phase=phase))
    if cond.application_period is not None:
        window = cond.application_period
        checks.append(_check(
            "application_period",
            AllOf((Compare(f"applied{phase}_on", ">=", day_number(window.from_)),
                   Compare(f"applied{phase}_on", "<=", day_number(window.to)))),
            start=window.from_.isoformat(), end=window.to.isoformat()))
    if program.providers:
        names = [p.provider for p in program.providers]
        checks.append(_check("partner", one_of(chosen, names), providers=", ".join(names)))
    if any(t in TRANSACTIONS for t in program.on):
        checks.append(_check("chosen_provider", _transaction_via_chosen(chosen),
                             ("provider", chosen)))
    if cond.provider_basis:
        checks.append(_check("basis", _basis(phase), ("type", chosen, f"basis{phase}")))
    if cond.card_applied_by is not None:
        deadline = day_number(cond.card_applied_by)
        checks.append(_check(
            "card_deadline",
            AllOf((Compare("card_applied_on", ">", 0),
                   Compare("card_applied_on", "<=", deadline))),
            deadline=cond.card_applied_by.isoformat()))
    if cond.exclude_phase1_applicants:
        checks.append(_check("phase1_excluded", Compare("phase1_applicant", "==", 0)))
    checks.extend(_jurisdiction_checks(program))
    if cond.min_age is not None:
        checks.append(_check("min_age", Compare("age", ">=", cond.min_age), age=cond.min_age))
    for what in cond.registered:
        checks.append(_check(f"registered_{what}", Compare(what, "==", 1)))
    if program.award.kind == "per_activity":
        activities = sorted(program.award.points)
        checks.append(_check("activity", one_of("activity", activities),
                             activities=", ".join(activities)))
    return tuple(checks)


def _period(start: dt.date, end: dt.date) -> Check:
    return _check(
        "period",
        AllOf((Compare("day", ">=", day_number(start)), Compare("day", "<=", day_number(end)))),
        start=start.isoformat(), end=end.isoformat(),
    )


def _transaction_via_chosen(chosen: str) -> Condition:
    not_transaction = AllOf(tuple(Compare("type", "!=", t) for t in TRANSACTIONS))
    return AnyOf((not_transaction, Compare("provider", "==", FieldRef(chosen))))


def _basis(phase: int) -> Condition:
    not_transaction = AllOf(tuple(Compare("type", "!=", t) for t in TRANSACTIONS))
    return AnyOf((not_transaction, Compare("type", "==", FieldRef(f"basis{phase}"))))


def _jurisdiction_checks(program: ProgramVersion) -> list[Check]:
    if program.jurisdiction == "national":
        return []
    codes = registry()
    place = codes.get(program.jurisdiction)
    is_pref = place.kind == "prefecture"
    own, pref = ("residence_pref", "store_pref") if is_pref else ("residence", "store_place")
    where = place.label
    out: list[Check] = []
    restriction = program.restriction
    # A reader is shown the store's and the residence's own municipality, whichever field the
    # condition compares (a prefecture's program compares the prefecture).
    if restriction.persons == "residents":
        out.append(_check("resident", Compare(own, "==", program.jurisdiction), ("residence",),
                          where=where))
    if restriction.stores == "in_region":
        out.append(_check("in_region", Compare(pref, "==", program.jurisdiction),
                          ("store_place",), where=where))
    elif restriction.stores == "target_stores":
        out.append(_check("target_store", one_of("store", restriction.target_stores),
                          ("store",)))
    if "participation" in program.on and not is_pref:
        out.append(_check("venue", AnyOf((Compare("type", "!=", "participation"),
                                          Compare("place", "==", program.jurisdiction))),
                          ("place",), where=where))
    return out
