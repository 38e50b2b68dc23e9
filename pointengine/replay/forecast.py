"""A forecast scaled to a jurisdiction's real size: whom a program concerns, the scaling, the
period check, the series for charts, the CSV files, and the words for all of it.

``pointengine simulate`` (:mod:`pointengine.replay.simulate`) simulates a sample of the
population a program concerns and scales the figures to that population's real size:

- **Whom a program concerns** (:func:`concerned`): a national program, or one open to anyone
  anywhere, concerns the country; a residents-only program the residents of its jurisdiction;
  a program open to anyone at the jurisdiction's stores (or paying points usable only there)
  the residents of the jurisdiction's prefecture, who shop there as residents or visitors (80%
  of a synthetic person's purchases are in their own municipality, 12% elsewhere in their
  prefecture, 8% anywhere in Japan: visitors from other prefectures are left out). The
  population is the seeds' figure (``pointengine/synth/data/SOURCE.md``), or the estimate
  :func:`pointengine.synth.population.load_units` spreads where the seeds give none.
- **Scaling** (:class:`Scale`): the sample is a uniform draw of that population, so every
  simulated person stands for ``population / sample`` persons. The program's budget (in yen and
  in persons), its providers' allocations and a lottery's winners are scaled down by the
  sample's share before the run, so the budget runs out on the day it would for the whole
  population; the sample's points and persons are scaled back up. Rounding is to the nearest
  yen or person, halves up; a day's points are differences of rounded cumulative points and
  the providers' points are shared out by largest remainder, so both add up to the total;
  nothing is scaled above the budget.
- **Period check** (:func:`period_warnings`): the program's period, application window and
  versions against the stream's period.

Every sentence for staff is a :class:`~pointengine.i18n.Text` of :data:`TABLE`, in Japanese
and in English.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from pointengine.catalog.loading import Catalog, Program
from pointengine.catalog.programs import Budget, Lottery, Period, ProgramVersion
from pointengine.i18n import Lang, Table, Text, say
from pointengine.model.jst import JST
from pointengine.model.ledger import LedgerEntry
from pointengine.model.municipalities import registry
from pointengine.synth.generate import WINDOW, Activities
from pointengine.synth.population import (
    DEFAULT_APPLY_GIVEN_CARD,
    Population,
    to_date,
)

Scope = Literal["residents", "residents_and_visitors", "anyone", "national"]
Source = Literal["seed", "spread", "sum"]

SYNTHETIC_PERIOD = (to_date(WINDOW[0]), to_date(WINDOW[1]))
"""The days the generated stream covers (a few phase-1 and March 2023 events lie outside)."""
POPULATION_AS_OF = "2022-01-01"
"""The date of the seeds' populations (SOURCE.md §1)."""
FEW_RESIDENTS = 100
"""Below this many residents of the jurisdiction in a sample, the figures are too uncertain."""

