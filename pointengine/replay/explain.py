"""Explaining one person: per event and program, what was observed beside what was required,
what a cap or budget clipped, the person's refused lines, and their totals.

Nothing replays the whole file. The person's lines are found by a byte search for their MyKey ID
(:func:`person_lines`), and only those are decided, in file order, on a fresh in-memory store
by an explaining engine. Eligibility depends on the person alone, so the verdicts are exactly
the replay's. What a person *got* may depend on others too (a program budget, a provider's
allocation of persons, a per-child grant shared by a household): those figures come from the
ledger when one is given (:func:`explain_person`'s ``ledger``), and each figure says where it
comes from (``source``: ``ledger`` or ``replay``, the person's lines decided alone).

Every message is a :class:`~pointengine.i18n.Text` of :data:`MESSAGES`, rendered in Japanese or
English by :meth:`Explanation.render`; nothing in an :class:`Explanation` is a sentence, and
it is JSON as it stands (:meth:`Explanation.to_json`). A My Number is never echoed: a line
that carries one is refused with its code and a message that does not repeat it.
"""

from __future__ import annotations

import mmap
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import orjson

from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.catalog.programs import PerChild, ProgramVersion
from pointengine.catalog.shipped import rules_folder
from pointengine.decide.awards import GROUP, PROGRAM, claim_template
from pointengine.decide.eligibility import REQUIREMENTS
from pointengine.decide.engine import Decision, Engine
from pointengine.decide.facts import Fact, build_fact
from pointengine.errors import InputError, IntegrityError, MyNumberRejected, UnreadableEvents
from pointengine.i18n import Lang, Table, Text, say
from pointengine.model.bounds import MAX_EVENT_BYTES
from pointengine.model.events import (
    ID,
    AnyEvent,
    Charge,
    Participation,
    Purchase,
    Refund,
    parse_event,
)
from pointengine.model.ledger import LedgerEntry, ListSink, entry_of, numbered_lines
from pointengine.model.municipalities import registry
from pointengine.model.privacy import carries_my_number, redact
from pointengine.replay.progress import Update
from pointengine.replay.reading import open_events, open_regular
from pointengine.store.contract import Outcome
from pointengine.store.memory import MemoryStore

__all__ = ["MESSAGES", "EventAnswer", "Explanation", "LedgerLine", "ProgramAnswer",
           "RefusedLine", "Total", "explain_person", "person_lines"]

Source = Literal["ledger", "replay", "rejects", "events"]
"""Where a figure or a refusal comes from: the ledger given, the person's lines decided alone,
the rejects file given, or the events file itself (a line that does not parse)."""

