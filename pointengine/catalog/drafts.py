"""Drafts: a program file checked together with the catalog it would join.

A draft (a file being written, or text in the console's editor) is validated as ``validate``
validates the rules folder, in a temporary copy of that folder with the draft added, or in place
of the program it revises (same id, or the same file). Its problems are reported against the
draft's own name and lines.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.catalog.rulefile import load_yaml
from pointengine.errors import OutputError, Problem, RuleFileError
from pointengine.model.municipalities import registry
from pointengine.model.output import writing


def load_with_proposal(rulefile: Path, rules: Path) -> tuple[Catalog, str]:
    """The shipped catalog in ``rules`` with ``rulefile`` added (or replacing its namesake).

    Returns the catalog and the proposed program's id. Raises :class:`RuleFileError` with
    every problem located in ``rulefile`` itself (or in the shipped files, if those are broken),
    and :class:`OutputError` when the temporary copy of the rules cannot be written.
    """
    if not rulefile.is_file():
        raise RuleFileError([Problem(str(rulefile), 1, "file", "no such rule file")])
    shipped = load_catalog(rules)
    data, _ = load_yaml(rulefile)
    if not isinstance(data, dict):
        raise RuleFileError([Problem(str(rulefile), 1, "file",
                                     "a program file is a mapping of fields")])
    program_id = str(data.get("id", ""))
    jurisdiction = data.get("jurisdiction")
    replaced = {rulefile.resolve()}
    if program_id in shipped.programs:
        replaced.add(shipped.programs[program_id].path.resolve())
    with scratch() as tmp:
        root = Path(tmp) / "rules"

        def skip(folder: str, names: list[str]) -> set[str]:
            return {n for n in names if (Path(folder) / n).resolve() in replaced}

        _copy_rules(rules, root, skip)
        # The folder is named from the file's own text: only a known code may name it, never
        # a path ("/tmp/x", "../.."). Any other value is left for load_catalog to report at
        # its line.
        code = str(jurisdiction) if isinstance(jurisdiction, str | int) else None
        if code == "national":
            folder = "national"
        elif code in registry():
            folder = f"{code}-proposed"
        else:
            folder = "proposed"
        dest = root / folder / rulefile.name
        proposed = rulefile.read_bytes()
        with writing(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(proposed)

        def home(problem: Problem) -> Problem:
            if problem.file == str(dest):
                return Problem(str(rulefile), problem.line, problem.field, problem.message,
                               problem.suggestion, problem.severity)
            if problem.file.startswith(str(root)):
                name = str(rules / Path(problem.file).relative_to(root))
                return Problem(name, problem.line, problem.field, problem.message,
                               problem.suggestion, problem.severity)
            return problem

        try:
            catalog = load_catalog(root)
        except RuleFileError as exc:
            raise RuleFileError([home(p) for p in exc.problems]) from None
        catalog.warnings = [home(w) for w in catalog.warnings]
    if program_id not in catalog.programs:  # pragma: no cover - load_catalog checks the id
        raise RuleFileError([Problem(str(rulefile), 1, "id", "the file defines no program")])
    return catalog, program_id


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A temporary folder of its own; :class:`OutputError` if none can be made."""
    with writing(Path(tempfile.gettempdir())):
        return tempfile.TemporaryDirectory(prefix="pointengine-simulate-")


def _copy_rules(rules: Path, root: Path, skip: Callable[[str, list[str]], set[str]]) -> None:
    """Copy the rules folder to ``root``; :class:`OutputError` naming ``root`` if it cannot."""
    failures: list[OSError] = []

    def copy(source: str, target: str) -> object:
        try:
            return shutil.copy2(source, target)
        except OSError as exc:
            failures.append(exc)
            raise

    try:
        shutil.copytree(rules, root, ignore=skip, copy_function=copy)
    except OSError as exc:
        # copytree gathers every file's failure into one shutil.Error whose text is a list:
        # the first file's own error says why
        raise OutputError(root, failures[0] if failures else exc) from exc
