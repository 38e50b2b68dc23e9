"""Drafts: a program file checked together with the catalog it would join.

A draft (a file being written, or text in the console's editor) is validated as ``validate``
validates the rules folder, with the draft among the folder's files: in place of the program it
revises (same id, or the same file), or as a new file in a folder named by its jurisdiction.
Nothing is copied or written: the folder's files are read where they are (and each is checked
once while its content stays the same), the draft from memory. Its problems are reported
against the draft's own name and lines.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from pointengine.catalog.loading import Catalog, Program, Source, check_catalog
from pointengine.catalog.messages import problem
from pointengine.catalog.rulefile import parse_rule_text
from pointengine.catalog.shipped import rules_folder
from pointengine.errors import Problem, RuleFileError, UnreadableEvents
from pointengine.i18n import Text
from pointengine.model.municipalities import registry
from pointengine.model.output import writing

__all__ = ["MAX_DRAFT_CHARS", "DraftCheck", "catalog_of", "check_draft", "check_rule_file",
           "load_with_proposal", "scratch"]

MAX_DRAFT_CHARS = 30_000
"""The longest draft read. The longest shipped program file has 1,223 characters (a list of a
thousand target stores, some 18,000); 30,000 of the densest YAML (``[1,1,1,...]``, 15,000
values) take 0.25-0.3 s to read in pure-Python PyYAML, and a draft is checked on each pause in
typing."""


@dataclass
class DraftCheck:
    """What checking a draft found.

    ``problems``: the draft's errors and warnings, each at its line in the draft, by line.
    ``catalog``: the catalog with the draft in it, when the draft has no error (the programs of
    other files that have errors are left out of it: see ``elsewhere``). ``program_id`` and
    ``jurisdiction`` are what the draft says, when it says them readably.
    """

    problems: list[Problem]
    program_id: str | None = None
    jurisdiction: str | None = None
    catalog: Catalog | None = None
    elsewhere: list[Problem] = field(default_factory=list)
    """Errors of the catalog's other files (not the draft's; they do not make it invalid)."""
    rules: Path | None = None
    """The rules folder the draft was checked with."""
    in_catalog: bool = False
    """True when the draft is a file of ``rules`` itself (checked in place), not a new one."""
    provider_list: bool = False
    """True when the file checked is the provider list of ``rules`` (``providers.yaml``):
    ``problems`` are its own, ``catalog`` (when it is valid) holds its providers."""

    @property
    def errors(self) -> list[Problem]:
        """The draft's problems of severity ``error``."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def valid(self) -> bool:
        """True when the draft has no error (it may have warnings)."""
        return not self.errors

    @property
    def program(self) -> Program | None:
        """The draft's program as the catalog holds it, when the draft is valid."""
        if self.catalog is None or self.program_id is None:
            return None
        return self.catalog.programs.get(self.program_id)


def check_draft(text: str, *, name: str, rules: Path) -> DraftCheck:
    """Check ``text``, a program file not (yet) in ``rules``, with the catalog of ``rules``.

    ``name`` is how the problems name the draft; a relative path inside ``rules``
    (``342092-miyoshi/premium.yaml``) also says where the draft stands (in place of that
    file), otherwise (``premium.yaml``, a program id, an absolute path) it stands in a folder
    named by its ``jurisdiction``. A draft with the id of a program in ``rules`` takes that
    program's place. Never raises: text of any kind (binary, huge, nested, tagged) gets
    problems; none of them repeats a My Number it holds.
    """
    try:
        return _check(text, name, rules, None)
    except Exception as exc:  # a checker's bug must not take the console's editor down
        said = Text("draft.unchecked", {"error": type(exc).__name__})
        return DraftCheck([problem(name, 1, "<file>", said)], rules=rules)