_OWN: dict[str, dict[Lang, str]] = {
    # what the explanation is made of
    "head.person": {
        "en": "{person}: {lines:,} line(s) in {events}",
        "ja": "{person}: {events} の {lines:,} 行"},
    "head.source_ledger": {
        "en": "awarded, reversed and totals: from the ledger {ledger}",
        "ja": "付与・取消・合計: 台帳 {ledger} の記録"},
    "head.source_replay": {
        "en": "awarded, reversed and totals: this person's lines decided alone (a budget or "
              "an allocation shared with others counts as not reached; give the ledger for "
              "what was paid)",
        "ja": "付与・取消・合計: この住民の行だけを判定した結果（他の住民と共有する予算・人数枠は"
              "上限に達していないものとして計算。実際の支払額は台帳を指定すると表示）"},
    "head.refused": {"en": "refused lines:", "ja": "受け付けなかった行:"},
    "head.other_ledger": {
        "en": "ledger lines of this person for no line of theirs in the file (a lottery "
              "win, an event of another file):",
        "ja": "ファイルのこの住民の行に対応しない台帳の記録（抽選の当選、別ファイルのイベント）:"},
    "head.totals": {"en": "totals:", "ja": "合計:"},
    "none.events": {"en": "no events for {person}", "ja": "{person} のイベントはありません"},
    "note.ledger_no_person": {
        "en": "the ledger {ledger} has no line for {person}: is it the ledger of these events "
              "(not of another stream, nor empty)?",
        "ja": "台帳 {ledger} に {person} の記録が1行もありません。このイベントの台帳か（別の"
              "イベントファイルの台帳や空の台帳でないか）確認してください"},
    "note.ledger_differs": {
        "en": "on {count:,} event(s) the ledger paid otherwise than this person's lines decided "
              "alone: a limit shared with others, or a ledger written under other rules or "
              "from another file",
        "ja": "{count:,} 件のイベントで、台帳の支払額がこの住民の行だけを判定した結果と異なります"
              "（他の住民と共有する上限、または別のルール・別ファイルで作成された台帳）"},
    # one line per event
    "event.mynapoint_application": {
        "en": "line {line}: {at} mynapoint_application {key}",
        "ja": "{line}行目: {at} マイナポイント申込 {key}"},
    "event.health_insurance_registration": {
        "en": "line {line}: {at} health_insurance_registration {key}",
        "ja": "{line}行目: {at} 健康保険証利用登録 {key}"},
    "event.public_funds_account_registration": {
        "en": "line {line}: {at} public_funds_account_registration {key}",
        "ja": "{line}行目: {at} 公金受取口座登録 {key}"},
    "event.charge": {
        "en": "line {line}: {at} charge {key} {amount:,} yen",
        "ja": "{line}行目: {at} チャージ {key} {amount:,}円"},
    "event.purchase": {
        "en": "line {line}: {at} purchase {key} {amount:,} yen",
        "ja": "{line}行目: {at} お買い物 {key} {amount:,}円"},
    "event.refund": {
        "en": "line {line}: {at} refund {key} {amount:,} yen",
        "ja": "{line}行目: {at} 返金 {key} {amount:,}円"},
    "event.residence_change": {
        "en": "line {line}: {at} residence_change {key}",
        "ja": "{line}行目: {at} 転居 {key}"},
    "event.participation": {
        "en": "line {line}: {at} participation {key}",
        "ja": "{line}行目: {at} 活動への参加 {key}"},
    "event.lottery_draw": {
        "en": "line {line}: {at} lottery_draw {key}",
        "ja": "{line}行目: {at} 抽選 {key}"},
    # one line per program and event
    "answer.failed": {
        "en": "{program}@v{version}: nothing; failed {check}",
        "ja": "{program}@v{version}: 対象外（{check}）"},
    "answer.nothing": {
        "en": "{program}@v{version}: eligible, nothing to award",
        "ja": "{program}@v{version}: 対象（付与額なし）"},
    "answer.awarded": {
        "en": "{program}@v{version}: awarded {awarded:,}",
        "ja": "{program}@v{version}: {awarded:,}円 付与"},
    "answer.limited": {
        "en": "{program}@v{version}: awarded {awarded:,} of {wanted:,}",
        "ja": "{program}@v{version}: {wanted:,}円のうち {awarded:,}円 付与"},
    "answer.unrecorded": {
        "en": "{program}@v{version}: the ledger holds no record of this event (this person's "
              "lines decided alone: {replayed:,})",
        "ja": "{program}@v{version}: 台帳にこのイベントの記録がありません（この住民の行だけで"
              "判定すると {replayed:,}円）"},
    "answer.reversed": {
        "en": "{program}: reversed {points:,}",
        "ja": "{program}: {points:,}円 取消"},
    # put together when rendering (the pieces above are rendered first)
    "join.observed": {
        "en": "{answer}: observed {observed}; required: {required}",
        "ja": "{answer}: 実際 {observed} ／ 条件 {required}"},
    "join.limited": {
        "en": "{answer}; limited by {limits}",
        "ja": "{answer}（{limits}により減額）"},
    "join.source": {"en": "{text} [{source}]", "ja": "{text}［{source}］"},
    "source.ledger": {"en": "ledger", "ja": "台帳"},
    "source.replay": {"en": "decided alone", "ja": "単独判定"},
    # what was observed, one per fact field shown
    "seen.type": {"en": "the event is a {value}", "ja": "取引の種類 {value}"},
    "seen.day": {"en": "the event's day {value} (JST)", "ja": "取引日 {value}（日本時間）"},
    "seen.provider": {"en": "paid with {value}", "ja": "決済サービス {value}"},
    "seen.chosen": {
        "en": "chose {value} in phase {phase}",
        "ja": "第{phase}弾で選択した決済サービス {value}"},
    "seen.chosen_none": {
        "en": "no phase-{phase} application before the event",
        "ja": "取引時点で第{phase}弾の申込なし"},
    "seen.basis": {
        "en": "the chosen provider awards on {value}",
        "ja": "選択した決済サービスの付与対象 {value}"},
    "seen.applied_on": {
        "en": "applied for phase-{phase} Mynapoint on {value}",
        "ja": "第{phase}弾の申込日 {value}"},
    "seen.card_applied_on": {"en": "card applied for on {value}", "ja": "カード申請日 {value}"},
    "seen.card_none": {"en": "no card application known", "ja": "カード申請日の記録なし"},
    "seen.phase1_yes": {"en": "applied for phase-1 Mynapoint", "ja": "第1弾の申込あり"},
    "seen.phase1_no": {"en": "did not apply for phase-1 Mynapoint", "ja": "第1弾の申込なし"},
    "seen.residence": {"en": "lives in {code} {place}", "ja": "住所 {code} {place}"},
    "seen.residence_none": {"en": "residence unknown", "ja": "住所不明"},
    "seen.store": {"en": "store {store}", "ja": "店舗 {store}"},
    "seen.store_place": {
        "en": "store {store} in {code} {place}",
        "ja": "店舗 {store}（{code} {place}）"},
    "seen.store_place_none": {
        "en": "the store's municipality is not given",
        "ja": "店舗の所在地の記載なし"},
    "seen.age": {"en": "aged {value} on the event's day", "ja": "取引日の年齢 {value}歳"},
    "seen.age_unknown": {"en": "age unknown", "ja": "年齢不明"},
    "seen.health_insurance_yes": {
        "en": "health-insurance registration made",
        "ja": "健康保険証利用登録 済"},
    "seen.health_insurance_no": {
        "en": "no health-insurance registration",
        "ja": "健康保険証利用登録 未"},
    "seen.public_funds_account_yes": {
        "en": "public-funds account registered",
        "ja": "公金受取口座 登録済"},
    "seen.public_funds_account_no": {
        "en": "no public-funds account registered",
        "ja": "公金受取口座 未登録"},
    "seen.activity": {"en": "activity {value}", "ja": "活動 {value}"},
    "seen.place": {"en": "held in {code} {place}", "ja": "実施場所 {code} {place}"},
    "seen.field": {"en": "{field} is {value}", "ja": "{field} は {value}"},
    # what clipped an award
    "limit.person": {"en": "person cap ({limit:,})", "ja": "1人あたり上限（{limit:,}円）"},
    "limit.person_claim": {"en": "person cap", "ja": "1人あたり上限"},
    "limit.person_month": {
        "en": "person cap per month ({limit:,})",
        "ja": "1人あたり月間上限（{limit:,}円）"},
    "limit.group": {
        "en": "{group} total per person ({limit:,})",
        "ja": "{group} の1人あたり合計上限（{limit:,}円）"},
    "limit.budget": {"en": "program budget ({limit:,})", "ja": "予算（{limit:,}円）"},
    "limit.budget_persons": {
        "en": "program budget in persons ({limit:,})",
        "ja": "予算の人数枠（{limit:,}人）"},
    "limit.allocation": {
        "en": "{provider}'s allocation of persons ({limit:,})",
        "ja": "{provider} の人数枠（{limit:,}人）"},
    "limit.household": {
        "en": "paid for the household's children",
        "ja": "世帯の子どもへの支給済額"},
    "limit.shared": {
        "en": "a limit shared with others",
        "ja": "他の住民と共有する上限"},
    "limit.other": {"en": "{label}", "ja": "{label}"},
    # the person's refused lines
    "refused.malformed": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 形式の誤りにより受付不可（{code}）: {reason}"},
    "refused.too_deep": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 入れ子が深すぎるため受付不可（{code}）: {reason}"},
    "refused.too_large": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 大きすぎるため受付不可（{code}）: {reason}"},
    "refused.my_number": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: マイナンバーを含むため受付不可・保存せず（{code}）: {reason}"},
    "refused.unknown_municipality": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 存在しない自治体コードのため受付不可（{code}）: {reason}"},
    "refused.duplicate": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 適用済みのイベントの重複（{code}）: {reason}"},
    "refused.unknown_provider": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 登録されていない決済サービス（{code}）: {reason}"},
    "refused.provider_already_chosen": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: この弾では別の決済サービスを選択済み（{code}）: {reason}"},
    "refused.unknown_transaction": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 返金の元になる取引が見つからない（{code}）: {reason}"},
    "refused.refund_exceeds_payment": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 返金額が取引の残額を超える（{code}）: {reason}"},
    "refused.unknown_lottery": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 抽選の事業ではない（{code}）: {reason}"},
    "refused.lottery_not_due": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 事業期間の終了前の抽選（{code}）: {reason}"},
    "refused.lottery_already_drawn": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 抽選は実施済み（{code}）: {reason}"},
    "refused.other": {
        "en": "line {line}: refused ({code}): {reason}",
        "ja": "{line}行目: 受付不可（{code}）: {reason}"},
    # the ledger's lines that match none of the person's lines, and the totals
    "ledger.line": {
        "en": "{at} {program}: {points:+,} (event {event})",
        "ja": "{at} {program}: {points:+,}円（イベント {event}）"},
    "total.program": {
        "en": "{program}: awarded {awarded:,}, reversed {reversed:,}, net {net:,}",
        "ja": "{program}: 付与 {awarded:,}円、取消 {reversed:,}円、差引 {net:,}円"},
    "total.all": {
        "en": "total: awarded {awarded:,}, reversed {reversed:,}, net {net:,}",
        "ja": "合計: 付与 {awarded:,}円、取消 {reversed:,}円、差引 {net:,}円"},
}