TABLE: Table = {
    # the printout
    "title_program": {"en": "proposed program", "ja": "提案された事業"},
    "col_program": {"en": "program", "ja": "事業"},
    "col_jurisdiction": {"en": "jurisdiction", "ja": "実施主体"},
    "col_type": {"en": "type", "ja": "類型"},
    "col_versions": {"en": "versions", "ja": "版"},
    "title_summary": {"en": "over {events} simulated events",
                      "ja": "模擬イベント{events}件による予測"},
    "col_figure": {"en": "figure", "ja": "項目"},
    "col_value": {"en": "value", "ja": "値"},
    "population_concerned": {"en": "population concerned", "ja": "対象人口"},
    "population_value": {"en": "{population} ({area})", "ja": "{population}人（{area}）"},
    "sample": {"en": "simulated persons", "ja": "模擬人数"},
    "scale_factor": {"en": "scale factor", "ja": "拡大率"},
    "scale_value": {"en": "x {factor}", "ja": "{factor}倍"},
    "persons_reached": {"en": "persons reached", "ja": "到達人数"},
    "reached_value": {"en": "{persons} ({share} of the population concerned)",
                      "ja": "{persons}人（対象人口の{share}）"},
    "points_paid": {"en": "points paid (yen)", "ja": "付与ポイント（円）"},
    "points_value": {"en": "{points} ({share} of the budget)", "ja": "{points}（予算の{share}）"},
    "budget": {"en": "budget", "ja": "予算"},
    "budget_yen": {"en": "{yen} yen", "ja": "{yen}円"},
    "budget_persons": {"en": "{persons} persons", "ja": "{persons}人"},
    "and": {"en": " and ", "ja": "、"},
    "none": {"en": "none", "ja": "なし"},
    "runs_out": {"en": "budget runs out on", "ja": "予算が尽きる日"},
    "does_not_run_out": {"en": "does not run out", "ja": "期間内に尽きない"},
    "limited": {"en": "claims limited by {label}", "ja": "{label}で減額・不付与となった請求"},
    "limit_person_cap": {"en": "person cap", "ja": "1人あたり上限"},
    "limit_person_cap_per": {"en": "person cap per {per}", "ja": "1人あたり期間上限（{per}）"},
    "limit_group": {"en": "{group} total per person", "ja": "{group}の1人あたり合計上限"},
    "limit_budget": {"en": "program budget", "ja": "事業予算"},
    "limit_budget_persons": {"en": "program budget in persons", "ja": "事業予算（人数）"},
    "limit_allocation": {"en": "{provider}'s allocation of persons",
                         "ja": "{provider}の人数枠"},
    "title_providers": {"en": "per provider", "ja": "決済事業者別"},
    "col_provider": {"en": "provider", "ja": "決済事業者"},
    "col_provider_name": {"en": "name", "ja": "名称"},
    "col_persons": {"en": "persons", "ja": "人数"},
    "col_points": {"en": "points (yen)", "ja": "ポイント（円）"},
    "col_share": {"en": "share of points", "ja": "ポイントの割合"},
    "total": {"en": "total", "ja": "合計"},
    "title_days": {"en": "per day", "ja": "日別"},
    "title_months": {"en": "per month (--json and --csv list every day)",
                     "ja": "月別（日別は --json または --csv で出力）"},
    "col_day": {"en": "day", "ja": "日付"},
    "col_month": {"en": "month", "ja": "月"},
    "col_days_with_awards": {"en": "days with awards", "ja": "付与のあった日数"},
    "col_cumulative": {"en": "cumulative points (yen)", "ja": "累計ポイント（円）"},
    "col_budget_left": {"en": "budget left (yen)", "ja": "予算残額（円）"},
    "col_persons_reached": {"en": "persons reached (cumulative)", "ja": "到達人数（累計）"},
    "col_budget_persons_left": {"en": "budget left (persons)", "ja": "予算残り（人数）"},
    "title_assumptions": {"en": "assumptions", "ja": "前提"},
    "warning": {"en": "warning: {text}", "ja": "注意: {text}"},
    "csv_written": {"en": "wrote {files} to {folder}", "ja": "{folder} に {files} を出力しました"},
    "row_program_name": {"en": "program name", "ja": "事業名"},
    "row_sample_budget": {"en": "the sample's budget (yen)", "ja": "標本の予算（円）"},
    "row_assumption": {"en": "assumption", "ja": "前提"},
    "row_warning": {"en": "warning", "ja": "注意"},
    "national": {"en": "Japan", "ja": "全国"},
    # assumptions
    "a_sample": {
        "en": "{sample} simulated persons stand for the {population} persons of {area} "
              "(scale factor {factor}: each simulated person stands for {factor} persons).",
        "ja": "{area}の{population}人を模擬標本{sample}人で代表させた（拡大率{factor}倍："
              "標本1人が{factor}人に相当）。"},
    "a_scope_residents": {
        "en": "Population concerned: the residents of {area} (a program for residents only); "
              "every simulated person lives there.",
        "ja": "対象人口：{area}の住民（住民限定の事業）。模擬標本は全員が{area}の住民。"},
    "a_scope_visitors": {
        "en": "Population concerned: the residents of {area}, who may shop in {jurisdiction} "
              "as residents or visitors (80% of a person's purchases are in their own "
              "municipality, 12% elsewhere in their prefecture); visitors from other "
              "prefectures (8% of purchases, anywhere in Japan) are left out. About {residents} "
              "of the simulated persons live in {jurisdiction}.",
        "ja": "対象人口：{jurisdiction}で住民または来訪者として買い物をしうる{area}の住民"
              "（各人の買い物の80%は居住市町村内、12%は同じ都道府県内）。他の都道府県からの"
              "来訪者（買い物の8%、全国の店舗）は含まない。模擬標本のうち{jurisdiction}の住民は"
              "約{residents}人。"},
    "a_scope_anyone": {
        "en": "Population concerned: the whole country (the program is open to anyone, at any "
              "store).",
        "ja": "対象人口：全国（誰でも、どの店舗でも対象となる事業）。"},
    "a_scope_national": {
        "en": "Population concerned: the whole country (a national program).",
        "ja": "対象人口：全国（国の事業）。"},
    "a_population_seed": {
        "en": "Population of {area}: {population} as of {as_of}, the figure of 総務省's table "
              "of My Number card applications (pointengine/synth/data/SOURCE.md).",
        "ja": "{area}の人口{population}人は{as_of}時点、総務省資料（マイナンバーカードの申請・"
              "交付状況）の数値（pointengine/synth/data/SOURCE.md）。"},
    "a_population_spread": {
        "en": "Population of {area}: {population}, an estimate: the seeds give no figure for "
              "it, so the population of its prefecture (as of {as_of}) less that of the listed "
              "cities is spread over the other municipalities by kind (a city weighs 80,076, a "
              "town or village 11,820).",
        "ja": "{area}の人口{population}人は推計値：資料に数値がないため、都道府県の人口"
              "（{as_of}時点）から掲載市の人口を除いた分を、市町村の種類別の重み（市80,076、"
              "町村11,820）で按分した。"},
    "a_population_sum": {
        "en": "Population of the country: {population}, the sum of the 47 prefectures as of "
              "{as_of} (総務省's table).",
        "ja": "全国の人口{population}人は47都道府県の人口（{as_of}時点、総務省資料）の合計。"},
    "a_rates": {
        "en": "My Number card application rate {card_rate} (end of December 2022, weighted by "
              "population over {area}); Mynapoint application by card applicants "
              "{apply_rate} (synthetic: the national ratio of April 2022).",
        "ja": "マイナンバーカード申請率{card_rate}（2022年12月末時点、{area}の人口加重平均）。"
              "カード申請者のマイナポイント申込率{apply_rate}（合成値：2022年4月の全国比）。"},
    "a_events": {
        "en": "{events} events in the sample: {per_person} per simulated person, {per_applier} "
              "per person who applied for Mynapoint ({appliers} of them); transactions follow "
              "the applications month by month.",
        "ja": "模擬イベント{events}件：標本1人あたり{per_person}件、マイナポイント申込者"
              "（{appliers}人）1人あたり{per_applier}件。取引は月ごとの申込数に応じて配分。"},
    "a_events_cut": {
        "en": "The population concerned is smaller than the {persons} persons asked for: all "
              "{sample} are simulated, with the events cut in the same proportion.",
        "ja": "対象人口が指定の{persons}人より少ないため全員の{sample}人を模擬し、イベント数も"
              "同じ割合で減らした。"},
    "a_stream_period": {
        "en": "Synthetic stream: {first} to {last} (outside it only the phase-1 applicants' "
              "transactions of 2020-09 to 2021-12, 0.2% of the events, and 0.2% in March "
              "2023); it is not generated over the program's own period.",
        "ja": "合成データの期間：{first}〜{last}（期間外は第1弾申込者の2020年9月〜2021年12月の"
              "取引（全体の0.2%）と2023年3月の取引（0.2%）のみ）。事業の期間に合わせた生成は"
              "行っていない。"},
    "a_seed": {
        "en": "Seed {seed}: the same arguments give the same figures.",
        "ja": "乱数シード{seed}：同じ引数なら同じ結果になる。"},
    "a_budget_scaled": {
        "en": "The sample's budget is the budget times the sample's share, rounded to the "
              "nearest yen (halves up, at least 1): {sample_budget} yen for {budget} yen, so "
              "that it runs out on the day the whole budget would.",
        "ja": "標本の予算は予算×標本の割合（1円未満四捨五入、最低1円）：予算{budget}円に対し"
              "{sample_budget}円。これにより予算が尽きる日は全体の場合と同じになる。"},
    "a_budget_persons_scaled": {
        "en": "The budget of {budget} persons becomes {sample_budget} in the sample (the same "
              "share, halves up, at least 1).",
        "ja": "人数の予算{budget}人は標本では{sample_budget}人（同じ割合、四捨五入、最低1人）。"},
    "a_allocation_scaled": {
        "en": "{provider}'s allocation of {budget} persons becomes {sample_budget} in the "
              "sample.",
        "ja": "{provider}の人数枠{budget}人は標本では{sample_budget}人。"},
    "a_winners_scaled": {
        "en": "The lottery's {winners} winners become {sample_winners} in the sample.",
        "ja": "抽選の当選者{winners}人は標本では{sample_winners}人。"},
    "a_rounding": {
        "en": "Figures are the sample's times {factor}, rounded to the nearest yen or person "
              "(halves up) and never above the budget (the sample's budget spent whole is the "
              "budget spent whole); a day's points are the difference of rounded cumulative "
              "points and the providers' points are shared out by largest remainder, so both "
              "add up to the total.",
        "ja": "結果は標本の値×{factor}を1円（1人）単位で四捨五入し、予算を超えない値とした"
              "（標本の予算を使い切った場合は予算全額を使い切ったものとする）。"
              "日別ポイントは四捨五入後の累計の差、決済事業者別ポイントは最大剰余法で配分して"
              "おり、いずれも合計と一致する。"},
    "a_activities": {
        "en": "Participation: {active} of the residents who applied take part, in {share} of "
              "the transaction slots (activities: {names}).",
        "ja": "参加イベント：申込者である住民の{active}が参加し、取引枠の{share}を参加に充てた"
              "（活動：{names}）。"},
    "a_draw": {
        "en": "The lottery is drawn at {at}, when every participation is in.",
        "ja": "抽選は参加がすべて揃った{at}に実施。"},
    "a_events_file": {
        "en": "The events file {file} is replayed as it is: the figures are not scaled.",
        "ja": "イベントファイル{file}をそのまま再生した（拡大なし）。"},
    # warnings
    "w_period_outside": {
        "en": "The program's period {first} to {last} lies wholly outside the stream's period "
              "{stream_first} to {stream_last}: the forecast shows little or nothing of it.",
        "ja": "事業の期間（{first}〜{last}）はデータの期間（{stream_first}〜{stream_last}）の"
              "外にあるため、予測にはほとんど反映されません。"},
    "w_period_partly": {
        "en": "The program's period {first} to {last} lies partly outside the stream's period "
              "{stream_first} to {stream_last}: {outside} of its {days} days are not "
              "simulated.",
        "ja": "事業の期間（{first}〜{last}）の一部がデータの期間（{stream_first}〜"
              "{stream_last}）の外にあり、{days}日のうち{outside}日は予測に含まれません。"},
    "w_application_outside": {
        "en": "The application window {first} to {last} lies wholly outside the stream's "
              "period {stream_first} to {stream_last}: hardly anyone in it applied then.",
        "ja": "申込期間（{first}〜{last}）はデータの期間（{stream_first}〜{stream_last}）の外に"
              "あるため、該当する申込者はほとんどいません。"},
    "w_application_partly": {
        "en": "The application window {first} to {last} lies partly outside the stream's "
              "period {stream_first} to {stream_last}: {outside} of its {days} days are not "
              "simulated.",
        "ja": "申込期間（{first}〜{last}）の一部がデータの期間（{stream_first}〜"
              "{stream_last}）の外にあり、{days}日のうち{outside}日は予測に含まれません。"},
    "w_version_after": {
        "en": "Version {version} takes effect on {effective_from}, after the stream's period "
              "{stream_first} to {stream_last}: it is not simulated.",
        "ja": "第{version}版の適用開始日（{effective_from}）はデータの期間（{stream_first}〜"
              "{stream_last}）より後のため、予測に含まれません。"},
    "w_version_before": {
        "en": "Version {version} is replaced on {replaced_on}, before the stream's period "
              "{stream_first} to {stream_last}: it is not simulated.",
        "ja": "第{version}版は{replaced_on}に次の版に替わり、データの期間（{stream_first}〜"
              "{stream_last}）には適用されないため、予測に含まれません。"},
    "w_few_residents": {
        "en": "The sample holds only about {residents} residents of {jurisdiction}: the "
              "figures are uncertain; simulate more persons (--persons).",
        "ja": "模擬標本に含まれる{jurisdiction}の住民は約{residents}人のみで、結果の不確かさが"
              "大きくなります。模擬人数（--persons）を増やしてください。"},
    "w_no_trigger": {
        "en": "The stream has no {types} events (pass --events-file with such events).",
        "ja": "データに{types}のイベントがありません（該当するイベントを含むファイルを "
              "--events-file で指定してください）。"},
}


