# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compact tables for what a store must remember of every event, so memory grows slowly.

A replay of 10,000,000 events must remember every event key (idempotency) and every
transaction (a later refund is checked against what was paid). As Python strings in a set and
objects in a dict that is a few hundred bytes per event; here it is 8 bytes per key in a set and
16 per transaction, in flat C arrays with open addressing (linear probing, at most 5/8 full).

A key is kept as a 64-bit fingerprint: XXH64 (seed 0) of the key's UTF-8 bytes as a signed
integer, the same in every process, so a pickled table stays valid. (Checkpoints of format 2
used BLAKE2b, which costs ten times as much; see :data:`pointengine.replay.checkpoint.FORMAT`.)
Two different keys share a fingerprint with probability about n² / 2⁶⁵: for 10 million keys,
about 3 in a million per run. That is the price of the compact form; a store that cannot accept
it keeps full keys (the Redis store does).

This module is compiled (Cython) because the replay's fast lane (:mod:`pointengine.lane.lane`)
computes a fingerprint and probes a table for nearly every event without a Python call.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t, uint64_t, uint8_t
from libc.string cimport memcpy, memset


cdef extern from *:
    void __builtin_prefetch(const void* address) noexcept nogil

cdef int64_t _EMPTY = 0
cdef Py_ssize_t _START = 1 << 10

cdef uint64_t _P1 = 11400714785074694791ULL
cdef uint64_t _P2 = 14029467366897019727ULL
cdef uint64_t _P3 = 1609587929392839161ULL
cdef uint64_t _P4 = 9650029242287828579ULL
cdef uint64_t _P5 = 2870177450012600261ULL
cdef uint64_t _ONE = 1
cdef bint _LITTLE_ENDIAN = (<uint8_t*>&_ONE)[0] == 1


cdef inline uint64_t _rotl(uint64_t x, int n) noexcept nogil:
    return (x << n) | (x >> (64 - n))


cdef inline uint64_t _read64(const uint8_t* p) noexcept nogil:
    cdef uint64_t value = 0
    cdef int i
    if _LITTLE_ENDIAN:
        memcpy(&value, p, 8)
    else:
        for i in range(8):
            value |= (<uint64_t>p[i]) << (8 * i)
    return value


cdef inline uint64_t _read32(const uint8_t* p) noexcept nogil:
    cdef uint64_t value = 0
    cdef int i
    for i in range(4):
        value |= (<uint64_t>p[i]) << (8 * i)
    return value


cdef inline uint64_t _round(uint64_t acc, uint64_t lane) noexcept nogil:
    acc += lane * _P2
    acc = _rotl(acc, 31)
    return acc * _P1


cdef inline uint64_t _merge(uint64_t acc, uint64_t lane) noexcept nogil:
    acc ^= _round(0, lane)
    return acc * _P1 + _P4


cdef int64_t fingerprint_bytes(const char* data, Py_ssize_t size) noexcept nogil:
    """XXH64 (seed 0) of ``size`` bytes at ``data`` as a signed integer, never 0."""
    cdef const uint8_t* p = <const uint8_t*>data
    cdef const uint8_t* end = p + size
    cdef uint64_t h, v1, v2, v3, v4
    if size >= 32:
        v1 = _P1 + _P2
        v2 = _P2
        v3 = 0
        v4 = 0 - _P1
        while p + 32 <= end:
            v1 = _round(v1, _read64(p))
            v2 = _round(v2, _read64(p + 8))
            v3 = _round(v3, _read64(p + 16))
            v4 = _round(v4, _read64(p + 24))
            p += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = _P5
    h += <uint64_t>size
    while p + 8 <= end:
        h ^= _round(0, _read64(p))
        h = _rotl(h, 27) * _P1 + _P4
        p += 8
    if p + 4 <= end:
        h ^= _read32(p) * _P1
        h = _rotl(h, 23) * _P2 + _P3
        p += 4
    while p < end:
        h ^= p[0] * _P5
        h = _rotl(h, 11) * _P1
        p += 1
    h ^= h >> 33
    h *= _P2
    h ^= h >> 29
    h *= _P3
    h ^= h >> 32
    cdef int64_t value = <int64_t>h
    return value if value != 0 else 1


cdef int64_t fingerprint_str(str key) except? 0:
    """:func:`fingerprint` for the fast lane."""
    cdef Py_ssize_t size
    cdef const char* data = PyUnicode_AsUTF8AndSize(key, &size)
    return fingerprint_bytes(data, size)


