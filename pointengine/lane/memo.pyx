# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The lane's facts as integers, and each ruleset's answers memoised under its own key.

A fact (:func:`pointengine.decide.facts.build_fact`) is held as one integer per field, in the order
of :data:`pointengine.decide.facts.FIELDS`; a string is held as its number in a :class:`Symbols`
table (0 is the empty string). A :class:`Plan` classes such a fact for one compiled ruleset
exactly as :meth:`CompiledRuleset.key <pointengine.decide.matching.CompiledRuleset.key>` does (each
field by the constants it is compared with), as a vector of integers, and looks its answer up
in a :class:`VectorMemo` shared by every ruleset of the same shape; a key not seen before is
answered by the ruleset itself, that is by durable_rules, and remembered.
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


cdef class Plan:
    """How to class a fact for one compiled ruleset (see the module and
    :meth:`CompiledRuleset.key <pointengine.decide.matching.CompiledRuleset.key>`)."""


    def __dealloc__(self) -> None:
        cdef int k
        for k in range(self.n_equal):
            PyMem_Free(self.equal_tables[k])
        for k in range(self.n_order):
            PyMem_Free(self.order_tables[k])

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
        if self.packed:
            for k, radix in enumerate(radices):
                self.radices[k] = radix
        self.shape = ruleset.shape
        shared = _SHARED_MEMOS.get(self.shape)
        if shared is None:
            shared = _SHARED_MEMOS[self.shape] = [
                VectorMemo(1 if self.packed else self.width, DEFAULT_CACHE_SIZE), 0]
        shared[1] += 1
        self.memo = shared[0]
        return 0

    cdef int release(self) except -1:
        """Stop using the shared memo (dropped with its last plan)."""
        shared = _SHARED_MEMOS.get(self.shape)
        if shared is not None and shared[0] is self.memo:
            shared[1] -= 1
            if shared[1] <= 0:
                del _SHARED_MEMOS[self.shape]
        return 0

    cdef int decide(self, Symbols symbols, const int64_t* fact) except -2:
        """The index of the first check ``fact`` fails, or -1 when it passes them all."""
        cdef int64_t[KEY_WIDTH] key
        cdef int w = 0, k, j, q, lo, hi, mid, n
        cdef int64_t value
        cdef int64_t* table
        cdef int32_t answer
        if self.always_passes:
            return -1
        for k in range(self.n_equal):
            value = fact[self.equal_slots[k]]
            table = self.equal_tables[k]
            key[w] = -1
            for j in range(self.equal_counts[k]):
                if table[j] == value:
                    key[w] = j
                    break
            w += 1
        for k in range(self.n_order):
            value = fact[self.order_slots[k]]
            table = self.order_tables[k]
            n = self.order_counts[k]
            lo = 0
            hi = n
            while lo < hi:
                mid = (lo + hi) // 2
                if table[mid] < value:
                    lo = mid + 1
                else:
                    hi = mid
            key[w] = 2 * lo + (1 if lo < n and table[lo] == value else 0)
            w += 1
        for k in range(self.n_raw):
            key[w] = fact[self.raw_slots[k]]
            w += 1
        for k in range(self.n_groups):
            for j in range(self.group_sizes[k]):
                value = fact[self.member_slots[self.group_starts[k] + j]]
                key[w] = j
                for q in range(j):
                    if fact[self.member_slots[self.group_starts[k] + q]] == value:
                        key[w] = q
                        break
                w += 1
        if self.packed:
            value = 0
            for k in range(w):
                value = value * self.radices[k] + key[k] + (1 if k < self.n_equal else 0)
            key[0] = value
        if self.memo.get(key, &answer):
            return answer
        answer = self._ask(symbols, fact)
        self.memo.put(key, answer)
        return answer

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