def text(code: str, **args: object) -> Text:
    """A :class:`Text` of :data:`TABLE` (``KeyError`` for a code it lacks, at once)."""
    if code not in TABLE:
        raise KeyError(code)
    return Text(code, args)


def render(item: Text, lang: Lang) -> str:
    """``item`` in ``lang``; an argument that is itself a :class:`Text` (a name that differs
    between languages, such as the country's) is rendered in ``lang`` first."""
    args = {k: render(v, lang) if isinstance(v, Text) else v for k, v in item.args.items()}
    return say(TABLE, Text(item.code, args), lang)


def rendered(item: Text) -> dict[str, object]:
    """``item`` as JSON: its code, its arguments and both renderings."""
    return {"code": item.code, "args": dict(item.args), "ja": render(item, "ja"),
            "en": render(item, "en")}


# --- whom a program concerns ---------------------------------------------------------------


@dataclass(frozen=True)
class Concerned:
    """The population a program concerns, the area its sample is drawn from, and its facts.

    ``area`` is a local government code (or ``national``) suitable for
    :func:`pointengine.synth.generate.generate`'s ``residents_of``; ``jurisdiction_population``
    is the jurisdiction's own (the same as ``population`` unless the area is wider).
    """

    scope: Scope
    area: str
    area_name: str | Text
    population: int
    source: Source
    card_rate: Fraction
    apply_given_card: Fraction
    jurisdiction_population: int
    jurisdiction_source: Source

    @property
    def residents_of(self) -> tuple[str, ...]:
        """The generator's ``residents_of`` for this area (none for the country)."""
        return () if self.area == "national" else (self.area,)