MESSAGES: Table = {**_OWN, **REQUIREMENTS}
"""Every code an :class:`Explanation` holds: its own and the checks' requirements
(:data:`pointengine.decide.eligibility.REQUIREMENTS`); render one with
``say(MESSAGES, text, lang)``."""

_REFUSED = {code.removeprefix("refused.") for code in _OWN if code.startswith("refused.")}


@dataclass
class ProgramAnswer:
    """One program's answer to one event.

    ``eligible`` with ``failed`` None, or the first check that failed (``failed``), with what
    was ``observed`` beside what was ``required``. ``wanted`` is what the event asked before
    any cap, ``awarded`` what it got (from ``source``: the ledger, or the person's lines decided
    alone, ``replayed``), and ``limits`` what clipped it (``limited_by``: the caps' own labels).
    """

    program: str
    version: int
    name: str
    eligible: bool
    message: Text
    failed: str | None = None
    observed: list[Text] = field(default_factory=list)
    required: Text | None = None
    wanted: int = 0
    awarded: int = 0
    replayed: int = 0
    source: Source = "replay"
    limits: list[Text] = field(default_factory=list)
    limited_by: list[str] = field(default_factory=list)


@dataclass
class EventAnswer:
    """One applied event of the person: its line, and each program's answer; for a refund,
    the points it took back per program (``reversed``, from ``source``)."""

    line: int
    key: str
    type: str
    at: str
    amount: int | None
    message: Text
    programs: list[ProgramAnswer] = field(default_factory=list)
    reversed: dict[str, int] = field(default_factory=dict)
    reversals: list[Text] = field(default_factory=list)
    source: Source = "replay"


