# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The lane's facts as integers, and each ruleset's answers memoised under its own key.

A fact (:func:`pointengine.decide.facts.build_fact`) is held as one integer per field, in the order
of :data:`pointengine.decide.facts.FIELDS`; a string is held as its number in a :class:`Symbols`
table (0 is the empty string). A :class:`Plan` classes such a fact for one compiled ruleset
exactly as :meth:`CompiledRuleset.key <pointengine.decide.matching.CompiledRuleset.key>` does (each
field by the constants it is compared with), as a vector of integers, and looks its answer up
in a :class:`VectorMemo` shared by every ruleset of the same shape; a key not seen before is
answered from the outcomes of its checks when each is known (see
:mod:`pointengine.decide.matching`: a check's outcome depends only on its shape and its own part
of the key, and is shared by every plan with a check of that shape), else by the ruleset itself,
that is by durable_rules, and remembered.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_AsLongLong
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcpy, memset

import math

from pointengine.errors import IntegrityError
from pointengine.decide.facts import BLANK, FIELDS
from pointengine.decide.matching import DEFAULT_CACHE_SIZE
from pointengine.model.municipalities import registry

# The fields of a fact, in slot order (the S_* constants of memo.pxd).
SLOT_NAMES = ("type", "day", "provider", "chosen1", "chosen2", "basis1", "basis2",
              "applied1_on", "applied2_on", "card_applied_on", "phase1_applicant", "residence",
              "residence_pref", "store", "store_place", "store_pref", "age",
              "health_insurance", "public_funds_account", "activity", "place", "program")
if tuple(FIELDS) != SLOT_NAMES:
    raise IntegrityError("pointengine.lane.memo: the fact's fields changed; update its slots")


cdef class Symbols:
    """Strings numbered as the lane's facts hold them (0 is the empty string), which slots of
    a fact hold strings, every field's blank value, and the places of residence codes."""

    def __init__(self) -> None:
        cdef int k
        self.numbers = {"": 0}
        self.names = [""]
        self.places = {}
        for k, name in enumerate(SLOT_NAMES):
            blank = BLANK[name]
            self.is_text[k] = isinstance(blank, str)
            self.blank[k] = self.symbol(blank) if self.is_text[k] else blank

    cdef int64_t symbol(self, str text) except -1:
        """The number of ``text`` (a new one the first time)."""
        cdef PyObject* found = PyDict_GetItem(self.numbers, text)
        if found != NULL:
            return PyLong_AsLongLong(<object>found)
        number = len(self.names)
        self.numbers[text] = number
        self.names.append(text)
        return number

    cdef int64_t constant(self, int slot, object value) except? -1:
        """A rule's constant for a slot, as the fact holds it."""
        if self.is_text[slot]:
            return self.symbol(value)
        return value

    cdef object value(self, int slot, int64_t held):
        """A fact's value as :func:`build_fact` gives it."""
        return self.names[held] if self.is_text[slot] else held

    cdef int residence(self, str code, int64_t* place, int64_t* pref) except -1:
        """The symbols of a residence's place and prefecture (nothing for an empty code)."""
        if not code:
            return 0
        places = self.places.get(code)
        if places is None:
            in_place, in_pref = registry().places(code)
            places = self.places[code] = (self.symbol(in_place), self.symbol(in_pref))
        place[0] = places[0]
        pref[0] = places[1]
        return 0


# A map from integer vectors to integers: the memo of rulesets and of routes.