def place_name(code: str) -> str | Text:
    """A code's name as staff write it (``北海道札幌市``), or the code when unknown; the
    country's is a :class:`Text` (全国, Japan)."""
    if code == "national":
        return text("national")
    return registry().label_of(code)


def _units(pop: Population, code: str) -> list[int]:
    """The unit indexes of a code: the municipality, or every one of a prefecture."""
    if code in pop.index:
        return [pop.index[code]]
    codes = registry()
    if code in codes and codes.get(code).kind == "prefecture":
        return list(pop.pref_units.get(code[:2], ()))
    if code in codes:  # a designated-city ward: its city is the local government
        parent = codes.local_government_of(code)
        if parent in pop.index:
            return [pop.index[parent]]
    return []


def _facts(pop: Population, units: Sequence[int]) -> tuple[int, Fraction, Fraction, Source]:
    """Population, population-weighted card and application rates, and the population's
    source: the seeds' own figure for a listed city or a prefecture, else the estimate."""
    people = sum(pop.units[i].population for i in units)
    if people <= 0:
        return 0, Fraction(0), Fraction(DEFAULT_APPLY_GIVEN_CARD), "spread"
    cards = sum((Fraction(pop.units[i].card_rate) * pop.units[i].population for i in units),
                Fraction(0))
    applies = sum((Fraction(pop.units[i].card_rate) * pop.units[i].population
                   * Fraction(pop.units[i].apply_given_card) for i in units), Fraction(0))
    source: Source = "seed" if len(units) > 1 or pop.units[units[0]].listed else "spread"
    apply = applies / cards if cards else Fraction(DEFAULT_APPLY_GIVEN_CARD)
    return people, cards / people, apply, source