@dataclass
class RefusedLine:
    """A line of the person's that was not applied: its number, the refusal's code and the
    message the rejects file would hold (a My Number masked), and where that comes from."""

    line: int
    code: str
    reason: str
    source: Source
    message: Text


@dataclass
class LedgerLine:
    """A ledger line of the person's whose event is none of their applied lines."""

    event: str
    program: str
    points: int
    at: str
    message: Text


@dataclass
class Total:
    """Points of one program (``*``: all of them): awarded, reversed (a positive figure)
    and net."""

    program: str
    awarded: int
    reversed: int
    net: int
    message: Text


@dataclass
class Explanation:
    """Everything :func:`explain_person` found about one person (see the module)."""

    person: str
    events_file: str
    ledger: str | None
    rejects: str | None
    source: Source
    lines: int
    """The person's lines in the events file: applied events and refused lines."""
    events: list[EventAnswer] = field(default_factory=list)
    refused: list[RefusedLine] = field(default_factory=list)
    other_ledger: list[LedgerLine] = field(default_factory=list)
    totals: list[Total] = field(default_factory=list)
    total: Total | None = None
    notes: list[Text] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        """Whether the file or the ledger holds anything of the person's."""
        return bool(self.events or self.refused or self.other_ledger)

    def to_dict(self) -> dict[str, object]:
        """The explanation as plain data (every :class:`Text` as its code and arguments)."""
        return asdict(self)

    def to_json(self) -> bytes:
        """The explanation as indented JSON."""
        return orjson.dumps(self.to_dict(),
                            option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)

    def render(self, lang: Lang) -> list[str]:
        """The explanation as lines of text in ``lang``: a head, each event with one indented
        line per program, the refused lines, the ledger's other lines, and the totals."""
        def s(text: Text) -> str:
            return say(MESSAGES, text, lang)

        out = [s(Text("head.person", {"person": self.person, "lines": self.lines,
                                      "events": self.events_file}))]
        out.append(s(Text("head.source_ledger", {"ledger": self.ledger})
                     if self.source == "ledger" else Text("head.source_replay")))
        out.extend(s(note) for note in self.notes)
        for event in self.events:
            out.append(s(event.message))
            out.extend("  " + _answer_line(answer, s) for answer in event.programs)
            out.extend("  " + s(text) for text in event.reversals)
        if self.refused:
            out.append(s(Text("head.refused")))
            out.extend("  " + s(line.message) for line in self.refused)
        if self.other_ledger:
            out.append(s(Text("head.other_ledger")))
            out.extend("  " + s(line.message) for line in self.other_ledger)
        if self.total is not None:
            out.append(s(Text("head.totals")))
            out.extend("  " + s(total.message) for total in (*self.totals, self.total))
        return out


def _answer_line(answer: ProgramAnswer, s: Callable[[Text], str]) -> str:
    line = s(answer.message)
    if answer.failed is not None and answer.required is not None:
        line = s(Text("join.observed", {
            "answer": line, "observed": ", ".join(s(t) for t in answer.observed) or "-",
            "required": s(answer.required)}))
    if answer.limits:
        line = s(Text("join.limited", {"answer": line,
                                       "limits": ", ".join(s(t) for t in answer.limits)}))
    return line


