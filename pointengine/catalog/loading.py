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
import hashlib
import os
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from pointengine.catalog.messages import problem
from pointengine.catalog.programs import (
    Conditions,
    Partner,
    ProgramDocument,
    ProgramVersion,
    Provider,
    ProviderList,
    Restriction,
    merge_versions,
)
from pointengine.catalog.rulefile import (
    LineMap,
    Parsed,
    located,
    parse_rule_text,
    problems_from_validation_error,
    read_rule_file,
    suggest,
)
from pointengine.errors import Problem, RuleFileError
from pointengine.i18n import Text
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


@dataclass(frozen=True)
class Source:
    """A rule file given as text rather than read from disk: a draft, where it would stand."""

    path: Path
    """Where the file stands in the catalog (under its root; it need not exist)."""
    text: str | bytes
    revises: bool = True
    """The draft takes the place of the file that defines a program of its id (whoever's it
    is: who may change a program is for publishing to say)."""
    parsed: Parsed | None = None
    """``text`` already read (:func:`~pointengine.catalog.rulefile.parse_rule_text`)."""


@dataclass
class CatalogCheck:
    """What checking a rules folder found: every problem, and the catalog of what is valid.

    ``catalog`` holds the providers and the programs whose files have no error (with every
    file's warnings); ``problems`` the errors of every file, sorted by file and line.
    """

    catalog: Catalog
    problems: list[Problem]
    revised: list[Path] = field(default_factory=list)
    """The files a :class:`Source` took the place of (the program of its id)."""
    draft_id: str | None = None
    """The program id the :class:`Source` defines, if it says one."""

    def of(self, path: Path) -> tuple[list[Problem], list[Problem]]:
        """The errors and the warnings of the file ``path``."""
        name = str(path)
        return ([p for p in self.problems if p.file == name],
                [w for w in self.catalog.warnings if w.file == name])


@dataclass(frozen=True)
class _Providers:
    """The provider list as far as it could be read."""

    known: dict[str, Provider]
    unsure: frozenset[str] = frozenset()
    """Ids listed by entries that are invalid: not unknown, but not usable either."""
    readable: bool = True
    """False when the list could not be read whole: no name can be called unknown."""

    def unknown(self, name: str) -> bool:
        """True when programs cannot name ``name``: the whole list is read and has no such id."""
        return self.readable and name not in self.known and name not in self.unsure

    def key(self) -> tuple[object, ...]:
        """What a program file's checks depend on of the list (for the cache of files)."""
        return (tuple(sorted(self.known)), tuple(sorted(self.unsure)), self.readable)


@dataclass
class _File:
    """One program file, loaded and checked on its own (before the checks across files)."""

    path: Path
    lines: LineMap
    program_id: str | None
    versions: list[ProgramVersion | None]
    problems: list[Problem]
    warnings: list[Problem]

    @property
    def valid(self) -> bool:
        """True when the file has no error and every version validates: it joins the catalog."""
        return not self.problems and bool(self.versions) and all(self.versions)


def load_catalog(root: Path) -> Catalog:
    """Load and check every rule file under ``root``; raise RuleFileError listing all problems."""
    checked = check_catalog(root)
    if checked.problems:
        raise RuleFileError(checked.problems)
    return checked.catalog