def check_rule_file(path: Path, *, rules: Path | None = None) -> DraftCheck:
    """Check the program file ``path`` with the catalog it belongs to: the nearest folder
    above it that holds ``providers.yaml`` (checked in place), else ``rules`` (default: the
    rules :func:`~pointengine.catalog.shipped.rules_folder` finds): in place when ``path`` is
    one of its files however it is named, otherwise as a draft in a folder named by its
    ``jurisdiction`` (``path`` only names it). A ``providers.yaml`` is checked as the provider
    list of its folder (``provider_list``).

    The problems are ``path``'s own; ``elsewhere`` says what is wrong with the other files.
    """
    if not path.is_file():
        return DraftCheck([problem(str(path), 1, "file", Text("draft.no_file"))], rules=rules)
    if path.name == "providers.yaml":
        return _check_providers(path)
    root = catalog_of(path)
    if root is None:
        folder = rules_folder(rules)
        own = _file_of(path, folder)
        if own is not None:  # named from inside the folder (``premium.yaml`` in its own)
            return _check(b"", str(path), folder, own)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            said = Text("file.unreadable", {"reason": exc.strerror or str(exc)})
            return DraftCheck([problem(str(path), 1, "<file>", said)], rules=rules)
        return _check(raw, str(path), folder, None, at=path.name)
    return _check(b"", str(path), root, path)


def _check_providers(path: Path) -> DraftCheck:
    """The provider list ``path`` checked as its folder's (the programs' problems are
    ``elsewhere``)."""
    root = path.parent
    checked = check_catalog(root)
    listed = str(root / "providers.yaml")
    mine = [_named(p, str(path)) for p in [*checked.problems, *checked.catalog.warnings]
            if p.file == listed]
    elsewhere = [p for p in checked.problems if p.file != listed]
    valid = not any(p.severity == "error" for p in mine)
    return DraftCheck(sorted(mine, key=lambda p: p.line), catalog=checked.catalog if valid
                      else None, elsewhere=elsewhere, rules=root, in_catalog=True,
                      provider_list=True)


def _file_of(path: Path, rules: Path) -> Path | None:
    """``path`` as a file of ``rules`` (under ``rules`` as the folder is named), when it is one
    once both are resolved; None when it is not."""
    try:
        resolved, root = path.resolve(), rules.resolve()
    except (OSError, RuntimeError):  # a symlink loop: then it is no file of the folder
        return None
    if resolved == root or not resolved.is_relative_to(root):
        return None
    return rules / resolved.relative_to(root)


def catalog_of(path: Path) -> Path | None:
    """The rules folder ``path`` is a file of: the nearest folder above it holding
    ``providers.yaml``; None when there is none."""
    for folder in path.parents:
        if (folder / "providers.yaml").is_file():
            return folder
    return None


def _check(source: str | bytes, name: str, rules: Path, own: Path | None, *,
           at: str | None = None) -> DraftCheck:
    """Check a draft (``source``, named ``name``), or the file ``own`` of ``rules`` in place.

    ``at`` is what places the draft (see :func:`_place`) when it is not its name: a file given
    on the command line is placed by its file name alone, since the folders above it are the
    user's, not the rules folder's.
    """
    if own is not None and own.name.endswith(".yaml"):
        checked = check_catalog(rules, focus=own)
        data = parse_rule_text(own.read_bytes(), name).data if own.is_file() else None
        place, draft_id = own, None
    else:
        if own is not None:  # a file of the folder not named as rule files are: read it anyway
            source = own.read_bytes()
        if len(source) > MAX_DRAFT_CHARS:
            said = Text("file.too_large", {"size": len(source), "limit": MAX_DRAFT_CHARS})
            return DraftCheck([problem(name, 1, "<file>", said)], rules=rules)
        parsed = parse_rule_text(source, name)
        data = parsed.data
        place = own or _place(name if at is None else at, rules, data)
        # parsed once, under the name it is reported by; checked where it stands
        parsed = replace(parsed, problems=[replace(p, file=str(place)) for p in parsed.problems])
        checked = check_catalog(rules, draft=Source(place, source, own is None, parsed))
        draft_id = checked.draft_id
    mine, warnings = checked.of(place)
    program_id = draft_id or _said(data, "id")
    if own is not None and own.name.endswith(".yaml"):
        program_id = next((p.id for p in checked.catalog.programs.values() if p.path == own),
                          _said(data, "id"))
    found = sorted((_named(p, name) for p in [*mine, *warnings]), key=lambda p: p.line)
    elsewhere = [p for p in checked.problems if p.file != str(place)]
    valid = not any(p.severity == "error" for p in found)
    catalog = checked.catalog if valid and program_id in checked.catalog.programs else None
    return DraftCheck(found, program_id, _said(data, "jurisdiction"), catalog, elsewhere,
                      rules, in_catalog=own is not None)


