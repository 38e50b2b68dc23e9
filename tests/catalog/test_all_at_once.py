"""One run of ``validate`` reports every real problem: none hides another, none is follow-on
noise of another."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pointengine.catalog.loading import load_catalog
from tests.catalog.test_catalog import ATSUMA, problems, rules, write
from tests.world import RULES

__all__ = ["rules"]  # the fixture, imported for pytest

LATER_TYPO = """versions:
  - version: 2
    effective_from: 2022-06-01T00:00:00+09:00
    note: a typo
    award: {rat: 10%}
"""


def test_a_version_that_fails_does_not_hide_the_other_versions_semantic_problems(
        rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml",
                 ATSUMA.replace("provider: paypay", "provider: paypey") + LATER_TYPO)
    assert problems(rules) == [
        f"{path}:7: providers.0.provider: unknown provider 'paypey' (did you mean 'paypay'?)",
        f"{path}:16: versions.0.award.rat: unknown field 'rat' (did you mean 'rate'?)",
    ]


def test_versions_that_validate_are_still_checked_in_order(rules: Path) -> None:
    text = ATSUMA + LATER_TYPO + """  - version: 3
    effective_from: 2022-07-01T00:00:00+09:00
    note: charges
    on: [purchase, charg]
  - version: 4
    effective_from: 2022-01-01T00:00:00+09:00
    note: dated before version 3
"""
    path = write(rules, "015814-atsuma/premium.yaml", text)
    # versions 2 and 3 fail on other fields: their numbers and dates still order version 4
    assert problems(rules) == [
        f"{path}:16: versions.0.award.rat: unknown field 'rat' (did you mean 'rate'?)",
        f"{path}:20: versions.1.on.1: invalid value 'charg', expected one of: 'purchase', "
        "'charge', 'mynapoint_application', 'health_insurance_registration', "
        "'public_funds_account_registration', 'participation', 'lottery_draw' "
        "(did you mean 'charge'?)",
        f"{path}:22: versions.2.effective_from: must be later than version 3's "
        "(2022-07-01T00:00:00+09:00)",
    ]


def test_a_duplicate_key_does_not_hide_the_file_s_other_problems(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml",
                 ATSUMA.replace("provider: paypay", "provider: paypey")
                 .replace("  cap: 5000", "  cap: 5000\n  cap: 6000"))
    assert problems(rules) == [
        f"{path}:7: providers.0.provider: unknown provider 'paypey' (did you mean 'paypay'?)",
        f"{path}:12: award.cap: duplicate key 'cap', already defined on line 11",
    ]


def test_a_syntax_error_does_not_hide_the_rest_of_the_file(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml",
                 ATSUMA.replace("provider: paypay", "provider: paypey")
                 .replace("on: [purchase]", "on: [purchase"))
    assert problems(rules) == [
        f"{path}:5: <yaml>: YAML syntax error: expected ',' or ']', but got ':' (while parsing "
        "a flow sequence on line 4)",
        f"{path}:7: providers.0.provider: unknown provider 'paypey' (did you mean 'paypay'?)",
    ]


@pytest.mark.parametrize("broken", [
    "  rate 25%",  # no colon: the award lacks its rate only because the line is unreadable
    "\trate: 25%",  # a tab
    "  rate: 25%\n   cap: 3",  # indented too far
])
def test_what_an_unreadable_line_leaves_out_is_not_reported_again(
        rules: Path, broken: str) -> None:
    path = write(rules, "015814-atsuma/premium.yaml", ATSUMA.replace("  rate: 25%", broken))
    [problem] = problems(rules)
    assert problem.startswith(f"{path}:") and ": <yaml>: YAML syntax error: " in problem


def test_an_invalid_provider_entry_is_not_unknown_to_programs(rules: Path) -> None:
    providers = rules / "providers.yaml"
    providers.write_text(providers.read_text(encoding="utf-8").replace(
        "kind: qr_code, basis: purchase}", "kind: qr_code, basis: both}", 1), encoding="utf-8")
    write(rules, "015814-atsuma/premium.yaml", ATSUMA)  # names paypay, the broken entry
    found = problems(rules)
    assert len(found) == 1 and found[0].startswith(f"{providers}:")
    assert "a provider awards on one basis" in found[0]


def test_an_unreadable_provider_list_makes_no_provider_unknown(tmp_path: Path) -> None:
    root = tmp_path / "rules"
    shutil.copytree(RULES, root)
    providers = root / "providers.yaml"
    providers.write_text(providers.read_text(encoding="utf-8").replace(
        "  - {id: paypay", "\t- {id: paypay"), encoding="utf-8")
    found = problems(root)
    assert [p.split(": ")[1] for p in found] == ["<yaml>"]


def test_a_duplicate_id_is_found_in_a_file_with_other_problems(rules: Path) -> None:
    first = write(rules, "015814-atsuma/a-premium.yaml", ATSUMA)
    copy = write(rules, "015814-atsuma/b-copy.yaml",
                 ATSUMA.replace("provider: paypay", "provider: paypey"))
    assert problems(rules) == [
        f"{copy}:1: id: program id 'atsuma-premium' is already used by {first}",
        f"{copy}:7: providers.0.provider: unknown provider 'paypey' (did you mean 'paypay'?)",
    ]


def test_a_duplicate_of_a_broken_file_s_id_is_found(rules: Path) -> None:
    first = write(rules, "015814-atsuma/a-premium.yaml",
                  ATSUMA.replace("provider: paypay", "provider: paypey"))
    copy = write(rules, "015814-atsuma/b-copy.yaml", ATSUMA)
    assert problems(rules) == [
        f"{first}:7: providers.0.provider: unknown provider 'paypey' (did you mean 'paypay'?)",
        f"{copy}:1: id: program id 'atsuma-premium' is already used by {first}",
    ]


def test_a_group_is_checked_across_files_with_other_problems(rules: Path) -> None:
    first = write(rules, "015814-atsuma/a.yaml",
                  ATSUMA.replace("provider: paypay", "provider: paypey")
                  + "person_total: {group: hokkaido, cap: 9000}\n")
    other = write(rules, "015814-atsuma/b.yaml", ATSUMA.replace("atsuma-premium", "atsuma-more")
                  + "person_total: {group: hokkaido, cap: 8000}\n")
    assert problems(rules) == [
        f"{first}:7: providers.0.provider: unknown provider 'paypey' (did you mean 'paypay'?)",
        f"{other}:12: person_total.cap: group 'hokkaido' has cap 9000 in atsuma-premium but"
        " 8000 here",
    ]


def test_the_shipped_catalog_still_loads_whole() -> None:
    catalog = load_catalog(RULES)
    assert len(catalog.programs) == 23
    assert catalog.warnings == []