def fingerprint(str key) -> int:
    """A 64-bit fingerprint of ``key`` (never 0, which marks an empty slot)."""
    return fingerprint_str(key)


cdef inline Py_ssize_t _home(int64_t fp, Py_ssize_t mask) noexcept nogil:
    """The slot where the search for ``fp`` starts."""
    return <Py_ssize_t>((fp ^ (fp >> 31)) & mask)


cdef class KeyTable:
    """A set of keys, or a map of keys to integers, in two flat C arrays.

    ``values=False`` keeps keys only (a set: 8 bytes a slot).
    """

    def __cinit__(self, *, bint values=True) -> None:
        self._keys = NULL
        self._values = NULL
        self._has_values = values
        self._allocate(_START)

    def __dealloc__(self) -> None:
        PyMem_Free(self._keys)
        PyMem_Free(self._values)

    cdef int _allocate(self, Py_ssize_t size) except -1:
        PyMem_Free(self._keys)
        PyMem_Free(self._values)
        self._values = NULL
        self._keys = <int64_t*>PyMem_Malloc(size * sizeof(int64_t))
        if self._keys == NULL:
            raise MemoryError()
        memset(self._keys, 0, size * sizeof(int64_t))
        if self._has_values:
            self._values = <int64_t*>PyMem_Malloc(size * sizeof(int64_t))
            if self._values == NULL:
                raise MemoryError()
            memset(self._values, 0, size * sizeof(int64_t))
        self._mask = size - 1
        self._count = 0
        return 0

    def __len__(self) -> int:
        return self._count

    cdef inline Py_ssize_t _slot(self, int64_t fp) noexcept nogil:
        cdef Py_ssize_t i = _home(fp, self._mask)
        cdef int64_t k
        while True:
            k = self._keys[i]
            if k == fp or k == _EMPTY:
                return i
            i = (i + 1) & self._mask

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self.has_fp(fingerprint_str(key))

    cdef bint has_fp(self, int64_t fp) noexcept:
        return self._keys[self._slot(fp)] == fp

    cdef void prefetch(self, int64_t fp) noexcept:
        """Start reading the first slot of ``fp`` into the cache: in a large table that
        read is a miss, which the caller can overlap with other work."""
        __builtin_prefetch(&self._keys[_home(fp, self._mask)])

    def has(self, int64_t fp) -> bool:
        """True when the key of fingerprint ``fp`` is in the table."""
        return self.has_fp(fp)

    cdef bint get_fp(self, int64_t fp, int64_t* value) noexcept:
        cdef Py_ssize_t i = self._slot(fp)
        if self._keys[i] != fp:
            return False
        value[0] = self._values[i] if self._has_values else 0
        return True

    def get(self, str key) -> int | None:
        """The value of ``key``, or None when it is absent."""
        cdef int64_t value
        if not self.get_fp(fingerprint_str(key), &value):
            return None
        return value

    cdef int add_fp(self, int64_t fp, int64_t value) except -1:
        cdef Py_ssize_t i = self._slot(fp)
        if self._keys[i] != fp:
            self._keys[i] = fp
            self._count += 1
        if self._has_values:
            self._values[i] = value
        if self._count * 8 > (self._mask + 1) * 5:
            self._grow()
        return 0

    def add(self, str key, int64_t value=0, *, fp: int | None = None) -> None:
        """Add ``key`` (or set its value); ``fp`` is its fingerprint when already known."""
        self.add_fp(fingerprint_str(key) if fp is None else <int64_t>fp, value)

    cdef int _grow(self) except -1:
        cdef int64_t* old_keys = self._keys
        cdef int64_t* old_values = self._values
        cdef Py_ssize_t old_size = self._mask + 1, j, i
        cdef Py_ssize_t count = self._count
        self._keys = NULL
        self._values = NULL
        try:
            self._allocate(2 * old_size)
            for j in range(old_size):
                if old_keys[j] != _EMPTY:
                    i = self._slot(old_keys[j])
                    self._keys[i] = old_keys[j]
                    if self._has_values:
                        self._values[i] = old_values[j]
            self._count = count
        finally:
            PyMem_Free(old_keys)
            PyMem_Free(old_values)
        return 0

    def __reduce__(self) -> tuple[object, ...]:
        size = (self._mask + 1) * sizeof(int64_t)
        keys = (<char*>self._keys)[:size]
        values = (<char*>self._values)[:size] if self._has_values else None
        return (_restored, (keys, values, self._count))

    cdef int _fill(self, bytes keys, object values, Py_ssize_t count) except -1:
        cdef Py_ssize_t size = len(keys) // sizeof(int64_t)
        if size < 1 or size & (size - 1) or (values is not None and len(values) != len(keys)):
            raise ValueError("not a pickled KeyTable")
        self._allocate(size)
        memcpy(self._keys, <const char*>keys, len(keys))
        if values is not None:
            memcpy(self._values, <const char*>values, len(keys))
        self._count = count
        return 0


