"""Hot reload: rule files change while the engine runs.

A :class:`CatalogWatcher` is polled between batches. It looks at the rules folder's rule files,
and at near misses such as ``premium.yml`` so that one dropped in is reported, not ignored
(sizes and modification times first, then SHA-256 of the contents, so a mere ``touch`` changes
nothing), and when the contents changed it loads and validates the whole catalog again. The new
catalog goes into the engine (:meth:`Engine.swap_catalog`) only when it is valid; otherwise the
located problems are reported and the old catalog stays in force.

Versions are history. A program's new version (an entry under ``versions`` with its
``effective_from``) decides the events at or after that time; earlier events, replayed or late,
are still decided by the version in force then (:meth:`Program.version_at`), and the ledger
names the version that decided each line. So a version that the engine already holds may not be
changed in place or removed: such an edit is refused with a problem that asks for a new
version. Only its descriptive fields (``name``, ``note``, ``assumptions``) may be reworded.
Unchanged versions keep their objects, and so their compiled rulesets; the engine drops the
rulesets of versions that are gone.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pointengine.catalog.loading import Catalog, Program, load_catalog, watched_files
from pointengine.catalog.programs import ProgramVersion
from pointengine.catalog.rulefile import load_yaml, located
from pointengine.decide.engine import Engine
from pointengine.errors import Problem, RuleFileError

_WORDING = frozenset({"name", "note", "assumptions"})
Stat = dict[str, tuple[int, int]]


@dataclass(frozen=True)
class ReloadResult:
    """What one poll found: nothing, a catalog swapped in, or an edit refused."""

    status: Literal["unchanged", "reloaded", "rejected"]
    changed: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """Human lines for a log."""
        if self.status == "unchanged":
            return []
        files = ", ".join(self.changed) or "rules"
        if self.status == "rejected":
            return [f"rules changed ({files}): refused, the previous catalog stays in force",
                    *(str(p) for p in self.problems)]
        out = [f"rules changed ({files}): catalog reloaded"]
        if self.added:
            out.append("  new versions: " + ", ".join(self.added))
        if self.removed:
            out.append("  removed: " + ", ".join(self.removed))
        out.extend(f"  {w}" for w in self.warnings)
        return out


@dataclass
class CatalogWatcher:
    """Polls a rules folder and swaps a valid new catalog into ``engine``.

    ``interval`` is the least time in seconds between two looks at the files (0 looks at
    every poll); ``on_result`` is called with every result that is not ``unchanged``.
    """

    root: Path
    engine: Engine
    interval: float = 1.0
    on_result: Callable[[ReloadResult], None] | None = None
    clock: Callable[[], float] = time.monotonic
    _stat: Stat = field(default_factory=dict)
    _hashes: dict[str, str] = field(default_factory=dict)  # of the rules in force
    _refused: dict[str, str] | None = None  # of the last edit refused
    _last: float = float("-inf")

    def __post_init__(self) -> None:
        self._stat = self._scan()
        self._hashes = self._digest(self._stat)
        self._last = self.clock()

    @property
    def catalog(self) -> Catalog:
        """The catalog in force."""
        return self.engine.catalog

    def after_batch(self) -> None:
        """A :func:`~pointengine.replay.run.replay` ``after_batch`` hook: poll between batches."""
        self.poll()

    def poll(self, *, force: bool = False) -> ReloadResult:
        """Look for changed rule files; reload, validate and swap when they changed.

        A refused edit is reported once; the files are read again when they change again
        (including a file that could not be read going away).
        """
        now = self.clock()
        if not force and now - self._last < self.interval:
            return ReloadResult("unchanged")
        self._last = now
        stat = self._scan()
        if stat == self._stat:
            return ReloadResult("unchanged")
        self._stat = stat
        hashes = self._digest(stat)
        if hashes == self._hashes and self._refused is None:  # touched only
            return ReloadResult("unchanged")
        if hashes == self._refused:  # the refused edit, already reported
            return ReloadResult("unchanged")
        changed = tuple(sorted(
            str(Path(p).relative_to(self.root)) for p in set(hashes) | set(self._hashes)
            if hashes.get(p) != self._hashes.get(p)))
        result = self._reload(changed)
        if result.status == "reloaded":
            self._hashes, self._refused = hashes, None
        else:
            self._refused = hashes
        if self.on_result is not None:
            self.on_result(result)
        return result

    def _reload(self, changed: tuple[str, ...]) -> ReloadResult:
        try:
            fresh = load_catalog(self.root)
        except RuleFileError as exc:
            return ReloadResult("rejected", changed, tuple(exc.problems))
        except Exception as exc:  # a loader's bug must not stop a worker: the rules stay
            return ReloadResult("rejected", changed, (Problem(
                str(self.root), 1, "<catalog>",
                f"the rules could not be loaded ({type(exc).__name__}: {exc}); the rules in "
                "force stay"),))

        old = self.engine.catalog
        problems: list[Problem] = []
        added: list[str] = []
        for program in fresh.programs.values():
            before = old.programs.get(program.id)
            if before is None:
                added.extend(v.label for v in program.versions)
                continue
            added.extend(_keep_history(before, program, problems))
        if problems:
            return ReloadResult("rejected", changed, tuple(problems))
        removed = tuple(sorted(set(old.programs) - set(fresh.programs)))
        self.engine.swap_catalog(fresh)
        return ReloadResult("reloaded", changed, (), tuple(fresh.warnings), tuple(added),
                            removed)

    def _scan(self) -> Stat:
        out: Stat = {}
        for path in watched_files(self.root):
            try:
                info = path.stat()
            except FileNotFoundError:  # removed while we looked, or a dangling link
                if path.is_symlink():
                    out[str(path)] = (-1, -1)
                continue
            out[str(path)] = (info.st_mtime_ns, info.st_size)
        return out

    @staticmethod
    def _digest(stat: Stat) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in stat:
            try:
                out[name] = hashlib.sha256(Path(name).read_bytes()).hexdigest()
            except OSError:  # unreadable: load_catalog will say so
                out[name] = "unreadable"
        return out


def _keep_history(before: Program, after: Program, problems: list[Problem]) -> list[str]:
    """Check that ``after`` keeps every version of ``before``; reuse the unchanged objects.

    Returns the labels of the versions ``after`` adds.
    """
    for i, old in enumerate(before.versions):
        if i >= len(after.versions):
            problems.append(_problem(after, i, f"version {old.version} of {before.id} is "
                                     "already in force and cannot be removed"))
            continue
        new = after.versions[i]
        if _rule(new) != _rule(old):
            problems.append(_problem(after, i, f"version {old.version} of {before.id} is "
                                     "already in force and cannot change; add a new version "
                                     "under 'versions' with its effective_from"))
        elif new == old:
            after.versions[i] = old  # the same object: its compiled ruleset is kept
    return [v.label for v in after.versions[len(before.versions):]]


def _rule(version: ProgramVersion) -> dict[str, object]:
    return version.model_dump(exclude=set(_WORDING))


def _problem(program: Program, index: int, message: str) -> Problem:
    try:
        _, lines = load_yaml(program.path)
    except RuleFileError:  # pragma: no cover - the file was just loaded
        return Problem(str(program.path), 1, "versions", message)
    loc: tuple[str | int, ...] = ("versions", index - 1, "version") if index else ("id",)
    return located(program.path, lines, loc, message)
