"""Rule files: YAML → pydantic model, with every problem located for the staff who wrote it.

``rules/0157/atsuma.yaml:12: award.rat: unknown field 'rat' (did you mean 'rate'?)``

:class:`RuleLoader` has no YAML 1.1 traps: ``015814`` and ``01`` stay strings, so do ``yes``/
``no``/``on``/``off`` (only ``true``/``false`` are booleans); ``2022-01-01`` is a ``date``,
``2022-09-21T00:00:00+09:00`` an aware ``datetime``. Duplicate keys are problems.

Anchors and aliases (``&base``, ``*base``, ``<<: *base``) are refused where they first appear:
no rule file needs them, and a few nested aliases expand to billions of nodes (a "billion
laughs" file would hold ``validate`` and every ``--watch`` reload for minutes). So is a value
nested more than :data:`MAX_DEPTH` levels deep, where it starts: no rule file needs more than
a few, and composing a deeper one would exhaust the interpreter's stack. An explicit tag on a
value it does not fit (``!!timestamp x``) leaves the text for the model to refuse.
"""

from __future__ import annotations

import datetime
import difflib
import enum
import re
import types
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, cast, get_args, get_origin

import pydantic
import yaml
from pydantic import AliasChoices, BaseModel

from pointengine.errors import Problem, RuleFileError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
_KEEP = {"tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp"}
NO_ALIASES = "rule files do not use YAML anchors and aliases"
MAX_DEPTH = 32
"""The deepest a value of a rule file may be nested (the deepest shipped file needs 4)."""


