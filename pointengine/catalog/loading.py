"""The catalog: every rule file under ``rules/``, validated, versioned and indexed for routing.

Layout: ``rules/providers.yaml`` lists the payment providers; every other ``*.yaml`` file is one
program, and a near miss (``premium.yml``) is an error rather than a file skipped in silence.
National programs live in ``rules/national/``; a municipality's or prefecture's in a folder
named by its local government code (``rules/015814-atsuma/``). Loading checks the
syntax and types of every version (via :mod:`pointengine.catalog.rulefile`) and then what only the
whole catalog can know: that codes exist, providers are listed, ids are unique, versions move
forward, and a trigger suits its award.
"""

from __future__ import annotations

import datetime as dt
import os
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pointengine.catalog.programs import (
    ProgramDocument,
    ProgramVersion,
    Provider,
    ProviderList,
    merge_versions,
)
from pointengine.catalog.rulefile import (
    LineMap,
    load_yaml,
    located,
    problems_from_validation_error,
    suggest,
)
from pointengine.errors import Problem, RuleFileError
from pointengine.model.events import in_jst
from pointengine.model.jst import JST
from pointengine.model.municipalities import registry

_AWARD_TRIGGERS = {
    "premium": {"purchase", "charge"},
    "per_child": {"mynapoint_application"},
    "per_activity": {"participation"},
    "lottery": {"participation", "lottery_draw"},
}
_EPOCH = dt.datetime(1900, 1, 1, tzinfo=JST)
NATIONAL_FOLDER = "national"
"""The folder of the national programs; every other folder is one jurisdiction's."""


@dataclass
class Program:
    """A program and all its versions, oldest first."""

    id: str
    path: Path
    versions: list[ProgramVersion]
    starts: list[dt.datetime] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.starts = [in_jst(v.effective_from or _EPOCH) for v in self.versions]

    def version_at(self, at: dt.datetime) -> ProgramVersion:
        """The version in force for an event at ``at`` (the first version before any change)."""
        versions = self.versions
        if len(versions) == 1:  # most programs never change
            return versions[0]
        return versions[max(bisect_right(self.starts, at) - 1, 0)]

    @property
    def current(self) -> ProgramVersion:
        """The newest version."""
        return self.versions[-1]


ANYWHERE = "anywhere"
"""The routing key of programs open to any person at any store with any provider."""


def via(provider: str) -> str:
    """The routing key of programs open to anyone who uses ``provider``, wherever they are."""
    return f"via:{provider}"


def _unrestricted(version: ProgramVersion) -> bool:
    restriction = version.restriction
    return (version.jurisdiction != "national" and restriction.persons == "anyone"
            and restriction.stores == "anywhere")


def as_resident(code: str) -> str:
    """The routing key of a place's programs for its residents only."""
    return f"res:{code}"


def as_store(code: str) -> str:
    """The routing key of a place's programs for stores in it (whoever the person)."""
    return f"store:{code}"


def as_place(code: str) -> str:
    """The routing key of a place's other programs (target stores, activities held there)."""
    return f"any:{code}"


def routing_keys(version: ProgramVersion) -> set[str]:
    """Where the router finds ``version``.

    A program for residents only is found through the person's places only, one for in-region
    stores through the store's places only: an event whose person or store is elsewhere would
    fail that check anyway, so the router does not ask. Others of a place are found through
    any of the event's places; unrestricted ones through their partner providers.
    """
    if version.jurisdiction == "national":
        return {"national"}
    if _unrestricted(version):
        return {via(p.provider) for p in version.providers} or {ANYWHERE}
    if version.restriction.persons == "residents":
        return {as_resident(version.jurisdiction)}
    if version.restriction.stores == "in_region":
        return {as_store(version.jurisdiction)}
    return {as_place(version.jurisdiction)}