cdef class VectorMemo:
    """Open addressing over vectors of ``width`` int64, each mapped to an int32; cleared when
    it holds ``limit`` entries."""


    def __cinit__(self, Py_ssize_t width, Py_ssize_t limit) -> None:
        self.width = width if width > 0 else 1
        self.limit = limit
        self.keys = NULL
        self.values = NULL
        self.used = NULL
        self._allocate(64)

    def __dealloc__(self) -> None:
        PyMem_Free(self.keys)
        PyMem_Free(self.values)
        PyMem_Free(self.used)

    cdef int _allocate(self, Py_ssize_t size) except -1:
        self.keys = <int64_t*>PyMem_Malloc(size * self.width * sizeof(int64_t))
        self.values = <int32_t*>PyMem_Malloc(size * sizeof(int32_t))
        self.used = <char*>PyMem_Malloc(size)
        if self.keys == NULL or self.values == NULL or self.used == NULL:
            raise MemoryError()
        memset(self.used, 0, size)
        self.mask = size - 1
        self.count = 0
        return 0

    cdef Py_ssize_t _slot(self, const int64_t* key) noexcept:
        cdef uint64_t h = 0x9E3779B97F4A7C15ULL
        cdef Py_ssize_t i, j
        for j in range(self.width):
            h = (h ^ <uint64_t>key[j]) * 0xBF58476D1CE4E5B9ULL
            h ^= h >> 31
        i = <Py_ssize_t>(h & <uint64_t>self.mask)
        while self.used[i]:
            for j in range(self.width):
                if self.keys[i * self.width + j] != key[j]:
                    break
            else:
                return i
            i = (i + 1) & self.mask
        return i

    cdef bint get(self, const int64_t* key, int32_t* value) noexcept:
        cdef Py_ssize_t i = self._slot(key)
        if not self.used[i]:
            return False
        value[0] = self.values[i]
        return True

    cdef int put(self, const int64_t* key, int32_t value) except -1:
        if self.count >= self.limit:
            self.clear()
        return self._insert(key, value)

    cdef int _insert(self, const int64_t* key, int32_t value) except -1:
        cdef Py_ssize_t i = self._slot(key)
        if not self.used[i]:
            self.used[i] = 1
            memcpy(self.keys + i * self.width, key, self.width * sizeof(int64_t))
            self.count += 1
        self.values[i] = value
        if self.count * 2 > self.mask + 1:
            self._grow()
        return 0

    cdef int clear(self) except -1:
        memset(self.used, 0, self.mask + 1)
        self.count = 0
        return 0

    cdef int _grow(self) except -1:
        cdef int64_t* keys = self.keys
        cdef int32_t* values = self.values
        cdef char* used = self.used
        cdef Py_ssize_t size = self.mask + 1, j
        try:
            self._allocate(2 * size)
            for j in range(size):
                if used[j]:
                    self._insert(keys + j * self.width, values[j])
        finally:
            PyMem_Free(keys)
            PyMem_Free(values)
            PyMem_Free(used)
        return 0


# A ruleset's memo key, computed from the fact's integers.

_SHARED_MEMOS = {}  # ruleset shape -> [VectorMemo, plans using it]; dropped with the last
_OUTCOMES = {}  # a check's outcome key (CompiledRuleset.outcome_keys) -> [VectorMemo, plans]


