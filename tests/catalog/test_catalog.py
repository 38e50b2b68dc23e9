"""Rule files: the shipped catalog validates; typos are located and explained."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pointengine.catalog.loading import load_catalog, routing_keys, rule_files
from pointengine.errors import RuleFileError
from tests.world import RULES


def test_every_shipped_rule_file_validates() -> None:
    catalog = load_catalog(RULES)
    assert "national-phase2-card" in catalog.programs
    assert [v.conditions.card_applied_by.isoformat()
            for v in catalog.programs["national-phase2-card"].versions
            if v.conditions.card_applied_by] == ["2022-09-30", "2022-12-31", "2023-02-28"]


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    root.mkdir()
    shutil.copy(RULES / "providers.yaml", root / "providers.yaml")
    return root


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


ATSUMA = """\
id: atsuma-premium
name: 厚真町 プレミアム
jurisdiction: 015814
on: [purchase]
restriction: {stores: in_region}
providers:
  - provider: paypay
award:
  kind: premium
  rate: 25%
  cap: 5000
"""


def problems(root: Path) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_catalog(root)
    return [str(p) for p in caught.value.problems]


def test_a_valid_municipal_file_loads(rules: Path) -> None:
    write(rules, "015814-atsuma/premium.yaml", ATSUMA)
    program = load_catalog(rules).programs["atsuma-premium"]
    assert program.current.type_letter == "B"
    assert program.current.award.kind == "premium"


def test_a_typo_names_file_line_field_and_suggests_the_fix(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml", ATSUMA.replace("  rate: 25%", "  rat: 25%"))
    assert problems(rules) == [
        f"{path}:10: award.rat: unknown field 'rat' (did you mean 'rate'?)",
    ]


def test_a_dedented_field_is_told_where_it_belongs_not_given_a_look_alike(rules: Path) -> None:
    text = ATSUMA + "conditions:\nperiod: {from: 2022-01-01, to: 2022-12-31}\n"
    path = write(rules, "015814-atsuma/premium.yaml", text)
    # not "did you mean 'version'?", and the empty 'conditions' is the same mistake
    assert problems(rules) == [
        f"{path}:13: period: unknown field 'period' here: it belongs under 'conditions'"]
    path.write_text(ATSUMA + "persons: residents\n", encoding="utf-8")
    assert problems(rules) == [
        f"{path}:12: persons: unknown field 'persons' here: it belongs under 'restriction',"
        " 'providers' or 'budget'"]
    path.write_text(ATSUMA + """versions:
  - version: 2
    effective_from: 2022-06-01T00:00:00+09:00
    note: moved
    jurisdiction: "015857"
""", encoding="utf-8")
    assert problems(rules) == [
        f"{path}:16: versions.0.jurisdiction: unknown field 'jurisdiction' here: it belongs at the"
        " top level of the file"]


def test_a_misspelt_trigger_is_one_problem(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml", ATSUMA.replace("[purchase]", "[purchse]"))
    [problem] = problems(rules)
    assert problem.startswith(f"{path}:4: on.0: invalid value 'purchse'")
    assert problem.endswith("(did you mean 'purchase'?)")


def test_an_unknown_municipality_code_is_located_with_a_suggestion(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml",
                 ATSUMA.replace("jurisdiction: 015814", "jurisdiction: 015815"))
    assert problems(rules) == [
        f"{path}:3: jurisdiction: unknown local government code 015815 (did you mean '015814'?)",
    ]


def test_an_unknown_provider_is_located_with_a_suggestion(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml",
                 ATSUMA.replace("provider: paypay", "provider: paypey"))
    assert problems(rules) == [
        f"{path}:7: providers.0.provider: unknown provider 'paypey' (did you mean 'paypay'?)",
    ]


def test_an_impossible_date_is_located(rules: Path) -> None:
    text = ATSUMA + "conditions:\n  period: {from: 2022-02-30, to: 2022-03-31}\n"
    path = write(rules, "015814-atsuma/premium.yaml", text)
    found = problems(rules)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:13: conditions.period.from: ")


def test_a_period_that_ends_before_it_starts_is_refused(rules: Path) -> None:
    text = ATSUMA + "conditions:\n  period: {from: 2022-03-01, to: 2022-02-01}\n"
    write(rules, "015814-atsuma/premium.yaml", text)
    assert "ends (2022-02-01) before it starts (2022-03-01)" in problems(rules)[0]


def test_a_float_rate_is_refused(rules: Path) -> None:
    write(rules, "015814-atsuma/premium.yaml", ATSUMA.replace("rate: 25%", "rate: 0.25"))
    assert "percentage string" in problems(rules)[0]


def test_a_bad_value_in_a_later_version_points_at_that_version(rules: Path) -> None:
    text = ATSUMA + """versions:
  - version: 2
    effective_from: 2021-01-01T00:00:00+09:00
    note: cap raised
    award: {cap: -1}