@dataclass
class Catalog:
    """Providers and programs, with the index the router uses."""

    root: Path
    providers: dict[str, Provider]
    programs: dict[str, Program]
    warnings: list[Problem] = field(default_factory=list)
    _index: dict[tuple[str, str], list[Program]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for program in self.programs.values():
            triggers = {t for v in program.versions for t in v.on}
            for key in set().union(*(routing_keys(v) for v in program.versions)):
                for trigger in triggers:
                    self._index.setdefault((key, trigger), []).append(program)

    def candidates(self, keys: Iterable[str], trigger: str) -> list[Program]:
        """Programs under these routing keys that an event of type ``trigger`` can concern."""
        # A program whose versions are routed differently is under two keys: list it once.
        unique: dict[int, Program] = {}
        for key in keys:
            for program in self._index.get((key, trigger), ()):
                unique.setdefault(id(program), program)
        return list(unique.values())

    def bases(self) -> dict[str, str]:
        """Provider id → ``charge`` or ``purchase``."""
        return {p.id: p.basis for p in self.providers.values()}


def _files(root: Path) -> list[Path]:
    """Every file under ``root``, sorted, following symlinked folders (once each).

    Deployments often link each municipality's folder in from elsewhere; a link that leads
    back to a folder already walked is skipped.
    """
    found: list[Path] = []
    walked: set[str] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in walked:
            subfolders.clear()
            continue
        walked.add(real)
        found.extend(Path(folder) / n for n in names)
    return sorted(found)


def rule_files(root: Path) -> list[Path]:
    """Every ``*.yaml`` under ``root``, sorted: the files the catalog is read from."""
    return [path for path in _files(root) if path.name.endswith(".yaml")]


def meant_name(name: str) -> str | None:
    """The ``.yaml`` name a file was evidently meant to have, or None.

    ``premium.yml``, ``premium.YAML`` and ``premium.yaml.txt`` (Windows hides the ``.txt`` an
    editor adds) are rule files that would otherwise be skipped without a word. Hidden names
    (editors' swap and lock files) and other names (``README.md``, ``premium.yaml.bak``) are
    not taken for rule files.
    """
    if name.startswith("."):
        return None
    stem = name[:-4] if name.lower().endswith(".txt") else name
    for suffix in (".yaml", ".yml"):
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            meant = stem[: -len(suffix)] + ".yaml"
            return meant if meant != name else None
    return None


def misnamed_files(root: Path) -> list[Path]:
    """Files under ``root`` that look like rule files but are not read (see :func:`meant_name`)."""
    return [path for path in _files(root) if meant_name(path.name)]


def watched_files(root: Path) -> list[Path]:
    """The rule files and the misnamed ones: an edit to either can change what ``validate`` says."""
    return [p for p in _files(root) if p.name.endswith(".yaml") or meant_name(p.name)]


def load_catalog(root: Path) -> Catalog:
    """Load and check every rule file under ``root``; raise RuleFileError listing all problems."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    providers = _load_providers(root / "providers.yaml", problems)
    programs: dict[str, Program] = {}
    lines: dict[str, LineMap] = {}
    for path in misnamed_files(root):
        problems.append(Problem(str(path), 1, "<file>", "not read: only files whose name ends "
                                "in '.yaml' are rule files; rename it", meant_name(path.name)))
    for path in rule_files(root):
        if path.name == "providers.yaml" and path.parent == root:
            continue
        loaded = _load_program(path, root, providers, problems, warnings)
        if loaded is None:
            continue
        program, program_lines = loaded
        if program.id in programs:
            problems.append(located(path, program_lines, ("id",), f"program id {program.id!r} is "
                                    f"already used by {programs[program.id].path}"))
            continue
        programs[program.id] = program
        lines[program.id] = program_lines
    _check_groups(programs, lines, problems)
    if problems:
        raise RuleFileError(sorted(problems, key=lambda p: (p.file, p.line)))
    return Catalog(root, providers, programs, warnings)


def _load_providers(path: Path, problems: list[Problem]) -> dict[str, Provider]:
    if not path.exists():
        problems.append(Problem(str(path), 1, "providers", "the provider list is missing"))
        return {}
    try:
        data, lines = load_yaml(path)
        listed = ProviderList.model_validate(data)
    except RuleFileError as exc:
        problems.extend(exc.problems)
        return {}
    except ValidationError as exc:
        problems.extend(problems_from_validation_error(path, exc, lines, ProviderList))
        return {}
    out: dict[str, Provider] = {}
    for i, provider in enumerate(listed.providers):
        if provider.id in out:
            problems.append(located(path, lines, ("providers", i, "id"),
                                    f"provider {provider.id!r} is listed twice"))
        out[provider.id] = provider
    return out


def _load_program(path: Path, root: Path, providers: dict[str, Provider],
                  problems: list[Problem], warnings: list[Problem]
                  ) -> tuple[Program, LineMap] | None:
    try:
        data, lines = load_yaml(path)
    except RuleFileError as exc:
        problems.extend(exc.problems)
        return None
    found: list[Problem] = []
    seen: set[tuple[int, str]] = set()

    def report(new: list[Problem]) -> None:
        # Each version is validated in full, so a mistake it inherits comes up again, placed
        # where it is written: report it once.
        found.extend(p for p in new if (p.line, p.field) not in seen)
        seen.update((p.line, p.field) for p in new)

    try:
        ProgramDocument.model_validate(data)
    except ValidationError as exc:
        report(problems_from_validation_error(path, exc, lines, ProgramDocument))
        if not isinstance(data, dict):
            problems.extend(found)
            return None
    versions: list[ProgramVersion] = []
    for i, raw in enumerate(merge_versions(_as_written(data))):
        try:
            versions.append(ProgramVersion.model_validate(raw))
        except ValidationError as exc:  # and on to the next version: report every one's
            report(problems_from_validation_error(path, exc, lines, ProgramVersion,
                                                  where=partial(_written, lines, i)))
    if found:
        problems.extend(found)
        return None
    before = len(problems)
    _check_versions(path, lines, versions, problems)
    for i, version in enumerate(versions):
        _check_semantics(path, lines, i, version, root, providers, problems, warnings)
    if len(problems) > before:
        return None
    return Program(versions[0].id, path, versions), lines


def _as_written(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the changes that can be merged: up to the first that is not a mapping.

    A malformed ``versions`` is already reported by the document's validation.
    """
    changes = data.get("versions")
    usable: list[dict[str, Any]] = []
    for change in changes if isinstance(changes, list) else ():
        if not isinstance(change, dict):
            break
        usable.append(change)
    return {**data, "versions": usable}


def _written(lines: LineMap, index: int, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Where the value at ``loc`` of version ``index`` (0: the base) is written in the file.

    A version is the base with its changes applied, so a value comes from the entry (the base
    or a change up to ``index``) that spells out most of ``loc``; of equals the later one, which
    overrides. A value no entry names (a default) is the base's.
    """
    best, depth = loc, 0
    for j in range(index + 1):
        entry: tuple[str | int, ...] = ("versions", j - 1) if j else ()
        spelt = 0
        while spelt < len(loc) and (*entry, *loc[: spelt + 1]) in lines.lines:
            spelt += 1
        if spelt and spelt >= depth:
            best, depth = (*entry, *loc), spelt
    return best


def _check_versions(path: Path, lines: LineMap, versions: list[ProgramVersion],
                    problems: list[Problem]) -> None:
    for i, version in enumerate(versions[1:], start=1):
        prev = versions[i - 1]
        loc: tuple[str | int, ...] = ("versions", i - 1)
        if version.version != prev.version + 1:
            problems.append(located(path, lines, (*loc, "version"),
                                    f"expected version {prev.version + 1}, got {version.version}"))
        if version.id != versions[0].id:
            problems.append(located(path, lines, (*loc, "id"), "a version cannot change the id"))
        start = version.effective_from
        if prev.effective_from is not None and start is not None and start <= prev.effective_from:
            problems.append(located(path, lines, (*loc, "effective_from"),
                                    f"must be later than version {prev.version}'s "
                                    f"({prev.effective_from.isoformat()})"))


def _check_semantics(path: Path, lines: LineMap, index: int,
                     program: ProgramVersion, root: Path, providers: dict[str, Provider],
                     problems: list[Problem], warnings: list[Problem]) -> None:
    def problem(loc: tuple[str | int, ...], message: str, hint: str | None = None,
                severity: str = "error") -> None:
        where = _written(lines, index, loc)
        target = warnings if severity == "warning" else problems
        found = located(path, lines, where, message, suggestion=hint, severity=severity)
        if found not in target:
            target.append(found)

    codes = registry()
    national = program.jurisdiction == "national"
    if not national and program.jurisdiction not in codes:
        problem(("jurisdiction",), f"unknown local government code {program.jurisdiction}",
                codes.closest(program.jurisdiction))
    elif not national and codes.get(program.jurisdiction).kind == "designated_city_ward":
        parent = codes.local_government_of(program.jurisdiction)
        problem(("jurisdiction",), "a designated-city ward runs no programs; use its city", parent)
    elif not national:
        folder = path.relative_to(root).parts[0]
        if folder == NATIONAL_FOLDER:
            problem(("jurisdiction",), f"a file in folder {folder!r} creates national programs "
                    f"only; {program.jurisdiction}'s live in a folder named by its code "
                    f"({program.jurisdiction}-...)")
        elif not folder.startswith(program.jurisdiction):
            problem(("jurisdiction",), f"the file is in folder {folder!r}, which is not named "
                    f"by this code ({program.jurisdiction}-...)")
        if program.type_letter == "A":
            problem(("restriction",), "a municipal program of type A (no person and no store "
                    "restriction): the seeds reserve A for the national program", None, "warning")
    if national and path.relative_to(root).parts[0] != NATIONAL_FOLDER:
        folder = path.relative_to(root).parts[0]
        problem(("jurisdiction",), f"a file in folder {folder!r} creates programs of "
                f"{folder.split('-')[0]} only; national programs live in {NATIONAL_FOLDER}/")
    if national and program.type_letter != "A":
        problem(("restriction",), "a national program restricts neither persons nor stores")
    for i, partner in enumerate(program.providers):
        if partner.provider not in providers:
            problem(("providers", i, "provider"), f"unknown provider {partner.provider!r}",
                    suggest(partner.provider, providers))
    kind = program.award.kind
    allowed = _AWARD_TRIGGERS.get(kind)
    if allowed is not None:
        wrong = [t for t in program.on if t not in allowed]
        if wrong:
            problem(("on",), f"an award of kind {kind!r} cannot be triggered by "
                    f"{', '.join(wrong)}; use {', '.join(sorted(allowed))}")
    if program.conditions.provider_basis and not set(program.on) >= {"purchase", "charge"}:
        problem(("conditions", "provider_basis"), "provider_basis chooses between charges and "
                "purchases: 'on' must list both")


def _check_groups(programs: dict[str, Program], lines: dict[str, LineMap],
                  problems: list[Problem]) -> None:
    """A group's cap is the same wherever it is named, and a group is one jurisdiction's: the
    national one's when a national program names it, else the first (by file) that does. A
    program of another jurisdiction that names it would limit programs it does not own."""
    caps: dict[str, tuple[int, str]] = {}
    owners: dict[str, str] = {}
    for program in sorted(programs.values(),
                          key=lambda p: (p.current.jurisdiction != "national", str(p.path))):
        for version in program.versions:
            if version.person_total is not None:
                owners.setdefault(version.person_total.group, version.jurisdiction)
    for program in programs.values():
        for i, version in enumerate(program.versions):
            total = version.person_total
            if total is None:
                continue
            owner = owners[total.group]
            if owner != version.jurisdiction:
                where = _written(lines[program.id], i, ("person_total", "group"))
                problems.append(located(
                    program.path, lines[program.id], where,
                    f"group {total.group!r} limits programs of {owner}; a program of "
                    f"{version.jurisdiction} may share a group with its own jurisdiction's "
                    "programs only"))
                continue
            seen = caps.setdefault(total.group, (total.cap, program.id))
            if seen[0] != total.cap:
                where = _written(lines[program.id], i, ("person_total", "cap"))
                problems.append(located(program.path, lines[program.id], where,
                                        f"group {total.group!r} has cap {seen[0]} in "
                                        f"{seen[1]} but {total.cap} here"))
