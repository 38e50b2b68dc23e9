"""Compiled eligibility checks on durable_rules: the only module that imports it.

A program version's ordered checks become one durable_rules ruleset. durable_rules fires at most
one rule per event and expands ``$or`` into alternatives, so each check ``k`` becomes a pair of
small, mutually exclusive rules, ``k_ok`` (the check holds) and ``k_no`` (its negation holds),
both guarded by a ``stage`` field. Asking for the first failing check asserts the fact at stage
0, 1, ... until a ``_no`` rule fires. Exactly one rule of each pair fires, which is verified on
every call: anything else means the compilation is wrong and raises
:class:`~pointengine.errors.IntegrityError`.

Answers are memoised. The key is not the fact itself but the *class* of each field's value:
a field compared only with constants is reduced to its position among those constants (so
20,000 different store ids or 600 different days collapse into a handful of classes); fields
compared with each other only by ``==``/``!=`` are each reduced to that class too, plus which of
them hold equal values (the transaction's provider and the chosen one: equal or not); a field
compared with another by order keeps its value. Two facts with the same key satisfy exactly the
same comparisons, so they fail the same check.

The memo is shared by every ruleset of the same *shape*: the same checks, in the same order, with
each constant of a classified field replaced by its rank among that field's constants (a field
kept raw keeps its constants). Whether a comparison holds depends only on the value's class and
the constant's rank, so rulesets of one shape give a key the same answer (the index of the first
failing check). 1,741 municipal programs written from one template then warm one memo, not
1,741 of them.

Each check's own outcome is remembered too, under the part of the key that it reads: the class
of each field it compares with a constant, the pattern of the fields it compares with each other,
the values of fields kept raw. Whether a check holds depends only on its shape (its comparisons,
each constant as its rank) and that part, by the same argument, so these outcomes are shared by
every ruleset with a check of that shape reading fields classed the same way (the period of
1,741 programs is one such check, whatever their other checks). An answer of durable_rules
(check ``k`` fails first) says that checks ``0 .. k-1`` hold for the fact and check ``k`` fails;
a key not seen before whose checks are each known, in order, up to the first one known to fail
(or all known to hold) is answered from them without asking durable_rules, and a key with a
check not known yet is asked.
"""

from __future__ import annotations

import itertools
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import durable_rules_engine as _engine
import orjson

from pointengine.decide.conditions import AllOf, Check, Compare, Condition, FieldRef, Value, negate
from pointengine.errors import IntegrityError, OperationalError

_OPS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_STAGE = "check_stage"  # not a fact field
_NAMES = itertools.count()
_LOCK = threading.Lock()  # the C engine is not documented as thread-safe

DEFAULT_CACHE_SIZE = 200_000
_SHARED: dict[tuple[Any, ...], tuple[dict[tuple[Any, ...], int], list[int]]] = {}
# a check's shape and how its fields are classed → (its part of a key → held, [users])
_OUTCOMES: dict[tuple[Any, ...], tuple[dict[tuple[Any, ...], bool], list[int]]] = {}
# constants → (value → class, [users]): dropped with the last ruleset that uses it
_CLASS_CACHES: dict[tuple[Value, ...], tuple[dict[Value, int], list[int]]] = {}


def to_json(c: Condition) -> dict[str, Any]:
    """``c`` as a durable_rules message condition."""
    if isinstance(c, Compare):
        right: Any = {"$m": c.value.field} if isinstance(c.value, FieldRef) else c.value
        if c.op == "==":
            return {c.field: right}
        return {_OPS[c.op]: {c.field: right}}
    parts = [to_json(p) for p in c.parts]
    if isinstance(c, AllOf):
        if not parts:  # always true: stages count from 0
            return {"$gte": {_STAGE: 0}}
        return parts[0] if len(parts) == 1 else {"$and": parts}
    if not parts:  # always false
        return {"$lt": {_STAGE: 0}}
    return parts[0] if len(parts) == 1 else {"$or": parts}


def _constants(c: Condition, out: dict[str, set[Value]], refs: set[str]) -> None:
    if isinstance(c, Compare):
        if isinstance(c.value, FieldRef):
            refs.update((c.field, c.value.field))
        else:
            out.setdefault(c.field, set()).add(c.value)
        return
    for part in c.parts:
        _constants(part, out, refs)