class _Refused(Exception):
    """Raised while composing: something a rule file may not contain, at ``line``."""

    def __init__(self, line: int, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.line, self.loc, self.message = line, loc, message


class RuleLoader(yaml.SafeLoader):
    """A ``SafeLoader`` with YAML 1.2 (core schema) scalars, minus octal/hex, and no aliases."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level registry
        first: [(tag, rx) for tag, rx in rs if tag in _KEEP]
        for first, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str | int] = []  # the key or index of each node being composed
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Compose as PyYAML does, but refuse an anchor or alias before anything is expanded."""
        # index is the key's node for a mapping's value, the position for a sequence's item,
        # None for a mapping's key and for the document's root
        part = index.value if isinstance(index, yaml.ScalarNode) else index
        keyed = isinstance(part, str | int)
        if keyed:
            self._path.append(part)
        self._depth += 1
        try:
            event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
            if self._depth > MAX_DEPTH:
                raise _Refused(event.start_mark.line + 1, tuple(self._path),
                               f"a value nested more than {MAX_DEPTH} levels deep: no rule "
                               "needs it")
            if event.anchor is not None:
                sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
                raise _Refused(event.start_mark.line + 1, tuple(self._path),
                               f"{NO_ALIASES} ({sign}{event.anchor}): write each value out "
                               "in full")
            return cast(yaml.Node, super().compose_node(parent, index))
        finally:
            self._depth -= 1
            if keyed:
                self._path.pop()

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Construct as PyYAML does; a value its explicit tag cannot read (``!!float x``,
        ``!!binary`` that is not base64) is a located error, not PyYAML's own exception."""
        try:
            return super().construct_object(node, deep)
        except (yaml.YAMLError, _Refused):
            raise
        except Exception as exc:  # PyYAML's constructors fail on odd text in many ways
            tag = node.tag.rsplit(":", 1)[-1] if node.tag else "?"
            value = node.value if isinstance(node, yaml.ScalarNode) else "..."
            raise yaml.constructor.ConstructorError(
                None, None, f"the value {value!r} cannot be read as !!{tag} ({exc})",
                node.start_mark) from None

    def construct_lenient_timestamp(self, node: yaml.ScalarNode) -> Any:
        """Build a date/datetime; an impossible one (2022-02-30), or text tagged as one that is
        none (``!!timestamp x``), stays a string for pydantic to refuse where it stands."""
        try:
            return self.construct_yaml_timestamp(node)
        except (ValueError, AttributeError):  # PyYAML's no-match is an AttributeError
            return self.construct_scalar(node)


_SCALARS = {  # YAML 1.2 core schema, except that no leading zero (015814, 01) makes a number
    "bool": (r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    "int": (r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    "float": (
        r"^[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$",
        "-+0123456789.",
    ),
}
for _name, (_pattern, _first) in _SCALARS.items():
    RuleLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_name}", re.compile(_pattern), list(_first)
    )
RuleLoader.add_constructor("tag:yaml.org,2002:timestamp", RuleLoader.construct_lenient_timestamp)


class LineMap:
    """Where each location (pydantic-style ``loc``: str keys and int indexes) starts in the file."""

    def __init__(self, lines: Mapping[Loc, int] | None = None) -> None:
        self.lines: dict[Loc, int] = dict(lines or {})

    def line_of(self, loc: Loc) -> int:
        """The 1-based line of ``loc``, or of its nearest existing ancestor.

        Parts that are not keys in the file (a union tag such as ``'premium'`` that pydantic puts
        in the loc, a missing field) are skipped, so a missing field points at its mapping.
        A digit string also matches a list index (a loc rebuilt from ``Problem.field``).
        """
        found: Loc = ()
        for part in loc:
            index = part.isdecimal() and part == str(int(part)) if isinstance(part, str) else False
            for key in (part, int(part)) if index else (part,):
                if (*found, key) in self.lines:
                    found = (*found, key)
                    break
        return self.lines.get(found, 1)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1 if node.start_mark else 1


class _Indexer:
    """Records the line of every key and item of a node tree, and its duplicate keys."""

    def __init__(self, loader: RuleLoader, file: str) -> None:
        self.loader, self.file = loader, file
        self.lines: dict[Loc, int] = {}
        self.dups: list[Problem] = []

    def index(self, node: yaml.Node, loc: Loc) -> None:
        """Index ``node`` at ``loc`` (the loader refuses aliases, so the nodes form a tree)."""
        pairs: list[tuple[Any, yaml.Node, yaml.Node]] = []
        if isinstance(node, yaml.SequenceNode):
            pairs = [(i, item, item) for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            for knode, vnode in node.value:
                if isinstance(knode, yaml.ScalarNode):
                    key = self.loader.construct_object(knode)
                    ok = isinstance(key, str | int) and not isinstance(key, bool)
                    pairs.append((key if ok else str(key), knode, vnode))
        seen: dict[Any, int] = {}
        for key, knode, vnode in pairs:
            if key in seen:
                msg = f"duplicate key {key!r}, already defined on line {seen[key]}"
                self.dups.append(Problem(self.file, _line(knode), _dotted((*loc, key)), msg))
            seen[key] = _line(knode)
            self.lines[(*loc, key)] = _line(knode)
            self.index(vnode, (*loc, key))


def _load(path: Path) -> tuple[Any, LineMap, list[Problem]]:
    """Parse ``path``; syntax errors raise, duplicate keys are returned as problems."""
    file = str(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        msg = f"cannot read file: {exc.strerror}"
        raise RuleFileError([Problem(file, 1, "<file>", msg)]) from exc
    except UnicodeDecodeError as exc:
        msg = "file is not UTF-8 text (save it as UTF-8, not Shift_JIS)"
        line = raw[: exc.start].count(b"\n") + 1
        raise RuleFileError([Problem(file, line, "<file>", msg)]) from exc
    try:
        loader = RuleLoader(text)  # rejects control characters at once
        indexer = _Indexer(loader, file)
        node = loader.get_single_node()
        if node is None:
            return None, LineMap({(): 1}), []
        indexer.lines[()] = _line(node)
        indexer.index(node, ())
        data = loader.construct_document(node)
    except _Refused as refused:
        raise RuleFileError([Problem(file, refused.line, _dotted(refused.loc),
                                     refused.message)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else text[: getattr(exc, "position", 0)].count("\n") + 1
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start and start.line + 1 != line:
            context += f" on line {start.line + 1}"
        msg = f"YAML syntax error: {getattr(exc, 'problem', None) or str(exc).splitlines()[0]}"
        msg += f" ({context})" if context else ""
        msg += "; indent with spaces, not tabs" if "'\\t'" in msg else ""
        raise RuleFileError([Problem(file, line, "<yaml>", msg)]) from None
    loader.dispose()
    return data, LineMap(indexer.lines), list(dict.fromkeys(indexer.dups))


def load_yaml(path: Path) -> tuple[Any, LineMap]:
    """Parse one YAML document into plain data and a :class:`LineMap` of its locations.

    Raises :class:`RuleFileError` for syntax errors, duplicate keys and unreadable files.
    """
    data, lines, problems = _load(path)
    if problems:
        raise RuleFileError(problems)
    return data, lines


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` is a typo of (ignoring case), or None if none is that close.

    A typo is a few letters added, dropped, changed or swapped: at most one per four letters
    of ``word`` (one for a short word). Names that merely share letters ('period', 'version')
    are not offered: a wrong hint sends staff the wrong way.
    """
    lowered = {c.lower(): c for c in choices}
    word = word.lower()
    if not word:
        return None
    limit = max(1, len(word) // 4)
    scored = [(_edits(word, c), -difflib.SequenceMatcher(None, word, c).ratio(), i, c)
              for i, c in enumerate(lowered)]
    best = min((s for s in scored if s[0] <= limit), default=None)
    return lowered[best[3]] if best else None


def _edits(a: str, b: str) -> int:
    """Letters inserted, deleted, replaced or swapped with a neighbour to turn ``a`` into ``b``."""
    previous, row = None, list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            cost = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (x != y))
            if previous is not None and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, previous[j - 2] + 1)
            current.append(cost)
        previous, row = row, current
    return row[-1]


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def located(
    path: Path,
    lines: LineMap,
    loc: Loc,
    message: str,
    *,
    severity: str = "error",
    suggestion: str | None = None,
) -> Problem:
    """A :class:`Problem` for ``loc`` (data keys/indexes), at its line in the file."""
    return Problem(str(path), lines.line_of(loc), _dotted(loc), message, suggestion, severity)


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``Optional``; a union of several types is returned as is."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif len(members := _members(tp)) == 1:
            tp = members[0]
        else:
            return tp


def _members(tp: Any) -> list[Any]:
    """The members of a union, None left out (Annotated kept, for ``Tag``); [] if no union."""
    if get_origin(tp) not in (Union, types.UnionType):
        return []
    return [m for m in get_args(tp) if m is not type(None)]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _choices(tp: Any) -> list[Any]:
    """The values a Literal or Enum type (or a union of them) allows."""
    tp = _unwrap(tp)
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [member.value for member in tp]
    return [value for member in _members(tp) for value in _choices(member)]


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """Each key the model accepts, with the annotation of its field."""
    config = model.model_config
    by_name = config.get("populate_by_name") or config.get("validate_by_name")
    keys: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        aliases = [alias] if isinstance(alias, str) else [info.alias] if info.alias else []
        if isinstance(alias, AliasChoices):
            aliases = [c for c in alias.choices if isinstance(c, str)]
        for key in [*aliases, *([name] if by_name or not aliases else [])]:
            keys[key] = info.annotation
    return keys


def _select(members: list[Any], part: str | int) -> tuple[Any, bool]:
    """The union member pydantic named ``part`` in a loc; True if it was a discriminator tag."""
    for member in members:
        base = _unwrap(member)
        meta = get_args(member)[1:] if get_origin(member) is Annotated else ()
        if any(getattr(m, "tag", None) == part for m in meta):
            return base, True
        if _is_model(base) and any(part in _choices(a) for a in _fields(base).values()):
            return base, True
        if getattr(base, "__name__", None) == part:
            return base, False
    return None, False


def _trace(tp: Any, loc: Loc) -> tuple[Any, Loc, tuple[Loc, str | int] | None]:
    """Follow ``loc`` through the type ``tp``.

    Returns the type reached (None if it cannot be followed), the loc without the union
    selectors pydantic inserts, and ``(data loc, selector)`` of the first non-discriminated union.
    """
    data: list[str | int] = []
    branch: tuple[Loc, str | int] | None = None
    for part in loc:
        tp = _unwrap(tp)
        if members := _members(tp):
            tp, tagged = _select(members, part)
            if not tagged and branch is None:
                branch = (tuple(data), part)
            continue
        data.append(part)
        origin, args = get_origin(tp), get_args(tp)
        if _is_model(tp):
            tp = _fields(tp).get(str(part))
        elif origin in (dict, Mapping) and len(args) == 2:
            tp = args[0] if part == "[key]" else args[1]
        elif origin in (list, set, frozenset, tuple) and args:
            tp = args[0]
        else:
            tp = None
    return tp, tuple(data), branch


def _same(loc: Loc) -> Loc:
    return loc


def _homes(tp: Any, name: str) -> list[Loc]:
    """Where ``name`` is a field below the type ``tp`` (list items left out), shallowest first."""
    found: list[Loc] = []

    def walk(tp: Any, path: Loc, seen: frozenset[Any]) -> None:
        tp = _unwrap(tp)
        origin, args = get_origin(tp), get_args(tp)
        if members := _members(tp):
            for member in members:
                walk(member, path, seen)
        elif _is_model(tp) and tp not in seen:
            fields = _fields(tp)
            if name in fields and path not in found:
                found.append(path)
            for key, annotation in fields.items():
                walk(annotation, (*path, key), seen | {tp})
        elif origin in (list, set, frozenset, tuple) and args:
            walk(args[0], path, seen)

    walk(tp, (), frozenset())
    return sorted(found, key=len)


def _or(items: list[str]) -> str:
    return " or ".join([", ".join(items[:-1]), items[-1]] if items[1:] else items)


def _convert(
    path: Path, lines: LineMap, model: type[BaseModel], err: Any, place: Callable[[Loc], Loc]
) -> tuple[Problem, Loc | None, tuple[Loc, ...]]:
    """One pydantic error as (Problem, loc if a missing or empty field, locs it explains).

    A missing or empty (null) field is explained, and so not reported, by an unknown field
    whose did-you-mean names it or that was dedented out of it. ``place`` maps the data's loc
    to the loc in the file that the problem is reported at.
    """
    loc, kind, ctx, value = tuple(err["loc"]), err["type"], err.get("ctx") or {}, err.get("input")
    tp, data, _ = _trace(model, loc)
    empty = data if value is None else None
    spot = place(data)
    if kind == "extra_forbidden":
        parent = _unwrap(_trace(model, loc[:-1])[0])
        allowed = list(_fields(parent)) if _is_model(parent) else []
        name = str(data[-1])
        msg = f"unknown field {name!r}"
        # a known field at the wrong level: below this mapping (dedented out of a sibling) or,
        # failing that, anywhere else in the file; its own name beats a look-alike
        here = tuple(part for part in data[:-1] if isinstance(part, str))
        below = [(*data[:-1], *home) for home in _homes(parent, name)]
        anywhere = _homes(model, name)  # not when it is a field here, of another kind
        homes = below or ([] if here in anywhere else anywhere)
        if homes:
            under = [repr(_dotted(home)) for home in homes[:3] if home]
            places = (["at the top level of the file"] if () in homes else []) + (
                [f"under {_or(under)}"] if under else [])
            msg += f" here: it belongs {' or '.join(places)}"
            # the mapping it was dedented out of is left empty or without it: the same mistake
            explains = [*below, *((*home, name) for home in below)]
            return located(path, lines, spot, msg), None, tuple(explains)
        hint = suggest(name, allowed)
        if hint:
            return located(path, lines, spot, msg, suggestion=hint), None, ((*data[:-1], hint),)
        if allowed:
            msg += f"; allowed fields: {', '.join(allowed)}"
        return located(path, lines, spot, msg), None, ()
    if kind == "missing":
        return located(path, lines, spot, f"missing required field {data[-1]!r}"), data, ()
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        disc = str(ctx.get("discriminator", "")).strip("'")
        members = [_unwrap(m) for m in _members(_unwrap(tp))]
        tags = [t for m in members if _is_model(m) for t in _choices(_fields(m).get(disc))]
        shown = ", ".join(repr(t) for t in tags) or ctx.get("expected_tags", "")
        tag = value.get(disc, ctx.get("tag")) if isinstance(value, dict) else ctx.get("tag")
        msg = f"invalid value {tag!r}, expected one of: {shown}"
        if kind == "union_tag_not_found":
            msg = f"missing required field {disc!r} (one of: {shown})"
        hint = suggest(tag, map(str, tags)) if isinstance(tag, str) else None
        return located(path, lines, place((*data, disc)), msg, suggestion=hint), empty, ()
    if kind in ("literal_error", "enum") and (values := _choices(tp)):
        msg = f"invalid value {value!r}, expected one of: {', '.join(repr(v) for v in values)}"
        strings = [v for v in values if isinstance(v, str)]
        hint = suggest(value, strings) if isinstance(value, str) else None
        return located(path, lines, spot, msg, suggestion=hint), empty, ()
    msg = str(err["msg"])
    if kind in ("value_error", "assertion_error"):
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    elif isinstance(value, str | int | float | datetime.date) and len(repr(value)) <= 60:
        msg += f" (got {value!r})"
        if kind == "string_type" and isinstance(value, int | float | datetime.date):
            msg += f"; put it in quotes: '{value}'"
    if data[-1:] == ("[key]",):
        spot, msg = place(data[:-1]), f"invalid key: {msg}"
    return located(path, lines, spot, msg), empty, ()


def problems_from_validation_error(
    path: Path,
    exc: pydantic.ValidationError,
    lines: LineMap,
    model: type[BaseModel],
    *,
    where: Callable[[Loc], Loc] | None = None,
) -> list[Problem]:
    """Turn every error in ``exc`` into a located, friendly :class:`Problem`, sorted by line.

    ``where`` maps a loc of the validated data to where the value is written in the file, when
    the data was assembled from several places (a program's version is its base plus changes).

    A missing field that an unknown field's did-you-mean names, a field left empty when a field
    was dedented out of it, and a list too short only because its invalid items are left out,
    are the same mistake: not repeated.
    """
    converted = []
    for err in exc.errors(include_url=False):
        value, least = err.get("input"), (err.get("ctx") or {}).get("min_length", 0)
        if err["type"] == "too_short" and isinstance(value, list | tuple) and len(value) >= least:
            continue  # long enough as written: only the invalid items, each reported, fell out
        branch = _trace(model, tuple(err["loc"]))[2]
        problem, missing, meant = _convert(path, lines, model, err, where or _same)
        converted.append((problem, (branch, missing), [(branch, m) for m in meant]))
    explained = {m for _, _, meant in converted for m in meant}
    kept = [(p, missing[0]) for p, missing, _ in converted if missing not in explained]
    # a union without discriminator: keep only the branch that has the fewest problems
    counts = Counter(branch for _, branch in kept if branch)
    best: dict[Loc, tuple[Loc, str | int]] = {}
    for branch in sorted(counts, key=counts.__getitem__):  # stable: the first of equals wins
        best.setdefault(branch[0], branch)
    problems = [p for p, branch in kept if not branch or best[branch[0]] == branch]
    return sorted(dict.fromkeys(problems), key=lambda p: p.line)


def load_and_validate(
    path: Path, model: type[M], *, context: dict[str, Any] | None = None
) -> tuple[M, LineMap]:
    """Like :func:`validate_file`, also returning the :class:`LineMap` for the caller's checks."""
    data, lines, problems = _load(path)
    try:
        result = model.model_validate(data, context=context)
    except pydantic.ValidationError as exc:
        problems += problems_from_validation_error(path, exc, lines, model)
        raise RuleFileError(sorted(problems, key=lambda p: p.line)) from None
    if problems:
        raise RuleFileError(problems)
    return result, lines


def validate_file(path: Path, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Load ``path`` and validate it as ``model`` (``context`` goes to ``model_validate``).

    Raises :class:`RuleFileError` listing every problem found in the file, sorted by line.
    """
    return load_and_validate(path, model, context=context)[0]