def concerned(version: ProgramVersion, pop: Population) -> Concerned:
    """Whom ``version`` concerns (see the module): the country, the jurisdiction's residents,
    or the residents of the jurisdiction's prefecture for a program open to anyone at its
    stores. ``ValueError`` for a jurisdiction the population has no municipality of."""
    jurisdiction = version.jurisdiction
    restriction = version.restriction
    everyone = list(range(len(pop.units)))
    if jurisdiction == "national":
        people, card, apply, _ = _facts(pop, everyone)
        return Concerned("national", "national", place_name("national"), people, "sum", card,
                         apply, people, "sum")
    own = _units(pop, jurisdiction)
    if not own:
        raise ValueError(f"no municipality of the synthetic population is in {jurisdiction}")
    own_people, card, apply, own_source = _facts(pop, own)
    name = place_name(jurisdiction)
    if restriction.persons == "residents":
        return Concerned("residents", jurisdiction, name, own_people, own_source, card, apply,
                         own_people, own_source)
    if version.type_letter == "B":
        prefecture = registry().prefecture_of(jurisdiction)
        people, card, apply, source = _facts(pop, _units(pop, prefecture))
        return Concerned("residents_and_visitors", prefecture, place_name(prefecture), people,
                         source, card, apply, own_people, own_source)
    people, card, apply, _ = _facts(pop, everyone)
    return Concerned("anyone", "national", place_name("national"), people, "sum", card, apply,
                     own_people, own_source)