"""
    path = write(rules, "015814-atsuma/premium.yaml", text)
    found = problems(rules)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:16: versions.0.award.cap: ")


VERSIONS = """versions:
  - version: 2
    effective_from: 2022-04-01T00:00:00+09:00
    note: a longer period
    conditions: {perod: {from: 2022-01-01, to: 2022-12-31}}
  - version: 3
    effective_from: 2022-07-01T00:00:00+09:00
    note: a lower rate
    award: {rat: 10%}
  - version: 4
    effective_from: 2022-10-01T00:00:00+09:00
    note: charges too
    on: [purchase, charg]
"""


def test_every_version_s_problems_are_reported_where_they_are_written(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml", ATSUMA + VERSIONS)
    found = problems(rules)
    assert [p.split(": ")[0:2] for p in found] == [
        [f"{path}:16", "versions.0.conditions.perod"],
        [f"{path}:20", "versions.1.award.rat"],
        [f"{path}:24", "versions.2.on.1"],
    ]
    assert "(did you mean 'period'?)" in found[0] and "(did you mean 'rate'?)" in found[1]


def test_a_mistake_later_versions_inherit_is_reported_once_where_written(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml",
                 ATSUMA.replace("  cap: 5000", "  cap: -5") + VERSIONS.replace("perod", "period")
                 .replace("rat:", "rate:").replace("charg]", "charge]"))
    assert problems(rules) == [
        f"{path}:11: award.cap: Input should be greater than or equal to 1 (got -5)"]
    # the mistake made in a later version instead: placed there (version 4 inherits it)
    path.write_text(ATSUMA + VERSIONS.replace("perod", "period").replace("{rat: 10%}", "{cap: 0}")
                    .replace("charg]", "charge]"), encoding="utf-8")
    assert problems(rules) == [
        f"{path}:20: versions.1.award.cap: Input should be greater than or equal to 1 (got 0)"]


def test_a_version_may_change_the_award_s_kind(rules: Path) -> None:
    change = """versions:
  - version: 2
    effective_from: 2022-06-01T00:00:00+09:00
    note: a flat grant from June
    award: {kind: grant, amount: 500}
"""
    path = write(rules, "015814-atsuma/premium.yaml", ATSUMA + change)
    award = load_catalog(rules).programs["atsuma-premium"].versions[1].award
    assert (award.kind, getattr(award, "amount", None)) == ("grant", 500)
    # only what the change itself lacks, not the premium's rate and cap it never wrote
    path.write_text(ATSUMA + change.replace(", amount: 500", ""), encoding="utf-8")
    assert problems(rules) == [
        f"{path}:16: versions.0.award.amount: missing required field 'amount'"]


def test_the_folder_must_match_the_jurisdiction(rules: Path) -> None:
    write(rules, "082121-hitachiota/premium.yaml", ATSUMA)
    assert "not named by this code" in problems(rules)[0]


def test_a_municipal_type_a_program_is_a_warning(rules: Path) -> None:
    write(rules, "015814-atsuma/premium.yaml", ATSUMA.replace("restriction: {stores: in_region}\n",
                                                              ""))
    catalog = load_catalog(rules)
    assert [w.severity for w in catalog.warnings] == ["warning"]
    assert "type A" in catalog.warnings[0].message


def test_duplicate_program_ids_are_refused_at_the_id_line(rules: Path) -> None:
    first = write(rules, "015814-atsuma/a-premium.yaml", ATSUMA)
    copy = write(rules, "015814-atsuma/b-copy.yaml", "# a copy\n# to try a change\n" + ATSUMA)
    assert problems(rules) == [
        f"{copy}:3: id: program id 'atsuma-premium' is already used by {first}"]


def test_a_group_cap_that_differs_is_located_at_its_cap(rules: Path) -> None:
    write(rules, "015814-atsuma/a.yaml", ATSUMA + "person_total: {group: hokkaido, cap: 9000}\n")
    other = write(rules, "015814-atsuma/b.yaml", ATSUMA.replace("atsuma-premium", "atsuma-more")
                  + """versions:
  - version: 2
    effective_from: 2022-06-01T00:00:00+09:00
    note: joins the group
    person_total:
      group: hokkaido
      cap: 8000