cdef class Plan:
    """How to class a fact for one compiled ruleset (see the module and
    :meth:`CompiledRuleset.key <pointengine.decide.matching.CompiledRuleset.key>`)."""


    def __cinit__(self) -> None:
        self.code = NULL
        self.part_positions = NULL
        self.outcome_keys = ()

    def __dealloc__(self) -> None:
        cdef int k
        for k in range(self.n_equal):
            PyMem_Free(self.equal_tables[k])
        for k in range(self.n_order):
            PyMem_Free(self.order_tables[k])
        PyMem_Free(self.part_positions)
        PyMem_Free(self.code)

    cdef int build(self, Symbols symbols, object ruleset) except -1:
        cdef int k, j, slot
        self.ruleset = ruleset
        self.checks = tuple(ruleset.checks)
        self.always_passes = not self.checks
        self.supported = True
        self.read_names = list(ruleset.fields)
        self.n_read = len(self.read_names)
        for k, name in enumerate(self.read_names):
            self.read_slots[k] = SLOT_NAMES.index(name)
        self.n_equal = len(ruleset.equal_fields)
        for k, (name, ranks) in enumerate(zip(ruleset.equal_fields, ruleset.equal_ranks)):
            slot = SLOT_NAMES.index(name)
            self.equal_slots[k] = slot
            self.equal_counts[k] = len(ranks)
            self.equal_tables[k] = <int64_t*>PyMem_Malloc((len(ranks) + 1) * sizeof(int64_t))
            if self.equal_tables[k] == NULL:
                raise MemoryError()
            for value, rank in ranks.items():
                self.equal_tables[k][rank] = symbols.constant(slot, value)
        self.n_order = len(ruleset.order_fields)
        for k, (name, constants) in enumerate(zip(ruleset.order_fields,
                                                  ruleset.order_constants)):
            slot = SLOT_NAMES.index(name)
            self.order_slots[k] = slot
            self.order_counts[k] = len(constants)
            self.order_tables[k] = <int64_t*>PyMem_Malloc((len(constants) + 1) * sizeof(int64_t))
            if self.order_tables[k] == NULL:
                raise MemoryError()
            for j, value in enumerate(constants):
                if symbols.is_text[slot]:
                    self.supported = False  # text ordered by its symbols would be wrong
                    self.order_tables[k][j] = 0
                else:
                    self.order_tables[k][j] = value
        self.n_raw = len(ruleset.raw_fields)
        for k, name in enumerate(ruleset.raw_fields):
            self.raw_slots[k] = SLOT_NAMES.index(name)
        self.n_members = 0
        self.n_groups = len(ruleset.groups)
        for k, group in enumerate(ruleset.groups):
            self.group_starts[k] = self.n_members
            self.group_sizes[k] = len(group)
            kinds = {symbols.is_text[SLOT_NAMES.index(name)] for name in group}
            if len(kinds) > 1:
                self.supported = False  # a symbol and an integer could look equal
            for name in group:
                self.member_slots[self.n_members] = SLOT_NAMES.index(name)
                self.n_members += 1
        self.reads_store = "store" in self.read_names
        self.width = self.n_equal + self.n_order + self.n_raw + self.n_members
        if self.width > KEY_WIDTH:
            self.supported = False
        # A key of classes only (no raw value) has a known range in every place: it is then
        # one number in mixed radix, and the memo's key is that number alone.
        radices = ([self.equal_counts[k] + 1 for k in range(self.n_equal)]
                   + [2 * self.order_counts[k] + 1 for k in range(self.n_order)]
                   + [self.group_sizes[k] for k in range(self.n_groups)
                      for _ in range(self.group_sizes[k])])
        self.packed = self.n_raw == 0 and self.width <= KEY_WIDTH and math.prod(radices) < 1 << 62
        self.shape = ruleset.shape
        shared = _SHARED_MEMOS.get(self.shape)
        if shared is None:
            shared = _SHARED_MEMOS[self.shape] = [
                VectorMemo(1 if self.packed else self.width, DEFAULT_CACHE_SIZE), 0]
        shared[1] += 1
        self.memo = shared[0]
        self._build_code()
        self._build_parts(ruleset, symbols)
        return 0

    cdef int _build_code(self) except -1:
        """Lay what :func:`decide` reads out in one block, in the order it reads it: the plan
        and its memo (borrowed: the plan holds both), the counts in one number (a byte each
        for the equality, order and raw fields and the groups, then a bit for a packed key
        and one for a plan every fact passes), then each equality field (its slot and count
        in one number, then its constants by rank), each order field (the same, its constants
        sorted), each raw field's slot, each group (its size, then its slots). 1,741 programs
        of one template are each decided now and then: their plans are seldom in the cache,
        and a block of two or three lines costs less to read again than the plan's arrays."""
        cdef Py_ssize_t size = 3, n
        cdef int k, j
        cdef int64_t* code
        for k in range(self.n_equal):
            size += 1 + self.equal_counts[k]
        for k in range(self.n_order):
            size += 1 + self.order_counts[k]
        size += self.n_raw
        for k in range(self.n_groups):
            size += 1 + self.group_sizes[k]
        code = <int64_t*>PyMem_Malloc(size * sizeof(int64_t))
        if code == NULL:
            raise MemoryError()
        code[0] = <int64_t><PyObject*>self
        code[1] = <int64_t><PyObject*>self.memo
        code[2] = (self.n_equal | self.n_order << 8 | self.n_raw << 16 | self.n_groups << 24
                   | (<int64_t>self.packed) << 32 | (<int64_t>self.always_passes) << 33)
        n = 3
        for k in range(self.n_equal):
            code[n] = self.equal_slots[k] | (<int64_t>self.equal_counts[k]) << 32
            n += 1
            for j in range(self.equal_counts[k]):
                code[n] = self.equal_tables[k][j]
                n += 1
        for k in range(self.n_order):
            code[n] = self.order_slots[k] | (<int64_t>self.order_counts[k]) << 32
            n += 1
            for j in range(self.order_counts[k]):
                code[n] = self.order_tables[k][j]
                n += 1
        for k in range(self.n_raw):
            code[n] = self.raw_slots[k]
            n += 1
        for k in range(self.n_groups):
            code[n] = self.group_sizes[k]
            n += 1
            for j in range(self.group_sizes[k]):
                code[n] = self.member_slots[self.group_starts[k] + j]
                n += 1
        PyMem_Free(self.code)
        self.code = code
        return 0

    cdef int _build_parts(self, object ruleset, Symbols symbols) except -1:
        """Where each check's part of the key is (the ruleset's ``outcome_keys`` say which
        values, in which order), and the shared memos of their outcomes."""
        cdef int k, n = 0
        self.n_parts = 0
        keys = tuple(ruleset.outcome_keys)
        if not self.supported or len(keys) != len(self.checks) or len(keys) > MAX_CHECKS:
            return 0  # every new key is asked
        for k in range(self.n_raw):
            if symbols.is_text[self.raw_slots[k]]:
                return 0  # a text kept raw is a symbol, this lane's own: not shared
        where = {}
        for k, name in enumerate(ruleset.equal_fields):
            where[("equal", name)] = k
        for k, name in enumerate(ruleset.order_fields):
            where[("order", name)] = self.n_equal + k
        for k, name in enumerate(ruleset.raw_fields):
            where[("raw", name)] = self.n_equal + self.n_order + k
        for k, group in enumerate(ruleset.groups):
            for j in range(len(group)):
                where[("group", tuple(group), j)] = (self.n_equal + self.n_order + self.n_raw
                                                     + self.group_starts[k] + j)
        parts = [[where[place] for place in places] for _, places in keys]
        self.part_positions = <int*>PyMem_Malloc((sum(len(p) for p in parts) + 1) * sizeof(int))
        if self.part_positions == NULL:
            raise MemoryError()
        self.outcomes = []
        for k, positions in enumerate(parts):
            self.part_starts[k] = n
            for position in positions:
                self.part_positions[n] = position
                n += 1
            shared = _OUTCOMES.get(keys[k])
            if shared is None:
                shared = _OUTCOMES[keys[k]] = [VectorMemo(len(positions), DEFAULT_CACHE_SIZE), 0]
            shared[1] += 1
            self.outcomes.append(shared[0])
            self.outcome_memos[k] = <PyObject*>shared[0]
        self.part_starts[len(parts)] = n
        self.outcome_keys = keys
        self.n_parts = len(parts)
        return 0

    cdef int release(self) except -1:
        """Stop using the shared memos (each dropped with its last plan)."""
        shared = _SHARED_MEMOS.get(self.shape)
        if shared is not None and shared[0] is self.memo:
            shared[1] -= 1
            if shared[1] <= 0:
                del _SHARED_MEMOS[self.shape]
        for k, key in enumerate(self.outcome_keys):
            shared = _OUTCOMES.get(key)
            if shared is not None and shared[0] is self.outcomes[k]:
                shared[1] -= 1
                if shared[1] <= 0:
                    del _OUTCOMES[key]
        self.outcome_keys = ()
        self.outcomes = []
        self.n_parts = 0
        return 0

    cdef int _answer(self, Symbols symbols, const int64_t* fact, const int64_t* key,
                     const int64_t* whole) except -2:
        """A key the memo does not hold (``key`` its classes, ``whole`` the memo's key):
        answered from the checks' outcomes when they are known, else by the ruleset."""
        cdef int answer = self._from_outcomes(key)
        if answer == -2:
            answer = self._ask(symbols, fact)
            self._learn(key, answer)
        self.memo.put(whole, answer)
        return answer

    cdef int _from_outcomes(self, const int64_t* key) noexcept:
        """The first failing check (-1: none) from the checks' known outcomes; -2 when a
        check before the first known to fail is not known yet."""
        cdef int64_t[KEY_WIDTH] part
        cdef int k, j, n
        cdef int32_t held
        if self.n_parts == 0:
            return -2
        for k in range(self.n_parts):
            n = 0
            part[0] = 0
            for j in range(self.part_starts[k], self.part_starts[k + 1]):
                part[n] = key[self.part_positions[j]]
                n += 1
            if not (<VectorMemo>self.outcome_memos[k]).get(part, &held):
                return -2
            if not held:
                return k
        return -1

    cdef int _learn(self, const int64_t* key, int answer) except -1:
        """Remember what the ruleset said of the checks: those before ``answer`` hold, the
        one at ``answer`` fails (all hold when it is -1)."""
        cdef int64_t[KEY_WIDTH] part
        cdef int k, j, n, last = self.n_parts if answer < 0 else answer + 1
        if self.n_parts == 0:
            return 0
        for k in range(last):
            n = 0
            part[0] = 0
            for j in range(self.part_starts[k], self.part_starts[k + 1]):
                part[n] = key[self.part_positions[j]]
                n += 1
            (<VectorMemo>self.outcome_memos[k]).put(part, 0 if k == answer else 1)
        return 0

    cdef int _ask(self, Symbols symbols, const int64_t* fact) except -2:
        """Ask the ruleset itself (durable_rules, behind its own memo)."""
        cdef int k
        values = {}
        for k in range(self.n_read):
            values[self.read_names[k]] = symbols.value(self.read_slots[k],
                                                   fact[self.read_slots[k]])
        failed = self.ruleset.first_failure(values)
        if failed is None:
            return -1
        for k, check in enumerate(self.checks):
            if check is failed:
                return k
        raise IntegrityError(f"{self.ruleset!r} answered a check it does not have")