# --- scaling -------------------------------------------------------------------------------


def _half_up(value: Fraction) -> int:
    """``value`` rounded to the nearest integer, halves up (towards +infinity)."""
    return int((value + Fraction(1, 2)).__floor__())


@dataclass(frozen=True)
class Scale:
    """A sample of ``sample`` persons standing for ``population`` persons."""

    population: int
    sample: int

    def __post_init__(self) -> None:
        if self.sample < 1 or self.population < self.sample:
            raise ValueError(f"a sample of {self.sample} cannot stand for {self.population}")

    @property
    def factor(self) -> Fraction:
        """Persons each simulated person stands for."""
        return Fraction(self.population, self.sample)

    def factor_text(self) -> str:
        """The factor to two decimals (``98.03``), for people."""
        return f"{float(self.factor):,.2f}"

    def up(self, value: int) -> int:
        """A sample's figure for the whole population: times the factor, halves up."""
        return _half_up(value * self.factor)

    def down(self, value: int) -> int:
        """A whole-population count (a budget) for the sample: halves up, at least 1."""
        return max(1, _half_up(value / self.factor))


def scale_version(version: ProgramVersion, scale: Scale) -> ProgramVersion:
    """``version`` with its budget, allocations and lottery winners scaled down to the sample."""
    update: dict[str, object] = {}
    budget = version.budget
    if budget is not None:
        update["budget"] = Budget(
            yen=None if budget.yen is None else scale.down(budget.yen),
            persons=None if budget.persons is None else scale.down(budget.persons))
    if any(p.persons is not None for p in version.providers):
        update["providers"] = tuple(
            p if p.persons is None else p.model_copy(update={"persons": scale.down(p.persons)})
            for p in version.providers)
    if isinstance(version.award, Lottery):
        update["award"] = version.award.model_copy(
            update={"winners": scale.down(version.award.winners)})
    return version.model_copy(update=update) if update else version


def scaled_catalog(catalog: Catalog, program_id: str, scale: Scale) -> Catalog:
    """``catalog`` with ``program_id``'s every version scaled (:func:`scale_version`).

    Only the proposed program is scaled: the others are there for what they share with it
    (a person's total across a group of programs), which is per person and not scaled.
    """
    program = catalog.programs[program_id]
    scaled = Program(program.id, program.path,
                     [scale_version(v, scale) for v in program.versions])
    programs = {pid: scaled if pid == program_id else p for pid, p in catalog.programs.items()}
    # a copy with its own routing index (built anew from the programs), whatever else it holds
    return dataclasses.replace(catalog, programs=programs, warnings=list(catalog.warnings),
                               _index={})


