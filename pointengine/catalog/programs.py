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
from typing import Annotated, Any, Literal, TypeAlias

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
from pydantic_core import PydanticCustomError

from pointengine.catalog.messages import MESSAGES

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


def _refusal(code: str, **args: str) -> PydanticCustomError:
    """A check of the rule language failing, as pydantic's error whose ``type`` is ``code`` (a
    ``model.*`` code of :data:`~pointengine.catalog.messages.MESSAGES`) and whose ``ctx`` is
    ``args``: the problem is made from the code and its arguments, never by reading the English
    back, and the English is the table's, formatted by pydantic (the same words as ``render``).

    Validators of every kind raise it (``mode="before"``/``"after"``, ``BeforeValidator``,
    ``AfterValidator``): pydantic reports it as it is, without the ``Value error,`` prefix.
    """
    return PydanticCustomError(code, MESSAGES[code]["en"], args)


def _basis_points(value: Any) -> int:
    """``"25%"`` → 2500. Floats are refused: a rate is exact."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise _refusal("model.rate_not_text")
    match = _PERCENT.match(value)
    if not match:
        raise _refusal("model.rate_not_percent", value=repr(value))
    whole, frac = match.group(1), (match.group(2) or "").ljust(2, "0")
    points = int(whole) * 100 + int(frac)
    if not 0 < points <= 10_000:
        raise _refusal("model.rate_range", value=repr(value))
    return points


Words: TypeAlias = tuple[str, str]
"""A description in Japanese and in English."""


def _about(ja: str, en: str) -> str:
    """A description for the editor schema: Japanese first (the staff's), then the English."""
    return f"{ja} / {en}"


def _described(ja: str, en: str) -> ConfigDict:
    """The schema's description of a model, in both languages (its docstring is for developers:
    an editor shows this one when the cursor is on a field of the model's type)."""
    return ConfigDict(json_schema_extra={"description": _about(ja, en)})


# The schema says what a file holds (the percentage string), not the basis points it becomes:
# what _basis_points takes, its range included (above 0%, at most 100%).
_PERCENT_IN_RANGE = (r"^\s*(?!0{1,3}(\.0{1,2})?\s*%)"
                     r"(100(\.0{1,2})?|0{0,2}[0-9]{1,2}(\.[0-9]{1,2})?)\s*%\s*$")
BasisPoints = Annotated[int, BeforeValidator(_basis_points), WithJsonSchema({
    "type": "string", "pattern": _PERCENT_IN_RANGE, "examples": ["25%", "12.5%"],
    "description": _about("0% より大きく 100% 以下の百分率（小数は2桁まで、例: '25%'、'12.5%'）。",
                          "A percentage above 0% and at most 100%, with at most two decimals "
                          "(e.g. '25%', '12.5%').")})]
Yen = Annotated[StrictInt, Field(ge=1, le=10_000_000_000_000)]
Count = Annotated[StrictInt, Field(ge=1)]

# Descriptions a program's base document and its later versions share (docs/rules.md, Fields).
_ID: Words = ("rules/ 内で一意の事業ID。英小文字・数字・'-' の2〜63文字で、英小文字か数字で始める"
              "（例: miyoshi-premium）。",
              "Unique in rules/: 2-63 lowercase letters, digits and '-', starting with a letter "
              "or digit (e.g. miyoshi-premium).")
_NAME: Words = ("事業の名称（必須）。", "What the program is called (required).")
_JURISDICTION: Words = (
    "実施団体: national（国）、市区町村コードまたは都道府県コード（6桁）。引用符で囲んで書く"
    "（\"015814\"）。都道府県の「域内」は県内のすべての店舗。政令指定都市の区は事業を実施しない"
    "ため、市のコードを使う。",
    "national, a municipality code or a prefecture code (6 digits). Quote it: \"015814\". A "
    "prefecture's \"in region\" means any store in the prefecture; a designated-city ward runs "
    "no programs: use its city's code.")
_PHASE: Words = ("対象とするマイナポイントの弾（1 または 2、既定は 2）: "
                 "その弾で本人が選んだ決済事業者に付与する。",
                 "1 or 2 (default 2): the Mynapoint phase whose chosen provider counts.")
_ON: Words = (
    "付与の契機（1つ以上）: purchase（お買い物）、charge（チャージ）、mynapoint_application"
    "（マイナポイント申込）、health_insurance_registration（健康保険証利用登録）、"
    "public_funds_account_registration（公金受取口座登録）、participation（活動への参加）、"
    "lottery_draw（抽選）。使える契機は付与方式（award の kind）によって限られる。",
    "Triggers, at least one: purchase, charge, mynapoint_application, "
    "health_insurance_registration, public_funds_account_registration, participation, "
    "lottery_draw (the award's kind limits them).")
_RESTRICTION: Words = ("対象者と対象店舗の制限。類型 A〜D はここから決まる。",
                       "Whom and where: the restriction type (A-D) is derived from it.")
_PROVIDERS: Words = (
    "連携する決済事業者の一覧。各項目は {provider: ID, persons: 人数}。"
    "persons はその事業者に割り当てる対象者数で、先着順。超えた人は理由を記録して対象外とする。"
    "一覧がなければすべての決済事業者が対象。",
    "Partner providers, each {provider: id, persons: N}; persons allocates a number of target "
    "persons to that provider, first come, first served; past it a person is refused with the "
    "reason. No list means any provider.")
_CONDITIONS: Words = ("イベント時点のイベントと本人についての条件（すべて任意）。",
                      "Conditions on the event and on the person at the event's time "
                      "(all optional).")
_AWARD: Words = ("付与方式: kind で premium（プレミアム）、grant（定額付与）、"
                 "per_child（子ども1人当たり）、per_activity（活動参加ごと）、lottery（抽選）の"
                 "いずれかを指定し、その方式の項目を書く。",
                 "What is paid: kind premium, grant, per_child, per_activity or lottery, with "
                 "the fields of that kind.")
_BUDGET: Words = (
    "事業の予算: {yen: 金額} と/または {persons: 人数}。"
    "金額を使い切るときは、その付与に残額を付与し、以後は付与しない。"
    "persons を超えた新たな対象者には付与しない。理由は記録される。",
    "{yen: N} and/or {persons: N}: when the yen run out the crossing award gets the remainder "
    "and later ones nothing; past persons new persons get nothing. The reason is recorded.")
_PERSON_TOTAL: Words = ("{group: 名前, cap: 金額}: 同じグループのすべての事業で共有する"
                        "1人当たりの上限（国の第2弾の 20,000円など）。",
                        "{group: name, cap: N}: a cap shared by every program of the group "
                        "(the national 20,000).")
_PERIOD_CAPS: Words = (
    "{per: month, cap: 金額} の一覧: 1人当たり、暦月（日本時間）ごとにこの事業から付与する"
    "上限。付与方式自体の上限に加えて適用する。返金があると、その購入の月の枠が戻る。"
    "期間（per）ごとに1項目。",
    "A list of {per: month, cap: N}: at most N points per person from the program in each "
    "calendar month (JST), on top of the award's own cap; a refund gives the room back to "
    "the month of its purchase. One entry per period.")
_ASSUMPTIONS: Words = ("自由記述: 事業の根拠資料で決まっていない点と、このファイルでの判断。",
                       "Free text: what the program's sources leave open and what the file "
                       "chose.")
_VERSION: Words = ("版の番号。最初の版（ファイルの本体）は 1。",
                   "The version number: the file's base document is version 1.")
_EFFECTIVE_FROM: Words = (
    "この版を適用する日時（時差付き、例: 2022-10-01T00:00:00+09:00）。"
    "この日時以降のイベントに適用する。",
    "When this version takes effect, a time with its offset (e.g. "
    "2022-10-01T00:00:00+09:00): it decides events at or after it.")
_NOTE: Words = ("この版で何を変えたかのメモ。", "What this version changed.")


def _changed(words: Words) -> str:
    """The description of a mapping a later version changes: only what changes, merged."""
    ja, en = words
    return _about(ja + "後の版では変更する項目だけを書き、前の版の同じ項目に結合する。",
                  en + " A later version lists only what changes, merged into the previous "
                  "version's.")


class Strict(BaseModel):
    """Base of every rule-file model: unknown fields are errors, values are frozen."""

    # Numbers become strings where a string is expected: staff may write a code unquoted.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Period(Strict):
    """Inclusive calendar days in JST."""

    model_config = _described("期間: from から to までの暦日（両日を含む、日本時間）。",
                              "Inclusive calendar days from 'from' to 'to' (JST).")

    from_: dt.date = Field(alias="from", description=_about(
        "開始日（この日を含む、例: 2022-01-01）。", "The first day, included (e.g. 2022-01-01)."))
    to: dt.date = Field(description=_about("終了日（この日を含む）。開始日より前にはできない。",
                                           "The last day, included; not before the first."))

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.to < self.from_:
            raise _refusal("model.period_reversed", to=str(self.to), start=str(self.from_))
        return self


class Partner(Strict):
    """A partner payment provider and, optionally, how many persons it may enrol."""

    model_config = _described("連携する決済事業者と、割り当てる対象者数（任意）。",
                              "A partner provider and, optionally, how many persons it may "
                              "enrol.")

    provider: str = Field(description=_about("決済事業者のID（providers.yaml の id）。",
                                             "The provider's id (an id of providers.yaml)."))
    persons: Count | None = Field(None, description=_about(
        "この事業者に割り当てる対象者数（先着順）。超えた人は理由を記録して対象外。",
        "How many target persons this provider may enrol, first come, first served; past it a "
        "person is refused with the reason."))


class Restriction(Strict):
    """Whom and where: the two axes of the seeds' A-D classification."""

    model_config = _described(
        "対象者と対象店舗の制限（類型 A: 制限なし、B: 店舗、C: 住民、D: 両方）。",
        "Whom and where (type A: no restriction, B: stores, C: residents, D: both).")

    persons: Literal["anyone", "residents"] = Field("anyone", description=_about(
        "anyone（だれでも）または residents（イベント時点で実施団体に住む住民）。",
        "anyone or residents (the person lives in the jurisdiction at the event's time)."))
    stores: Literal["anywhere", "in_region", "target_stores"] = Field("anywhere", description=(
        _about("anywhere（どこでも）、in_region（店舗またはチャージが実施団体の域内）、"
               "target_stores（target_stores に列挙した店舗）。",
               "anywhere, in_region (the store or charge is in the jurisdiction) or "
               "target_stores (the stores listed in target_stores).")))
    target_stores: tuple[str, ...] = Field((), description=_about(
        "対象店舗のIDの一覧。stores が target_stores のときだけ書く（空にはできない）。",
        "The target stores' ids: written only, and not empty, when stores is target_stores."))
    # Where the awarded points can be spent (利用用途): a local currency spendable only in the
    # region restricts stores too, which is how the seeds classify flat grants in town coins.
    points_usable: Literal["anywhere", "in_region"] = Field("anywhere", description=_about(
        "anywhere または in_region（地域通貨: 付与したポイントが域内でだけ使える）。",
        "anywhere or in_region (local currency: points spendable only in the region)."))

    @model_validator(mode="after")
    def _stores_listed(self) -> Restriction:
        if self.stores == "target_stores" and not self.target_stores:
            raise _refusal("model.no_target_stores")
        if self.stores != "target_stores" and self.target_stores:
            raise _refusal("model.target_stores_unused")
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

    model_config = _described("付与の条件: イベントの時点で、イベントと本人について判定する"
                              "（どれも任意）。",
                              "Conditions of an award, checked on the event and on the person "
                              "at the event's time (each optional).")

    period: Period | None = Field(None, description=_about(
        "イベントの日（日本時間）がこの期間 {from, to} の内にあること。",
        "The event's day (JST) must be within {from, to}."))
    application_period: Period | None = Field(None, description=_about(
        "本人のマイナポイント申込日がこの期間の内にあること。",
        "The person's Mynapoint application day must be within it."))
    card_applied_by: dt.date | None = Field(None, description=_about(
        "マイナンバーカードをこの日までに申請していること。",
        "The My Number card was applied for by this day."))
    exclude_phase1_applicants: StrictBool = Field(False, description=_about(
        "true: マイナポイント第1弾の申込者には付与しない。",
        "true: phase-1 applicants earn nothing."))
    min_age: Annotated[StrictInt, Field(ge=0, le=150)] | None = Field(None, description=_about(
        "イベントの日の最低年齢（0〜150 の整数）。"
        "申込で birth_date（生年月日）がない人は満たさない。",
        "An integer from 0 to 150: the least age on the event's day (a person whose "
        "application gave no birth_date fails it)."))
    registered: tuple[Registration, ...] = Field((), description=_about(
        "本人が済ませていなければならない登録: health_insurance（健康保険証利用登録）、"
        "public_funds_account（公金受取口座登録）。",
        "Registrations the person must have made: health_insurance, public_funds_account."))
    provider_basis: StrictBool = Field(False, description=_about(
        "true: 本人が選んだ決済事業者の付与基準（providers.yaml の basis: charge か "
        "purchase の一方。チャージして使ったお金に二重に付与しないため）で対象の取引を決める。"
        "on に purchase と charge の両方が必要。",
        "true: the chosen provider's basis (charge or purchase in providers.yaml: one of them, "
        "so that money charged and then spent earns once) decides which transactions count; "
        "on must list both purchase and charge."))


class Premium(Strict):
    """A premium: ``rate`` of each qualifying transaction, floored, up to ``cap`` per person."""

    model_config = _described(
        "プレミアム方式: 対象の取引ごとに金額 × rate（1円未満切り捨て）を、"
        "1人当たり cap まで付与する。契機は purchase、charge。",
        "A premium: floor(amount × rate) per transaction, at most cap per person; triggers "
        "purchase, charge.")

    kind: Literal["premium"] = Field(description=_about("付与方式: premium（プレミアム）。",
                                                        "The award's kind: premium."))
    rate: BasisPoints = Field(description=_about(
        "付与率（例: '25%'）。0% より大きく 100% 以下、小数は2桁まで。",
        "The premium rate, e.g. '25%': above 0% and at most 100%, up to two decimals."))
    cap: Yen = Field(description=_about(
        "1人当たりの上限（円）。上限を超える取引には残りの額だけを付与する。",
        "At most this many points (yen) per person; the transaction that crosses the cap "
        "earns the remainder."))


class Grant(Strict):
    """A flat amount, paid once per person on the first qualifying event."""

    model_config = _described("定額付与: 最初の対象イベントで1人1回、amount を付与する。"
                              "契機は問わない。",
                              "A flat amount, paid once per person on the first qualifying "
                              "event; any trigger.")

    kind: Literal["grant"] = Field(description=_about("付与方式: grant（定額付与）。",
                                                      "The award's kind: grant."))
    amount: Yen = Field(description=_about("付与する額（円、1人1回）。",
                                           "The amount (yen), once per person."))


class PerChild(Strict):
    """``amount`` for each child born within ``born`` (from the application's children)."""

    model_config = _described(
        "子ども1人当たりの給付: born の期間に生まれた子ども1人につき amount を、"
        "子ども1人1回付与する。契機は mynapoint_application。",
        "amount for each child born within born, once per child; trigger "
        "mynapoint_application.")

    kind: Literal["per_child"] = Field(description=_about(
        "付与方式: per_child（子ども1人当たり）。", "The award's kind: per_child."))
    amount: Yen = Field(description=_about("子ども1人当たりの額（円）。",
                                           "The amount (yen) per child."))
    born: Period = Field(description=_about(
        "対象となる子どもの出生期間 {from, to}。申込に世帯（household）があれば、"
        "世帯の子ども1人に1回（子どもは生年月日で区別する）。",
        "The range of the children's birth dates, {from, to}; with a household in the "
        "application, once per child of the household (children are told apart by birth "
        "date)."))


class PerActivity(Strict):
    """Points per participation, from a table keyed by activity id; optional cap per person."""

    model_config = _described(
        "活動参加ごとの付与: 参加のたびに活動ごとの表の額を付与する（1人当たり上限は任意）。"
        "契機は participation。",
        "Points per participation, from a table keyed by activity id; optional cap per person; "
        "trigger participation.")

    kind: Literal["per_activity"] = Field(description=_about(
        "付与方式: per_activity（活動参加ごと）。", "The award's kind: per_activity."))
    points: dict[str, Yen] = Field(description=_about(
        "活動ごとの付与額（円）の表: {活動ID: 額}。",
        "The points (yen) per activity: {activity: yen}."))
    cap: Yen | None = Field(None, description=_about("1人当たりの上限（円、任意）。",
                                                     "At most this many points per person "
                                                     "(optional)."))


class Lottery(Strict):
    """Persons whose health points reach ``threshold`` enter; ``winners`` drawn with ``seed``."""

    model_config = _described(
        "抽選: lottery_draw のとき、健康ポイント（health_points）が threshold に達した人から"
        " winners 人を seed で抽選し、amount を付与する（同じ seed なら同じ結果）。"
        "契機は participation、lottery_draw。",
        "On lottery_draw: amount to each of winners persons among those whose health_points "
        "reached threshold, drawn reproducibly with seed; triggers participation, lottery_draw.")

    kind: Literal["lottery"] = Field(description=_about("付与方式: lottery（抽選）。",
                                                        "The award's kind: lottery."))
    threshold: Count = Field(description=_about("抽選に参加できる健康ポイントの下限。",
                                                "The health points a person needs to enter."))
    winners: Count = Field(description=_about("当選者の人数。", "How many persons win."))
    amount: Yen = Field(description=_about("当選者1人当たりの額（円）。",
                                           "The amount (yen) per winner."))
    seed: str = Field(description=_about("抽選の再現に使う文字列（同じ seed なら同じ当選者）。",
                                         "The draw's seed: the same seed draws the same "
                                         "winners."))


Award = Annotated[Premium | Grant | PerChild | PerActivity | Lottery, Field(discriminator="kind")]


class Budget(Strict):
    """A program's total budget, in yen and/or in persons reached."""

    model_config = _described("事業の予算（金額と/または人数）。",
                              "A program's total budget, in yen and/or in persons reached.")

    yen: Yen | None = Field(None, description=_about(
        "予算額（円）。使い切るときは、その付与に残額を付与し、以後は付与しない。",
        "The budget in yen: the award that crosses it gets the remainder, later ones nothing."))
    persons: Count | None = Field(None, description=_about(
        "対象者数の上限。超えた新たな対象者には付与しない。",
        "The most persons reached: past it, new persons get nothing."))


class PersonTotal(Strict):
    """A cap shared by several programs for one person (national phase 2: 20,000)."""

    model_config = _described("複数の事業で共有する1人当たりの上限（国の第2弾: 20,000円）。",
                              "A cap shared by several programs for one person (national "
                              "phase 2: 20,000).")

    group: str = Field(description=_about("上限を共有する事業グループの名前。",
                                          "The name of the group of programs sharing the cap."))
    cap: Yen = Field(description=_about("グループ全体での1人当たりの上限（円）。",
                                        "At most this many points (yen) per person over the "
                                        "group."))


class PeriodCap(Strict):
    """At most ``cap`` points per person from the program in each calendar ``per`` (JST),
    on top of the award's own cap per person: ``{per: month, cap: 2000}``."""

    model_config = _described(
        "期間ごとの上限: 暦の per（日本時間）ごとに、この事業から1人当たり cap まで"
        "（例: {per: month, cap: 2000}）。",
        "At most cap points per person from the program in each calendar per (JST), e.g. "
        "{per: month, cap: 2000}.")

    per: Literal["month"] = Field(description=_about(
        "期間: month（暦月。午前0時30分の購入は新しい月に数える）。",
        "The period: month (calendar months, JST: a purchase at 00:30 on the 1st counts in the "
        "new month)."))
    cap: Yen = Field(description=_about("期間ごとの1人当たりの上限（円）。",
                                        "At most this many points (yen) per person in each "
                                        "period."))


class VersionChange(Strict):
    """A later version: what changed, and from when."""

    model_config = _described(
        "後の版: version、effective_from、note と、変更する項目だけを書く"
        "（id、jurisdiction、assumptions は変えられない）。",
        "A later version: its version, effective_from and note, and only what changes (id, "
        "jurisdiction and assumptions cannot change).")

    version: Annotated[StrictInt, Field(ge=2)] = Field(description=_about(
        "この版の番号（前の版の次の番号、2 から）。", "The next version number, from 2."))
    effective_from: AwareDatetime = Field(description=_about(
        "この版を適用する日時（時差付き、例: 2022-10-01T00:00:00+09:00）。前の版より後。"
        "この日時以降のイベントはこの版で、それより前のイベントは前の版で判定する。",
        "When this version takes effect, a time with its offset (e.g. "
        "2022-10-01T00:00:00+09:00), later than the previous version's: events at or after it "
        "are decided by this version, earlier ones by the previous."))
    note: str = Field(description=_about("この版で何を変えたかのメモ（必須）。",
                                         "What this version changed (required)."))
    name: str | None = Field(None, description=_about(*_NAME))
    phase: Literal[1, 2] | None = Field(None, description=_about(*_PHASE))
    on: tuple[Trigger, ...] | None = Field(None, description=_about(*_ON))
    restriction: dict[str, Any] | None = Field(None, description=_changed(_RESTRICTION))
    providers: tuple[Partner, ...] | None = Field(None, description=_about(*_PROVIDERS))
    conditions: dict[str, Any] | None = Field(None, description=_changed(_CONDITIONS))
    award: dict[str, Any] | None = Field(None, description=_about(
        "付与方式の変更。同じ kind なら変更する項目だけ（award: {cap: 3000} は率を引き継ぐ）。"
        "別の kind にするときは、その方式の項目をすべて書く。",
        "The award's change: of the same kind, only what changes (award: {cap: 3000} keeps the "
        "rate); of another kind, every field of that kind."))
    budget: dict[str, Any] | None = Field(None, description=_changed(_BUDGET))
    person_total: dict[str, Any] | None = Field(None, description=_changed(_PERSON_TOTAL))
    period_caps: tuple[PeriodCap, ...] | None = Field(None, description=_about(*_PERIOD_CAPS))


class ProgramVersion(Strict):
    """One fully merged, validated version of a program: everything the engine needs."""

    model_config = _described("事業の1つの版（後の版の変更を反映したもの）。",
                              "One fully merged version of a program.")

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{1,62}$", description=_about(*_ID))]
    name: str = Field(description=_about(*_NAME))
    jurisdiction: str = Field(description=_about(*_JURISDICTION))
    version: Annotated[StrictInt, Field(ge=1)] = Field(1, description=_about(*_VERSION))
    effective_from: AwareDatetime | None = Field(None, description=_about(*_EFFECTIVE_FROM))
    note: str | None = Field(None, description=_about(*_NOTE))
    phase: Literal[1, 2] = Field(2, description=_about(*_PHASE))
    on: Annotated[tuple[Trigger, ...], Field(min_length=1, description=_about(*_ON))]
    restriction: Restriction = Field(Restriction(), description=_about(*_RESTRICTION))
    providers: tuple[Partner, ...] = Field((), description=_about(*_PROVIDERS))
    conditions: Conditions = Field(Conditions(), description=_about(*_CONDITIONS))
    award: Award = Field(description=_about(*_AWARD))
    budget: Budget | None = Field(None, description=_about(*_BUDGET))
    person_total: PersonTotal | None = Field(None, description=_about(*_PERSON_TOTAL))
    period_caps: tuple[PeriodCap, ...] = Field((), description=_about(*_PERIOD_CAPS))
    assumptions: str | None = Field(None, description=_about(*_ASSUMPTIONS))

    @model_validator(mode="after")
    def _one_cap_per_period(self) -> ProgramVersion:
        periods = [c.per for c in self.period_caps]
        if len(periods) != len(set(periods)):
            raise _refusal("model.period_cap_twice")
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

    model_config = ConfigDict(
        title=_about("ポイント事業の規則ファイル", "A point program's rule file"),
        json_schema_extra={"description": _about(
            "rules/ の下の1つの YAML ファイルが1つの事業を表す。ファイルの本体が版 1、"
            "versions の各項目が後の版。書き方は docs/rules.ja.md。",
            "One YAML file under rules/ is one program: the file's body is version 1, each "
            "entry of versions a later version. How to write one: docs/rules.md.")})

    versions: tuple[VersionChange, ...] = Field((), description=_about(
        "後の版の一覧。事業は版を追加して変え、過去の版は書き換えない。",
        "Later versions: a program changes by appending a version, never by editing the past."))


def _one_basis(value: object) -> object:
    if value == "both":
        # counting both would pay twice for money charged and then spent
        raise _refusal("model.both_bases")
    return value


class Provider(Strict):
    """A payment provider: its kind, and whether premiums count its charges or its purchases
    (one of them: money charged and then spent must earn once)."""

    model_config = _described(
        "決済事業者: 種類と、プレミアムの対象をチャージとお買い物のどちらにするか"
        "（一方だけ: チャージして使ったお金に二重に付与しないため）。",
        "A payment provider: its kind, and whether premiums count its charges or its purchases "
        "(one of them: money charged and then spent must earn once).")

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{1,62}$", description=_about(
        "決済事業者のID（事業の providers で使う）。英小文字・数字・'-' の2〜63文字。",
        "The provider's id, as programs' providers name it: 2-63 lowercase letters, digits "
        "and '-'."))]
    name: str = Field(description=_about("決済事業者・サービスの名称。",
                                         "The provider's or service's name."))
    kind: Literal[
        "qr_code", "prepaid_emoney", "credit_card", "carrier", "local_currency", "debit"
    ] = Field(description=_about(
        "種類: qr_code（QRコード決済）、prepaid_emoney（プリペイド型電子マネー）、credit_card"
        "（クレジットカード）、carrier（キャリア決済）、local_currency（地域通貨）、"
        "debit（デビットカード）。",
        "The kind: qr_code, prepaid_emoney, credit_card, carrier, local_currency, debit."))
    basis: Annotated[Literal["charge", "purchase"], BeforeValidator(_one_basis)] = Field(
        description=_about(
            "プレミアムの対象: charge（チャージ）または purchase（お買い物）の一方。",
            "What premiums count: charge or purchase, one of them."))


class ProviderList(Strict):
    """``rules/providers.yaml``: every payment provider the programs may name."""

    model_config = ConfigDict(
        title=_about("決済事業者の一覧", "The payment providers"),
        json_schema_extra={"description": _about(
            "rules/providers.yaml: 事業が指定できるすべての決済事業者。",
            "rules/providers.yaml: every payment provider the programs may name.")})

    providers: tuple[Provider, ...] = Field(description=_about(
        "決済事業者の一覧（各 {id, name, kind, basis}）。",
        "The providers, each {id, name, kind, basis}."))


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