def check_catalog(root: Path, *, draft: Source | None = None,
                  focus: Path | None = None) -> CatalogCheck:
    """Check every rule file under ``root``, with ``draft`` among them; never raises
    :class:`RuleFileError`: every problem is in the answer.

    Each file is checked as far as it can be (a version that fails does not keep the others
    from their checks, nor a syntax error the rest of the file), and the checks across files
    (unique ids, groups) take in the files that have other problems. A conflict between two
    files is reported on the later one; ``focus`` (and a draft) counts as the latest, so that
    its conflicts are reported on it.
    """
    problems: list[Problem] = []
    providers = _load_providers(root / "providers.yaml", problems)
    for path in misnamed_files(root):
        problems.append(problem(str(path), 1, "<file>", Text("file.misnamed"),
                                meant_name(path.name)))
    drafted = None if draft is None else str(draft.path)
    files: list[_File] = []
    for path in rule_files(root):
        if (path.name == "providers.yaml" and path.parent == root) or str(path) == drafted:
            continue
        files.append(_checked_file(path, root, providers))
    revised: list[Path] = []
    draft_id = None
    if draft is not None:
        parsed = draft.parsed or parse_rule_text(draft.text, str(draft.path))
        mine = _load_program(draft.path, root, providers, parsed)
        draft_id = mine.program_id
        if draft.revises and draft_id is not None:
            revised = [f.path for f in files if f.program_id == draft_id]
            files = [f for f in files if f.program_id != draft_id]
        files.append(mine)
    if focus is not None:
        files.sort(key=lambda f: f.path == focus)  # stable: the others keep their order
    _check_ids(files)
    _check_groups(files)
    programs: dict[str, Program] = {}
    warnings: list[Problem] = []
    for loaded in files:
        problems.extend(loaded.problems)
        warnings.extend(loaded.warnings)
        if loaded.valid and loaded.program_id is not None:
            versions = [v for v in loaded.versions if v is not None]
            programs[loaded.program_id] = Program(loaded.program_id, loaded.path, versions)
    if focus is not None:  # back to the files' order
        programs = dict(sorted(programs.items(), key=lambda item: str(item[1].path)))
    catalog = Catalog(root, providers.known, programs, warnings)
    return CatalogCheck(catalog, sorted(problems, key=lambda p: (p.file, p.line)), revised,
                        draft_id)


_CACHE: OrderedDict[tuple[object, ...], _File] = OrderedDict()
_CACHE_SIZE = 4096
_CACHE_LOCK = threading.Lock()


def _checked_file(path: Path, root: Path, providers: _Providers) -> _File:
    """A program file on disk, checked; the same bytes at the same place are checked once.

    The console checks its draft with the whole catalog on each pause in typing: a folder of
    a thousand municipalities' files must not be validated again each time. The key is the
    file's content (not its time stamp, which a quick rewrite may leave as it was).
    """
    try:
        raw = path.read_bytes()
    except OSError:
        return _load_program(path, root, providers, read_rule_file(path))
    key = (str(path), str(root), hashlib.blake2b(raw, digest_size=20).digest(), providers.key())
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
    if cached is None:
        cached = _load_program(path, root, providers, parse_rule_text(raw, str(path)))
        with _CACHE_LOCK:
            _CACHE[key] = cached
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    # the checks across files add to a file's problems: each catalog gets its own lists
    return _File(cached.path, cached.lines, cached.program_id, list(cached.versions),
                 list(cached.problems), list(cached.warnings))


def _load_providers(path: Path, problems: list[Problem]) -> _Providers:
    if not path.exists():
        problems.append(problem(str(path), 1, "providers", Text("catalog.no_providers")))
        return _Providers({}, readable=False)
    parsed = read_rule_file(path)
    problems.extend(parsed.problems)
    if not parsed.readable:
        return _Providers({}, readable=False)
    readable = not parsed.partial  # lines left out may list any provider
    unsure: set[str] = set()
    try:
        entries = list(ProviderList.model_validate(parsed.data).providers)
    except ValidationError as exc:
        problems.extend(p for p in problems_from_validation_error(
            path, exc, parsed.lines, ProviderList, lenient=parsed.partial) if parsed.keeps(p))
        # the entries that are valid are usable; the others' ids are not unknown
        listed = parsed.data.get("providers") if isinstance(parsed.data, dict) else None
        entries = []
        for entry in listed if isinstance(listed, list) else ():
            try:
                entries.append(Provider.model_validate(entry))
            except ValidationError:
                said = entry.get("id") if isinstance(entry, dict) else None
                if isinstance(said, str | int) and not isinstance(said, bool):
                    unsure.add(str(said))
                else:
                    readable = False
        if not isinstance(listed, list):
            readable = False
    out: dict[str, Provider] = {}
    for i, provider in enumerate(entries):
        if provider.id in out:
            problems.append(located(path, parsed.lines, ("providers", i, "id"),
                                    Text("catalog.provider_twice",
                                         {"provider": repr(provider.id)})))
        out[provider.id] = provider
    return _Providers(out, frozenset(unsure), readable)


