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
import functools
import re
import types
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, cast, get_args, get_origin

import pydantic
import yaml
from pydantic import AliasChoices, BaseModel

from pointengine.catalog.messages import Either, Phrase, from_model_error, from_pydantic, problem
from pointengine.errors import Problem, RuleFileError
from pointengine.i18n import Text
from pointengine.model.privacy import carries_my_number

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
_KEEP = {"tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp"}
NO_ALIASES = "rule files do not use YAML anchors and aliases"
"""How the problem of an anchor or alias begins (``yaml.alias`` of the catalog's messages)."""
MAX_DEPTH = 32
"""The deepest a value of a rule file may be nested (the deepest shipped file needs 4)."""
MAX_CONVERTED = 500
"""The most errors of one validation said one by one (each costs a search for its hint): a
rule file has a few dozen values, so more than this is not a file being written."""


class _Refused(Exception):
    """Raised while composing: something a rule file may not contain, at ``line``."""

    def __init__(self, line: int, loc: Loc, text: Text, blank: int) -> None:
        super().__init__(text.code)
        self.line, self.loc, self.text, self.blank = line, loc, text, blank


class _TagValue(yaml.constructor.ConstructorError):
    """A value its explicit tag cannot read (``!!float x``): PyYAML's error, with its parts."""

    def __init__(self, value: str, tag: str, cause: str, mark: yaml.Mark | None) -> None:
        super().__init__(None, None, f"the value {value} cannot be read as !!{tag} ({cause})",
                         mark)
        self.value, self.tag, self.cause = value, tag, cause


class _Unreadable(Exception):
    """Raised by :func:`_compose`: the text is not YAML at ``problem``; ``blank`` is the line
    to leave out to read the rest (None: nothing after it can be trusted)."""

    def __init__(self, found: Problem, blank: int | None) -> None:
        super().__init__(found.message)
        self.problem, self.blank = found, blank


class RuleLoader(yaml.SafeLoader):
    """A ``SafeLoader`` with YAML 1.2 (core schema) scalars, minus octal/hex, and no aliases."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level registry
        first: [(tag, rx) for tag, rx in rs if tag in _KEEP]
        for first, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str | int] = []  # the key or index of each node being composed
        self._top = 1  # the line of the top-level entry being composed
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
            line = event.start_mark.line + 1
            if self._depth == 2:
                self._top = index.start_mark.line + 1 if keyed and index is not part else line
            if self._depth > MAX_DEPTH:
                # the whole entry is what is too deep: to read on, leave it all out
                raise _Refused(line, tuple(self._path),
                               Text("yaml.too_deep", {"depth": MAX_DEPTH}), self._top)
            if event.anchor is not None:
                sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
                raise _Refused(line, tuple(self._path),
                               Text("yaml.alias", {"mark": f"{sign}{event.anchor}"}), line)
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
            raise _TagValue(repr(value), tag, str(exc), node.start_mark) from None

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
                said = Text("yaml.duplicate_key", {"key": repr(key), "line": seen[key]})
                self.dups.append(problem(self.file, _line(knode), _dotted((*loc, key)), said))
            seen[key] = _line(knode)
            self.lines[(*loc, key)] = _line(knode)
            self.index(vnode, (*loc, key))


@dataclass
class Parsed:
    """A rule file's text read: its data, where each value is written, and its problems.

    After a syntax error the rest of the file is still read, without the lines of
    ``skipped`` (the line PyYAML could not read and the lines indented under it), so that the
    file's other problems are found too. What those lines held is then missing from ``data``:
    :meth:`keeps` tells which problems found later are not that loss again.
    """

    data: Any
    lines: LineMap
    problems: list[Problem]
    readable: bool = True
    """False when nothing could be read: ``data`` is None and ``problems`` say why."""
    skipped: tuple[int, int] | None = None
    """The first and last line left out after a syntax error, or None."""

    @property
    def partial(self) -> bool:
        """True when some lines were left out: what is missing may be there, unreadable."""
        return self.skipped is not None

    def keeps(self, found: Problem) -> bool:
        """False for a problem located on the lines left out (its value is not theirs)."""
        return self.skipped is None or not self.skipped[0] <= found.line <= self.skipped[1]


_BREAK = re.compile("(\r\n|[\n\r\x85\u2028\u2029])")
"""PyYAML's line breaks: the lines of its marks."""
# Where the text that failed begins, for the contexts that name it: an unclosed quote or
# bracket, a key without its colon. Other contexts (a block mapping) start far above it.
_FROM_CONTEXT = ("while scanning a simple key", "while scanning a quoted scalar",
                 "while scanning a double-quoted scalar", "while scanning a single-quoted scalar",
                 "while scanning a block scalar", "while parsing a flow sequence",
                 "while parsing a flow mapping")