def _ordered_constants(c: Condition, out: set[str]) -> None:
    """Collect the fields compared with a constant by order (<, <=, >, >=)."""
    if isinstance(c, Compare):
        if not isinstance(c.value, FieldRef) and c.op not in ("==", "!="):
            out.add(c.field)
        return
    for part in c.parts:
        _ordered_constants(part, out)


def _references(c: Condition, pairs: list[tuple[str, str]], ordered: set[str]) -> None:
    """Collect field-to-field comparisons: every pair, and the fields compared by order."""
    if isinstance(c, Compare):
        if isinstance(c.value, FieldRef):
            pairs.append((c.field, c.value.field))
            if c.op not in ("==", "!="):
                ordered.update((c.field, c.value.field))
        return
    for part in c.parts:
        _references(part, pairs, ordered)


def _groups(pairs: list[tuple[str, str]], ordered: set[str]) -> tuple[set[str], list[list[str]]]:
    """Fields linked by comparisons: (fields kept raw, groups decided by equality pattern).

    A group with a field compared by order is kept raw entirely.
    """
    parent: dict[str, str] = {}

    def root(f: str) -> str:
        while parent.setdefault(f, f) != f:
            f = parent[f]
        return f

    for a, b in pairs:
        parent[root(a)] = root(b)
    members: dict[str, list[str]] = {}
    for f in sorted(parent):
        members.setdefault(root(f), []).append(f)
    raw: set[str] = set()
    groups: list[list[str]] = []
    for group in members.values():
        if ordered.intersection(group):
            raw.update(group)
        else:
            groups.append(group)
    return raw, groups


def _shape(c: Condition, ranks: Mapping[str, Mapping[Value, int]]) -> tuple[Any, ...]:
    """``c`` with each classified constant replaced by its rank (see the module docstring)."""
    if isinstance(c, Compare):
        if isinstance(c.value, FieldRef):
            return ("ref", c.field, c.op, c.value.field)
        rank = ranks.get(c.field)
        if rank is None:
            return ("raw", c.field, c.op, type(c.value).__name__, c.value)
        return ("rank", c.field, c.op, rank[c.value])
    return (type(c).__name__, tuple(_shape(p, ranks) for p in c.parts))


def _getter(fields: Sequence[str]) -> Callable[[Mapping[str, Value]], tuple[Value, ...]]:
    """Reads ``fields`` of a fact as a tuple, in one C-level call."""
    if not fields:
        return lambda fact: ()
    if len(fields) == 1:
        only = fields[0]
        return lambda fact: (fact[only],)
    return itemgetter(*fields)


def _compared(c: Condition) -> set[tuple[str, bool]]:
    """The fields ``c`` compares: ``(field, False)`` with a constant, ``(field, True)`` with
    another field (both of them)."""
    if isinstance(c, Compare):
        if isinstance(c.value, FieldRef):
            return {(c.field, True), (c.value.field, True)}
        return {(c.field, False)}
    return set().union(*(_compared(part) for part in c.parts))