def scaling_assumptions(program: Program, scale: Scale) -> list[Text]:
    """What :func:`scale_version` changed, in words (the newest version's figures)."""
    current = program.current
    said: list[Text] = []
    budget = current.budget
    if budget is not None and budget.yen is not None:
        said.append(text("a_budget_scaled", budget=f"{budget.yen:,}",
                         sample_budget=f"{scale.down(budget.yen):,}"))
    if budget is not None and budget.persons is not None:
        said.append(text("a_budget_persons_scaled", budget=f"{budget.persons:,}",
                         sample_budget=f"{scale.down(budget.persons):,}"))
    for partner in current.providers:
        if partner.persons is not None:
            said.append(text("a_allocation_scaled", provider=partner.provider,
                             budget=f"{partner.persons:,}",
                             sample_budget=f"{scale.down(partner.persons):,}"))
    if isinstance(current.award, Lottery):
        said.append(text("a_winners_scaled", winners=f"{current.award.winners:,}",
                         sample_winners=f"{scale.down(current.award.winners):,}"))
    return said


def persons_limit(version: ProgramVersion) -> int | None:
    """The most persons ``version`` can reach: its budget in persons, or a lottery's winners
    (None when neither limits them)."""
    limits = [version.budget.persons if version.budget else None,
              version.award.winners if isinstance(version.award, Lottery) else None]
    known = [n for n in limits if n is not None]
    return min(known) if known else None


def share_out(total: int, parts: Mapping[str, int]) -> dict[str, int]:
    """``total`` shared in proportion to ``parts`` by largest remainder: the shares add up to
    ``total`` exactly (ties go to the first key in order). Parts that add up to 0 get 0."""
    whole = sum(parts.values())
    if whole == 0:
        return dict.fromkeys(parts, 0)
    exact = {k: Fraction(total * v, whole) for k, v in parts.items()}
    shares = {k: int(x.__floor__()) for k, x in exact.items()}
    order = sorted(parts, key=lambda k: -(exact[k] - shares[k]))
    gap = total - sum(shares.values())
    for k in order[:gap]:
        shares[k] += 1
    return shares


def clip(value: int, limit: int | None) -> int:
    """``value``, never above ``limit`` (a budget) when there is one."""
    return value if limit is None else min(value, limit)


def scale_spent(spent: int, scale: Scale, budget: int | None, sample_budget: int | None) -> int:
    """Points the sample spent, for the whole population: scaled up and never above the
    budget; the sample's budget spent whole is the budget spent whole (its scaled-down value
    was rounded, so scaling it back up may miss the budget by a few yen)."""
    if budget is not None and sample_budget is not None and spent >= sample_budget:
        return budget
    return clip(scale.up(spent), budget)


# --- the period check ----------------------------------------------------------------------


def _span(period: Period) -> tuple[dt.date, dt.date]:
    return period.from_, period.to


def _overlap(first: dt.date, last: dt.date, lo: dt.date, hi: dt.date) -> int:
    """Days of ``first..last`` within ``lo..hi``."""
    return max(0, (min(last, hi) - max(first, lo)).days + 1)


def period_warnings(program: Program, stream_first: dt.date,
                    stream_last: dt.date) -> list[Text]:
    """Warnings when the program's periods, application windows or versions lie wholly or
    partly outside the stream's days ``stream_first..stream_last``."""
    said: list[Text] = []
    stream = {"stream_first": stream_first.isoformat(), "stream_last": stream_last.isoformat()}
    seen: set[tuple[str, dt.date, dt.date]] = set()
    for version in program.versions:
        windows = (("period", version.conditions.period),
                   ("application", version.conditions.application_period))
        for kind, period in windows:
            if period is None or (kind, *_span(period)) in seen:
                continue
            seen.add((kind, *_span(period)))
            first, last = _span(period)
            days = (last - first).days + 1
            inside = _overlap(first, last, stream_first, stream_last)
            args = {"first": first.isoformat(), "last": last.isoformat(), **stream}
            if inside == 0:
                said.append(text(f"w_{kind}_outside", **args))
            elif inside < days:
                said.append(text(f"w_{kind}_partly", **args, outside=f"{days - inside:,}",
                                 days=f"{days:,}"))
    starts = [s.astimezone(JST).date() for s in program.starts]
    for i, version in enumerate(program.versions):
        if version.effective_from is not None and starts[i] > stream_last:
            said.append(text("w_version_after", version=version.version,
                             effective_from=starts[i].isoformat(), **stream))
        elif i + 1 < len(starts) and starts[i + 1] <= stream_first:
            said.append(text("w_version_before", version=version.version,
                             replaced_on=starts[i + 1].isoformat(), **stream))
    return said