def _compose(text: str, file: str) -> tuple[Any, LineMap, list[Problem]]:
    """Parse ``text``: its data, lines and duplicate keys; :class:`_Unreadable` when it is not
    one YAML document a rule file may be."""
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
        raise _Unreadable(problem(file, refused.line, _dotted(refused.loc), refused.text),
                          refused.blank) from None
    except yaml.YAMLError as exc:
        raise _Unreadable(*_syntax_error(exc, text, file)) from None
    loader.dispose()
    return data, LineMap(indexer.lines), list(dict.fromkeys(indexer.dups))


def _syntax_error(exc: yaml.YAMLError, text: str, file: str) -> tuple[Problem, int | None]:
    """PyYAML's error as a located problem, and the line to leave out to read on."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark else text[: getattr(exc, "position", 0)].count("\n") + 1
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if isinstance(exc, _TagValue):
        said = Text("yaml.tag_value", {"value": exc.value, "tag": exc.tag, "cause": exc.cause})
        return problem(file, line, "<yaml>", said), line
    what = Phrase(getattr(exc, "problem", None) or str(exc).splitlines()[0])
    said = Text("yaml.syntax", {"problem": what})
    if context:
        where: Phrase | Text = Phrase(context)
        if start and start.line + 1 != line:
            where = Text("yaml.context_from", {"context": where, "line": start.line + 1})
        said = Text("yaml.syntax_while", {"problem": what, "context": where})
    found = problem(file, line, "<yaml>", said)
    if "'\\t'" in found.message:
        found = problem(file, line, "<yaml>", Text("yaml.tabs", {"detail": said}))
    if isinstance(exc, yaml.composer.ComposerError):
        return found, None  # a second document: nothing to leave out that makes it one
    blank = line
    if context in _FROM_CONTEXT and start is not None:
        blank = start.line + 1
    return found, blank


def _block(lines: list[str], first: int) -> tuple[int, int]:
    """Line ``first`` (1-based) and the lines indented under it: one item, one key's value."""
    def indent(row: str) -> int:
        return len(row) - len(row.lstrip(" \t"))

    own, last = indent(lines[first - 1]), first
    for number in range(first + 1, len(lines) + 1):
        row = lines[number - 1]
        if not row.strip() or row.lstrip().startswith("#"):
            continue
        if indent(row) <= own:
            break
        last = number
    return first, last


def parse_rule_text(source: str | bytes, file: str) -> Parsed:
    """Read a rule file's text (``bytes`` as read from disk, UTF-8); never raises.

    A syntax error, an anchor or a value nested too deep is a problem, and the rest of the
    file is read without its line (see :class:`Parsed`); duplicate keys and a line that holds
    a My Number are problems too.
    """
    if isinstance(source, bytes):
        try:
            text = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = source[: exc.start].count(b"\n") + 1
            return Parsed(None, LineMap({(): 1}),
                          [problem(file, line, "<file>", Text("file.not_utf8"))], readable=False)
    else:
        text = source.removeprefix("\ufeff")
    private = _my_numbers(text, file)
    try:
        data, lines, dups = _compose(text, file)
        return Parsed(data, lines, [*private, *dups])
    except _Unreadable as unreadable_at:
        found, blank = unreadable_at.problem, unreadable_at.blank
    rows = _BREAK.split(text)  # lines at even indexes, their breaks between them
    unreadable = Parsed(None, LineMap({(): 1}), [*private, found], readable=False)
    if blank is None or not 0 < blank <= (len(rows) + 1) // 2:
        return unreadable
    span = _block(rows[0::2], blank)
    for number in range(span[0], span[1] + 1):
        rows[2 * (number - 1)] = ""
    try:
        data, lines, dups = _compose("".join(rows), file)
    except _Unreadable:
        return unreadable  # a second error, or the first's consequence: say only the first
    kept = [p for p in dups if not span[0] <= p.line <= span[1]]
    return Parsed(data, lines, sorted([*private, found, *kept], key=lambda p: p.line),
                  skipped=span)


def _my_numbers(text: str, file: str) -> list[Problem]:
    """A problem for each line that holds a My Number (none is ever repeated)."""
    if not carries_my_number(text.encode("utf-8", "surrogatepass")):
        return []
    rows = _BREAK.split(text)[0::2]
    return [problem(file, number, "<file>", Text("file.my_number"))
            for number, row in enumerate(rows, 1)
            if carries_my_number(row.encode("utf-8", "surrogatepass"))]