cdef int decide(const int64_t* code, Symbols symbols, const int64_t* fact) except -2:
    """The index of the first check of a plan ``fact`` fails, or -1 when it passes them all:
    ``code`` is the plan's block (``Plan.code``). The key is each field's class (see the
    module), and for the memo one number in mixed radix when the plan's key is packed (each
    radix is known from the block: an equality field's count of constants and one, an order
    field's twice its count and one, a group's size)."""
    cdef int64_t[KEY_WIDTH] key
    cdef int64_t[1] packed
    cdef int64_t header = code[2], value, entry
    cdef uint64_t number = 0  # wraps around harmlessly when the key is not packed
    cdef int w = 0, k, j, q, lo, hi, mid, n
    cdef Py_ssize_t at = 3
    cdef const int64_t* table
    cdef int32_t answer
    if (header >> 33) & 1:  # every fact passes
        return -1
    for k in range(header & 0xFF):
        entry = code[at]
        value = fact[entry & <int64_t>0xFFFFFFFF]
        n = <int>(entry >> 32)
        table = code + at + 1
        key[w] = -1
        for j in range(n):
            if table[j] == value:
                key[w] = j
                break
        number = number * <uint64_t>(n + 1) + <uint64_t>(key[w] + 1)
        w += 1
        at += 1 + n
    for k in range((header >> 8) & 0xFF):
        entry = code[at]
        value = fact[entry & <int64_t>0xFFFFFFFF]
        n = <int>(entry >> 32)
        table = code + at + 1
        lo = 0
        hi = n
        while lo < hi:
            mid = (lo + hi) // 2
            if table[mid] < value:
                lo = mid + 1
            else:
                hi = mid
        key[w] = 2 * lo + (1 if lo < n and table[lo] == value else 0)
        number = number * <uint64_t>(2 * n + 1) + <uint64_t>key[w]
        w += 1
        at += 1 + n
    for k in range((header >> 16) & 0xFF):
        key[w] = fact[code[at]]
        w += 1
        at += 1
    for k in range((header >> 24) & 0xFF):
        n = <int>code[at]
        table = code + at + 1
        for j in range(n):
            value = fact[table[j]]
            key[w] = j
            for q in range(j):
                if fact[table[q]] == value:
                    key[w] = q
                    break
            number = number * <uint64_t>n + <uint64_t>key[w]
            w += 1
        at += 1 + n
    if (header >> 32) & 1:
        packed[0] = <int64_t>number
        if (<VectorMemo><PyObject*>code[1]).get(packed, &answer):
            return answer
        return (<Plan><PyObject*>code[0])._answer(symbols, fact, key, packed)
    if (<VectorMemo><PyObject*>code[1]).get(key, &answer):
        return answer
    return (<Plan><PyObject*>code[0])._answer(symbols, fact, key, key)