""")
    assert problems(rules) == [
        f"{other}:18: versions.0.person_total.cap: group 'hokkaido' has cap 9000 in atsuma-premium"
        " but 8000 here"]


@pytest.mark.parametrize(("name", "meant"), [
    ("premium.yml", "premium.yaml"),
    ("premium.YAML", "premium.yaml"),
    ("Premium.Yml", "Premium.yaml"),
    ("premium.yaml.txt", "premium.yaml"),
    ("premium.yml.TXT", "premium.yaml"),
])
def test_a_misnamed_rule_file_is_an_error_that_suggests_the_name(
        rules: Path, name: str, meant: str) -> None:
    path = write(rules, f"015814-atsuma/{name}", ATSUMA)
    assert problems(rules) == [
        f"{path}:1: <file>: not read: only files whose name ends in '.yaml' are rule files;"
        f" rename it (did you mean {meant!r}?)"]


def test_files_that_are_not_rule_files_are_ignored(rules: Path) -> None:
    write(rules, "015814-atsuma/premium.yaml", ATSUMA)
    for name in ("README.md", "notes.txt", "premium.yaml.bak", "premium.yaml~", ".premium.yml",
                 ".premium.yaml.swp", "yml", "schema/program.schema.json"):
        write(rules, f"015814-atsuma/{name}", "not a rule file: {")
    assert list(load_catalog(rules).programs) == ["atsuma-premium"]


def test_routing_keys_follow_the_restriction() -> None:
    catalog = load_catalog(RULES)

    def keys(program: str) -> set[str]:
        return routing_keys(catalog.programs[program].current)

    assert keys("national-phase2-card") == {"national"}
    assert keys("miyoshi-premium") == {"res:342092"}  # residents at city stores: D
    assert keys("atsuma-premium") == {"store:015814"}  # in-region stores: B
    assert keys("shiga-charge-premium") == {"res:250007"}  # prefecture's residents
    assert keys("utsunomiya-first-purchase") == {"any:092011"}  # target stores


def test_a_program_routed_two_ways_is_a_candidate_once(rules: Path) -> None:
    write(rules, "015814-atsuma/premium.yaml", ATSUMA + """\
versions:
  - version: 2
    effective_from: 2021-01-01T00:00:00+09:00
    note: residents only from 2021
    restriction: {persons: residents}
""")
    catalog = load_catalog(rules)
    assert routing_keys(catalog.programs["atsuma-premium"].versions[0]) == {"store:015814"}
    assert routing_keys(catalog.programs["atsuma-premium"].versions[1]) == {"res:015814"}
    found = catalog.candidates(["res:015814", "store:015814"], "purchase")
    assert [p.id for p in found] == ["atsuma-premium"]


def test_symlinked_folders_are_followed_once(rules: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "atsuma-repo"
    write(elsewhere, "premium.yaml", ATSUMA)
    (rules / "015814-atsuma").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(rules, target_is_directory=True)  # must not recurse
    assert [p.name for p in rule_files(rules)] == ["premium.yaml", "providers.yaml"]
    assert "atsuma-premium" in load_catalog(rules).programs


def test_a_provider_of_both_bases_is_refused(rules: Path) -> None:
    providers = rules / "providers.yaml"
    text = providers.read_text(encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "id: paypay" in row)
    providers.write_text(text.replace("name: PayPay, kind: qr_code, basis: purchase",
                                      "name: PayPay, kind: qr_code, basis: both"),
                         encoding="utf-8")
    assert problems(rules) == [
        f"{providers}:{line}: providers.0.basis: a provider awards on one basis, 'charge' or "
        "'purchase': counting both would pay twice for money charged and then spent"]


# A folder's files create and limit programs of that folder's jurisdiction only.

def _with_national(rules: Path) -> None:
    for path in (RULES / "national").glob("*.yaml"):
        write(rules, f"national/{path.name}", path.read_text(encoding="utf-8"))


def test_a_municipal_file_cannot_create_a_national_program(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml",
                 ATSUMA.replace("jurisdiction: 015814", "jurisdiction: national")
                 .replace("restriction: {stores: in_region}\n", ""))
    assert problems(rules) == [
        f"{path}:3: jurisdiction: a file in folder '015814-atsuma' creates programs of 015814"
        " only; national programs live in national/"]


def test_a_national_file_creates_national_programs_only(rules: Path) -> None:
    path = write(rules, "national/premium.yaml", ATSUMA)
    assert problems(rules) == [
        f"{path}:3: jurisdiction: a file in folder 'national' creates national programs only;"
        " 015814's live in a folder named by its code (015814-...)"]


def test_a_municipal_file_cannot_limit_national_money(rules: Path) -> None:
    _with_national(rules)
    path = write(rules, "015814-atsuma/premium.yaml",
                 ATSUMA + "person_total: {group: national-phase2, cap: 20000}\n")
    assert problems(rules) == [
        f"{path}:12: person_total.group: group 'national-phase2' limits programs of national; a"
        " program of 015814 may share a group with its own jurisdiction's programs only"]


def test_two_municipalities_cannot_share_a_group(rules: Path) -> None:
    write(rules, "015814-atsuma/premium.yaml",
          ATSUMA + "person_total: {group: hokkaido-towns, cap: 9000}\n")
    other = write(rules, "015857-abira/premium.yaml",
                  ATSUMA.replace("atsuma", "abira").replace("015814", "015857")
                  + "person_total: {group: hokkaido-towns, cap: 9000}\n")
    assert problems(rules) == [
        f"{other}:12: person_total.group: group 'hokkaido-towns' limits programs of 015814; a"
        " program of 015857 may share a group with its own jurisdiction's programs only"]