def read_rule_file(path: Path) -> Parsed:
    """Read the rule file at ``path`` (see :func:`parse_rule_text`); never raises."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        said = Text("file.unreadable", {"reason": exc.strerror or str(exc)})
        return Parsed(None, LineMap({(): 1}), [problem(str(path), 1, "<file>", said)],
                      readable=False)
    return parse_rule_text(raw, str(path))


def load_yaml(path: Path) -> tuple[Any, LineMap]:
    """Parse one YAML document into plain data and a :class:`LineMap` of its locations.

    Raises :class:`RuleFileError` for syntax errors, duplicate keys and unreadable files.
    """
    parsed = read_rule_file(path)
    if parsed.problems:
        raise RuleFileError(parsed.problems)
    return parsed.data, parsed.lines


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
    # no fewer edits than the lengths differ: most choices are ruled out without counting
    scored = [(_edits(word, c), -difflib.SequenceMatcher(None, word, c).ratio(), i, c)
              for i, c in enumerate(lowered) if abs(len(c) - len(word)) <= limit]
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
    message: Text | str,
    *,
    severity: str = "error",
    suggestion: str | None = None,
) -> Problem:
    """A :class:`Problem` for ``loc`` (data keys/indexes), at its line in the file.

    ``message`` is a :class:`Text` of :data:`pointengine.catalog.messages.MESSAGES` (said in
    Japanese and English), or an English sentence of a caller's own.
    """
    if isinstance(message, Text):
        return problem(str(path), lines.line_of(loc), _dotted(loc), message, suggestion,
                       severity)
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
    try:
        index = _home_index(tp)
    except TypeError:  # a type that cannot be a cache key: walked each time
        index = _walk_homes(tp)
    return list(index.get(name, ()))


@functools.lru_cache(maxsize=64)
def _home_index(tp: Any) -> dict[str, tuple[Loc, ...]]:
    """:func:`_walk_homes` once per type: a file of a thousand unknown fields asks a thousand
    times."""
    return _walk_homes(tp)


def _walk_homes(tp: Any) -> dict[str, tuple[Loc, ...]]:
    """Each field name below the type ``tp`` → where it is a field, shallowest first."""
    found: dict[str, list[Loc]] = {}

    def walk(tp: Any, path: Loc, seen: frozenset[Any]) -> None:
        tp = _unwrap(tp)
        origin, args = get_origin(tp), get_args(tp)
        if members := _members(tp):
            for member in members:
                walk(member, path, seen)
        elif _is_model(tp) and tp not in seen:
            fields = _fields(tp)
            for key in fields:
                homes = found.setdefault(key, [])
                if path not in homes:
                    homes.append(path)
            for key, annotation in fields.items():
                walk(annotation, (*path, key), seen | {tp})
        elif origin in (list, set, frozenset, tuple) and args:
            walk(args[0], path, seen)

    walk(tp, (), frozenset())
    return {key: tuple(sorted(homes, key=len)) for key, homes in found.items()}


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
        # a known field at the wrong level: below this mapping (dedented out of a sibling) or,
        # failing that, anywhere else in the file; its own name beats a look-alike
        here = tuple(part for part in data[:-1] if isinstance(part, str))
        below = [(*data[:-1], *home) for home in _homes(parent, name)]
        anywhere = _homes(model, name)  # not when it is a field here, of another kind
        homes = below or ([] if here in anywhere else anywhere)
        if homes:
            parents = Either(tuple(repr(_dotted(home)) for home in homes[:3] if home))
            places = (Text("field.at_top_or_under", {"parents": parents}) if () in homes
                      and parents.items else Text("field.at_top") if () in homes
                      else Text("field.under", {"parents": parents}))
            said = Text("field.misplaced", {"name": repr(name), "places": places})
            # the mapping it was dedented out of is left empty or without it: the same mistake
            explains = [*below, *((*home, name) for home in below)]
            return located(path, lines, spot, said), None, tuple(explains)
        hint = suggest(name, allowed)
        if hint:
            said = Text("field.unknown", {"name": repr(name)})
            return located(path, lines, spot, said, suggestion=hint), None, ((*data[:-1], hint),)
        if allowed:
            said = Text("field.unknown_allowed",
                        {"name": repr(name), "allowed": ", ".join(allowed)})
            return located(path, lines, spot, said), None, ()
        return located(path, lines, spot, Text("field.unknown", {"name": repr(name)})), None, ()
    if kind == "missing":
        said = Text("field.missing", {"name": repr(data[-1])})
        return located(path, lines, spot, said), data, ()
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        disc = str(ctx.get("discriminator", "")).strip("'")
        members = [_unwrap(m) for m in _members(_unwrap(tp))]
        tags = [t for m in members if _is_model(m) for t in _choices(_fields(m).get(disc))]
        shown = ", ".join(repr(t) for t in tags) or ctx.get("expected_tags", "")
        tag = value.get(disc, ctx.get("tag")) if isinstance(value, dict) else ctx.get("tag")
        said = Text("value.choice", {"value": repr(tag), "choices": shown})
        if kind == "union_tag_not_found":
            said = Text("field.missing_kind", {"name": repr(disc), "choices": shown})
        hint = suggest(tag, map(str, tags)) if isinstance(tag, str) else None
        return located(path, lines, place((*data, disc)), said, suggestion=hint), empty, ()
    if kind in ("literal_error", "enum") and (values := _choices(tp)):
        said = Text("value.choice", {"value": repr(value),
                                     "choices": ", ".join(repr(v) for v in values)})
        strings = [v for v in values if isinstance(v, str)]
        hint = suggest(value, strings) if isinstance(value, str) else None
        return located(path, lines, spot, said, suggestion=hint), empty, ()
    msg = str(err["msg"])
    if kind.startswith("model."):  # a check of the rule language: its code and arguments
        said = from_model_error(kind, ctx, msg)
    elif kind in ("value_error", "assertion_error"):  # a check that has no code: its English
        said = Text("value.invalid", {"detail": msg.removeprefix("Value error, ")
                                      .removeprefix("Assertion failed, ")})
    else:
        said = from_pydantic(kind, ctx, msg)
        if said.code == "pydantic.string_pattern_mismatch" and data[-1:] == ("id",):
            said = Text("value.id_pattern", said.args)  # the regular expression, in words
        if isinstance(value, str | int | float | datetime.date) and len(repr(value)) <= 60:
            said = Text("value.got", {"detail": said, "value": repr(value)})
            if kind == "string_type" and isinstance(value, int | float | datetime.date):
                said = Text("value.quote", {"detail": said, "value": str(value)})
    if data[-1:] == ("[key]",):
        spot, said = place(data[:-1]), Text("value.key", {"detail": said})
    return located(path, lines, spot, said), empty, ()


def problems_from_validation_error(
    path: Path,
    exc: pydantic.ValidationError,
    lines: LineMap,
    model: type[BaseModel],
    *,
    where: Callable[[Loc], Loc] | None = None,
    lenient: bool = False,
) -> list[Problem]:
    """Turn every error in ``exc`` into a located, friendly :class:`Problem`, sorted by line.

    ``where`` maps a loc of the validated data to where the value is written in the file, when
    the data was assembled from several places (a program's version is its base plus changes).
    ``lenient`` leaves out what is missing or empty: after a syntax error, the lines that could
    not be read may hold it (see :class:`Parsed`).

    A missing field that an unknown field's did-you-mean names, a field left empty when a field
    was dedented out of it, and a list too short only because its invalid items are left out,
    are the same mistake: not repeated.
    """
    converted = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_CONVERTED]:
        value, least = err.get("input"), (err.get("ctx") or {}).get("min_length", 0)
        if err["type"] == "too_short" and isinstance(value, list | tuple) and len(value) >= least:
            continue  # long enough as written: only the invalid items, each reported, fell out
        branch = _trace(model, tuple(err["loc"]))[2]
        found, missing, meant = _convert(path, lines, model, err, where or _same)
        if lenient and missing is not None:
            continue
        converted.append((found, (branch, missing), [(branch, m) for m in meant]))
    explained = {m for _, _, meant in converted for m in meant}
    kept = [(p, missing[0]) for p, missing, _ in converted if missing not in explained]
    # a union without discriminator: keep only the branch that has the fewest problems
    counts = Counter(branch for _, branch in kept if branch)
    best: dict[Loc, tuple[Loc, str | int]] = {}
    for branch in sorted(counts, key=counts.__getitem__):  # stable: the first of equals wins
        best.setdefault(branch[0], branch)
    problems = [p for p, branch in kept if not branch or best[branch[0]] == branch]
    if len(errors) > MAX_CONVERTED:
        last = max((p.line for p in problems), default=1)
        problems.append(problem(str(path), last, "<file>", Text(
            "file.more_problems", {"count": len(errors) - MAX_CONVERTED})))
    return sorted(dict.fromkeys(problems), key=lambda p: p.line)


def load_and_validate(
    path: Path, model: type[M], *, context: dict[str, Any] | None = None
) -> tuple[M, LineMap]:
    """Like :func:`validate_file`, also returning the :class:`LineMap` for the caller's checks."""
    parsed = read_rule_file(path)
    if not parsed.readable:
        raise RuleFileError(parsed.problems)
    problems = list(parsed.problems)
    try:
        result = model.model_validate(parsed.data, context=context)
    except pydantic.ValidationError as exc:
        problems += [p for p in problems_from_validation_error(
            path, exc, parsed.lines, model, lenient=parsed.partial) if parsed.keeps(p)]
        raise RuleFileError(sorted(problems, key=lambda p: p.line)) from None
    if problems:
        raise RuleFileError(problems)
    return result, parsed.lines


def validate_file(path: Path, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Load ``path`` and validate it as ``model`` (``context`` goes to ``model_validate``).

    Raises :class:`RuleFileError` listing every problem found in the file, sorted by line.
    """
    return load_and_validate(path, model, context=context)[0]