def _unordered(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """A condition's shape (see :func:`_shape`) with the parts of each ``AllOf`` and ``AnyOf``
    sorted: partners listed in another order make one check."""
    if shape[0] in ("AllOf", "AnyOf"):
        return (shape[0], tuple(sorted((_unordered(part) for part in shape[1]), key=repr)))
    return shape


def _flat_getter(positions: Sequence[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """Reads ``positions`` of a flat key as a tuple."""
    if not positions:
        return lambda flat: ()
    if len(positions) == 1:
        only = positions[0]
        return lambda flat: (flat[only],)
    return itemgetter(*positions)


def _classifier(constants: set[Value]) -> Callable[[Value], int]:
    """Maps a value to its class among ``constants``: below the first, equal to it, between..."""
    ordered = sorted(constants)  # one type per field
    members = frozenset(ordered)

    def classify(value: Value) -> int:
        index = bisect_left(ordered, value)
        return 2 * index + 1 if value in members else 2 * index

    return classify


class CompiledRuleset:
    """The ordered checks of one program version, compiled into a durable_rules ruleset."""

    def __init__(self, name: str, checks: Sequence[Check], *,
                 cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.name = f"{name}#{next(_NAMES)}"  # rulesets cannot be replaced: names are unique
        self.checks = tuple(checks)
        self.cache_size = cache_size
        constants: dict[str, set[Value]] = {}
        refs: set[str] = set()
        for check in self.checks:
            _constants(check.condition, constants, refs)
        self.fields: tuple[str, ...] = tuple(sorted(refs | set(constants)))
        pairs: list[tuple[str, str]] = []
        ordered: set[str] = set()
        for check in self.checks:
            _references(check.condition, pairs, ordered)
        raw, groups = _groups(pairs, ordered)
        self.raw_fields = tuple(f for f in self.fields if f in raw)
        """Fields kept as they are in the memo key (compared with another field by order)."""
        self.groups = tuple(tuple(g) for g in groups)
        """Fields compared with each other by ``==``/``!=`` only: the key holds which are equal."""
        by_order: set[str] = set()
        for check in self.checks:
            _ordered_constants(check.condition, by_order)
        classified = [f for f in self.fields if f not in raw]
        ranks = {f: {v: i for i, v in enumerate(sorted(constants.get(f, ())))}
                 for f in classified}
        # A field compared with constants only by == and != is classed by the constant it
        # equals (its rank; None: none of them), a lookup in a small dict that never misses.
        equal_only = [f for f in classified if f not in by_order]
        self.equal_fields = tuple(equal_only)
        """Fields compared with constants by ``==``/``!=`` only, classed by the constant they
        equal; ``equal_ranks`` holds each one's constants → rank."""
        self.equal_ranks = tuple(ranks[f] for f in equal_only)
        self._equal_values = _getter(equal_only)
        # A field compared by order is classed by its position among the constants; the
        # classes of the values seen are cached, in one cache per set of constants shared by
        # every ruleset (1,741 programs with the same period share the days' classes).
        by_order_fields = [f for f in classified if f in by_order]
        self._classifiers = tuple(_classifier(constants.get(f, set())) for f in by_order_fields)
        self.order_fields = tuple(by_order_fields)
        """Fields compared with constants by order, classed by their position among the sorted
        constants in ``order_constants`` (see :func:`_classifier`)."""
        self.order_constants = tuple(tuple(sorted(constants.get(f, ()))) for f in by_order_fields)
        with _LOCK:
            caches = [_CLASS_CACHES.setdefault(k, ({}, [0])) for k in self.order_constants]
            for _, users in caches:
                users[0] += 1
        self._seen = tuple(cache for cache, _ in caches)
        self._order_values = _getter(by_order_fields)
        self._raw_values = _getter(self.raw_fields)
        self._group_values = tuple(_getter(g) for g in self.groups)
        self._patterns: dict[tuple[Value, ...], tuple[int, ...]] = {}
        self.shape = tuple(_shape(c.condition, ranks) for c in self.checks)
        # Where each check's fields sit in the key laid flat (raw values, order classes,
        # equality classes, then each group's pattern), and what each position holds: a
        # check's part of the key, and what its outcomes are shared under.
        layout: list[tuple[Any, ...]] = [
            *(("raw", f) for f in self.raw_fields), *(("order", f) for f in self.order_fields),
            *(("equal", f) for f in self.equal_fields),
            *(("group", g, j) for g in self.groups for j in range(len(g)))]
        # A comparison with a constant reads its field's value (raw) or class; one with
        # another field reads both values (raw) or the pattern of their group, whole.
        value: dict[str, list[int]] = {}
        pattern: dict[str, list[int]] = {}
        for position, place in enumerate(layout):
            if place[0] == "group":
                for name in place[1]:
                    pattern.setdefault(name, []).append(position)
            else:
                value[place[1]] = [position]
        parts = [sorted({p for name, by_ref in _compared(check.condition)
                         for p in (pattern[name] if by_ref and name in pattern
                                   else value[name])})
                 for check in self.checks]
        self._parts = tuple(_flat_getter(positions) for positions in parts)
        self.outcome_keys: tuple[tuple[Any, ...], ...] = tuple(
            (_unordered(shape), tuple(layout[p] for p in positions))
            for shape, positions in zip(self.shape, parts, strict=True))
        """Per check, what its outcomes are shared under: its shape (its parts in a set
        order: ``AnyOf`` and ``AllOf`` do not depend on theirs), then what each value of its
        part of the key is, in order: ``("raw", field)``, ``("order", field)``, ``("equal",
        field)`` (a class) or ``("group", group, member)`` (a pattern's entry)."""
        with _LOCK:
            memo, users = _SHARED.setdefault(self.shape, ({}, [0]))
            users[0] += 1
            tables = [_OUTCOMES.setdefault(k, ({}, [0])) for k in self.outcome_keys]
            for _, count in tables:
                count[0] += 1
        self._memo = memo
        self._outcomes = tuple(table for table, _ in tables)
        self.hits = 0
        self.misses = 0
        self._handle: int | None = None
        if self.checks:
            rules: dict[str, Any] = {}
            for stage, check in enumerate(self.checks):
                for suffix, cond in (("ok", check.condition), ("no", negate(check.condition))):
                    rules[f"{stage}_{suffix}"] = {
                        "all": [{"m": {"$and": [{_STAGE: stage}, to_json(cond)]}}]}
            try:
                with _LOCK:
                    self._handle = _engine.create_ruleset(self.name, orjson.dumps(rules).decode())
            except Exception as error:  # the C engine raises bare exceptions with codes
                raise OperationalError(
                    f"durable_rules refused the ruleset of {name}: {error}") from error

    def key(self, fact: Mapping[str, Value]) -> tuple[Any, ...]:
        """The memo key of ``fact``: equal keys fail the same check.

        Fields are read in one C-level call per kind and classed with ``map(dict.get, ...)``;
        only a value never seen before by a field compared by order goes through its
        classifier.
        """
        try:
            ordered = self._order_values(fact)
            classes = tuple(map(dict.get, self._seen, ordered))
            if None in classes:
                classes = self._classify(ordered)
            out: tuple[Any, ...] = (self._raw_values(fact), classes,
                                    tuple(map(dict.get, self.equal_ranks,
                                              self._equal_values(fact))))
            if self._group_values:
                patterns = self._patterns
                for group in self._group_values:
                    grouped = group(fact)
                    pattern = patterns.get(grouped)
                    if pattern is None:
                        pattern = tuple(grouped.index(v) for v in grouped)
                        if len(patterns) < self.cache_size:
                            patterns[grouped] = pattern
                    out += (pattern,)
        except KeyError as missing:
            raise IntegrityError(f"the fact has no field {missing}") from None
        return out

    def _classify(self, values: tuple[Value, ...]) -> tuple[int, ...]:
        out: list[int] = []
        for classify, seen, value in zip(self._classifiers, self._seen, values, strict=True):
            cls = seen.get(value)
            if cls is None:
                cls = classify(value)
                if len(seen) < self.cache_size:
                    seen[value] = cls
            out.append(cls)
        return tuple(out)

    def first_failure(self, fact: Mapping[str, Value]) -> Check | None:
        """The first check ``fact`` fails, or None when it passes them all."""
        if self._handle is None:
            return None
        key = self.key(fact)
        index = self._memo.get(key)
        if index is None:
            flat = tuple(itertools.chain.from_iterable(key))
            index = self._from_outcomes(flat)
            if index is None:
                self.misses += 1
                index = self._match(fact)
                self._learn(flat, index)
            else:
                self.hits += 1
            if len(self._memo) >= self.cache_size:
                self._memo.clear()
            self._memo[key] = index
        else:
            self.hits += 1
        return None if index < 0 else self.checks[index]

    def _from_outcomes(self, flat: tuple[Any, ...]) -> int | None:
        """The first failing check (-1: none) from the checks' known outcomes, or None when
        a check before the first known to fail is not known yet."""
        for index, (part, known) in enumerate(zip(self._parts, self._outcomes, strict=True)):
            held = known.get(part(flat))
            if held is None:
                return None
            if not held:
                return index
        return -1

    def _learn(self, flat: tuple[Any, ...], index: int) -> None:
        """Remember what durable_rules said of the checks: those before ``index`` hold, the
        one at ``index`` fails (all hold when it is -1)."""
        for k in range(len(self._parts) if index < 0 else index + 1):
            known = self._outcomes[k]
            if len(known) >= self.cache_size:
                known.clear()
            known[self._parts[k](flat)] = k != index

    def _match(self, fact: Mapping[str, Value]) -> int:
        message = {f: fact[f] for f in self.fields}
        with _LOCK:
            for stage in range(len(self.checks)):
                message[_STAGE] = stage
                fired = self._fire(message)
                if fired == f"{stage}_no":
                    return stage
                if fired != f"{stage}_ok":
                    raise IntegrityError(
                        f"{self.name}: check {self.checks[stage].name!r} fired {fired!r}")
        return -1

    def _fire(self, message: dict[str, Any]) -> str | None:
        handle = self._handle
        assert handle is not None
        code, state = _engine.assert_event(handle, orjson.dumps(message).decode())
        if code != 0:
            return None
        fired: list[str] = []
        result = _engine.start_action_for_state(handle, state)
        while result:
            fired.extend(orjson.loads(result[1]))
            result = _engine.complete_and_start_action(handle, state)
        if len(fired) != 1:
            raise IntegrityError(f"{self.name}: {len(fired)} rules fired for one check: {fired}")
        return fired[0]

    def close(self) -> None:
        """Drop the ruleset from durable_rules (and the shared memo and class caches when it
        was their last user)."""
        if self._handle is not None:
            with _LOCK:
                _engine.delete_ruleset(self._handle)
            self._handle = None
        with _LOCK:
            shared = _SHARED.get(self.shape)
            if shared is not None and shared[0] is self._memo:
                shared[1][0] -= 1
                if shared[1][0] <= 0:
                    del _SHARED[self.shape]
                self._memo = {}
            for key in self.outcome_keys:
                users = _OUTCOMES[key][1]
                users[0] -= 1
                if users[0] <= 0:
                    del _OUTCOMES[key]
            self.outcome_keys = ()
            self._outcomes = ()
            for key in self.order_constants:
                users = _CLASS_CACHES[key][1]
                users[0] -= 1
                if users[0] <= 0:
                    del _CLASS_CACHES[key]
            self.order_constants = ()

    def __repr__(self) -> str:
        return f"CompiledRuleset({self.name!r}, {len(self.checks)} checks)"


class PostRuleset:
    """The benchmark's baseline: a plain ``durable.lang`` ruleset and one ``post()`` per fact.

    This is the straightforward use of durable_rules' Python API that the engine is compared
    with: the same ordered checks as :class:`CompiledRuleset`, written as one ``when_all`` rule
    (every check holds), registered with ``durable.lang.ruleset``; :meth:`passes` posts the
    fact as it is (``post()`` serialises it with the standard ``json`` module, the action runs
    through durable's Promise machinery) and reports whether the rule fired. Nothing is
    memoised and nothing is batched. It answers *whether* a fact qualifies, not which check
    failed first, which is less than the engine asks of its rulesets.
    """

    def __init__(self, name: str, checks: Sequence[Check]) -> None:
        from durable import engine as durable_engine
        from durable import lang

        self.name = f"post:{name}#{next(_NAMES)}"
        self.checks = tuple(checks)
        self._lang = lang
        self._unhandled = durable_engine.MessageNotHandledException
        self._fired = 0
        self.posts = 0
        if not self.checks:
            return
        expression = _lang_condition(lang, AllOf(tuple(c.condition for c in self.checks)))

        def award(_: Any) -> None:
            self._fired += 1

        with lang.ruleset(self.name):
            lang.when_all(expression)(award)
        lang.get_host()  # registers the ruleset

    def passes(self, fact: Mapping[str, Value]) -> bool:
        """Post ``fact`` once; True when the rule (every check holds) fired."""
        if not self.checks:
            return True
        before = self._fired
        self.posts += 1
        try:
            self._lang.post(self.name, dict(fact))
        except self._unhandled:
            return False
        return self._fired > before


def _lang_condition(lang: Any, c: Condition) -> Any:
    """``c`` as a ``durable.lang`` expression on the message ``m``."""
    m = lang.m
    if isinstance(c, Compare):
        left = getattr(m, c.field)
        right = getattr(m, c.value.field) if isinstance(c.value, FieldRef) else c.value
        ops: dict[str, Callable[[Any, Any], Any]] = {
            "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
        return ops[c.op](left, right)
    parts = [_lang_condition(lang, p) for p in c.parts]
    if not parts:  # an empty AllOf always holds, an empty AnyOf never does
        always = (m.type == "") | (m.type != "")
        return always if isinstance(c, AllOf) else (m.type == "") & (m.type != "")
    out = parts[0]
    for part in parts[1:]:
        out = (out & part) if isinstance(c, AllOf) else (out | part)
    return out