def _load_program(path: Path, root: Path, providers: _Providers, parsed: Parsed) -> _File:
    """Check one program file on its own: syntax, each version's fields, the versions' order
    and what each valid version says. Never raises."""
    if not parsed.readable:
        return _File(path, parsed.lines, None, [], list(parsed.problems), [])
    data, lines = parsed.data, parsed.lines
    found: list[Problem] = []
    seen: set[tuple[int, str]] = set()

    def report(new: list[Problem]) -> None:
        # Each version is validated in full, so a mistake it inherits comes up again, placed
        # where it is written: report it once.
        new = [p for p in new if parsed.keeps(p)]
        found.extend(p for p in new if (p.line, p.field) not in seen)
        seen.update((p.line, p.field) for p in new)

    def convert(exc: ValidationError, model: type[BaseModel], index: int | None = None
                ) -> list[Problem]:
        where = None if index is None else partial(_written, lines, index)
        return problems_from_validation_error(path, exc, lines, model, where=where,
                                              lenient=parsed.partial)

    try:
        ProgramDocument.model_validate(data)
    except ValidationError as exc:
        report(convert(exc, ProgramDocument))
        if not isinstance(data, dict):
            return _File(path, lines, None, [], [*parsed.problems, *found], [])
    merged = merge_versions(_as_written(data))
    versions: list[ProgramVersion | None] = []
    for i, raw in enumerate(merged):
        try:
            versions.append(ProgramVersion.model_validate(raw))
        except ValidationError as exc:  # and on to the next version: report every one's
            versions.append(None)
            report(convert(exc, ProgramVersion, i))
    checks: list[Problem] = []
    warnings: list[Problem] = []
    versions_line = lines.lines.get(("versions",))
    if not parsed.partial or versions_line is None or parsed.keeps(
            Problem("", max(versions_line, (parsed.skipped or (0, 0))[1] + 1), "", "")):
        # (lines left out among the versions shift them: their order is not checked then)
        _check_versions(path, lines, merged, versions, checks)
    for i, (raw, version) in enumerate(zip(merged, versions, strict=True)):
        _check_semantics(path, lines, i, _fields(raw, version), root, providers, checks,
                         warnings, partial=parsed.partial)
    # a value the file's own validation refused is not reported again by what it implies
    report([p for p in checks if (p.line, p.field) not in seen])
    warnings = [w for w in warnings if parsed.keeps(w) and (w.line, w.field) not in seen]
    problems = sorted([*parsed.problems, *found], key=lambda p: p.line)
    return _File(path, lines, _program_id(data, versions), versions, problems, warnings)


def _program_id(data: dict[str, Any], versions: list[ProgramVersion | None]) -> str | None:
    """The program's id: a valid version's, else the file's if it is a valid id."""
    for version in versions:
        if version is not None:
            return version.id
    try:
        return str(_ADAPTERS["id"].validate_python(data.get("id")))
    except ValidationError:
        return None


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


def _field_adapter(name: str) -> TypeAdapter[Any]:
    """A validator of one field of a version, constraints included, on its own."""
    info = ProgramVersion.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


_ADAPTERS = {name: _field_adapter(name) for name in ProgramVersion.model_fields}
_VERSION, _EFFECTIVE_FROM = _ADAPTERS["version"], _ADAPTERS["effective_from"]
_NO_VALUE = object()