def explain_person(person: str, *, events: Path, rules: Path | None = None,
                   ledger: Path | None = None, rejects: Path | None = None,
                   on_progress: Update | None = None,
                   catalog: Catalog | None = None) -> Explanation:
    """Explain ``person`` (a MyKey ID) from ``events`` under the catalog of ``rules``.

    ``ledger`` (a replay's ``ledger.jsonl``): what was awarded and reversed, and the totals,
    are its lines of the person's rather than what the person's lines decided alone; a program
    the ledger paid less than the person's own caps allowed was clipped by a limit shared with
    others, and the answer names the program's shared limits. ``rejects`` (the same replay's
    ``rejects.jsonl``): a line of the person's that it lists is refused for its reason.
    ``on_progress(done, total)`` gets the bytes searched. ``catalog``: the catalog already
    loaded from ``rules`` (the console holds one), else it is loaded.

    Raises :class:`MyNumberRejected` when ``person`` is or carries a My Number (it is not
    searched for), :class:`InputError` when it is no MyKey ID, :class:`UnreadableEvents`
    when a file cannot be read, :class:`IntegrityError` for a damaged ledger and
    :class:`~pointengine.errors.RuleFileError` for rules that do not validate.
    """
    if carries_my_number(person.encode()):
        raise MyNumberRejected("a My Number is never a MyKey ID; nothing was looked up")
    if not ID.fullmatch(person):
        raise InputError("a MyKey ID is 1-64 letters, digits, '.', '_', ':', '-', starting "
                         "with a letter or digit")
    started = time.perf_counter()
    found = person_lines(events, person, on_progress=on_progress)
    if catalog is None:
        catalog = load_catalog(rules_folder(rules))
    decided = _decide(found, person, catalog)
    listed = _read_rejects(rejects, {number for number, _ in found}) if rejects else {}
    explanation = Explanation(
        person=person, events_file=str(events), ledger=str(ledger) if ledger else None,
        rejects=str(rejects) if rejects else None,
        source="ledger" if ledger is not None else "replay", lines=0)
    kept: list[_Decided] = []
    for item in decided.items:
        number = item.line
        if number in listed:
            code, reason = listed[number]
            explanation.refused.append(_refused(number, code, reason, "rejects"))
        elif isinstance(item, RefusedLine):
            explanation.refused.append(item)
        else:
            kept.append(item)
    entries = _ledger_lines(ledger, person) if ledger is not None else [
        e for e in decided.sink.entries if e.person == person]
    explanation.lines = len(kept) + len(explanation.refused)
    _answer(explanation, kept, entries, catalog)
    explanation.seconds = round(time.perf_counter() - started, 3)
    return explanation


# Finding the person's lines ----------------------------------------------------------------

_ID_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
_ESCAPE = b"\\u"
_COUNT_CHUNK = 1 << 24