def _said(data: object, key: str) -> str | None:
    """What the draft's top level says for ``key``, if it is a readable code or name."""
    value = data.get(key) if isinstance(data, dict) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _place(name: str, rules: Path, data: object) -> Path:
    """Where a draft named ``name`` stands among the files of ``rules`` (nothing is written).

    A relative path inside the folder is taken as it is; otherwise the folder is named from
    the draft's jurisdiction: only a known code names it, never the text itself (``/tmp/x``,
    ``../..``), which the checks then report at its line.
    """
    pure = PurePosixPath(name.replace("\\", "/"))
    if not pure.is_absolute() and len(pure.parts) >= 2 and ".." not in pure.parts:
        return rules.joinpath(*pure.parts)
    code = _said(data, "jurisdiction")
    if code == "national":
        folder = "national"
    elif code is not None and code in registry():
        folder = f"{code}-proposed"
    else:
        folder = "proposed"
    file_name = pure.name if pure.name not in ("", ".", "..") else "draft.yaml"
    return rules / folder / file_name


def _named(found: Problem, name: str) -> Problem:
    """``found`` reported against the draft's own name."""
    return replace(found, file=name)


def load_with_proposal(rulefile: Path, rules: Path) -> tuple[Catalog, str]:
    """The catalog in ``rules`` with ``rulefile`` added (or replacing its namesake).

    Returns the catalog and the proposed program's id. Raises :class:`RuleFileError` with
    every problem located in ``rulefile`` itself, and those of the other files if they are
    broken too (all at once: the other files' problems do not hide the draft's), and
    :class:`UnreadableEvents` when ``rules`` is no folder. ``rulefile`` revises its file in
    place when it is a file of ``rules``; otherwise it is a draft in a folder named by its
    ``jurisdiction``, whatever folders its own path names.
    """
    if not rules.is_dir():
        raise UnreadableEvents(f"{rules}: no such file or folder" if not rules.exists()
                               else f"{rules}: not a rules folder (a file)")
    if not rulefile.is_file():
        raise RuleFileError([problem(str(rulefile), 1, "file", Text("draft.no_file"))])
    try:
        raw = rulefile.read_bytes()
    except OSError as exc:
        said = Text("file.unreadable", {"reason": exc.strerror or str(exc)})
        raise RuleFileError([problem(str(rulefile), 1, "<file>", said)]) from None
    parsed = parse_rule_text(raw, str(rulefile))
    if parsed.readable and not parsed.problems and not isinstance(parsed.data, dict):
        raise RuleFileError([problem(str(rulefile), 1, "file", Text("draft.not_mapping"))])
    own = _file_of(rulefile, rules)  # a file of the folder: revised in place
    checked = _check(raw, str(rulefile), rules, own, at=rulefile.name)
    errors = [*checked.errors, *checked.elsewhere]
    if errors:
        raise RuleFileError(errors)
    if checked.catalog is None or checked.program_id is None:  # pragma: no cover - no error
        raise RuleFileError([problem(str(rulefile), 1, "id", Text("draft.no_program"))])
    catalog = checked.catalog
    program = catalog.programs[checked.program_id]
    place = program.path
    catalog.programs[checked.program_id] = Program(program.id, rulefile, program.versions)
    catalog.warnings = [_named(w, str(rulefile)) if w.file == str(place) else w
                        for w in catalog.warnings]
    return catalog, checked.program_id


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A temporary folder of its own; :class:`OutputError` if none can be made."""
    with writing(Path(tempfile.gettempdir())):
        return tempfile.TemporaryDirectory(prefix="pointengine-simulate-")