def _fields(raw: dict[str, Any], version: ProgramVersion | None) -> dict[str, Any]:
    """A version's fields: all of a valid version's; of one that fails, those valid on their
    own (its providers can be checked even when its award has a typo)."""
    if version is not None:
        return {name: getattr(version, name) for name in ProgramVersion.model_fields}
    out: dict[str, Any] = {}
    for name, info in ProgramVersion.model_fields.items():
        value = raw.get(name, _NO_VALUE)
        if value is _NO_VALUE:
            if not info.is_required():
                out[name] = info.get_default(call_default_factory=True)
            continue
        try:
            out[name] = _ADAPTERS[name].validate_python(value)
        except ValidationError:
            continue
    return out


def _head(raw: dict[str, Any], version: ProgramVersion | None
          ) -> tuple[int | None, dt.datetime | None]:
    """A version's number and ``effective_from``: the valid version's, else those of its
    fields that are valid on their own (a version that fails elsewhere is still in order)."""
    if version is not None:
        return version.version, version.effective_from
    values: list[Any] = []
    for adapter, value in ((_VERSION, raw.get("version", 1)),
                           (_EFFECTIVE_FROM, raw.get("effective_from"))):
        try:
            values.append(adapter.validate_python(value))
        except ValidationError:
            values.append(None)
    return values[0], values[1]


def _check_versions(path: Path, lines: LineMap, merged: list[dict[str, Any]],
                    versions: list[ProgramVersion | None], problems: list[Problem]) -> None:
    heads = [_head(raw, version) for raw, version in zip(merged, versions, strict=True)]
    for i in range(1, len(heads)):
        (number, start), (prev_number, prev_start) = heads[i], heads[i - 1]
        loc: tuple[str | int, ...] = ("versions", i - 1)
        if number is not None and prev_number is not None and number != prev_number + 1:
            problems.append(located(path, lines, (*loc, "version"), Text(
                "catalog.version_number", {"expected": prev_number + 1, "got": number})))
        version, base = versions[i], versions[0]
        if version is not None and base is not None and version.id != base.id:
            problems.append(located(path, lines, (*loc, "id"), Text("catalog.version_id")))
        if prev_start is not None and start is not None and start <= prev_start:
            problems.append(located(path, lines, (*loc, "effective_from"), Text(
                "catalog.version_order", {"version": prev_number if prev_number is not None
                                          else i, "at": prev_start.isoformat()})))