def active_span(program: Program) -> tuple[dt.date, dt.date] | None:
    """The days any version's period covers, or None when a version has no period."""
    periods = [v.conditions.period for v in program.versions]
    if any(p is None for p in periods):
        return None
    return (min(p.from_ for p in periods if p is not None),
            max(p.to for p in periods if p is not None))


def activity_assumptions(activities: Activities | None) -> list[Text]:
    """What the generated participations and lottery draws assume, in words."""
    if activities is None:
        return []
    said = [text("a_activities", active=percent(Fraction(activities.active_share)),
                 share=percent(Fraction(activities.share)), names=", ".join(activities.names))]
    said += [text("a_draw", at=at.isoformat()) for _, at in activities.draws]
    return said


def percent(share: Fraction | None) -> str:
    """A share as a percentage to one decimal (two below 0.1%), or ``-`` when unknown."""
    if share is None:
        return "-"
    value = float(share) * 100
    return f"{value:.2f}%" if 0 < abs(value) < 0.1 else f"{value:.1f}%"


# --- series for charts ---------------------------------------------------------------------


@dataclass
class Series:
    """Per day, for charts: every day from the first to the last, all in the whole population.

    ``points`` is the day's net points, ``cumulative_points`` their running total,
    ``budget_left`` the budget in yen less it (None without such a budget),
    ``persons_reached`` the persons with net points above 0 at the day's end, and
    ``budget_persons_left`` a budget in persons less the persons ever awarded.
    """

    days: list[str] = field(default_factory=list)
    points: list[int] = field(default_factory=list)
    cumulative_points: list[int] = field(default_factory=list)
    budget_left: list[int] | None = None
    persons_reached: list[int] = field(default_factory=list)
    budget_persons_left: list[int] | None = None


def entry_day(entry: LedgerEntry) -> dt.date:
    """The JST day of a ledger line."""
    return dt.datetime.fromisoformat(entry.at).astimezone(JST).date()


def day_series(entries: Iterable[LedgerEntry], first: dt.date | None, last: dt.date | None,
               scale: Scale, budget_yen: int | None, budget_persons: int | None,
               sample_budget: int | None = None, persons_limit: int | None = None) -> Series:
    """The :class:`Series` of one program's ledger lines (the sample's), scaled up.

    The days run from ``first`` to ``last``, widened to every day with a line; with neither
    and no line, there are none. Each day's cumulative figures are the sample's scaled up and
    clipped to the budget (:func:`scale_spent`, with the sample's budget ``sample_budget``),
    and a day's points the difference of two cumulative figures; persons are clipped to
    ``persons_limit`` (by default the budget in persons).
    """
    if persons_limit is None:
        persons_limit = budget_persons
    by_day: dict[dt.date, list[LedgerEntry]] = {}
    for entry in entries:
        by_day.setdefault(entry_day(entry), []).append(entry)
    if by_day:
        first = min(first or min(by_day), min(by_day))
        last = max(last or max(by_day), max(by_day))
    series = Series(budget_left=[] if budget_yen is not None else None,
                    budget_persons_left=[] if budget_persons is not None else None)
    if first is None or last is None or last < first:
        return series
    net: Counter[str] = Counter()
    awarded: set[str] = set()
    positive = 0
    spent = 0
    before = 0
    day = first
    while day <= last:
        for entry in by_day.get(day, ()):
            was = net[entry.person] > 0
            net[entry.person] += entry.points
            positive += (net[entry.person] > 0) - was
            spent += entry.points
            if entry.kind == "award" and entry.points > 0:
                awarded.add(entry.person)
        cumulative = scale_spent(spent, scale, budget_yen, sample_budget)
        series.days.append(day.isoformat())
        series.points.append(cumulative - before)
        series.cumulative_points.append(cumulative)
        series.persons_reached.append(clip(scale.up(positive), persons_limit))
        if series.budget_left is not None and budget_yen is not None:
            series.budget_left.append(max(0, budget_yen - cumulative))
        if series.budget_persons_left is not None and budget_persons is not None:
            series.budget_persons_left.append(
                max(0, budget_persons - clip(scale.up(len(awarded)), budget_persons)))
        before = cumulative
        day += dt.timedelta(days=1)
    return series


# --- CSV -----------------------------------------------------------------------------------