def _restored(bytes keys, values: bytes | None, Py_ssize_t count) -> KeyTable:
    """A table from :meth:`KeyTable.__reduce__`."""
    cdef KeyTable table = KeyTable(values=values is not None)
    table._fill(keys, values, count)
    return table


# --- counters ----------------------------------------------------------------------------------

cdef class Counters:
    """The store's named counters (cap use, admissions) as a mapping of str to int that keeps
    its values in one C array.

    It behaves as the dict it replaces (a key is absent until it is set, and stays when set
    to 0), and it gives each key a fixed slot: the replay's fast lane keeps a person's slots
    and reads and writes ``values[slot]`` without a dictionary or an int object. A slot made
    for a key not yet set holds :data:`ABSENT`.
    """

    def __cinit__(self, dict initial=None) -> None:
        self.index = {}
        self.names = []
        self.values = NULL
        self.capacity = 0
        if initial:
            for key, value in initial.items():
                self[key] = value

    def __dealloc__(self) -> None:
        PyMem_Free(self.values)

    cdef Py_ssize_t slot(self, str key) except -1:
        """The slot of ``key``, made (holding :data:`ABSENT`) when it has none; a new slot may
        move ``values``."""
        cdef Py_ssize_t n
        cdef int64_t* grown
        found = self.index.get(key)
        if found is not None:
            return <Py_ssize_t>found
        n = len(self.names)
        if n == self.capacity:
            self.capacity = 1024 if self.capacity == 0 else 2 * self.capacity
            grown = <int64_t*>PyMem_Realloc(self.values, self.capacity * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self.values = grown
        self.values[n] = ABSENT
        self.names.append(key)
        self.index[key] = n
        return n

    def get(self, str key, default=0) -> int | None:
        """The value of ``key``, or ``default`` when it is absent."""
        found = self.index.get(key)
        if found is None or self.values[<Py_ssize_t>found] == ABSENT:
            return default
        return self.values[<Py_ssize_t>found]

    def __getitem__(self, str key) -> int:
        found = self.index.get(key)
        if found is None or self.values[<Py_ssize_t>found] == ABSENT:
            raise KeyError(key)
        return self.values[<Py_ssize_t>found]

    def __setitem__(self, str key, int64_t value) -> None:
        if value == ABSENT:
            raise OverflowError(f"counter {key!r}: {value} is out of range")
        self.values[self.slot(key)] = value

    def __contains__(self, key: object) -> bool:
        found = self.index.get(key)
        return found is not None and self.values[<Py_ssize_t>found] != ABSENT

    def keys(self) -> list[str]:
        """The keys that are set, in the order they were first set or given a slot."""
        cdef Py_ssize_t k
        return [self.names[k] for k in range(len(self.names)) if self.values[k] != ABSENT]

    def items(self) -> list[tuple[str, int]]:
        """``(key, value)`` of each key that is set."""
        cdef Py_ssize_t k
        return [(self.names[k], self.values[k]) for k in range(len(self.names))
                if self.values[k] != ABSENT]

    def names_of(self, slots: object) -> list[str]:
        """The keys of ``slots`` (slots the fast lane wrote), in their order."""
        names = self.names
        return [names[slot] for slot in slots]

    def flat_items(self, keys: object) -> list[object]:
        """``[key, value, key, value...]`` of ``keys``, which are set."""
        out = []
        for key in keys:
            out.append(key)
            out.append(self[key])
        return out

    def __iter__(self) -> object:
        return iter(self.keys())

    def __len__(self) -> int:
        cdef Py_ssize_t k, n = 0
        for k in range(len(self.names)):
            if self.values[k] != ABSENT:
                n += 1
        return n

    def __reduce__(self) -> tuple[object, ...]:
        return (Counters, (dict(self.items()),))