def _check_semantics(path: Path, lines: LineMap, index: int,
                     program: dict[str, Any], root: Path, providers: _Providers,
                     problems: list[Problem], warnings: list[Problem], *,
                     partial: bool = False) -> None:
    """What only the catalog knows of version ``index``'s fields (those that are valid):
    codes, folders, providers, triggers."""
    def said(loc: tuple[str | int, ...], text: Text, hint: str | None = None,
             severity: str = "error") -> None:
        where = _written(lines, index, loc)
        if partial and where[:1] not in lines.lines:
            return  # a default, where the file may say otherwise on the lines left out
        target = warnings if severity == "warning" else problems
        found = located(path, lines, where, text, suggestion=hint, severity=severity)
        if found not in target:
            target.append(found)

    codes = registry()
    code = program.get("jurisdiction")
    restriction: Restriction | None = program.get("restriction")
    letter = restriction.type_letter if restriction is not None else None
    national = code == "national"
    folder = path.relative_to(root).parts[0]
    if code is None:
        pass
    elif not national and code not in codes:
        said(("jurisdiction",), Text("catalog.unknown_code", {"code": code}),
             codes.closest(code))
    elif not national and codes.get(code).kind == "designated_city_ward":
        said(("jurisdiction",), Text("catalog.ward"), codes.local_government_of(code))
    elif not national:
        if folder == NATIONAL_FOLDER:
            said(("jurisdiction",), Text("catalog.national_folder",
                                         {"folder": repr(folder), "code": code}))
        elif not folder.startswith(code):
            said(("jurisdiction",), Text("catalog.folder_code",
                                         {"folder": repr(folder), "code": code}))
        if letter == "A":
            said(("restriction",), Text("catalog.type_a"), None, "warning")
    if national and folder != NATIONAL_FOLDER:
        said(("jurisdiction",), Text("catalog.national_elsewhere",
                                     {"folder": repr(folder), "code": folder.split("-")[0]}))
    if national and letter not in (None, "A"):
        said(("restriction",), Text("catalog.national_restricted"))
    partners: tuple[Partner, ...] = program.get("providers", ())
    for i, partner in enumerate(partners):
        if providers.unknown(partner.provider):
            said(("providers", i, "provider"),
                 Text("catalog.unknown_provider", {"provider": repr(partner.provider)}),
                 suggest(partner.provider, providers.known))
    award = program.get("award")
    on: tuple[str, ...] | None = program.get("on")
    allowed = _AWARD_TRIGGERS.get(award.kind) if award is not None else None
    if award is not None and allowed is not None and on is not None:
        wrong = [t for t in on if t not in allowed]
        if wrong:
            said(("on",), Text("catalog.trigger", {"kind": repr(award.kind),
                                                   "wrong": ", ".join(wrong),
                                                   "allowed": ", ".join(sorted(allowed))}))
    conditions: Conditions | None = program.get("conditions")
    if conditions is not None and conditions.provider_basis and on is not None \
            and not set(on) >= {"purchase", "charge"}:
        said(("conditions", "provider_basis"), Text("catalog.provider_basis"))


def _check_ids(files: list[_File]) -> None:
    """A program id is one file's: the later file that uses it again is told which has it."""
    owners: dict[str, Path] = {}
    for loaded in files:
        if loaded.program_id is None:
            continue
        owner = owners.setdefault(loaded.program_id, loaded.path)
        if owner != loaded.path:
            loaded.problems.append(located(loaded.path, loaded.lines, ("id",), Text(
                "catalog.id_taken", {"program": repr(loaded.program_id), "other": str(owner)})))
            loaded.program_id = None  # not in the catalog, and not a group's member


def _check_groups(files: list[_File]) -> None:
    """A group's cap is the same wherever it is named, and a group is one jurisdiction's: the
    national one's when a national program names it, else the first (by file) that does. A
    program of another jurisdiction that names it would limit programs it does not own.

    Every valid version counts, in files with other problems too.
    """
    named = [(loaded, i, version) for loaded in files if loaded.program_id is not None
             for i, version in enumerate(loaded.versions)
             if version is not None and version.person_total is not None]
    owners: dict[str, str] = {}
    for _, _, version in sorted(named, key=lambda n: n[2].jurisdiction != "national"):
        assert version.person_total is not None
        owners.setdefault(version.person_total.group, version.jurisdiction)
    caps: dict[str, tuple[int, str]] = {}
    for loaded, i, version in named:
        total = version.person_total
        assert total is not None and loaded.program_id is not None
        owner = owners[total.group]
        if owner != version.jurisdiction:
            where = _written(loaded.lines, i, ("person_total", "group"))
            _add(loaded, located(loaded.path, loaded.lines, where, Text("catalog.group_owner", {
                "group": repr(total.group), "owner": owner,
                "jurisdiction": version.jurisdiction})))
            continue
        seen = caps.setdefault(total.group, (total.cap, loaded.program_id))
        if seen[0] != total.cap:
            where = _written(loaded.lines, i, ("person_total", "cap"))
            _add(loaded, located(loaded.path, loaded.lines, where, Text("catalog.group_cap", {
                "group": repr(total.group), "cap": seen[0], "program": seen[1],
                "here": total.cap})))


def _add(loaded: _File, found: Problem) -> None:
    if found not in loaded.problems:
        loaded.problems.append(found)