def person_lines(path: Path, person: str, *, on_progress: Update | None = None,
                 ) -> list[tuple[int, bytes]]:
    """The lines of ``path`` that may be ``person``'s, as (line number, bytes), in order.

    A line is found when it holds the MyKey ID as a whole (not inside a longer id:
    ``MK-A`` is not found in ``MK-AB``), or holds a JSON ``\\u`` escape (``"\\u004dK-A"`` is
    ``MK-A`` once decoded, and an id can be written no other way). The caller decides which
    of them are the person's: one that mentions the id in another field is not. Line numbers
    count every line, blank ones too, as the replay numbers them. A line over the event bound
    is held cut (it is refused as too large all the same).
    """
    needle = person.encode()
    with open_events(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return []
        try:
            view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise UnreadableEvents(f"cannot read the events file {path}: {exc}") from None
        with view:
            spans: dict[int, int] = {}
            total = 2 * size
            for done, (pattern, whole) in enumerate(((needle, True), (_ESCAPE, False))):
                for start, end in _hits(view, pattern, whole, size):
                    spans[start] = end
                if on_progress is not None:
                    on_progress((done + 1) * size, total)
            out = []
            number, counted = 1, 0
            for start in sorted(spans):
                number += _newlines(view, counted, start)
                counted = start
                end = min(spans[start], start + MAX_EVENT_BYTES + 2)
                out.append((number, view[start:end]))
            return out


def _hits(view: mmap.mmap, pattern: bytes, whole: bool, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each line holding ``pattern`` (as a whole id when ``whole``)."""
    at = view.find(pattern)
    while at != -1:
        after = at + len(pattern)
        if whole and ((at > 0 and view[at - 1] in _ID_BYTES)
                      or (after < size and view[after] in _ID_BYTES)):
            at = view.find(pattern, at + 1)
            continue
        start = view.rfind(b"\n", 0, at) + 1
        end = view.find(b"\n", after)
        end = size if end == -1 else end + 1
        yield start, end
        at = view.find(pattern, end)


def _newlines(view: mmap.mmap, start: int, end: int) -> int:
    """Line breaks between ``start`` and ``end``, counted a slice of bounded size at a time."""
    count = 0
    for at in range(start, end, _COUNT_CHUNK):
        count += view[at:min(at + _COUNT_CHUNK, end)].count(b"\n")
    return count


def _owned(raw: bytes, person: str) -> bool:
    """Whether a line that is no valid event names ``person`` as its person."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("person") == person:
        return True
    # Not JSON, or a key given twice: the text says whose it is
    pattern = rb'"person"\s*:\s*"' + re.escape(person.encode()) + rb'"'
    return re.search(pattern, raw) is not None


# Deciding them ----------------------------------------------------------------------------

@dataclass
class _Decided:
    """One applied event of the person's, with the fact it was decided on."""

    line: int
    decision: Decision
    fact: Fact


@dataclass
class _Run:
    items: list[_Decided | RefusedLine]
    sink: ListSink


def _decide(found: list[tuple[int, bytes]], person: str, catalog: Catalog) -> _Run:
    """Decide the person's lines in order, one event at a time, on a fresh store.

    One at a time so that the fact each was decided on can be rebuilt from the person as
    stored after it (an event that changes the person is decided on the changed person; one
    that does not leaves it as it was).
    """
    sink = ListSink()
    store = MemoryStore(sink)
    engine = Engine(catalog, store, explain=True)
    bases = catalog.bases()
    items: list[_Decided | RefusedLine] = []
    try:
        for number, raw in found:
            if not raw.strip():
                continue
            try:
                event = parse_event(raw)
            except InputError as exc:
                if _owned(raw, person):
                    reason = redact(str(exc).encode()).decode()
                    items.append(_refused(number, exc.reason_code, reason, "events"))
                continue
            if event.person != person:
                continue
            [decision] = engine.process([event])
            if decision.applied.status != "applied":
                code, reason = decision.applied.refusal()
                items.append(_refused(number, str(code), reason, "replay"))
                continue
            stored = store.persons([person]).get(person)
            items.append(_Decided(number, decision, build_fact(event, stored, bases)))
    finally:
        engine.close()
    return _Run(items, sink)


def _refused(line: int, code: str, reason: str, source: Source) -> RefusedLine:
    known = code if code in _REFUSED else "other"
    return RefusedLine(line, code, reason, source,
                       Text(f"refused.{known}", {"line": line, "code": code, "reason": reason}))


def _read_rejects(path: Path, lines: set[int]) -> dict[int, tuple[str, str]]:
    """The rejects file's (code, message) of the lines in ``lines``."""
    out: dict[int, tuple[str, str]] = {}
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise IntegrityError(f"{path}:{number}: not a line of a rejects "
                                         "file") from None
                if not isinstance(data, dict) or not isinstance(data.get("line"), int):
                    raise IntegrityError(f"{path}:{number}: not a line of a rejects file")
                if data["line"] in lines:
                    out[data["line"]] = (str(data.get("reason", "")),
                                         redact(str(data.get("message", "")).encode()).decode())
    except OSError as exc:
        raise UnreadableEvents(f"cannot read the rejects file {path}: "
                               f"{exc.strerror or exc}") from None
    return out


def _ledger_lines(path: Path, person: str) -> list[LedgerEntry]:
    """The ledger's lines of ``person``, found as their events are (a byte search).

    Only a regular file is read (a device or a pipe may never end), no line longer than an
    event's bound is held, and a line that carries a My Number is refused unrepeated.
    """
    try:
        with open_regular(path, "ledger") as handle:
            first = next(((n, line) for n, line in numbered_lines(handle, str(path))
                          if line.strip()), None)
    except OSError as exc:
        raise UnreadableEvents(f"cannot read the ledger {path}: "
                               f"{exc.strerror or exc}") from None
    if first is not None:  # a file that is no ledger (a stream chosen by mistake) says so
        where = f"{path}:{first[0]}"
        if carries_my_number(first[1]):
            entry_of(first[1], where)  # refused, the number unrepeated
        try:
            LedgerEntry.from_json(first[1])
        except IntegrityError as exc:
            raise IntegrityError(f"{where}: not a ledger: {exc}") from None
    out = []
    for number, raw in person_lines(path, person):
        if not raw.strip():
            continue
        if len(raw.rstrip(b"\r\n")) > MAX_EVENT_BYTES:  # held cut: see person_lines
            raise IntegrityError(f"{path}:{number}: a line over {MAX_EVENT_BYTES:,} bytes; a "
                                 "ledger line is a few hundred")
        entry = entry_of(raw, f"{path}:{number}")
        if entry.person == person:
            out.append(entry)
    return out


# Answering --------------------------------------------------------------------------------

def _answer(explanation: Explanation, kept: list[_Decided], entries: list[LedgerEntry],
            catalog: Catalog) -> None:
    """Fill in the events, the ledger's other lines and the totals."""
    from_ledger = explanation.source == "ledger"
    paid: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in entries:
        paid[entry.event][entry.program] += entry.points
    differs = 0
    keys = set()
    if from_ledger and not entries:  # every event would be "unrecorded": say why it may be
        explanation.notes.append(Text("note.ledger_no_person", {"ledger": explanation.ledger,
                                                                "person": explanation.person}))
    for item in kept:
        event = item.decision.event
        keys.add(event.key)
        # an event the ledger has no line of was not paid otherwise: it is not in the ledger
        recorded = not from_ledger or event.key in paid
        answer = _event_answer(item, catalog, paid.get(event.key, {}) if from_ledger else None,
                               recorded=recorded)
        if from_ledger and recorded and (
                any(p.awarded != p.replayed for p in answer.programs)
                or answer.reversed != item.decision.applied.reversed):
            differs += 1
        explanation.events.append(answer)
    if differs:
        explanation.notes.append(Text("note.ledger_differs", {"count": differs}))
    for entry in entries:
        if entry.event not in keys:
            explanation.other_ledger.append(LedgerLine(
                entry.event, entry.program, entry.points, entry.at,
                Text("ledger.line", {"at": entry.at, "program": entry.program,
                                     "points": entry.points, "event": entry.event})))
    awarded: dict[str, int] = defaultdict(int)
    taken: dict[str, int] = defaultdict(int)
    for entry in entries:
        if entry.points >= 0:
            awarded[entry.program] += entry.points
        else:
            taken[entry.program] -= entry.points
    for program in sorted(awarded.keys() | taken.keys()):
        explanation.totals.append(_total(program, awarded[program], taken[program]))
    explanation.total = _total("*", sum(awarded.values()), sum(taken.values()))


def _total(program: str, awarded: int, reversed_: int) -> Total:
    net = awarded - reversed_
    args = {"program": program, "awarded": awarded, "reversed": reversed_, "net": net}
    return Total(program, awarded, reversed_, net,
                 Text("total.all" if program == "*" else "total.program", args))


def _event_answer(item: _Decided, catalog: Catalog,
                  paid: Mapping[str, int] | None, *, recorded: bool = True) -> EventAnswer:
    """One event's answer; ``paid`` (program → points) when the figures are the ledger's.

    ``recorded`` False: the ledger has no line of the event at all; what the person's lines
    decided alone is then said beside that absence, never as a limit that cut it to nothing.
    """
    decision, fact = item.decision, item.fact
    event = decision.event
    amount = event.amount if isinstance(event, Charge | Purchase | Refund) else None
    args: dict[str, object] = {"line": item.line, "at": event.at.isoformat(), "key": event.key}
    if amount is not None:
        args["amount"] = amount
    source: Source = "ledger" if paid is not None else "replay"
    answer = EventAnswer(item.line, event.key, event.type, event.at.isoformat(), amount,
                         Text(f"event.{event.type}", args), source=source)
    outcomes: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in decision.applied.outcomes:
        outcomes[outcome.program].append(outcome)
    seen = set()
    for verdict in decision.verdicts:
        seen.add(verdict.program)
        version = _version(catalog, verdict.program, verdict.version)
        base = {"program": verdict.program, "version": verdict.version}
        name = version.name if version is not None else ""
        if verdict.failed is not None:
            check = verdict.failed
            answer.programs.append(ProgramAnswer(
                verdict.program, verdict.version, name, False,
                Text("answer.failed", {**base, "check": check.name}), failed=check.name,
                observed=[_seen(shown, event, fact) for shown in check.shown()],
                required=check.requirement or Text("limit.other", {"label": check.explain}),
                awarded=paid.get(verdict.program, 0) if paid is not None else 0,
                source=source))
            continue
        claims = outcomes.get(verdict.program, [])
        replayed = sum(o.awarded for o in claims)
        wanted = sum(o.wanted for o in claims)
        got = paid.get(verdict.program, 0) if paid is not None else replayed
        labels = list(dict.fromkeys(o.limited_by for o in claims if o.limited_by))
        limits = [_limit(label, version, fact) for label in labels]
        if paid is not None and not recorded and replayed > 0:
            answer.programs.append(ProgramAnswer(
                verdict.program, verdict.version, name, True,
                Text("answer.unrecorded", {**base, "replayed": replayed}), wanted=wanted,
                awarded=0, replayed=replayed, source=source))
            continue
        if paid is not None and got < replayed:
            # what the person's own caps allowed was cut further: by what they share
            limits = _shared(version, fact) or [Text("limit.shared")]
        if wanted <= 0:
            message = Text("answer.nothing", base)
        elif got < wanted:
            message = Text("answer.limited", {**base, "awarded": got, "wanted": wanted})
        else:
            message = Text("answer.awarded", {**base, "awarded": got})
            limits = []
        answer.programs.append(ProgramAnswer(
            verdict.program, verdict.version, name, True, message, wanted=wanted, awarded=got,
            replayed=replayed, source=source, limits=limits,
            limited_by=labels if paid is None or got >= replayed else []))
    if paid is not None:
        # the ledger paid a program this person's lines decided alone did not ask
        for program, points in paid.items():
            if program not in seen and points > 0:
                base = {"program": program, "version": 0}
                answer.programs.append(ProgramAnswer(
                    program, 0, "", True, Text("answer.awarded", {**base, "awarded": points}),
                    awarded=points, source="ledger"))
    taken = ({p: -v for p, v in paid.items() if v < 0} if paid is not None
             else dict(decision.applied.reversed))
    answer.reversed = taken
    answer.reversals = [Text("answer.reversed", {"program": p, "points": v})
                        for p, v in taken.items()]
    return answer


def _version(catalog: Catalog, program: str, number: int) -> ProgramVersion | None:
    found = catalog.programs.get(program)
    if found is None:
        return None
    return next((v for v in found.versions if v.version == number), None)


# What was observed -----------------------------------------------------------------------

def _place(code: str) -> dict[str, object]:
    codes = registry()
    return {"code": code, "place": codes.get(code).label if code in codes else ""}


def _day(value: int) -> str:
    return f"{value // 10_000:04d}-{value // 100 % 100:02d}-{value % 100:02d}"


def _seen(name: str, event: AnyEvent, fact: Mapping[str, str | int]) -> Text:
    """What the fact field ``name`` held, in words (a place with its name, a day as a date)."""
    value = fact.get(name, "")
    if name in ("chosen1", "chosen2"):
        phase = int(name[-1])
        return (Text("seen.chosen", {"value": value, "phase": phase}) if value
                else Text("seen.chosen_none", {"phase": phase}))
    if name in ("applied1_on", "applied2_on"):
        phase = int(name[7])
        return (Text("seen.applied_on", {"value": _day(int(value)), "phase": phase}) if value
                else Text("seen.chosen_none", {"phase": phase}))
    if name in ("basis1", "basis2"):
        return Text("seen.basis", {"value": value or "-"})
    if name == "day":
        return Text("seen.day", {"value": _day(int(value))})
    if name == "card_applied_on":
        return (Text("seen.card_applied_on", {"value": _day(int(value))}) if value
                else Text("seen.card_none"))
    if name == "phase1_applicant":
        return Text("seen.phase1_yes" if value else "seen.phase1_no")
    if name in ("residence", "residence_pref"):
        return Text("seen.residence", _place(str(value))) if value else Text(
            "seen.residence_none")
    if name in ("store_place", "store_pref"):
        # the store's own municipality as the event gives it (a ward, not its city)
        where = getattr(event, "store_municipality", None) or str(value)
        if not where:
            return Text("seen.store_place_none")
        return Text("seen.store_place", {"store": fact.get("store") or "-", **_place(where)})
    if name == "store":
        return Text("seen.store", {"store": value or "-"})
    if name == "age":
        return Text("seen.age", {"value": value}) if int(value) >= 0 else Text(
            "seen.age_unknown")
    if name in ("health_insurance", "public_funds_account"):
        return Text(f"seen.{name}_{'yes' if value else 'no'}")
    if name == "place":
        where = event.municipality if isinstance(event, Participation) else str(value)
        return Text("seen.place", _place(where))
    if name in ("type", "provider", "activity"):
        return Text(f"seen.{name}", {"value": value})
    return Text("seen.field", {"field": name, "value": value})


# What clipped an award --------------------------------------------------------------------

HOUSEHOLD_LABEL = "paid for the household's children"
"""The label of a per-child grant's cap per household and birth date
(:func:`pointengine.decide.awards.claims_for`)."""


def _templates(version: ProgramVersion, fact: Mapping[str, str | int],
               ) -> list[tuple[str, Text, bool]]:
    """Every cap and admission of ``version``'s claims: (label, text, shared with others)."""
    provider = str(fact.get(f"chosen{version.phase}", ""))
    template = claim_template(version, provider)
    out: list[tuple[str, Text, bool]] = []
    for cap in template.caps:
        if cap.scope == PROGRAM:
            out.append((cap.label, Text("limit.budget", {"limit": cap.limit}), True))
        elif cap.scope == GROUP:
            group = version.person_total.group if version.person_total else ""
            out.append((cap.label, Text("limit.group", {"group": group, "limit": cap.limit}),
                        False))
        elif cap.period is not None:
            out.append((cap.label, Text("limit.person_month", {"limit": cap.limit}), False))
        elif cap.limit is None:
            out.append((cap.label, Text("limit.person_claim"), False))
        else:
            out.append((cap.label, Text("limit.person", {"limit": cap.limit}), False))
    for admission in template.admissions:
        if admission.key.startswith("al|"):
            text = Text("limit.allocation", {"provider": provider, "limit": admission.limit})
        else:
            text = Text("limit.budget_persons", {"limit": admission.limit})
        out.append((admission.label, text, True))
    if isinstance(version.award, PerChild):
        out.append((HOUSEHOLD_LABEL, Text("limit.household"), True))
    return out


def _limit(label: str, version: ProgramVersion | None, fact: Mapping[str, str | int]) -> Text:
    """The words for the cap labelled ``label`` of ``version``'s claims."""
    if version is not None:
        for known, text, _ in _templates(version, fact):
            if known == label:
                return text
    return Text("limit.other", {"label": label})


def _shared(version: ProgramVersion | None, fact: Mapping[str, str | int]) -> list[Text]:
    """The limits of ``version``'s claims that others count in too (a budget, an allocation,
    a household's children)."""
    if version is None:
        return []
    return [text for _, text, shared in _templates(version, fact) if shared]
